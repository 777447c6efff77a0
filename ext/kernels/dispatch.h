/* Sosie scanner kernels: one runtime dispatch point over serial / AVX2 / NEON implementations.
 *
 * A matrix is N rows of d float16 values (d a multiple of 8), row i at base + i*stride bytes,
 * any alignment. Two metrics: SOSIE_L2 computes squared distances directly from the rows;
 * SOSIE_DOT uses precomputed squared row norms, ||x||^2 + ||q||^2 - 2 q.x clamped at 0.
 * Results are float32 approximations; sosie_rounding_depth() bounds their rounding error so the
 * caller can certify (or exactly rescore) the top-k.
 */
#ifndef SOSIE_DISPATCH_H
#define SOSIE_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

enum { SOSIE_L2 = 0, SOSIE_DOT = 1 };

typedef struct {
    const char *base;      /* row 0 */
    ptrdiff_t stride;      /* bytes from one row to the next (may be negative) */
    size_t d;              /* values per row, a multiple of 8 */
    size_t begin, end;     /* rows [begin, end) */
    const float *q;        /* L2: the query; DOT: -2 * query */
    const float *norms2;   /* DOT: squared norms of all rows (indexed by row) */
    float qnorm2;          /* DOT: squared norm of the query */
    size_t prefetch_rows;  /* software prefetch distance in rows, 0 = off */
} sosie_job;

/* Kernels compiled into this build, in preference order (serial last); NULL past the end. */
const char *sosie_kernel_name(int kernel);
/* 1 if this CPU can run the kernel. */
int sosie_kernel_supported(int kernel);
/* Index of a kernel by name, or -1. */
int sosie_kernel_find(const char *name);
/* The best kernel this CPU supports. */
int sosie_kernel_best(void);
/* Longest chain of float32 roundings behind one row value of width d. */
size_t sosie_rounding_depth(int kernel, size_t d);

/* Top-`cap` rows of [job.begin, job.end) by (value, row), split into `threads` contiguous
 * chunks, each with its own heap: chunk t writes counts[t] pairs to dist/rows + t*cap (heap
 * order) and bound[t], a value no unkept row of the chunk is below (+inf if all kept).
 * Returns 0, or -1 for a bad kernel/metric, -2 if threads could not be started. */
int sosie_scan(int kernel, int metric, const sosie_job *job, size_t cap, int threads,
               float *dist, int64_t *rows, size_t *counts, float *bound);

/* Row values of [job.begin, job.end) into out[begin..end) (same arithmetic as the scan). */
int sosie_values(int kernel, int metric, const sosie_job *job, int threads, float *out);

/* ---- the 8-bit sketch: exact top-k reading few float16 rows ---------------------------------
 * Row i of the corpus also has m int8 codes c_i (its leading m principal coordinates over
 * per-axis scales s) and the norm t_i of its remaining coordinates (`tails`). For a query
 * rotated the same way (head y, tail norm `qtail`), the integer dot D_i = sum_j c_ij w_j with
 * int16 weights w ~ s*y/S gives h2_i = A_i + step D_i + qhead2 (float32; A_i = |s*c_i|^2,
 * step = -2S, qhead2 = |y|^2), within h2_slack of |s*c_i - y|^2. A row's squared distance is
 * then at least
 *   LB = (1 - 2^-20) [ (sqrt(h2 - h2_slack)+ - head_slack)+^2
 *                      + (|t - qtail| - rho (t + qtail) - tail_slack)+^2 ]
 * (search.py derives the slacks: quantization, rounding). The codes come in two stages: the
 * first `m` codes of every row are read by one streaming pass (h2 over those axes alone, no
 * tail term: a bound all the same), the `m_rest` others only for the few rows that pass it,
 * which then get the bound over all m + m_rest axes. A row whose bound exceeds tau, a
 * certified upper bound of the k-th best distance so far, is never read in float16; the others
 * get their float32 L2 value from the float16 row (same arithmetic as sosie_scan) and go into a
 * top-`cap` heap, and into a top-k heap whose worst value v gives
 * tau = (sqrt((v + absolute) / (1 - rel)) + delta)^2 (1 + 2^-30). */
typedef struct {
    /* first stage, streamed: blocks of 16 rows, SOSIE_SKETCH_BLOCK_BYTES(m) bytes each, block b
     * holding rows 16b .. 16b + 15: for each pair p of axes 32 bytes (row r's codes 2p and
     * 2p + 1 at bytes 2r and 2r + 1), then the 16 rows' float A_i over those m axes. The rows
     * past the last one, up to the end of its block, are padding. */
    const char *blocks;
    size_t m;               /* first-stage axes, a multiple of 8, at most 128 */
    /* second stage: row i's record at rest + i * rest_stride (4-byte aligned): m_rest codes,
     * then two floats: A_i over all m + m_rest axes, and the tail norm t_i (the norm of the
     * coordinates past them); one cache line for the rows that pass the first stage */
    const char *rest;
    ptrdiff_t rest_stride;
    size_t m_rest;          /* a multiple of 8, 0 for a single stage; m + m_rest <= 128 */
    const int16_t *weights; /* m + m_rest */
    float step, qhead2, qhead2_all; /* qhead2 over the first m axes, qhead2_all over all */
    double h2_slack, qtail, head_slack, tail_slack, rho; /* valid for both stages */
    sosie_job rows;         /* the float16 rows, L2 metric (rows.q: the float32 query) */
    double rel, absolute, delta;
} sosie_sketch_job;

#define SOSIE_SKETCH_BLOCK_BYTES(m) (16 * (size_t)(m) + 64)

/* Fills dist/rows (heap order, *count pairs), *bound (no read row left out of the heap is
 * below it; +inf if none was left out), *read (rows read in float16) and *second (rows whose
 * record the second stage read). k <= cap; the rows
 * are [0, job.rows.end) (job.rows.begin must be 0).
 * Returns 0, -1 for a bad kernel or k/cap, -2 when out of memory. */
int sosie_sketch_scan(int kernel, const sosie_sketch_job *job, size_t k, size_t cap,
                      float *dist, int64_t *rows, size_t *count, float *bound, size_t *read,
                      size_t *second);

/* D_i = sum_j codes_ij w_j of n row-major rows of m codes (`stride` bytes apart), into out[0..n)
 * (the second stage's arithmetic). */
int sosie_sketch_dots(int kernel, const int8_t *codes, ptrdiff_t stride, size_t m,
                      const int16_t *w, size_t n, int32_t *out);

/* The same D_i of the first n rows of first-stage blocks of m axes (the first pass' arithmetic).
 * Returns 0, or -1 for a bad kernel or m. */
int sosie_sketch_block_dots(int kernel, const char *blocks, size_t m, const int16_t *w, size_t n,
                            int32_t *out);

/* Number of rows in [0, n) holding a NaN or infinity. */
size_t sosie_count_nonfinite(const char *base, ptrdiff_t stride, size_t n, size_t d);

#endif
