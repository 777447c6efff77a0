/* Sosie 3-D view, sheet streaming. Detail near the viewer: sheets (16x16 faces at
   M.sheets.face px, a compact cluster in 3-D each) stream into slots of one texture allocated
   once. Every frame each sheet is scored by the on-screen size of a face at its nearest point
   (doubled along a controller ray); the best sheets above DETAIL_MIN_PX get slots, evicting the
   worst resident sheets no longer wanted, two loads at a time. WebGL refuses images read from
   file:// (each file is its own origin), so from files the view keeps the atlas only. */
'use strict';
(function (vr) {
  /* view: gl, state, meta, atlas, points, N, options.grow; at run time view.scene (faceSize,
     setSheetSlot) and view.requestDraw. */
  vr.makeSheets = function (view) {
    const { gl, state, meta: M, atlas: ATLAS, points: P, N } = view;
    const PER = M.sheets.columns * M.sheets.columns;
    const SHEETS = Math.ceil(N / PER);
    const sheetSide = M.sheets.face * M.sheets.columns;
    const detailSide = Math.min(4096, gl.getParameter(gl.MAX_TEXTURE_SIZE));
    const slotCols = Math.max(0, Math.floor(detailSide / sheetSide));
    const DETAIL_MIN_PX = 2 * ATLAS.cell; // below this the atlas cell is sharp enough
    const RETRY_MS = 500, MAX_ATTEMPTS = 5; // a failed sheet: 0.5, 1, 2, 4 s later, then never
    const detail = {
      enabled: location.protocol !== 'file:' && slotCols > 0,
      side: detailSide, slots: slotCols * slotCols, slotCols,
      owner: new Int32Array(slotCols * slotCols).fill(-1), // sheet held by each slot
      pending: new Uint8Array(slotCols * slotCols),
      slotOf: new Int32Array(SHEETS).fill(-1), // slot of each sheet (loading or resident)
      score: new Float32Array(SHEETS),
      failed: new Map(), // sheet -> { attempts, retryAt, reason } until it loads
      failures: 0, retrying: 0, recovered: 0, decodeRejections: 0,
      loading: 0, loads: 0, evictions: 0, peak: 0,
    };
    let detailTexture = null; // allocated once, after the first frame (the first view comes sooner)
    /* The slot face i is drawn from, or -1 while its sheet is not resident. */
    function slotOfFace(i) {
      const b = detail.slotOf[Math.floor(P.place[i] / PER)];
      return b >= 0 && !detail.pending[b] ? b : -1;
    }
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
      get textureMade() { return detailTexture !== null; },
      /* failed loads, retries waiting, sheets loaded after failing, decode() rejections of
         loaded images (uploaded anyway); failed(): sheets not loaded yet after failing */
      get failures() { return detail.failures; },
      get retrying() { return detail.retrying; },
      get recovered() { return detail.recovered; },
      get decodeRejections() { return detail.decodeRejections; },
      failed: () => Array.from(detail.failed, ([sheet, f]) => ({ sheet, attempts: f.attempts, reason: f.reason, givenUp: f.retryAt === Infinity })),
      sheets: () => Array.from(detail.owner).filter((s, k) => s >= 0 && !detail.pending[k]),
      /* 'detail' when face i is drawn from its sheet (if large enough on screen), else 'atlas'. */
      source(i) { return slotOfFace(i) >= 0 ? 'detail' : 'atlas'; },
    };
    if (!detail.enabled) state.detail.reason = slotCols ? 'opened from files: WebGL cannot read the sheets' : 'sheets larger than the texture';

    /* A sheet whose load failed (a 503, a file briefly missing, a dropped Wi-Fi packet) is tried
       again after RETRY_MS, doubling, MAX_ATTEMPTS times in all, then left to the atlas. */
    function failSheet(s, b, err) {
      const f = detail.failed.get(s) || { attempts: 0, retryAt: 0, reason: '' };
      f.attempts++;
      f.reason = String((err && err.message) || err);
      detail.failures++;
      if (f.attempts < MAX_ATTEMPTS) {
        const wait = RETRY_MS * 2 ** (f.attempts - 1);
        f.retryAt = performance.now() + wait;
        detail.retrying++;
        setTimeout(() => { detail.retrying--; view.requestDraw(); }, wait);
      } else f.retryAt = Infinity;
      detail.failed.set(s, f);
      if (detail.owner[b] === s) { detail.owner[b] = -1; detail.slotOf[s] = -1; detail.pending[b] = 0; }
    }
    function loadSheet(s, b) {
      detail.owner[b] = s; detail.slotOf[s] = b; detail.pending[b] = 1; detail.loading++;
      const img = new Image();
      img.src = 'sheets/' + s + '.webp';
      img.decode().catch((err) => {
        // Chromium rejects decode() when it runs short of decode memory (several large decodes
        // at once, a loaded machine) although the image loaded: upload it as it is then
        if (!img.complete || !img.naturalWidth) throw err;
        detail.decodeRejections++;
      }).then(() => {
        if (detail.owner[b] !== s) return;
        gl.bindTexture(gl.TEXTURE_2D, detailTexture);
        gl.texSubImage2D(gl.TEXTURE_2D, 0, (b % slotCols) * sheetSide, Math.floor(b / slotCols) * sheetSide,
          gl.RGB, gl.UNSIGNED_BYTE, img);
        detail.pending[b] = 0;
        detail.loads++;
        if (detail.failed.delete(s)) detail.recovered++;
        detail.peak = Math.max(detail.peak, state.detail.resident);
        view.scene.setSheetSlot(s, b);
      }).catch((err) => failSheet(s, b, err)).finally(() => { // a failed upload too
        detail.loading--;
        if (lastPlan) plan(...lastPlan); // the next sheet now, not a (slow) frame later
        view.requestDraw();
      });
    }
    function evictSlot(b) {
      const s = detail.owner[b];
      detail.owner[b] = -1; detail.slotOf[s] = -1;
      detail.evictions++;
      view.scene.setSheetSlot(s, -1);
    }
    /* eye, forward: model space; fpx: pixels per unit at distance 1; rays: [[o, d], ...]. */
    let lastPlan = null;
    function plan(eye, forward, fpx, rays) {
      if (!detail.enabled || !state.ready || !state.timings.firstFrame) return;
      lastPlan = [eye, forward, fpx, rays];
      if (!detailTexture) detailTexture = view.kit.makeTexture(detailSide, detailSide);
      const B = P.bricks, score = detail.score, size = view.scene.faceSize * view.options.grow;
      const wanted = [], now = performance.now();
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
        if (px >= DETAIL_MIN_PX && !(detail.failed.get(s)?.retryAt > now)) wanted.push(s);
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
    return {
      perSheet: PER, count: SHEETS,
      /* where sheets go in the detail texture (the face shader's uniforms) */
      layout: { side: detailSide, sheetSide, slotCols, minPx: DETAIL_MIN_PX },
      get texture() { return detailTexture; },
      /* true while frames are still needed: sheets loading, or the texture not made yet */
      get busy() { return detail.loading > 0 || (detail.enabled && !detailTexture); },
      slotOfFace, plan,
    };
  };
})(Sosie.vr);
