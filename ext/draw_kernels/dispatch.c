/* The one runtime dispatch point of the drawing kernels, and Pillow's Lanczos coefficients. */
#include "draw.h"
#include "../cpu_features.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Pillow's PRECISION_BITS for 8-bit images: 8 bits of result, 2 of headroom. */
#define DRAW_PRECISION_BITS (32 - 8 - 2)

#define DRAW_ISA serial
#define DRAW_ATTR
#include "template.h"

#if defined(__x86_64__) || defined(__i386__)
#define DRAW_HAVE_X86 1
#define DRAW_ISA avx2
#define DRAW_ATTR __attribute__((target("avx2")))
#include "template.h"
#define DRAW_ISA avx512
#define DRAW_ATTR __attribute__((target("avx512f,avx512bw,avx512vl")))
#include "template.h"
#endif

typedef struct {
    const char *name;
    int (*supported)(void);
    void (*col2im)(const float *, size_t, size_t, size_t, size_t, size_t, size_t, size_t,
                   const float *, int, float *, size_t *, size_t *, size_t *, size_t *);
    void (*resample_rows)(const uint8_t *, size_t, size_t, const int *, const int32_t *, int,
                          int32_t *, uint8_t *, size_t, size_t, size_t);
    void (*gather)(const float *, const int64_t *, size_t, size_t, size_t, const float *, int,
                   float *);
} draw_entry;

/* On aarch64 the serial build is NEON already (the vectorizer's, NEON being baseline). */
static const draw_entry KERNELS[] = {
#ifdef DRAW_HAVE_X86
    {"avx512", cpu_has_avx512, avx512_col2im, avx512_resample_rows, avx512_gather},
    {"avx2", cpu_has_avx2, avx2_col2im, avx2_resample_rows, avx2_gather},
#endif
    {"serial", cpu_always, serial_col2im, serial_resample_rows, serial_gather},
};
#define KERNEL_COUNT ((int)(sizeof KERNELS / sizeof KERNELS[0]))

const char *draw_kernel_name(int kernel) {
    return kernel >= 0 && kernel < KERNEL_COUNT ? KERNELS[kernel].name : NULL;
}

int draw_kernel_supported(int kernel) {
    return kernel >= 0 && kernel < KERNEL_COUNT && KERNELS[kernel].supported();
}

int draw_kernel_best(void) {
    for (int k = 0; k < KERNEL_COUNT; k++)
        if (KERNELS[k].supported()) return k;
    return KERNEL_COUNT - 1;
}

int draw_col2im(int kernel, const float *taps, size_t n, size_t h, size_t w, size_t k,
                size_t cout, size_t stride, size_t padding, const float *bias, int relu,
                float *out) {
    if (!draw_kernel_supported(kernel) || h == 0 || w == 0 || k == 0 || stride == 0 ||
        (h - 1) * stride + k <= 2 * padding || (w - 1) * stride + k <= 2 * padding)
        return -1;
    size_t oh = (h - 1) * stride + k - 2 * padding, ow = (w - 1) * stride + k - 2 * padding;
    size_t *tables = malloc((2 * k + 1) * (oh + ow) * sizeof *tables);
    if (!tables) return -2;
    size_t *ys = tables, *xs = ys + 2 * k * oh, *ny = xs + 2 * k * ow, *nx = ny + oh;
    KERNELS[kernel].col2im(taps, n, h, w, k, cout, stride, padding, bias, relu, out, ys, ny, xs,
                           nx);
    free(tables);
    return 0;
}

int draw_gather(int kernel, const float *base, size_t base_len, const int64_t *offsets,
                size_t npix, size_t per, size_t cout, const float *bias, int relu, float *out) {
    if (!draw_kernel_supported(kernel)) return -1;
    for (size_t i = 0; i < npix * per; i++) /* every tap inside the buffer (< 0: none) */
        if (offsets[i] >= 0 && ((size_t)offsets[i] > base_len ||
                                base_len - (size_t)offsets[i] < cout))
            return -1;
    KERNELS[kernel].gather(base, offsets, npix, per, cout, bias, relu, out);
    return 0;
}

