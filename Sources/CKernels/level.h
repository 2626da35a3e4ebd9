/*
 * The one spelling of the kernel-level check (private to CKernels). Every entry point whose kernels
 * depend on the level takes it as its first argument (CN_KERNELS_*, at most cn_cpu_kernel_level())
 * and branches on cn_at_least(level, CN_KERNELS_...) only. The vector kernels exist on x86-64 only:
 * elsewhere the check is always false and the portable kernels run.
 */
#ifndef CN_LEVEL_H
#define CN_LEVEL_H

#include "ckernels.h"

static inline int cn_at_least(int level, int wanted) {
#if defined(__x86_64__)
    return level >= wanted;
#else
    (void)level;
    (void)wanted;
    return 0;
#endif
}

#endif
