/* aarch64 NEON kernels (see serial.h for the contract), for the Raspberry Pi 4's Cortex-A72.
 *
 * Only base ARMv8.0 instructions: float16 is widened with FCVTL/FCVTL2 (vcvt_f32_f16,
 * vcvt_high_f32_f16) and all arithmetic is float32; no ARMv8.2 FP16 arithmetic, which the A72
 * lacks. Four rows per pass, two 4-lane accumulators per row, byte loads (any alignment).
 */
#ifndef SOSIE_NEON_H
#define SOSIE_NEON_H

#if defined(__aarch64__)
#define SOSIE_HAVE_NEON 1

#include <arm_neon.h>
#include <stddef.h>
#include <stdint.h>

static inline float16x8_t neon_load8(const char *p) {
    return vreinterpretq_f16_u8(vld1q_u8((const uint8_t *)p));
}

#define NEON_L2_STEP(a, b, row, off, qlo, qhi)                            \
    do {                                                                  \
        float16x8_t h_ = neon_load8((row) + (off));                       \
        float32x4_t tl_ = vsubq_f32(vcvt_f32_f16(vget_low_f16(h_)), qlo); \
        float32x4_t th_ = vsubq_f32(vcvt_high_f32_f16(h_), qhi);          \
        a = vfmaq_f32(a, tl_, tl_);                                       \
        b = vfmaq_f32(b, th_, th_);                                       \
    } while (0)

#define NEON_DOT_STEP(a, b, row, off, qlo, qhi)                           \
    do {                                                                  \
        float16x8_t h_ = neon_load8((row) + (off));                       \
        a = vfmaq_f32(a, vcvt_f32_f16(vget_low_f16(h_)), qlo);            \
        b = vfmaq_f32(b, vcvt_high_f32_f16(h_), qhi);                     \
    } while (0)

#define NEON_ROWS4(NAME, STEP)                                                              \
    static inline void NAME(const char *r, ptrdiff_t stride, const float *q, size_t d,      \
                            float out[4]) {                                                 \
        const char *r0 = r, *r1 = r + stride, *r2 = r + 2 * stride, *r3 = r + 3 * stride;   \
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;                      \
        float32x4_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;                                     \
        for (size_t j = 0; j < d; j += 8) {                                                 \
            float32x4_t ql = vld1q_f32(q + j), qh = vld1q_f32(q + j + 4);                   \
            size_t o = 2 * j;                                                               \
            STEP(a0, b0, r0, o, ql, qh); STEP(a1, b1, r1, o, ql, qh);                       \
            STEP(a2, b2, r2, o, ql, qh); STEP(a3, b3, r3, o, ql, qh);                       \
        }                                                                                   \
        float32x4_t s01 = vpaddq_f32(vaddq_f32(a0, b0), vaddq_f32(a1, b1));                 \
        float32x4_t s23 = vpaddq_f32(vaddq_f32(a2, b2), vaddq_f32(a3, b3));                 \
        vst1q_f32(out, vpaddq_f32(s01, s23));                                               \
    }

NEON_ROWS4(neon_l2_rows4, NEON_L2_STEP)
NEON_ROWS4(neon_dot_rows4, NEON_DOT_STEP)
SOSIE_ROWS8_FROM_ROWS4(neon_l2_rows8, neon_l2_rows4)
SOSIE_ROWS8_FROM_ROWS4(neon_dot_rows8, neon_dot_rows4)

/* The sketch (serial.h): 8 codes per step widened to int16 (SXTL), multiplied by the int16
 * weights and accumulated in int32 (SMLAL/SMLAL2); base ARMv8.0 (the A72 has no SDOT). */
static inline void neon_sketch_rows4(const int8_t *c, ptrdiff_t stride, const int16_t *w,
                                     size_t m, int32_t out[4]) {
    const int8_t *rows[4] = {c, c + stride, c + 2 * stride, c + 3 * stride};
    int32x4_t lo[4], hi[4];
    for (int r = 0; r < 4; r++) lo[r] = hi[r] = vdupq_n_s32(0);
    for (size_t j = 0; j < m; j += 8) {
        int16x8_t wv = vld1q_s16(w + j);
        for (int r = 0; r < 4; r++) {
            int16x8_t x = vmovl_s8(vld1_s8(rows[r] + j));
            lo[r] = vmlal_s16(lo[r], vget_low_s16(x), vget_low_s16(wv));
            hi[r] = vmlal_high_s16(hi[r], x, wv);
        }
    }
    int32x4_t s01 = vpaddq_s32(vaddq_s32(lo[0], hi[0]), vaddq_s32(lo[1], hi[1]));
    int32x4_t s23 = vpaddq_s32(vaddq_s32(lo[2], hi[2]), vaddq_s32(lo[3], hi[3]));
    vst1q_s32(out, vpaddq_s32(s01, s23));
}

/* The first stage's blocks (serial.h): per pair of axes, 16 rows' codes widened to int16 (SXTL)
 * and multiplied by the weight pair [w0 w1 w0 w1] (SMLAL/SMLAL2): each accumulator holds two
 * rows' two partial sums, added pairwise at the end (ADDP). */
static inline void neon_sketch_block16(const int8_t *block, const int32_t *wp, size_t m,
                                       int32_t out[16]) {
    int32x4_t acc[8];
    for (int r = 0; r < 8; r++) acc[r] = vdupq_n_s32(0);
    for (size_t p = 0; p < m / 2; p++) {
        const int8_t *c = block + 32 * p;
        int16x4_t w = vreinterpret_s16_s32(vdup_n_s32(wp[p]));
        int16x8_t w8 = vcombine_s16(w, w);
        for (int h = 0; h < 2; h++) {
            int8x16_t x = vld1q_s8(c + 16 * h); /* rows 8h .. 8h + 7 */
            int16x8_t lo = vmovl_s8(vget_low_s8(x)), hi = vmovl_high_s8(x);
            acc[4 * h] = vmlal_s16(acc[4 * h], vget_low_s16(lo), w);
            acc[4 * h + 1] = vmlal_high_s16(acc[4 * h + 1], lo, w8);
            acc[4 * h + 2] = vmlal_s16(acc[4 * h + 2], vget_low_s16(hi), w);
            acc[4 * h + 3] = vmlal_high_s16(acc[4 * h + 3], hi, w8);
        }
    }
    for (int r = 0; r < 4; r++) vst1q_s32(out + 4 * r, vpaddq_s32(acc[2 * r], acc[2 * r + 1]));
}

/* serial.h's le_mask16: four compares (false for NaN), each lane ANDed with its bit, summed. */
static inline uint32_t neon_le_mask16(const float *v, float h) {
    static const uint32_t bits[4] = {1, 2, 4, 8};
    uint32x4_t b = vld1q_u32(bits);
    float32x4_t hv = vdupq_n_f32(h);
    uint32_t mask = 0;
    for (int g = 0; g < 4; g++)
        mask |= vaddvq_u32(vandq_u32(vcleq_f32(vld1q_f32(v + 4 * g), hv), b)) << (4 * g);
    return mask;
}

static inline size_t neon_rounding_depth(size_t d) { return d / 8 + 6; }

#endif
#endif
