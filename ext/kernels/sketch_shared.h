/* What every ISA's sketch scan shares, defined once (sketch_template.h is instantiated per ISA
 * by dispatch.c, which uses the candidate list itself): the limits the kernels are sized for,
 * the bounds' arithmetic, the candidate list, the heaps' offer, the weight pairs and the scan's
 * state. */
#ifndef SOSIE_SKETCH_SHARED_H
#define SOSIE_SKETCH_SHARED_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "dispatch.h"
#include "topk.h"

/* Most axes a sketch may have (both stages together): the exact int32 dots of int8 codes and
 * int16 weights, and the stack buffers of a block, are sized for it (appliance.search.settings
 * MAX_SKETCH_AXES is the same number). */
#define SOSIE_MAX_SKETCH_AXES 128

/* Sixteen-lane vectors (GCC's vector extensions: two AVX2 or four NEON registers, one AVX-512
 * register) for the per-row float work of a block. */
typedef int32_t sosie_v16i __attribute__((vector_size(64)));
typedef float sosie_v16f __attribute__((vector_size(64)));

/* (tau, H) for a top-k heap whose worst float32 L2 value is `v` (see dispatch.h). */
static inline void sosie_sketch_limits(const sosie_sketch_job *job, float v, double *tau,
                                       float *h) {
    double s = ((double)v + job->absolute) / (1.0 - job->rel);
    double t = sqrt(s > 0.0 ? s : 0.0) + job->delta;
    *tau = t * t * (1.0 + 0x1p-30);
    /* sqrt(h2 - h2_slack) - head_slack > sqrt(tau)(1 + 2^-20) proves LB > tau */
    double root = sqrt(*tau) * (1.0 + 0x1p-20) + job->head_slack;
    double hh = (root * root + job->h2_slack) * (1.0 + 0x1p-20);
    *h = hh < 3.0e38 ? nextafterf((float)hh, INFINITY) : INFINITY;
}

/* The certified lower bound of one row's squared distance, from its h2 and tail norm. */
static inline double sosie_sketch_bound(const sosie_sketch_job *job, float h2, float tail) {
    double r = (double)h2 - job->h2_slack;
    double a = sqrt(r > 0.0 ? r : 0.0) - job->head_slack;
    double t = (double)tail;
    double b = fabs(t - job->qtail) - job->rho * (t + job->qtail) - job->tail_slack;
    a = a > 0.0 ? a : 0.0;
    b = b > 0.0 ? b : 0.0;
    return (a * a + b * b) * (1.0 - 0x1p-20);
}

/* Rows whose first-stage h2 passed the first pass' threshold, in row order, with that h2
 * and their first-stage dot (grown by doubling). */
typedef struct {
    size_t *row;
    float *h2;
    int32_t *dot;
    size_t size, cap;
    int failed; /* out of memory: the scan reports -2 */
} sosie_cands;

static int sosie_cands_grow(sosie_cands *c) {
    size_t cap = c->cap ? 2 * c->cap : 1024;
    size_t *row = realloc(c->row, cap * sizeof *row);
    if (row) c->row = row;
    float *h2 = row ? realloc(c->h2, cap * sizeof *h2) : NULL;
    if (h2) c->h2 = h2;
    int32_t *dot = h2 ? realloc(c->dot, cap * sizeof *dot) : NULL;
    if (!dot) {
        c->failed = 1;
        return 0;
    }
    c->dot = dot;
    c->cap = cap;
    return 1;
}

static inline void sosie_cands_push(sosie_cands *c, size_t row, float h2, int32_t dot) {
    if (c->size == c->cap && !sosie_cands_grow(c)) return;
    c->row[c->size] = row;
    c->dot[c->size] = dot;
    c->h2[c->size++] = h2;
}

/* Offer (v, row) to a heap of the k least values. */
static inline void sosie_offer(sosie_topk *h, float v, size_t row) {
    if (h->size < h->cap) topk_push(h, v, (int64_t)row);
    else if (v < h->dist[0]) topk_replace(h, v, (int64_t)row);
}

/* The weights of the first m axes in pairs, as the block kernels take them: pair p holds
 * w[2p] in its low 16 bits and w[2p + 1] in its high 16 bits. */
static inline void sosie_weight_pairs(const int16_t *w, size_t m, int32_t *pairs) {
    for (size_t p = 0; p < m / 2; p++)
        pairs[p] = (int32_t)((uint32_t)(uint16_t)w[2 * p] |
                             ((uint32_t)(uint16_t)w[2 * p + 1] << 16));
}

/* One scan's float16 reads so far: the top-`cap` heap, the top-k heap, and tau and H from the
 * top-k heap's worst value once it holds k rows (+inf before). */
typedef struct {
    sosie_topk *heap, *top;
    size_t k, read;
    double tau;
    float h, worst;
} sosie_sketch_state;

#endif
