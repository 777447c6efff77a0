/* Sosie 3-D view: every face as a textured quad (instanced, facing the viewer) at its 3-D PCA
   position, orbit controls, and an "Enter VR" button (WebXR immersive-vr, one render pass per
   eye). The far cloud is drawn from one small atlas (data/atlas3d.js); near the viewer and along
   the controller rays, faces are drawn from the 64-128 px sheets, streamed in sheet by sheet
   (each sheet is a compact cluster in 3-D) into one detail texture of fixed size: the texture
   budget is allocated once, at load, and never grows.

   This file puts the view together and owns the page's controls (checkboxes, size slider, the
   panel, the selection) and window.sosie3d (what tests and the bench read). The parts are
   classic scripts loaded before it, in vr.html's order, each adding a factory to Sosie.vr:
   matrix.js (maths), gl.js (shaders, buffers, textures), sheets.js (sheet streaming),
   scene.js (instances and drawing), desktop.js (orbit camera, render loop, picking),
   xr.js (WebXR session and input). They only define; everything is made here, in one go. */
'use strict';
(function (vr) {
  const M = Sosie.meta;
  const N = M.count;
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
  atlasImage.src = window.SOSIE_ATLAS.src;

  /* What the parts share. Functions of parts made later are looked up when called. */
  const spinBox = document.getElementById('spin');
  const view = {
    gl, instancing, kit: vr.glKit(gl), state, canvas, stage, atlasImage,
    meta: M, atlas: window.SOSIE_ATLAS, points: Sosie.points, N,
    options: { spin: true, tint: false, grow: 1 }, // the page's controls
    selection: { face: -1, neighbours: [] }, // drawn framed, on top
    xrSession: null, // while a headset session runs, it draws (not the page's loop)
    requestDraw: () => view.desktop.requestDraw(),
    select: (i, fly) => select(i, fly),
    setSpin(on) { view.options.spin = on; spinBox.checked = on; },
  };
  view.sheets = vr.makeSheets(view);
  view.scene = vr.makeScene(view);
  view.scene.updateHighlights();
  view.desktop = vr.makeDesktop(view);
  const { options, selection, scene, desktop } = view;
  const requestDraw = view.requestDraw;

  /* ---- controls ------------------------------------------------------------------------- */
  spinBox.onchange = (e) => { options.spin = e.target.checked; requestDraw(); };
  const tintBox = document.getElementById('tint');
  if (Sosie.points.cluster) tintBox.onchange = () => { options.tint = tintBox.checked; requestDraw(); };
  else tintBox.parentElement.hidden = true;
  document.getElementById('size').oninput = (e) => { options.grow = Math.pow(2, +e.target.value); requestDraw(); };

  /* ---- selection and panel -------------------------------------------------------------- */
  async function select(i, fly) {
    selection.face = i >= N ? -1 : i;
    selection.neighbours = [];
    scene.updateHighlights();
    requestDraw();
    if (i >= N) { desktop.lookAt(i); return; }
    if (i < 0) {
      panel.selected.replaceChildren(Sosie.el('p', { class: 'muted' }, 'Click a face to see it large with its nearest neighbours.'));
      return;
    }
    if (fly) desktop.lookAt(i);
    const face = await Sosie.showFace(panel.selected, i, (j) => select(j, true));
    if (selection.face === i) { selection.neighbours = face.neighbours.map((nb) => nb.index); scene.updateHighlights(); requestDraw(); }
  }
  const pickAndFly = (i) => select(i, true);
  Sosie.describeAxes(panel.axes, pickAndFly, 3);
  if (!Sosie.describeClusters(panel.clusters, pickAndFly)) panel.clusters.closest('details').hidden = true;
  if (!Sosie.showMark(panel.mark, pickAndFly, (k) => select(N + k, true))) panel.mark.closest('details').hidden = true;
  select(-1);

  view.xr = vr.makeXR(view, vrButton, vrNote);
  view.xr.check();
  Object.assign(state, {
    orbit: desktop.orbit, select, pick: desktop.pick, lookAt: desktop.lookAt, draw: requestDraw,
    faceSize: scene.faceSize, order: scene.order,
    setSpin(on) { view.setSpin(on); requestDraw(); },
    setCamera: desktop.setCamera,
  });
})(Sosie.vr);
