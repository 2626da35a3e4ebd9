/*
 * Direct forward convolution of a one-channel image, stride 1, any kernel and padding:
 * y[o, oy, ox] = bias[o] + sum_{ki, kj} w[o, ki, kj] * xpad[oy + ki, ox + kj].
 *
 * The image is first copied into a zero-padded scratch plane, so the inner loops have no bounds
 * tests. The AVX2 version holds 6 filters x 16 output columns in 12 accumulators (the GEMM
 * micro-kernel's shape): per tap, two loads of the padded row and six weight broadcasts feed twelve
 * FMAs. No column matrix is built. A partial block of filters repeats the last filter and drops it;
 * a partial block of columns is computed in full (the scratch has slack) and stored in part, with
 * masked stores.
 */
#include "ckernels.h"
#include "level.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define DIRECT_SLACK 32

#if defined(__x86_64__)
static const int lane_masks[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* A mask of the first n lanes, 0 <= n <= 8. */
__attribute__((target("avx2,fma")))
static inline __m256i first_lanes(long n) {
    return _mm256_loadu_si256((const __m256i *)(lane_masks + 8 - n));
}

/* Copies n floats with vector and masked moves: rows of small images are too short for a memcpy call
 * to pay (tiny-cnn spent a quarter of its training step in memcpy calls of 14 floats). */
__attribute__((target("avx2,fma")))
static void copy_floats_avx2(float *dst, const float *src, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_loadu_ps(src + i));
    if (i < n) {
        const __m256i m = first_lanes(n - i);
        _mm256_maskstore_ps(dst + i, m, _mm256_maskload_ps(src + i, m));
    }
}
#endif

static void pad_plane(int level, const float *x, long H, long W, long pt, long pl, long PH, long PW, float *xp) {
    if (PH == H && PW == W) { /* no padding: one block copy, zero slack */
        memcpy(xp, x, (size_t)(H * W) * sizeof(float));
        memset(xp + H * W, 0, DIRECT_SLACK * sizeof(float));
        return;
    }
    memset(xp, 0, (size_t)(PH * PW + DIRECT_SLACK) * sizeof(float));
#if defined(__x86_64__)
    if (cn_at_least(level, CN_KERNELS_AVX2)) {
        for (long i = 0; i < H; i++) copy_floats_avx2(xp + (i + pt) * PW + pl, x + i * W, W);
        return;
    }
#endif
    for (long i = 0; i < H; i++) memcpy(xp + (i + pt) * PW + pl, x + i * W, (size_t)W * sizeof(float));
}

