/*
 * Backward pass of conv -> ReLU -> max pooling, through the pooling's winners only.
 *
 * Max pooling passes dL/dpool to one position per window (its argmax), and the ReLU zeroes those whose
 * value was not positive: dL/dy of the convolution is at least 3/4 zeros for 2x2 pooling. Instead of
 * a dense dL/dy, each sample's nonzero entries are listed per output channel (value, and offset of the
 * winner's window corner in the padded input), and
 *
 *   dW[o][c][ky][kx] += v * xpad[c][ky][kx + q]        for each entry (v, q) of channel o
 *   dxpad[c][ky][kx + q] += v * w[o][c][ky][kx]
 *
 * run over 8-float (or 16-float) row segments: a kernel row of KW <= 8 (16) taps is one (two) vectors,
 * whose lanes past KW are discarded (dW) or multiply a zero weight (dx). The weight gradient keeps a
 * block of kernel rows in registers across all entries of a channel; the input gradient adds into the
 * padded gradient image. Entries are visited in a fixed order, so results are deterministic.
 */
#include "ckernels.h"
#include "level.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

struct pool_entry {
    float value;
    int offset;
};

/* A list: OC + 1 prefix counts, then the entries. */
static long *list_counts(void *list) { return (long *)list; }
static const long *list_counts_const(const void *list) { return (const long *)list; }
static struct pool_entry *list_entries(void *list, long OC) { return (struct pool_entry *)((long *)list + OC + 1); }
static const struct pool_entry *list_entries_const(const void *list, long OC) {
    return (const struct pool_entry *)((const long *)list + OC + 1);
}

long cn_pool_entries_bytes(long OC, long pooled) {
    return (long)sizeof(long) * (OC + 1) + (long)sizeof(struct pool_entry) * OC * pooled;
}

