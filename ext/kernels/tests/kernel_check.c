/* Checks one SIMD kernel against exact double arithmetic and the serial reference, on random
 * float16 data: row values within the kernel's rounding bound, identical values for duplicated
 * rows wherever they sit, and the fused scan (1 and several threads) keeping exactly the best
 * rows by (value, row), and the sketch pass (sketch_case). Built for aarch64 and run under qemu-aarch64 -cpu cortex-a72 by
 * tests/test_neon.py; also builds natively (x86: checks avx2 / avx512).
 *
 * usage: kernel_check KERNEL [SEED] [ROUNDS]   prints "ok KERNEL CHECKS SKETCH_CHECKS" and
 * exits 0, or the first failure and exits 1.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../dispatch.h"

static unsigned long long rng_state;
static unsigned long long next(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double uniform(void) { return (double)(next() >> 11) / 9007199254740992.0; }
static size_t below(size_t n) { return (size_t)(next() % n); }

static double half_to_double(unsigned short h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e ? ldexp(1024 + m, e - 25) : ldexp(m, -24);
    return (h & 0x8000) ? -v : v;
}

/* Nearest float16 (ties away, good enough for test data), finite. */
static unsigned short double_to_half(double v) {
    unsigned short sign = v < 0 ? 0x8000 : 0;
    double a = fabs(v);
    if (a >= 65504.0) return sign | 0x7bff;
    if (a < ldexp(1, -14)) return sign | (unsigned short)lround(a * 16777216.0);
    int e;
    double f = frexp(a, &e); /* a = f * 2^e, f in [0.5, 1) */
    long m = lround(f * 2048.0); /* 11 significant bits */
    if (m == 2048) { m = 1024; e++; }
    if (e + 14 > 30) return sign | 0x7bff;
    return sign | (unsigned short)(((e + 14) << 10) | (m - 1024));
}

static long checks, sketch_checks;
static const char *kernel_name;

#define FAIL(...)                                                   \
    do {                                                            \
        printf("FAIL %s: ", kernel_name);                           \
        printf(__VA_ARGS__);                                        \
        printf("\n");                                               \
        exit(1);                                                    \
    } while (0)

