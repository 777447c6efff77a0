/* Sosie 3-D view: every face as a textured quad (instanced, facing the viewer) at its 3-D PCA
   position, orbit controls, and an "Enter VR" button (WebXR immersive-vr, one render pass per
   eye). The far cloud is drawn from one small atlas (data/atlas3d.js); near the viewer and along
   the controller rays, faces are drawn from the 64-128 px sheets, streamed in sheet by sheet
   (each sheet is a compact cluster in 3-D) into one detail texture of fixed size: the texture
   budget is allocated once, at load, and never grows. Raw WebGL 1 + ANGLE_instanced_arrays, so
   it runs on headset browsers and on software renderers alike. */
'use strict';
(function () {
  const M = Sosie.meta;
  const ATLAS = window.SOSIE_ATLAS;
  const N = M.count;
  const XYZ = Sosie.points.xyz;
  const CLUSTER = Sosie.points.cluster;
  const canvas = document.getElementById('gl');
  const stage = document.getElementById('stage');
  const vrButton = document.getElementById('enter-vr');
  const vrNote = document.getElementById('vr-note');
  const panel = {
    selected: document.getElementById('selected'), mark: document.getElementById('mark'),
    axes: document.getElementById('axes'), clusters: document.getElementById('clusters'),
  };
  document.title = M.title + ' · 3-D';
  document.getElementById('title').textContent = M.title;
  document.getElementById('count').textContent = N.toLocaleString('en') + ' faces';

  const gl = canvas.getContext('webgl', { antialias: true, xrCompatible: true, alpha: false });
  const state = { frames: 0, ready: false, error: null, timings: { script: performance.now() } };
  window.sosie3d = state;
  const instancing = gl && gl.getExtension('ANGLE_instanced_arrays');
  if (!gl || !instancing) {
    state.error = gl ? 'WebGL instanced drawing is not available' : 'WebGL is not available';
    stage.append(Sosie.el('p', { class: 'note', style: 'position:absolute;top:60px;left:14px' },
      'This browser cannot draw WebGL, so the 3-D view is unavailable. The 2-D map still works.'));
    vrNote.textContent = 'needs WebGL';
    return;
  }

  const atlasImage = new Image(); // decoding starts now, while the buffers are made
  atlasImage.src = ATLAS.src;

  /* ---- small matrix helpers (column-major, like WebGL and WebXR) ------------------------ */
  const mat = {
    identity: () => new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]),
    multiply(a, b) {
      const o = new Float32Array(16);
      for (let c = 0; c < 4; c++) for (let r = 0; r < 4; r++) {
        let s = 0;
        for (let k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
        o[c * 4 + r] = s;
      }
      return o;
    },
    perspective(fovy, aspect, near, far) {
      const f = 1 / Math.tan(fovy / 2), nf = 1 / (near - far);
      return new Float32Array([f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) * nf, -1, 0, 0, 2 * far * near * nf, 0]);
    },
    lookAt(eye, at, up) {
      let zx = eye[0] - at[0], zy = eye[1] - at[1], zz = eye[2] - at[2];
      let l = Math.hypot(zx, zy, zz); zx /= l; zy /= l; zz /= l;
      let xx = up[1] * zz - up[2] * zy, xy = up[2] * zx - up[0] * zz, xz = up[0] * zy - up[1] * zx;
      l = Math.hypot(xx, xy, xz); xx /= l; xy /= l; xz /= l;
      const yx = zy * xz - zz * xy, yy = zz * xx - zx * xz, yz = zx * xy - zy * xx;
      return new Float32Array([xx, yx, zx, 0, xy, yy, zy, 0, xz, yz, zz, 0,
        -(xx * eye[0] + xy * eye[1] + xz * eye[2]), -(yx * eye[0] + yy * eye[1] + yz * eye[2]),
        -(zx * eye[0] + zy * eye[1] + zz * eye[2]), 1]);
    },
    translate: (x, y, z) => new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, x, y, z, 1]),
    scale: (s) => new Float32Array([s, 0, 0, 0, 0, s, 0, 0, 0, 0, s, 0, 0, 0, 0, 1]),
    rotateY(a) { const c = Math.cos(a), s = Math.sin(a); return new Float32Array([c, 0, -s, 0, 0, 1, 0, 0, s, 0, c, 0, 0, 0, 0, 1]); },
  };
  const transform = (m, p) => [
    m[0] * p[0] + m[4] * p[1] + m[8] * p[2] + m[12], m[1] * p[0] + m[5] * p[1] + m[9] * p[2] + m[13],
    m[2] * p[0] + m[6] * p[1] + m[10] * p[2] + m[14], m[3] * p[0] + m[7] * p[1] + m[11] * p[2] + m[15]];

  /* ---- GL programs ---------------------------------------------------------------------- */
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
  const quads = program(FACE_VS, FACE_FS);
  const points = program('#define POINTS\n' + FACE_VS, '#define POINTS\n' + FACE_FS);
  const maxPoint = gl.getParameter(gl.ALIASED_POINT_SIZE_RANGE)[1];
  const POINT_PX = Math.min(48, maxPoint / 2); // sheets whose faces all stay below: points
  const lines = program(`
    attribute vec3 aPos; attribute vec3 aColour; uniform mat4 uProj, uView, uModel; varying vec3 vColour;
    void main() { gl_Position = uProj * uView * uModel * vec4(aPos, 1.0); vColour = aColour; }`, `
    precision mediump float; varying vec3 vColour; void main() { gl_FragColor = vec4(vColour, 1.0); }`);

  /* ---- instances: the faces in sheet order (a sheet's faces are one run), then the marks - */
  const P = Sosie.points;
  const PER = M.sheets.columns * M.sheets.columns;
  const SHEETS = Math.ceil(N / PER);
  const MARKS = M.marks || [];
  const total = N + MARKS.length;
  const pos = new Float32Array(3 * total);
  pos.set(XYZ);
  MARKS.forEach((mark, k) => pos.set(mark.xyz, 3 * (N + k)));
  const order = new Uint32Array(N);
  for (let i = 0; i < N; i++) order[P.place[i]] = i;
  function buffer(data, usage) {
    const b = gl.createBuffer(); gl.bindBuffer(gl.ARRAY_BUFFER, b); gl.bufferData(gl.ARRAY_BUFFER, data, usage || gl.STATIC_DRAW); return b;
  }
  /* Per-instance data of faces `list` (index N + k: mark k): x y z atlas-cell cluster place. */
  function instanceSet(list, slots, usage) {
    const n = list.length, f = new Float32Array(6 * n), c = new Uint8Array(3 * n);
    for (let k = 0; k < n; k++) {
      const i = list[k];
      f[6 * k] = pos[3 * i]; f[6 * k + 1] = pos[3 * i + 1]; f[6 * k + 2] = pos[3 * i + 2];
      f[6 * k + 3] = i;
      f[6 * k + 4] = i < N && CLUSTER ? CLUSTER[i] : -1;
      f[6 * k + 5] = i < N ? P.place[i] : -1;
      c[3 * k] = P.rgb[3 * i]; c[3 * k + 1] = P.rgb[3 * i + 1]; c[3 * k + 2] = P.rgb[3 * i + 2];
    }
    return { count: n, f: buffer(f, usage), c: buffer(c, usage), slot: buffer(slots, usage || gl.DYNAMIC_DRAW) };
  }
  const cloud = instanceSet(order, new Float32Array(N).fill(-1));
  const corners = buffer(new Float32Array([-0.5, -0.5, 0.5, -0.5, -0.5, 0.5, 0.5, 0.5]));
  state.timings.buffers = performance.now();
  let highlight = null, highlightGroups = [];
  const axisLength = 1.25;
  const axisData = new Float32Array([
    -axisLength, 0, 0, 0.6, 0.2, 0.2, axisLength, 0, 0, 1, 0.35, 0.35,
    0, -axisLength, 0, 0.2, 0.6, 0.2, 0, axisLength, 0, 0.35, 1, 0.35,
    0, 0, -axisLength, 0.2, 0.3, 0.7, 0, 0, axisLength, 0.4, 0.55, 1]);
  const bufAxes = buffer(axisData);

  /* ---- textures: the atlas (every face, small) and the detail slots (fixed budget) ------- */
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
  gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, false);
  gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
  const texture = makeTexture(0, 0);
  atlasImage.onload = () => {
    gl.bindTexture(gl.TEXTURE_2D, texture);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGB, gl.RGB, gl.UNSIGNED_BYTE, atlasImage);
    state.ready = true;
    state.timings.texture = performance.now();
    requestDraw();
  };
  const faceSize = 0.9 * Math.cbrt(8 / Math.max(N, 1)) * 0.5; // world size of one face quad

  /* Detail near the viewer: sheets (16x16 faces at M.sheets.face px, a compact cluster in 3-D
     each) stream into slots of one texture allocated once. Every frame each sheet is scored by
     the on-screen size of a face at its nearest point (doubled along a controller ray); the
     best sheets above DETAIL_MIN_PX get slots, evicting the worst resident sheets no longer
     wanted, two loads at a time. WebGL refuses images read from file:// (each file is its own
     origin), so from files the view keeps the atlas only. */
  const sheetSide = M.sheets.face * M.sheets.columns;
  const detailSide = Math.min(4096, gl.getParameter(gl.MAX_TEXTURE_SIZE));
  const slotCols = Math.max(0, Math.floor(detailSide / sheetSide));
  const DETAIL_MIN_PX = 2 * ATLAS.cell; // below this the atlas cell is sharp enough
  const detail = {
    enabled: location.protocol !== 'file:' && slotCols > 0,
    side: detailSide, slots: slotCols * slotCols, slotCols,
    owner: new Int32Array(slotCols * slotCols).fill(-1), // sheet held by each slot
    pending: new Uint8Array(slotCols * slotCols),
    slotOf: new Int32Array(SHEETS).fill(-1), // slot of each sheet (loading or resident)
    score: new Float32Array(SHEETS), failed: new Set(),
    loading: 0, loads: 0, evictions: 0, peak: 0,
  };
  let detailTexture = null; // allocated once, after the first frame (the first view comes sooner)
  const bytesOf = (w, h) => w * h * 4; // what a GPU keeps per RGB texel (padded to RGBA)
  state.detail = {
    enabled: detail.enabled, side: detailSide, slots: detail.slots, sheetFaces: PER,
    facePx: M.sheets.face, atlasCellPx: ATLAS.cell, minPx: DETAIL_MIN_PX,
    atlasBytes: bytesOf(ATLAS.size, ATLAS.size),
    detailBytes: detail.enabled ? bytesOf(detailSide, detailSide) : 0,
    get budgetBytes() { return this.atlasBytes + this.detailBytes; },
    get resident() { let r = 0; for (let k = 0; k < detail.slots; k++) r += detail.owner[k] >= 0 && !detail.pending[k]; return r; },
    get loading() { return detail.loading; },
    get loads() { return detail.loads; },
    get evictions() { return detail.evictions; },
    get peak() { return detail.peak; },
    sheets: () => Array.from(detail.owner).filter((s, k) => s >= 0 && !detail.pending[k]),
    /* 'detail' when face i is drawn from its sheet (if large enough on screen), else 'atlas'. */
    source(i) { const b = detail.slotOf[Math.floor(P.place[i] / PER)]; return b >= 0 && !detail.pending[b] ? 'detail' : 'atlas'; },
  };
  if (!detail.enabled) state.detail.reason = slotCols ? 'opened from files: WebGL cannot read the sheets' : 'sheets larger than the texture';

  function setSheetSlot(s, b) {
    const first = s * PER, count = Math.min(PER, N - first);
    gl.bindBuffer(gl.ARRAY_BUFFER, cloud.slot);
    gl.bufferSubData(gl.ARRAY_BUFFER, first * 4, new Float32Array(count).fill(b));
    updateHighlights();
  }
  function loadSheet(s, b) {
    detail.owner[b] = s; detail.slotOf[s] = b; detail.pending[b] = 1; detail.loading++;
    const img = new Image();
    img.src = 'sheets/' + s + '.jpg';
    img.decode().then(() => {
      if (detail.owner[b] !== s) return;
      gl.bindTexture(gl.TEXTURE_2D, detailTexture);
      gl.texSubImage2D(gl.TEXTURE_2D, 0, (b % slotCols) * sheetSide, Math.floor(b / slotCols) * sheetSide,
        gl.RGB, gl.UNSIGNED_BYTE, img);
      detail.pending[b] = 0;
      detail.loads++;
      detail.peak = Math.max(detail.peak, state.detail.resident);
      setSheetSlot(s, b);
    }).catch(() => {
      detail.failed.add(s);
      if (detail.owner[b] === s) { detail.owner[b] = -1; detail.slotOf[s] = -1; detail.pending[b] = 0; }
    }).finally(() => {
      detail.loading--;
      if (lastPlan) planDetail(...lastPlan); // the next sheet now, not a (slow) frame later
      requestDraw();
    });
  }
  function evictSlot(b) {
    const s = detail.owner[b];
    detail.owner[b] = -1; detail.slotOf[s] = -1;
    detail.evictions++;
    setSheetSlot(s, -1);
  }
  /* eye, forward: model space; fpx: pixels per unit at distance 1; rays: [[o, d], ...]. */
  let lastPlan = null;
  function planDetail(eye, forward, fpx, rays) {
    if (!detail.enabled || !state.ready || !state.timings.firstFrame) return;
    lastPlan = [eye, forward, fpx, rays];
    if (!detailTexture) detailTexture = makeTexture(detailSide, detailSide);
    const B = P.bricks, score = detail.score, size = faceSize * grow;
    const wanted = [];
    for (let s = 0; s < SHEETS; s++) {
      const cx = B[4 * s], cy = B[4 * s + 1], cz = B[4 * s + 2], r = B[4 * s + 3];
      const vx = cx - eye[0], vy = cy - eye[1], vz = cz - eye[2];
      const d = Math.hypot(vx, vy, vz);
      // the largest a face of the sheet can be on screen; ties (the viewer inside several
      // sheets' spheres) go to the nearest centre
      let px = size * fpx / Math.max(d - r, size) + 1 / (1 + d);
      if (vx * forward[0] + vy * forward[1] + vz * forward[2] < -r) px *= 0.25; // behind
      for (const [o, dir] of rays) {
        const wx = cx - o[0], wy = cy - o[1], wz = cz - o[2];
        const t = wx * dir[0] + wy * dir[1] + wz * dir[2];
        if (t > -r && wx * wx + wy * wy + wz * wz - t * t < (r + 2 * size) * (r + 2 * size)) { px *= 2; break; }
      }
      score[s] = px;
      if (px >= DETAIL_MIN_PX && !detail.failed.has(s)) wanted.push(s);
    }
    wanted.sort((a, b) => score[b] - score[a]);
    if (wanted.length > detail.slots) wanted.length = detail.slots;
    const keep = new Set(wanted);
    for (const s of wanted) {
      if (detail.slotOf[s] >= 0) continue;
      if (detail.loading >= 2) break;
      let b = detail.owner.indexOf(-1);
      if (b < 0) {
        let worst = Infinity;
        for (let k = 0; k < detail.slots; k++) {
          const o = detail.owner[k];
          if (o >= 0 && !detail.pending[k] && !keep.has(o) && score[o] < worst) { worst = score[o]; b = k; }
        }
        if (b < 0 || worst * 1.25 >= score[s]) break; // hysteresis: no swapping back and forth
        evictSlot(b);
      }
      loadSheet(s, b);
    }
  }
  /* ---- camera and scene ----------------------------------------------------------------- */
  const orbit = { yaw: 0.6, pitch: 0.25, distance: 2.7, target: [0, 0, 0] };
  let spin = true, tint = false, grow = 1, selected = -1, neighbours = [];
  let width = 1, height = 1, dpr = 1;

  const FACE_ATTRIBUTES = ['aPos', 'aIdx', 'aCluster', 'aPlace', 'aRgb', 'aSlot'];
  /* Point the per-face attributes of `prog` at `set`, from face `first` on: one face per
     instance of a quad (divisor 1) or per vertex (points, divisor 0). */
  function bindFaces(prog, set, first, divisor) {
    const L = prog.loc;
    gl.bindBuffer(gl.ARRAY_BUFFER, set.f);
    [['aPos', 3, 0], ['aIdx', 1, 12], ['aCluster', 1, 16], ['aPlace', 1, 20]].forEach(([name, n, offset]) => {
      gl.enableVertexAttribArray(L[name]); gl.vertexAttribPointer(L[name], n, gl.FLOAT, false, 24, offset + 24 * first);
    });
    gl.bindBuffer(gl.ARRAY_BUFFER, set.c);
    gl.enableVertexAttribArray(L.aRgb); gl.vertexAttribPointer(L.aRgb, 3, gl.UNSIGNED_BYTE, true, 3, 3 * first);
    gl.bindBuffer(gl.ARRAY_BUFFER, set.slot);
    gl.enableVertexAttribArray(L.aSlot); gl.vertexAttribPointer(L.aSlot, 1, gl.FLOAT, false, 0, 4 * first);
    for (const name of FACE_ATTRIBUTES) instancing.vertexAttribDivisorANGLE(L[name], divisor);
    if (L.aCorner !== undefined) {
      gl.bindBuffer(gl.ARRAY_BUFFER, corners);
      gl.enableVertexAttribArray(L.aCorner); gl.vertexAttribPointer(L.aCorner, 2, gl.FLOAT, false, 0, 0);
      instancing.vertexAttribDivisorANGLE(L.aCorner, 0);
    }
  }
  function unbindFaces(prog) {
    for (const name of FACE_ATTRIBUTES) {
      instancing.vertexAttribDivisorANGLE(prog.loc[name], 0);
      if (prog.loc[name] !== 0) gl.disableVertexAttribArray(prog.loc[name]);
    }
    if (prog.loc.aCorner !== undefined) gl.disableVertexAttribArray(prog.loc.aCorner);
  }
  function faceUniforms(prog, proj, viewM, model, viewportHeight) {
    const L = prog.loc;
    gl.useProgram(prog.p);
    gl.uniform1i(L.uAtlas, 0); gl.uniform1i(L.uDetail, 1);
    gl.uniformMatrix4fv(L.uProj, false, proj); gl.uniformMatrix4fv(L.uView, false, viewM); gl.uniformMatrix4fv(L.uModel, false, model);
    const modelScale = Math.hypot(model[0], model[1], model[2]);
    gl.uniform1f(L.uSize, faceSize * modelScale);
    gl.uniform1f(L.uPx, proj[5] * viewportHeight / 2);
    gl.uniform1f(L.uMinPx, 1.5);
    if (L.uMaxPointPx) gl.uniform1f(L.uMaxPointPx, maxPoint);
    gl.uniform1f(L.uCols, ATLAS.columns);
    gl.uniform1f(L.uCell, ATLAS.cell / ATLAS.size);
    gl.uniform1f(L.uAtlasPx, ATLAS.cell);
    gl.uniform1f(L.uSheetCols, M.sheets.columns);
    gl.uniform1f(L.uSlotCols, Math.max(1, slotCols));
    gl.uniform1f(L.uSlotUV, sheetSide / detailSide);
    gl.uniform1f(L.uFaceUV, M.sheets.face / detailSide);
    gl.uniform1f(L.uFacePx, M.sheets.face);
    gl.uniform1f(L.uDetailMinPx, DETAIL_MIN_PX);
    gl.uniform1f(L.uTint, tint ? 1 : 0);
    gl.uniform1f(L.uGrow, grow);
    gl.uniform1f(L.uBorder, 0);
  }
  /* Which sheets are drawn as quads (a face may be large on screen) and which as points, as
     runs of consecutive faces [first, count, quad]; eye in model space. */
  let faceRuns = [[0, N, true]];
  function classifySheets(eye, fpx) {
    const B = P.bricks, size = faceSize * grow, runs = [];
    for (let s = 0; s < SHEETS; s++) {
      const d = Math.hypot(B[4 * s] - eye[0], B[4 * s + 1] - eye[1], B[4 * s + 2] - eye[2]) - B[4 * s + 3];
      const quad = d <= size || size * fpx / d >= POINT_PX;
      const first = s * PER, count = Math.min(PER, N - first), last = runs[runs.length - 1];
      if (last && last[2] === quad) last[1] += count; else runs.push([first, count, quad]);
    }
    faceRuns = runs;
    state.quadFaces = runs.reduce((n, r) => n + (r[2] ? r[1] : 0), 0);
  }
  function drawScene(proj, viewM, model, viewportHeight) {
    gl.enable(gl.DEPTH_TEST);
    // axes
    const A = lines.loc;
    gl.useProgram(lines.p);
    gl.uniformMatrix4fv(A.uProj, false, proj); gl.uniformMatrix4fv(A.uView, false, viewM); gl.uniformMatrix4fv(A.uModel, false, model);
    gl.bindBuffer(gl.ARRAY_BUFFER, bufAxes);
    gl.enableVertexAttribArray(A.aPos); gl.vertexAttribPointer(A.aPos, 3, gl.FLOAT, false, 24, 0);
    gl.enableVertexAttribArray(A.aColour); gl.vertexAttribPointer(A.aColour, 3, gl.FLOAT, false, 24, 12);
    gl.drawArrays(gl.LINES, 0, 6);
    gl.disableVertexAttribArray(A.aColour);
    if (!state.ready) return;
    gl.activeTexture(gl.TEXTURE0); gl.bindTexture(gl.TEXTURE_2D, texture);
    gl.activeTexture(gl.TEXTURE1); gl.bindTexture(gl.TEXTURE_2D, detailTexture || texture);
    gl.activeTexture(gl.TEXTURE0);
    // faces: sheets near the viewer as quads, the others as points
    if (faceRuns.some((r) => !r[2])) {
      faceUniforms(points, proj, viewM, model, viewportHeight);
      bindFaces(points, cloud, 0, 0);
      for (const [first, count, quad] of faceRuns) if (!quad) gl.drawArrays(gl.POINTS, first, count);
      unbindFaces(points);
    }
    const L = quads.loc;
    faceUniforms(quads, proj, viewM, model, viewportHeight);
    for (const [first, count, quad] of faceRuns) {
      if (!quad) continue;
      bindFaces(quads, cloud, first, 1); // instanced draws start at instance 0: offset the data
      instancing.drawArraysInstancedANGLE(gl.TRIANGLE_STRIP, 0, 4, count);
    }
    // highlighted: mark, selection, neighbours (drawn larger, framed, on top)
    if (highlight) {
      gl.disable(gl.DEPTH_TEST);
      for (const g of highlightGroups) {
        gl.uniform1f(L.uGrow, grow * g.grow);
        gl.uniform1f(L.uBorder, g.border);
        gl.uniform3fv(L.uBorderColour, g.colour);
        bindFaces(quads, highlight, g.first, 1);
        instancing.drawArraysInstancedANGLE(gl.TRIANGLE_STRIP, 0, 4, g.count);
      }
    }
    unbindFaces(quads);
  }
  function updateHighlights() {
    const items = [];
    const groups = [];
    const add = (list, grow, border, colour) => {
      if (!list.length) return;
      groups.push({ first: items.length, count: list.length, grow, border, colour });
      items.push(...list);
    };
    add(neighbours, 1.6, 2, [1, 0.76, 0.29]);
    add(selected >= 0 ? [selected] : [], 2.4, 3, [1, 1, 1]);
    add(MARKS.map((_, k) => N + k), 1.8, 3, [1, 0.23, 0.36]);
    if (highlight) [highlight.f, highlight.c, highlight.slot].forEach((b) => gl.deleteBuffer(b));
    highlight = null;
    highlightGroups = groups;
    if (!items.length) return;
    const slots = Float32Array.from(items, (i) => {
      if (i >= N) return -1;
      const b = detail.slotOf[Math.floor(P.place[i] / PER)];
      return b >= 0 && !detail.pending[b] ? b : -1;
    });
    highlight = instanceSet(items, slots, gl.DYNAMIC_DRAW);
  }
  updateHighlights();

  function cameraMatrices() {
    const cp = Math.cos(orbit.pitch), t = orbit.target;
    const eye = [t[0] + orbit.distance * cp * Math.sin(orbit.yaw), t[1] + orbit.distance * Math.sin(orbit.pitch),
      t[2] + orbit.distance * cp * Math.cos(orbit.yaw)];
    return {
      eye,
      proj: mat.perspective(50 * Math.PI / 180, width / height, 0.005, 100),
      view: mat.lookAt(eye, t, [0, 1, 0]),
      model: mat.identity(),
    };
  }

  /* ---- desktop render loop -------------------------------------------------------------- */
  const labels = M.pca.axes.map((axis, a) => {
    const el = Sosie.el('div', { class: 'label3d', style: 'color:' + ['#ff8a8a', '#8aff8a', '#8ab4ff'][a] },
      axis.name + ' ' + Sosie.percent(axis.ratio));
    stage.append(el);
    return el;
  });
  const markLabels = MARKS.map((mark) => Sosie.el('div', { class: 'label3d', style: 'color:#ff3b5c' }, mark.label));
  markLabels.forEach((el) => stage.append(el));
  let pending = false, last = performance.now(), xrSession = null;
  const frameLog = { intervals: [], draws: [] }; // the last 240 frames (bench/map.py)
  state.frameLog = frameLog;
  function logFrame(interval, draw) {
    frameLog.intervals.push(interval); frameLog.draws.push(draw);
    if (frameLog.intervals.length > 240) { frameLog.intervals.shift(); frameLog.draws.shift(); }
  }
  function requestDraw() { if (!pending && !xrSession) { pending = true; requestAnimationFrame(frame); } }
  function place(el, m, p) {
    const c = transform(m, p);
    const x = (c[0] / c[3] + 1) / 2 * width + (el.dataset.dx ? +el.dataset.dx : 4);
    const y = (1 - c[1] / c[3]) / 2 * height;
    el.hidden = c[3] <= 0 || x < 0 || y < 0 || x > width - 40 || y > height - 10; // on the canvas only
    if (el.hidden) return;
    el.style.left = x + 'px';
    el.style.top = y + 'px';
  }
  function frame(now) {
    pending = false;
    if (xrSession) return;
    const dt = Math.min(100, now - last);
    logFrame(now - last, 0);
    last = now;
    const t0 = performance.now();
    if (spin) orbit.yaw += dt * 0.00012;
    resize();
    gl.bindFramebuffer(gl.FRAMEBUFFER, null);
    gl.viewport(0, 0, canvas.width, canvas.height);
    gl.clearColor(0.067, 0.067, 0.067, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    const cam = cameraMatrices();
    const fwd = orbit.target.map((v, k) => v - cam.eye[k]), len = Math.hypot(...fwd);
    planDetail(cam.eye, fwd.map((v) => v / len), cam.proj[5] * canvas.height / 2, []);
    classifySheets(cam.eye, cam.proj[5] * canvas.height / 2);
    drawScene(cam.proj, cam.view, cam.model, canvas.height);
    const vp = mat.multiply(cam.proj, cam.view);
    labels.forEach((el, a) => { const p = [0, 0, 0]; p[a] = axisLength * 1.04; place(el, vp, p); });
    markLabels.forEach((markLabel, k) => {
      markLabel.dataset.dx = Math.min(128, 0.9 * grow * faceSize * cam.proj[5] * height / 2 /
        Math.max(0.05, transform(vp, MARKS[k].xyz)[3])) + 6;
      place(markLabel, vp, MARKS[k].xyz);
    });
    frameLog.draws[frameLog.draws.length - 1] = performance.now() - t0;
    state.frames++;
    if (state.ready && !state.timings.firstFrame) {
      gl.finish();
      state.timings.firstFrame = performance.now();
    }
    if (spin || flight || detail.loading || (detail.enabled && !detailTexture)) requestDraw();
  }
  function resize() {
    dpr = window.devicePixelRatio || 1;
    const r = canvas.getBoundingClientRect();
    width = Math.max(1, r.width); height = Math.max(1, r.height);
    const w = Math.round(width * dpr), h = Math.round(height * dpr);
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  }
  new ResizeObserver(requestDraw).observe(canvas);

  /* ---- picking and selection ------------------------------------------------------------ */
  function pick(sx, sy) {
    const cam = cameraMatrices();
    const m = mat.multiply(cam.proj, cam.view);
    const f = cam.proj[5] * height / 2;
    let best = -1, bestDepth = Infinity;
    for (let i = 0; i < total; i++) {
      const x = pos[3 * i], y = pos[3 * i + 1], z = pos[3 * i + 2];
      const w = m[3] * x + m[7] * y + m[11] * z + m[15];
      if (w <= 0.005) continue;
      const px = ((m[0] * x + m[4] * y + m[8] * z + m[12]) / w + 1) / 2 * width;
      const py = (1 - (m[1] * x + m[5] * y + m[9] * z + m[13]) / w) / 2 * height;
      const half = Math.max(4, grow * faceSize * f / w / 2);
      if (Math.abs(px - sx) <= half && Math.abs(py - sy) <= half && w < bestDepth) { best = i; bestDepth = w; }
    }
    return best;
  }
  let flight = null;
  /* Fly to face i; `distance`: the camera's distance to it at the end (default: 1.2 at most). */
  function lookAt(i, distance) {
    const from = orbit.target.slice(), to = [pos[3 * i], pos[3 * i + 1], pos[3 * i + 2]];
    const d0 = orbit.distance, d1 = distance || Math.min(d0, 1.2);
    const start = performance.now();
    flight = true;
    (function step(now) {
      const t = Math.min(1, (now - start) / 700), e = t * t * (3 - 2 * t);
      orbit.target = from.map((v, k) => v + (to[k] - v) * e);
      orbit.distance = d0 + (d1 - d0) * e;
      requestDraw();
      if (t < 1) requestAnimationFrame(step); else flight = null;
    })(start);
  }
  async function select(i, fly) {
    selected = i >= N ? -1 : i;
    neighbours = [];
    updateHighlights();
    requestDraw();
    if (i >= N) { lookAt(i); return; }
    if (i < 0) {
      panel.selected.replaceChildren(Sosie.el('p', { class: 'muted' }, 'Click a face to see it large with its nearest neighbours.'));
      return;
    }
    if (fly) lookAt(i);
    const face = await Sosie.showFace(panel.selected, i, (j) => select(j, true));
    if (selected === i) { neighbours = face.neighbours.map((nb) => nb.index); updateHighlights(); requestDraw(); }
  }

  /* ---- orbit controls (mouse, touch, keys) ---------------------------------------------- */
  const pointers = new Map();
  let moved = 0, pinch = 0;
  canvas.addEventListener('contextmenu', (e) => e.preventDefault());
  canvas.addEventListener('pointerdown', (e) => {
    canvas.setPointerCapture(e.pointerId);
    pointers.set(e.pointerId, { x: e.offsetX, y: e.offsetY, pan: e.button === 2 || e.shiftKey });
    moved = pointers.size > 1 ? 99 : 0;
    pinch = 0;
    spin = false; document.getElementById('spin').checked = false;
  });
  canvas.addEventListener('pointermove', (e) => {
    const p = pointers.get(e.pointerId);
    if (!p) return;
    const dx = e.offsetX - p.x, dy = e.offsetY - p.y;
    p.x = e.offsetX; p.y = e.offsetY;
    moved += Math.abs(dx) + Math.abs(dy);
    if (pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      const d = Math.hypot(a.x - b.x, a.y - b.y);
      if (pinch) orbit.distance = Math.min(20, Math.max(0.01, orbit.distance * pinch / d));
      pinch = d;
    } else if (p.pan) {
      const k = orbit.distance / height;
      const cy = Math.cos(orbit.yaw), sy = Math.sin(orbit.yaw);
      orbit.target[0] -= dx * k * cy; orbit.target[2] += dx * k * sy; orbit.target[1] += dy * k;
    } else {
      orbit.yaw -= dx * 0.006;
      orbit.pitch = Math.max(-1.5, Math.min(1.5, orbit.pitch + dy * 0.006));
    }
    requestDraw();
  });
  const release = (e) => {
    if (!pointers.delete(e.pointerId)) return;
    pinch = 0;
    if (e.type === 'pointerup' && !pointers.size && moved < 5) {
      const i = pick(e.offsetX, e.offsetY);
      if (i >= 0 || selected >= 0) select(i, false);
    }
  };
  canvas.addEventListener('pointerup', release);
  canvas.addEventListener('pointercancel', release);
  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    orbit.distance = Math.min(20, Math.max(0.01, orbit.distance * Math.exp(e.deltaY * 0.0012)));
    requestDraw();
  }, { passive: false });
  document.getElementById('spin').onchange = (e) => { spin = e.target.checked; requestDraw(); };
  const tintBox = document.getElementById('tint');
  if (CLUSTER) tintBox.onchange = () => { tint = tintBox.checked; requestDraw(); };
  else tintBox.parentElement.hidden = true;
  document.getElementById('size').oninput = (e) => { grow = Math.pow(2, +e.target.value); requestDraw(); };

  /* ---- panel ---------------------------------------------------------------------------- */
  const pickAndFly = (i) => select(i, true);
  Sosie.describeAxes(panel.axes, pickAndFly, 3);
  if (!Sosie.describeClusters(panel.clusters, pickAndFly)) panel.clusters.closest('details').hidden = true;
  if (!Sosie.showMark(panel.mark, pickAndFly, (k) => select(N + k, true))) panel.mark.closest('details').hidden = true;
  select(-1);

  /* ---- WebXR ---------------------------------------------------------------------------- */
  /* The cloud stands before the viewer: model = translate(centre + offset) rotateY(yaw)
     scale(scale). Trigger (select): pick the first face along that controller's ray. Grip
     (squeeze) held: moving the hand sideways turns the cloud. Right thumbstick: up/down scales,
     left/right turns; left thumbstick: moves through the cloud (forward/back where the head
     looks, sideways). */
  const xr = { space: null, floor: false, yaw: 0, scale: 0.55, offset: [0, 0, 0], grab: null,
    head: [0, 0, 0], views: [], sessions: 0 };
  state.xr = xr;
  function disableVR(reason) { vrButton.disabled = true; vrNote.textContent = reason; state.vr = reason; }
  async function checkXR() {
    if (!navigator.xr) {
      disableVR(window.isSecureContext ? 'VR unavailable: this browser has no WebXR (open the page in a headset browser).'
        : 'VR unavailable: WebXR needs https:// or localhost.');
      return;
    }
    let supported = false;
    try { supported = await navigator.xr.isSessionSupported('immersive-vr'); } catch (err) { supported = false; }
    if (!supported) { disableVR('VR unavailable: no immersive-vr headset found by WebXR.'); return; }
    vrButton.disabled = false;
    vrNote.textContent = 'headset ready';
    state.vr = 'available';
  }
  function xrCentre() {
    return [xr.offset[0], (xr.floor ? 1.35 : 0) + xr.offset[1], -1.1 + xr.offset[2]];
  }
  /* A point (w = 1) or direction (w = 0) of the reference space in model space. */
  function toModel(p, w) {
    const c = Math.cos(-xr.yaw), s = Math.sin(-xr.yaw), centre = xrCentre();
    const r = w ? [p[0] - centre[0], p[1] - centre[1], p[2] - centre[2]] : p;
    const k = w ? 1 / xr.scale : 1;
    return [(c * r[0] + s * r[2]) * k, r[1] * k, (-s * r[0] + c * r[2]) * k];
  }
  function rayOf(frameXR, source) {
    const p = source.targetRaySpace && frameXR.getPose(source.targetRaySpace, xr.space);
    if (!p) return null;
    const m = p.transform.matrix;
    return { o: [m[12], m[13], m[14]], d: [-m[8], -m[9], -m[10]] };
  }
  vrButton.addEventListener('click', async () => {
    if (xrSession) { xrSession.end(); return; }
    try {
      const session = await navigator.xr.requestSession('immersive-vr', { optionalFeatures: ['local-floor'] });
      const attributes = gl.getContextAttributes();
      if (!attributes || !attributes.xrCompatible) {
        await Promise.race([gl.makeXRCompatible(), new Promise((_, fail) => setTimeout(
          () => fail(new Error('the graphics context did not become XR-compatible')), 8000))]);
      }
      session.updateRenderState({ baseLayer: new XRWebGLLayer(session, gl), depthNear: 0.005, depthFar: 50 });
      try { xr.space = await session.requestReferenceSpace('local-floor'); xr.floor = true; }
      catch (err) { xr.space = await session.requestReferenceSpace('local'); xr.floor = false; }
      xrSession = session;
      xr.sessions++;
      xr.grab = null;
      vrButton.textContent = 'Exit VR';
      session.addEventListener('end', () => {
        xrSession = null; xr.grab = null; xr.views = [];
        vrButton.textContent = 'Enter VR';
        requestDraw();
      });
      session.addEventListener('select', (e) => { // the trigger: pick along this ray
        const ray = rayOf(e.frame, e.inputSource);
        if (ray) pickRay(ray.o, ray.d);
      });
      session.addEventListener('squeezestart', (e) => {
        xr.grab = { source: e.inputSource, x: null, yaw: xr.yaw };
      });
      session.addEventListener('squeezeend', (e) => { if (xr.grab && xr.grab.source === e.inputSource) xr.grab = null; });
      session.requestAnimationFrame(onXRFrame);
    } catch (err) {
      vrNote.textContent = 'could not start VR: ' + err.message;
    }
  });
  let lastXR = 0;
  function onXRFrame(time, frameXR) {
    const session = frameXR.session;
    session.requestAnimationFrame(onXRFrame);
    const t0 = performance.now();
    const dt = lastXR ? Math.min(0.1, (time - lastXR) / 1000) : 0;
    if (lastXR) logFrame(time - lastXR, 0);
    lastXR = time;
    const pose = frameXR.getViewerPose(xr.space);
    if (!pose) return;
    const hp = pose.transform.position, hm = pose.transform.matrix;
    xr.head = [hp.x, hp.y, hp.z];
    for (const source of session.inputSources) { // thumbsticks
      const axes = source.gamepad && source.gamepad.axes;
      if (!axes || axes.length < 4) continue;
      const x = Math.abs(axes[2]) > 0.15 ? axes[2] : 0, y = Math.abs(axes[3]) > 0.15 ? axes[3] : 0;
      if (source.handedness === 'left') { // move where the head looks (level), and sideways
        const fx = -hm[8], fz = -hm[10], fl = Math.hypot(fx, fz) || 1;
        const speed = 0.8 * dt;
        xr.offset[0] -= (fx / fl * -y + -fz / fl * x) * speed;
        xr.offset[2] -= (fz / fl * -y + fx / fl * x) * speed;
      } else {
        xr.yaw += x * 1.5 * dt;
        xr.scale = Math.min(20, Math.max(0.05, xr.scale * Math.exp(-y * 1.2 * dt)));
      }
    }
    if (xr.grab) { // grip held: move the hand sideways to turn the cloud
      const p = frameXR.getPose(xr.grab.source.gripSpace || xr.grab.source.targetRaySpace, xr.space);
      if (p) {
        const x = p.transform.position.x;
        if (xr.grab.x === null) xr.grab.x = x;
        xr.yaw = xr.grab.yaw + (x - xr.grab.x) * 4;
      }
    }
    const centre = xrCentre();
    const model = mat.multiply(mat.translate(centre[0], centre[1], centre[2]),
      mat.multiply(mat.rotateY(xr.yaw), mat.scale(xr.scale)));
    const rays = [], modelRays = [];
    for (const source of session.inputSources) {
      const ray = rayOf(frameXR, source);
      if (!ray) continue;
      rays.push(ray.o, ray.d);
      modelRays.push([toModel(ray.o, 1), toModel(ray.d, 0)]);
    }
    updateRays(rays);
    const layer = session.renderState.baseLayer;
    const views = pose.views;
    if (views.length) {
      const vp0 = layer.getViewport(views[0]);
      planDetail(toModel(xr.head, 1), toModel([-hm[8], -hm[9], -hm[10]], 0),
        views[0].projectionMatrix[5] * vp0.height / 2, modelRays);
      classifySheets(toModel(xr.head, 1), views[0].projectionMatrix[5] * vp0.height / 2);
    }
    gl.bindFramebuffer(gl.FRAMEBUFFER, layer.framebuffer);
    gl.clearColor(0.04, 0.04, 0.05, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    xr.views = [];
    for (const v of views) {
      const vp = layer.getViewport(v);
      gl.viewport(vp.x, vp.y, vp.width, vp.height);
      drawScene(v.projectionMatrix, v.transform.inverse.matrix, model, vp.height);
      drawRays(v.projectionMatrix, v.transform.inverse.matrix);
      xr.views.push({ eye: v.eye, x: vp.x, y: vp.y, width: vp.width, height: vp.height });
    }
    if (frameLog.draws.length) frameLog.draws[frameLog.draws.length - 1] = performance.now() - t0;
    state.frames++;
  }
  /* The face hit by a ray (origin o, direction d, reference space): the first one along it. */
  function pickRay(o, d) {
    const om = toModel(o, 1);
    let dm = toModel(d, 0);
    const len = Math.hypot(dm[0], dm[1], dm[2]);
    dm = dm.map((v) => v / len);
    const reach = faceSize * grow * 0.6;
    let best = -1, bestT = Infinity;
    for (let i = 0; i < N; i++) {
      const vx = pos[3 * i] - om[0], vy = pos[3 * i + 1] - om[1], vz = pos[3 * i + 2] - om[2];
      const t = vx * dm[0] + vy * dm[1] + vz * dm[2];
      if (t <= 0 || t >= bestT) continue;
      if (vx * vx + vy * vy + vz * vz - t * t < reach * reach) { best = i; bestT = t; }
    }
    state.xrPicked = best;
    select(best, false);
  }
  const rayBuffer = gl.createBuffer();
  let rayCount = 0;
  function updateRays(rays) {
    const data = new Float32Array(rays.length * 6);
    for (let r = 0; r < rays.length; r += 2) {
      const o = rays[r], d = rays[r + 1];
      data.set([o[0], o[1], o[2], 0.5, 0.7, 1, o[0] + 3 * d[0], o[1] + 3 * d[1], o[2] + 3 * d[2], 0.1, 0.15, 0.3], r * 6);
    }
    gl.bindBuffer(gl.ARRAY_BUFFER, rayBuffer);
    gl.bufferData(gl.ARRAY_BUFFER, data, gl.DYNAMIC_DRAW);
    rayCount = rays.length;
  }
  function drawRays(proj, viewM) {
    if (!rayCount) return;
    const A = lines.loc;
    gl.useProgram(lines.p);
    gl.uniformMatrix4fv(A.uProj, false, proj); gl.uniformMatrix4fv(A.uView, false, viewM);
    gl.uniformMatrix4fv(A.uModel, false, mat.identity());
    gl.bindBuffer(gl.ARRAY_BUFFER, rayBuffer);
    gl.enableVertexAttribArray(A.aPos); gl.vertexAttribPointer(A.aPos, 3, gl.FLOAT, false, 24, 0);
    gl.enableVertexAttribArray(A.aColour); gl.vertexAttribPointer(A.aColour, 3, gl.FLOAT, false, 24, 12);
    gl.drawArrays(gl.LINES, 0, rayCount);
    gl.disableVertexAttribArray(A.aColour);
  }
  checkXR();
  Object.assign(state, {
    orbit, select, pick, lookAt, draw: requestDraw, faceSize, order,
    setSpin(on) { spin = on; document.getElementById('spin').checked = on; requestDraw(); },
    /* Put the camera at `eye` looking at `target` (model space; tests and the bench). */
    setCamera(eye, target) {
      const v = eye.map((e, k) => e - target[k]), d = Math.hypot(...v);
      orbit.target = target.slice(); orbit.distance = d;
      orbit.yaw = Math.atan2(v[0], v[2]); orbit.pitch = Math.asin(v[1] / d);
      requestDraw();
    },
  });
})();
