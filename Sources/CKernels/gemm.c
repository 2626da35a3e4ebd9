/*
 * Packed, register-blocked single-precision GEMM (row-major), BLIS loop order.
 *
 *   for jc in N step NC:            B block (kc x nc) packed into NR-wide panels
 *     for pc in K step KC:          whole K as one block when K <= 512
 *       for ic in M step MC:        A block (mc x kc) packed into MR-tall panels (alpha folded in)
 *         for jr, ir:               MR x NR micro-kernel on packed panels
 *
 * The AVX2+FMA micro-kernel (6 x 16: 12 __m256 accumulators) carries
 * __attribute__((target("avx2,fma"))) and is chosen at run time, so a plain build (no -m flags)
 * runs at full speed on CPUs that have it; other CPUs (and aarch64) use the portable kernel.
 * Where AVX-512F exists (dispatch.c), 12 x 32 and 6 x 32 tiles over two A and two B panels
 * (24 and 12 __m512 accumulators) cover C with the same packing and the same per-element FMA
 * sequence, so AVX2 and AVX-512 results are bit-identical. On Zen 5, which runs 512-bit FMAs at
 * full width, they double the rate; on Zen 4 (512-bit work as two halves) they run as AVX2 does.
 *
 * Determinism: every C element is accumulated in the same order (K blocks in order, k ascending
 * within a block, the block size depending on K only), whatever M/N sub-block a call covers and
 * whether its tile is full or partial. So splitting C into disjoint blocks across threads gives
 * bit-identical results for any thread count.
 *
 * Packing buffers are per thread, grown on demand and freed at thread exit: no allocation in the
 * steady state.
 */
#include "ckernels.h"
#include "level.h"
#include "transpose8.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define MR 6
#define NR 16
#ifndef KC_WHOLE
#define KC_WHOLE 512 /* K up to this is one depth block */
#endif
#ifndef MC
#define MC 120 /* rows of A per packed block (multiple of MR) */
#endif
#ifndef SMALL_M
#define SMALL_M 64 /* up to this many rows, a non-transposed B is read in place, not packed */
#endif
#define B_PANEL_FLOATS (1L << 20) /* kc * nc bound for the packed B block (4 MiB) */

/* ---------------------------------------------------------------------------------------------- */
/* Thread-local packing buffers                                                                   */

/* One set per thread, found through a _Thread_local pointer; a pthread key's destructor frees it
 * when the thread exits (worker threads of a pool may come and go). */
struct pack_buffers {
    float *a, *b;
    size_t capA, capB;
};

static pthread_key_t buffers_key;
static pthread_once_t buffers_once = PTHREAD_ONCE_INIT;
static _Thread_local struct pack_buffers *tl_buffers = NULL;

static void free_buffers(void *p) {
    struct pack_buffers *pb = (struct pack_buffers *)p;
    free(pb->a);
    free(pb->b);
    free(pb);
}

static void make_buffers_key(void) { (void)pthread_key_create(&buffers_key, free_buffers); }

static struct pack_buffers *thread_buffers(void) {
    if (!tl_buffers) {
        (void)pthread_once(&buffers_once, make_buffers_key);
        tl_buffers = (struct pack_buffers *)calloc(1, sizeof *tl_buffers);
        if (!tl_buffers) abort();
        (void)pthread_setspecific(buffers_key, tl_buffers);
    }
    return tl_buffers;
}

static float *grow(float **buf, size_t *cap, size_t floats) {
    if (floats > *cap) {
        free(*buf);
        size_t bytes = ((floats + 32) * sizeof(float) + 63) & ~(size_t)63; /* slack for vector tails */
        *buf = (float *)aligned_alloc(64, bytes);
        *cap = *buf ? floats : 0;
    }
    return *buf;
}

/* ---------------------------------------------------------------------------------------------- */
/* Blocking                                                                                       */

/* Depth block: all of K when K <= KC_WHOLE, else equal blocks of at most KC_WHOLE (multiple of 8). */
static long depth_block(long K) {
    if (K <= KC_WHOLE) return K;
    long blocks = (K + KC_WHOLE - 1) / KC_WHOLE;
    long kc = (K + blocks - 1) / blocks;
    return (kc + 7) & ~7L;
}

/* ---------------------------------------------------------------------------------------------- */
/* Packing (portable C; the compiler vectorises the copies)                                      */

