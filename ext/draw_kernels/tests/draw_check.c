/* Runs the drawing kernels on fixed pseudo-random inputs and prints one FNV-1a hash per output:
 * the same lines from every kernel and every machine mean the same bits (tests/test_draw_kernels.py
 * compares this machine's kernels with each other and with the aarch64 build under qemu).
 *
 *   draw_check KERNEL      KERNEL: a name from draw_kernel_name, or "best"
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "draw.h"
#include "../../check_driver.h"

static int col2im_case(int kernel, size_t n, size_t h, size_t w, size_t k, size_t cout,
                       size_t stride, size_t padding, int bias, int relu) {
    size_t count = n * h * w * k * k * cout;
    size_t oh = (h - 1) * stride + k - 2 * padding, ow = (w - 1) * stride + k - 2 * padding;
    float *taps = malloc(count * sizeof *taps), *b = malloc(cout * sizeof *b);
    float *out = malloc(n * oh * ow * cout * sizeof *out);
    if (!taps || !b || !out) return 1;
    for (size_t i = 0; i < count; i++) { /* magnitudes over 2^-10 .. 2^10: order shows */
        float mantissa = (float)(int32_t)next() / 2147483648.0f;
        taps[i] = ldexpf(mantissa, (int)(next() % 21) - 10);
    }
    for (size_t c = 0; c < cout; c++) b[c] = (float)(int32_t)next() / 2147483648.0f;
    int status = draw_col2im(kernel, taps, n, h, w, k, cout, stride, padding, bias ? b : NULL,
                             relu, out);
    printf("col2im %zux%zux%zu k%zu c%zu s%zu p%zu %016llx %d\n", n, h, w, k, cout, stride,
           padding, (unsigned long long)fnv(out, n * oh * ow * cout * sizeof *out), status);
    free(taps), free(b), free(out);
    return status != 0;
}

static int gather_case(int kernel, size_t npix, size_t per, size_t blocks, size_t cout,
                       int bias, int relu) {
    float *taps = malloc(blocks * cout * sizeof *taps), *b = malloc(cout * sizeof *b);
    float *out = malloc(npix * cout * sizeof *out);
    int64_t *offsets = malloc(npix * per * sizeof *offsets);
    if (!taps || !b || !out || !offsets) return 1;
    for (size_t i = 0; i < blocks * cout; i++) {
        float mantissa = (float)(int32_t)next() / 2147483648.0f;
        taps[i] = ldexpf(mantissa, (int)(next() % 21) - 10);
    }
    for (size_t c = 0; c < cout; c++) b[c] = (float)(int32_t)next() / 2147483648.0f;
    for (size_t p = 0; p < npix; p++) { /* 1 to per taps a pixel (a border pixel has fewer) */
        size_t count = 1 + next() % per;
        for (size_t j = 0; j < per; j++)
            offsets[p * per + j] = j < count ? (int64_t)((next() % blocks) * cout) : -1;
    }
    int status = draw_gather(kernel, taps, blocks * cout, offsets, npix, per, cout,
                             bias ? b : NULL, relu, out);
    printf("gather %zux%zu of %zu c%zu %016llx %d\n", npix, per, blocks, cout,
           (unsigned long long)fnv(out, npix * cout * sizeof *out), status);
    free(taps), free(b), free(out), free(offsets);
    return status != 0;
}

static int resize_case(int kernel, size_t n, size_t h, size_t w, size_t oh, size_t ow) {
    size_t ch = 3;
    int kx = draw_lanczos_taps((int)w, (int)ow), ky = draw_lanczos_taps((int)h, (int)oh);
    uint8_t *in = malloc(n * h * w * ch), *out = malloc(n * oh * ow * ch);
    uint8_t *scratch = malloc(h * (w + ow) * ch);
    int32_t *acc = malloc((h > ow ? h : ow) * ch * sizeof *acc);
    int *bx = malloc(2 * ow * sizeof *bx), *by = malloc(2 * oh * sizeof *by);
    int32_t *cx = malloc(ow * (size_t)kx * sizeof *cx), *cy = malloc(oh * (size_t)ky * sizeof *cy);
    if (!in || !out || !scratch || !acc || !bx || !by || !cx || !cy) return 1;
    for (size_t i = 0; i < n * h * w * ch; i++) /* noise, and hard edges every other image */
        in[i] = (uint8_t)((i / (h * w * ch)) % 2 ? (next() & 1) * 255 : next() >> 24);
    draw_lanczos_coeffs((int)w, (int)ow, bx, cx);
    draw_lanczos_coeffs((int)h, (int)oh, by, cy);
    int status = draw_resize(kernel, in, n, h, w, ch, oh, ow, bx, cx, kx, by, cy, ky, scratch,
                             acc, out);
    printf("resize %zux%zux%zu -> %zux%zu %016llx coefficients %016llx %016llx %d\n", n, h, w,
           oh, ow, (unsigned long long)fnv(out, n * oh * ow * ch),
           (unsigned long long)fnv(cx, ow * (size_t)kx * sizeof *cx),
           (unsigned long long)fnv(cy, oh * (size_t)ky * sizeof *cy), status);
    free(in), free(out), free(scratch), free(acc), free(bx), free(by), free(cx), free(cy);
    return status != 0;
}

int main(int argc, char **argv) {
    int kernel = kernel_from_args(argc, argv, "draw_check", draw_kernel_name,
                                  draw_kernel_best, draw_kernel_supported);
    if (kernel < 0) return 2;
    int failed = 0;
    failed |= col2im_case(kernel, 2, 1, 1, 4, 64, 1, 0, 1, 1);   /* the first layer's shape */
    failed |= col2im_case(kernel, 2, 4, 4, 4, 64, 2, 1, 1, 1);   /* a middle layer's */
    failed |= col2im_case(kernel, 1, 8, 8, 4, 3, 2, 1, 0, 0);    /* the RGB layer's */
    failed |= col2im_case(kernel, 3, 3, 5, 3, 7, 3, 2, 1, 1);    /* odd everything */
    failed |= gather_case(kernel, 128, 4, 300, 128, 1, 1);      /* a landed layer's */
    failed |= gather_case(kernel, 50, 9, 40, 3, 0, 0);
    failed |= resize_case(kernel, 2, 64, 64, 256, 256);         /* the faces' upscale */
    failed |= resize_case(kernel, 2, 13, 7, 100, 41);
    failed |= resize_case(kernel, 1, 5, 9, 5, 30);               /* horizontal pass only */
    return failed;
}
