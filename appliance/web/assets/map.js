/* Sosie 2-D map: a Canvas2D viewer of the pre-rendered level-of-detail tile quadtree.
   Each frame draws only the tiles that cover the screen at the level matching the zoom, so
   the cost per frame does not depend on the number of faces. Missing tiles are stood in for
   by their nearest loaded ancestor while they load. */
'use strict';
(function () {
  const M = Sosie.meta;
  const T = M.tiles;
  const N = M.count;
  const XY = Sosie.points.xy;
  const FACE = M.face_world;
  const canvas = document.getElementById('map');
  const ctx = canvas.getContext('2d', { alpha: false });
  const panel = {
    selected: document.getElementById('selected'),
    mark: document.getElementById('mark'),
    axes: document.getElementById('axes'),
    clusters: document.getElementById('clusters'),
  };
  const view = { x: 0.5, y: 0.5, scale: 1 }; // world point at the centre; CSS px per world unit
  let width = 0, height = 0, dpr = 1, dirty = true, fitted = false;
  let selected = -1, neighbours = [], hover = -1, showClusters = !!M.clusters;
  const stats = { frames: 0, requested: 0, loaded: 0, failed: 0, drawn: 0, pending: 0 };

  /* ---- tiles ---------------------------------------------------------------------------- */
  const present = T.present.map((b) => new Uint8Array(Sosie.bytes(b)));
  function exists(z, x, y) {
    const n = 1 << z;
    if (x < 0 || y < 0 || x >= n || y >= n) return false;
    const bit = y * n + x;
    return (present[z][bit >> 3] >> (bit & 7)) & 1;
  }
  const cache = new Map();
  const CACHE_LIMIT = 700;
  let tick = 0;
  function tile(z, x, y, load) {
    const key = z + '/' + x + '/' + y;
    let entry = cache.get(key);
    if (entry) { entry.used = tick; return entry; }
    if (!load || !exists(z, x, y)) return null;
    const img = new Image();
    entry = { img, ready: false, used: tick, key };
    img.decoding = 'async';
    img.onload = () => { entry.ready = true; stats.loaded++; stats.pending--; redraw(); };
    img.onerror = () => { entry.failed = true; stats.failed++; stats.pending--; };
    img.src = 'tiles/' + key + '.webp';
    stats.requested++;
    stats.pending++;
    cache.set(key, entry);
    if (cache.size > CACHE_LIMIT) evict();
    return entry;
  }
  function evict() {
    const old = [...cache.values()].filter((e) => e.used < tick).sort((a, b) => a.used - b.used);
    for (const e of old.slice(0, cache.size - CACHE_LIMIT * 0.8)) {
      if (!e.ready && !e.failed) stats.pending--;
      e.img.onload = e.img.onerror = null;
      e.img.src = '';
      cache.delete(e.key);
    }
  }

  /* ---- geometry ------------------------------------------------------------------------- */
  const toScreenX = (wx) => (wx - view.x) * view.scale + width / 2;
  const toScreenY = (wy) => (wy - view.y) * view.scale + height / 2;
  const toWorldX = (sx) => (sx - width / 2) / view.scale + view.x;
  const toWorldY = (sy) => (sy - height / 2) / view.scale + view.y;
  const minScale = () => Math.min(width, height) / 4;
  const maxScale = () => (3 * T.face) / FACE; // a face at 3x its pre-rendered size
  function clampView() {
    view.scale = Math.min(maxScale(), Math.max(minScale(), view.scale));
    view.x = Math.min(1.2, Math.max(-0.2, view.x));
    view.y = Math.min(1.2, Math.max(-0.2, view.y));
  }
  function fitView() {
    const [x0, y0, x1, y1] = M.bbox;
    const pad = FACE;
    view.x = (x0 + x1) / 2;
    view.y = (y0 + y1) / 2;
    view.scale = 0.94 * Math.min(width / (x1 - x0 + 2 * pad), height / (y1 - y0 + 2 * pad));
    clampView();
    redraw();
  }

  /* ---- picking: a uniform grid of face-sized cells -------------------------------------- */
  const G = Math.max(1, Math.min(2048, Math.ceil(1 / FACE)));
  const head = new Int32Array(G * G).fill(-1);
  const next = new Int32Array(N);
  const cellOf = (v) => Math.min(G - 1, Math.max(0, Math.floor(v * G)));
  for (let i = 0; i < N; i++) {
    const c = cellOf(XY[2 * i + 1]) * G + cellOf(XY[2 * i]);
    next[i] = head[c];
    head[c] = i;
  }
  /* Topmost face under world point (wx, wy); when faces are tiny, the nearest within `px`. */
  function pick(wx, wy, px) {
    const half = FACE / 2;
    const radius = Math.max(half, (px || 0) / view.scale);
    const r = Math.ceil(radius * G) + 1;
    const cx = cellOf(wx), cy = cellOf(wy);
    let best = -1, bestD = Infinity;
    for (let gy = Math.max(0, cy - r); gy <= Math.min(G - 1, cy + r); gy++) {
      for (let gx = Math.max(0, cx - r); gx <= Math.min(G - 1, cx + r); gx++) {
        for (let i = head[gy * G + gx]; i >= 0; i = next[i]) {
          const dx = Math.abs(XY[2 * i] - wx), dy = Math.abs(XY[2 * i + 1] - wy);
          if (dx <= half && dy <= half) {
            if (bestD > 0 || i > best) { best = i; bestD = 0; } // on top: highest index
          } else if (bestD > 0) {
            const d = Math.hypot(dx, dy);
            if (d <= radius && d < bestD) { best = i; bestD = d; }
          }
        }
      }
    }
    return best;
  }

  /* ---- drawing -------------------------------------------------------------------------- */
  function redraw() {
    if (!dirty) { dirty = true; requestAnimationFrame(draw); }
  }
  function level() {
    const devicePerWorld = view.scale * dpr;
    const z = Math.ceil(Math.log2(devicePerWorld / T.tile) - 0.35);
    return Math.max(0, Math.min(T.levels, z));
  }
  function drawTiles() {
    const z = level();
    const n = 1 << z;
    const size = view.scale / n; // CSS px per tile
    const x0 = Math.max(0, Math.floor(toWorldX(0) * n)), x1 = Math.min(n - 1, Math.floor(toWorldX(width) * n));
    const y0 = Math.max(0, Math.floor(toWorldY(0) * n)), y1 = Math.min(n - 1, Math.floor(toWorldY(height) * n));
    const wanted = [];
    for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) if (exists(z, x, y)) wanted.push([x, y]);
    const cx = view.x * n, cy = view.y * n; // load from the centre outwards
    wanted.sort((a, b) => Math.hypot(a[0] + 0.5 - cx, a[1] + 0.5 - cy) - Math.hypot(b[0] + 0.5 - cx, b[1] + 0.5 - cy));
    for (const [x, y] of wanted) {
      const sx = toScreenX(x / n), sy = toScreenY(y / n);
      const entry = tile(z, x, y, true);
      if (entry && entry.ready) {
        ctx.drawImage(entry.img, sx, sy, size + 0.5, size + 0.5);
        stats.drawn++;
        continue;
      }
      for (let up = 1; up <= z; up++) { // nearest loaded ancestor, cropped
        const a = tile(z - up, x >> up, y >> up, false);
        if (a && a.ready) {
          const part = T.tile >> up;
          ctx.drawImage(a.img, (x & ((1 << up) - 1)) * part, (y & ((1 << up) - 1)) * part,
            part, part, sx, sy, size + 0.5, size + 0.5);
          break;
        }
      }
    }
    if (z > 0) tile(0, 0, 0, true); // keep the root as the last-resort stand-in
  }
  function box(i, colour, line, label) {
    const s = Math.max(FACE * view.scale, 6);
    const x = toScreenX(XY[2 * i]) - s / 2, y = toScreenY(XY[2 * i + 1]) - s / 2;
    ctx.lineWidth = line;
    ctx.strokeStyle = colour;
    ctx.strokeRect(x, y, s, s);
    if (label && s >= 14) {
      ctx.fillStyle = colour;
      ctx.font = '600 11px system-ui, sans-serif';
      ctx.fillText(label, x + 2, y - 3);
    }
  }
  const MARKS = M.marks || [];
  const markImages = MARKS.map((m) => {
    if (!m.image) return null; // made without the photo: a plain marker
    const img = new Image(); img.onload = redraw; img.src = m.image; return img;
  });
  function drawMark(mark, markImage) {
    const [mx, my] = mark.world;
    const sx = toScreenX(mx), sy = toScreenY(my);
    const s = Math.max(FACE * view.scale, 18);
    if (markImage && markImage.complete && FACE * view.scale >= 3) ctx.drawImage(markImage, sx - s / 2, sy - s / 2, s, s);
    ctx.lineWidth = 3;
    ctx.strokeStyle = '#ff3b5c';
    ctx.strokeRect(sx - s / 2 - 2, sy - s / 2 - 2, s + 4, s + 4);
    ctx.beginPath();
    ctx.arc(sx, sy, s * 0.75 + 10, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.font = '600 13px system-ui, sans-serif';
    ctx.fillStyle = '#ff3b5c';
    ctx.fillText(mark.label, sx + s * 0.75 + 14, sy + 4);
  }
  function drawClusters() {
    ctx.font = '700 12px system-ui, sans-serif';
    for (const c of M.clusters) {
      const sx = toScreenX(c.world[0]), sy = toScreenY(c.world[1]);
      ctx.fillStyle = Sosie.clusterColour(c.id, 0.85);
      ctx.beginPath();
      ctx.arc(sx, sy, 11, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillStyle = '#000';
      ctx.textAlign = 'center';
      ctx.fillText(String(c.id + 1), sx, sy + 4);
      ctx.textAlign = 'start';
    }
  }
  function drawAxes() {
    const a = M.pca.axes;
    const x = 16, y = height - 16, len = 64;
    ctx.fillStyle = 'rgba(17,17,17,0.7)';
    ctx.fillRect(4, y - len - 18, len + 110, len + 30);
    ctx.strokeStyle = ctx.fillStyle = 'rgba(255,255,255,0.8)';
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(x, y); ctx.lineTo(x + len, y); ctx.lineTo(x + len - 6, y - 4); ctx.moveTo(x + len, y); ctx.lineTo(x + len - 6, y + 4);
    ctx.moveTo(x, y); ctx.lineTo(x, y - len); ctx.lineTo(x - 4, y - len + 6); ctx.moveTo(x, y - len); ctx.lineTo(x + 4, y - len + 6);
    ctx.stroke();
    ctx.font = '12px system-ui, sans-serif';
    const share = (axis) => axis.ratio ? ' ' + Sosie.percent(axis.ratio) : '';  // UMAP: none
    ctx.fillText(a[0].name + share(a[0]), x + len + 6, y + 4);
    ctx.fillText(a[1].name + share(a[1]), x + 6, y - len - 2);
  }
  function draw() {
    dirty = false;
    tick++;
    stats.frames++;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#111';
    ctx.fillRect(0, 0, width, height);
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = view.scale * FACE > T.face ? 'low' : 'medium';
    drawTiles();
    if (showClusters && M.clusters) drawClusters();
    neighbours.forEach((j, r) => box(j, '#ffc24b', 2, String(r + 1)));
    if (selected >= 0) box(selected, '#fff', 3, '#' + selected);
    if (hover >= 0 && hover !== selected) box(hover, 'rgba(255,255,255,0.7)', 1.5);
    MARKS.forEach((mark, k) => drawMark(mark, markImages[k]));
    drawAxes();
    zoomLabel.textContent = (view.scale * FACE).toFixed(view.scale * FACE < 10 ? 1 : 0) + ' px per face';
  }

  /* ---- animation ------------------------------------------------------------------------ */
  let flight = null;
  function flyTo(x, y, scale, ms) {
    const from = { ...view };
    const to = { x, y, scale: Math.min(maxScale(), Math.max(minScale(), scale || view.scale)) };
    const start = performance.now();
    const duration = ms === undefined ? 650 : ms;
    flight = (now) => {
      const t = duration ? Math.min(1, (now - start) / duration) : 1;
      const e = t < 0.5 ? 2 * t * t : 1 - Math.pow(-2 * t + 2, 2) / 2;
      view.x = from.x + (to.x - from.x) * e;
      view.y = from.y + (to.y - from.y) * e;
      view.scale = Math.exp(Math.log(from.scale) + (Math.log(to.scale) - Math.log(from.scale)) * e);
      draw();
      if (t < 1 && flight) requestAnimationFrame(flight); else flight = null;
    };
    requestAnimationFrame(flight);
  }
  function zoomAt(sx, sy, factor) {
    const wx = toWorldX(sx), wy = toWorldY(sy);
    view.scale *= factor;
    clampView();
    view.x = wx - (sx - width / 2) / view.scale;
    view.y = wy - (sy - height / 2) / view.scale;
    clampView();
    redraw();
  }

  /* ---- selection and panel ------------------------------------------------------------------ */
  const closeUp = () => Math.max(view.scale, 96 / FACE);
  async function select(i, fly) {
    selected = i;
    neighbours = [];
    redraw();
    if (i < 0) {
      panel.selected.replaceChildren(Sosie.el('p', { class: 'muted' }, 'Click a face to see it large with its nearest neighbours.'));
      history.replaceState(null, '', location.pathname + location.search);
      return;
    }
    history.replaceState(null, '', '#face=' + i);
    if (fly) flyTo(XY[2 * i], XY[2 * i + 1], closeUp());
    panel.selected.closest('details').open = true;
    const face = await Sosie.showFace(panel.selected, i, (j) => select(j, true));
    if (selected === i) { neighbours = face.neighbours.map((nb) => nb.index); redraw(); }
  }

  /* ---- input ---------------------------------------------------------------------------- */
  const pointers = new Map();
  let dragged = 0, pinch = null;
  canvas.addEventListener('pointerdown', (e) => {
    canvas.setPointerCapture(e.pointerId);
    pointers.set(e.pointerId, { x: e.offsetX, y: e.offsetY });
    dragged = pointers.size > 1 ? 99 : 0;
    pinch = null;
    flight = null;
  });
  canvas.addEventListener('pointermove', (e) => {
    const p = pointers.get(e.pointerId);
    if (!p) {
      const i = pick(toWorldX(e.offsetX), toWorldY(e.offsetY), 5);
      if (i !== hover) { hover = i; canvas.style.cursor = i >= 0 ? 'pointer' : 'grab'; redraw(); }
      return;
    }
    const dx = e.offsetX - p.x, dy = e.offsetY - p.y;
    if (pointers.size === 1) {
      dragged += Math.abs(dx) + Math.abs(dy);
      view.x -= dx / view.scale;
      view.y -= dy / view.scale;
      clampView();
    }
    p.x = e.offsetX;
    p.y = e.offsetY;
    if (pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      const d = Math.hypot(a.x - b.x, a.y - b.y), mx = (a.x + b.x) / 2, my = (a.y + b.y) / 2;
      if (pinch) {
        view.x -= (mx - pinch.mx) / view.scale;
        view.y -= (my - pinch.my) / view.scale;
        zoomAt(mx, my, d / pinch.d);
      }
      pinch = { d, mx, my };
    }
    redraw();
  });
  const release = (e) => {
    if (!pointers.has(e.pointerId)) return;
    pointers.delete(e.pointerId);
    pinch = null;
    if (e.type === 'pointerup' && pointers.size === 0 && dragged < 5) {
      select(pick(toWorldX(e.offsetX), toWorldY(e.offsetY), 6), false);
    }
  };
  canvas.addEventListener('pointerup', release);
  canvas.addEventListener('pointercancel', release);
  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    const delta = e.deltaMode === 1 ? e.deltaY * 33 : e.deltaY;
    zoomAt(e.offsetX, e.offsetY, Math.exp(-delta * 0.0015));
  }, { passive: false });
  canvas.addEventListener('dblclick', (e) => zoomAt(e.offsetX, e.offsetY, 2));
  window.addEventListener('keydown', (e) => {
    if (e.target.closest && e.target.closest('input, textarea')) return;
    const step = 80 / view.scale;
    const keys = {
      ArrowLeft: () => (view.x -= step), ArrowRight: () => (view.x += step),
      ArrowUp: () => (view.y -= step), ArrowDown: () => (view.y += step),
      '+': () => zoomAt(width / 2, height / 2, 1.5), '=': () => zoomAt(width / 2, height / 2, 1.5),
      '-': () => zoomAt(width / 2, height / 2, 1 / 1.5), 0: fitView, Home: fitView,
      Escape: () => select(-1), m: () => MARKS.length && showMark(nextMark++ % MARKS.length),
    };
    if (keys[e.key]) { keys[e.key](); clampView(); redraw(); e.preventDefault(); }
  });
  let nextMark = 0;
  function showMark(k) { flyTo(MARKS[k].world[0], MARKS[k].world[1], closeUp()); }

  const zoomLabel = document.getElementById('zoomlabel');
  document.getElementById('zoomin').onclick = () => zoomAt(width / 2, height / 2, 2);
  document.getElementById('zoomout').onclick = () => zoomAt(width / 2, height / 2, 0.5);
  document.getElementById('zoomfit').onclick = () => flyTo((M.bbox[0] + M.bbox[2]) / 2, (M.bbox[1] + M.bbox[3]) / 2,
    0.94 * Math.min(width / (M.bbox[2] - M.bbox[0] + 2 * FACE), height / (M.bbox[3] - M.bbox[1] + 2 * FACE)));
  const find = document.getElementById('find');
  document.getElementById('findform').addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = find.value.trim();
    if (!text) return;
    const number = /^#?(\d+)$/.exec(text);
    const i = number && +number[1] < N ? +number[1] : await Sosie.findName(text);
    find.classList.toggle('missing', i < 0);
    find.title = i < 0 ? 'no face matches "' + text + '"' : '';
    if (i >= 0) select(i, true);
  });
  find.addEventListener('input', () => find.classList.remove('missing'));
  const clusterToggle = document.getElementById('clustertoggle');
  if (M.clusters) clusterToggle.onchange = () => { showClusters = clusterToggle.checked; redraw(); };
  else clusterToggle.parentElement.hidden = true;

  function resize() {
    const rect = canvas.getBoundingClientRect();
    dpr = window.devicePixelRatio || 1;
    width = rect.width;
    height = rect.height;
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    if (!fitted) { fitted = true; fitView(); }
    clampView();
    dirty = false;
    draw();
  }
  new ResizeObserver(resize).observe(canvas);

  /* ---- panel ---------------------------------------------------------------------------- */
  document.getElementById('count').textContent = N.toLocaleString('en') + ' faces';
  document.title = M.title;
  document.getElementById('title').textContent = M.title;
  const pickAndFly = (i) => select(i, true);
  Sosie.describeAxes(panel.axes, pickAndFly, 2);
  if (!Sosie.describeClusters(panel.clusters, (i) => select(i, true))) panel.clusters.closest('details').hidden = true;
  if (!Sosie.showMark(panel.mark, pickAndFly, showMark)) panel.mark.closest('details').hidden = true;
  const wanted = /face=(\d+)/.exec(location.hash);
  select(-1);
  if (wanted && +wanted[1] < N) setTimeout(() => select(+wanted[1], true), 0);

  /* For tests and benchmarks: the view, and whether every visible tile has arrived. */
  window.sosieMap = {
    view, stats, pick, select, flyTo, fitView, zoomAt, level,
    setView(x, y, scale) { view.x = x; view.y = y; view.scale = scale; clampView(); draw(); },
    idle: () => stats.pending === 0 && !dirty,
    get selected() { return selected; },
    get neighbours() { return neighbours.slice(); },
  };
})();
