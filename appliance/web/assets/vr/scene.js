/* Sosie 3-D view, the scene: every face as a textured quad (instanced, facing the viewer) at its
   3-D position, the far sheets as points, the axes, and the highlighted faces (marks, the
   selection and its neighbours) drawn larger and framed on top. The far cloud is drawn from one
   small atlas (data/atlas3d.js); faces of resident sheets from the detail texture (sheets.js). */
'use strict';
(function (vr) {
  /* view: gl, instancing, kit, state, meta, atlas, atlasImage, points, N, options (tint, grow),
     selection (face, neighbours), sheets; at run time view.requestDraw. */
  vr.makeScene = function (view) {
    const { gl, instancing, kit, state, meta: M, atlas: ATLAS, points: P, N, options, sheets } = view;
    const CLUSTER = P.cluster;
    const { FACE_VS, FACE_FS, LINES_VS, LINES_FS } = vr.shaders;
    const quads = kit.program(FACE_VS, FACE_FS);
    const points = kit.program('#define POINTS\n' + FACE_VS, '#define POINTS\n' + FACE_FS);
    const maxPoint = gl.getParameter(gl.ALIASED_POINT_SIZE_RANGE)[1];
    const POINT_PX = Math.min(48, maxPoint / 2); // sheets whose faces all stay below: points
    const lines = kit.program(LINES_VS, LINES_FS);

    /* ---- instances: the faces in sheet order (a sheet's faces are one run), then the marks */
    const PER = sheets.perSheet;
    const SHEETS = sheets.count;
    const MARKS = M.marks || [];
    const total = N + MARKS.length;
    const pos = new Float32Array(3 * total);
    pos.set(P.xyz);
    MARKS.forEach((mark, k) => pos.set(mark.xyz, 3 * (N + k)));
    const order = new Uint32Array(N);
    for (let i = 0; i < N; i++) order[P.place[i]] = i;
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
      return { count: n, f: kit.buffer(f, usage), c: kit.buffer(c, usage), slot: kit.buffer(slots, usage || gl.DYNAMIC_DRAW) };
    }
    const cloud = instanceSet(order, new Float32Array(N).fill(-1));
    const corners = kit.buffer(new Float32Array([-0.5, -0.5, 0.5, -0.5, -0.5, 0.5, 0.5, 0.5]));
    state.timings.buffers = performance.now();
    let highlight = null, highlightGroups = [];
    const axisLength = 1.25;
    const axisData = new Float32Array([
      -axisLength, 0, 0, 0.6, 0.2, 0.2, axisLength, 0, 0, 1, 0.35, 0.35,
      0, -axisLength, 0, 0.2, 0.6, 0.2, 0, axisLength, 0, 0.35, 1, 0.35,
      0, 0, -axisLength, 0.2, 0.3, 0.7, 0, 0, axisLength, 0.4, 0.55, 1]);
    const bufAxes = kit.buffer(axisData);

    /* ---- the atlas: every face, small ---------------------------------------------------- */
    gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, false);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    const texture = kit.makeTexture(0, 0);
    view.atlasImage.onload = () => {
      gl.bindTexture(gl.TEXTURE_2D, texture);
      gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGB, gl.RGB, gl.UNSIGNED_BYTE, view.atlasImage);
      state.ready = true;
      state.timings.texture = performance.now();
      view.requestDraw();
    };
    const faceSize = 0.9 * Math.cbrt(8 / Math.max(N, 1)) * 0.5; // world size of one face quad

    /* Sheet s is drawn from detail slot b (-1: from the atlas again). */
    function setSheetSlot(s, b) {
      const first = s * PER, count = Math.min(PER, N - first);
      gl.bindBuffer(gl.ARRAY_BUFFER, cloud.slot);
      gl.bufferSubData(gl.ARRAY_BUFFER, first * 4, new Float32Array(count).fill(b));
      updateHighlights();
    }

    /* ---- drawing ------------------------------------------------------------------------- */
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
      const L = prog.loc, D = sheets.layout;
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
      gl.uniform1f(L.uSlotCols, Math.max(1, D.slotCols));
      gl.uniform1f(L.uSlotUV, D.sheetSide / D.side);
      gl.uniform1f(L.uFaceUV, M.sheets.face / D.side);
      gl.uniform1f(L.uFacePx, M.sheets.face);
      gl.uniform1f(L.uDetailMinPx, D.minPx);
      gl.uniform1f(L.uTint, options.tint ? 1 : 0);
      gl.uniform1f(L.uGrow, options.grow);
      gl.uniform1f(L.uBorder, 0);
    }
    /* Which sheets are drawn as quads (a face may be large on screen) and which as points, as
       runs of consecutive faces [first, count, quad]; eye in model space. */
    let faceRuns = [[0, N, true]];
    function classifySheets(eye, fpx) {
      const B = P.bricks, size = faceSize * options.grow, runs = [];
      for (let s = 0; s < SHEETS; s++) {
        const d = Math.hypot(B[4 * s] - eye[0], B[4 * s + 1] - eye[1], B[4 * s + 2] - eye[2]) - B[4 * s + 3];
        const quad = d <= size || size * fpx / d >= POINT_PX;
        const first = s * PER, count = Math.min(PER, N - first), last = runs[runs.length - 1];
        if (last && last[2] === quad) last[1] += count; else runs.push([first, count, quad]);
      }
      faceRuns = runs;
      state.quadFaces = runs.reduce((n, r) => n + (r[2] ? r[1] : 0), 0);
    }
    /* `count` vertices of `buf` (x y z r g b each) as line segments. */
    function drawLines(buf, count, proj, viewM, model) {
      const A = lines.loc;
      gl.useProgram(lines.p);
      gl.uniformMatrix4fv(A.uProj, false, proj); gl.uniformMatrix4fv(A.uView, false, viewM); gl.uniformMatrix4fv(A.uModel, false, model);
      gl.bindBuffer(gl.ARRAY_BUFFER, buf);
      gl.enableVertexAttribArray(A.aPos); gl.vertexAttribPointer(A.aPos, 3, gl.FLOAT, false, 24, 0);
      gl.enableVertexAttribArray(A.aColour); gl.vertexAttribPointer(A.aColour, 3, gl.FLOAT, false, 24, 12);
      gl.drawArrays(gl.LINES, 0, count);
      gl.disableVertexAttribArray(A.aColour);
    }
    function drawScene(proj, viewM, model, viewportHeight) {
      const grow = options.grow;
      gl.enable(gl.DEPTH_TEST);
      drawLines(bufAxes, 6, proj, viewM, model); // the axes
      if (!state.ready) return;
      gl.activeTexture(gl.TEXTURE0); gl.bindTexture(gl.TEXTURE_2D, texture);
      gl.activeTexture(gl.TEXTURE1); gl.bindTexture(gl.TEXTURE_2D, sheets.texture || texture);
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
    /* Rebuild the highlighted instances from the selection and the marks. */
    function updateHighlights() {
      const { face: selected, neighbours } = view.selection;
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
      const slots = Float32Array.from(items, (i) => (i >= N ? -1 : sheets.slotOfFace(i)));
      highlight = instanceSet(items, slots, gl.DYNAMIC_DRAW);
    }
    return {
      faceSize, pos, total, order, marks: MARKS, axisLength,
      setSheetSlot, classifySheets, drawScene, drawLines, updateHighlights,
    };
  };
})(Sosie.vr);
