/*
 * Winograd F(2x2, 3x3) input transform (Kernels/Winograd.swift, `WinogradPlan.transformInput`):
 * V[e][c][t] = (B^T d B)[e] for each 4x4 window d of a zero-padded plane, where
 *
 *     B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *
 * row by row first (w0 = d0 - d2, w1 = d1 + d2, w2 = d2 - d1, w3 = d1 - d3), then each row (a, b, c, d)
 * times B: (a - c, b + c, c - b, b - d). The AVX2 kernel computes eight tiles' 16 values in 128-bit
 * lanes and stores them with two 8 x 8 transposes (V's rows are contiguous in the tile); the same
 * additions and subtractions per element as the portable loop (a - c as a + (-c): equal in IEEE
 * arithmetic), so the levels give bit-identical results.
 */
#include "ckernels.h"
#include "level.h"
#include "transpose8.h"

/* One tile: out[e] for e = 4i + j. */
static inline void tile_portable(const float *p, long pw, float out[16]) {
    for (long j = 0; j < 4; j++) {
        float d0 = p[j], d1 = p[pw + j], d2 = p[2 * pw + j], d3 = p[3 * pw + j];
        out[j] = d0 - d2;
        out[4 + j] = d1 + d2;
        out[8 + j] = d2 - d1;
        out[12 + j] = d1 - d3;
    }
    for (long i = 0; i < 4; i++) {
        float a = out[4 * i], b = out[4 * i + 1], c = out[4 * i + 2], d = out[4 * i + 3];
        out[4 * i] = a - c;
        out[4 * i + 1] = b + c;
        out[4 * i + 2] = c - b;
        out[4 * i + 3] = b - d;
    }
}

static void input_portable(const float *plane, long pw, long tilesWide, long first, long count, float *v, long estride) {
    long ti = first / tilesWide, tj = first % tilesWide;
    for (long t = 0; t < count; t++) {
        float out[16];
        tile_portable(plane + 2 * ti * pw + 2 * tj, pw, out);
        for (long e = 0; e < 16; e++) v[e * estride + t] = out[e];
        if (++tj == tilesWide) tj = 0, ti++;
    }
}

#if defined(__x86_64__)
/* Row (a, b, c, d) times B: (a - c, b + c, c - b, b - d) = (a, b, c, b) + (-c, c, -b, -d). */
__attribute__((target("avx2,fma")))
static inline __m128 times_b(__m128 w) {
    const __m128 signs = _mm_castsi128_ps(_mm_set_epi32((int)0x80000000, (int)0x80000000, 0, (int)0x80000000));
    __m128 left = _mm_permute_ps(w, _MM_SHUFFLE(1, 2, 1, 0));
    __m128 right = _mm_xor_ps(_mm_permute_ps(w, _MM_SHUFFLE(3, 1, 2, 2)), signs);
    return _mm_add_ps(left, right);
}

__attribute__((target("avx2,fma")))
static void input_avx2(const float *plane, long pw, long tilesWide, long first, long count, float *v, long estride) {
    long ti = first / tilesWide, tj = first % tilesWide;
    long t = 0;
    for (; t + 8 <= count; t += 8) {
        __m256 lo[8], hi[8]; /* tile k: elements 0-7 and 8-15 */
        for (int k = 0; k < 8; k++) {
            const float *p = plane + 2 * ti * pw + 2 * tj;
            __m128 d0 = _mm_loadu_ps(p), d1 = _mm_loadu_ps(p + pw), d2 = _mm_loadu_ps(p + 2 * pw), d3 = _mm_loadu_ps(p + 3 * pw);
            __m128 r0 = times_b(_mm_sub_ps(d0, d2)), r1 = times_b(_mm_add_ps(d1, d2));
            __m128 r2 = times_b(_mm_sub_ps(d2, d1)), r3 = times_b(_mm_sub_ps(d1, d3));
            lo[k] = _mm256_insertf128_ps(_mm256_castps128_ps256(r0), r1, 1);
            hi[k] = _mm256_insertf128_ps(_mm256_castps128_ps256(r2), r3, 1);
            if (++tj == tilesWide) tj = 0, ti++;
        }
        cn_transpose8x8(lo);
        cn_transpose8x8(hi);
        for (int e = 0; e < 8; e++) {
            _mm256_storeu_ps(v + e * estride + t, lo[e]);
            _mm256_storeu_ps(v + (e + 8) * estride + t, hi[e]);
        }
    }
    if (t < count) input_portable(plane, pw, tilesWide, first + t, count - t, v + t, estride);
}
#endif

/* A transform of one plane's tiles `first ..< first + count` (the input's B^T d B, or dL/dy's A dy A^T). */
typedef void (*plane_transform)(const float *plane, long pw, long tilesWide, long first, long count, float *out, long estride);

#if defined(__x86_64__)
#define AVX2_KERNEL(f) (f)
#else
#define AVX2_KERNEL(f) ((plane_transform)0)
#endif

/* `portable`, or `avx2` where the level runs it, on each of `channels` planes (`plane` floats apart) into
   rows `ld` floats apart. */
