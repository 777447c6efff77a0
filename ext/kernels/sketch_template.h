/* The fused sketch pass, instantiated once per ISA by dispatch.c (see dispatch.h):
 *
 *   #define SCAN_ISA avx2          ISA prefix of <isa>_sketch_rows4 and <isa>_l2_rows4
 *   #define SCAN_ATTR SOSIE_AVX2   function attributes (target) or empty
 *   #include "sketch_template.h"
 *
 * defines <isa>_sketch_scan(job, k, heap, top, seeds, h2, read) and <isa>_sketch_dots(job, out).
 * First pass, four rows at a time: integer dots give h2 (three float operations a row), stored,
 * and the k rows of least h2 kept. Those are read first; then each row's h2 is compared with
 * H, the h2 beyond which the head alone proves LB > tau (no square root); the few rows below H
 * get the full bound in double, and the survivors are read in float16. tau and H change only
 * when the top-k heap improves.
 */
#define SOSIE_CAT2_(a, b) a##_##b
#define SOSIE_CAT2(a, b) SOSIE_CAT2_(a, b)
#define SKETCH_ROWS4 SOSIE_CAT2(SCAN_ISA, sketch_rows4)
#define SKETCH_L2_ROWS4 SOSIE_CAT2(SCAN_ISA, l2_rows4)

#ifndef SOSIE_SKETCH_BOUND_DEFINED
#define SOSIE_SKETCH_BOUND_DEFINED
/* Four-lane vectors (SSE / NEON via GCC's vector extensions) for the per-row float work. */
typedef int32_t sosie_v4i __attribute__((vector_size(16)));
typedef float sosie_v4f __attribute__((vector_size(16)));

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
#endif

#ifndef SKETCH_AHEAD
#define SKETCH_AHEAD 2048
#endif

/* h2 of every row of [begin, end) into h2[0..), and the k rows of least h2 into `seeds`. */
SCAN_ATTR static void SOSIE_CAT2(SCAN_ISA, sketch_h2)(const sosie_sketch_job *job, float *h2,
                                                       sosie_topk *seeds) {
    const int8_t *codes = job->codes;
    const ptrdiff_t cs = job->code_stride;
    const size_t m = job->m, begin = job->rows.begin, end = job->rows.end;
    const float *a2 = job->sq_norms;
    const float step = job->step, q2 = job->qhead2;
    float worst = INFINITY;
    int32_t dots[4];
    size_t i = begin;
    for (; i + 4 <= end; i += 4) {
        /* codes and norms SKETCH_AHEAD bytes ahead: the hardware prefetcher alone left this
         * pass at half the memory's streaming rate on a cold cache */
        const char *ahead = (const char *)(codes + (ptrdiff_t)i * cs) + SKETCH_AHEAD;
        for (ptrdiff_t b = 0; b < 4 * cs; b += 64) __builtin_prefetch(ahead + b, 0, 3);
        if ((i & 15) == 0) __builtin_prefetch((const char *)(a2 + i) + SKETCH_AHEAD / 8, 0, 3);
        SKETCH_ROWS4(codes + (ptrdiff_t)i * cs, cs, job->weights, m, dots);
        float *v = h2 + (i - begin);
        sosie_v4i di;
        sosie_v4f ai;
        memcpy(&di, dots, sizeof di);
        memcpy(&ai, a2 + i, sizeof ai);
        /* the same three roundings a row as the scalar tail below (no contraction) */
        sosie_v4f hv = (ai + step * __builtin_convertvector(di, sosie_v4f)) + q2;
        memcpy(v, &hv, sizeof hv);
        float lo = v[0] < v[1] ? v[0] : v[1], lo2 = v[2] < v[3] ? v[2] : v[3];
        if ((lo < lo2 ? lo : lo2) < worst || seeds->size < seeds->cap)
            for (int t = 0; t < 4; t++) {
                if (seeds->size < seeds->cap) {
                    topk_push(seeds, v[t], (int64_t)(i + t));
                    if (seeds->size == seeds->cap) worst = seeds->dist[0];
                } else if (v[t] < worst) {
                    worst = topk_replace(seeds, v[t], (int64_t)(i + t));
                }
            }
    }
    for (; i < end; i++) {
        SKETCH_ROWS4(codes + (ptrdiff_t)i * cs, 0, job->weights, m, dots);
        float v = (a2[i] + step * (float)dots[0]) + q2;
        h2[i - begin] = v;
        if (seeds->size < seeds->cap) topk_push(seeds, v, (int64_t)i);
        else if (v < seeds->dist[0]) topk_replace(seeds, v, (int64_t)i);
    }
}

