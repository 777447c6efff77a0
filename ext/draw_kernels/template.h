/* The drawing kernels, instantiated once per ISA by dispatch.c:
 *
 *   #define DRAW_ISA avx2                  name prefix
 *   #define DRAW_ATTR DRAW_TARGET_AVX2     function attributes (target) or empty
 *   #include "template.h"
 *
 * Plain C written for the compiler's vectorizer: the inner loops run along contiguous
 * channels (col2im) or along a row (resample), element by element, so every ISA computes the
 * same sums in the same order as the serial build (see draw.h).
 */
#define DRAW_CAT_(a, b) a##_##b
#define DRAW_CAT(a, b) DRAW_CAT_(a, b)

/* The taps landing on output coordinate o (full coordinate o + padding) along one axis of
 * `in` input pixels: (tap, input pixel) pairs with the tap ascending, `count[o]` of them at
 * pairs + 2 * o * k. */
static inline void DRAW_CAT(DRAW_ISA, landing)(size_t out, size_t in, size_t k, size_t stride,
                                               size_t padding, size_t *pairs, size_t *count) {
    for (size_t o = 0; o < out; o++) {
        size_t f = o + padding, m = 0;
        for (size_t t = 0; t < k && t <= f; t++) {
            size_t d = f - t, i = d / stride;
            if (d % stride || i >= in) continue;
            pairs[2 * (o * k + m)] = t;
            pairs[2 * (o * k + m) + 1] = i;
            m++;
        }
        count[o] = m;
    }
}

/* A summed output pixel's last steps: + bias, then ReLU as np.maximum(x, 0) (-0 becomes +0,
 * NaN stays). */
DRAW_ATTR static inline void DRAW_CAT(DRAW_ISA, finish)(float *restrict o, size_t cout,
                                                        const float *bias, int relu) {
    if (bias)
        for (size_t c = 0; c < cout; c++) o[c] += bias[c];
    if (relu)
        for (size_t c = 0; c < cout; c++) {
            float v = o[c];
            o[c] = (v > 0.0f || v != v) ? v : 0.0f;
        }
}

/* One output pixel: its taps added in (ky, kx) order from 0, then + bias, then ReLU. */
DRAW_ATTR static inline void DRAW_CAT(DRAW_ISA, pixel)(const float *image, const size_t *yp,
                                                       size_t ny, const size_t *xp, size_t nx,
                                                       size_t w, size_t pixel, size_t row,
                                                       size_t cout, const float *bias,
                                                       int relu, float *restrict o) {
    for (size_t c = 0; c < cout; c++) o[c] = 0.0f;
    for (size_t a = 0; a < ny; a++) {
        const float *tap_row = image + yp[2 * a + 1] * w * pixel + yp[2 * a] * row;
        for (size_t e = 0; e < nx; e++) {
            const float *restrict t = tap_row + xp[2 * e + 1] * pixel + xp[2 * e] * cout;
            for (size_t c = 0; c < cout; c++) o[c] += t[c];
        }
    }
    DRAW_CAT(DRAW_ISA, finish)(o, cout, bias, relu);
}

DRAW_ATTR static void DRAW_CAT(DRAW_ISA, col2im)(const float *taps, size_t n, size_t h,
                                                  size_t w, size_t k, size_t cout,
                                                  size_t stride, size_t padding,
                                                  const float *bias, int relu, float *out,
                                                  size_t *ys, size_t *ny, size_t *xs,
                                                  size_t *nx) {
    size_t oh = (h - 1) * stride + k - 2 * padding, ow = (w - 1) * stride + k - 2 * padding;
    size_t row = k * cout, pixel = k * row; /* floats from one tap row / input pixel to the next */
    DRAW_CAT(DRAW_ISA, landing)(oh, h, k, stride, padding, ys, ny);
    DRAW_CAT(DRAW_ISA, landing)(ow, w, k, stride, padding, xs, nx);
    for (size_t b = 0; b < n; b++) {
        const float *image = taps + b * h * w * pixel;
        for (size_t oy = 0; oy < oh; oy++) {
            const size_t *yp = ys + 2 * oy * k;
            float *o = out + (b * oh + oy) * ow * cout;
            if (cout == 3) /* the RGB layer: a constant width the compiler unrolls */
                for (size_t ox = 0; ox < ow; ox++)
                    DRAW_CAT(DRAW_ISA, pixel)(image, yp, ny[oy], xs + 2 * ox * k, nx[ox], w,
                                              pixel, row, 3, bias, relu, o + ox * 3);
            else
                for (size_t ox = 0; ox < ow; ox++)
                    DRAW_CAT(DRAW_ISA, pixel)(image, yp, ny[oy], xs + 2 * ox * k, nx[ox], w,
                                              pixel, row, cout, bias, relu, o + ox * cout);
        }
    }
}

/* Output pixel p (cout floats at out + p * cout): its taps at base + offsets[p * per + j],
 * j ascending up to the first negative offset (none left), added from 0.0f, then + bias, then
 * ReLU: the sums of `pixel` (hence of numpy's strided adds) for taps stored wherever the
 * caller computed them. */
DRAW_ATTR static void DRAW_CAT(DRAW_ISA, gather)(const float *base, const int64_t *offsets,
                                                  size_t npix, size_t per, size_t cout,
                                                  const float *bias, int relu, float *out) {
    for (size_t p = 0; p < npix; p++) {
        float *restrict o = out + p * cout;
        const int64_t *off = offsets + p * per;
        for (size_t c = 0; c < cout; c++) o[c] = 0.0f;
        for (size_t j = 0; j < per && off[j] >= 0; j++) {
            const float *restrict t = base + off[j];
            for (size_t c = 0; c < cout; c++) o[c] += t[c];
        }
        DRAW_CAT(DRAW_ISA, finish)(o, cout, bias, relu);
    }
}

/* Out row r (at out + r * out_step) of the resampling pass, its i-th byte at i / group *
 * group_step + i % group: group = row_len, group_step = 0 writes a plain row; group = the bytes
 * of a pixel writes it transposed (the horizontal pass's rows are the image's columns). */
DRAW_ATTR static void DRAW_CAT(DRAW_ISA, resample_rows)(const uint8_t *in, size_t row_len,
                                                         size_t out_rows, const int *bounds,
                                                         const int32_t *coeffs, int ksize,
                                                         int32_t *restrict acc, uint8_t *out,
                                                         size_t out_step, size_t group,
                                                         size_t group_step) {
    for (size_t r = 0; r < out_rows; r++) {
        const int32_t *k = coeffs + r * (size_t)ksize;
        for (size_t i = 0; i < row_len; i++) acc[i] = 1 << (DRAW_PRECISION_BITS - 1);
        for (int t = 0; t < bounds[2 * r + 1]; t++) {
            const uint8_t *restrict src = in + ((size_t)bounds[2 * r] + (size_t)t) * row_len;
            int32_t kt = k[t];
            for (size_t i = 0; i < row_len; i++) acc[i] += (int32_t)src[i] * kt;
        }
        for (size_t i = 0; i < row_len; i++) {
            int32_t v = acc[i] >> DRAW_PRECISION_BITS;
            acc[i] = v < 0 ? 0 : v > 255 ? 255 : v;
        }
        uint8_t *restrict dst = out + r * out_step;
        for (size_t g = 0; g < row_len; g += group, dst += group_step)
            for (size_t i = 0; i < group; i++) dst[i] = (uint8_t)acc[g + i];
    }
}

#undef DRAW_ISA
#undef DRAW_ATTR
