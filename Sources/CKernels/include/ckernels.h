#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Kernel choice (dispatch.c). Every entry point whose kernels depend on the level takes it as its first
 * argument, `level`: a CN_KERNELS_* value, at most cn_cpu_kernel_level(). The AVX2 and AVX-512 kernels
 * give bit-identical results; the portable ones round differently. */

#define CN_KERNELS_PORTABLE 0
#define CN_KERNELS_AVX2 1   /* AVX2 + FMA, 256-bit */
#define CN_KERNELS_AVX512 2 /* AVX-512F, 512-bit, where the hot kernels have such a version */

/// 1 when this CPU runs the AVX2+FMA kernels, else 0.
int cn_has_avx2_fma(void);

/// 1 when this CPU also runs the AVX-512F kernels, else 0.
int cn_has_avx512(void);

/// 1 when a CPU of this CPUID vendor (12 characters) and leaf-1 EAX runs AVX-512 as two 256-bit halves
/// (AMD family 0x19: Zen 3, Zen 4), so that the AVX2 kernels are chosen by default.
int cn_avx512_half_width(const char *vendor, unsigned leaf1_eax);

/// The best level this CPU runs (CN_KERNELS_*).
int cn_cpu_kernel_level(void);

/// The level this CPU prefers: its best, except AVX2 where AVX-512 runs at half width (AMD Zen 3/4).
int cn_default_kernel_level(void);

/// Row-major single-precision GEMM: C = alpha * op(A) * op(B) + beta * C.
/// op(A) is M x K (A is K x M when transA != 0), op(B) is K x N (B is N x K when transB != 0).
/// lda, ldb, ldc are the row strides of A, B and C as stored.
void cn_sgemm(int level, int transA, int transB, long M, long N, long K, float alpha,
              const float *A, long lda, const float *B, long ldb,
              float beta, float *C, long ldc);

/// C = A * B^T (accumulate == 0) or C += A * B^T, with A M x K and B N x K (rows contiguous in K):
/// one dot product per element, for short wide products (a small convolution's weight gradient).
/// Each element's arithmetic depends on K only.
void cn_sgemm_nt_dot(int level, long M, long N, long K, const float *A, long lda, const float *B, long ldb,
                     int accumulate, float *C, long ldc);

/// Floats of scratch that cn_conv_direct_c1 needs (the zero-padded plane and slack).
long cn_conv_direct_c1_scratch(long H, long W, long pt, long pl, long pb, long pr);

/// Forward convolution of one 1-channel H x W image, stride 1, padding pt, pl, pb, pr, with OC filters
/// KH x KW (w: OC x KH*KW) into y (OC x OH x OW), bias added, through ReLU when relu != 0 (v > 0 ? v : v * 0);
/// no column matrix.
void cn_conv_direct_c1(int level, const float *x, long H, long W, long pt, long pl, long pb, long pr, float *scratch,
                       long KH, long KW, long OC, long OH, long OW, const float *w, const float *bias, int relu,
                       float *y);

/// im2col of one C x H x W image into its (C*KH*KW) x (OH*OW) column matrix (padding entries 0);
/// sh, sw: strides; pt, pl: top and left padding.
void cn_im2col(int level, const float *image, float *columns, long C, long H, long W, long KH, long KW, long sh,
               long sw, long pt, long pl, long OH, long OW);

/// Adds the column matrix back onto the image: the adjoint of cn_im2col (same order as a plain loop).
void cn_col2im(int level, const float *columns, float *image, long C, long H, long W, long KH, long KW, long sh,
               long sw, long pt, long pl, long OH, long OW);

/// 2x2 max pooling with stride 2 of `planes` H x W planes into OH x OW planes (OH <= H/2, OW <= W/2);
/// argmax receives each window's winner as an offset inside its input plane (ties: the first; NaN wins).
void cn_maxpool2x2(int level, const float *input, long planes, long H, long W, long OH, long OW, float *output, int *argmax);

/* Implicit-GEMM convolution (implicit.c): the products of a convolution without a column matrix. */

/// C[i][j] (+)= sum_{s<S} A[row[i] + red[s]] * B[s][j] for i < rows (a multiple of 6) and j < 16 in each of
/// `panels` column panels: B is panels x S x 16, C is panels x rows x 16. accumulate != 0 adds to C.
void cn_igemm(int level, const float *A, const int *row, long rows, const int *red, long S, const float *B,
              long panels, float *C, int accumulate);

/// out[(a*n1 + b)*n2 + c] = a*s0 + b*s1 + c*s2, then repeats the last entry up to `padded` entries.
void cn_offset_grid(int *out, long n0, long n1, long n2, long s0, long s1, long s2, long padded);

/// Copies `planes` H x W planes into zeroed Hp x Wp planes at (top, left). With mask != NULL, entries whose
/// mask value is not > 0 become 0 (a fused ReLU's backward; mask is the ReLU's output).
void cn_pad_planes(const float *src, const float *mask, long planes, long H, long W, float *dst, long Hp, long Wp,
                   long top, long left);

/// B[p][k][j] = w[p*16 + j][k] (0 past OC): the weight (OC x patch) as panels of 16 output channels.
void cn_pack_weights_forward(const float *w, long OC, long patch, float *B);

