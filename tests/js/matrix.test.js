// The 3-D view's matrix maths (appliance/web/assets/vr/matrix.js), run in node: `node --test`
// (tests/test_vr_maths.py runs it from pytest). The page's classic script is loaded as the
// browser loads it, into a context holding only the Sosie namespace.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const SCRIPT = path.join(__dirname, '..', '..', 'appliance', 'web', 'assets', 'vr', 'matrix.js');
function load() {
  const context = { Sosie: {} };
  vm.runInNewContext(fs.readFileSync(SCRIPT, 'utf8'), context, { filename: SCRIPT });
  return context.Sosie.vr;
}
const { mat, transform, placement } = load();

/* A seeded generator (mulberry32): the same cases on every run. */
function random(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = random(2024);
const between = (lo, hi) => lo + (hi - lo) * rnd();
const point = (r = 3) => [between(-r, r), between(-r, r), between(-r, r)];
const matrix = () => Float32Array.from({ length: 16 }, () => between(-2, 2));
function close(got, want, tolerance, what) {
  assert.equal(got.length, want.length, what);
  for (let k = 0; k < want.length; k++) {
    assert.ok(Math.abs(got[k] - want[k]) <= tolerance * (1 + Math.abs(want[k])),
      `${what}: [${k}] ${got[k]} != ${want[k]} (got ${Array.from(got)}, want ${Array.from(want)})`);
  }
}
const CASES = 200;

test('multiplying composes transforms: (A B) p = A (B p), and the identity changes nothing', () => {
  for (let n = 0; n < CASES; n++) {
    const a = matrix(), b = matrix(), p = point();
    const bp = transform(b, p); // homogeneous: carry w through A by hand
    const abp = [0, 1, 2, 3].map((r) => a[r] * bp[0] + a[4 + r] * bp[1] + a[8 + r] * bp[2] + a[12 + r] * bp[3]);
    close(transform(mat.multiply(a, b), p), abp, 1e-5, 'A B');
    close(mat.multiply(mat.identity(), a), a, 0, 'I A');
    close(mat.multiply(a, mat.identity()), a, 0, 'A I');
  }
});

test('multiplication is column-major, as WebGL reads uniformMatrix4fv', () => {
  // translate then scale: the translation column is scaled, not the other way round
  const m = mat.multiply(mat.scale(2), mat.translate(1, 2, 3));
  close(m, [2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 2, 4, 6, 1], 0, 'S T');
  close(transform(m, [0, 0, 0]), [2, 4, 6, 1], 0, 'S T origin');
});

test('translate, scale and rotateY move points as their names say', () => {
  for (let n = 0; n < CASES; n++) {
    const p = point(), t = point(), s = between(0.05, 20), a = between(-7, 7);
    close(transform(mat.translate(...t), p), [p[0] + t[0], p[1] + t[1], p[2] + t[2], 1], 1e-6, 'translate');
    close(transform(mat.scale(s), p), [s * p[0], s * p[1], s * p[2], 1], 1e-6, 'scale');
    const c = Math.cos(a), sn = Math.sin(a);
    // about +y, right-handed: +x turns towards -z
    close(transform(mat.rotateY(a), p), [c * p[0] + sn * p[2], p[1], -sn * p[0] + c * p[2], 1], 1e-6, 'rotateY');
  }
  close(transform(mat.rotateY(Math.PI / 2), [1, 0, 0]), [0, 0, -1, 1], 1e-7, 'x to -z');
});

test('perspective maps the near and far planes to -1 and 1 and the view edges to the NDC edges', () => {
  for (let n = 0; n < CASES; n++) {
    const fovy = between(0.3, 2.5), aspect = between(0.3, 3), near = between(0.001, 0.5);
    const far = near * between(10, 1e4);
    const m = mat.perspective(fovy, aspect, near, far);
    const ndc = (p) => { const c = transform(m, p); return [c[0] / c[3], c[1] / c[3], c[2] / c[3]]; };
    close([ndc([0, 0, -near])[2], ndc([0, 0, -far])[2]], [-1, 1], 1e-4, 'depth range');
    const d = between(near, far), h = d * Math.tan(fovy / 2);
    close(ndc([aspect * h, h, -d]).slice(0, 2), [1, 1], 1e-4, 'top right edge');
    assert.ok(transform(m, [0, 0, -d])[3] > 0, 'in front: w > 0');
    assert.ok(transform(m, [0, 0, d])[3] < 0, 'behind: w < 0');
  }
});

test('lookAt puts the eye at the origin, the target straight ahead on -z, and up upwards', () => {
  for (let n = 0; n < CASES; n++) {
    const eye = point(), at = point(), up = [between(-0.3, 0.3), 1, between(-0.3, 0.3)];
    const distance = Math.hypot(at[0] - eye[0], at[1] - eye[1], at[2] - eye[2]);
    const along = Math.abs((at[1] - eye[1]) / distance) / Math.hypot(...up);
    if (distance < 0.1 || along > 0.95) continue; // looking (nearly) along up: no answer
    const m = mat.lookAt(eye, at, up);
    close(transform(m, eye), [0, 0, 0, 1], 1e-5, 'eye');
    close(transform(m, at), [0, 0, -distance, 1], 1e-5, 'target');
    const above = transform(m, [eye[0] + up[0], eye[1] + up[1], eye[2] + up[2]]);
    assert.ok(above[1] > 0 && Math.abs(above[0]) < 1e-5, `up stays up: ${above}`);
    // a rigid motion: the rotation part is orthonormal (no stretch)
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
      const dot = m[i] * m[j] + m[4 + i] * m[4 + j] + m[8 + i] * m[8 + j];
      assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-5, `rows ${i} ${j}: ${dot}`);
    }
  }
});

test('placement: toModel undoes the model matrix that draws the cloud (rays pick what is drawn)', () => {
  for (let n = 0; n < CASES; n++) {
    const centre = point(2), yaw = between(-7, 7), scale = between(0.05, 20), p = point(), d = point(1);
    const model = placement.model(centre, yaw, scale);
    close(transform(model, placement.toModel(p, 1, centre, yaw, scale)), [...p, 1], 1e-5, 'point');
    // directions turn with the cloud, without its scale: a unit ray stays a unit ray
    const dm = placement.toModel(d, 0, centre, yaw, scale);
    const back = [0, 1, 2].map((r) => (model[r] * dm[0] + model[4 + r] * dm[1] + model[8 + r] * dm[2]) / scale);
    close(back, d, 1e-5, 'direction');
    close([Math.hypot(...dm)], [Math.hypot(...d)], 1e-6, 'length');
  }
});
