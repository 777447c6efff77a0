/* What the kernels' C check drivers share (ext/draw_kernels/tests/draw_check.c,
 * ext/resnet_kernels/tests/resnet_check.c): fixed pseudo-random numbers, an FNV-1a hash of an
 * output, and the kernel named on the command line. The same lines from every kernel and every
 * machine mean the same bits (tests/c_drivers.py). */
#ifndef SOSIE_CHECK_DRIVER_H
#define SOSIE_CHECK_DRIVER_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint64_t check_state = 0x853c49e6748fea9bULL;

/* The next number of a fixed sequence (PCG's multiplier and increment). */
static uint32_t next(void) {
    check_state = check_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(check_state >> 32);
}

static uint64_t fnv(const void *data, size_t bytes) {
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < bytes; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* The kernel named by argv[1] (a name of `name_of`, or "best"), or -1 after a one-line usage
 * or "not available" message on stderr. */
static int kernel_from_args(int argc, char **argv, const char *tool,
                            const char *(*name_of)(int), int (*best)(void),
                            int (*supported)(int)) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s KERNEL\n", tool);
        return -1;
    }
    int kernel = -1;
    for (int k = 0; name_of(k); k++)
        if (strcmp(name_of(k), argv[1]) == 0) kernel = k;
    if (strcmp(argv[1], "best") == 0) kernel = best();
    if (!supported(kernel)) {
        fprintf(stderr, "%s: kernel %s not available\n", tool, argv[1]);
        return -1;
    }
    return kernel;
}

#endif