#define SKETCH_QUEUE 8

/* Two passes: h2 of every row (and the k rows of least h2, read first so that tau starts
 * tight), then every row whose bound does not exceed tau is read in float16, in row order,
 * through a small queue whose rows are prefetched (their bound is checked again on the way
 * out: tau may have dropped). `h2` is scratch for end - begin floats, `seeds` a heap of k. */
SCAN_ATTR static void SOSIE_CAT2(SCAN_ISA, sketch_scan)(const sosie_sketch_job *job, size_t k,
                                                         sosie_topk *heap, sosie_topk *top,
                                                         sosie_topk *seeds, float *h2,
                                                         size_t *read_rows) {
    const sosie_job *f = &job->rows;
    const size_t begin = f->begin, end = f->end, row_bytes = 2 * f->d;
    double tau = INFINITY;
    float h = INFINITY, worst = INFINITY;
    size_t read = 0;
    float x[4];

    SOSIE_CAT2(SCAN_ISA, sketch_h2)(job, h2, seeds);

    /* Read row i in float16: offer it to both heaps. */
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
                sosie_sketch_limits(job, worst, &tau, &h);                                  \
            }                                                                               \
        }                                                                                   \
    } while (0)
#define SKETCH_LB(i) sosie_sketch_bound(job, h2[(i) - begin], job->tails[i])

    /* the seeds first, marked so that the second pass skips them */
    for (size_t s = 0; s < seeds->size; s++) {
        size_t i = (size_t)seeds->row[s];
        SKETCH_READ(i);
    }
    for (size_t s = 0; s < seeds->size; s++) h2[(size_t)seeds->row[s] - begin] = NAN;

    size_t queue[SKETCH_QUEUE], head = 0, count = 0;
    for (size_t i = begin; i < end; i++) {
        /* rows below H read their tail norm: stream the tails in order (sparse reads would
         * each miss the cache) */
        if (((i - begin) & 15) == 0) __builtin_prefetch(job->tails + i + 256, 0, 3);
        if (((i - begin) & 3) == 0 && i + 4 <= end) { /* skip four rows above H at once */
            sosie_v4f hv;
            memcpy(&hv, h2 + (i - begin), sizeof hv);
            sosie_v4i below = hv <= h; /* false for NaN (seeds) */
            if (!(below[0] | below[1] | below[2] | below[3])) {
                i += 3;
                continue;
            }
        }
        float v = h2[i - begin];
        if (!(v <= h) || !(SKETCH_LB(i) <= tau)) continue; /* NaN: a seed, already read */
        const char *p = f->base + (ptrdiff_t)i * f->stride;
        for (size_t b = 0; b < row_bytes; b += 64) __builtin_prefetch(p + b, 0, 3);
        if (count == SKETCH_QUEUE) {
            size_t r = queue[head];
            if (SKETCH_LB(r) <= tau) SKETCH_READ(r);
            queue[head] = i;
            head = (head + 1) % SKETCH_QUEUE;
        } else {
            queue[(head + count++) % SKETCH_QUEUE] = i;
        }
    }
    for (size_t c = 0; c < count; c++) {
        size_t r = queue[(head + c) % SKETCH_QUEUE];
        if (SKETCH_LB(r) <= tau) SKETCH_READ(r);
    }
#undef SKETCH_READ
#undef SKETCH_LB
    *read_rows = read;
}

SCAN_ATTR static void SOSIE_CAT2(SCAN_ISA, sketch_dots)(const sosie_sketch_job *job,
                                                         int32_t *out) {
    const ptrdiff_t cs = job->code_stride;
    size_t i = job->rows.begin;
    for (; i + 4 <= job->rows.end; i += 4)
        SKETCH_ROWS4(job->codes + (ptrdiff_t)i * cs, cs, job->weights, job->m, out + i);
    int32_t v[4];
    for (; i < job->rows.end; i++) {
        SKETCH_ROWS4(job->codes + (ptrdiff_t)i * cs, 0, job->weights, job->m, v);
        out[i] = v[0];
    }
}

#undef SKETCH_ROWS4
#undef SKETCH_L2_ROWS4
