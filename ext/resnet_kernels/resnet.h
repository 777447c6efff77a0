/* The face ResNet's element-wise Winograd passes (appliance/faces/resnet.py), one runtime
 * dispatch point.
 *
 * Bit-identical to the numpy passes they replace (resnet.winograd_input_numpy and
 * resnet.winograd_output_numpy), on every ISA: each value goes through the same float32
 * additions in the same order, vectorized over channels only (built with -ffp-contract=off).
 *
 * A grid is the `Grid` layout of resnet.py: (m, 2 th + 2, 2, tw + 1, c) float32, C order, an
 * image of height <= 2 th and width <= 2 tw zero-bordered by one pixel, its columns stored
 * even ones first: [chip, 1 + y, p % 2, p / 2, :] holds pixel (y, p - 1).
 */
#ifndef RESNET_H
#define RESNET_H

#include <stddef.h>

/* Kernels compiled into this build, preferred first (serial last); NULL past the end. */
const char *resnet_kernel_name(int kernel);
/* 1 if this CPU can run the kernel. */
int resnet_kernel_supported(int kernel);
/* The best kernel this CPU supports. */
int resnet_kernel_best(void);

/* Winograd F(2x2, 3x3) input transform B^T d B of every 4x4 tile (rows 2 ty .. 2 ty + 3,
 * grid columns 2 tx .. 2 tx + 3) of a grid of m chips: tiles (16, m * th * tw, cin), position
 * 4 i + j of tile (chip, ty, tx) at row (chip * th + ty) * tw + tx. Rows first, then columns.
 * Returns 0, -1 for a bad kernel, -2 when out of memory. */
int resnet_winograd_input(int kernel, const float *grid, size_t m, size_t th, size_t tw,
                          size_t cin, float *tiles);

/* Winograd output transform A^T m A of products (16, m * th * tw, cout) (position 5 + bias
 * first), columns then rows, written as an image of height x width into the grid `out`
 * (m, 2 th + 2, 2, tw + 1, cout); every other cell of it 0. Then, over the whole grid,
 * + residual (a grid of the same shape, or NULL) and ReLU (np.maximum(x, 0): +0 for -0, NaN
 * kept) if `relu`. Returns 0, -1 for a bad kernel or size, -2 when out of memory. */
int resnet_winograd_output(int kernel, const float *products, size_t m, size_t th, size_t tw,
                           size_t cout, size_t height, size_t width, const float *bias,
                           const float *residual, int relu, float *out);

#endif
