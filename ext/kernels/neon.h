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

/* The sketch (serial.h): 8 codes per step widened s8 -> s16 -> s32 -> f32 (base ARMv8.0; no
 * SDOT, which the A72 lacks); q - c*s has the magnitude of c*s - q. */
static inline void neon_sketch_rows4(const int8_t *c, ptrdiff_t stride, const float *scale,
                                     const float *q, size_t m, float out[4]) {
    const int8_t *rows[4] = {c, c + stride, c + 2 * stride, c + 3 * stride};
    float32x4_t acc[4][2];
    for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = vdupq_n_f32(0.0f);
    for (size_t j = 0; j < m; j += 8) {
        float32x4_t sl = vld1q_f32(scale + j), sh = vld1q_f32(scale + j + 4);
        float32x4_t ql = vld1q_f32(q + j), qh = vld1q_f32(q + j + 4);
        for (int r = 0; r < 4; r++) {
            int16x8_t w = vmovl_s8(vld1_s8(rows[r] + j));
            float32x4_t xl = vcvtq_f32_s32(vmovl_s16(vget_low_s16(w)));
            float32x4_t xh = vcvtq_f32_s32(vmovl_high_s16(w));
            float32x4_t tl = vfmsq_f32(ql, xl, sl), th = vfmsq_f32(qh, xh, sh);
            acc[r][0] = vfmaq_f32(acc[r][0], tl, tl);
            acc[r][1] = vfmaq_f32(acc[r][1], th, th);
        }
    }
    float32x4_t s01 = vpaddq_f32(vaddq_f32(acc[0][0], acc[0][1]), vaddq_f32(acc[1][0], acc[1][1]));
    float32x4_t s23 = vpaddq_f32(vaddq_f32(acc[2][0], acc[2][1]), vaddq_f32(acc[3][0], acc[3][1]));
    vst1q_f32(out, vpaddq_f32(s01, s23));
}

static inline size_t neon_rounding_depth(size_t d) { return d / 8 + 6; }

#endif
#endif
