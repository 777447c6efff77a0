/* Sosie 3-D view, WebGL plumbing: the face and line shaders, compiling them, buffers and
   textures. Raw WebGL 1 + ANGLE_instanced_arrays, so it runs on headset browsers and on
   software renderers alike. */
'use strict';
(function (vr) {
  /* One quad per face (4 corners x instances), turned to face the viewer in eye space, sized in
     world units: no cap like gl_PointSize's ALIASED_POINT_SIZE_RANGE, so a face close to the
     viewer fills the view. Sheets whose faces are all small on screen are drawn as points by
     the same shader built with POINTS (one vertex a face instead of four: the whole cloud costs
     what the point sprites did). Texture: a detail slot when its sheet is resident and the face
     is large enough, else the atlas cell; a few pixels wide, just its mean colour. */
  const FACE_VS = `
    precision highp float;
    attribute vec3 aPos; attribute vec3 aRgb;
    attribute float aIdx; attribute float aCluster; attribute float aPlace; attribute float aSlot;
    #ifndef POINTS
    attribute vec2 aCorner;
    #endif
    uniform mat4 uProj, uView, uModel;
    uniform float uSize, uPx, uMinPx, uMaxPointPx, uGrow, uTint;
    uniform float uCols, uCell, uAtlasPx;
    uniform float uSheetCols, uSlotCols, uSlotUV, uFaceUV, uFacePx, uDetailMinPx;
    varying vec2 vCorner; varying vec2 vOrigin; varying float vScale; varying float vHalf;
    varying vec3 vTint; varying vec3 vRgb; varying float vPx; varying float vDetail;
    vec3 hue(float j) {
      float h = mod(j * 137.508, 360.0) / 60.0;
      vec3 k = clamp(abs(mod(h + vec3(0.0, 4.0, 2.0), 6.0) - 3.0) - 1.0, 0.0, 1.0);
      return mix(vec3(1.0), k, 0.75);
    }
    void main() {
      vec4 eye = uView * uModel * vec4(aPos, 1.0);
      float depth = max(-eye.z, 1e-4);
      float size = uGrow * uSize;
      float px = size * uPx / depth;
      if (px < uMinPx) { size *= uMinPx / px; px = uMinPx; }
      #ifdef POINTS
      px = min(px, uMaxPointPx);
      gl_PointSize = px;
      gl_Position = uProj * eye;
      #else
      eye.xy += aCorner * size;
      gl_Position = uProj * eye;
      vCorner = vec2(aCorner.x + 0.5, 0.5 - aCorner.y); // y down, as in the images
      #endif
      vPx = px;
      vDetail = 0.0;
      if (aSlot >= 0.0 && px >= uDetailMinPx) {
        float per = uSheetCols * uSheetCols;
        float j = aPlace - floor((aPlace + 0.5) / per) * per;
        float row = floor((j + 0.5) / uSheetCols);
        float srow = floor((aSlot + 0.5) / uSlotCols);
        vOrigin = vec2(aSlot - srow * uSlotCols, srow) * uSlotUV + vec2(j - row * uSheetCols, row) * uFaceUV;
        vScale = uFaceUV;
        vHalf = 0.5 / uFacePx;
        vDetail = 1.0;
      } else {
        float row = floor((aIdx + 0.5) / uCols);
        vOrigin = vec2(aIdx - row * uCols, row) * uCell;
        vScale = uCell;
        vHalf = 0.5 / uAtlasPx;
      }
      vTint = (uTint > 0.5 && aCluster >= 0.0) ? hue(aCluster) : vec3(1.0);
      vRgb = aRgb;
    }`;
  const FACE_FS = `
    #ifdef GL_FRAGMENT_PRECISION_HIGH
    precision highp float;
    #else
    precision mediump float;
    #endif
    uniform sampler2D uAtlas; uniform sampler2D uDetail;
    uniform float uBorder; uniform vec3 uBorderColour;
    varying vec2 vCorner; varying vec2 vOrigin; varying float vScale; varying float vHalf;
    varying vec3 vTint; varying vec3 vRgb; varying float vPx; varying float vDetail;
    void main() {
      #ifdef POINTS
      vec2 corner = gl_PointCoord;
      #else
      vec2 corner = vCorner;
      #endif
      vec2 uv = vOrigin + clamp(corner, vec2(vHalf), vec2(1.0 - vHalf)) * vScale;
      vec3 colour = vRgb;
      if (vDetail > 0.5) colour = texture2D(uDetail, uv).rgb;
      else if (vPx >= 5.0) colour = texture2D(uAtlas, uv).rgb;
      colour *= vTint;
      float edge = min(min(corner.x, 1.0 - corner.x), min(corner.y, 1.0 - corner.y)) * vPx;
      if (uBorder > 0.0 && edge < uBorder) colour = uBorderColour;
      gl_FragColor = vec4(colour, 1.0);
    }`;
  const LINES_VS = `
    attribute vec3 aPos; attribute vec3 aColour; uniform mat4 uProj, uView, uModel; varying vec3 vColour;
    void main() { gl_Position = uProj * uView * uModel * vec4(aPos, 1.0); vColour = aColour; }`;
  const LINES_FS = `
    precision mediump float; varying vec3 vColour; void main() { gl_FragColor = vec4(vColour, 1.0); }`;
  vr.shaders = { FACE_VS, FACE_FS, LINES_VS, LINES_FS };

  /* Helpers bound to one context `gl`. */
  vr.glKit = function (gl) {
    function program(vs, fs) {
      const p = gl.createProgram();
      for (const [type, src] of [[gl.VERTEX_SHADER, vs], [gl.FRAGMENT_SHADER, fs]]) {
        const s = gl.createShader(type);
        gl.shaderSource(s, src);
        gl.compileShader(s);
        if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
        gl.attachShader(p, s);
      }
      gl.bindAttribLocation(p, 0, 'aPos'); // attribute 0 is always an enabled array
      gl.linkProgram(p);
      if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(p));
      const loc = {};
      const na = gl.getProgramParameter(p, gl.ACTIVE_ATTRIBUTES), nu = gl.getProgramParameter(p, gl.ACTIVE_UNIFORMS);
      for (let i = 0; i < na; i++) { const n = gl.getActiveAttrib(p, i).name; loc[n] = gl.getAttribLocation(p, n); }
      for (let i = 0; i < nu; i++) { const n = gl.getActiveUniform(p, i).name; loc[n] = gl.getUniformLocation(p, n); }
      return { p, loc };
    }
    function buffer(data, usage) {
      const b = gl.createBuffer(); gl.bindBuffer(gl.ARRAY_BUFFER, b); gl.bufferData(gl.ARRAY_BUFFER, data, usage || gl.STATIC_DRAW); return b;
    }
    function makeTexture(width, height) {
      const t = gl.createTexture();
      gl.bindTexture(gl.TEXTURE_2D, t);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
      if (width) gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGB, width, height, 0, gl.RGB, gl.UNSIGNED_BYTE, null);
      return t;
    }
    return { program, buffer, makeTexture };
  };
})(Sosie.vr);
