/* The ResNet's Winograd passes, instantiated once per ISA by dispatch.c:
 *
 *   #define RESNET_ISA avx2            name prefix
 *   #define RESNET_ATTR ...            function attributes (target) or empty
 *   #include "template.h"
 *
 * Plain C written for the compiler's vectorizer: one row of tiles at a time, every inner loop
 * runs along contiguous floats (a grid row, a row of tiles' channels), each value computed by
 * the same float32 operations in the same order as the numpy passes (see resnet.h), so every
 * ISA gives the same bits. Rows of tiles, not single tiles: 16 streams of single pixels 2^k
 * bytes apart thrash the L1 cache.
 */
#define RESNET_CAT_(a, b) a##_##b
#define RESNET_CAT(a, b) RESNET_CAT_(a, b)

/* rows: 4 * 2 * (tw + 1) * cin floats of scratch. */
RESNET_ATTR static void RESNET_CAT(RESNET_ISA, winograd_input)(const float *grid, size_t m,
                                                               size_t th, size_t tw,
                                                               size_t cin, float *tiles,
                                                               float *rows) {
    size_t parity = (tw + 1) * cin, row = 2 * parity, span = tw * cin;
    size_t plane = m * th * tw * cin; /* floats between transformed positions */
    for (size_t b = 0; b < m; b++)
        for (size_t ty = 0; ty < th; ty++) {
            /* B^T d of grid rows 2 ty .. 2 ty + 3: 0 - 2, 1 + 2, 2 - 1, 1 - 3 */
            const float *restrict d0 = grid + (b * (2 * th + 2) + 2 * ty) * row;
            const float *restrict d1 = d0 + row, *restrict d2 = d1 + row, *restrict d3 = d2 + row;
            float *restrict r0 = rows, *restrict r1 = r0 + row, *restrict r2 = r1 + row,
                            *restrict r3 = r2 + row;
            for (size_t k = 0; k < row; k++) r0[k] = d0[k] - d2[k];
            for (size_t k = 0; k < row; k++) r1[k] = d1[k] + d2[k];
            for (size_t k = 0; k < row; k++) r2[k] = d2[k] - d1[k];
            for (size_t k = 0; k < row; k++) r3[k] = d1[k] - d3[k];
            /* (B^T d) B: tile columns 2 tx + {0, 1, 2, 3} are (even, odd) columns tx, tx + 1 */
            float *out = tiles + (b * th + ty) * tw * cin;
            for (int i = 0; i < 4; i++) {
                const float *restrict even = rows + i * row, *restrict odd = even + parity;
                float *restrict t0 = out + 4 * i * plane, *restrict t1 = t0 + plane,
                                *restrict t2 = t1 + plane, *restrict t3 = t2 + plane;
                for (size_t k = 0; k < span; k++) t0[k] = even[k] - even[k + cin];
                for (size_t k = 0; k < span; k++) t1[k] = odd[k] + even[k + cin];
                for (size_t k = 0; k < span; k++) t2[k] = even[k + cin] - odd[k];
                for (size_t k = 0; k < span; k++) t3[k] = odd[k] - odd[k + cin];
            }
        }
}

/* x (+ residual) then ReLU over n floats, in place. */
RESNET_ATTR static inline void RESNET_CAT(RESNET_ISA, finish)(float *restrict x,
                                                              const float *restrict res,
                                                              int relu, size_t n) {
    if (res)
        for (size_t k = 0; k < n; k++) x[k] = x[k] + res[k];
    if (relu)
        for (size_t k = 0; k < n; k++) {
            float v = x[k];
            x[k] = (v > 0.0f || v != v) ? v : 0.0f;
        }
}

