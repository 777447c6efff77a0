/* Sosie 3-D view in a headset: the "Enter VR" button, the WebXR immersive-vr session (one render
   pass per eye) and its input. The cloud stands before the viewer: model = translate(centre +
   offset) rotateY(yaw) scale(scale). Trigger (select): pick the first face along that
   controller's ray. Grip (squeeze) held: moving the hand sideways turns the cloud. Right
   thumbstick: up/down scales, left/right turns; left thumbstick: moves through the cloud
   (forward/back where the head looks, sideways). */
'use strict';
(function (vr) {
  const { mat, placement } = vr;
  /* view: gl, state, N, options (grow), scene, sheets, desktop, select; sets view.xrSession
     while a session runs. button, note: the page's "Enter VR" button and the line beside it. */
  vr.makeXR = function (view, button, note) {
    const { gl, state, N, options, scene, sheets, desktop } = view;
    const pos = scene.pos;
    const xr = { space: null, floor: false, yaw: 0, scale: 0.55, offset: [0, 0, 0], grab: null,
      head: [0, 0, 0], views: [], sessions: 0 };
    state.xr = xr;
    function disableVR(reason) { button.disabled = true; note.textContent = reason; state.vr = reason; }
    async function checkXR() {
      if (!navigator.xr) {
        disableVR(window.isSecureContext ? 'VR unavailable: this browser has no WebXR (open the page in a headset browser).'
          : 'VR unavailable: WebXR needs https:// or localhost.');
        return;
      }
      let supported = false;
      try { supported = await navigator.xr.isSessionSupported('immersive-vr'); } catch (err) { supported = false; }
      if (!supported) { disableVR('VR unavailable: no immersive-vr headset found by WebXR.'); return; }
      button.disabled = false;
      note.textContent = 'headset ready';
      state.vr = 'available';
    }
    function xrCentre() {
      return [xr.offset[0], (xr.floor ? 1.35 : 0) + xr.offset[1], -1.1 + xr.offset[2]];
    }
    /* A point (w = 1) or direction (w = 0) of the reference space in model space. */
    const toModel = (p, w) => placement.toModel(p, w, xrCentre(), xr.yaw, xr.scale);
    function rayOf(frameXR, source) {
      const p = source.targetRaySpace && frameXR.getPose(source.targetRaySpace, xr.space);
      if (!p) return null;
      const m = p.transform.matrix;
      return { o: [m[12], m[13], m[14]], d: [-m[8], -m[9], -m[10]] };
    }
    button.addEventListener('click', async () => {
      if (view.xrSession) { view.xrSession.end(); return; }
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
        view.xrSession = session;
        xr.sessions++;
        xr.grab = null;
        button.textContent = 'Exit VR';
        session.addEventListener('end', () => {
          view.xrSession = null; xr.grab = null; xr.views = [];
          button.textContent = 'Enter VR';
          view.requestDraw();
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
        note.textContent = 'could not start VR: ' + err.message;
      }
    });
    let lastXR = 0;
    function onXRFrame(time, frameXR) {
      const session = frameXR.session;
      session.requestAnimationFrame(onXRFrame);
      const t0 = performance.now();
      const dt = lastXR ? Math.min(0.1, (time - lastXR) / 1000) : 0;
      if (lastXR) desktop.logFrame(time - lastXR, 0);
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
      const model = placement.model(xrCentre(), xr.yaw, xr.scale);
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
        sheets.plan(toModel(xr.head, 1), toModel([-hm[8], -hm[9], -hm[10]], 0),
          views[0].projectionMatrix[5] * vp0.height / 2, modelRays);
        scene.classifySheets(toModel(xr.head, 1), views[0].projectionMatrix[5] * vp0.height / 2);
      }
      gl.bindFramebuffer(gl.FRAMEBUFFER, layer.framebuffer);
      gl.clearColor(0.04, 0.04, 0.05, 1);
      gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      xr.views = [];
      for (const v of views) {
        const vp = layer.getViewport(v);
        gl.viewport(vp.x, vp.y, vp.width, vp.height);
        scene.drawScene(v.projectionMatrix, v.transform.inverse.matrix, model, vp.height);
        drawRays(v.projectionMatrix, v.transform.inverse.matrix);
        xr.views.push({ eye: v.eye, x: vp.x, y: vp.y, width: vp.width, height: vp.height });
      }
      const frameLog = desktop.frameLog;
      if (frameLog.draws.length) frameLog.draws[frameLog.draws.length - 1] = performance.now() - t0;
      state.frames++;
    }
    /* The face hit by a ray (origin o, direction d, reference space): the first one along it. */
    function pickRay(o, d) {
      const om = toModel(o, 1);
      let dm = toModel(d, 0);
      const len = Math.hypot(dm[0], dm[1], dm[2]);
      dm = dm.map((v) => v / len);
      const reach = scene.faceSize * options.grow * 0.6;
      let best = -1, bestT = Infinity;
      for (let i = 0; i < N; i++) {
        const vx = pos[3 * i] - om[0], vy = pos[3 * i + 1] - om[1], vz = pos[3 * i + 2] - om[2];
        const t = vx * dm[0] + vy * dm[1] + vz * dm[2];
        if (t <= 0 || t >= bestT) continue;
        if (vx * vx + vy * vy + vz * vz - t * t < reach * reach) { best = i; bestT = t; }
      }
      state.xrPicked = best;
      view.select(best, false);
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
      if (rayCount) scene.drawLines(rayBuffer, rayCount, proj, viewM, mat.identity());
    }
    return { state: xr, check: checkXR };
  };
})(Sosie.vr);
