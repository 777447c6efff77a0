/* x86-64 AVX2 + F16C + FMA kernels (see serial.h for the contract).
 *
 * Compiled with per-function target attributes, so the module built for baseline x86-64 still
 * imports on CPUs without AVX2; dispatch.c only calls these after __builtin_cpu_supports().
 * Four rows per pass, two independent 8-lane accumulators per row (8 FMA chains in flight),
 * unaligned 16-byte loads widened with vcvtph2ps, one joint horizontal reduction for 4 rows.
 */
#ifndef SOSIE_AVX2_H
#define SOSIE_AVX2_H

#if defined(__x86_64__) || defined(__i386__)
#define SOSIE_HAVE_AVX2 1

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define SOSIE_AVX2 __attribute__((target("avx2,f16c,fma")))

SOSIE_AVX2 static inline __m256 avx2_load8(const char *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

/* [sum(s0), sum(s1), sum(s2), sum(s3)]; each lane only ever adds numbers of its own row. */
SOSIE_AVX2 static inline __m128 avx2_reduce4(__m256 s0, __m256 s1, __m256 s2, __m256 s3) {
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

#define AVX2_L2_STEP(acc, row, off, qv)                                   \
    do {                                                                  \
        __m256 t_ = _mm256_sub_ps(avx2_load8((row) + (off)), (qv));       \
        acc = _mm256_fmadd_ps(t_, t_, acc);                               \
    } while (0)

#define AVX2_DOT_STEP(acc, row, off, qv) \
    acc = _mm256_fmadd_ps(avx2_load8((row) + (off)), (qv), acc)

#define AVX2_ROWS4(NAME, STEP)                                                              \
    SOSIE_AVX2 static inline void NAME(const char *r, ptrdiff_t stride, const float *q,     \
                                       size_t d, float out[4]) {                            \
        const char *r0 = r, *r1 = r + stride, *r2 = r + 2 * stride, *r3 = r + 3 * stride;   \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                         \
        __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;                                          \
        size_t j = 0;                                                                       \
        for (; j + 16 <= d; j += 16) {                                                      \
            __m256 qa = _mm256_loadu_ps(q + j), qb = _mm256_loadu_ps(q + j + 8);            \
            size_t o = 2 * j;                                                               \
            STEP(a0, r0, o, qa); STEP(a1, r1, o, qa); STEP(a2, r2, o, qa);                  \
            STEP(a3, r3, o, qa);                                                            \
            STEP(b0, r0, o + 16, qb); STEP(b1, r1, o + 16, qb); STEP(b2, r2, o + 16, qb);   \
            STEP(b3, r3, o + 16, qb);                                                       \
        }                                                                                   \
        if (j < d) { /* d is a multiple of 8: one last half-step */                         \
            __m256 qa = _mm256_loadu_ps(q + j);                                             \
            size_t o = 2 * j;                                                               \
            STEP(a0, r0, o, qa); STEP(a1, r1, o, qa); STEP(a2, r2, o, qa);                  \
            STEP(a3, r3, o, qa);                                                            \
        }                                                                                   \
        _mm_storeu_ps(out, avx2_reduce4(_mm256_add_ps(a0, b0), _mm256_add_ps(a1, b1),       \
                                        _mm256_add_ps(a2, b2), _mm256_add_ps(a3, b3)));     \
    }

AVX2_ROWS4(avx2_l2_rows4, AVX2_L2_STEP)
AVX2_ROWS4(avx2_dot_rows4, AVX2_DOT_STEP)

/* [sum(a0), ..., sum(a7)]: 6 hadds and one cross-lane add for 8 rows, the same pairing of
 * lanes for every row (0+1, 2+3, then those, then the two 128-bit halves). */
SOSIE_AVX2 static inline __m256 avx2_reduce8(__m256 a0, __m256 a1, __m256 a2, __m256 a3,
                                             __m256 a4, __m256 a5, __m256 a6, __m256 a7) {
    __m256 h0123 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    __m256 h4567 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
    return _mm256_add_ps(_mm256_permute2f128_ps(h0123, h4567, 0x20),
                         _mm256_permute2f128_ps(h0123, h4567, 0x31));
}

/* Eight rows per pass, one 8-lane accumulator per row (eight FMA chains in flight), the query
 * loaded once for eight rows, one joint reduction: fewer instructions per row than rows4. */
#define AVX2_ROWS8(NAME, STEP)                                                              \
    SOSIE_AVX2 static inline void NAME(const char *r, ptrdiff_t stride, const float *q,     \
                                       size_t d, float out[8]) {                            \
        const char *r0 = r, *r1 = r + stride, *r2 = r + 2 * stride, *r3 = r + 3 * stride;   \
        const char *r4 = r + 4 * stride, *r5 = r + 5 * stride, *r6 = r + 6 * stride;        \
        const char *r7 = r + 7 * stride;                                                    \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                         \
        __m256 a4 = a0, a5 = a0, a6 = a0, a7 = a0;                                          \
        for (size_t j = 0; j < d; j += 8) { /* d is a multiple of 8 */                      \
            __m256 qa = _mm256_loadu_ps(q + j);                                             \
            size_t o = 2 * j;                                                               \
            STEP(a0, r0, o, qa); STEP(a1, r1, o, qa); STEP(a2, r2, o, qa);                  \
            STEP(a3, r3, o, qa); STEP(a4, r4, o, qa); STEP(a5, r5, o, qa);                  \
            STEP(a6, r6, o, qa); STEP(a7, r7, o, qa);                                       \
        }                                                                                   \
        _mm256_storeu_ps(out, avx2_reduce8(a0, a1, a2, a3, a4, a5, a6, a7));                \
    }

AVX2_ROWS8(avx2_l2_rows8, AVX2_L2_STEP)
AVX2_ROWS8(avx2_dot_rows8, AVX2_DOT_STEP)

/* [sum(s0), sum(s1), sum(s2), sum(s3)] of int32 lanes. */
SOSIE_AVX2 static inline __m128i avx2_reduce4_epi32(__m256i s0, __m256i s1, __m256i s2,
                                                    __m256i s3) {
    __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* The sketch (serial.h): 16 codes widened to int16 and multiplied in pairs (vpmaddwd) per
 * step, one int32 accumulator per row; m = 8 (mod 16) ends with a 128-bit step. */
SOSIE_AVX2 static inline void avx2_sketch_rows4(const int8_t *c, ptrdiff_t stride,
                                                const int16_t *w, size_t m, int32_t out[4]) {
    const int8_t *c0 = c, *c1 = c + stride, *c2 = c + 2 * stride, *c3 = c + 3 * stride;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t j = 0;
#define AVX2_CODES16(p) _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p)))
    for (; j + 16 <= m; j += 16) {
        __m256i wv = _mm256_loadu_si256((const __m256i *)(w + j));
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(AVX2_CODES16(c0 + j), wv));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(AVX2_CODES16(c1 + j), wv));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(AVX2_CODES16(c2 + j), wv));
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(AVX2_CODES16(c3 + j), wv));
    }
