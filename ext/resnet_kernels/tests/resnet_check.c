/* Runs the face ResNet's kernels on fixed pseudo-random inputs and prints one FNV-1a hash per
 * output: the same lines from every kernel and every machine mean the same bits
 * (tests/test_resnet_kernels.py compares this machine's kernels with each other and with the
 * aarch64 build under qemu).
 *
 *   resnet_check KERNEL      KERNEL: a name from resnet_kernel_name, or "best"
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resnet.h"
#include "../../check_driver.h"

static float *noise(size_t count) { /* magnitudes over 2^-10 .. 2^10: order shows */
    float *x = malloc(count * sizeof *x);
    for (size_t i = 0; x && i < count; i++) {
        float mantissa = (float)(int32_t)next() / 2147483648.0f;
        x[i] = ldexpf(mantissa, (int)(next() % 21) - 10);
    }
    return x;
}

static int winograd_case(int kernel, size_t m, size_t h, size_t w, size_t c, int residual,
                         int relu) {
    size_t th = (h + 1) / 2, tw = (w + 1) / 2, cells = m * (2 * th + 2) * 2 * (tw + 1) * c;
    size_t planes = 16 * m * th * tw * c;
    float *grid = noise(cells), *tiles = malloc(planes * sizeof *tiles), *bias = noise(c);
    float *res = residual ? noise(cells) : NULL, *out = malloc(cells * sizeof *out);
    if (!grid || !tiles || !bias || (residual && !res) || !out) return 1;
    int status = resnet_winograd_input(kernel, grid, m, th, tw, c, tiles);
    uint64_t in_hash = fnv(tiles, planes * sizeof *tiles);
    /* the tiles as products: every output value sums 9 of them in a fixed order */
    status |= resnet_winograd_output(kernel, tiles, m, th, tw, c, h, w, bias, res, relu, out);
    printf("winograd %zux%zux%zu c%zu res%d relu%d %016llx %016llx %d\n", m, h, w, c, residual,
           relu, (unsigned long long)in_hash,
           (unsigned long long)fnv(out, cells * sizeof *out), status);
    free(grid), free(tiles), free(bias), free(res), free(out);
    return status != 0;
}

int main(int argc, char **argv) {
    int kernel = kernel_from_args(argc, argv, "resnet_check", resnet_kernel_name,
                                  resnet_kernel_best, resnet_kernel_supported);
    if (kernel < 0) return 2;
    int failed = 0;
    failed |= winograd_case(kernel, 1, 35, 35, 32, 0, 1);  /* the first blocks' layers */
    failed |= winograd_case(kernel, 2, 35, 35, 32, 1, 1);
    failed |= winograd_case(kernel, 3, 17, 17, 64, 1, 1);
    failed |= winograd_case(kernel, 4, 8, 8, 128, 0, 1);
    failed |= winograd_case(kernel, 5, 4, 4, 256, 1, 1);
    failed |= winograd_case(kernel, 2, 7, 6, 17, 0, 0);    /* odd everything */
    failed |= winograd_case(kernel, 1, 1, 9, 3, 1, 0);
    return failed;
}
