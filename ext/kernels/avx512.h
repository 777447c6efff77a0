/* x86-64 AVX-512 (F + BW) kernels (see serial.h for the contract).
 *
 * Same scheme as avx2.h with 16 lanes: half the instructions per row, which matters when the
 * core's other hyperthread competes for the vector ports. Compiled with per-function target
 * attributes; dispatch.c only calls these after __builtin_cpu_supports("avx512f") and
 * ("avx512bw") (every AVX-512 CPU since Skylake-SP has both).
 * A row width that is not a multiple of 16 ends with a masked 8-value step.
 */
#ifndef SOSIE_AVX512_H
#define SOSIE_AVX512_H

#if defined(__x86_64__)
#define SOSIE_HAVE_AVX512 1

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "avx2.h"

#define SOSIE_AVX512 __attribute__((target("avx512f,avx512bw,avx2,f16c,fma")))

SOSIE_AVX512 static inline __m512 avx512_load16(const char *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

SOSIE_AVX512 static inline __m512 avx512_load8(const char *p) { /* upper 8 lanes zero */
    return _mm512_cvtph_ps(_mm256_zextsi128_si256(_mm_loadu_si128((const __m128i *)p)));
}

/* [sum(s0), sum(s1), sum(s2), sum(s3)]; each lane only ever adds numbers of its own row. */
SOSIE_AVX512 static inline __m128 avx512_reduce4(__m512 s0, __m512 s1, __m512 s2, __m512 s3) {
#define FOLD(s) _mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps_(s))
#define _mm512_extractf32x8_ps_(s) _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1))
    __m256 f0 = FOLD(s0), f1 = FOLD(s1), f2 = FOLD(s2), f3 = FOLD(s3);
#undef FOLD
#undef _mm512_extractf32x8_ps_
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(f0, f1), _mm256_hadd_ps(f2, f3));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

#define AVX512_L2_STEP(acc, x, qv)                      \
    do {                                                \
        __m512 t_ = _mm512_sub_ps((x), (qv));           \
        acc = _mm512_fmadd_ps(t_, t_, acc);             \
    } while (0)

#define AVX512_DOT_STEP(acc, x, qv) acc = _mm512_fmadd_ps((x), (qv), acc)

#define AVX512_ROWS4(NAME, STEP)                                                             \
    SOSIE_AVX512 static inline void NAME(const char *r, ptrdiff_t stride, const float *q,    \
                                         size_t d, float out[4]) {                           \
        const char *r0 = r, *r1 = r + stride, *r2 = r + 2 * stride, *r3 = r + 3 * stride;    \
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                          \
        __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0;                                           \
        size_t j = 0;                                                                        \
        for (; j + 32 <= d; j += 32) {                                                       \
            __m512 qa = _mm512_loadu_ps(q + j), qb = _mm512_loadu_ps(q + j + 16);            \
            size_t o = 2 * j;                                                                \
            STEP(a0, avx512_load16(r0 + o), qa); STEP(a1, avx512_load16(r1 + o), qa);        \
            STEP(a2, avx512_load16(r2 + o), qa); STEP(a3, avx512_load16(r3 + o), qa);        \
            o += 32;                                                                         \
            STEP(b0, avx512_load16(r0 + o), qb); STEP(b1, avx512_load16(r1 + o), qb);        \
            STEP(b2, avx512_load16(r2 + o), qb); STEP(b3, avx512_load16(r3 + o), qb);        \
        }                                                                                    \
        if (j + 16 <= d) {                                                                   \
            __m512 qa = _mm512_loadu_ps(q + j);                                              \
            size_t o = 2 * j;                                                                \
            STEP(a0, avx512_load16(r0 + o), qa); STEP(a1, avx512_load16(r1 + o), qa);        \
            STEP(a2, avx512_load16(r2 + o), qa); STEP(a3, avx512_load16(r3 + o), qa);        \
            j += 16;                                                                         \
        }                                                                                    \
        if (j < d) { /* d is a multiple of 8: one masked 8-value step */                     \
            __m512 qa = _mm512_maskz_loadu_ps(0x00ff, q + j);                                \
            size_t o = 2 * j;                                                                \
            STEP(b0, avx512_load8(r0 + o), qa); STEP(b1, avx512_load8(r1 + o), qa);          \
            STEP(b2, avx512_load8(r2 + o), qa); STEP(b3, avx512_load8(r3 + o), qa);          \
        }                                                                                    \
        _mm_storeu_ps(out, avx512_reduce4(_mm512_add_ps(a0, b0), _mm512_add_ps(a1, b1),      \
                                          _mm512_add_ps(a2, b2), _mm512_add_ps(a3, b3)));    \
    }

AVX512_ROWS4(avx512_l2_rows4, AVX512_L2_STEP)
AVX512_ROWS4(avx512_dot_rows4, AVX512_DOT_STEP)

/* [sum(a0), ..., sum(a7)] by a transposed reduction: 24 shuffles and adds for 8 rows (instead
 * of a horizontal sum per row). Lane sums pair up the same way for every row, whichever rows
 * its neighbours are: 16 -> 8 (128-bit lanes 0+2, 1+3), 8 -> 4, 4 -> 2, 2 -> 1. */
SOSIE_AVX512 static inline __m256 avx512_reduce8(__m512 a0, __m512 a1, __m512 a2, __m512 a3,
                                                 __m512 a4, __m512 a5, __m512 a6, __m512 a7) {
#define PAIR16(x, y) _mm512_add_ps(_mm512_shuffle_f32x4((x), (y), 0x44),                     \
                                   _mm512_shuffle_f32x4((x), (y), 0xEE))
#define PAIR8(x, y) _mm512_add_ps(_mm512_shuffle_f32x4((x), (y), 0x88),                      \
                                  _mm512_shuffle_f32x4((x), (y), 0xDD))
    /* p01: 128-bit lanes [row0, row0, row1, row1]; q0123: lanes [row0, row1, row2, row3] */
    __m512 q0123 = PAIR8(PAIR16(a0, a1), PAIR16(a2, a3));
    __m512 q4567 = PAIR8(PAIR16(a4, a5), PAIR16(a6, a7));
