/* Which instruction sets the kernels' dispatchers may choose (ext/kernels, ext/draw_kernels,
 * ext/resnet_kernels), asked in one place. __builtin_cpu_supports reports AVX2 / AVX-512 only
 * when the OS saves their registers too: libgcc reads XCR0 with xgetbv (YMM state for AVX2,
 * opmask and ZMM state for AVX-512). */
#ifndef SOSIE_CPU_FEATURES_H
#define SOSIE_CPU_FEATURES_H

/* The serial kernels (and NEON, baseline on aarch64) run anywhere. */
static inline int cpu_always(void) { return 1; }

#if defined(__x86_64__) || defined(__i386__)
/* AVX2 with FMA (every AVX2 CPU has both). */
static inline int cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* AVX-512 F, BW and VL (Skylake-SP and later, Zen 4), beside AVX2. */
static inline int cpu_has_avx512(void) {
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}
#endif

#endif