static void each_plane(int level, plane_transform portable, plane_transform avx2, const float *planes, long channels,
                       long plane, long pw, long tilesWide, long first, long count, float *out, long ld, long estride) {
    plane_transform transform = avx2 && cn_at_least(level, CN_KERNELS_AVX2) ? avx2 : portable;
    for (long c = 0; c < channels; c++) transform(planes + c * plane, pw, tilesWide, first, count, out + c * ld, estride);
}

void cn_winograd_input(int level, const float *padded, long channels, long plane, long pw, long tilesWide, long first,
                       long count, float *v, long ldv, long estride) {
    each_plane(level, input_portable, AVX2_KERNEL(input_avx2), padded, channels, plane, pw, tilesWide, first, count, v, ldv, estride);
}

/*
 * Output transform: Y = A^T M A (+ bias) per tile, A^T = [1 1 1 0; 0 1 -1 -1]: rows r0 = m0 + m4 + m8,
 * r1 = m4 - m8 - m12 (element by element, rows of 4), then each row (a, b, c, d) times A:
 * (a + b + c, b - c - d); the 2x2 result is cut at the target's edges. The AVX2 kernel does eight tiles
 * per step with the same operations in the same order per element, and stores whole rows of outputs
 * where the eight tiles lie in one row of tiles and are not cut.
 */
static inline void store_tile(float *plane, long ow, long oh, long ti, long tj, float y00, float y01, float y10, float y11) {
    long i = 2 * ti, j = 2 * tj;
    float *row = plane + i * ow + j;
    int right = j + 1 < ow;
    row[0] = y00;
    if (right) row[1] = y01;
    if (i + 1 < oh) {
        row[ow] = y10;
        if (right) row[ow + 1] = y11;
    }
}

