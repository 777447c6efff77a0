/* The sketch scan, instantiated once per ISA by dispatch.c (see dispatch.h):
 *
 *   #define SCAN_ISA avx2          ISA prefix of <isa>_sketch_block16, <isa>_sketch_rows4 and
 *                                  <isa>_l2_rows4
 *   #define SCAN_ATTR SOSIE_AVX2   function attributes (target) or empty
 *   #include "sketch_template.h"
 *
 * defines <isa>_sketch_scan(job, k, heap, top, seeds, cands, done, read, second),
 * <isa>_sketch_dots(codes, stride, m, w, n, out) and <isa>_sketch_block_dots(blocks, m, w, n,
 * out). The first pass takes 16 rows at a time: integer dots (no horizontal sums), h2 in three
 * float operations a row, one comparison with H, the h2 beyond which the first stage alone
 * proves LB > tau (no square root); the few rows below H are kept as candidates, and those
 * among the k of least h2 so far are read at once, so tau and H drop as the pass goes. The
 * candidates still below the final H get their second stage and the full bound in double, and
 * the survivors are read in float16.
 */
#define SOSIE_CAT2_(a, b) a##_##b
#define SOSIE_CAT2(a, b) SOSIE_CAT2_(a, b)
#define SKETCH_ROWS4 SOSIE_CAT2(SCAN_ISA, sketch_rows4)
#define SKETCH_BLOCK16 SOSIE_CAT2(SCAN_ISA, sketch_block16)
#define SKETCH_LE_MASK16 SOSIE_CAT2(SCAN_ISA, le_mask16)
#define SKETCH_L2_ROWS4 SOSIE_CAT2(SCAN_ISA, l2_rows4)

#include "sketch_shared.h"

#ifndef SKETCH_AHEAD
#define SKETCH_AHEAD 2048
#endif
#ifndef SKETCH_LOCALITY
#define SKETCH_LOCALITY 3
#endif
#ifndef SKETCH_PREFETCH_STEP
#define SKETCH_PREFETCH_STEP 64
#endif


#define SKETCH_READ SOSIE_CAT2(SCAN_ISA, sketch_read)
#define SKETCH_SEED SOSIE_CAT2(SCAN_ISA, sketch_seed)
#define SKETCH_DRAIN SOSIE_CAT2(SCAN_ISA, sketch_drain)
#define SKETCH_FETCH SOSIE_CAT2(SCAN_ISA, sketch_fetch)
#define SKETCH_H2 SOSIE_CAT2(SCAN_ISA, sketch_h2)

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

/* Prefetch row i's float16 values. */
SCAN_ATTR static inline void SKETCH_FETCH(const sosie_sketch_job *job, size_t i) {
    const char *p = job->rows.base + (ptrdiff_t)i * job->rows.stride;
    for (size_t o = 0; o < 2 * job->rows.d; o += 64) __builtin_prefetch(p + o, 0, 3);
}

/* First-stage h2 of the 16 rows of block b (and their dots): A + step D + qhead2 in float32,
 * three roundings a row (no contraction). */
SCAN_ATTR static inline void SKETCH_H2(const sosie_sketch_job *job, const int32_t *wp, size_t b,
                                       int32_t dots[16], sosie_v16f *v) {
    const int8_t *block = (const int8_t *)job->blocks + b * SOSIE_SKETCH_BLOCK_BYTES(job->m);
    SKETCH_BLOCK16(block, wp, job->m, dots);
    sosie_v16i di;
    sosie_v16f ai;
    memcpy(&di, dots, sizeof di);
    memcpy(&ai, block + 16 * job->m, sizeof ai);
    *v = (ai + job->step * __builtin_convertvector(di, sosie_v16f)) + job->qhead2;
}

/* The sample: `chunks` runs of `run` blocks spread evenly over the rows (runs stream like the
 * full pass; their spread keeps the sample fair whatever order the corpus' rows were built
 * in). Its k rows of least first-stage h2 go into `seeds` and are read in float16, which gives
 * the first tau; `done` receives them, sorted. */
