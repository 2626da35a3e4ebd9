/*
 * im2col / col2im for one image (C x H x W, row-major) and its column matrix
 * (C*KH*KW rows, OH*OW columns). Padding entries of the column matrix are 0.
 *
 * For each (channel, kernel row, kernel column) row, the range [first, end) of output columns whose
 * input column lies inside the image is computed once; the inner loops then have no bounds tests.
 * With stride 1 the AVX2 version copies 8 floats at a time and finishes a row with one overlapping
 * store, so rows of 14 or 28 floats cost a few instructions each.
 *
 * col2im adds every column entry onto its input pixel in the same order as the plain reference
 * (channel, kernel row, kernel column, output row, output column), so results are bit-identical.
 */
#include "ckernels.h"
#include "level.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static inline void valid_columns(long offset, long stride, long width, long ow, long *first, long *end) {
    long f = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    long limit = width - 1 - offset;
    long e = limit < 0 ? 0 : (limit / stride + 1 < ow ? limit / stride + 1 : ow);
    if (f > ow) f = ow;
    if (e < f) e = f;
    *first = f;
    *end = e;
}

/* ---------------------------------------------------------------------------------------------- */
/* Portable                                                                                        */

static void im2col_portable(const float *image, float *columns, long C, long H, long W, long KH, long KW,
                            long sh, long sw, long pt, long pl, long OH, long OW) {
    float *dst = columns;
    for (long c = 0; c < C; c++) {
        const float *plane = image + c * H * W;
        for (long ki = 0; ki < KH; ki++) {
            for (long kj = 0; kj < KW; kj++) {
                long offset = kj - pl, first, end;
                valid_columns(offset, sw, W, OW, &first, &end);
                for (long oy = 0; oy < OH; oy++) {
                    long iy = oy * sh + ki - pt;
                    float *out = dst + oy * OW;
                    if (iy < 0 || iy >= H) {
                        for (long ox = 0; ox < OW; ox++) out[ox] = 0;
                        continue;
                    }
                    const float *src = plane + iy * W + offset;
                    for (long ox = 0; ox < first; ox++) out[ox] = 0;
                    for (long ox = first; ox < end; ox++) out[ox] = src[ox * sw];
                    for (long ox = end; ox < OW; ox++) out[ox] = 0;
                }
                dst += OH * OW;
            }
        }
    }
}

