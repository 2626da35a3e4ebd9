/*
 * What the CPU runs: the best kernel level (__builtin_cpu_supports) and the preferred one (CPUID),
 * each found once. No kernel reads them: every entry point whose kernels depend on the level takes
 * it as its first argument, so callers choose per call (level.h has the one check).
 *
 * The AVX2 and AVX-512 kernels give bit-identical results: each output element sees the same
 * sequence of fused multiply-adds, only more elements are computed per instruction.
 */
#include "ckernels.h"

#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

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

/* AMD family 0x19 (Zen 3, Zen 4) runs 512-bit instructions as two 256-bit halves, so the AVX-512
 * tiles do no more floating-point work per cycle there than the AVX2 ones (measured on Zen 4: the
 * AVX-512 kernels ran no faster than the AVX2 ones). The AVX2 kernels, measured and tuned on
 * Zen 4, are therefore the default there; `--kernels avx512` still selects the others. Zen 5 (0x1A)
 * and Intel run them at full width. */
int cn_avx512_half_width(const char *vendor, unsigned leaf1_eax) {
    if (memcmp(vendor, "AuthenticAMD", 12) != 0) return 0;
    unsigned family = (leaf1_eax >> 8) & 0xF;
    if (family == 0xF) family += (leaf1_eax >> 20) & 0xFF;
    return family == 0x19;
}

#if defined(__x86_64__)
static int avx512_is_half_width(void) {
    unsigned eax, ebx, ecx, edx;
    char vendor[12];
    if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return 0;
    memcpy(vendor, &ebx, 4), memcpy(vendor + 4, &edx, 4), memcpy(vendor + 8, &ecx, 4);
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    return cn_avx512_half_width(vendor, eax);
}
#endif

static int capable = -1;   /* the best level this CPU runs, once known; accessed atomically */
static int preferred = -1; /* the default level: capable, or AVX2 where AVX-512 runs at half width */

static void detect(void) {
    int c = cn_has_avx512() ? CN_KERNELS_AVX512 : cn_has_avx2_fma() ? CN_KERNELS_AVX2 : CN_KERNELS_PORTABLE;
    int p = c;
#if defined(__x86_64__)
    if (c == CN_KERNELS_AVX512 && avx512_is_half_width()) p = CN_KERNELS_AVX2;
#endif
    __atomic_store_n(&preferred, p, __ATOMIC_RELAXED);
    __atomic_store_n(&capable, c, __ATOMIC_RELEASE);
}

int cn_cpu_kernel_level(void) {
    int c = __atomic_load_n(&capable, __ATOMIC_ACQUIRE);
    if (c < 0) {
        detect();
        c = __atomic_load_n(&capable, __ATOMIC_ACQUIRE);
    }
    return c;
}

int cn_default_kernel_level(void) {
    (void)cn_cpu_kernel_level(); /* detects once; `preferred` is stored before `capable` is released */
    return __atomic_load_n(&preferred, __ATOMIC_RELAXED);
}