SCAN_ATTR static size_t SOSIE_CAT2(SCAN_ISA, sketch_sample)(const sosie_sketch_job *job,
                                                             sosie_sketch_state *st,
                                                             const int32_t *wp, size_t chunks,
                                                             size_t run, sosie_topk *seeds,
                                                             size_t *done) {
    const size_t blocks = job->rows.end / 16; /* whole blocks only */
    int32_t dots[16];
    for (size_t c = 0; c < chunks; c++)
        for (size_t b = blocks / chunks * c, stop = b + run; b < stop; b++) {
            sosie_v16f v;
            SKETCH_H2(job, wp, b, dots, &v);
            for (size_t t = 0; t < 16; t++) sosie_offer(seeds, v[t], 16 * b + t);
        }
    for (size_t s = 0; s < seeds->size; s++) { /* insertion sort: k rows */
        size_t r = (size_t)seeds->row[s], at = s;
        for (; at > 0 && done[at - 1] > r; at--) done[at] = done[at - 1];
        done[at] = r;
    }
    for (size_t s = 0; s < seeds->size; s++) SKETCH_FETCH(job, done[s]); /* misses overlap */
    for (size_t s = 0; s < seeds->size; s++) SKETCH_READ(job, st, done[s]);
    return seeds->size;
}

/* Rows of the first pass to read in float16, prefetched when found and read SKETCH_DEFER blocks
 * later (a DRAM miss then costs no wait), oldest first. */
#ifndef SOSIE_SKETCH_PENDING_DEFINED
#define SOSIE_SKETCH_PENDING_DEFINED
#define SKETCH_PENDING 16
#define SKETCH_DEFER 2
typedef struct {
    size_t row[SKETCH_PENDING], block[SKETCH_PENDING];
    float h2[SKETCH_PENDING];
    size_t head, count;
} sosie_pending;
#endif

/* Read the pending rows found before block `before` (all of them for SIZE_MAX) that can still
 * rank; each read row's candidate entry is marked read. */
SCAN_ATTR __attribute__((noinline)) static void SKETCH_DRAIN(const sosie_sketch_job *job,
                                                             sosie_sketch_state *st,
                                                             sosie_cands *cands,
                                                             sosie_pending *pending,
                                                             size_t before) {
    while (pending->count && pending->block[pending->head] < before) {
        size_t at = pending->head, r = pending->row[at];
        pending->head = (at + 1) % SKETCH_PENDING;
        pending->count--;
        if (!(pending->h2[at] <= st->h)) continue; /* tau dropped meanwhile: the second pass */
        SKETCH_READ(job, st, r);
        for (size_t c = cands->size; c-- > 0 && cands->row[c] >= r;)
            if (cands->row[c] == r) cands->h2[c] = NAN; /* read: the second pass skips it */
    }
}

/* A row of the first pass, in block b, among the k of least first-stage h2 so far (`seeds`,
 * which starts with the sample's): to be read if it can still rank, unless the sample read it
 * (its candidate entry was pushed just before). */
SCAN_ATTR __attribute__((noinline)) static void SKETCH_SEED(const sosie_sketch_job *job,
                                                            sosie_sketch_state *st,
                                                            sosie_cands *cands,
                                                            sosie_topk *seeds,
                                                            sosie_pending *pending,
                                                            const size_t *done, size_t ndone,
                                                            size_t b, size_t r, float v) {
    sosie_offer(seeds, v, r);
    if (!(v <= st->h)) return;
    for (size_t s = 0; s < ndone; s++)
        if (done[s] == r) return; /* read by the sample */
    if (pending->count == SKETCH_PENDING) SKETCH_DRAIN(job, st, cands, pending, b + 1);
    if (pending->count == SKETCH_PENDING) return; /* unreachable: drained up to b */
    SKETCH_FETCH(job, r);
    size_t at = (pending->head + pending->count++) % SKETCH_PENDING;
    pending->row[at] = r;
    pending->block[at] = b;
    pending->h2[at] = v;
}

