/*
 * Implicit-GEMM convolution: the three products of a convolution layer (forward, weight gradient,
 * input gradient) without a column matrix.
 *
 * All three are one "offset GEMM" over a zero-padded image A:
 *
 *     C[i][j] (+)= sum_{s < S} A[row[i] + red[s]] * B[s][j]        j in 16-wide column panels
 *
 * row[] and red[] are tables of offsets into A: for the forward pass the rows are output pixels
 * (offset of the pixel's window corner in the padded input) and the reduction runs over (channel,
 * kernel row, kernel column) (offset of that tap inside a window); B is the weight, transposed and
 * packed into panels of 16 output channels. The weight gradient swaps the roles: rows are taps,
 * the reduction runs over output pixels, B is dL/dy transposed. The input gradient (stride 1) is a
 * forward convolution of the padded dL/dy with the flipped weight.
 *
 * The AVX2 micro-kernel keeps a 6 x 16 tile of C in 12 registers; per reduction step it reads one
 * offset, broadcasts 6 values of A and multiplies them by 16 values of B: the arithmetic of a packed
 * GEMM with no im2col, col2im or packing of the image. The reduction is split into blocks of
 * RED_BLOCK steps (B stays in L1); C accumulates across blocks in the same order for every tile, so
 * results do not depend on how rows are grouped. The AVX-512 tiles (6 x 32, 12 x 16) run the same FMA
 * sequence per element, so their results are bit-identical to the AVX2 tile's. Every tile, portable,
 * AVX2 and AVX-512, is one source (implicit_tile.h) instantiated per vector width.
 */
#include "ckernels.h"
#include "level.h"
#include "transpose8.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define TILE_ROWS 6
#define PANEL 16
#define RED_BLOCK 256

/* ---------------------------------------------------------------------------------------------- */
/* Micro-kernels: implicit_tile.h at each width; 6 x 16 tiles, and with AVX-512 also 6 x 32 and 12 x 16 */

#define TILE_ATTRIBUTES __attribute__((always_inline))
#define TILE_NAME tile_portable_t
#define VEC float
#define LANES 1
#define VLOAD(p) (*(p))
#define VSTORE(p, x) (*(p) = (x))
#define VZERO 0.0f
#define VSET1(x) (x)
#define VFMA(a, b, c) ((c) + (a) * (b))
#include "implicit_tile.h"

static void tile_portable(const float *A, const int *ro, const int *red, long S, const float *B, float *C,
                          int accumulate) {
    tile_portable_t(TILE_ROWS, 1, A, ro, red, S, B, NULL, C, NULL, accumulate);
}

#if defined(__x86_64__)
#define TILE_ATTRIBUTES __attribute__((target("avx2,fma"), always_inline))
#define TILE_NAME tile_avx2_t
#define VEC __m256
#define LANES 8
#define VLOAD _mm256_loadu_ps
#define VSTORE _mm256_storeu_ps
#define VZERO _mm256_setzero_ps()
#define VSET1 _mm256_set1_ps
#define VFMA _mm256_fmadd_ps
#include "implicit_tile.h"

__attribute__((target("avx2,fma")))
static void tile_avx2(const float *A, const int *ro, const int *red, long S, const float *B, float *C,
                      int accumulate) {
    tile_avx2_t(TILE_ROWS, 1, A, ro, red, S, B, NULL, C, NULL, accumulate);
}

/* AVX-512: one zmm holds a 16-channel row of the tile, so the same FMA sequence per element as
 * tile_avx2 covers more of C per instruction. Three shapes: 6 rows x 2 panels (when two panels
 * remain: 2 B loads and 6 broadcasts feed 12 FMAs), 12 rows x 1 panel, and 6 x 1 for what is left. */
#define TILE_ATTRIBUTES __attribute__((target("avx512f,avx2,fma"), always_inline))
#define TILE_NAME tile_avx512_t
#define VEC __m512
#define LANES 16
#define VLOAD _mm512_loadu_ps
#define VSTORE _mm512_storeu_ps
#define VZERO _mm512_setzero_ps()
#define VSET1 _mm512_set1_ps
#define VFMA _mm512_fmadd_ps
#include "implicit_tile.h"

