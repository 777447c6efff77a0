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

#ifndef SOSIE_SKETCH_CANDS_DEFINED
#define SOSIE_SKETCH_CANDS_DEFINED
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

/* One scan's float16 reads so far: the top-`cap` heap, the top-k heap, and tau and H from the
 * top-k heap's worst value once it holds k rows (+inf before). */
typedef struct {
    sosie_topk *heap, *top;
    size_t k, read;
    double tau;
    float h, worst;
} sosie_sketch_state;
#endif

#define SKETCH_READ SOSIE_CAT2(SCAN_ISA, sketch_read)
#define SKETCH_SEED SOSIE_CAT2(SCAN_ISA, sketch_seed)

/* Read row i in float16: offer it to both heaps; tau and H drop when the top k improves. */
SCAN_ATTR static inline void SKETCH_READ(const sosie_sketch_job *job, sosie_sketch_state *st,
                                         size_t i) {
    const sosie_job *f = &job->rows;
    float x[4];
    SKETCH_L2_ROWS4(f->base + (ptrdiff_t)i * f->stride, 0, f->q, f->d, x);
    st->read++;
    sosie_offer(st->heap, x[0], i);
    if (st->top->size < st->k || x[0] < st->worst) {
        sosie_offer(st->top, x[0], i);
        if (st->top->size == st->k) {
            st->worst = st->top->dist[0];
            sosie_sketch_limits(job, st->worst, &st->tau, &st->h);
        }
    }
}

/* The sample: `chunks` runs of `run` consecutive rows spread evenly over the rows (runs stream
 * like the full pass; their spread keeps the sample fair whatever order the corpus' rows were
 * built in). Its k rows of least first-stage h2 go into `seeds` and are read in float16, which
 * gives the first tau; `done` receives them, sorted. */
SCAN_ATTR static size_t SOSIE_CAT2(SCAN_ISA, sketch_sample)(const sosie_sketch_job *job,
                                                             sosie_sketch_state *st,
                                                             size_t chunks, size_t run,
                                                             sosie_topk *seeds, size_t *done) {
    const ptrdiff_t cs = job->code_stride;
    const size_t begin = job->rows.begin, n = job->rows.end - begin;
    int32_t dots[4];
    for (size_t c = 0; c < chunks; c++) {
        size_t i = begin + n / chunks * c, stop = i + run;
        for (; i + 4 <= stop; i += 4) {
            SKETCH_ROWS4(job->codes + (ptrdiff_t)i * cs, cs, job->weights, job->m, dots);
            for (size_t t = 0; t < 4; t++)
                sosie_offer(seeds,
                            (job->sq_norms[i + t] + job->step * (float)dots[t]) + job->qhead2,
                            i + t);
        }
    }
    for (size_t s = 0; s < seeds->size; s++) { /* insertion sort: k rows */
        size_t r = (size_t)seeds->row[s], at = s;
        for (; at > 0 && done[at - 1] > r; at--) done[at] = done[at - 1];
        done[at] = r;
    }
    for (size_t s = 0; s < seeds->size; s++) SKETCH_READ(job, st, done[s]);
    return seeds->size;
}

/* A row of the first pass among the k of least first-stage h2 so far (`seeds`, which starts
 * with the sample's): read at once if it can still rank, unless the sample read it; its
 * candidate entry (pushed just before) is then marked read. */
SCAN_ATTR __attribute__((noinline)) static void SKETCH_SEED(const sosie_sketch_job *job,
                                                            sosie_sketch_state *st,
                                                            sosie_cands *cands,
                                                            sosie_topk *seeds,
                                                            const size_t *done, size_t ndone,
                                                            size_t r, float v) {
    sosie_offer(seeds, v, r);
    if (!(v <= st->h)) return;
    for (size_t s = 0; s < ndone; s++)
        if (done[s] == r) return; /* read by the sample */
    SKETCH_READ(job, st, r);
    for (size_t c = cands->size; c-- > 0 && cands->row[c] >= r;)
        if (cands->row[c] == r) cands->h2[c] = NAN; /* read: the second pass skips it */
}

/* The first pass over every row: first-stage h2 (codes and A_i only, streamed). Every row
 * whose h2 does not exceed the current H is appended to `cands` without a branch (the slot is
 * written for every row, the count moves only for those); the rare rows among the k of least
 * h2 so far are read at once (above), which lowers tau and H as the pass goes. */
