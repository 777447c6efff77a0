/* Sosie's face drawing kernels (appliance/generator/dcgan.py), one runtime dispatch point.
 *
 * Both are bit-identical to the code they replace, on every ISA:
 * - col2im: the taps of a transposed convolution (one GEMM's output) added into place, in the
 *   order numpy's strided adds used, (ky, kx) ascending from 0.0f, then + bias, then ReLU
 *   (as np.maximum(x, 0): +0 for -0, NaN kept). Vectorized over output channels only: a
 *   pixel's sums never change order (built with -ffp-contract=off, no FMA).
 * - gather: the same sums for taps a caller computed in pieces (only those that land).
 * - resample: Pillow's 8-bit two-pass convolution resize (Resample.c): the same double
 *   precision coefficients rounded to 22-bit integers, integer sums (exact in any order),
 *   the same clip to 8 bits after each pass.
 */
#ifndef DRAW_H
#define DRAW_H

#include <stddef.h>
#include <stdint.h>

/* Kernels compiled into this build, preferred first (serial last); NULL past the end. */
const char *draw_kernel_name(int kernel);
/* 1 if this CPU can run the kernel. */
int draw_kernel_supported(int kernel);
/* The best kernel this CPU supports. */
int draw_kernel_best(void);

/* taps: (n, h, w, k, k, cout) float32, C order; out: (n, oh, ow, cout) with
 * oh = (h - 1) * stride + k - 2 * padding (> 0), likewise ow. bias: cout floats or NULL.
 * Returns 0, -1 for a bad kernel or shape, -2 when out of memory. */
int draw_col2im(int kernel, const float *taps, size_t n, size_t h, size_t w, size_t k,
                size_t cout, size_t stride, size_t padding, const float *bias, int relu,
                float *out);

/* The same sums as draw_col2im for taps stored anywhere in `base` (base_len floats): output
 * pixel p = its taps at base + offsets[p * per + j] (cout floats each), j ascending up to the
 * first negative offset (fewer taps: a border pixel), added from 0.0f, + bias (cout floats or
 * NULL), ReLU if relu; out: (npix, cout).
 * Returns 0, or -1 for a bad kernel or an offset whose tap is not inside base. */
int draw_gather(int kernel, const float *base, size_t base_len, const int64_t *offsets,
                size_t npix, size_t per, size_t cout, const float *bias, int relu, float *out);

/* Sides of an enlargement the Lanczos coefficients are made for, at most. */
#define DRAW_MAX_SIDE (1 << 14)

/* Taps of Pillow's Lanczos filter enlarging in_size pixels to out_size (the `ksize` of its
 * precompute_coeffs), or 0 unless 1 <= in_size <= out_size <= DRAW_MAX_SIDE. */
int draw_lanczos_taps(int in_size, int out_size);
/* Pillow's precompute_coeffs + normalize_coeffs_8bpc for LANCZOS over the whole input:
 * bounds[2 i] the first input pixel of output pixel i, bounds[2 i + 1] how many; coeffs
 * (out_size x ksize) int32 fixed point. Returns ksize, 0 for bad sizes. */
int draw_lanczos_coeffs(int in_size, int out_size, int *bounds, int32_t *coeffs);

/* n images (h, w, ch) uint8 resized to (out_h, out_w, ch) as Pillow's Image.resize does when
 * it runs the horizontal pass first (always so for an enlargement: out_h >= h, out_w >= w),
 * each pass skipped when its size is unchanged. bounds/coeffs from draw_lanczos_coeffs (or any
 * filter's) for w -> out_w and h -> out_h; scratch: h * (w + out_w) * ch bytes;
 * acc: max(h, out_w) * ch int32. Returns 0, or -1 for a bad kernel or size. */
int draw_resize(int kernel, const uint8_t *in, size_t n, size_t h, size_t w, size_t ch,
                size_t out_h, size_t out_w, const int *bounds_x, const int32_t *coeffs_x,
                int ksize_x, const int *bounds_y, const int32_t *coeffs_y, int ksize_y,
                uint8_t *scratch, int32_t *acc, uint8_t *out);

#endif
