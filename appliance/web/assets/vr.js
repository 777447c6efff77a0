/* Sosie 3-D view: every face as a textured point sprite at its 3-D PCA position, orbit
   controls, and an "Enter VR" button (WebXR immersive-vr, one render pass per eye). Raw WebGL 1,
   so it runs on headset browsers and on software renderers alike. */
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
  if (!gl) {
    state.error = 'WebGL is not available';
    stage.append(Sosie.el('p', { class: 'note', style: 'position:absolute;top:60px;left:14px' },
      'This browser cannot draw WebGL, so the 3-D view is unavailable. The 2-D map still works.'));
    vrNote.textContent = 'needs WebGL';
    return;
  }

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
    gl.linkProgram(p);
    if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(p));
    const loc = {};
    const na = gl.getProgramParameter(p, gl.ACTIVE_ATTRIBUTES), nu = gl.getProgramParameter(p, gl.ACTIVE_UNIFORMS);
    for (let i = 0; i < na; i++) { const n = gl.getActiveAttrib(p, i).name; loc[n] = gl.getAttribLocation(p, n); }
    for (let i = 0; i < nu; i++) { const n = gl.getActiveUniform(p, i).name; loc[n] = gl.getUniformLocation(p, n); }
    return { p, loc };
  }
  const sprites = program(`
    precision highp float;
    attribute vec3 aPos; attribute float aIdx; attribute float aCluster; attribute float aGray;
    uniform mat4 uProj, uView, uModel;
    uniform float uSize, uPx, uMaxPx, uCols, uCell, uGrow, uTint;
    varying vec2 vCell; varying vec3 vTint; varying float vPx; varying float vGray;
    vec3 hue(float j) {
      float h = mod(j * 137.508, 360.0) / 60.0;
      vec3 k = clamp(abs(mod(h + vec3(0.0, 4.0, 2.0), 6.0) - 3.0) - 1.0, 0.0, 1.0);
      return mix(vec3(1.0), k, 0.75);
    }
    void main() {
      vec4 eye = uView * uModel * vec4(aPos, 1.0);
      gl_Position = uProj * eye;
      float px = uGrow * uSize * uPx / max(-eye.z, 1e-3);
      gl_PointSize = clamp(px, 1.5, uMaxPx);
      vPx = gl_PointSize;
      float row = floor((aIdx + 0.5) / uCols);
      vCell = vec2(aIdx - row * uCols, row) * uCell;
      vTint = (uTint > 0.5 && aCluster >= 0.0) ? hue(aCluster) : vec3(1.0);
      vGray = aGray;
    }`, `
    #ifdef GL_FRAGMENT_PRECISION_HIGH
    precision highp float;
    #else
    precision mediump float;
    #endif
    uniform sampler2D uAtlas; uniform float uCellUV, uHalfTexel, uBorder; uniform vec3 uBorderColour;
    varying vec2 vCell; varying vec3 vTint; varying float vPx; varying float vGray;
    void main() {
      vec2 c = gl_PointCoord;
      float g = vGray; // level of detail: a few pixels wide, the face is its mean gray
      if (vPx >= 5.0) {
        vec2 uv = vCell + clamp(c * uCellUV, vec2(uHalfTexel), vec2(uCellUV - uHalfTexel));
        g = texture2D(uAtlas, uv).r;
      }
      vec3 colour = g * vTint;
      float edge = min(min(c.x, 1.0 - c.x), min(c.y, 1.0 - c.y)) * vPx;
      if (uBorder > 0.0 && edge < uBorder) colour = uBorderColour;
      gl_FragColor = vec4(colour, 1.0);
    }`);
  const lines = program(`
    attribute vec3 aPos; attribute vec3 aColour; uniform mat4 uProj, uView, uModel; varying vec3 vColour;
    void main() { gl_Position = uProj * uView * uModel * vec4(aPos, 1.0); vColour = aColour; }`, `
    precision mediump float; varying vec3 vColour; void main() { gl_FragColor = vec4(vColour, 1.0); }`);

  /* ---- buffers: the faces, then the mark (atlas cell N) --------------------------------- */
  const total = N + (M.mark ? 1 : 0);
  const pos = new Float32Array(3 * total);
  pos.set(XYZ);
  if (M.mark) pos.set(M.mark.xyz, 3 * N);
  const idx = new Float32Array(total);
  for (let i = 0; i < total; i++) idx[i] = i;
  const cl = new Float32Array(total).fill(-1);
  const grayOf = new Float32Array(total);
  for (let i = 0; i < total; i++) grayOf[i] = Sosie.points.gray[i] / 255;
  if (CLUSTER) for (let i = 0; i < N; i++) cl[i] = CLUSTER[i];
  function buffer(data) { const b = gl.createBuffer(); gl.bindBuffer(gl.ARRAY_BUFFER, b); gl.bufferData(gl.ARRAY_BUFFER, data, gl.STATIC_DRAW); return b; }
  const bufPos = buffer(pos), bufIdx = buffer(idx), bufCl = buffer(cl), bufGray = buffer(grayOf);
  state.timings.buffers = performance.now();
  const highlight = { pos: gl.createBuffer(), idx: gl.createBuffer(), cl: gl.createBuffer(), gray: gl.createBuffer(), groups: [] };
  const axisLength = 1.25;
  const axisData = new Float32Array([
    -axisLength, 0, 0, 0.6, 0.2, 0.2, axisLength, 0, 0, 1, 0.35, 0.35,
    0, -axisLength, 0, 0.2, 0.6, 0.2, 0, axisLength, 0, 0.35, 1, 0.35,
    0, 0, -axisLength, 0.2, 0.3, 0.7, 0, 0, axisLength, 0.4, 0.55, 1]);
  const bufAxes = buffer(axisData);

  const texture = gl.createTexture();
  const atlasImage = new Image();
  atlasImage.onload = () => {
    gl.bindTexture(gl.TEXTURE_2D, texture);
    gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, false);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.LUMINANCE, gl.LUMINANCE, gl.UNSIGNED_BYTE, atlasImage);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    state.ready = true;
    state.timings.texture = performance.now();
    requestDraw();
  };
  atlasImage.src = ATLAS.src;
  const maxPoint = gl.getParameter(gl.ALIASED_POINT_SIZE_RANGE)[1];
  const faceSize = 0.9 * Math.cbrt(8 / Math.max(N, 1)) * 0.5; // world size of one face sprite

  /* ---- camera and scene ----------------------------------------------------------------- */
  const orbit = { yaw: 0.6, pitch: 0.25, distance: 2.7, target: [0, 0, 0] };
  let spin = true, tint = false, grow = 1, selected = -1, neighbours = [];
  let width = 1, height = 1, dpr = 1;

  function bindSprites(prog, bp, bi, bc, bg) {
    const L = prog.loc;
    gl.bindBuffer(gl.ARRAY_BUFFER, bp); gl.enableVertexAttribArray(L.aPos); gl.vertexAttribPointer(L.aPos, 3, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, bi); gl.enableVertexAttribArray(L.aIdx); gl.vertexAttribPointer(L.aIdx, 1, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, bc); gl.enableVertexAttribArray(L.aCluster); gl.vertexAttribPointer(L.aCluster, 1, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, bg); gl.enableVertexAttribArray(L.aGray); gl.vertexAttribPointer(L.aGray, 1, gl.FLOAT, false, 0, 0);
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
    // faces
    const L = sprites.loc;
    gl.useProgram(sprites.p);
    gl.activeTexture(gl.TEXTURE0); gl.bindTexture(gl.TEXTURE_2D, texture); gl.uniform1i(L.uAtlas, 0);
    gl.uniformMatrix4fv(L.uProj, false, proj); gl.uniformMatrix4fv(L.uView, false, viewM); gl.uniformMatrix4fv(L.uModel, false, model);
    const modelScale = Math.hypot(model[0], model[1], model[2]);
    gl.uniform1f(L.uSize, faceSize * modelScale);
    gl.uniform1f(L.uPx, proj[5] * viewportHeight / 2);
    gl.uniform1f(L.uMaxPx, Math.min(maxPoint, 256));
    gl.uniform1f(L.uCols, ATLAS.columns);
    gl.uniform1f(L.uCell, ATLAS.cell / ATLAS.size);
    gl.uniform1f(L.uCellUV, ATLAS.cell / ATLAS.size);
    gl.uniform1f(L.uHalfTexel, 0.5 / ATLAS.size);
    gl.uniform1f(L.uTint, tint ? 1 : 0);
    gl.uniform1f(L.uGrow, grow);
    gl.uniform1f(L.uBorder, 0);
    bindSprites(sprites, bufPos, bufIdx, bufCl, bufGray);
    gl.drawArrays(gl.POINTS, 0, N);
    // highlighted: mark, selection, neighbours (drawn larger, framed, on top)
    gl.disable(gl.DEPTH_TEST);
    bindSprites(sprites, highlight.pos, highlight.idx, highlight.cl, highlight.gray);
    for (const g of highlight.groups) {
      gl.uniform1f(L.uGrow, grow * g.grow);
      gl.uniform1f(L.uBorder, g.border);
      gl.uniform3fv(L.uBorderColour, g.colour);
      gl.drawArrays(gl.POINTS, g.first, g.count);
    }
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
    add(M.mark ? [N] : [], 1.8, 3, [1, 0.23, 0.36]);
    const p = new Float32Array(3 * items.length), x = new Float32Array(items.length), c = new Float32Array(items.length).fill(-1);
    const g = new Float32Array(items.length);
    items.forEach((i, k) => { p.set(pos.subarray(3 * i, 3 * i + 3), 3 * k); x[k] = i; c[k] = cl[i]; g[k] = grayOf[i]; });
    gl.bindBuffer(gl.ARRAY_BUFFER, highlight.pos); gl.bufferData(gl.ARRAY_BUFFER, p, gl.DYNAMIC_DRAW);
    gl.bindBuffer(gl.ARRAY_BUFFER, highlight.idx); gl.bufferData(gl.ARRAY_BUFFER, x, gl.DYNAMIC_DRAW);
    gl.bindBuffer(gl.ARRAY_BUFFER, highlight.cl); gl.bufferData(gl.ARRAY_BUFFER, c, gl.DYNAMIC_DRAW);
    gl.bindBuffer(gl.ARRAY_BUFFER, highlight.gray); gl.bufferData(gl.ARRAY_BUFFER, g, gl.DYNAMIC_DRAW);
    highlight.groups = groups;
  }
  updateHighlights();

  function cameraMatrices() {
    const cp = Math.cos(orbit.pitch), t = orbit.target;
    const eye = [t[0] + orbit.distance * cp * Math.sin(orbit.yaw), t[1] + orbit.distance * Math.sin(orbit.pitch),
      t[2] + orbit.distance * cp * Math.cos(orbit.yaw)];
    return {
      proj: mat.perspective(50 * Math.PI / 180, width / height, 0.02, 100),
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
  const markLabel = M.mark ? Sosie.el('div', { class: 'label3d', style: 'color:#ff3b5c' }, M.mark.label) : null;
  if (markLabel) stage.append(markLabel);
  let pending = false, last = performance.now(), xrSession = null;
  function requestDraw() { if (!pending && !xrSession) { pending = true; requestAnimationFrame(frame); } }
  function place(el, m, p) {
    const c = transform(m, p);
    if (c[3] <= 0) { el.hidden = true; return; }
    el.hidden = false;
    el.style.left = ((c[0] / c[3] + 1) / 2 * width + (el.dataset.dx ? +el.dataset.dx : 4)) + 'px';
    el.style.top = ((1 - c[1] / c[3]) / 2 * height) + 'px';
  }
  function frame(now) {
    pending = false;
    if (xrSession) return;
    const dt = Math.min(100, now - last);
    last = now;
    if (spin) orbit.yaw += dt * 0.00012;
    resize();
    gl.bindFramebuffer(gl.FRAMEBUFFER, null);
    gl.viewport(0, 0, canvas.width, canvas.height);
    gl.clearColor(0.067, 0.067, 0.067, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    const cam = cameraMatrices();
    drawScene(cam.proj, cam.view, cam.model, canvas.height);
    const vp = mat.multiply(cam.proj, cam.view);
    labels.forEach((el, a) => { const p = [0, 0, 0]; p[a] = axisLength * 1.04; place(el, vp, p); });
      if (markLabel) {
      markLabel.dataset.dx = Math.min(128, 0.9 * grow * faceSize * cam.proj[5] * height / 2 /
        Math.max(0.05, transform(vp, M.mark.xyz)[3])) + 6;
      place(markLabel, vp, M.mark.xyz);
    }
    state.frames++;
    if (state.ready && !state.timings.firstFrame) {
      gl.finish();
      state.timings.firstFrame = performance.now();
    }
    if (spin || flight) requestDraw();
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
      if (w <= 0.02) continue;
      const px = ((m[0] * x + m[4] * y + m[8] * z + m[12]) / w + 1) / 2 * width;
      const py = (1 - (m[1] * x + m[5] * y + m[9] * z + m[13]) / w) / 2 * height;
      const half = Math.max(4, Math.min(Math.min(maxPoint, 256) / dpr, grow * faceSize * f / w) / 2);
      if (Math.abs(px - sx) <= half && Math.abs(py - sy) <= half && w < bestDepth) { best = i; bestDepth = w; }
    }
    return best;
  }
  let flight = null;
  function lookAt(i) {
    const from = orbit.target.slice(), to = [pos[3 * i], pos[3 * i + 1], pos[3 * i + 2]];
    const d0 = orbit.distance, d1 = Math.min(d0, 1.2);
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
    if (i >= N) { lookAt(N); return; }
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
      if (pinch) orbit.distance = Math.min(20, Math.max(0.05, orbit.distance * pinch / d));
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
    orbit.distance = Math.min(20, Math.max(0.05, orbit.distance * Math.exp(e.deltaY * 0.0012)));
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
  if (!Sosie.showMark(panel.mark, pickAndFly, () => select(N, true))) panel.mark.closest('details').hidden = true;
  select(-1);

  /* ---- WebXR ---------------------------------------------------------------------------- */
  const xr = { space: null, floor: false, yaw: 0, scale: 0.55, grab: null, pick: null };
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
  vrButton.addEventListener('click', async () => {
    if (xrSession) { xrSession.end(); return; }
    try {
      const session = await navigator.xr.requestSession('immersive-vr', { optionalFeatures: ['local-floor'] });
      const attributes = gl.getContextAttributes();
      if (!attributes || !attributes.xrCompatible) {
        await Promise.race([gl.makeXRCompatible(), new Promise((_, fail) => setTimeout(
          () => fail(new Error('the graphics context did not become XR-compatible')), 8000))]);
      }
      session.updateRenderState({ baseLayer: new XRWebGLLayer(session, gl), depthNear: 0.02, depthFar: 50 });
      try { xr.space = await session.requestReferenceSpace('local-floor'); xr.floor = true; }
      catch (err) { xr.space = await session.requestReferenceSpace('local'); xr.floor = false; }
      xrSession = session;
      vrButton.textContent = 'Exit VR';
      session.addEventListener('end', () => { xrSession = null; vrButton.textContent = 'Enter VR'; requestDraw(); });
      session.addEventListener('selectstart', (e) => {
        xr.grab = { source: e.inputSource, x: null, yaw: xr.yaw, moved: 0, started: performance.now() };
      });
      session.addEventListener('selectend', (e) => { // a short, still press picks a face
        const grab = xr.grab;
        xr.grab = null;
        if (grab && grab.moved < 0.02 && performance.now() - grab.started < 600) xr.pick = e.inputSource;
      });
      session.requestAnimationFrame(onXRFrame);
    } catch (err) {
      vrNote.textContent = 'could not start VR: ' + err.message;
    }
  });
  function onXRFrame(time, frameXR) {
    const session = frameXR.session;
    session.requestAnimationFrame(onXRFrame);
    const pose = frameXR.getViewerPose(xr.space);
    if (!pose) return;
    for (const source of session.inputSources) { // thumbsticks: turn and scale
      const axes = source.gamepad && source.gamepad.axes;
      if (axes && axes.length >= 4) {
        if (Math.abs(axes[2]) > 0.2) xr.yaw += axes[2] * 0.03;
        if (Math.abs(axes[3]) > 0.2) xr.scale = Math.min(5, Math.max(0.1, xr.scale * (1 - axes[3] * 0.02)));
      }
    }
    if (xr.grab) { // hold the trigger and move the hand sideways to turn the cloud
      const p = frameXR.getPose(xr.grab.source.gripSpace || xr.grab.source.targetRaySpace, xr.space);
      if (p) {
        const x = p.transform.position.x;
        if (xr.grab.x === null) xr.grab.x = x;
        xr.grab.moved = Math.max(xr.grab.moved, Math.abs(x - xr.grab.x));
        xr.yaw = xr.grab.yaw + (x - xr.grab.x) * 4;
      }
    }
    const centre = [0, xr.floor ? 1.35 : 0, -1.1];
    const model = mat.multiply(mat.translate(centre[0], centre[1], centre[2]),
      mat.multiply(mat.rotateY(xr.yaw), mat.scale(xr.scale)));
    const rays = [];
    for (const source of session.inputSources) { // pointing rays, and picking along them
      const p = source.targetRaySpace && frameXR.getPose(source.targetRaySpace, xr.space);
      if (!p) continue;
      const m = p.transform.matrix, o = [m[12], m[13], m[14]], d = [-m[8], -m[9], -m[10]];
      rays.push(o, d);
      if (xr.pick === source) { xr.pick = null; pickRay(o, d, centre); }
    }
    updateRays(rays);
    const layer = session.renderState.baseLayer;
    gl.bindFramebuffer(gl.FRAMEBUFFER, layer.framebuffer);
    gl.clearColor(0.04, 0.04, 0.05, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    for (const v of pose.views) {
      const vp = layer.getViewport(v);
      gl.viewport(vp.x, vp.y, vp.width, vp.height);
      drawScene(v.projectionMatrix, v.transform.inverse.matrix, model, vp.height);
      drawRays(v.projectionMatrix, v.transform.inverse.matrix);
    }
    state.frames++;
  }
  /* The face hit by a ray (origin o, direction d, reference space): the first one along it. */
  function pickRay(o, d, centre) {
    const c = Math.cos(-xr.yaw), s = Math.sin(-xr.yaw), k = 1 / xr.scale;
    const rel = [o[0] - centre[0], o[1] - centre[1], o[2] - centre[2]];
    const om = [(c * rel[0] + s * rel[2]) * k, rel[1] * k, (-s * rel[0] + c * rel[2]) * k];
    let dm = [c * d[0] + s * d[2], d[1], -s * d[0] + c * d[2]];
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
    orbit, select, pick, draw: requestDraw,
    setSpin(on) { spin = on; document.getElementById('spin').checked = on; requestDraw(); },
  });
})();