/// B[p][(o*KH + ky)*KW + kx][j] = w[o][p*16 + j][KH-1-ky][KW-1-kx] (0 past C): the flipped weight whose
/// forward convolution of the padded dL/dy is dL/dx (stride 1).
void cn_pack_weights_flipped(const float *w, long OC, long C, long KH, long KW, float *B);

/// dst[c/16][i][c%16] = src[c][i] (masked like cn_pad_planes), zero past `channels`; sums[c] += the row's sum
/// when sums != NULL.
void cn_transpose_to_panels(int level, const float *src, const float *mask, long channels, long pixels, float *dst,
                            float *sums);

/// y[c][i] = C[c/16][i][c%16] + bias[c] for i < pixels (C has `rows` rows per panel), through ReLU when relu != 0.
void cn_panels_to_planes(int level, const float *C, long rows, long pixels, long channels, const float *bias,
                         int relu, float *y);

/* Backward of conv -> ReLU -> max pooling through the pooling's winners (sparse.c). A list holds
 * OC + 1 prefix counts and then up to OC * pooled (value, offset) entries. */

/// Bytes of a list for OC channels of `pooled` values each (the list's start aligned as a long).
long cn_pool_entries_bytes(long OC, long pooled);

/// Lists one sample's nonzero dL/dy entries per output channel: for each pooled value of channel o, the
/// gradient (zeroed where the pooled value, which is the ReLU's output at the winner, is not > 0) and the
/// offset of the winner's window corner in the padded input (pixelOffset[p] for output pixel p), into
/// `list` (cn_pool_entries_bytes(OC, pooled) bytes); biasGradient (may be NULL) gets each channel's sum
/// added. Returns the entry count.
long cn_pool_entries(const float *pooledGradient, const int *argmax, const float *pooledOutput, long OC,
                     long pooled, const int *pixelOffset, void *list, float *biasGradient);

/// dwp[o][r][l] += v * xpad[rowOffset[r] + q + l] for every entry (v, q) of channel o, l < lanes (8 or 16).
/// xpad needs `lanes` floats of slack past its end.
void cn_sparse_weight_gradient(int level, const float *xpad, const int *rowOffset, long rows, long lanes,
                               const void *list, long OC, float *dwp);

/// dxpad[rowOffset[r] + q + l] += v * wp[o][r][l] for every entry (v, q) of channel o; dxpad needs `lanes`
/// floats of slack past its end.
void cn_sparse_input_gradient(int level, float *dxpad, const int *rowOffset, long rows, long lanes,
                              const void *list, long OC, const float *wp);

/// out[r][l] = w[r][l] for l < KW, else 0 (count rows of KW floats padded to `lanes`).
void cn_pad_kernel_rows(const float *w, long count, long KW, long lanes, float *out);

/// w[r][l] += padded[r][l] for l < KW: the inverse of cn_pad_kernel_rows, accumulating.
void cn_unpad_kernel_rows(const float *padded, long count, long KW, long lanes, float *w);

/// Copies the H x W interior at (top, left) of each Hp x Wp plane into out.
void cn_crop_planes(const float *padded, long planes, long Hp, long Wp, long top, long left, long H, long W,
                    float *out);

/// Winograd F(2x2, 3x3) input transform (winograd.c): for `channels` zero-padded planes (`plane` floats
/// apart, rows `pw` long) and tiles first ..< first + count (row-major, `tilesWide` per row; tile (i, j)'s
/// 4x4 window at row 2i, column 2j), v[e * estride + c * ldv + t] = (B^T d B)[e] (t counted from first).
void cn_winograd_input(int level, const float *padded, long channels, long plane, long pw, long tilesWide, long first,
                       long count, float *v, long ldv, long estride);

/// Winograd F(2x2, 3x3) output transform (winograd.c): for `channels` rows of M (`ldm` floats apart,
/// element e at e * estride) and tiles first ..< first + count (counted from first in M), each tile's 2x2
/// block of the oh x ow planes of y (one per channel) = A^T M A + bias[o] (bias may be NULL), cut at
/// the planes' edges.
void cn_winograd_output(int level, const float *m, long channels, long ldm, long estride, long tilesWide, long first, long count,
                        const float *bias, float *y, long oh, long ow);

/// Winograd F(2x2, 3x3) transform of dL/dy for the weight gradient (winograd.c): for `channels` planes of
/// whole tiles (`plane` floats apart, rows `pw` long) and tiles first ..< first + count,
/// dm[e * estride + o * ldm + t] = (A dy A^T)[e] (t counted from first).
void cn_winograd_gradient(int level, const float *planes, long channels, long plane, long pw, long tilesWide, long first,
                          long count, float *dm, long ldm, long estride);

/// A spin-wait hint to the CPU (x86 pause, arm yield): one iteration of a busy-wait loop.
void cn_cpu_relax(void);

/// glibc only: serve blocks up to 32 MiB from the heap and keep freed memory there (no mmap and
/// page faults per training step). A no-op with other C libraries.
void cn_tune_allocator(void);

#ifdef __cplusplus
}
#endif

#endif
