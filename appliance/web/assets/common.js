/* Sosie map pages: shared data access (meta, points, lazily loaded face chunks, face images).
   Data arrive as <script> files (window.SOSIE_*), so the pages also work from file://. */
'use strict';
(function () {
  const META = window.SOSIE_META;
  const POINTS = window.SOSIE_POINTS;
  const Sosie = (window.Sosie = { meta: META });

  function bytes(text) {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  Sosie.bytes = bytes;

  /* 2-D world positions in [0, 1] (x right, y down) and 3-D positions (~unit radius). */
  Sosie.points = (function () {
    const n = META.count;
    const q2 = new Uint16Array(bytes(POINTS.xy));
    const xy = new Float32Array(2 * n);
    for (let i = 0; i < 2 * n; i++) xy[i] = q2[i] / 65535;
    const q3 = new Int16Array(bytes(POINTS.xyz));
    const xyz = new Float32Array(3 * n);
    const k = POINTS.xyzRange / 32767;
    for (let i = 0; i < 3 * n; i++) xyz[i] = q3[i] * k;
    const cluster = POINTS.cluster ? new Uint16Array(bytes(POINTS.cluster)) : null;
    const rgb = new Uint8Array(bytes(POINTS.rgb)); // mean colour per face (+ mark)
    const gray = new Uint8Array(rgb.length / 3);
    for (let i = 0; i < gray.length; i++) {
      gray[i] = Math.round(0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2]);
    }
    // face i is cell place[i] % 256 of sheet floor(place[i] / 256); sheets are 3-D clusters
    const place = new Uint32Array(bytes(POINTS.place));
    const bricks = new Float32Array(bytes(POINTS.bricks)); // per sheet: x, y, z, radius
    return { xy, xyz, cluster, rgb, gray, place, bricks };
  })();

  Sosie.likeness = function (d) {
    const z = (d - META.likeness.threshold) / META.likeness.slope;
    return z > 700 ? 0 : 100 / (1 + Math.exp(z));
  };
  Sosie.percent = (r, digits = 1) => (100 * r).toFixed(digits) + ' %';

  /* Names and nearest neighbours come in chunks of META.chunk faces, loaded on demand. */
  const chunks = new Map();
  const waiting = new Map();
  window.sosieChunk = function (data) {
    const chunk = {
      start: data.start,
      names: data.names,
      knn: data.knn ? new Int32Array(bytes(data.knn)) : null,
      dist: data.dist ? new Float32Array(bytes(data.dist)) : null,
    };
    chunks.set(data.chunk, chunk);
    const queue = waiting.get(data.chunk) || [];
    waiting.delete(data.chunk);
    queue.forEach(([resolve]) => resolve(chunk));
  };
  function loadChunk(c) {
    if (chunks.has(c)) return Promise.resolve(chunks.get(c));
    return new Promise((resolve, reject) => {
      if (waiting.has(c)) { waiting.get(c).push([resolve, reject]); return; }
      waiting.set(c, [[resolve, reject]]);
      const script = document.createElement('script');
      script.src = 'data/faces/' + c + '.js';
      script.onerror = () => {
        const queue = waiting.get(c) || [];
        waiting.delete(c);
        queue.forEach(([, fail]) => fail(new Error('missing data/faces/' + c + '.js')));
      };
      document.head.appendChild(script);
    });
  }

  /* Large corpora: 8-bit descriptors (x = mean + code * scale), loaded on the first click. */
  let descriptors = null;
  function loadDescriptors() {
    if (descriptors) return descriptors;
    descriptors = new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = 'data/descriptors.js';
      script.onload = () => {
        const D = window.SOSIE_DESCRIPTORS;
        window.SOSIE_DESCRIPTORS = null;
        resolve({ codes: new Int8Array(bytes(D.codes)), weight: Float32Array.from(D.scale, (s) => s * s), dim: D.scale.length });
      };
      script.onerror = () => reject(new Error('missing data/descriptors.js'));
      document.head.appendChild(script);
    });
    return descriptors;
  }
  /* Exact k nearest rows to row i over the 8-bit descriptors (ties: lower index), pruned:
     a row stops being summed once its partial distance exceeds the current k-th best. */
  function scan(D, i, k) {
    const d = D.dim, codes = D.codes, w = D.weight, n = codes.length / d;
    const q = codes.slice(i * d, i * d + d);
    const bestD = new Float64Array(k).fill(Infinity), bestI = new Int32Array(k).fill(-1);
    let worst = Infinity;
    for (let r = 0; r < n; r++) {
      if (r === i) continue;
      const o = r * d;
      let s = 0;
      for (let j = 0; j < d && s < worst; j += 16) {
        for (let m = j; m < j + 16 && m < d; m++) { const t = codes[o + m] - q[m]; s += w[m] * t * t; }
      }
      if (s >= worst) continue;
      let p = k - 1;
      while (p > 0 && bestD[p - 1] > s) { bestD[p] = bestD[p - 1]; bestI[p] = bestI[p - 1]; p--; }
      bestD[p] = s; bestI[p] = r;
      worst = bestD[k - 1];
    }
    const out = [];
    for (let r = 0; r < k && bestI[r] >= 0; r++) {
      const dist = Math.sqrt(bestD[r]);
      out.push({ index: bestI[r], distance: dist, likeness: Sosie.likeness(dist) });
    }
    return out;
  }

  /* {index, name, neighbours: [{index, distance, likeness}]} of face i. */
  Sosie.face = async function (i) {
    const chunk = await loadChunk(Math.floor(i / META.chunk));
    const j = i - chunk.start;
    const k = META.neighbours.k;
    let neighbours = [];
    if (META.neighbours.method === 'browser') {
      if (k > 0) neighbours = scan(await loadDescriptors(), i, k);
    } else {
      for (let r = 0; r < k; r++) {
        const d = chunk.dist[j * k + r];
        neighbours.push({ index: chunk.knn[j * k + r], distance: d, likeness: Sosie.likeness(d) });
      }
    }
    return { index: i, name: chunk.names[j], neighbours };
  };
  /* First face whose file name contains `text` (case-insensitive), searching chunk by chunk. */
  Sosie.findName = async function (text) {
    const needle = text.toLowerCase();
    const chunks = Math.ceil(META.count / META.chunk);
    for (let c = 0; c < chunks; c++) {
      const chunk = await loadChunk(c);
      const j = chunk.names.findIndex((name) => name.toLowerCase().includes(needle));
      if (j >= 0) return chunk.start + j;
    }
    return -1;
  };
  Sosie.name = async function (i) {
    const chunk = await loadChunk(Math.floor(i / META.chunk));
    return chunk.names[i - chunk.start];
  };

  /* A <div> showing face i at `size` CSS pixels, cut from its sheet with CSS (no canvas). */
  Sosie.faceElement = function (i, size, title) {
    const el = document.createElement('div');
    el.className = 'face';
    const cols = META.sheets.columns;
    const per = cols * cols;
    const p = Sosie.points.place[i];
    const sheet = Math.floor(p / per);
    const j = p % per;
    const inSheet = Math.min(per, META.count - sheet * per);
    const lines = Math.ceil(inSheet / cols);
    el.style.width = el.style.height = size + 'px';
    el.style.backgroundImage = 'url("sheets/' + sheet + '.webp")';
    el.style.backgroundSize = cols * size + 'px ' + lines * size + 'px';
    el.style.backgroundPosition = -(j % cols) * size + 'px ' + -Math.floor(j / cols) * size + 'px';
    el.dataset.index = i;
    if (title) el.title = title;
    return el;
  };
  /* Marked face k: its crop, or a plain marker when the map was made without it. */
  Sosie.markElement = function (size, k) {
    const mark = META.marks[k];
    if (!mark.image) {
      const el = Sosie.el('div', { class: 'face mark', title: 'photo not included in this map' }, '#' + (k + 1));
      el.style.width = el.style.height = size + 'px';
      return el;
    }
    const img = document.createElement('img');
    img.className = 'face mark';
    img.src = mark.image;
    img.width = img.height = size;
    img.alt = mark.label;
    return img;
  };

  Sosie.el = function (tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v);
    }
    for (const c of children) el.append(c);
    return el;
  };

  /* A row of faces: a list of indices -> elements, each calling onPick(i) when clicked. */
  Sosie.faceStrip = function (indices, size, onPick, captions) {
    const strip = Sosie.el('div', { class: 'strip' });
    indices.forEach((i, r) => {
      const cell = Sosie.el('figure', { class: 'cell' }, Sosie.faceElement(i, size, '#' + i));
      if (captions) cell.append(Sosie.el('figcaption', {}, captions[r]));
      cell.addEventListener('click', () => onPick(i));
      strip.append(cell);
    });
    return strip;
  };

  /* The explanation of the axes, the clusters and the marked face (shared by both pages). */
  Sosie.describeAxes = function (container, onPick, count) {
    const axes = META.pca.axes.slice(0, count || 3);
    container.append(Sosie.el('p', { class: 'note' }, META.pca.layout === 'umap'
      ? 'UMAP of the ' + META.corpus.dim + '-D face descriptors: neighbourhoods are kept, ' +
        'distances between far groups are not (its axes explain no share of the variance); ' +
        'faces at the two ends of each axis.'
      : 'PCA of the ' + META.corpus.dim + '-D face descriptors. The first three axes explain ' +
        Sosie.percent(META.pca.total_ratio) + ' of the variance; faces at the two ends of ' +
        'each axis show what it separates.'));
    axes.forEach((axis, a) => {
      const dir = ['horizontal, left → right', 'vertical, bottom → top', 'depth (3-D view)'][a];
      const bar = Sosie.el('div', { class: 'bar' });
      bar.style.setProperty('--w', (axes[0].ratio
        ? Math.max(2, 100 * axis.ratio / axes[0].ratio) : 0) + '%');
      container.append(
        Sosie.el('h3', {}, axis.name + (axes[0].ratio ? ' · ' + Sosie.percent(axis.ratio) : '')
          + ' ',
          Sosie.el('small', {}, dir)), bar,
        Sosie.el('div', { class: 'ends' },
          Sosie.el('span', { class: 'end' }, 'low'), Sosie.faceStrip(axis.low, 34, onPick)),
        Sosie.el('div', { class: 'ends' },
          Sosie.el('span', { class: 'end' }, 'high'), Sosie.faceStrip(axis.high, 34, onPick)));
    });
  };
  Sosie.describeClusters = function (container, onPick) {
    if (!META.clusters) return false;
    container.append(Sosie.el('p', { class: 'note' },
      META.clusters.length + ' k-means clusters of the descriptors; each is shown by the face ' +
      'nearest to its centre.'));
    const list = Sosie.el('div', { class: 'strip clusters' });
    META.clusters.forEach((c) => {
      if (c.centre < 0) return;
      const cell = Sosie.el('figure', { class: 'cell' },
        Sosie.faceElement(c.centre, 52, 'cluster ' + (c.id + 1)),
        Sosie.el('figcaption', {}, Sosie.el('b', { style: 'color:' + Sosie.clusterColour(c.id) },
          '● ' + (c.id + 1)), ' ' + c.size));
      cell.addEventListener('click', () => onPick(c.centre, c));
      list.append(cell);
    });
    container.append(list);
    return true;
  };
  Sosie.clusterColour = function (j, alpha) {
    const hue = (j * 137.508) % 360;
    return alpha === undefined ? `hsl(${hue}, 75%, 60%)` : `hsla(${hue}, 75%, 60%, ${alpha})`;
  };
  Sosie.clusterRGB = function (j) {
    const h = ((j * 137.508) % 360) / 60, s = 0.75, l = 0.6;
    const c = (1 - Math.abs(2 * l - 1)) * s, x = c * (1 - Math.abs((h % 2) - 1)), m = l - c / 2;
    const table = [[c, x, 0], [x, c, 0], [0, c, x], [0, x, c], [x, 0, c], [c, 0, x]];
    return table[Math.floor(h) % 6].map((v) => v + m);
  };

  /* Fill a panel section with face i large, its name and its neighbours. */
  Sosie.showFace = async function (container, i, onPick) {
    const wait = META.neighbours.method === 'browser'
      ? 'finding the nearest of ' + META.count.toLocaleString('en') + ' faces…' : '…';
    container.replaceChildren(Sosie.faceElement(i, 192), Sosie.el('p', { class: 'muted' }, wait));
    const face = await Sosie.face(i);
    const k = face.neighbours.length;
    const header = Sosie.el('p', { class: 'name' }, Sosie.el('b', {}, '#' + i + ' '), face.name);
    if (Sosie.points.cluster) header.append(' · cluster ' + (Sosie.points.cluster[i] + 1));
    const captions = face.neighbours.map((nb) => nb.distance.toFixed(3) + ' · ' +
      nb.likeness.toFixed(0) + ' %');
    container.replaceChildren(Sosie.faceElement(i, 192), header);
    if (!k) return face;
    const how = META.neighbours.method === 'exact' ? 'exact' : 'from 8-bit descriptors';
    container.append(
      Sosie.el('h3', {}, k + ' nearest faces ', Sosie.el('small', { title: Sosie.MEASURE }, 'dlib distance · likeness (' + how + ')')),
      Sosie.faceStrip(face.neighbours.map((nb) => nb.index), 58, onPick, captions));
    return face;
  };
  Sosie.MEASURE = 'Euclidean distance between dlib face descriptors (under 0.6: the same ' +
    'person to dlib); likeness: 50 % at 0.6. How close a face recogniser finds two faces, not ' +
    'a human judgement.';
  /* Every marked face, each with a button calling onShow(k). */
  Sosie.showMark = function (container, onPick, onShow) {
    const marks = META.marks || [];
    if (!marks.length) return false;
    marks.forEach((mark, k) => {
      const button = Sosie.el('button', { type: 'button', onclick: () => onShow(k) }, 'show on map');
      container.append(
        Sosie.el('div', { class: 'markhead' }, Sosie.markElement(96, k),
          Sosie.el('div', {}, Sosie.el('p', { class: 'name' }, mark.label), button)),
        Sosie.el('h3', {}, 'Nearest faces ', Sosie.el('small', { title: Sosie.MEASURE }, 'dlib distance · likeness')),
        Sosie.faceStrip(mark.neighbours, 58, onPick,
          mark.distances.map((d, r) => d.toFixed(3) + ' · ' + mark.likeness[r].toFixed(0) + ' %')));
    });
    return true;
  };
})();