/* Packs op(A) rows [0, mc), depth [0, kc) into MR-row panels: panel r holds (p, i) at p*MR + i.
 * `a` points at op(A)[0][0] of the block. Rows past mc are zero. alpha is folded in. */
static void pack_a(int transA, long mc, long kc, float alpha, const float *a, long lda, float *ap) {
    for (long i0 = 0; i0 < mc; i0 += MR, ap += MR * kc) {
        long mr = mc - i0 < MR ? mc - i0 : MR;
        if (transA) {
            const float *src = a + i0;
            if (mr == MR) {
                for (long p = 0; p < kc; p++) {
                    const float *s = src + p * lda;
                    float *d = ap + p * MR;
                    d[0] = alpha * s[0]; d[1] = alpha * s[1]; d[2] = alpha * s[2];
                    d[3] = alpha * s[3]; d[4] = alpha * s[4]; d[5] = alpha * s[5];
                }
            } else {
                for (long p = 0; p < kc; p++) {
                    const float *s = src + p * lda;
                    float *d = ap + p * MR;
                    long i = 0;
                    for (; i < mr; i++) d[i] = alpha * s[i];
                    for (; i < MR; i++) d[i] = 0.0f;
                }
            }
        } else {
            const float *src = a + i0 * lda;
            if (mr == MR) {
                const float *r0 = src, *r1 = src + lda, *r2 = src + 2 * lda;
                const float *r3 = src + 3 * lda, *r4 = src + 4 * lda, *r5 = src + 5 * lda;
                for (long p = 0; p < kc; p++) {
                    float *d = ap + p * MR;
                    d[0] = alpha * r0[p]; d[1] = alpha * r1[p]; d[2] = alpha * r2[p];
                    d[3] = alpha * r3[p]; d[4] = alpha * r4[p]; d[5] = alpha * r5[p];
                }
            } else {
                for (long p = 0; p < kc; p++) {
                    float *d = ap + p * MR;
                    long i = 0;
                    for (; i < mr; i++) d[i] = alpha * src[i * lda + p];
                    for (; i < MR; i++) d[i] = 0.0f;
                }
            }
        }
    }
}

/* Packs op(B) depth [0, kc), columns [0, nc) into NR-column panels: panel c holds (p, j) at
 * p*NR + j. `b` points at op(B)[0][0] of the block. Columns past nc are zero. */
static void pack_b_portable(int transB, long kc, long nc, const float *b, long ldb, float *bp) {
    for (long j0 = 0; j0 < nc; j0 += NR, bp += NR * kc) {
        long nr = nc - j0 < NR ? nc - j0 : NR;
        if (!transB) {
            const float *src = b + j0;
            if (nr == NR) {
                for (long p = 0; p < kc; p++) memcpy(bp + p * NR, src + p * ldb, NR * sizeof(float));
            } else {
                for (long p = 0; p < kc; p++) {
                    float *d = bp + p * NR;
                    long j = 0;
                    for (; j < nr; j++) d[j] = src[p * ldb + j];
                    for (; j < NR; j++) d[j] = 0.0f;
                }
            }
        } else {
            const float *src = b + j0 * ldb;
            if (nr < NR) memset(bp, 0, (size_t)(NR * kc) * sizeof(float));
            for (long j = 0; j < nr; j++) {
                const float *s = src + j * ldb;
                for (long p = 0; p < kc; p++) bp[p * NR + j] = s[p];
            }
        }
    }
}

#if defined(__x86_64__)
/* Transposed-B packing with 8x8 AVX transposes: rows of stored B (columns of op(B)) are contiguous
 * in p, panels want p-major. Full panels only; the rest goes through the portable path. */