static void output_portable(const float *m, long estride, long tilesWide, long first, long count, float b, float *plane,
                            long oh, long ow) {
    long ti = first / tilesWide, tj = first % tilesWide;
    for (long t = 0; t < count; t++) {
        const float *s = m + t;
        float r0[4], r1[4];
        for (long j = 0; j < 4; j++) {
            r0[j] = s[j * estride] + s[(4 + j) * estride] + s[(8 + j) * estride];
            r1[j] = s[(4 + j) * estride] - s[(8 + j) * estride] - s[(12 + j) * estride];
        }
        store_tile(plane, ow, oh, ti, tj, b + (r0[0] + r0[1] + r0[2]), b + (r0[1] - r0[2] - r0[3]), b + (r1[0] + r1[1] + r1[2]),
                   b + (r1[1] - r1[2] - r1[3]));
        if (++tj == tilesWide) tj = 0, ti++;
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static void output_avx2(const float *m, long estride, long tilesWide, long first, long count, float b, float *plane, long oh,
                        long ow) {
    long ti = first / tilesWide, tj = first % tilesWide;
    const __m256 bias = _mm256_set1_ps(b);
    long t = 0;
    for (; t + 8 <= count; t += 8) {
        const float *s = m + t;
#define LOAD(e) _mm256_loadu_ps(s + (e) * estride)
        __m256 r00 = _mm256_add_ps(_mm256_add_ps(LOAD(0), LOAD(4)), LOAD(8));
        __m256 r01 = _mm256_add_ps(_mm256_add_ps(LOAD(1), LOAD(5)), LOAD(9));
        __m256 r02 = _mm256_add_ps(_mm256_add_ps(LOAD(2), LOAD(6)), LOAD(10));
        __m256 r03 = _mm256_add_ps(_mm256_add_ps(LOAD(3), LOAD(7)), LOAD(11));
        __m256 r10 = _mm256_sub_ps(_mm256_sub_ps(LOAD(4), LOAD(8)), LOAD(12));
        __m256 r11 = _mm256_sub_ps(_mm256_sub_ps(LOAD(5), LOAD(9)), LOAD(13));
        __m256 r12 = _mm256_sub_ps(_mm256_sub_ps(LOAD(6), LOAD(10)), LOAD(14));
        __m256 r13 = _mm256_sub_ps(_mm256_sub_ps(LOAD(7), LOAD(11)), LOAD(15));
#undef LOAD
        __m256 y00 = _mm256_add_ps(bias, _mm256_add_ps(_mm256_add_ps(r00, r01), r02));
        __m256 y01 = _mm256_add_ps(bias, _mm256_sub_ps(_mm256_sub_ps(r01, r02), r03));
        __m256 y10 = _mm256_add_ps(bias, _mm256_add_ps(_mm256_add_ps(r10, r11), r12));
        __m256 y11 = _mm256_add_ps(bias, _mm256_sub_ps(_mm256_sub_ps(r11, r12), r13));
        if (tj + 8 <= tilesWide && 2 * (tj + 8) <= ow && 2 * ti + 1 < oh) {
            /* Eight whole tiles in one row: two rows of 16 outputs. */
            float *row = plane + 2 * ti * ow + 2 * tj;
            __m256 lo = _mm256_unpacklo_ps(y00, y01), hi = _mm256_unpackhi_ps(y00, y01);
            _mm256_storeu_ps(row, _mm256_permute2f128_ps(lo, hi, 0x20));
            _mm256_storeu_ps(row + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
            lo = _mm256_unpacklo_ps(y10, y11), hi = _mm256_unpackhi_ps(y10, y11);
            _mm256_storeu_ps(row + ow, _mm256_permute2f128_ps(lo, hi, 0x20));
            _mm256_storeu_ps(row + ow + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
            tj += 8;
            if (tj == tilesWide) tj = 0, ti++;
            continue;
        }
        float v[4][8];
        _mm256_storeu_ps(v[0], y00);
        _mm256_storeu_ps(v[1], y01);
        _mm256_storeu_ps(v[2], y10);
        _mm256_storeu_ps(v[3], y11);
        for (int k = 0; k < 8; k++) {
            store_tile(plane, ow, oh, ti, tj, v[0][k], v[1][k], v[2][k], v[3][k]);
            if (++tj == tilesWide) tj = 0, ti++;
        }
    }
    if (t < count) output_portable(m + t, estride, tilesWide, first + t, count - t, b, plane, oh, ow);
}
#endif

void cn_winograd_output(int level, const float *m, long channels, long ldm, long estride, long tilesWide, long first, long count,
                        const float *bias, float *y, long oh, long ow) {
    for (long o = 0; o < channels; o++) {
        const float *source = m + o * ldm;
        float *plane = y + o * oh * ow;
        float b = bias ? bias[o] : 0.0f;
#if defined(__x86_64__)
        if (cn_at_least(level, CN_KERNELS_AVX2)) {
            output_avx2(source, estride, tilesWide, first, count, b, plane, oh, ow);
            continue;
        }
#endif
        output_portable(source, estride, tilesWide, first, count, b, plane, oh, ow);
    }
}

/*
 * The weight gradient's transform of dL/dy, the adjoint of the output transform: per tile with 2x2
 * gradient (a b; c d), dM = A dy A^T: rows (p, q) = (a, b), (a + c, b + d), (a - c, b - d), (-c, -d),
 * each times A^T: (p, p + q, p - q, -q). The AVX2 kernel gathers eight tiles' a, b, c, d and stores
 * each element's eight values at once; the same operations per element as the portable loop.
 */
static void gradient_portable(const float *plane, long pw, long tilesWide, long first, long count, float *dm, long estride) {
    long ti = first / tilesWide, tj = first % tilesWide;
    for (long t = 0; t < count; t++) {
        const float *p = plane + 2 * ti * pw + 2 * tj;
        float a = p[0], b = p[1], c = p[pw], d = p[pw + 1];
        float rows[4][2] = {{a, b}, {a + c, b + d}, {a - c, b - d}, {-c, -d}};
        for (long i = 0; i < 4; i++) {
            float x = rows[i][0], y = rows[i][1];
            dm[(4 * i) * estride + t] = x;
            dm[(4 * i + 1) * estride + t] = x + y;
            dm[(4 * i + 2) * estride + t] = x - y;
            dm[(4 * i + 3) * estride + t] = -y;
        }
        if (++tj == tilesWide) tj = 0, ti++;
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static void gradient_avx2(const float *plane, long pw, long tilesWide, long first, long count, float *dm, long estride) {
    long ti = first / tilesWide, tj = first % tilesWide;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    long t = 0;
    for (; t + 8 <= count; t += 8) {
        float g[4][8];
        for (int k = 0; k < 8; k++) {
            const float *p = plane + 2 * ti * pw + 2 * tj;
            g[0][k] = p[0], g[1][k] = p[1], g[2][k] = p[pw], g[3][k] = p[pw + 1];
            if (++tj == tilesWide) tj = 0, ti++;
        }
        __m256 a = _mm256_loadu_ps(g[0]), b = _mm256_loadu_ps(g[1]), c = _mm256_loadu_ps(g[2]), d = _mm256_loadu_ps(g[3]);
        __m256 x[4] = {a, _mm256_add_ps(a, c), _mm256_sub_ps(a, c), _mm256_xor_ps(c, sign)};
        __m256 y[4] = {b, _mm256_add_ps(b, d), _mm256_sub_ps(b, d), _mm256_xor_ps(d, sign)};
        for (int i = 0; i < 4; i++) {
            _mm256_storeu_ps(dm + (4 * i) * estride + t, x[i]);
            _mm256_storeu_ps(dm + (4 * i + 1) * estride + t, _mm256_add_ps(x[i], y[i]));
            _mm256_storeu_ps(dm + (4 * i + 2) * estride + t, _mm256_sub_ps(x[i], y[i]));
            _mm256_storeu_ps(dm + (4 * i + 3) * estride + t, _mm256_xor_ps(y[i], sign));
        }
    }
    if (t < count) gradient_portable(plane, pw, tilesWide, first + t, count - t, dm + t, estride);
}
#endif

void cn_winograd_gradient(int level, const float *planes, long channels, long plane, long pw, long tilesWide, long first,
                          long count, float *dm, long ldm, long estride) {
    each_plane(level, gradient_portable, AVX2_KERNEL(gradient_avx2), planes, channels, plane, pw, tilesWide, first, count, dm, ldm,
               estride);
}