__attribute__((target("avx512f,avx2,fma")))
static void tile6x32_avx512(const float *A, const int *ro, const int *red, long S, const float *B0,
                            const float *B1, float *C0, float *C1, int accumulate) {
    tile_avx512_t(TILE_ROWS, 2, A, ro, red, S, B0, B1, C0, C1, accumulate);
}

__attribute__((target("avx512f,avx2,fma")))
static void tile12x16_avx512(const float *A, const int *ro, const int *red, long S, const float *B, float *C,
                             int accumulate) {
    tile_avx512_t(2 * TILE_ROWS, 1, A, ro, red, S, B, NULL, C, NULL, accumulate);
}

__attribute__((target("avx512f,avx2,fma")))
static void tile6x16_avx512(const float *A, const int *ro, const int *red, long S, const float *B, float *C,
                            int accumulate) {
    tile_avx512_t(TILE_ROWS, 1, A, ro, red, S, B, NULL, C, NULL, accumulate);
}

/* One reduction block of every tile with the AVX-512 kernels. */
static void igemm_block_avx512(const float *A, const int *row, long rows, const int *red, long sn, long S,
                               const float *B, long panels, float *C, int acc) {
    long p = 0;
    for (; p + 2 <= panels; p += 2) {
        const float *B0 = B + p * S * PANEL, *B1 = B0 + S * PANEL;
        float *C0 = C + p * rows * PANEL, *C1 = C0 + rows * PANEL;
        for (long r = 0; r < rows; r += TILE_ROWS)
            tile6x32_avx512(A, row + r, red, sn, B0, B1, C0 + r * PANEL, C1 + r * PANEL, acc);
    }
    for (; p < panels; p++) {
        const float *Bp = B + p * S * PANEL;
        float *Cp = C + p * rows * PANEL;
        long r = 0;
        for (; r + 12 <= rows; r += 12) tile12x16_avx512(A, row + r, red, sn, Bp, Cp + r * PANEL, acc);
        for (; r < rows; r += TILE_ROWS) tile6x16_avx512(A, row + r, red, sn, Bp, Cp + r * PANEL, acc);
    }
}
#endif

/* ---------------------------------------------------------------------------------------------- */
/* Driver                                                                                          */

