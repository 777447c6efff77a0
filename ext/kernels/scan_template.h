/* Fused scan + top-k, instantiated once per ISA and metric by dispatch.c:
 *
 *   #define SCAN_ISA avx2              ISA prefix of <isa>_l2_rows8 / <isa>_dot_rows8
 *   #define SCAN_ATTR SOSIE_AVX2       function attributes (target) or empty
 *   #define SCAN_METRIC l2             l2: squared distance; dot: norm trick
 *   #include "scan_template.h"
 *
 * defines <isa>_<metric>_scan(job, heap) and <isa>_<metric>_dists(job, out).
 * Every row value comes from <isa>_<metric>_rows8 (a row alone uses stride 0), so a row's
 * value is the same wherever it sits: ties between duplicated rows stay exact ties.
 */
#define SOSIE_CAT3_(a, b, c) a##_##b##_##c
#define SOSIE_CAT3(a, b, c) SOSIE_CAT3_(a, b, c)
#define SCAN_ROWS SOSIE_CAT3(SCAN_ISA, SCAN_METRIC, rows8)
#define SCAN_BLOCK 8
#define SCAN_VALUES SOSIE_CAT3(SCAN_ISA, SCAN_METRIC, values)

/* Eight row values into v[0..7]: squared distances, or (norm trick) ||x||^2 + ||q||^2 - 2 q.x
 * clamped at 0 (job->q holds -2 q and job->norms2 the rows' squared norms). */
SCAN_ATTR static inline void SCAN_VALUES(const sosie_job *job, const char *r, ptrdiff_t stride,
                                         size_t row, float v[SCAN_BLOCK]) {
    SCAN_ROWS(r, stride, job->q, job->d, v);
#if SOSIE_METRIC_IS_DOT
    for (int t = 0; t < SCAN_BLOCK; t++) {
        size_t i = stride ? row + (size_t)t : row;
        float x = (job->norms2[i] + job->qnorm2) + v[t];
        v[t] = x > 0.0f ? x : 0.0f;
    }
#else
    (void)row;
#endif
}

SCAN_ATTR static void SOSIE_CAT3(SCAN_ISA, SCAN_METRIC, scan)(const sosie_job *job,
                                                               sosie_topk *heap) {
    const char *base = job->base;
    const ptrdiff_t stride = job->stride;
    const size_t end = job->end;
    const ptrdiff_t ahead = (ptrdiff_t)job->prefetch_rows * stride;
    const size_t row_bytes = 2 * job->d;
    size_t i = job->begin;
    float v[SCAN_BLOCK];

    /* Fill the heap with the first rows, one at a time. */
    for (; heap->size < heap->cap && i < end; i++) {
        SCAN_VALUES(job, base + (ptrdiff_t)i * stride, 0, i, v);
        topk_push(heap, v[0], (int64_t)i);
    }
    float worst = heap->size ? heap->dist[0] : 0.0f;

    /* Steady state: 8 rows per pass, the heap is only touched when a row beats the worst. */
    size_t prefetch_end = end > job->prefetch_rows + SCAN_BLOCK ?
                          end - job->prefetch_rows - SCAN_BLOCK : 0;
    for (; i + SCAN_BLOCK <= end; i += SCAN_BLOCK) {
        const char *r = base + (ptrdiff_t)i * stride;
        if (ahead && i < prefetch_end) {
            for (int t = 0; t < SCAN_BLOCK; t++) {
                const char *p = r + ahead + t * stride;
                for (size_t b = 0; b < row_bytes; b += 64) __builtin_prefetch(p + b, 0, SOSIE_PREFETCH_LOCALITY);
            }
        }
        SCAN_VALUES(job, r, stride, i, v);
        float least = v[0];
        for (int t = 1; t < SCAN_BLOCK; t++) least = v[t] < least ? v[t] : least;
        if (least < worst) {
            for (int t = 0; t < SCAN_BLOCK; t++)
                if (v[t] < worst) worst = topk_replace(heap, v[t], (int64_t)(i + t));
        }
    }
    for (; i < end; i++) {
        SCAN_VALUES(job, base + (ptrdiff_t)i * stride, 0, i, v);
        if (v[0] < worst) worst = topk_replace(heap, v[0], (int64_t)i);
    }
}

SCAN_ATTR static void SOSIE_CAT3(SCAN_ISA, SCAN_METRIC, dists)(const sosie_job *job,
                                                                float *out) {
    const char *base = job->base;
    const ptrdiff_t stride = job->stride;
    size_t i = job->begin;
    for (; i + SCAN_BLOCK <= job->end; i += SCAN_BLOCK)
        SCAN_VALUES(job, base + (ptrdiff_t)i * stride, stride, i, out + i);
    float v[SCAN_BLOCK];
    for (; i < job->end; i++) {
        SCAN_VALUES(job, base + (ptrdiff_t)i * stride, 0, i, v);
        out[i] = v[0];
    }
}

#undef SCAN_ROWS
#undef SCAN_BLOCK
#undef SCAN_VALUES