typedef struct { float v; long long row; } pair;
static int by_value_row(const void *a, const void *b) {
    const pair *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

static void one_case(int kernel, int serial) {
    size_t d = 8 * (1 + below(18));                 /* 8 .. 144 */
    size_t n = 1 + below(700);
    size_t offset = below(33);                      /* byte offset: any alignment */
    size_t pad = 2 * 8 * below(3);                  /* extra bytes between rows */
    ptrdiff_t stride = (ptrdiff_t)(2 * d + pad);
    int mode = (int)below(5);
    char *buffer = calloc(n * (size_t)stride + offset + 64, 1);
    char *base = buffer + offset;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            double v;
            switch (mode) {
                case 0: v = (uniform() - 0.5) * 0.5; break;                  /* face-like */
                case 1: v = (uniform() - 0.5) * 131000.0; break;             /* large */
                case 2: v = (uniform() - 0.5) * ldexp(1, -13); break;        /* subnormals */
                case 3: v = (double)((long)below(5) - 2); break;             /* many ties */
                default: v = ldexp(uniform() - 0.5, (int)below(30) - 20);    /* all scales */
            }
            unsigned short h = double_to_half(v);
            memcpy(base + i * stride + 2 * j, &h, 2);
        }
    size_t dups = n > 8 ? below(n / 4) : 0;        /* duplicated rows: exact ties */
    for (size_t t = 0; t < dups; t++)
        memcpy(base + below(n) * stride, base + below(n) * stride, 2 * d);

    float *q = malloc(d * sizeof(float)), *q2 = malloc(d * sizeof(float));
    size_t like = below(n);
    for (size_t j = 0; j < d; j++) {
        unsigned short h;
        memcpy(&h, base + like * stride + 2 * j, 2);
        double x = half_to_double(h);
        q[j] = below(3) ? (float)x : (float)(x + (uniform() - 0.5) * (fabs(x) + 1e-3));
        q2[j] = -2.0f * q[j];
    }
    double *exact = malloc(n * sizeof(double)), *norm2 = malloc(n * sizeof(double));
    double qn2 = 0, maxnorm = 0;
    for (size_t j = 0; j < d; j++) qn2 += (double)q[j] * q[j];
    for (size_t i = 0; i < n; i++) {
        double s = 0, s2 = 0;
        for (size_t j = 0; j < d; j++) {
            unsigned short h;
            memcpy(&h, base + i * stride + 2 * j, 2);
            double x = half_to_double(h);
            s += (x - q[j]) * (x - q[j]);
            s2 += x * x;
        }
        exact[i] = s;
        norm2[i] = s2;
        if (sqrt(s2) > maxnorm) maxnorm = sqrt(s2);
    }

    float *fast = malloc(n * 4), *ref = malloc(n * 4), *n2f = malloc(n * 4), *fdot = malloc(n * 4);
    float *zero = calloc(d, sizeof(float));
    sosie_job job = {base, stride, d, 0, n, q, NULL, 0.0f, 0};
    int threads = 1 + (int)below(3);
    if (sosie_values(kernel, SOSIE_L2, &job, threads, fast) || sosie_values(serial, SOSIE_L2, &job, 1, ref))
        FAIL("sosie_values refused");
    double u = ldexp(1, -24), tiny = ldexp((double)d * 4 + 64, -126);
    size_t depth_k = 2 * sosie_rounding_depth(kernel, d) + 8;
    size_t depth_s = 2 * sosie_rounding_depth(serial, d) + 8;
    for (size_t i = 0; i < n; i++) {
        if (fabs(fast[i] - exact[i]) > depth_k * u * exact[i] + tiny)
            FAIL("L2 row %zu of %zu (d=%zu mode %d): %.9g vs exact %.17g", i, n, d, mode,
                 fast[i], exact[i]);
        if (fabs(ref[i] - exact[i]) > depth_s * u * exact[i] + tiny)
            FAIL("serial L2 row %zu: %.9g vs exact %.17g", i, ref[i], exact[i]);
        checks += 2;
    }
    /* Norm trick: squared norms from the kernel itself, then ||x||^2 + ||q||^2 - 2 q.x. */
    sosie_job zjob = job;
    zjob.q = zero;
    sosie_values(kernel, SOSIE_L2, &zjob, 1, n2f);
    sosie_job djob = job;
    djob.q = q2;
    djob.norms2 = n2f;
    djob.qnorm2 = (float)qn2;
    sosie_values(kernel, SOSIE_DOT, &djob, threads, fdot);
    double rel = depth_k * u / (1 - depth_k * u);
    double bound = (rel + 3 * u) * pow(maxnorm * (1 + rel) + sqrt(qn2), 2) + 4 * tiny;
    for (size_t i = 0; i < n; i++) {
        if (!(fdot[i] >= 0) || fabs(fdot[i] - exact[i]) > bound)
            FAIL("DOT row %zu: %.9g vs exact %.17g (bound %.3g)", i, fdot[i], exact[i], bound);
        checks++;
    }
    /* Duplicated rows give bit-identical values wherever they sit. */
    for (size_t i = 0; i + 1 < n; i++)
        for (size_t t = i + 1; t < n && t < i + 40; t++)
            if (!memcmp(base + i * stride, base + t * stride, 2 * d)) {
                if (fast[i] != fast[t] || fdot[i] != fdot[t])
                    FAIL("rows %zu and %zu are equal but got %.9g / %.9g", i, t, fast[i], fast[t]);
                checks++;
            }
    /* The fused scan keeps exactly the best `cap` rows by (value, row), per chunk. */
    for (int metric = 0; metric < 2; metric++) {
        const sosie_job *sj = metric ? &djob : &job;
        const float *vals = metric ? fdot : fast;
        size_t cap = 1 + below(40);
        int t_count = 1 + (int)below(4);
        float *dist = malloc(t_count * cap * 4), *bnd = malloc(t_count * 4);
        int64_t *rows = malloc(t_count * cap * 8);
        size_t *counts = malloc(t_count * sizeof(size_t));
        if (sosie_scan(kernel, metric, sj, cap, t_count, dist, rows, counts, bnd))
            FAIL("sosie_scan refused");
        pair *all = malloc(n * sizeof(pair)), *got = malloc(cap * sizeof(pair));
        for (int t = 0; t < t_count; t++) {
            size_t lo = n * t / t_count, hi = n * (t + 1) / t_count, m = hi - lo;
            for (size_t i = lo; i < hi; i++) all[i - lo] = (pair){vals[i], (long long)i};
            qsort(all, m, sizeof(pair), by_value_row);
            size_t want = m < cap ? m : cap;
            if (counts[t] != want) FAIL("chunk %d kept %zu rows, expected %zu", t, counts[t], want);
            for (size_t i = 0; i < want; i++)
                got[i] = (pair){dist[t * cap + i], (long long)rows[t * cap + i]};
            qsort(got, want, sizeof(pair), by_value_row);
            for (size_t i = 0; i < want; i++)
                if (got[i].row != all[i].row || got[i].v != all[i].v)
                    FAIL("metric %d chunk %d rank %zu: row %lld (%.9g), expected row %lld (%.9g)",
                         metric, t, i, got[i].row, got[i].v, all[i].row, all[i].v);
            float expect_bound = m > cap ? all[cap - 1].v : INFINITY;
            if (bnd[t] != expect_bound) FAIL("chunk %d bound %.9g, expected %.9g", t, bnd[t], expect_bound);
            checks += (long)want + 1;
        }
        free(dist); free(bnd); free(rows); free(counts); free(all); free(got);
    }
    free(buffer); free(q); free(q2); free(exact); free(norm2); free(fast); free(ref); free(n2f);
    free(fdot); free(zero);
}