/* cols: 9 * tw * cout floats of scratch. */
RESNET_ATTR static void RESNET_CAT(RESNET_ISA, winograd_output)(
    const float *products, size_t m, size_t th, size_t tw, size_t cout, size_t height,
    size_t width, const float *bias, const float *residual, int relu, float *out,
    float *cols) {
    size_t parity = (tw + 1) * cout, row = 2 * parity, span = tw * cout;
    size_t rows = 2 * th + 2, plane = m * th * tw * cout;
    float *restrict biased = cols + 8 * span;
    for (size_t b = 0; b < m; b++) {
        float *chip = out + b * rows * row;
        const float *chip_res = residual ? residual + b * rows * row : NULL;
        for (size_t ty = 0; ty < th; ty++) {
            const float *p = products + (b * th + ty) * tw * cout;
            /* position 5 + bias (it reaches all four outputs with weight 1) */
            const float *restrict p5 = p + 5 * plane;
            for (size_t tx = 0; tx < tw; tx++)
                for (size_t c = 0; c < cout; c++)
                    biased[tx * cout + c] = p5[tx * cout + c] + bias[c];
            /* m A: columns 0 + 1 + 2, 1 - 2 - 3 */
            for (int i = 0; i < 4; i++) {
                const float *restrict q0 = p + 4 * i * plane;
                const float *restrict q1 = i == 1 ? biased : q0 + plane;
                const float *restrict q2 = q0 + 2 * plane, *restrict q3 = q0 + 3 * plane;
                float *restrict s = cols + 2 * i * span, *restrict t = s + span;
                for (size_t k = 0; k < span; k++) s[k] = (q0[k] + q1[k]) + q2[k];
                for (size_t k = 0; k < span; k++) t[k] = (q1[k] - q2[k]) - q3[k];
            }
            /* A^T (m A): rows likewise, into grid rows 1 + 2 ty + a; output column 2 tx + b
             * is grid column 2 tx + b + 1: odd column tx for b = 0, even column tx + 1 */
            for (int a = 0; a < 2; a++) {
                float *line = chip + (1 + 2 * ty + a) * row;
                for (int e = 0; e < 2; e++) {
                    const float *restrict c0 = cols + e * span, *restrict c1 = c0 + 2 * span,
                                          *restrict c2 = c1 + 2 * span, *restrict c3 = c2 + 2 * span;
                    float *restrict o = e == 0 ? line + parity : line + cout;
                    if (a == 0)
                        for (size_t k = 0; k < span; k++) o[k] = (c0[k] + c1[k]) + c2[k];
                    else
                        for (size_t k = 0; k < span; k++) o[k] = (c1[k] - c2[k]) - c3[k];
                }
                /* grid columns 0 and 2 tw + 1, and 2 tw past an odd width, are border */
                for (size_t c = 0; c < cout; c++) line[c] = 0.0f;
                for (size_t c = 0; c < cout; c++) line[parity + tw * cout + c] = 0.0f;
                if (width % 2)
                    for (size_t c = 0; c < cout; c++) line[tw * cout + c] = 0.0f;
                /* the row past an odd height */
                if (1 + 2 * ty + a == height + 1)
                    for (size_t k = 0; k < row; k++) line[k] = 0.0f;
            }
            if (chip_res || relu)
                RESNET_CAT(RESNET_ISA, finish)(chip + (1 + 2 * ty) * row,
                                               chip_res ? chip_res + (1 + 2 * ty) * row : NULL,
                                               relu, 2 * row);
        }
        /* the border rows */
        float *first = chip, *last = chip + (rows - 1) * row;
        for (size_t k = 0; k < row; k++) first[k] = 0.0f;
        for (size_t k = 0; k < row; k++) last[k] = 0.0f;
        if (chip_res || relu) {
            RESNET_CAT(RESNET_ISA, finish)(first, chip_res, relu, row);
            RESNET_CAT(RESNET_ISA, finish)(last, chip_res ? chip_res + (rows - 1) * row : NULL,
                                           relu, row);
        }
    }
}

#undef RESNET_ISA
#undef RESNET_ATTR