SCAN_ATTR static void SOSIE_CAT2(SCAN_ISA, sketch_first)(const sosie_sketch_job *job,
                                                          sosie_sketch_state *st,
                                                          sosie_cands *cands, sosie_topk *seeds,
                                                          const size_t *done, size_t ndone) {
    const int8_t *codes = job->codes;
    const ptrdiff_t cs = job->code_stride;
    const size_t m = job->m, begin = job->rows.begin, end = job->rows.end;
    const float *a2 = job->sq_norms;
    const float step = job->step, q2 = job->qhead2;
    int32_t dots[4];
    size_t i = begin;
    float h = st->h, seed_worst = seeds->size == seeds->cap ? seeds->dist[0] : INFINITY;
    for (; i + 4 <= end; i += 4) {
        /* codes and norms SKETCH_AHEAD bytes ahead: the hardware prefetcher alone left this
         * pass at half the memory's streaming rate on a cold cache */
        const char *ahead = (const char *)(codes + (ptrdiff_t)i * cs) + SKETCH_AHEAD;
        for (ptrdiff_t b = 0; b < 4 * cs; b += 64) __builtin_prefetch(ahead + b, 0, 3);
        if ((i & 15) == 0) __builtin_prefetch((const char *)(a2 + i) + SKETCH_AHEAD / 8, 0, 3);
        SKETCH_ROWS4(codes + (ptrdiff_t)i * cs, cs, job->weights, m, dots);
        sosie_v4i di;
        sosie_v4f ai;
        memcpy(&di, dots, sizeof di);
        memcpy(&ai, a2 + i, sizeof ai);
        /* the same three roundings a row as the scalar tail below (no contraction) */
        sosie_v4f v = (ai + step * __builtin_convertvector(di, sosie_v4f)) + q2;
        sosie_v4i below = v <= (sosie_v4f){h, h, h, h};
        if (cands->cap - cands->size < 4 && !sosie_cands_grow(cands)) return;
        size_t at = cands->size;
        for (int t = 0; t < 4; t++) {
            cands->row[at] = i + (size_t)t;
            cands->h2[at] = v[t];
            cands->dot[at] = dots[t];
            at -= (size_t)(ptrdiff_t)below[t]; /* -1 for a row below H */
        }
        cands->size = at;
        float lo = v[0] < v[1] ? v[0] : v[1], lo2 = v[2] < v[3] ? v[2] : v[3];
        if (__builtin_expect((lo < lo2 ? lo : lo2) < seed_worst, 0)) {
            for (int t = 0; t < 4; t++)
                if (seeds->size < seeds->cap || v[t] < seeds->dist[0])
                    SKETCH_SEED(job, st, cands, seeds, done, ndone, i + (size_t)t, v[t]);
            seed_worst = seeds->size == seeds->cap ? seeds->dist[0] : INFINITY;
            h = st->h;
        }
    }
    for (; i < end; i++) {
        SKETCH_ROWS4(codes + (ptrdiff_t)i * cs, 0, job->weights, m, dots);
        float v = (a2[i] + step * (float)dots[0]) + q2;
        if (v <= h) sosie_cands_push(cands, i, v, dots[0]);
        if (seeds->size < seeds->cap || v < seeds->dist[0]) {
            SKETCH_SEED(job, st, cands, seeds, done, ndone, i, v);
            h = st->h;
        }
    }
}

#define SKETCH_QUEUE 8
#define SKETCH_LEAD 16

/* Rows sampled for the first tau (SKETCH_CHUNKS runs, 64 more rows per wanted row), on corpora
 * of at least SKETCH_SAMPLE_MIN rows (below, the first pass starts with tau = +inf). */
#ifndef SKETCH_SAMPLE
#define SKETCH_SAMPLE 2048
#endif
#define SKETCH_CHUNKS 16
#ifndef SKETCH_SAMPLE_MIN
#define SKETCH_SAMPLE_MIN 16384
#endif

/* Three steps. A sample's k rows of least h2 are read in float16: tau, a certified upper bound
 * of the k-th best distance, and H follow. One pass then streams the first-stage codes of every
 * row: a row whose first-stage h2 exceeds H cannot rank (its bound exceeds tau); the others are
 * candidates, and those among the k of least h2 so far are read at once (tau and H drop as the
 * pass goes). Last, each candidate still below the final H gets its second stage (the rest of
 * its codes, A_i over all axes, its tail norm: prefetched SKETCH_LEAD candidates ahead) and the
 * full bound; the survivors are read in float16 through a small queue of prefetched rows
 * (their bound checked again on the way out: tau may have dropped). No row is read twice.
 * `done` has room for k rows. */