#undef AVX2_CODES16
    if (j < m) {
#define AVX2_CODES8(p) _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(p)))
        __m128i wv = _mm_loadu_si128((const __m128i *)(w + j));
        __m256i z = _mm256_setzero_si256();
        a0 = _mm256_add_epi32(a0, _mm256_inserti128_si256(z, _mm_madd_epi16(AVX2_CODES8(c0 + j), wv), 0));
        a1 = _mm256_add_epi32(a1, _mm256_inserti128_si256(z, _mm_madd_epi16(AVX2_CODES8(c1 + j), wv), 0));
        a2 = _mm256_add_epi32(a2, _mm256_inserti128_si256(z, _mm_madd_epi16(AVX2_CODES8(c2 + j), wv), 0));
        a3 = _mm256_add_epi32(a3, _mm256_inserti128_si256(z, _mm_madd_epi16(AVX2_CODES8(c3 + j), wv), 0));
#undef AVX2_CODES8
    }
    _mm_storeu_si128((__m128i *)out, avx2_reduce4_epi32(a0, a1, a2, a3));
}

/* The first stage's blocks (serial.h): per pair of axes, 16 rows' codes widened to int16 in two
 * halves, multiplied in pairs by the broadcast weight pair (vpmaddwd): the int32 dots of 8 rows
 * in each accumulator, no horizontal sums; two pairs per step (four chains in flight). */
SOSIE_AVX2 static inline void avx2_sketch_block16(const int8_t *block, const int32_t *wp,
                                                  size_t m, int32_t out[16]) {
    __m256i lo = _mm256_setzero_si256(), hi = lo, lo2 = lo, hi2 = lo;
    size_t p = 0, pairs = m / 2; /* m is a multiple of 8: pairs is even */
#define AVX2_PAIR16(q) _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q)))
    for (; p < pairs; p += 2) {
        const int8_t *c = block + 32 * p;
        __m256i w0 = _mm256_set1_epi32(wp[p]), w1 = _mm256_set1_epi32(wp[p + 1]);
        lo = _mm256_add_epi32(lo, _mm256_madd_epi16(AVX2_PAIR16(c), w0));
        hi = _mm256_add_epi32(hi, _mm256_madd_epi16(AVX2_PAIR16(c + 16), w0));
        lo2 = _mm256_add_epi32(lo2, _mm256_madd_epi16(AVX2_PAIR16(c + 32), w1));
        hi2 = _mm256_add_epi32(hi2, _mm256_madd_epi16(AVX2_PAIR16(c + 48), w1));
    }
#undef AVX2_PAIR16
    _mm256_storeu_si256((__m256i *)out, _mm256_add_epi32(lo, lo2));
    _mm256_storeu_si256((__m256i *)(out + 8), _mm256_add_epi32(hi, hi2));
}

/* serial.h's le_mask16: two compares (ordered: false for NaN) and two movemasks. */
SOSIE_AVX2 static inline uint32_t avx2_le_mask16(const float *v, float h) {
    __m256 hv = _mm256_set1_ps(h);
    uint32_t lo = (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(v), hv, _CMP_LE_OQ));
    uint32_t hi = (uint32_t)_mm256_movemask_ps(
        _mm256_cmp_ps(_mm256_loadu_ps(v + 8), hv, _CMP_LE_OQ));
    return lo | hi << 8;
}

/* rows8: d / 8 additions per lane, 3 in the reduction (rows4: d / 16 + 4); + slack */
static inline size_t avx2_rounding_depth(size_t d) { return d / 8 + 8; }

#endif
#endif
