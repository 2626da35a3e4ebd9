#include "ckernels.h"

int cn_has_avx2_fma(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* Portable GEMM: loop order i-p-j so the innermost loop streams rows of op(B) and C. */
void cn_sgemm(int transA, int transB, long M, long N, long K, float alpha,
              const float *A, long lda, const float *B, long ldb,
              float beta, float *C, long ldc) {
    for (long i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f) {
            for (long j = 0; j < N; j++) c[j] = 0.0f;
        } else if (beta != 1.0f) {
            for (long j = 0; j < N; j++) c[j] *= beta;
        }
        for (long p = 0; p < K; p++) {
            float a = alpha * (transA ? A[p * lda + i] : A[i * lda + p]);
            if (a == 0.0f) continue;
            if (!transB) {
                const float *b = B + p * ldb;
                for (long j = 0; j < N; j++) c[j] += a * b[j];
            } else {
                for (long j = 0; j < N; j++) c[j] += a * B[j * ldb + p];
            }
        }
    }
}