__attribute__((target("avx2,fma")))
static inline void transpose8_store(const float *s, long ld, float *d, long dstride) {
    __m256 r[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(s + i * ld);
    cn_transpose8x8(r);
    for (int i = 0; i < 8; i++) _mm256_storeu_ps(d + i * dstride, r[i]);
}

__attribute__((target("avx2,fma")))
static void pack_b_avx2(int transB, long kc, long nc, const float *b, long ldb, float *bp) {
    if (!transB) {
        pack_b_portable(transB, kc, nc, b, ldb, bp);
        return;
    }
    long full = nc / NR * NR;
    for (long j0 = 0; j0 < full; j0 += NR, bp += NR * kc) {
        const float *src = b + j0 * ldb;
        long p = 0;
        for (; p + 8 <= kc; p += 8) {
            transpose8_store(src + p, ldb, bp + p * NR, NR);
            transpose8_store(src + 8 * ldb + p, ldb, bp + p * NR + 8, NR);
        }
        for (; p < kc; p++)
            for (long j = 0; j < NR; j++) bp[p * NR + j] = src[j * ldb + p];
    }
    if (full < nc) pack_b_portable(transB, kc, nc - full, b + full * ldb, ldb, bp);
}

/* Non-transposed A: rows contiguous in p, panels want p-major with MR rows. Transposes 8 depth
 * steps of 6 rows (two rows duplicated as padding) and keeps 6 lanes per step. */
__attribute__((target("avx2,fma")))
static void pack_a_avx2(int transA, long mc, long kc, float alpha, const float *a, long lda, float *ap) {
    if (transA) {
        pack_a(transA, mc, kc, alpha, a, lda, ap);
        return;
    }
    long full = mc / MR * MR;
    __m256 va = _mm256_set1_ps(alpha);
    float tmp[8 * 8] __attribute__((aligned(32)));
    for (long i0 = 0; i0 < full; i0 += MR, ap += MR * kc) {
        const float *src = a + i0 * lda;
        long p = 0;
        for (; p + 8 <= kc; p += 8) {
            const float *s = src + p;
            __m256 r0 = _mm256_mul_ps(va, _mm256_loadu_ps(s + 0 * lda));
            __m256 r1 = _mm256_mul_ps(va, _mm256_loadu_ps(s + 1 * lda));
            __m256 r2 = _mm256_mul_ps(va, _mm256_loadu_ps(s + 2 * lda));
            __m256 r3 = _mm256_mul_ps(va, _mm256_loadu_ps(s + 3 * lda));
            __m256 r4 = _mm256_mul_ps(va, _mm256_loadu_ps(s + 4 * lda));
            __m256 r5 = _mm256_mul_ps(va, _mm256_loadu_ps(s + 5 * lda));
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            /* t0 = r0[0] r1[0] r0[1] r1[1] | r0[4] r1[4] r0[5] r1[5]; t1 = [2],[3] | [6],[7] */
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44); /* p0: r0 r1 r2 r3 | p4 */
            __m256 u1 = _mm256_shuffle_ps(t0, t2, 0xEE); /* p1 | p5 */
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44); /* p2 | p6 */
            __m256 u3 = _mm256_shuffle_ps(t1, t3, 0xEE); /* p3 | p7 */
            /* t4 = r4[0] r5[0] r4[1] r5[1] | r4[4] r5[4] r4[5] r5[5]; t5 likewise for 2,3 | 6,7 */
            float *d = ap + p * MR;
            _mm_storeu_ps(d + 0 * MR, _mm256_castps256_ps128(u0));
            _mm_storeu_ps(d + 1 * MR, _mm256_castps256_ps128(u1));
            _mm_storeu_ps(d + 2 * MR, _mm256_castps256_ps128(u2));
            _mm_storeu_ps(d + 3 * MR, _mm256_castps256_ps128(u3));
            _mm_storeu_ps(d + 4 * MR, _mm256_extractf128_ps(u0, 1));
            _mm_storeu_ps(d + 5 * MR, _mm256_extractf128_ps(u1, 1));
            _mm_storeu_ps(d + 6 * MR, _mm256_extractf128_ps(u2, 1));
            _mm_storeu_ps(d + 7 * MR, _mm256_extractf128_ps(u3, 1));
            _mm256_store_ps(tmp, t4);
            _mm256_store_ps(tmp + 8, t5);
            /* rows 4 and 5 of each depth step: pairs from t4 (p0,p1 | p4,p5) and t5 (p2,p3 | p6,p7) */
            d[0 * MR + 4] = tmp[0];  d[0 * MR + 5] = tmp[1];
            d[1 * MR + 4] = tmp[2];  d[1 * MR + 5] = tmp[3];
            d[4 * MR + 4] = tmp[4];  d[4 * MR + 5] = tmp[5];
            d[5 * MR + 4] = tmp[6];  d[5 * MR + 5] = tmp[7];
            d[2 * MR + 4] = tmp[8];  d[2 * MR + 5] = tmp[9];
            d[3 * MR + 4] = tmp[10]; d[3 * MR + 5] = tmp[11];
            d[6 * MR + 4] = tmp[12]; d[6 * MR + 5] = tmp[13];
            d[7 * MR + 4] = tmp[14]; d[7 * MR + 5] = tmp[15];
        }
        for (; p < kc; p++) {
            float *d = ap + p * MR;
            for (long i = 0; i < MR; i++) d[i] = alpha * src[i * lda + p];
        }
    }
    if (full < mc) pack_a(transA, mc - full, kc, alpha, a + full * lda, lda, ap);
}
#endif

