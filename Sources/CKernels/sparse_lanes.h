/*
 * The pooled backward's vector kernels, one source for both widths: sparse.c includes this file once per
 * width, with VEC (a vector of LANES floats, 8 or 16), its operations (VLOAD, VSTORE, VSET1, VFMA), the
 * target (SPARSE_TARGET) and a name maker (SPARSE_NAME(x): x with the width's suffix) defined; the file
 * undefines them at its end. Kernel rows are `lanes` floats, a multiple of LANES; each element sees one
 * fused multiply-add per entry, in entry order, at either width (so the results are bit-identical).
 */

/* dwp[..][k * LANES + l] += v * x[off[k] + l] for nv (constant after inlining) vectors kept in
 * registers, over entries [begin, end). */
__attribute__((target(SPARSE_TARGET), always_inline))
static inline void SPARSE_NAME(dw_block)(int nv, const struct pool_entry *e, long begin, long end, const float *xpad,
                                         const long *off, float *d) {
    VEC acc[12];
    for (int k = 0; k < nv; k++) acc[k] = VLOAD(d + k * LANES);
    for (long i = begin; i < end; i++) {
        const VEC v = VSET1(e[i].value);
        const float *x = xpad + e[i].offset;
        for (int k = 0; k < nv; k++) acc[k] = VFMA(v, VLOAD(x + off[k]), acc[k]);
    }
    for (int k = 0; k < nv; k++) VSTORE(d + k * LANES, acc[k]);
}

/* Weight gradient: blocks of up to 12 vectors (12 kernel rows of 8 lanes, 6 of 16 with AVX2; 12 rows of
 * 16 with AVX-512: tf-cnn's 10x10 kernel whole), each passing over a channel's entries once. */
__attribute__((target(SPARSE_TARGET)))
static void SPARSE_NAME(dw)(const float *xpad, const int *rowOffset, long rows, long lanes, const void *list, long OC,
                            float *dwp) {
    const long *counts = list_counts_const(list);
    const struct pool_entry *e = list_entries_const(list, OC);
    const long vectorsPerRow = lanes / LANES, vectors = rows * vectorsPerRow;
    for (long o = 0; o < OC; o++) {
        const long begin = counts[o], end = counts[o + 1];
        if (begin == end) continue;
        for (long k0 = 0; k0 < vectors; k0 += 12) {
            float *d = dwp + o * vectors * LANES + k0 * LANES;
            long off[12];
            long nv = vectors - k0 < 12 ? vectors - k0 : 12;
            for (long k = 0; k < nv; k++) {
                long vk = k0 + k;
                off[k] = rowOffset[vk / vectorsPerRow] + (vk % vectorsPerRow) * LANES;
            }
#define DW_CASE(n) \
    case n: SPARSE_NAME(dw_block)(n, e, begin, end, xpad, off, d); break;
            switch (nv) {
            DW_CASE(12) DW_CASE(11) DW_CASE(10) DW_CASE(9) DW_CASE(8) DW_CASE(7)
            DW_CASE(6) DW_CASE(5) DW_CASE(4) DW_CASE(3) DW_CASE(2)
            default: SPARSE_NAME(dw_block)(1, e, begin, end, xpad, off, d); break;
            }
#undef DW_CASE
        }
    }
}

/* Input gradient: one vector read-modify-write per LANES floats of a kernel row. */
__attribute__((target(SPARSE_TARGET)))
static void SPARSE_NAME(dx)(float *dxpad, const int *rowOffset, long rows, long lanes, const void *list, long OC,
                            const float *wp) {
    const long *counts = list_counts_const(list);
    const struct pool_entry *e = list_entries_const(list, OC);
    for (long o = 0; o < OC; o++) {
        const float *w = wp + o * rows * lanes;
        for (long i = counts[o]; i < counts[o + 1]; i++) {
            const VEC v = VSET1(e[i].value);
            float *x = dxpad + e[i].offset;
            if (lanes == LANES) {
                for (long r = 0; r < rows; r++) {
                    float *xr = x + rowOffset[r];
                    VSTORE(xr, VFMA(v, VLOAD(w + r * LANES), VLOAD(xr)));
                }
            } else {
                for (long r = 0; r < rows; r++) {
                    float *xr = x + rowOffset[r];
                    const float *wr = w + r * lanes;
                    for (long l = 0; l < lanes; l += LANES) VSTORE(xr + l, VFMA(v, VLOAD(wr + l), VLOAD(xr + l)));
                }
            }
        }
    }
}

#undef VEC
#undef LANES
#undef VLOAD
#undef VSTORE
#undef VSET1
#undef VFMA
#undef SPARSE_TARGET
#undef SPARSE_NAME
