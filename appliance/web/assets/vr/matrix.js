/* Sosie 3-D view, matrix maths: 4x4 matrices as Float32Array(16), column-major like WebGL and
   WebXR. Pure functions (no DOM, no GL), so tests/js/matrix.test.js runs them in node. */
'use strict';
(function (vr) {
  vr.mat = {
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
  /* The cloud placed in a headset's room: model = translate(centre) rotateY(yaw) scale(scale),
     and back: a point (w = 1) or direction (w = 0, its length kept) of the room in model space
     (controller rays are picked and sheets scored in model space). */
  vr.placement = {
    model: (centre, yaw, scale) => vr.mat.multiply(vr.mat.translate(centre[0], centre[1], centre[2]),
      vr.mat.multiply(vr.mat.rotateY(yaw), vr.mat.scale(scale))),
    toModel(p, w, centre, yaw, scale) {
      const c = Math.cos(-yaw), s = Math.sin(-yaw);
      const r = w ? [p[0] - centre[0], p[1] - centre[1], p[2] - centre[2]] : p;
      const k = w ? 1 / scale : 1;
      return [(c * r[0] + s * r[2]) * k, r[1] * k, (-s * r[0] + c * r[2]) * k];
    },
  };
  /* m times the point p (w = 1): [x, y, z, w] (clip coordinates when m ends in a projection). */
  vr.transform = (m, p) => [
    m[0] * p[0] + m[4] * p[1] + m[8] * p[2] + m[12], m[1] * p[0] + m[5] * p[1] + m[9] * p[2] + m[13],
    m[2] * p[0] + m[6] * p[1] + m[10] * p[2] + m[14], m[3] * p[0] + m[7] * p[1] + m[11] * p[2] + m[15]];
})(Sosie.vr || (Sosie.vr = {}));