/* ---------------------------------------------------------------------------------------------- */
/* Micro-kernels: c[0..MR) x [0..NR) = beta * c + sum_p a[p] b[p]^T  (beta 0: c is not read)        */

typedef void (*micro_kernel_fn)(long kc, const float *a, const float *b, long ldbk, float *c, long ldc, float beta);

static void kernel_portable(long kc, const float *a, const float *b, long ldbk, float *c, long ldc, float beta) {
    float acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = 0.0f;
    for (long p = 0; p < kc; p++) {
        const float *ap = a + p * MR, *bp = b + p * ldbk;
        for (int i = 0; i < MR; i++) {
            float av = ap[i];
            for (int j = 0; j < NR; j++) acc[i][j] += av * bp[j];
        }
    }
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * ldc;
        if (beta == 0.0f) {
            for (int j = 0; j < NR; j++) ci[j] = acc[i][j];
        } else if (beta == 1.0f) {
            for (int j = 0; j < NR; j++) ci[j] += acc[i][j];
        } else {
            for (int j = 0; j < NR; j++) ci[j] = beta * ci[j] + acc[i][j];
        }
    }
}

#if defined(__x86_64__)
#define FMA_ROW(k, r)                                                         \
    {                                                                         \
        __m256 av = _mm256_broadcast_ss(a + (k) * MR + (r));                  \
        c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0);                           \
        c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1);                           \
    }
#define FMA_STEP(k)                                                           \
    {                                                                         \
        __m256 b0 = _mm256_loadu_ps(b + (k) * ldbk);                          \
        __m256 b1 = _mm256_loadu_ps(b + (k) * ldbk + 8);                      \
        FMA_ROW(k, 0) FMA_ROW(k, 1) FMA_ROW(k, 2)                             \
        FMA_ROW(k, 3) FMA_ROW(k, 4) FMA_ROW(k, 5)                             \
    }
