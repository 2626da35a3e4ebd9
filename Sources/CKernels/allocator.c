/* Keeps large freed blocks in glibc's heap (see AllocatorTuning.swift). No-op elsewhere. */
#include "ckernels.h"

#include <stdlib.h> /* defines __GLIBC__ through features.h */

#if defined(__GLIBC__)
#include <malloc.h>
#endif

void cn_tune_allocator(void) {
#if defined(__GLIBC__)
    static int done = 0;
    if (__atomic_exchange_n(&done, 1, __ATOMIC_RELAXED)) return;
    (void)mallopt(M_MMAP_THRESHOLD, 32 << 20); /* the largest value glibc accepts */
    (void)mallopt(M_TRIM_THRESHOLD, 1 << 30);
    (void)mallopt(M_TOP_PAD, 16 << 20);
#endif
}
