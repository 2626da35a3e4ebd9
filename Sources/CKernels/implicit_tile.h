/*
 * The implicit GEMM's tile, one source for every vector width: implicit.c includes this file once per
 * width, with the width's vector type and operations defined (VEC of LANES floats; VLOAD, VSTORE,
 * VZERO, VSET1, VFMA), the function's name (TILE_NAME) and attributes (TILE_ATTRIBUTES: its target
 * and always_inline); the file undefines them at its end. Callers pass constant `rows` (6 or 12) and
 * `np` (1 or 2), so after inlining the loops unroll and the accumulators stay in registers, as in
 * gemm.c's tile_avx512.
 *
 * C_q[r][0..16) (+)= sum_{s < S} A[ro[r] + red[s]] * B_q[s][0..16) for r < rows, q < np (panels B0, B1
 * into C0, C1): every element sees one multiply-add per reduction step, in order, at every width.
 */
TILE_ATTRIBUTES
static inline void TILE_NAME(int rows, int np, const float *A, const int *ro, const int *red, long S,
                             const float *B0, const float *B1, float *C0, float *C1, int accumulate) {
    enum { V = PANEL / LANES }; /* vectors per 16-wide panel row */
    const float *a[2 * TILE_ROWS];
    VEC acc[2 * TILE_ROWS][2][V];
    for (int r = 0; r < rows; r++) {
        a[r] = A + ro[r];
        for (int q = 0; q < np; q++)
            for (int v = 0; v < V; v++)
                acc[r][q][v] = accumulate ? VLOAD((q ? C1 : C0) + r * PANEL + v * LANES) : VZERO;
    }
    for (long s = 0; s < S; s++) {
        const long o = red[s];
        VEC b[2][V];
        for (int q = 0; q < np; q++)
            for (int v = 0; v < V; v++) b[q][v] = VLOAD((q ? B1 : B0) + s * PANEL + v * LANES);
        for (int r = 0; r < rows; r++) {
            const VEC x = VSET1(a[r][o]);
            for (int q = 0; q < np; q++)
                for (int v = 0; v < V; v++) acc[r][q][v] = VFMA(x, b[q][v], acc[r][q][v]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int q = 0; q < np; q++)
            for (int v = 0; v < V; v++) VSTORE((q ? C1 : C0) + r * PANEL + v * LANES, acc[r][q][v]);
}

#undef TILE_ATTRIBUTES
#undef TILE_NAME
#undef VEC
#undef LANES
#undef VLOAD
#undef VSTORE
#undef VZERO
#undef VSET1
#undef VFMA