int draw_resize(int kernel, const uint8_t *in, size_t n, size_t h, size_t w, size_t ch,
                size_t out_h, size_t out_w, const int *bounds_x, const int32_t *coeffs_x,
                int ksize_x, const int *bounds_y, const int32_t *coeffs_y, int ksize_y,
                uint8_t *scratch, int32_t *acc, uint8_t *out) {
    if (!draw_kernel_supported(kernel) || !h || !w || !ch) return -1;
    const draw_entry *e = &KERNELS[kernel];
    size_t px = ch;
    for (size_t b = 0; b < n; b++) {
        const uint8_t *image = in + b * h * w * px;
        uint8_t *dst = out + b * out_h * out_w * px;
        const uint8_t *rows = image; /* h rows of (out_w or w) pixels after the first pass */
        if (out_w != w) {
            /* the horizontal pass along the image's columns: transpose, resample, and write
             * back transposed into (h, out_w) */
            uint8_t *columns = scratch, *wide = scratch + h * w * px;
            for (size_t y = 0; y < h; y++)
                for (size_t x = 0; x < w; x++)
                    memcpy(columns + (x * h + y) * px, image + (y * w + x) * px, px);
            uint8_t *target = out_h != h ? wide : dst;
            e->resample_rows(columns, h * px, out_w, bounds_x, coeffs_x, ksize_x, acc, target,
                             px, px, out_w * px);
            rows = target;
        }
        if (out_h != h)
            e->resample_rows(rows, out_w * px, out_h, bounds_y, coeffs_y, ksize_y, acc, dst,
                             out_w * px, out_w * px, 0);
        else if (out_w == w)
            memcpy(dst, image, h * w * px);
    }
    return 0;
}

/* ---- Pillow's Lanczos coefficients (Resample.c: lanczos_filter, precompute_coeffs,
 * normalize_coeffs_8bpc), the same double arithmetic in the same order ------------------- */

static double sinc_filter(double x) {
    if (x == 0.0) return 1.0;
    x = x * M_PI;
    return sin(x) / x;
}

static double lanczos_filter(double x) {
    if (-3.0 <= x && x < 3.0) return sinc_filter(x) * sinc_filter(x / 3);
    return 0.0;
}

#define LANCZOS_SUPPORT 3.0

static double filter_scale(int in_size, int out_size) {
    double scale = (double)((float)in_size - 0.0f) / out_size; /* Pillow: (in1 - in0) floats */
    return scale;
}

int draw_lanczos_taps(int in_size, int out_size) {
    /* enlargements only (filterscale 1: 7 taps, a small stack array in draw_lanczos_coeffs) */
    if (in_size < 1 || out_size < in_size || out_size > DRAW_MAX_SIDE) return 0;
    double filterscale = filter_scale(in_size, out_size);
    if (filterscale < 1.0) filterscale = 1.0;
    double support = LANCZOS_SUPPORT * filterscale;
    return (int)ceil(support) * 2 + 1;
}

int draw_lanczos_coeffs(int in_size, int out_size, int *bounds, int32_t *coeffs) {
    int ksize = draw_lanczos_taps(in_size, out_size);
    if (!ksize) return 0;
    double scale = filter_scale(in_size, out_size), filterscale = scale;
    if (filterscale < 1.0) filterscale = 1.0;
    double support = LANCZOS_SUPPORT * filterscale;
    double k[ksize];
    for (int xx = 0; xx < out_size; xx++) {
        double center = 0.0f + (xx + 0.5) * scale;
        double ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        int x;
        for (x = 0; x < xmax; x++) {
            double w = lanczos_filter((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        for (; x < ksize; x++) k[x] = 0;
        for (x = 0; x < ksize; x++)
            coeffs[xx * ksize + x] = k[x] < 0 ? (int)(-0.5 + k[x] * (1 << DRAW_PRECISION_BITS))
                                              : (int)(0.5 + k[x] * (1 << DRAW_PRECISION_BITS));
        bounds[2 * xx] = xmin;
        bounds[2 * xx + 1] = xmax;
    }
    return ksize;
}