void cn_igemm(int level, const float *A, const int *row, long rows, const int *red, long S, const float *B,
              long panels, float *C, int accumulate) {
    /* rows is a multiple of 6 (callers pad the row table with valid offsets). */
    for (long s0 = 0; s0 < S || (s0 == 0 && S == 0); s0 += RED_BLOCK) {
        long sn = S - s0 < RED_BLOCK ? S - s0 : RED_BLOCK;
        int acc = accumulate || s0 > 0;
#if defined(__x86_64__)
        if (cn_at_least(level, CN_KERNELS_AVX512)) {
            igemm_block_avx512(A, row, rows, red + s0, sn, S, B + s0 * PANEL, panels, C, acc);
            continue;
        }
#endif
        for (long p = 0; p < panels; p++) {
            const float *Bp = B + p * S * PANEL + s0 * PANEL;
            float *Cp = C + p * rows * PANEL;
            for (long r = 0; r < rows; r += TILE_ROWS) {
#if defined(__x86_64__)
                if (cn_at_least(level, CN_KERNELS_AVX2)) {
                    tile_avx2(A, row + r, red + s0, sn, Bp, Cp + r * PANEL, acc);
                    continue;
                }
#endif
                tile_portable(A, row + r, red + s0, sn, Bp, Cp + r * PANEL, acc);
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Tables, padding, packing, epilogues                                                             */

void cn_offset_grid(int *out, long n0, long n1, long n2, long s0, long s1, long s2, long padded) {
    long i = 0;
    for (long a = 0; a < n0; a++)
        for (long b = 0; b < n1; b++)
            for (long c = 0; c < n2; c++) out[i++] = (int)(a * s0 + b * s1 + c * s2);
    long last = i > 0 ? out[i - 1] : 0;
    for (; i < padded; i++) out[i] = (int)last;
}

void cn_pad_planes(const float *src, const float *mask, long planes, long H, long W, float *dst, long Hp, long Wp,
                   long top, long left) {
    for (long p = 0; p < planes; p++) {
        float *d = dst + p * Hp * Wp;
        memset(d, 0, (size_t)(Hp * Wp) * sizeof(float));
        const float *s = src + p * H * W;
        const float *m = mask ? mask + p * H * W : NULL;
        for (long y = 0; y < H; y++) {
            float *drow = d + (y + top) * Wp + left;
            const float *srow = s + y * W;
            if (m) {
                const float *mrow = m + y * W;
                for (long x = 0; x < W; x++) drow[x] = mrow[x] > 0.0f ? srow[x] : srow[x] * 0.0f; /* as ReLU's backward: NaN stays NaN */
            } else {
                memcpy(drow, srow, (size_t)W * sizeof(float));
            }
        }
    }
}

void cn_pack_weights_forward(const float *w, long OC, long patch, float *B) {
    long panels = (OC + PANEL - 1) / PANEL;
    for (long p = 0; p < panels; p++)
        for (long k = 0; k < patch; k++)
            for (long j = 0; j < PANEL; j++) {
                long o = p * PANEL + j;
                B[(p * patch + k) * PANEL + j] = o < OC ? w[o * patch + k] : 0.0f;
            }
}

void cn_pack_weights_flipped(const float *w, long OC, long C, long KH, long KW, float *B) {
    long panels = (C + PANEL - 1) / PANEL, S = OC * KH * KW;
    for (long p = 0; p < panels; p++)
        for (long o = 0; o < OC; o++)
            for (long ky = 0; ky < KH; ky++)
                for (long kx = 0; kx < KW; kx++) {
                    long s = (o * KH + ky) * KW + kx;
                    float *dst = B + (p * S + s) * PANEL;
                    for (long j = 0; j < PANEL; j++) {
                        long c = p * PANEL + j;
                        dst[j] = c < C ? w[((o * C + c) * KH + (KH - 1 - ky)) * KW + (KW - 1 - kx)] : 0.0f;
                    }
                }
}

/* Channels [c0, c1) and pixels [i0, pixels) one at a time; sums (if any) get the plain running sum. */
static void transpose_to_panels_portable(const float *src, const float *mask, long c0, long c1, long i0,
                                         long pixels, float *dst, float *sums) {
    for (long c = c0; c < c1; c++) {
        const float *s = src + c * pixels;
        const float *m = mask ? mask + c * pixels : NULL;
        float *d = dst + (c / PANEL) * pixels * PANEL + c % PANEL;
        float sum = 0.0f;
        for (long i = i0; i < pixels; i++) {
            float v = (!m || m[i] > 0.0f) ? s[i] : s[i] * 0.0f; /* as ReLU's backward: NaN stays NaN */
            d[i * PANEL] = v;
            sum += v;
        }
        if (sums) sums[c] += sum;
    }
}

#if defined(__x86_64__)
/* 8 channels x 8 pixels per step, transposed in registers (the inverse of panels_to_planes_avx2).
 * Each channel's sum runs in 8 lanes (pixel i in lane i % 8), then lanes 0..7 and the pixel tail are
 * added in order: a fixed order, so the bias gradient is deterministic. Returns the pixels done. */
__attribute__((target("avx2,fma")))
static long transpose_to_panels_avx2(const float *src, const float *mask, long channels, long pixels, float *dst,
                                     float *sums) {
    long fullChannels = channels & ~7L, fullPixels = pixels & ~7L;
    const __m256 zero = _mm256_setzero_ps();
    for (long c = 0; c < fullChannels; c += 8) {
        float *d = dst + (c / PANEL) * pixels * PANEL + c % PANEL;
        __m256 acc[8];
        for (int j = 0; j < 8; j++) acc[j] = zero;
        for (long i = 0; i < fullPixels; i += 8) {
            __m256 r[8];
            for (int j = 0; j < 8; j++) {
                __m256 v = _mm256_loadu_ps(src + (c + j) * pixels + i);
                if (mask) {
                    __m256 positive = _mm256_cmp_ps(_mm256_loadu_ps(mask + (c + j) * pixels + i), zero, _CMP_GT_OQ);
                    v = _mm256_blendv_ps(_mm256_mul_ps(v, zero), v, positive);
                }
                acc[j] = _mm256_add_ps(acc[j], v);
                r[j] = v;
            }
            cn_transpose8x8(r); /* r[p] = pixel i + p, channels c .. c + 7 */
            for (int p = 0; p < 8; p++) _mm256_storeu_ps(d + (i + p) * PANEL, r[p]);
        }
        if (!sums) continue;
        for (int j = 0; j < 8; j++) {
            float lanes[8];
            _mm256_storeu_ps(lanes, acc[j]);
            float sum = 0.0f;
            for (int l = 0; l < 8; l++) sum += lanes[l];
            sums[c + j] += sum;
        }
    }
    return fullPixels;
}
#endif

void cn_transpose_to_panels(int level, const float *src, const float *mask, long channels, long pixels, float *dst,
                            float *sums) {
    long panels = (channels + PANEL - 1) / PANEL;
    if (channels % PANEL) /* the last panel's lanes past `channels` stay zero */
        memset(dst + (panels - 1) * pixels * PANEL, 0, (size_t)(pixels * PANEL) * sizeof(float));
#if defined(__x86_64__)
    if (cn_at_least(level, CN_KERNELS_AVX2)) {
        long done = transpose_to_panels_avx2(src, mask, channels, pixels, dst, sums);
        long fullChannels = channels & ~7L;
        transpose_to_panels_portable(src, mask, 0, fullChannels, done, pixels, dst, sums); /* pixel tails */
        transpose_to_panels_portable(src, mask, fullChannels, channels, 0, pixels, dst, sums); /* channel tail */
        return;
    }
#endif
    transpose_to_panels_portable(src, mask, 0, channels, 0, pixels, dst, sums);
}

static void panels_to_planes_portable(const float *C, long rows, long pixels, long c0, long c1, long i0,
                                      const float *bias, int relu, float *y) {
    for (long c = c0; c < c1; c++) {
        const float *src = C + (c / PANEL) * rows * PANEL + c % PANEL;
        float *dst = y + c * pixels;
        float b = bias ? bias[c] : 0.0f;
        for (long i = i0; i < pixels; i++) {
            float v = src[i * PANEL] + b;
            dst[i] = relu ? (v > 0.0f ? v : v * 0.0f) : v; /* as ReLU: NaN stays NaN */
        }
    }
}

#if defined(__x86_64__)
/* 8 x 8 blocks: 8 pixels (rows of C) by 8 channels transposed in registers into 8 channel rows. */
__attribute__((target("avx2,fma")))
static long panels_to_planes_avx2(const float *C, long rows, long pixels, long channels, const float *bias, int relu,
                                  float *y) {
    long fullChannels = channels & ~7L, fullPixels = pixels & ~7L;
    const __m256 zero = _mm256_setzero_ps();
    for (long c = 0; c < fullChannels; c += 8) {
        const float *src = C + (c / PANEL) * rows * PANEL + c % PANEL;
        float b[8];
        for (int j = 0; j < 8; j++) b[j] = bias ? bias[c + j] : 0.0f;
        for (long i = 0; i < fullPixels; i += 8) {
            __m256 col[8];
            for (int j = 0; j < 8; j++) col[j] = _mm256_loadu_ps(src + (i + j) * PANEL); /* 8 pixels */
            cn_transpose8x8(col);                                                          /* 8 channels */
            for (int j = 0; j < 8; j++) {
                __m256 v = _mm256_add_ps(col[j], _mm256_set1_ps(b[j]));
                if (relu) {
                    /* v > 0 ? v : v * 0, as ReLU (NaN stays NaN, negatives become -0) */
                    __m256 positive = _mm256_cmp_ps(v, zero, _CMP_GT_OQ);
                    v = _mm256_blendv_ps(_mm256_mul_ps(v, zero), v, positive);
                }
                _mm256_storeu_ps(y + (c + j) * pixels + i, v);
            }
        }
    }
    return fullPixels;
}
#endif

void cn_panels_to_planes(int level, const float *C, long rows, long pixels, long channels, const float *bias, int relu,
                         float *y) {
#if defined(__x86_64__)
    if (cn_at_least(level, CN_KERNELS_AVX2)) {
        long done = panels_to_planes_avx2(C, rows, pixels, channels, bias, relu, y);
        long fullChannels = channels & ~7L;
        panels_to_planes_portable(C, rows, pixels, 0, fullChannels, done, bias, relu, y); /* pixel tails */
        panels_to_planes_portable(C, rows, pixels, fullChannels, channels, 0, bias, relu, y); /* channel tail */
        return;
    }
#endif
    panels_to_planes_portable(C, rows, pixels, 0, channels, 0, bias, relu, y);
}