long cn_pool_entries(const float *pooledGradient, const int *argmax, const float *pooledOutput, long OC,
                     long pooled, const int *pixelOffset, void *list, float *biasGradient) {
    long *counts = list_counts(list);
    struct pool_entry *e = list_entries(list, OC);
    long n = 0;
    counts[0] = 0;
    for (long o = 0; o < OC; o++) {
        const float *g = pooledGradient + o * pooled;
        const int *a = argmax + o * pooled;
        const float *pv = pooledOutput + o * pooled;
        /* Four running sums (a fixed order) keep the add latency off the critical path. */
        float sums[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (long i = 0; i < pooled; i++) {
            long p = a[i];
            /* ReLU's backward as a product: g * 1 = g, g * 0 = 0 (NaN stays NaN); no branch. */
            float keep = pv[i] > 0.0f ? 1.0f : 0.0f;
            float v = g[i] * keep;
            sums[i & 3] += v;
            /* Branch-free: about half the winners are zeroed by the ReLU, an unpredictable branch. */
            e[n].value = v;
            e[n].offset = pixelOffset[p];
            n += v != 0.0f; /* NaN != 0: kept */
        }
        if (biasGradient) biasGradient[o] += (sums[0] + sums[1]) + (sums[2] + sums[3]);
        counts[o + 1] = n;
    }
    return n;
}

/* ---------------------------------------------------------------------------------------------- */
/* Weight gradient: dwp[o][r][0..lanes) += v * xpad[rowOffset[r] + q + 0..lanes)                   */

static void dw_portable(const float *xpad, const int *rowOffset, long rows, long lanes, const void *list, long OC,
                        float *dwp) {
    const long *counts = list_counts_const(list);
    const struct pool_entry *e = list_entries_const(list, OC);
    for (long o = 0; o < OC; o++) {
        float *d = dwp + o * rows * lanes;
        for (long i = counts[o]; i < counts[o + 1]; i++) {
            float v = e[i].value;
            const float *x = xpad + e[i].offset;
            for (long r = 0; r < rows; r++) {
                const float *xr = x + rowOffset[r];
                float *dr = d + r * lanes;
                for (long l = 0; l < lanes; l++) dr[l] += v * xr[l];
            }
        }
    }
}

#if defined(__x86_64__)
/* One block of up to 12 vectors (12 kernel rows of 8 lanes, or 6 of 16) in registers. */
#define DW_BLOCK(NV)                                                                                  \
    do {                                                                                              \
        __m256 acc[12];                                                                               \
        for (int k = 0; k < (NV); k++) acc[k] = _mm256_loadu_ps(d + k * 8);                           \
        for (long i = begin; i < end; i++) {                                                          \
            const __m256 v = _mm256_set1_ps(e[i].value);                                              \
            const float *x = xpad + e[i].offset;                                                      \
            for (int k = 0; k < (NV); k++) {                                                          \
                acc[k] = _mm256_fmadd_ps(v, _mm256_loadu_ps(x + off[k]), acc[k]);                     \
            }                                                                                         \
        }                                                                                             \
        for (int k = 0; k < (NV); k++) _mm256_storeu_ps(d + k * 8, acc[k]);                           \
    } while (0)

__attribute__((target("avx2,fma")))
static void dw_avx2(const float *xpad, const int *rowOffset, long rows, long lanes, const void *list, long OC,
                    float *dwp) {
    const long *counts = list_counts_const(list);
    const struct pool_entry *e = list_entries_const(list, OC);
    const long vectorsPerRow = lanes / 8, vectors = rows * vectorsPerRow;
    for (long o = 0; o < OC; o++) {
        const long begin = counts[o], end = counts[o + 1];
        if (begin == end) continue;
        for (long k0 = 0; k0 < vectors; k0 += 12) {
            float *d = dwp + o * vectors * 8 + k0 * 8;
            long off[12];
            long nv = vectors - k0 < 12 ? vectors - k0 : 12;
            for (long k = 0; k < nv; k++) {
                long vk = k0 + k;
                off[k] = rowOffset[vk / vectorsPerRow] + (vk % vectorsPerRow) * 8;
            }
            switch (nv) {
            case 12: DW_BLOCK(12); break;
            case 11: DW_BLOCK(11); break;
            case 10: DW_BLOCK(10); break;
            case 9: DW_BLOCK(9); break;
            case 8: DW_BLOCK(8); break;
            case 7: DW_BLOCK(7); break;
            case 6: DW_BLOCK(6); break;
            case 5: DW_BLOCK(5); break;
            case 4: DW_BLOCK(4); break;
            case 3: DW_BLOCK(3); break;
            case 2: DW_BLOCK(2); break;
            default: DW_BLOCK(1); break;
            }
        }
    }
}
#endif

#if defined(__x86_64__)
/* AVX-512, 16-lane rows: one zmm per kernel row, so a block of 12 rows (tf-cnn's 10x10 kernel whole)
 * passes over a channel's entries once, with the same FMA per element as dw_avx2 (bit-identical). */
#define DW512_BLOCK(NV)                                                                               \
    do {                                                                                              \
        __m512 acc[12];                                                                               \
        for (int k = 0; k < (NV); k++) acc[k] = _mm512_loadu_ps(d + k * 16);                          \
        for (long i = begin; i < end; i++) {                                                          \
            const __m512 v = _mm512_set1_ps(e[i].value);                                              \
            const float *x = xpad + e[i].offset;                                                      \
            for (int k = 0; k < (NV); k++) {                                                          \
                acc[k] = _mm512_fmadd_ps(v, _mm512_loadu_ps(x + off[k]), acc[k]);                     \
            }                                                                                         \
        }                                                                                             \
        for (int k = 0; k < (NV); k++) _mm512_storeu_ps(d + k * 16, acc[k]);                          \
    } while (0)

__attribute__((target("avx512f,avx2,fma")))
static void dw16_avx512(const float *xpad, const int *rowOffset, long rows, const void *list, long OC, float *dwp) {
    const long *counts = list_counts_const(list);
    const struct pool_entry *e = list_entries_const(list, OC);
    for (long o = 0; o < OC; o++) {
        const long begin = counts[o], end = counts[o + 1];
        if (begin == end) continue;
        for (long r0 = 0; r0 < rows; r0 += 12) {
            float *d = dwp + (o * rows + r0) * 16;
            const int *off = rowOffset + r0;
            switch (rows - r0 < 12 ? rows - r0 : 12) {
            case 12: DW512_BLOCK(12); break;
            case 11: DW512_BLOCK(11); break;
            case 10: DW512_BLOCK(10); break;
            case 9: DW512_BLOCK(9); break;
            case 8: DW512_BLOCK(8); break;
            case 7: DW512_BLOCK(7); break;
            case 6: DW512_BLOCK(6); break;
            case 5: DW512_BLOCK(5); break;
            case 4: DW512_BLOCK(4); break;
            case 3: DW512_BLOCK(3); break;
            case 2: DW512_BLOCK(2); break;
            default: DW512_BLOCK(1); break;
            }
        }
    }
}
#endif

void cn_sparse_weight_gradient(int level, const float *xpad, const int *rowOffset, long rows, long lanes, const void *list,
                               long OC, float *dwp) {
#if defined(__x86_64__)
    if (lanes == 16 && cn_at_least(level, CN_KERNELS_AVX512)) {
        dw16_avx512(xpad, rowOffset, rows, list, OC, dwp);
        return;
    }
    if (cn_at_least(level, CN_KERNELS_AVX2)) {
        dw_avx2(xpad, rowOffset, rows, lanes, list, OC, dwp);
        return;
    }
#endif
    dw_portable(xpad, rowOffset, rows, lanes, list, OC, dwp);
}

/* ---------------------------------------------------------------------------------------------- */
/* Input gradient: dxpad[rowOffset[r] + q + 0..lanes) += v * wp[o][r][0..lanes)                   */

static void dx_portable(float *dxpad, const int *rowOffset, long rows, long lanes, const void *list, long OC,
                        const float *wp) {
    const long *counts = list_counts_const(list);
    const struct pool_entry *e = list_entries_const(list, OC);
    for (long o = 0; o < OC; o++) {
        const float *w = wp + o * rows * lanes;
        for (long i = counts[o]; i < counts[o + 1]; i++) {
            float v = e[i].value;
            float *x = dxpad + e[i].offset;
            for (long r = 0; r < rows; r++) {
                float *xr = x + rowOffset[r];
                const float *wr = w + r * lanes;
                for (long l = 0; l < lanes; l++) xr[l] += v * wr[l];
            }
        }
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static void dx_avx2(float *dxpad, const int *rowOffset, long rows, long lanes, const void *list, long OC,
                    const float *wp) {
    const long *counts = list_counts_const(list);
    const struct pool_entry *e = list_entries_const(list, OC);
    for (long o = 0; o < OC; o++) {
        const float *w = wp + o * rows * lanes;
        for (long i = counts[o]; i < counts[o + 1]; i++) {
            const __m256 v = _mm256_set1_ps(e[i].value);
            float *x = dxpad + e[i].offset;
            if (lanes == 8) {
                for (long r = 0; r < rows; r++) {
                    float *xr = x + rowOffset[r];
                    _mm256_storeu_ps(xr, _mm256_fmadd_ps(v, _mm256_loadu_ps(w + r * 8), _mm256_loadu_ps(xr)));
                }
            } else {
                for (long r = 0; r < rows; r++) {
                    float *xr = x + rowOffset[r];
                    const float *wr = w + r * lanes;
                    for (long l = 0; l < lanes; l += 8) {
                        _mm256_storeu_ps(xr + l, _mm256_fmadd_ps(v, _mm256_loadu_ps(wr + l), _mm256_loadu_ps(xr + l)));
                    }
                }
            }
        }
    }
}
#endif

#if defined(__x86_64__)
/* AVX-512, 16-lane rows: one zmm read-modify-write per kernel row (dx_avx2's arithmetic per element). */
__attribute__((target("avx512f,avx2,fma")))
static void dx16_avx512(float *dxpad, const int *rowOffset, long rows, const void *list, long OC, const float *wp) {
    const long *counts = list_counts_const(list);
    const struct pool_entry *e = list_entries_const(list, OC);
    for (long o = 0; o < OC; o++) {
        const float *w = wp + o * rows * 16;
        for (long i = counts[o]; i < counts[o + 1]; i++) {
            const __m512 v = _mm512_set1_ps(e[i].value);
            float *x = dxpad + e[i].offset;
            for (long r = 0; r < rows; r++) {
                float *xr = x + rowOffset[r];
                _mm512_storeu_ps(xr, _mm512_fmadd_ps(v, _mm512_loadu_ps(w + r * 16), _mm512_loadu_ps(xr)));
            }
        }
    }
}
#endif

void cn_sparse_input_gradient(int level, float *dxpad, const int *rowOffset, long rows, long lanes, const void *list,
                              long OC, const float *wp) {
#if defined(__x86_64__)
    if (lanes == 16 && cn_at_least(level, CN_KERNELS_AVX512)) {
        dx16_avx512(dxpad, rowOffset, rows, list, OC, wp);
        return;
    }
    if (cn_at_least(level, CN_KERNELS_AVX2)) {
        dx_avx2(dxpad, rowOffset, rows, lanes, list, OC, wp);
        return;
    }
#endif
    dx_portable(dxpad, rowOffset, rows, lanes, list, OC, wp);
}

void cn_pad_kernel_rows(const float *w, long count, long KW, long lanes, float *out) {
    for (long r = 0; r < count; r++) {
        for (long l = 0; l < lanes; l++) out[r * lanes + l] = l < KW ? w[r * KW + l] : 0.0f;
    }
}

void cn_unpad_kernel_rows(const float *padded, long count, long KW, long lanes, float *w) {
    for (long r = 0; r < count; r++) {
        for (long l = 0; l < KW; l++) w[r * KW + l] += padded[r * lanes + l];
    }
}

void cn_crop_planes(const float *padded, long planes, long Hp, long Wp, long top, long left, long H, long W,
                    float *out) {
    for (long p = 0; p < planes; p++) {
        const float *s = padded + p * Hp * Wp + top * Wp + left;
        float *d = out + p * H * W;
        for (long y = 0; y < H; y++) memcpy(d + y * W, s + y * Wp, (size_t)W * sizeof(float));
    }
}
