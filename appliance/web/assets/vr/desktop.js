/* Sosie 3-D view on a screen: the orbit camera, its render loop (with the axis and mark labels),
   picking a face under the pointer, flying to a face, and the mouse, touch and wheel gestures. */
'use strict';
(function (vr) {
  const { mat, transform } = vr;
  /* view: gl, state, canvas, stage, meta, N, options (spin, grow), scene, sheets; at run time
     view.xrSession, view.select and view.setSpin (the page's). */
  vr.makeDesktop = function (view) {
    const { gl, state, canvas, stage, meta: M, options, scene, sheets } = view;
    const pos = scene.pos;
    const orbit = { yaw: 0.6, pitch: 0.25, distance: 2.7, target: [0, 0, 0] };
    let width = 1, height = 1, dpr = 1;

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

    /* ---- render loop ------------------------------------------------------------------- */
    const labels = M.pca.axes.map((axis, a) => {
      const el = Sosie.el('div', { class: 'label3d', style: 'color:' + ['#ff8a8a', '#8aff8a', '#8ab4ff'][a] },
        axis.name + (axis.ratio ? ' ' + Sosie.percent(axis.ratio) : '')); // UMAP: no share
      stage.append(el);
      return el;
    });
    const MARKS = scene.marks;
    const markLabels = MARKS.map((mark) => Sosie.el('div', { class: 'label3d', style: 'color:#ff3b5c' }, mark.label));
    markLabels.forEach((el) => stage.append(el));
    let pending = false, last = performance.now();
    const frameLog = { intervals: [], draws: [] }; // the last 240 frames (bench/map.py)
    state.frameLog = frameLog;
    function logFrame(interval, draw) {
      frameLog.intervals.push(interval); frameLog.draws.push(draw);
      if (frameLog.intervals.length > 240) { frameLog.intervals.shift(); frameLog.draws.shift(); }
    }
    function requestDraw() { if (!pending && !view.xrSession) { pending = true; requestAnimationFrame(frame); } }
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
      if (view.xrSession) return;
      const dt = Math.min(100, now - last);
      logFrame(now - last, 0);
      last = now;
      const t0 = performance.now();
      if (options.spin) orbit.yaw += dt * 0.00012;
      resize();
      gl.bindFramebuffer(gl.FRAMEBUFFER, null);
      gl.viewport(0, 0, canvas.width, canvas.height);
      gl.clearColor(0.067, 0.067, 0.067, 1);
      gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      const cam = cameraMatrices();
      const fwd = orbit.target.map((v, k) => v - cam.eye[k]), len = Math.hypot(...fwd);
      sheets.plan(cam.eye, fwd.map((v) => v / len), cam.proj[5] * canvas.height / 2, []);
      scene.classifySheets(cam.eye, cam.proj[5] * canvas.height / 2);
      scene.drawScene(cam.proj, cam.view, cam.model, canvas.height);
      const vp = mat.multiply(cam.proj, cam.view);
      labels.forEach((el, a) => { const p = [0, 0, 0]; p[a] = scene.axisLength * 1.04; place(el, vp, p); });
      markLabels.forEach((markLabel, k) => {
        markLabel.dataset.dx = Math.min(128, 0.9 * options.grow * scene.faceSize * cam.proj[5] * height / 2 /
          Math.max(0.05, transform(vp, MARKS[k].xyz)[3])) + 6;
        place(markLabel, vp, MARKS[k].xyz);
      });
      frameLog.draws[frameLog.draws.length - 1] = performance.now() - t0;
      state.frames++;
      if (state.ready && !state.timings.firstFrame) {
        gl.finish();
        state.timings.firstFrame = performance.now();
      }
      if (options.spin || flight || sheets.busy) requestDraw();
    }
    function resize() {
      dpr = window.devicePixelRatio || 1;
      const r = canvas.getBoundingClientRect();
      width = Math.max(1, r.width); height = Math.max(1, r.height);
      const w = Math.round(width * dpr), h = Math.round(height * dpr);
      if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    }
    new ResizeObserver(requestDraw).observe(canvas);

    /* ---- picking and flying ------------------------------------------------------------ */
    function pick(sx, sy) {
      const cam = cameraMatrices();
      const m = mat.multiply(cam.proj, cam.view);
      const f = cam.proj[5] * height / 2;
      let best = -1, bestDepth = Infinity;
      for (let i = 0; i < scene.total; i++) {
        const x = pos[3 * i], y = pos[3 * i + 1], z = pos[3 * i + 2];
        const w = m[3] * x + m[7] * y + m[11] * z + m[15];
        if (w <= 0.005) continue;
        const px = ((m[0] * x + m[4] * y + m[8] * z + m[12]) / w + 1) / 2 * width;
        const py = (1 - (m[1] * x + m[5] * y + m[9] * z + m[13]) / w) / 2 * height;
        const half = Math.max(4, options.grow * scene.faceSize * f / w / 2);
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
    /* Put the camera at `eye` looking at `target` (model space; tests and the bench). */
    function setCamera(eye, target) {
      const v = eye.map((e, k) => e - target[k]), d = Math.hypot(...v);
      orbit.target = target.slice(); orbit.distance = d;
      orbit.yaw = Math.atan2(v[0], v[2]); orbit.pitch = Math.asin(v[1] / d);
      requestDraw();
    }

    /* ---- orbit gestures (mouse, touch, wheel) ------------------------------------------ */
    const pointers = new Map();
    let moved = 0, pinch = 0;
    canvas.addEventListener('contextmenu', (e) => e.preventDefault());
    canvas.addEventListener('pointerdown', (e) => {
      canvas.setPointerCapture(e.pointerId);
      pointers.set(e.pointerId, { x: e.offsetX, y: e.offsetY, pan: e.button === 2 || e.shiftKey });
      moved = pointers.size > 1 ? 99 : 0;
      pinch = 0;
      view.setSpin(false);
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
        if (i >= 0 || view.selection.face >= 0) view.select(i, false);
      }
    };
    canvas.addEventListener('pointerup', release);
    canvas.addEventListener('pointercancel', release);
    canvas.addEventListener('wheel', (e) => {
      e.preventDefault();
      orbit.distance = Math.min(20, Math.max(0.01, orbit.distance * Math.exp(e.deltaY * 0.0012)));
      requestDraw();
    }, { passive: false });

    return { orbit, requestDraw, logFrame, frameLog, pick, lookAt, setCamera };
  };
})(Sosie.vr);