/* The sketch pass with the identity rotation (mean 0): codes quantize the first m float16
 * coordinates, tails are the norms of the rest. Checks the integer dots exactly (alone and in
 * fours) and that the fused scan, with the slacks search.py derives, reads and keeps every row
 * clearly inside the exact top-k (an unread row must be beyond the k-th). */
static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void sketch_case(int kernel, int serial) {
    size_t d = 8 * (1 + below(16)), m = 8 * (1 + below(d / 8));
    /* one case in eight past SKETCH_SAMPLE_MIN rows: the sampled first tau */
    size_t n = below(8) ? 1 + below(900) : 16384 + below(4000), k = 1 + below(30);
    size_t cap = 2 * k + 8;
    size_t m1 = 8 * (1 + below(m / 8)), mr = m - m1; /* first stage, then the records */
    int mode = (int)below(3);
    unsigned short *x = malloc(n * d * 2);
    double *xd = malloc(n * d * sizeof(double));
    size_t clusters = 1 + n / 40;
    for (size_t i = 0; i < n; i++) {
        size_t c = below(clusters);
        for (size_t j = 0; j < d; j++) {
            double v, decay = 1.0 / (1.0 + (double)j);
            unsigned long long save = rng_state;
            rng_state = (c + 1) * 0x9E3779B97F4A7C15ull + j; /* the cluster's centre */
            double centre = (uniform() - 0.5) * decay;
            rng_state = save;
            if (mode == 0) v = centre + (uniform() - 0.5) * 0.05 * decay;
            else if (mode == 1) v = (double)((long)below(3) - 1);
            else v = (uniform() - 0.5) * 60000.0 * decay;
            x[i * d + j] = double_to_half(v);
            xd[i * d + j] = half_to_double(x[i * d + j]);
        }
    }
    float *scale = malloc(m * 4), *tails = malloc(n * 4), *a2 = malloc(n * 4);
    signed char *codes = malloc(n * m + 1);
    double error = 0, code_norm = 0, radius = 0, l1max = 0;
    for (size_t j = 0; j < m; j++) {
        double peak = 0;
        for (size_t i = 0; i < n; i++) peak = fmax(peak, fabs(xd[i * d + j]));
        scale[j] = peak > 0 ? (float)(peak / 127) : 1.0f;
    }
    for (size_t i = 0; i < n; i++) {
        double e = 0, c2 = 0, t = 0, r = 0, l1 = 0;
        for (size_t j = 0; j < d; j++) {
            double v = xd[i * d + j];
            r += v * v;
            if (j >= m) { t += v * v; continue; }
            double c = fmax(-127, fmin(127, nearbyint(v / scale[j])));
            codes[i * m + j] = (signed char)c;
            e += (v - c * scale[j]) * (v - c * scale[j]);
            c2 += c * scale[j] * c * scale[j];
            l1 += fabs(c);
        }
        tails[i] = (float)sqrt(t);
        a2[i] = (float)c2;
        error = fmax(error, sqrt(e));
        code_norm = fmax(code_norm, sqrt(c2));
        radius = fmax(radius, sqrt(r));
        l1max = fmax(l1max, l1);
    }
    size_t like = below(n);
    float *q = malloc(d * 4);
    double qn = 0, hn = 0, qt = 0, peak = 0, *g = malloc(m * sizeof(double));
    short *w = malloc(m * sizeof(short));
    for (size_t j = 0; j < d; j++) {
        q[j] = (float)(xd[like * d + j] + (below(2) ? 0.0 : (uniform() - 0.5) * 0.01));
        qn += (double)q[j] * q[j];
        if (j < m) {
            hn += (double)q[j] * q[j];
            g[j] = (double)scale[j] * q[j];
            peak = fmax(peak, fabs(g[j]));
        } else {
            qt += (double)q[j] * q[j];
        }
    }
    double S = peak > 0 ? peak / 32767 : 1.0;
    for (size_t j = 0; j < m; j++) w[j] = (short)fmax(-32767, fmin(32767, nearbyint(g[j] / S)));
    double u = ldexp(1, -24), tiny = ldexp(1, -126);
    double slack_rot = ldexp(1, -30) * (radius + sqrt(qn)), coarse = S * l1max;
    /* the two stages: the first m1 codes in blocks of 16 rows (pairs of codes, then A over
     * them; padding rows zero), and records of the other mr codes, then A over all m axes and
     * the tail norm */
    size_t rs = (mr + 8 + 15) / 16 * 16, nb = (n + 15) / 16, bb = SOSIE_SKETCH_BLOCK_BYTES(m1);
    char *blocks = calloc(nb * bb, 1);
    char *records = malloc(n * rs + 1);
    double hn1 = 0;
    for (size_t j = 0; j < m1; j++) hn1 += (double)q[j] * q[j];
    for (size_t i = 0; i < n; i++) {
        char *block = blocks + (i / 16) * bb;
        size_t r = i % 16;
        double c2 = 0;
        for (size_t j = 0; j < m1; j++) {
            block[32 * (j / 2) + 2 * r + j % 2] = (char)codes[i * m + j];
            c2 += (double)codes[i * m + j] * scale[j] * codes[i * m + j] * scale[j];
        }
        float a2_first = (float)c2;
        memcpy(block + 16 * m1 + 4 * r, &a2_first, 4);
        memcpy(records + i * rs, codes + i * m + m1, mr);
        memcpy(records + i * rs + mr, &a2[i], 4);
        memcpy(records + i * rs + mr + 4, &tails[i], 4);
    }
    sosie_sketch_job job = {blocks, m1, records, (ptrdiff_t)rs, mr, w,
                            (float)(-2 * S), (float)hn1, (float)hn,
                            1.01 * coarse + 8 * u * (pow(code_norm + sqrt(hn), 2) + coarse) +
                                8 * tiny,
                            sqrt(qt), error * (1 + 1e-9) + slack_rot, slack_rot, ldexp(1, -12),
                            {(const char *)x, (ptrdiff_t)(2 * d), d, 0, n, q, NULL, 0.0f, 0},
                            0, 0, 0};
    size_t depth = 2 * sosie_rounding_depth(kernel, d) + 8;
    job.rel = depth * u / (1 - depth * u);
    job.absolute = (d + depth) * 2.0 * tiny;
    /* integer dots of every row: the blocks (first stage) and the row-major codes (the second
     * stage's kernel, in fours and alone), against the serial kernel and int64 */
    int32_t *dots = malloc(n * 4), *dots_s = malloc(n * 4), *rows_d = malloc(n * 4), one[1];
    if (sosie_sketch_block_dots(kernel, blocks, m1, w, n, dots) ||
        sosie_sketch_block_dots(serial, blocks, m1, w, n, dots_s) ||
        sosie_sketch_dots(kernel, (const int8_t *)codes, (ptrdiff_t)m, m, w, n, rows_d))
        FAIL("sosie_sketch_block_dots / sosie_sketch_dots refused");
    for (size_t i = 0; i < n; i++) {
        long long want = 0, all = 0;
        for (size_t j = 0; j < m; j++) {
            all += (long long)codes[i * m + j] * w[j];
            if (j < m1) want = all;
        }
        sosie_sketch_dots(kernel, (const int8_t *)codes + i * m, 0, m, w, 1, one);
        if (dots[i] != want || dots_s[i] != want || rows_d[i] != all || one[0] != all)
            FAIL("sketch row %zu (m=%zu, m1=%zu): block dot %d / serial %d, expected %lld; "
                 "row dot %d / alone %d, expected %lld", i, m, m1, dots[i], dots_s[i], want,
                 rows_d[i], one[0], all);
        sketch_checks += 4;
    }
    /* the fused scan keeps every row clearly inside the exact top-k */
    double *exact = malloc(n * sizeof(double)), *sorted = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < d; j++) s += (xd[i * d + j] - q[j]) * (xd[i * d + j] - q[j]);
        exact[i] = sorted[i] = s;
    }
    qsort(sorted, n, sizeof *sorted, compare_doubles);
    size_t kk = k < n ? k : n, cc = cap < n ? cap : n, count = 0, read = 0, second = 0;
    float *dist = malloc(cc * 4), bound = 0;
    int64_t *rows = malloc(cc * 8);
    if (sosie_sketch_scan(kernel, &job, kk, cc, dist, rows, &count, &bound, &read, &second))
        FAIL("sosie_sketch_scan refused");
    if (read < kk || read > n || second > n || count != (read < cc ? read : cc))
        FAIL("sketch scan read %zu rows, kept %zu (n=%zu k=%zu cap=%zu)", read, count, n, kk, cc);
    for (size_t t = 0; t < count; t++)
        for (size_t o = t + 1; o < count; o++)
            if (rows[t] == rows[o]) FAIL("sketch scan kept row %lld twice", (long long)rows[t]);
    double kth = sorted[kk - 1];
    for (size_t i = 0; i < n; i++) {
        if (!(exact[i] < kth * (1 - 1e-3))) continue;
        int found = 0;
        for (size_t t = 0; t < count; t++) found |= rows[t] == (int64_t)i;
        if (!found) FAIL("row %zu (d2 %.9g < k-th %.9g) missing from the sketch scan", i,
                         exact[i], kth);
        sketch_checks++;
    }
    free(x); free(xd); free(scale); free(tails); free(a2); free(codes); free(q); free(g);
    free(blocks); free(records); free(rows_d);
    free(w); free(dots); free(dots_s); free(exact); free(sorted); free(dist); free(rows);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s KERNEL [SEED] [ROUNDS]\n", argv[0]);
        return 2;
    }
    kernel_name = argv[1];
    rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) * 2654435761ull + 1 : 88172645463325252ull;
    int rounds = argc > 3 ? atoi(argv[3]) : 200;
    int kernel = sosie_kernel_find(kernel_name), serial = sosie_kernel_find("serial");
    if (kernel < 0 || !sosie_kernel_supported(kernel)) FAIL("kernel not available here");
    if (!strcmp(kernel_name, "neon") && sosie_kernel_best() != kernel) /* always on aarch64 */
        FAIL("best kernel is %s", sosie_kernel_name(sosie_kernel_best()));
    for (int r = 0; r < rounds; r++) {
        one_case(kernel, serial);
        sketch_case(kernel, serial);
    }
    printf("ok %s %ld %ld\n", kernel_name, checks, sketch_checks);
    return 0;
}
