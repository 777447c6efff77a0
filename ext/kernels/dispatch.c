/* The one runtime dispatch point of the scanner kernels, and the thread split. */
#include "dispatch.h"
#include "../cpu_features.h"

#ifndef SOSIE_PREFETCH_LOCALITY
#define SOSIE_PREFETCH_LOCALITY 3
#endif

#include <math.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "topk.h"
#include "sketch_shared.h"
#include "serial.h"
#include "avx2.h"
#include "avx512.h"
#include "neon.h"

/* ---- instantiate scan/dists for every ISA x metric ---------------------------------------- */

#define SCAN_ISA serial
#define SCAN_ATTR
#include "scan_metrics.h"

#ifdef SOSIE_HAVE_AVX2
#define SCAN_ISA avx2
#define SCAN_ATTR SOSIE_AVX2
#include "scan_metrics.h"
#endif

#ifdef SOSIE_HAVE_AVX512
#define SCAN_ISA avx512
#define SCAN_ATTR SOSIE_AVX512
#include "scan_metrics.h"
#endif

#ifdef SOSIE_HAVE_NEON
#define SCAN_ISA neon
#define SCAN_ATTR
#include "scan_metrics.h"
#endif

/* ---- the kernel table ---------------------------------------------------------------------- */

typedef void (*scan_fn)(const sosie_job *, sosie_topk *);
typedef void (*values_fn)(const sosie_job *, float *);
typedef void (*sketch_fn)(const sosie_sketch_job *, size_t, sosie_topk *, sosie_topk *,
                          sosie_topk *, sosie_cands *, size_t *, size_t *, size_t *);
typedef void (*sketch_dots_fn)(const int8_t *, ptrdiff_t, size_t, const int16_t *, size_t,
                               int32_t *);
typedef void (*block_dots_fn)(const char *, size_t, const int16_t *, size_t, int32_t *);

typedef struct {
    const char *name;
    int (*supported)(void);
    size_t (*depth)(size_t d);
    scan_fn scan[2];
    values_fn values[2];
    sketch_fn sketch;
    sketch_dots_fn sketch_dots;
    block_dots_fn block_dots;
} kernel_entry;

#ifdef SOSIE_HAVE_AVX2
/* the scan's AVX2 kernels also convert float16 (F16C) */
static int scan_has_avx2(void) { return cpu_has_avx2() && __builtin_cpu_supports("f16c"); }
#endif

#ifdef SOSIE_HAVE_AVX512
static int scan_has_avx512(void) { return scan_has_avx2() && cpu_has_avx512(); }
#endif

static const kernel_entry KERNELS[] = {
#ifdef SOSIE_HAVE_AVX512
    {"avx512", scan_has_avx512, avx512_rounding_depth,
     {avx512_l2_scan, avx512_dot_scan}, {avx512_l2_dists, avx512_dot_dists},
     avx512_sketch_scan, avx512_sketch_dots, avx512_sketch_block_dots},
#endif
#ifdef SOSIE_HAVE_AVX2
    {"avx2", scan_has_avx2, avx2_rounding_depth,
     {avx2_l2_scan, avx2_dot_scan}, {avx2_l2_dists, avx2_dot_dists},
     avx2_sketch_scan, avx2_sketch_dots, avx2_sketch_block_dots},
#endif
#ifdef SOSIE_HAVE_NEON
    {"neon", cpu_always, neon_rounding_depth,
     {neon_l2_scan, neon_dot_scan}, {neon_l2_dists, neon_dot_dists},
     neon_sketch_scan, neon_sketch_dots, neon_sketch_block_dots},
#endif
    {"serial", cpu_always, serial_rounding_depth,
     {serial_l2_scan, serial_dot_scan}, {serial_l2_dists, serial_dot_dists},
     serial_sketch_scan, serial_sketch_dots, serial_sketch_block_dots},
};
#define KERNEL_COUNT ((int)(sizeof KERNELS / sizeof KERNELS[0]))

const char *sosie_kernel_name(int kernel) {
    return kernel >= 0 && kernel < KERNEL_COUNT ? KERNELS[kernel].name : NULL;
}

int sosie_kernel_supported(int kernel) {
    return kernel >= 0 && kernel < KERNEL_COUNT && KERNELS[kernel].supported();
}

int sosie_kernel_find(const char *name) {
    for (int k = 0; k < KERNEL_COUNT; k++)
        if (strcmp(KERNELS[k].name, name) == 0) return k;
    return -1;
}

int sosie_kernel_best(void) {
    for (int k = 0; k < KERNEL_COUNT; k++)
        if (KERNELS[k].supported()) return k;
    return KERNEL_COUNT - 1;
}

size_t sosie_rounding_depth(int kernel, size_t d) {
    return sosie_kernel_supported(kernel) ? KERNELS[kernel].depth(d) : d + 2;
}

/* ---- threads: contiguous chunks, one heap each ------------------------------------------- */

typedef struct {
    sosie_job job;
    const kernel_entry *kernel;
    int metric;
    sosie_topk heap;
    float *out;    /* values mode */
    float bound;
} chunk_task;

static void *run_chunk(void *arg) {
    chunk_task *t = arg;
    if (t->out) {
        t->kernel->values[t->metric](&t->job, t->out);
        return NULL;
    }
    t->kernel->scan[t->metric](&t->job, &t->heap);
    size_t rows = t->job.end - t->job.begin;
    t->bound = t->heap.size < rows ? t->heap.dist[0] : INFINITY;
    return NULL;
}

