/*
 * Which vector kernels run: chosen once from the CPU (__builtin_cpu_supports), capped by
 * cn_set_kernel_limit for tests and benchmarks that compare the paths. Every kernel file asks
 * cn_kernel_level() per call (one relaxed atomic load).
 *
 * The AVX2 and AVX-512 kernels give bit-identical results: each output element sees the same
 * sequence of fused multiply-adds, only more elements are computed per instruction.
 */
#include "ckernels.h"

int cn_has_avx2_fma(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int cn_has_avx512(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return cn_has_avx2_fma() && __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

static int detected = -1; /* the CPU's level, once known; accessed atomically */
static int limit = CN_KERNELS_AVX512;

int cn_kernel_level(void) {
    int d = __atomic_load_n(&detected, __ATOMIC_RELAXED);
    if (d < 0) {
        d = cn_has_avx512() ? CN_KERNELS_AVX512 : cn_has_avx2_fma() ? CN_KERNELS_AVX2 : CN_KERNELS_PORTABLE;
        __atomic_store_n(&detected, d, __ATOMIC_RELAXED);
    }
    int l = __atomic_load_n(&limit, __ATOMIC_RELAXED);
    return d < l ? d : l;
}

void cn_set_kernel_limit(int level) {
    if (level < CN_KERNELS_PORTABLE) level = CN_KERNELS_PORTABLE;
    if (level > CN_KERNELS_AVX512) level = CN_KERNELS_AVX512;
    __atomic_store_n(&limit, level, __ATOMIC_RELAXED);
}

int cn_kernel_limit(void) { return __atomic_load_n(&limit, __ATOMIC_RELAXED); }

int cn_sgemm_uses_avx2(void) { return cn_kernel_level() >= CN_KERNELS_AVX2; }