static void col2im_portable(const float *columns, float *image, long C, long H, long W, long KH, long KW,
                            long sh, long sw, long pt, long pl, long OH, long OW) {
    const float *src = columns;
    for (long c = 0; c < C; c++) {
        float *plane = image + c * H * W;
        for (long ki = 0; ki < KH; ki++) {
            for (long kj = 0; kj < KW; kj++) {
                long offset = kj - pl, first, end;
                valid_columns(offset, sw, W, OW, &first, &end);
                for (long oy = 0; oy < OH; oy++) {
                    long iy = oy * sh + ki - pt;
                    if (iy < 0 || iy >= H) continue;
                    float *d = plane + iy * W + offset;
                    const float *col = src + oy * OW;
                    for (long ox = first; ox < end; ox++) d[ox * sw] += col[ox];
                }
                src += OH * OW;
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* AVX2                                                                                            */

#if defined(__x86_64__)
/* Masked stores (vmaskmovps) are slow on AMD cores, so tails are handled by one overlapping
 * full-width store where the row has at least 8 floats, and by scalar code otherwise. */

/* out[0..<n] = src[0..<n]. */
__attribute__((target("avx2,fma")))
static inline void copy_row(float *out, const float *src, long n) {
    if (n < 8) {
        for (long i = 0; i < n; i++) out[i] = src[i];
        return;
    }
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_loadu_ps(src + i));
    if (i < n) _mm256_storeu_ps(out + n - 8, _mm256_loadu_ps(src + n - 8));
}

__attribute__((target("avx2,fma")))
static inline void zero_row(float *out, long n) {
    if (n < 8) {
        for (long i = 0; i < n; i++) out[i] = 0;
        return;
    }
    __m256 z = _mm256_setzero_ps();
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, z);
    if (i < n) _mm256_storeu_ps(out + n - 8, z);
}

/* d[0..<n] += s[0..<n] (each element once: the tail is scalar). */
__attribute__((target("avx2,fma")))
static inline void add_row(float *d, const float *s, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_add_ps(_mm256_loadu_ps(d + i), _mm256_loadu_ps(s + i)));
    for (; i < n; i++) d[i] += s[i];
}

__attribute__((target("avx2,fma")))
static void im2col_avx2(const float *image, float *columns, long C, long H, long W, long KH, long KW,
                        long sh, long sw, long pt, long pl, long OH, long OW) {
    float *dst = columns;
    for (long c = 0; c < C; c++) {
        const float *plane = image + c * H * W;
        for (long ki = 0; ki < KH; ki++) {
            for (long kj = 0; kj < KW; kj++) {
                long offset = kj - pl, first, end;
                valid_columns(offset, sw, W, OW, &first, &end);
                long oyFirst = 0, oyEnd = OH;
                /* rows with 0 <= oy * sh + ki - pt < H */
                {
                    long off = ki - pt;
                    oyFirst = off >= 0 ? 0 : (-off + sh - 1) / sh;
                    long limit = H - 1 - off;
                    oyEnd = limit < 0 ? 0 : (limit / sh + 1 < OH ? limit / sh + 1 : OH);
                    if (oyFirst > OH) oyFirst = OH;
                    if (oyEnd < oyFirst) oyEnd = oyFirst;
                }
                if (oyFirst > 0) zero_row(dst, oyFirst * OW);
                if (oyEnd < OH) zero_row(dst + oyEnd * OW, (OH - oyEnd) * OW);
                long len = end - first;
                if (sw == 1 && first == 0 && end == OW && W == OW && sh == 1) {
                    /* Whole rows, contiguous in both: one block copy. */
                    const float *src = plane + (oyFirst + ki - pt) * W + offset;
                    copy_row(dst + oyFirst * OW, src, (oyEnd - oyFirst) * OW);
                } else if (sw == 1) {
                    for (long oy = oyFirst; oy < oyEnd; oy++) {
                        long iy = oy * sh + ki - pt;
                        float *out = dst + oy * OW;
                        const float *src = plane + iy * W + offset;
                        if (first > 0 || end < OW) zero_row(out, OW);
                        copy_row(out + first, src + first, len);
                    }
                } else {
                    for (long oy = oyFirst; oy < oyEnd; oy++) {
                        long iy = oy * sh + ki - pt;
                        float *out = dst + oy * OW;
                        const float *src = plane + iy * W + offset;
                        for (long ox = 0; ox < first; ox++) out[ox] = 0;
                        for (long ox = first; ox < end; ox++) out[ox] = src[ox * sw];
                        for (long ox = end; ox < OW; ox++) out[ox] = 0;
                    }
                }
                dst += OH * OW;
            }
        }
    }
}

__attribute__((target("avx2,fma")))
static void col2im_avx2(const float *columns, float *image, long C, long H, long W, long KH, long KW,
                        long sh, long sw, long pt, long pl, long OH, long OW) {
    const float *src = columns;
    for (long c = 0; c < C; c++) {
        float *plane = image + c * H * W;
        for (long ki = 0; ki < KH; ki++) {
            for (long kj = 0; kj < KW; kj++) {
                long offset = kj - pl, first, end;
                valid_columns(offset, sw, W, OW, &first, &end);
                long len = end - first;
                for (long oy = 0; oy < OH; oy++) {
                    long iy = oy * sh + ki - pt;
                    if (iy < 0 || iy >= H) continue;
                    float *d = plane + iy * W + offset;
                    const float *col = src + oy * OW;
                    if (sw == 1) {
                        add_row(d + first, col + first, len);
                    } else {
                        for (long ox = first; ox < end; ox++) d[ox * sw] += col[ox];
                    }
                }
                src += OH * OW;
            }
        }
    }
}
#endif

void cn_im2col(int level, const float *image, float *columns, long C, long H, long W, long KH, long KW, long sh, long sw,
               long pt, long pl, long OH, long OW) {
#if defined(__x86_64__)
    if (cn_at_least(level, CN_KERNELS_AVX2)) {
        im2col_avx2(image, columns, C, H, W, KH, KW, sh, sw, pt, pl, OH, OW);
        return;
    }
#endif
    im2col_portable(image, columns, C, H, W, KH, KW, sh, sw, pt, pl, OH, OW);
}

void cn_col2im(int level, const float *columns, float *image, long C, long H, long W, long KH, long KW, long sh, long sw,
               long pt, long pl, long OH, long OW) {
#if defined(__x86_64__)
    if (cn_at_least(level, CN_KERNELS_AVX2)) {
        col2im_avx2(columns, image, C, H, W, KH, KW, sh, sw, pt, pl, OH, OW);
        return;
    }
#endif
    col2im_portable(columns, image, C, H, W, KH, KW, sh, sw, pt, pl, OH, OW);
}
