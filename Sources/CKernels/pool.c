/*
 * 2x2 max pooling with stride 2 over whole planes, with the argmax of each window.
 *
 * Same semantics as the scalar loop: candidates in the order (r0, c0), (r0, c0+1), (r1, c0),
 * (r1, c0+1); a candidate wins when it is greater than the best so far or is NaN, so ties keep the
 * first and NaN propagates. The AVX2 version computes 8 outputs at a time: two 8-float loads of each
 * input row, deinterleaved into even and odd columns, compared and blended (values and indices).
 * A row of at least 8 outputs ends with an overlapping chunk (recomputing the same values); shorter
 * rows use masked loads, so nothing past the plane is read.
 */
#include "ckernels.h"
#include "level.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static inline void challenge(float v, int i, float *best, int *bestIndex) {
    int wins = v > *best || v != v;
    if (wins) {
        *best = v;
        *bestIndex = i;
    }
}

static void maxpool2x2_plane_portable(const float *src, long W, long OH, long OW, float *dst, int *arg) {
    for (long oy = 0; oy < OH; oy++) {
        long r0 = 2 * oy * W, r1 = r0 + W;
        for (long ox = 0; ox < OW; ox++) {
            long i = r0 + 2 * ox, j = r1 + 2 * ox;
            float best = src[i];
            int bestIndex = (int)i;
            challenge(src[i + 1], (int)(i + 1), &best, &bestIndex);
            challenge(src[j], (int)j, &best, &bestIndex);
            challenge(src[j + 1], (int)(j + 1), &best, &bestIndex);
            dst[oy * OW + ox] = best;
            arg[oy * OW + ox] = bestIndex;
        }
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static inline void challenge8(__m256 v, __m256 vi, __m256 *best, __m256 *bestIndex) {
    __m256 wins = _mm256_or_ps(_mm256_cmp_ps(v, *best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    *best = _mm256_blendv_ps(*best, v, wins);
    *bestIndex = _mm256_blendv_ps(*bestIndex, vi, wins);
}

/* Even and odd columns of 16 consecutive floats, in order. */
__attribute__((target("avx2,fma")))
static inline void deinterleave(__m256 a, __m256 b, __m256 *even, __m256 *odd) {
    __m256 e = _mm256_shuffle_ps(a, b, 0x88), o = _mm256_shuffle_ps(a, b, 0xDD);
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xD8));
}

/* Window maxima of 8 outputs from 16 floats of each of the two rows; i0: index of row 0's first. */
__attribute__((target("avx2,fma")))
static inline void window8(__m256 a0, __m256 b0, __m256 a1, __m256 b1, int i0, int W, __m256 *best,
                           __m256i *index) {
    const __m256i step = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    __m256i e0 = _mm256_add_epi32(_mm256_set1_epi32(i0), step);
    __m256i o0 = _mm256_add_epi32(e0, _mm256_set1_epi32(1));
    __m256i e1 = _mm256_add_epi32(e0, _mm256_set1_epi32(W));
    __m256i o1 = _mm256_add_epi32(e1, _mm256_set1_epi32(1));
    __m256 ev0, od0, ev1, od1;
    deinterleave(a0, b0, &ev0, &od0);
    deinterleave(a1, b1, &ev1, &od1);
    __m256 b = ev0, bi = _mm256_castsi256_ps(e0);
    challenge8(od0, _mm256_castsi256_ps(o0), &b, &bi);
    challenge8(ev1, _mm256_castsi256_ps(e1), &b, &bi);
    challenge8(od1, _mm256_castsi256_ps(o1), &b, &bi);
    *best = b;
    *index = _mm256_castps_si256(bi);
}

__attribute__((target("avx2,fma")))
static void maxpool2x2_plane_avx2(const float *src, long W, long OH, long OW, float *dst, int *arg) {
    if (OW >= 8) {
        for (long oy = 0; oy < OH; oy++) {
            const float *s0 = src + 2 * oy * W, *s1 = s0 + W;
            float *d = dst + oy * OW;
            int *a = arg + oy * OW;
            for (long ox = 0;; ox += 8) {
                if (ox > OW - 8) ox = OW - 8; /* last chunk overlaps the previous one */
                __m256 best;
                __m256i index;
                window8(_mm256_loadu_ps(s0 + 2 * ox), _mm256_loadu_ps(s0 + 2 * ox + 8), _mm256_loadu_ps(s1 + 2 * ox),
                        _mm256_loadu_ps(s1 + 2 * ox + 8), (int)(2 * oy * W + 2 * ox), (int)W, &best, &index);
                _mm256_storeu_ps(d + ox, best);
                _mm256_storeu_si256((__m256i *)(a + ox), index);
                if (ox + 8 >= OW) break;
            }
        }
        return;
    }
    /* Fewer than 8 outputs a row: masked loads of the 2*OW floats each window row needs. */
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i n = _mm256_set1_epi32((int)(2 * OW));
    __m256i maskA = _mm256_cmpgt_epi32(n, lane);
    __m256i maskB = _mm256_cmpgt_epi32(n, _mm256_add_epi32(lane, _mm256_set1_epi32(8)));
    float bestOut[8] __attribute__((aligned(32)));
    int indexOut[8] __attribute__((aligned(32)));
    for (long oy = 0; oy < OH; oy++) {
        const float *s0 = src + 2 * oy * W, *s1 = s0 + W;
        __m256 best;
        __m256i index;
        window8(_mm256_maskload_ps(s0, maskA), _mm256_maskload_ps(s0 + 8, maskB), _mm256_maskload_ps(s1, maskA),
                _mm256_maskload_ps(s1 + 8, maskB), (int)(2 * oy * W), (int)W, &best, &index);
        _mm256_store_ps(bestOut, best);
        _mm256_store_si256((__m256i *)indexOut, index);
        for (long ox = 0; ox < OW; ox++) {
            dst[oy * OW + ox] = bestOut[ox];
            arg[oy * OW + ox] = indexOut[ox];
        }
    }
}
#endif

void cn_maxpool2x2(int level, const float *input, long planes, long H, long W, long OH, long OW, float *output, int *argmax) {
    (void)H;
#if defined(__x86_64__)
    if (cn_at_least(level, CN_KERNELS_AVX2)) {
        for (long p = 0; p < planes; p++)
            maxpool2x2_plane_avx2(input + p * H * W, W, OH, OW, output + p * OH * OW, argmax + p * OH * OW);
        return;
    }
#endif
    for (long p = 0; p < planes; p++)
        maxpool2x2_plane_portable(input + p * H * W, W, OH, OW, output + p * OH * OW, argmax + p * OH * OW);
}