#define STORE_ROW(r)                                                                             \
    {                                                                                            \
        float *cr = c + (r) * ldc;                                                               \
        if (beta == 0.0f) {                                                                      \
            _mm256_storeu_ps(cr, c##r##0);                                                       \
            _mm256_storeu_ps(cr + 8, c##r##1);                                                   \
        } else if (beta == 1.0f) {                                                               \
            _mm256_storeu_ps(cr, _mm256_add_ps(_mm256_loadu_ps(cr), c##r##0));                   \
            _mm256_storeu_ps(cr + 8, _mm256_add_ps(_mm256_loadu_ps(cr + 8), c##r##1));           \
        } else {                                                                                 \
            _mm256_storeu_ps(cr, _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(cr), c##r##0));          \
            _mm256_storeu_ps(cr + 8, _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(cr + 8), c##r##1));  \
        }                                                                                        \
    }

__attribute__((target("avx2,fma")))
static void kernel_avx2(long kc, const float *a, const float *b, long ldbk, float *c, long ldc, float beta) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int r = 0; r < MR; r++) _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
    long p = 0;
    for (; p + 4 <= kc; p += 4) {
        _mm_prefetch((const char *)(b + 8 * ldbk), _MM_HINT_T0);
        _mm_prefetch((const char *)(b + 9 * ldbk), _MM_HINT_T0);
        _mm_prefetch((const char *)(b + 10 * ldbk), _MM_HINT_T0);
        _mm_prefetch((const char *)(b + 11 * ldbk), _MM_HINT_T0);
        FMA_STEP(0) FMA_STEP(1) FMA_STEP(2) FMA_STEP(3)
        a += 4 * MR;
        b += 4 * ldbk;
    }
    for (; p < kc; p++) {
        FMA_STEP(0)
        a += MR;
        b += ldbk;
    }
    __m256 vbeta = _mm256_set1_ps(beta);
    STORE_ROW(0) STORE_ROW(1) STORE_ROW(2) STORE_ROW(3) STORE_ROW(4) STORE_ROW(5)
    (void)vbeta;
}

/* The same arithmetic on the left 8 columns only (each element sees the same FMA sequence as in
 * kernel_avx2): for the last column panel of a block when it holds at most 8 columns. */
#define FMA_ROW8(k, r)                                                        \
    {                                                                         \
        __m256 av = _mm256_broadcast_ss(a + (k) * MR + (r));                  \
        c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0);                           \
    }
#define FMA_STEP8(k)                                                          \
    {                                                                         \
        __m256 b0 = _mm256_loadu_ps(b + (k) * ldbk);                          \
        FMA_ROW8(k, 0) FMA_ROW8(k, 1) FMA_ROW8(k, 2)                          \
        FMA_ROW8(k, 3) FMA_ROW8(k, 4) FMA_ROW8(k, 5)                          \
    }
#define STORE_ROW8(r)                                                                            \
    {                                                                                            \
        float *cr = c + (r) * ldc;                                                               \
        if (beta == 0.0f) {                                                                      \
            _mm256_storeu_ps(cr, c##r##0);                                                       \
        } else if (beta == 1.0f) {                                                               \
            _mm256_storeu_ps(cr, _mm256_add_ps(_mm256_loadu_ps(cr), c##r##0));                   \
        } else {                                                                                 \
            _mm256_storeu_ps(cr, _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(cr), c##r##0));          \
        }                                                                                        \
    }

__attribute__((target("avx2,fma")))
static void kernel_avx2_narrow(long kc, const float *a, const float *b, long ldbk, float *c, long ldc, float beta) {
    __m256 c00 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps();
    long p = 0;
    for (; p + 4 <= kc; p += 4) {
        FMA_STEP8(0) FMA_STEP8(1) FMA_STEP8(2) FMA_STEP8(3)
        a += 4 * MR;
        b += 4 * ldbk;
    }
    for (; p < kc; p++) {
        FMA_STEP8(0)
        a += MR;
        b += ldbk;
    }
    __m256 vbeta = _mm256_set1_ps(beta);
    STORE_ROW8(0) STORE_ROW8(1) STORE_ROW8(2) STORE_ROW8(3) STORE_ROW8(4) STORE_ROW8(5)
    (void)vbeta;
}

/* AVX-512: one zmm is a 16-column row of a panel. `rows` (6 or 12: one or two A panels a0, a1) by
 * `np` (1 or 2: B panels b0, b1) tiles, each element with kernel_avx2's FMA sequence and store, so
 * the results are bit-identical to it. Constant arguments after inlining: the loops unroll and the
 * accumulators stay in registers. */
__attribute__((target("avx512f,avx2,fma"), always_inline))
static inline void tile_avx512(int rows, int np, long kc, const float *a0, const float *a1, const float *b0,
                               const float *b1, long ldbk, float *c, long ldc, float beta) {
    __m512 acc[12][2];
    for (int r = 0; r < rows; r++)
        for (int q = 0; q < np; q++) {
            acc[r][q] = _mm512_setzero_ps();
            _mm_prefetch((const char *)(c + r * ldc + q * NR), _MM_HINT_T0); /* C is read at the end */
        }
    for (long p = 0; p < kc; p++) {
        const __m512 v0 = _mm512_loadu_ps(b0 + p * ldbk);
        const __m512 v1 = np > 1 ? _mm512_loadu_ps(b1 + p * ldbk) : v0;
        for (int r = 0; r < rows; r++) {
            const __m512 av = _mm512_set1_ps(r < MR ? a0[p * MR + r] : a1[p * MR + r - MR]);
            acc[r][0] = _mm512_fmadd_ps(av, v0, acc[r][0]);
            if (np > 1) acc[r][1] = _mm512_fmadd_ps(av, v1, acc[r][1]);
        }
    }
    const __m512 vbeta = _mm512_set1_ps(beta);
    for (int r = 0; r < rows; r++)
        for (int q = 0; q < np; q++) {
            float *cr = c + r * ldc + q * NR;
            if (beta == 0.0f)
                _mm512_storeu_ps(cr, acc[r][q]);
            else if (beta == 1.0f)
                _mm512_storeu_ps(cr, _mm512_add_ps(_mm512_loadu_ps(cr), acc[r][q]));
            else
                _mm512_storeu_ps(cr, _mm512_fmadd_ps(vbeta, _mm512_loadu_ps(cr), acc[r][q]));
        }
}

__attribute__((target("avx512f,avx2,fma")))
static void kernel_avx512(long kc, const float *a, const float *b, long ldbk, float *c, long ldc, float beta) {
    tile_avx512(MR, 1, kc, a, NULL, b, NULL, ldbk, c, ldc, beta);
}

__attribute__((target("avx512f,avx2,fma")))
static void wide_avx512(long kc, const float *a0, const float *a1, const float *b0, const float *b1, long ldbk,
                        float *c, long ldc, float beta) {
    (void)a1;
    tile_avx512(MR, 2, kc, a0, NULL, b0, b1, ldbk, c, ldc, beta);
}

__attribute__((target("avx512f,avx2,fma")))
static void wide12_avx512(long kc, const float *a0, const float *a1, const float *b0, const float *b1, long ldbk,
                          float *c, long ldc, float beta) {
    tile_avx512(2 * MR, 2, kc, a0, a1, b0, b1, ldbk, c, ldc, beta);
}
#endif

/* ---------------------------------------------------------------------------------------------- */
/* Dispatch                                                                                       */

typedef void (*pack_a_fn)(int, long, long, float, const float *, long, float *);
typedef void (*pack_b_fn)(int, long, long, const float *, long, float *);

/* Two column panels at once (b0, b1: NR columns each) for MR rows (a0) or 2 * MR rows (a0, a1). */
typedef void (*wide_kernel_fn)(long kc, const float *a0, const float *a1, const float *b0, const float *b1,
                               long ldbk, float *c, long ldc, float beta);

struct gemm_impl {
    micro_kernel_fn kernel;
    micro_kernel_fn narrow; /* MR x 8 with the same per-element arithmetic, or NULL */
    wide_kernel_fn wide;    /* MR x 2NR, or NULL */
    wide_kernel_fn wide12;  /* 2MR x 2NR, or NULL */
    pack_a_fn pack_a;
    pack_b_fn pack_b;
};

static const struct gemm_impl impl_portable = {kernel_portable, NULL, NULL, NULL, pack_a, pack_b_portable};
#if defined(__x86_64__)
static const struct gemm_impl impl_avx2 = {kernel_avx2, kernel_avx2_narrow, NULL, NULL, pack_a_avx2, pack_b_avx2};
static const struct gemm_impl impl_avx512 = {kernel_avx512, kernel_avx2_narrow, wide_avx512, wide12_avx512,
                                             pack_a_avx2, pack_b_avx2};
#endif

static const struct gemm_impl *choose_impl(int level) {
#if defined(__x86_64__)
    if (cn_at_least(level, CN_KERNELS_AVX512)) return &impl_avx512;
    if (cn_at_least(level, CN_KERNELS_AVX2)) return &impl_avx2;
#else
    (void)level;
#endif
    return &impl_portable;
}

/* ---------------------------------------------------------------------------------------------- */
/* Driver                                                                                         */

static void scale_c(long M, long N, float beta, float *C, long ldc) {
    for (long i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f) {
            for (long j = 0; j < N; j++) c[j] = 0.0f;
        } else if (beta != 1.0f) {
            for (long j = 0; j < N; j++) c[j] *= beta;
        }
    }
}

/* Rows [ir0, mc) of one column panel (nr <= NR columns) into c (row 0 of the block): full tiles in
 * place, partial ones through a copy with the same kernel, so the arithmetic matches. */
static void panel_rows(const struct gemm_impl *impl, long kc, const float *ap, long mc, long ir0, const float *bPanel,
                       long ldbk, long nr, float *c, long ldc, float beta) {
    float tile[MR * NR] __attribute__((aligned(64)));
    for (long ir = ir0; ir < mc; ir += MR) {
        long mr = mc - ir < MR ? mc - ir : MR;
        const float *aPanel = ap + ir * kc;
        float *ct = c + ir * ldc;
        if (mr == MR && nr == NR) {
            impl->kernel(kc, aPanel, bPanel, ldbk, ct, ldc, beta);
            continue;
        }
        if (beta != 0.0f)
            for (long i = 0; i < mr; i++) memcpy(tile + i * NR, ct + i * ldc, (size_t)nr * sizeof(float));
        if (nr <= 8 && impl->narrow)
            impl->narrow(kc, aPanel, bPanel, ldbk, tile, NR, beta);
        else
            impl->kernel(kc, aPanel, bPanel, ldbk, tile, NR, beta);
        for (long i = 0; i < mr; i++) memcpy(ct + i * ldc, tile + i * NR, (size_t)nr * sizeof(float));
    }
}

void cn_sgemm(int level, int transA, int transB, long M, long N, long K, float alpha,
              const float *A, long lda, const float *B, long ldb,
              float beta, float *C, long ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    const struct gemm_impl *impl = choose_impl(level);
    const long kcMax = depth_block(K);
    long ncMax = B_PANEL_FLOATS / kcMax / NR * NR;
    if (ncMax < NR) ncMax = NR;
    long nPanels = (N + NR - 1) / NR * NR;
    if (ncMax > nPanels) ncMax = nPanels;
    long mcMax = MC;
    if (mcMax > (M + MR - 1) / MR * MR) mcMax = (M + MR - 1) / MR * MR;

    struct pack_buffers *buffers = thread_buffers();
    float *bp = grow(&buffers->b, &buffers->capB, (size_t)(kcMax * ncMax));
    float *ap = grow(&buffers->a, &buffers->capA, (size_t)(kcMax * mcMax));
    if (!bp || !ap) abort();

    for (long jc = 0; jc < N; jc += ncMax) {
        long nc = N - jc < ncMax ? N - jc : ncMax;
        for (long pc = 0; pc < K; pc += kcMax) {
            long kc = K - pc < kcMax ? K - pc : kcMax;
            float blockBeta = pc == 0 ? beta : 1.0f;
            const float *bBlock = transB ? B + jc * ldb + pc : B + pc * ldb + jc;
            /* Few rows: each B element is used by few row panels, so packing B costs more than
             * it saves. Full column panels of a non-transposed B are then read in place. */
            const int directB = !transB && M <= SMALL_M;
            if (!directB) impl->pack_b(transB, kc, nc, bBlock, ldb, bp);
            for (long ic = 0; ic < M; ic += mcMax) {
                long mc = M - ic < mcMax ? M - ic : mcMax;
                const float *aBlock = transA ? A + pc * lda + ic : A + ic * lda + pc;
                impl->pack_a(transA, mc, kc, alpha, aBlock, lda, ap);
                for (long jr = 0; jr < nc;) {
                    float *c = C + ic * ldc + jc + jr;
                    if (impl->wide && nc - jr >= 2 * NR) {
                        /* Two full column panels, read in place or packed. */
                        const float *b0 = directB ? bBlock + jr : bp + jr * kc;
                        const float *b1 = directB ? b0 + NR : b0 + NR * kc;
                        const long ldbk = directB ? ldb : NR;
                        long ir = 0;
                        for (; ir + 2 * MR <= mc; ir += 2 * MR)
                            impl->wide12(kc, ap + ir * kc, ap + (ir + MR) * kc, b0, b1, ldbk, c + ir * ldc, ldc,
                                         blockBeta);
                        for (; ir + MR <= mc; ir += MR)
                            impl->wide(kc, ap + ir * kc, NULL, b0, b1, ldbk, c + ir * ldc, ldc, blockBeta);
                        if (ir < mc) {
                            panel_rows(impl, kc, ap, mc, ir, b0, ldbk, NR, c, ldc, blockBeta);
                            panel_rows(impl, kc, ap, mc, ir, b1, ldbk, NR, c + NR, ldc, blockBeta);
                        }
                        jr += 2 * NR;
                        continue;
                    }
                    long nr = nc - jr < NR ? nc - jr : NR;
                    const float *bPanel = bp + jr * kc;
                    long ldbk = NR;
                    if (directB) {
                        if (nr == NR) {
                            bPanel = bBlock + jr;
                            ldbk = ldb;
                        } else {
                            impl->pack_b(transB, kc, nr, bBlock + jr, ldb, bp);
                            bPanel = bp;
                        }
                    }
                    panel_rows(impl, kc, ap, mc, 0, bPanel, ldbk, nr, c, ldc, blockBeta);
                    jr += NR;
                }
            }
        }
    }
}