static void direct_portable(const float *xp, long PW, long KH, long KW, long OC, long OH, long OW, const float *w,
                            const float *bias, int relu, float *y) {
    for (long o = 0; o < OC; o++) {
        const float *wo = w + o * KH * KW;
        for (long oy = 0; oy < OH; oy++) {
            for (long ox = 0; ox < OW; ox++) {
                float s = 0;
                for (long ki = 0; ki < KH; ki++)
                    for (long kj = 0; kj < KW; kj++) s += wo[ki * KW + kj] * xp[(oy + ki) * PW + ox + kj];
                float v = s + bias[o];
                y[(o * OH + oy) * OW + ox] = relu ? (v > 0.0f ? v : v * 0.0f) : v; /* as ReLU: NaN stays NaN */
            }
        }
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static void direct_avx2(const float *xp, long PW, long KH, long KW, long OC, long OH, long OW, const float *w,
                        const float *bias, int relu, float *y) {
    const long taps = KH * KW;
    const __m256 zero = _mm256_setzero_ps();
    for (long o0 = 0; o0 < OC; o0 += 6) {
        const float *wr[6];
        long rows = OC - o0 < 6 ? OC - o0 : 6;
        for (long r = 0; r < 6; r++) wr[r] = w + (o0 + (r < rows ? r : rows - 1)) * taps;
        for (long oy = 0; oy < OH; oy++) {
            for (long ox = 0; ox < OW; ox += 16) {
                __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps();
                __m256 c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
                __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps();
                __m256 c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
                for (long ki = 0; ki < KH; ki++) {
                    const float *row = xp + (oy + ki) * PW + ox;
                    long t = ki * KW;
                    for (long kj = 0; kj < KW; kj++, t++) {
                        __m256 x0 = _mm256_loadu_ps(row + kj), x1 = _mm256_loadu_ps(row + kj + 8);
                        __m256 v;
                        v = _mm256_broadcast_ss(wr[0] + t); c00 = _mm256_fmadd_ps(v, x0, c00); c01 = _mm256_fmadd_ps(v, x1, c01);
                        v = _mm256_broadcast_ss(wr[1] + t); c10 = _mm256_fmadd_ps(v, x0, c10); c11 = _mm256_fmadd_ps(v, x1, c11);
                        v = _mm256_broadcast_ss(wr[2] + t); c20 = _mm256_fmadd_ps(v, x0, c20); c21 = _mm256_fmadd_ps(v, x1, c21);
                        v = _mm256_broadcast_ss(wr[3] + t); c30 = _mm256_fmadd_ps(v, x0, c30); c31 = _mm256_fmadd_ps(v, x1, c31);
                        v = _mm256_broadcast_ss(wr[4] + t); c40 = _mm256_fmadd_ps(v, x0, c40); c41 = _mm256_fmadd_ps(v, x1, c41);
                        v = _mm256_broadcast_ss(wr[5] + t); c50 = _mm256_fmadd_ps(v, x0, c50); c51 = _mm256_fmadd_ps(v, x1, c51);
                    }
                }
                long n = OW - ox < 16 ? OW - ox : 16;
                __m256 acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
                for (long r = 0; r < rows; r++) {
                    __m256 b = _mm256_set1_ps(bias[o0 + r]);
                    float *dst = y + ((o0 + r) * OH + oy) * OW + ox;
                    __m256 v0 = _mm256_add_ps(acc[r][0], b), v1 = _mm256_add_ps(acc[r][1], b);
                    if (relu) { /* v > 0 ? v : v * 0, as ReLU (NaN stays NaN) */
                        v0 = _mm256_blendv_ps(_mm256_mul_ps(v0, zero), v0, _mm256_cmp_ps(v0, zero, _CMP_GT_OQ));
                        v1 = _mm256_blendv_ps(_mm256_mul_ps(v1, zero), v1, _mm256_cmp_ps(v1, zero, _CMP_GT_OQ));
                    }
                    if (n >= 8) {
                        _mm256_storeu_ps(dst, v0);
                        if (n == 16) _mm256_storeu_ps(dst + 8, v1);
                        else _mm256_maskstore_ps(dst + 8, first_lanes(n - 8), v1);
                    } else {
                        _mm256_maskstore_ps(dst, first_lanes(n), v0);
                    }
                }
            }
        }
    }
}
#endif

long cn_conv_direct_c1_scratch(long H, long W, long pt, long pl, long pb, long pr) {
    return (H + pt + pb) * (W + pl + pr) + DIRECT_SLACK;
}

void cn_conv_direct_c1(int level, const float *x, long H, long W, long pt, long pl, long pb, long pr, float *scratch, long KH,
                       long KW, long OC, long OH, long OW, const float *w, const float *bias, int relu, float *y) {
    long PH = H + pt + pb, PW = W + pl + pr;
    pad_plane(level, x, H, W, pt, pl, PH, PW, scratch);
#if defined(__x86_64__)
    if (cn_at_least(level, CN_KERNELS_AVX2)) {
        direct_avx2(scratch, PW, KH, KW, OC, OH, OW, w, bias, relu, y);
        return;
    }
#endif
    direct_portable(scratch, PW, KH, KW, OC, OH, OW, w, bias, relu, y);
}
