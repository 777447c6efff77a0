/* The one runtime dispatch point of the face ResNet's kernels (see resnet.h). */
#include "resnet.h"
#include "../cpu_features.h"

#include <stdlib.h>

#define RESNET_ISA serial
#define RESNET_ATTR
#include "template.h"

#if defined(__x86_64__) || defined(__i386__)
#define RESNET_HAVE_X86 1
#define RESNET_ISA avx2
#define RESNET_ATTR __attribute__((target("avx2")))
#include "template.h"
#define RESNET_ISA avx512
#define RESNET_ATTR __attribute__((target("avx512f,avx512bw,avx512vl")))
#include "template.h"
#endif

typedef struct {
    const char *name;
    int (*supported)(void);
    void (*winograd_input)(const float *, size_t, size_t, size_t, size_t, float *, float *);
    void (*winograd_output)(const float *, size_t, size_t, size_t, size_t, size_t, size_t,
                            const float *, const float *, int, float *, float *);
} resnet_entry;

/* On aarch64 the serial build is NEON already (the vectorizer's, NEON being baseline). */
static const resnet_entry KERNELS[] = {
#ifdef RESNET_HAVE_X86
    {"avx512", cpu_has_avx512, avx512_winograd_input, avx512_winograd_output},
    {"avx2", cpu_has_avx2, avx2_winograd_input, avx2_winograd_output},
#endif
    {"serial", cpu_always, serial_winograd_input, serial_winograd_output},
};
#define KERNEL_COUNT ((int)(sizeof KERNELS / sizeof KERNELS[0]))

const char *resnet_kernel_name(int kernel) {
    return kernel >= 0 && kernel < KERNEL_COUNT ? KERNELS[kernel].name : NULL;
}

int resnet_kernel_supported(int kernel) {
    return kernel >= 0 && kernel < KERNEL_COUNT && KERNELS[kernel].supported();
}

int resnet_kernel_best(void) {
    for (int k = 0; k < KERNEL_COUNT; k++)
        if (KERNELS[k].supported()) return k;
    return KERNEL_COUNT - 1;
}

int resnet_winograd_input(int kernel, const float *grid, size_t m, size_t th, size_t tw,
                          size_t cin, float *tiles) {
    if (!resnet_kernel_supported(kernel)) return -1;
    float *rows = malloc(8 * (tw + 1) * cin * sizeof *rows);
    if (!rows) return -2;
    KERNELS[kernel].winograd_input(grid, m, th, tw, cin, tiles, rows);
    free(rows);
    return 0;
}

int resnet_winograd_output(int kernel, const float *products, size_t m, size_t th, size_t tw,
                           size_t cout, size_t height, size_t width, const float *bias,
                           const float *residual, int relu, float *out) {
    if (!resnet_kernel_supported(kernel) || height > 2 * th || width > 2 * tw ||
        height + 1 < 2 * th || width + 1 < 2 * tw)
        return -1;
    float *cols = malloc(9 * tw * cout * sizeof *cols);
    if (!cols) return -2;
    KERNELS[kernel].winograd_output(products, m, th, tw, cout, height, width, bias, residual,
                                    relu, out, cols);
    free(cols);
    return 0;
}
