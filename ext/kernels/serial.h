/* Plain serial reference kernels: portable C, one row at a time, float32 accumulation.
 *
 * Every ISA header provides the same two functions, for four rows at `r`, `r + stride`,
 * `r + 2*stride`, `r + 3*stride` (float16 bits, any byte alignment) against a float32 query:
 *   <isa>_l2_rows4(r, stride, q, d, out)   out[i] = sum_j (x_ij - q_j)^2
 *   <isa>_dot_rows4(r, stride, q, d, out)  out[i] = sum_j x_ij * q_j
 * A row's result never depends on the other three rows, so a row evaluated alone (stride 0)
 * gives bit-identical results; the scanner relies on that for ties and tails.
 * The scan reads eight rows per pass through <isa>_l2_rows8 / <isa>_dot_rows8 (same contract,
 * 8 rows): AVX2 and AVX-512 have their own (one transposed reduction for 8 rows); the others
 * call rows4 twice (SOSIE_ROWS8_FROM_ROWS4).
 */
#ifndef SOSIE_SERIAL_H
#define SOSIE_SERIAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* IEEE binary16 -> binary32, exact for every input (subnormals, infinities, NaN). */
static inline float sosie_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    uint32_t bits;
    float f;
    if (exponent == 0) {
        f = (float)mantissa * 5.9604644775390625e-8f; /* mantissa * 2^-24, exact */
        memcpy(&bits, &f, sizeof bits);
        bits |= sign;
    } else if (exponent == 31) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    }
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline float sosie_load_half(const char *p, size_t j) {
    uint16_t h;
    memcpy(&h, p + 2 * j, sizeof h);
    return sosie_half_to_float(h);
}

static inline float serial_l2_row(const char *r, const float *q, size_t d) {
    float acc = 0.0f;
    for (size_t j = 0; j < d; j++) {
        float t = sosie_load_half(r, j) - q[j];
        acc += t * t;
    }
    return acc;
}

static inline float serial_dot_row(const char *r, const float *q, size_t d) {
    float acc = 0.0f;
    for (size_t j = 0; j < d; j++) acc += sosie_load_half(r, j) * q[j];
    return acc;
}

static inline void serial_l2_rows4(const char *r, ptrdiff_t stride, const float *q, size_t d,
                                   float out[4]) {
    for (int i = 0; i < 4; i++) out[i] = serial_l2_row(r + i * stride, q, d);
}

static inline void serial_dot_rows4(const char *r, ptrdiff_t stride, const float *q, size_t d,
                                    float out[4]) {
    for (int i = 0; i < 4; i++) out[i] = serial_dot_row(r + i * stride, q, d);
}

/* rows8 as two rows4 calls, for ISAs without a kernel of their own. */
#define SOSIE_ROWS8_FROM_ROWS4(NAME8, NAME4)                                               \
    static inline void NAME8(const char *r, ptrdiff_t stride, const float *q, size_t d,     \
                             float out[8]) {                                                \
        NAME4(r, stride, q, d, out);                                                        \
        NAME4(r + 4 * stride, stride, q, d, out + 4);                                       \
    }

SOSIE_ROWS8_FROM_ROWS4(serial_l2_rows8, serial_l2_rows4)
SOSIE_ROWS8_FROM_ROWS4(serial_dot_rows8, serial_dot_rows4)

/* ---- the 8-bit sketch (see sketch_template.h) ---------------------------------------------
 * <isa>_sketch_rows4(c, stride, w, m, out): four rows of m int8 codes at c, c + stride,
 * c + 2*stride, c + 3*stride against m int16 query weights w, exactly in int32:
 *   out[i] = sum_j c_ij * w_j      (m a multiple of 8, m <= 128: |out| < 2^29)
 * Integer arithmetic: every ISA gives the same values, whatever the order of the sums. */
static inline int32_t serial_sketch_row(const int8_t *c, const int16_t *w, size_t m) {
    int32_t acc = 0;
    for (size_t j = 0; j < m; j++) acc += (int32_t)c[j] * (int32_t)w[j];
    return acc;
}

static inline void serial_sketch_rows4(const int8_t *c, ptrdiff_t stride, const int16_t *w,
                                       size_t m, int32_t out[4]) {
    for (int i = 0; i < 4; i++) out[i] = serial_sketch_row(c + i * stride, w, m);
}

/* <isa>_sketch_block16(block, wp, m, out): the first stage's layout (dispatch.h): 16 rows whose
 * m codes are stored pair by pair (32 bytes a pair: row r's codes 2p, 2p+1 at 2r, 2r+1);
 * wp[p] holds the weights 2p (low 16 bits) and 2p+1 (high 16 bits). Exact int32 dots. */
static inline void serial_sketch_block16(const int8_t *block, const int32_t *wp, size_t m,
                                         int32_t out[16]) {
    for (int r = 0; r < 16; r++) out[r] = 0;
    for (size_t p = 0; p < m / 2; p++) {
        int32_t w0 = (int16_t)(uint16_t)((uint32_t)wp[p] & 0xffffu);
        int32_t w1 = (int16_t)(uint16_t)((uint32_t)wp[p] >> 16);
        const int8_t *c = block + 32 * p;
        for (int r = 0; r < 16; r++) out[r] += c[2 * r] * w0 + c[2 * r + 1] * w1;
    }
}

/* <isa>_le_mask16(v, h): bit t set when v[t] <= h (clear for NaN), for 16 floats. */
static inline uint32_t serial_le_mask16(const float *v, float h) {
    uint32_t mask = 0;
    for (int t = 0; t < 16; t++) mask |= (uint32_t)(v[t] <= h) << t;
    return mask;
}

/* Longest chain of float32 roundings behind one result (for the exactness certificate). */
static inline size_t serial_rounding_depth(size_t d) { return d + 2; }

#endif
