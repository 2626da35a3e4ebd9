/*
 * C (+)= A * B^T for short, wide operands: A is M x K, B is N x K, both with rows contiguous in K.
 * Every C element is one dot product of two rows. This is the weight gradient of a convolution with
 * few filters and small patches (dW = dY * columns^T, K = output pixels), where the packed GEMM spends
 * more time packing and storing tiles than multiplying.
 *
 * The AVX2 version computes 2 x 4 blocks of C with eight 8-lane accumulators over K, then sums each
 * accumulator's lanes in a fixed order; a block at the edge aliases missing rows to the last one and
 * drops their results. Each element's arithmetic depends on K only, never on M, N or the block.
 */
#include "ckernels.h"
#include "level.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static void dot_nt_portable(long M, long N, long K, const float *A, long lda, const float *B, long ldb, int accumulate,
                            float *C, long ldc) {
    for (long i = 0; i < M; i++) {
        for (long j = 0; j < N; j++) {
            const float *a = A + i * lda, *b = B + j * ldb;
            float s = 0;
            for (long k = 0; k < K; k++) s += a[k] * b[k];
            C[i * ldc + j] = accumulate ? C[i * ldc + j] + s : s;
        }
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma")))
static void dot_nt_avx2(long M, long N, long K, const float *A, long lda, const float *B, long ldb, int accumulate,
                        float *C, long ldc) {
    const long full = K & ~7L;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(K - full)), lane);
    for (long i0 = 0; i0 < M; i0 += 2) {
        const float *a0 = A + i0 * lda, *a1 = i0 + 1 < M ? a0 + lda : a0;
        for (long j0 = 0; j0 < N; j0 += 4) {
            const float *b0 = B + j0 * ldb;
            const float *b1 = j0 + 1 < N ? b0 + ldb : b0;
            const float *b2 = j0 + 2 < N ? b0 + 2 * ldb : b0;
            const float *b3 = j0 + 3 < N ? b0 + 3 * ldb : b0;
            __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c02 = _mm256_setzero_ps(), c03 = _mm256_setzero_ps();
            __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps(), c12 = _mm256_setzero_ps(), c13 = _mm256_setzero_ps();
            long k = 0;
            for (; k < full; k += 8) {
                __m256 x0 = _mm256_loadu_ps(a0 + k), x1 = _mm256_loadu_ps(a1 + k);
                __m256 y0 = _mm256_loadu_ps(b0 + k), y1 = _mm256_loadu_ps(b1 + k);
                __m256 y2 = _mm256_loadu_ps(b2 + k), y3 = _mm256_loadu_ps(b3 + k);
                c00 = _mm256_fmadd_ps(x0, y0, c00); c01 = _mm256_fmadd_ps(x0, y1, c01);
                c02 = _mm256_fmadd_ps(x0, y2, c02); c03 = _mm256_fmadd_ps(x0, y3, c03);
                c10 = _mm256_fmadd_ps(x1, y0, c10); c11 = _mm256_fmadd_ps(x1, y1, c11);
                c12 = _mm256_fmadd_ps(x1, y2, c12); c13 = _mm256_fmadd_ps(x1, y3, c13);
            }
            if (k < K) {
                __m256 x0 = _mm256_maskload_ps(a0 + k, tail), x1 = _mm256_maskload_ps(a1 + k, tail);
                __m256 y0 = _mm256_maskload_ps(b0 + k, tail), y1 = _mm256_maskload_ps(b1 + k, tail);
                __m256 y2 = _mm256_maskload_ps(b2 + k, tail), y3 = _mm256_maskload_ps(b3 + k, tail);
                c00 = _mm256_fmadd_ps(x0, y0, c00); c01 = _mm256_fmadd_ps(x0, y1, c01);
                c02 = _mm256_fmadd_ps(x0, y2, c02); c03 = _mm256_fmadd_ps(x0, y3, c03);
                c10 = _mm256_fmadd_ps(x1, y0, c10); c11 = _mm256_fmadd_ps(x1, y1, c11);
                c12 = _mm256_fmadd_ps(x1, y2, c12); c13 = _mm256_fmadd_ps(x1, y3, c13);
            }
            float r[2][4] = {{hsum8(c00), hsum8(c01), hsum8(c02), hsum8(c03)},
                             {hsum8(c10), hsum8(c11), hsum8(c12), hsum8(c13)}};
            long rows = M - i0 < 2 ? M - i0 : 2, cols = N - j0 < 4 ? N - j0 : 4;
            for (long i = 0; i < rows; i++) {
                float *c = C + (i0 + i) * ldc + j0;
                for (long j = 0; j < cols; j++) c[j] = accumulate ? c[j] + r[i][j] : r[i][j];
            }
        }
    }
}
#endif

void cn_sgemm_nt_dot(int level, long M, long N, long K, const float *A, long lda, const float *B, long ldb, int accumulate,
                     float *C, long ldc) {
    if (M <= 0 || N <= 0) return;
#if defined(__x86_64__)
    if (cn_at_least(level, CN_KERNELS_AVX2)) {
        dot_nt_avx2(M, N, K, A, lda, B, ldb, accumulate, C, ldc);
        return;
    }
#endif
    dot_nt_portable(M, N, K, A, lda, B, ldb, accumulate, C, ldc);
}