#define MAX_THREADS 64

static int run_chunks(const kernel_entry *kernel, int metric, const sosie_job *job, size_t cap,
                      int threads, float *dist, int64_t *rows, float *out, chunk_task *tasks) {
    size_t n = job->end - job->begin;
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    for (int t = 0; t < threads; t++) {
        chunk_task *task = &tasks[t];
        task->job = *job;
        task->job.begin = job->begin + n * (size_t)t / (size_t)threads;
        task->job.end = job->begin + n * (size_t)(t + 1) / (size_t)threads;
        task->kernel = kernel;
        task->metric = metric;
        task->heap.dist = dist ? dist + (size_t)t * cap : NULL;
        task->heap.row = rows ? rows + (size_t)t * cap : NULL;
        task->heap.size = 0;
        task->heap.cap = cap;
        task->out = out;
        task->bound = INFINITY;
    }
    pthread_t ids[MAX_THREADS];
    int started = 1, failed = 0;
    for (; started < threads; started++)
        if (pthread_create(&ids[started], NULL, run_chunk, &tasks[started]) != 0) {
            failed = 1;
            break;
        }
    run_chunk(&tasks[0]);
    for (int t = 1; t < started; t++) pthread_join(ids[t], NULL);
    if (failed) /* finish the chunks that got no thread here, serially */
        for (int t = started; t < threads; t++) run_chunk(&tasks[t]);
    return threads;
}

int sosie_scan(int kernel, int metric, const sosie_job *job, size_t cap, int threads,
               float *dist, int64_t *rows, size_t *counts, float *bound) {
    if (!sosie_kernel_supported(kernel) || (metric != SOSIE_L2 && metric != SOSIE_DOT) ||
        cap == 0)
        return -1;
    chunk_task tasks[MAX_THREADS];
    int used = run_chunks(&KERNELS[kernel], metric, job, cap, threads, dist, rows, NULL, tasks);
    for (int t = 0; t < used; t++) {
        counts[t] = tasks[t].heap.size;
        bound[t] = tasks[t].bound;
    }
    for (int t = used; t < threads; t++) {
        counts[t] = 0;
        bound[t] = INFINITY;
    }
    return 0;
}

int sosie_values(int kernel, int metric, const sosie_job *job, int threads, float *out) {
    if (!sosie_kernel_supported(kernel) || (metric != SOSIE_L2 && metric != SOSIE_DOT))
        return -1;
    chunk_task tasks[MAX_THREADS];
    run_chunks(&KERNELS[kernel], metric, job, 0, threads, NULL, NULL, out, tasks);
    return 0;
}

/* ---- the sketch pass (one thread: it reads a fraction of the float16 bytes) --------------- */

int sosie_sketch_scan(int kernel, const sosie_sketch_job *job, size_t k, size_t cap,
                      float *dist, int64_t *rows, size_t *count, float *bound, size_t *read,
                      size_t *second) {
    if (!sosie_kernel_supported(kernel) || k == 0 || cap < k || k > SIZE_MAX / 64 ||
        job->rows.begin != 0 || job->m < 8 || job->m > SOSIE_MAX_SKETCH_AXES || job->m % 8 ||
        job->m + job->m_rest > SOSIE_MAX_SKETCH_AXES || job->m_rest % 8)
        return -1;
    float *top_dist = malloc(2 * k * sizeof *top_dist);
    int64_t *top_row = malloc(2 * k * sizeof *top_row);
    size_t *done = malloc(k * sizeof *done);
    sosie_cands cands = {NULL, NULL, NULL, 0, 0, 0};
    int rc = top_dist && top_row && done && sosie_cands_grow(&cands) ? 0 : -2;
    if (rc == 0) {
        sosie_topk heap = {dist, rows, 0, cap}, top = {top_dist, top_row, 0, k};
        sosie_topk seeds = {top_dist + k, top_row + k, 0, k};
        *read = *second = 0;
        KERNELS[kernel].sketch(job, k, &heap, &top, &seeds, &cands, done, read, second);
        if (cands.failed) rc = -2;
        *count = heap.size;
        *bound = *read > heap.size ? heap.dist[0] : INFINITY;
    }
    free(top_dist);
    free(top_row);
    free(done);
    free(cands.row);
    free(cands.h2);
    free(cands.dot);
    return rc;
}

int sosie_sketch_dots(int kernel, const int8_t *codes, ptrdiff_t stride, size_t m,
                      const int16_t *w, size_t n, int32_t *out) {
    if (!sosie_kernel_supported(kernel) || m % 8) return -1;
    KERNELS[kernel].sketch_dots(codes, stride, m, w, n, out);
    return 0;
}

int sosie_sketch_block_dots(int kernel, const char *blocks, size_t m, const int16_t *w, size_t n,
                            int32_t *out) {
    if (!sosie_kernel_supported(kernel) || m < 8 || m > SOSIE_MAX_SKETCH_AXES || m % 8) return -1;
    KERNELS[kernel].block_dots(blocks, m, w, n, out);
    return 0;
}

size_t sosie_count_nonfinite(const char *base, ptrdiff_t stride, size_t n, size_t d) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        const char *r = base + (ptrdiff_t)i * stride;
        unsigned any = 0;
        for (size_t j = 0; j < d; j++) {
            uint16_t h;
            memcpy(&h, r + 2 * j, sizeof h);
            any |= (h & 0x7c00u) == 0x7c00u;
        }
        bad += any;
    }
    return bad;
}
