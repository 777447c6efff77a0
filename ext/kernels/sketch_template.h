/* The fused sketch pass, instantiated once per ISA by dispatch.c (see dispatch.h):
 *
 *   #define SCAN_ISA avx2          ISA prefix of <isa>_sketch_rows4 and <isa>_l2_rows4
 *   #define SCAN_ATTR SOSIE_AVX2   function attributes (target) or empty
 *   #include "sketch_template.h"
 *
 * defines <isa>_sketch_scan(job, k, heap, top, read) and <isa>_sketch_values(job, out).
 * Four rows per pass: their h2 values are compared with H, the h2 beyond which the head alone
 * proves LB > tau (one comparison per row, no square root); the few rows below H get the full
 * bound in double, and the survivors are read in float16. tau and H change only when the
 * top-k heap improves (~k ln(N/k) times).
 */
#define SOSIE_CAT2_(a, b) a##_##b
#define SOSIE_CAT2(a, b) SOSIE_CAT2_(a, b)
#define SKETCH_ROWS4 SOSIE_CAT2(SCAN_ISA, sketch_rows4)
#define SKETCH_L2_ROWS4 SOSIE_CAT2(SCAN_ISA, l2_rows4)

/* (tau, H) for a top-k heap whose worst float32 L2 value is `v` (see dispatch.h). */
SCAN_ATTR static inline void SOSIE_CAT2(SCAN_ISA, sketch_limits)(const sosie_sketch_job *job,
                                                                  float v, double *tau,
                                                                  float *h) {
    double s = ((double)v + job->absolute) / (1.0 - job->rel);
    double t = sqrt(s > 0.0 ? s : 0.0) + job->delta;
    *tau = t * t * (1.0 + 0x1p-30);
    /* sqrt(h2)(1 - rho) - head_slack > sqrt(tau)(1 + 2^-20) proves LB > tau */
    double root = (sqrt(*tau) * (1.0 + 0x1p-20) + job->head_slack) / (1.0 - job->rho);
    double hh = root * root * (1.0 + 0x1p-20);
    *h = hh < 3.0e38 ? nextafterf((float)hh, INFINITY) : INFINITY;
}

#ifndef SOSIE_SKETCH_BOUND_DEFINED
#define SOSIE_SKETCH_BOUND_DEFINED
/* The certified lower bound of one row's squared distance, from its h2 and tail norm. */
static inline double sosie_sketch_bound(const sosie_sketch_job *job, float h2, float tail) {
    double a = sqrt((double)h2) * (1.0 - job->rho) - job->head_slack;
    double t = (double)tail;
    double b = fabs(t - job->qtail) - job->rho * (t + job->qtail) - job->tail_slack;
    a = a > 0.0 ? a : 0.0;
    b = b > 0.0 ? b : 0.0;
    return (a * a + b * b) * (1.0 - 0x1p-20);
}
#endif

SCAN_ATTR static void SOSIE_CAT2(SCAN_ISA, sketch_scan)(const sosie_sketch_job *job, size_t k,
                                                         sosie_topk *heap, sosie_topk *top,
                                                         size_t *read_rows) {
    const sosie_job *f = &job->rows;
    const int8_t *codes = job->codes;
    const ptrdiff_t cs = job->code_stride;
    const size_t m = job->m, end = f->end;
    double tau = INFINITY;
    float h = INFINITY, worst = INFINITY;
    size_t read = 0;
    float v[4], x[4];

    /* Read row i in float16 (its LB did not exceed tau): offer it to both heaps. */
#define SKETCH_READ(i)                                                                      \
    do {                                                                                    \
        SKETCH_L2_ROWS4(f->base + (ptrdiff_t)(i) * f->stride, 0, f->q, f->d, x);            \
        read++;                                                                             \
        if (heap->size < heap->cap) topk_push(heap, x[0], (int64_t)(i));                    \
        else if (x[0] < heap->dist[0]) topk_replace(heap, x[0], (int64_t)(i));              \
        if (top->size < k || x[0] < worst) {                                                \
            if (top->size < k) topk_push(top, x[0], (int64_t)(i));                          \
            else topk_replace(top, x[0], (int64_t)(i));                                     \
            if (top->size == k) {                                                           \
                worst = top->dist[0];                                                       \
                SOSIE_CAT2(SCAN_ISA, sketch_limits)(job, worst, &tau, &h);                  \
            }                                                                               \
        }                                                                                   \
    } while (0)

#define SKETCH_CHECK(i, h2)                                                                 \
    do {                                                                                    \
        if (!((h2) > h) && !(sosie_sketch_bound(job, (h2), job->tails[i]) > tau))           \
            SKETCH_READ(i);                                                                 \
    } while (0)

    size_t i = f->begin;
    for (; i + 4 <= end; i += 4) {
        SKETCH_ROWS4(codes + (ptrdiff_t)i * cs, cs, job->scale, job->qhead, m, v);
        if (v[0] > h && v[1] > h && v[2] > h && v[3] > h) continue;
        for (int t = 0; t < 4; t++) SKETCH_CHECK(i + (size_t)t, v[t]);
    }
    for (; i < end; i++) {
        SKETCH_ROWS4(codes + (ptrdiff_t)i * cs, 0, job->scale, job->qhead, m, v);
        SKETCH_CHECK(i, v[0]);
    }
#undef SKETCH_READ
#undef SKETCH_CHECK
    *read_rows = read;
}

SCAN_ATTR static void SOSIE_CAT2(SCAN_ISA, sketch_values)(const sosie_sketch_job *job,
                                                           float *out) {
    const ptrdiff_t cs = job->code_stride;
    size_t i = job->rows.begin;
    for (; i + 4 <= job->rows.end; i += 4)
        SKETCH_ROWS4(job->codes + (ptrdiff_t)i * cs, cs, job->scale, job->qhead, job->m, out + i);
    float v[4];
    for (; i < job->rows.end; i++) {
        SKETCH_ROWS4(job->codes + (ptrdiff_t)i * cs, 0, job->scale, job->qhead, job->m, v);
        out[i] = v[0];
    }
}

#undef SKETCH_ROWS4
#undef SKETCH_L2_ROWS4