SCAN_ATTR static void SOSIE_CAT2(SCAN_ISA, sketch_scan)(const sosie_sketch_job *job, size_t k,
                                                         sosie_topk *heap, sosie_topk *top,
                                                         sosie_topk *seeds, sosie_cands *cands,
                                                         size_t *done, size_t *read_rows) {
    const sosie_job *f = &job->rows;
    const size_t n = f->end - f->begin, row_bytes = 2 * f->d;
    sosie_sketch_state st = {heap, top, k, 0, INFINITY, INFINITY, INFINITY};
    size_t ndone = 0;

#ifdef SKETCH_DEBUG
    unsigned long long t0 = __builtin_ia32_rdtsc();
#endif
    if (n >= SKETCH_SAMPLE_MIN) {
        size_t run = (SKETCH_SAMPLE + 64 * k) / SKETCH_CHUNKS + 4; /* n / 4 at most */
        run = (run < n / 4 / SKETCH_CHUNKS ? run : n / 4 / SKETCH_CHUNKS) & ~(size_t)3;
        ndone = SOSIE_CAT2(SCAN_ISA, sketch_sample)(job, &st, SKETCH_CHUNKS, run, seeds, done);
    }
#ifdef SKETCH_DEBUG
    unsigned long long t1 = __builtin_ia32_rdtsc(); size_t r1 = st.read;
#endif
    SOSIE_CAT2(SCAN_ISA, sketch_first)(job, &st, cands, seeds, done, ndone);
    if (cands->failed) return;
#ifdef SKETCH_DEBUG
    unsigned long long t2 = __builtin_ia32_rdtsc(); size_t r2 = st.read, st2 = 0;
#endif

#define SKETCH_LB(v, t) sosie_sketch_bound(job, (v), (t))
    size_t queue[SKETCH_QUEUE], head = 0, count = 0, next_done = 0;
    float queue_h2[SKETCH_QUEUE], queue_tail[SKETCH_QUEUE];
    const size_t *crow = cands->row;
    const float *ch2 = cands->h2;
    const int32_t *cdot = cands->dot;
    const ptrdiff_t rs = job->rest_stride;
    const size_t mr = job->m_rest;
    int32_t rest[4] = {0, 0, 0, 0};
    for (size_t c = 0; c < cands->size; c++) {
        if (c + SKETCH_LEAD < cands->size && ch2[c + SKETCH_LEAD] <= st.h)
            __builtin_prefetch(job->rest + (ptrdiff_t)crow[c + SKETCH_LEAD] * rs, 0, 3);
        if (!(ch2[c] <= st.h)) continue; /* NaN: read in the first pass */
        size_t i = crow[c];
        while (next_done < ndone && done[next_done] < i) next_done++;
        if (next_done < ndone && done[next_done] == i) continue; /* read by the sample */
        const char *record = job->rest + (ptrdiff_t)i * rs;
        if (mr) SKETCH_ROWS4((const int8_t *)record, 0, job->weights + job->m, mr, rest);
        float a_all, tail;
        memcpy(&a_all, record + mr, sizeof a_all);
        memcpy(&tail, record + mr + sizeof a_all, sizeof tail);
        float v = (a_all + job->step * (float)(cdot[c] + rest[0])) + job->qhead2_all;
        if (!(v <= st.h) || !(SKETCH_LB(v, tail) <= st.tau)) continue;
        const char *p = f->base + (ptrdiff_t)i * f->stride;
        for (size_t b = 0; b < row_bytes; b += 64) __builtin_prefetch(p + b, 0, 3);
        size_t at = (head + count) % SKETCH_QUEUE;
        if (count == SKETCH_QUEUE) {
            if (SKETCH_LB(queue_h2[head], queue_tail[head]) <= st.tau)
                SKETCH_READ(job, &st, queue[head]);
            at = head;
            head = (head + 1) % SKETCH_QUEUE;
        } else {
            count++;
        }
        queue[at] = i;
        queue_h2[at] = v;
        queue_tail[at] = tail;
    }
    for (size_t c = 0; c < count; c++) {
        size_t at = (head + c) % SKETCH_QUEUE;
        if (SKETCH_LB(queue_h2[at], queue_tail[at]) <= st.tau) SKETCH_READ(job, &st, queue[at]);
    }
#undef SKETCH_LB
    *read_rows = st.read;
#ifdef SKETCH_DEBUG
    unsigned long long t3 = __builtin_ia32_rdtsc();
    fprintf(stderr, "sample %.0fus read %zu | first %.0fus read %zu cands %zu | second %.0fus stage2 %zu read %zu\n",
            (t1 - t0) / 2600.0, r1, (t2 - t1) / 2600.0, r2 - r1, cands->size, (t3 - t2) / 2600.0, st2, st.read - r2);
#endif
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
#undef SKETCH_READ
#undef SKETCH_SEED