/* The first pass over every block: first-stage h2 (the blocks only, streamed) compared with
 * the current H; the rows below it become candidates, and the rare rows among the k of least
 * h2 so far are read at once (above), which lowers tau and H as the pass goes. */
SCAN_ATTR static void SOSIE_CAT2(SCAN_ISA, sketch_first)(const sosie_sketch_job *job,
                                                          sosie_sketch_state *st,
                                                          const int32_t *wp, sosie_cands *cands,
                                                          sosie_topk *seeds, const size_t *done,
                                                          size_t ndone) {
    const size_t n = job->rows.end, blocks = (n + 15) / 16;
    const size_t bytes = SOSIE_SKETCH_BLOCK_BYTES(job->m);
    /* seed_below: the greatest float below the k-th least h2 so far (+inf while fewer) */
    float h = st->h, seed_below = INFINITY;
    if (seeds->size == seeds->cap) seed_below = nextafterf(seeds->dist[0], -INFINITY);
    int32_t dots[16];
    sosie_pending pending = {{0}, {0}, {0}, 0, 0};
    for (size_t b = 0; b < blocks; b++) {
        if (pending.count && pending.block[pending.head] + SKETCH_DEFER <= b) {
            SKETCH_DRAIN(job, st, cands, &pending, b + 1 - SKETCH_DEFER);
            h = st->h;
        }
        /* SKETCH_AHEAD bytes ahead: the hardware prefetcher alone left this pass well below the
         * memory's streaming rate on a cold cache */
        const char *ahead = job->blocks + b * bytes + SKETCH_AHEAD;
        for (size_t o = 0; SKETCH_AHEAD && o < bytes; o += SKETCH_PREFETCH_STEP)
            __builtin_prefetch(ahead + o, 0, SKETCH_LOCALITY);
        sosie_v16f v;
        SKETCH_H2(job, wp, b, dots, &v);
        float lanes[16];
        memcpy(lanes, &v, sizeof lanes);
        /* one comparison for the common block: no row below H, none among the least h2 */
        if (__builtin_expect(!SKETCH_LE_MASK16(lanes, h > seed_below ? h : seed_below), 1))
            continue;
        uint32_t mask = SKETCH_LE_MASK16(lanes, h), seed = SKETCH_LE_MASK16(lanes, seed_below);
        if (16 * b + 16 > n) { /* the last block's padding rows are not rows */
            uint32_t valid = (1u << (n - 16 * b)) - 1;
            mask &= valid;
            seed &= valid;
        }
        for (uint32_t bits = mask | seed; bits; bits &= bits - 1) {
            int t = __builtin_ctz(bits);
            size_t r = 16 * b + (size_t)t;
            if (v[t] <= h) sosie_cands_push(cands, r, v[t], dots[t]);
            if (seeds->size < seeds->cap || v[t] < seeds->dist[0]) {
                SKETCH_SEED(job, st, cands, seeds, &pending, done, ndone, b, r, v[t]);
            }
        }
        h = st->h;
        if (seeds->size == seeds->cap) seed_below = nextafterf(seeds->dist[0], -INFINITY);
        if (cands->failed) return;
    }
    SKETCH_DRAIN(job, st, cands, &pending, SIZE_MAX);
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
 * of the k-th best distance, and H follow. One pass then streams the first stage of every row:
 * a row whose first-stage h2 exceeds H cannot rank (its bound exceeds tau); the others are
 * candidates, and those among the k of least h2 so far are read at once (tau and H drop as the
 * pass goes). Last, each candidate still below the final H gets its second stage (its record:
 * the rest of its codes, A_i over all axes and its tail norm, prefetched SKETCH_LEAD candidates
 * ahead) and the full bound; the survivors are read in float16 through a small queue of
 * prefetched rows (their bound checked again on the way out: tau may have dropped). No row is
 * read twice. `done` has room for k rows; *second_rows: the rows given the second stage. */
SCAN_ATTR static void SOSIE_CAT2(SCAN_ISA, sketch_scan)(const sosie_sketch_job *job, size_t k,
                                                         sosie_topk *heap, sosie_topk *top,
                                                         sosie_topk *seeds, sosie_cands *cands,
                                                         size_t *done, size_t *read_rows,
                                                         size_t *second_rows) {
    const sosie_job *f = &job->rows;
    const size_t n = f->end, row_bytes = 2 * f->d;
    sosie_sketch_state st = {heap, top, k, 0, INFINITY, INFINITY, INFINITY};
    size_t ndone = 0;
    int32_t wp[SOSIE_MAX_SKETCH_AXES / 2];
    sosie_weight_pairs(job->weights, job->m, wp);

    if (n >= SKETCH_SAMPLE_MIN) {
        size_t run = (SKETCH_SAMPLE + 64 * k) / (16 * SKETCH_CHUNKS) + 1; /* n / 4 at most */
        size_t most = n / 4 / (16 * SKETCH_CHUNKS);
        ndone = SOSIE_CAT2(SCAN_ISA, sketch_sample)(job, &st, wp, SKETCH_CHUNKS,
                                                    run < most ? run : most, seeds, done);
    }
    SOSIE_CAT2(SCAN_ISA, sketch_first)(job, &st, wp, cands, seeds, done, ndone);
    if (cands->failed) return;

#define SKETCH_LB(v, t) sosie_sketch_bound(job, (v), (t))
    size_t queue[SKETCH_QUEUE], head = 0, count = 0, next_done = 0, second = 0;
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
        second++;
        if (mr) SKETCH_ROWS4((const int8_t *)record, 0, job->weights + job->m, mr, rest);
        float a_all, tail;
        memcpy(&a_all, record + mr, sizeof a_all);
        memcpy(&tail, record + mr + sizeof a_all, sizeof tail);
        float v = (a_all + job->step * (float)(cdot[c] + rest[0])) + job->qhead2_all;
        if (!(v <= st.h) || !(SKETCH_LB(v, tail) <= st.tau)) continue;
        const char *p = f->base + (ptrdiff_t)i * f->stride;
        for (size_t o = 0; o < row_bytes; o += 64) __builtin_prefetch(p + o, 0, 3);
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
    *second_rows = second;
}

/* D_i of n row-major rows (the second stage's layout, `stride` bytes apart). */
SCAN_ATTR static void SOSIE_CAT2(SCAN_ISA, sketch_dots)(const int8_t *codes, ptrdiff_t stride,
                                                         size_t m, const int16_t *w, size_t n,
                                                         int32_t *out) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) SKETCH_ROWS4(codes + (ptrdiff_t)i * stride, stride, w, m, out + i);
    int32_t v[4];
    for (; i < n; i++) {
        SKETCH_ROWS4(codes + (ptrdiff_t)i * stride, 0, w, m, v);
        out[i] = v[0];
    }
}

/* D_i of the first n rows of the first stage's blocks. */
SCAN_ATTR static void SOSIE_CAT2(SCAN_ISA, sketch_block_dots)(const char *blocks, size_t m,
                                                               const int16_t *w, size_t n,
                                                               int32_t *out) {
    int32_t wp[SOSIE_MAX_SKETCH_AXES / 2], dots[16];
    sosie_weight_pairs(w, m, wp);
    for (size_t b = 0; 16 * b < n; b++) {
        SKETCH_BLOCK16((const int8_t *)blocks + b * SOSIE_SKETCH_BLOCK_BYTES(m), wp, m, dots);
        for (size_t t = 0; t < 16 && 16 * b + t < n; t++) out[16 * b + t] = dots[t];
    }
}

#undef SKETCH_ROWS4
#undef SKETCH_BLOCK16
#undef SKETCH_LE_MASK16
#undef SKETCH_L2_ROWS4
#undef SKETCH_READ
#undef SKETCH_SEED
#undef SKETCH_DRAIN
#undef SKETCH_FETCH
#undef SKETCH_H2
