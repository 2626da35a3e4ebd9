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
 * padded gradient image. Entries are visited in a fixed order, so results are deterministic. The AVX2
 * (8-lane) and AVX-512 (16-lane) kernels are one source, sparse_lanes.h, instantiated per width.
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

/* ---------------------------------------------------------------------------------------------- */

#if defined(__x86_64__)
/* The vector kernels (sparse_lanes.h): AVX2 for rows of 8 or 16 lanes, AVX-512 for rows of 16. */
#define VEC __m256
#define LANES 8
#define VLOAD _mm256_loadu_ps
#define VSTORE _mm256_storeu_ps
#define VSET1 _mm256_set1_ps
#define VFMA _mm256_fmadd_ps
#define SPARSE_TARGET "avx2,fma"
#define SPARSE_NAME(x) x##_avx2
#include "sparse_lanes.h"

#define VEC __m512
#define LANES 16
#define VLOAD _mm512_loadu_ps
#define VSTORE _mm512_storeu_ps
#define VSET1 _mm512_set1_ps
#define VFMA _mm512_fmadd_ps
#define SPARSE_TARGET "avx512f,avx2,fma"
#define SPARSE_NAME(x) x##_avx512
#include "sparse_lanes.h"
#endif

void cn_sparse_weight_gradient(int level, const float *xpad, const int *rowOffset, long rows, long lanes,
                               const void *list, long OC, float *dwp) {
#if defined(__x86_64__)
    if (lanes == 16 && cn_at_least(level, CN_KERNELS_AVX512)) {
        dw_avx512(xpad, rowOffset, rows, lanes, list, OC, dwp);
        return;
    }
    if (cn_at_least(level, CN_KERNELS_AVX2)) {
        dw_avx2(xpad, rowOffset, rows, lanes, list, OC, dwp);
        return;
    }
#endif
    dw_portable(xpad, rowOffset, rows, lanes, list, OC, dwp);
}

void cn_sparse_input_gradient(int level, float *dxpad, const int *rowOffset, long rows, long lanes,
                              const void *list, long OC, const float *wp) {
#if defined(__x86_64__)
    if (lanes == 16 && cn_at_least(level, CN_KERNELS_AVX512)) {
        dx_avx512(dxpad, rowOffset, rows, lanes, list, OC, wp);
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