#undef PAIR16
#undef PAIR8
    /* per lane l: [x0+x2, y0+y2, x1+x3, y1+y3] with x = row l, y = row l + 4 */
    __m512 s = _mm512_add_ps(_mm512_unpacklo_ps(q0123, q4567), _mm512_unpackhi_ps(q0123, q4567));
    s = _mm512_add_ps(s, _mm512_permute_ps(s, 0x4E)); /* lane l: [row l, row l + 4, ...] */
    const __m512i pick = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_castps512_ps256(_mm512_permutexvar_ps(pick, s));
}

/* STEP for each of the eight rows r0..r7 into a0..a7 at byte offset o, LOAD widening 16 or 8
 * float16 values (the names are those of AVX512_ROWS8's body). */
#define AVX512_EIGHT(STEP, LOAD, o, qa)                                                      \
    do {                                                                                     \
        STEP(a0, LOAD(r0 + (o)), qa); STEP(a1, LOAD(r1 + (o)), qa);                          \
        STEP(a2, LOAD(r2 + (o)), qa); STEP(a3, LOAD(r3 + (o)), qa);                          \
        STEP(a4, LOAD(r4 + (o)), qa); STEP(a5, LOAD(r5 + (o)), qa);                          \
        STEP(a6, LOAD(r6 + (o)), qa); STEP(a7, LOAD(r7 + (o)), qa);                          \
    } while (0)

/* Eight rows per pass, one accumulator per row (eight FMA chains in flight), the query's 16
 * lanes loaded once for eight rows, one transposed reduction: fewer instructions per row than
 * rows4, so the scan stays at the memory's pace when another thread shares the core. */
#define AVX512_ROWS8(NAME, STEP)                                                             \
    SOSIE_AVX512 static inline void NAME(const char *r, ptrdiff_t stride, const float *q,    \
                                         size_t d, float out[8]) {                           \
        const char *r0 = r, *r1 = r + stride, *r2 = r + 2 * stride, *r3 = r + 3 * stride;    \
        const char *r4 = r + 4 * stride, *r5 = r + 5 * stride, *r6 = r + 6 * stride;         \
        const char *r7 = r + 7 * stride;                                                     \
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                          \
        __m512 a4 = a0, a5 = a0, a6 = a0, a7 = a0;                                           \
        size_t j = 0;                                                                        \
        for (; j + 16 <= d; j += 16) {                                                       \
            __m512 qa = _mm512_loadu_ps(q + j);                                              \
            size_t o = 2 * j;                                                                \
            AVX512_EIGHT(STEP, avx512_load16, o, qa);                                        \
        }                                                                                    \
        if (j < d) { /* d is a multiple of 8: one masked 8-value step */                     \
            __m512 qa = _mm512_maskz_loadu_ps(0x00ff, q + j);                                \
            size_t o = 2 * j;                                                                \
            AVX512_EIGHT(STEP, avx512_load8, o, qa);                                         \
        }                                                                                    \
        _mm256_storeu_ps(out, avx512_reduce8(a0, a1, a2, a3, a4, a5, a6, a7));               \
    }

AVX512_ROWS8(avx512_l2_rows8, AVX512_L2_STEP)
AVX512_ROWS8(avx512_dot_rows8, AVX512_DOT_STEP)

/* The sketch (serial.h): avx2.h's 256-bit pass. Measured here (200k x 48 codes, one core) the
 * 512-bit variant (32 codes a step, a 256-bit step for the rest, a horizontal sum per row) was
 * 1.4x slower: widening and reduction shuffles all go to port 5, which 512-bit code shares with
 * the integer multiplies. */
SOSIE_AVX512 static inline void avx512_sketch_rows4(const int8_t *c, ptrdiff_t stride,
                                                      const int16_t *w, size_t m,
                                                      int32_t out[4]) {
    avx2_sketch_rows4(c, stride, w, m, out);
}

/* The first stage's blocks (serial.h): avx2.h's 256-bit kernel. Measured here (200k rows, the
 * whole sketch scan, cold, interleaved) the 512-bit variant (one vpmovsxbw zmm and one
 * vpmaddwd per pair for all 16 rows) was 10-25 % slower: the widening goes to port 5 and
 * 512-bit code leaves port 1 idle. */
SOSIE_AVX512 static inline void avx512_sketch_block16(const int8_t *block, const int32_t *wp,
                                                      size_t m, int32_t out[16]) {
    avx2_sketch_block16(block, wp, m, out);
}

/* serial.h's le_mask16: one compare into a mask register (ordered: false for NaN). */
SOSIE_AVX512 static inline uint32_t avx512_le_mask16(const float *v, float h) {
    return (uint32_t)_mm512_cmp_ps_mask(_mm512_loadu_ps(v), _mm512_set1_ps(h), _CMP_LE_OQ);
}

/* rows8: d / 16 + 1 additions per lane, 4 in the reduction (rows4: d / 32 + 6); + slack */
static inline size_t avx512_rounding_depth(size_t d) { return d / 16 + 10; }

#endif
#endif
