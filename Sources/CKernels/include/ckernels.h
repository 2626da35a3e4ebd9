#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Row-major single-precision GEMM: C = alpha * op(A) * op(B) + beta * C.
/// op(A) is M x K (A is K x M when transA != 0), op(B) is K x N (B is N x K when transB != 0).
/// lda, ldb, ldc are the row strides of A, B and C as stored.
void cn_sgemm(int transA, int transB, long M, long N, long K, float alpha,
              const float *A, long lda, const float *B, long ldb,
              float beta, float *C, long ldc);

/// C = A * B^T (accumulate == 0) or C += A * B^T, with A M x K and B N x K (rows contiguous in K):
/// one dot product per element, for short wide products (a small convolution's weight gradient).
/// Each element's arithmetic depends on K only.
void cn_sgemm_nt_dot(long M, long N, long K, const float *A, long lda, const float *B, long ldb, int accumulate,
                     float *C, long ldc);

/// Floats of scratch that cn_conv_direct_c1 needs (the zero-padded plane and slack).
long cn_conv_direct_c1_scratch(long H, long W, long pt, long pl, long pb, long pr);

/// Forward convolution of one 1-channel H x W image, stride 1, padding pt, pl, pb, pr, with OC filters
/// KH x KW (w: OC x KH*KW) into y (OC x OH x OW), bias added; no column matrix.
void cn_conv_direct_c1(const float *x, long H, long W, long pt, long pl, long pb, long pr, float *scratch, long KH,
                       long KW, long OC, long OH, long OW, const float *w, const float *bias, float *y);

/// 1 when this CPU runs the AVX2+FMA kernels, else 0.
int cn_has_avx2_fma(void);

/// 1 when cn_sgemm currently runs the AVX2+FMA micro-kernel, 0 when it runs the portable one.
int cn_sgemm_uses_avx2(void);

/// Forces the portable kernel (on != 0) even where AVX2+FMA exist; for tests and benchmarks.
void cn_sgemm_force_portable(int on);

/// im2col of one C x H x W image into its (C*KH*KW) x (OH*OW) column matrix (padding entries 0);
/// sh, sw: strides; pt, pl: top and left padding.
void cn_im2col(const float *image, float *columns, long C, long H, long W, long KH, long KW, long sh, long sw,
               long pt, long pl, long OH, long OW);

/// Adds the column matrix back onto the image: the adjoint of cn_im2col (same order as a plain loop).
void cn_col2im(const float *columns, float *image, long C, long H, long W, long KH, long KW, long sh, long sw,
               long pt, long pl, long OH, long OW);

/// 2x2 max pooling with stride 2 of `planes` H x W planes into OH x OW planes (OH <= H/2, OW <= W/2);
/// argmax receives each window's winner as an offset inside its input plane (ties: the first; NaN wins).
void cn_maxpool2x2(const float *input, long planes, long H, long W, long OH, long OW, float *output, int *argmax);

/// glibc only: serve blocks up to 32 MiB from the heap and keep freed memory there (no mmap and
/// page faults per training step). A no-op with other C libraries.
void cn_tune_allocator(void);

#ifdef __cplusplus
}
#endif

#endif
