import Testing
@testable import ConvNet

/// The dot-product kernel for C (+)= A * B^T (a small convolution's weight gradient) against
/// `Gemm.reference`, AVX2 and portable, odd sizes and padded strides.
@Suite("Dot kernel")
struct DotKernelTests {
    @Test("dotNT matches the reference", arguments: KernelLevel.allCases)
    func dotNT(kernels: KernelLevel) {
        guard KernelTests.kernelChoices.contains(kernels) else { return }
        var random = SeededGenerator(seed: 31)
        let sizes = [(1, 1, 1), (3, 9, 196), (2, 4, 8), (5, 7, 13), (6, 25, 37), (7, 3, 100), (1, 130, 9)]
        for (m, n, k) in sizes {
            for accumulate in [false, true] {
                let pad = 3
                let lda = k + pad, ldb = k + 1, ldc = n + 2
                let a = KernelTests.randomArray(m * lda, &random), b = KernelTests.randomArray(n * ldb, &random)
                var c = KernelTests.randomArray(m * ldc, &random)
                if !accumulate { for i in 0..<c.count { c[i] = .nan } }
                var expected = c
                Gemm.reference(
                    transA: false, transB: true, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb,
                    beta: accumulate ? 1 : 0, c: &expected, ldc: ldc)
                a.withUnsafeBufferPointer { pa in
                    b.withUnsafeBufferPointer { pb in
                        c.withUnsafeMutableBufferPointer { pc in
                            Gemm.dotNT(
                                level: kernels, m: m, n: n, k: k, a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                                accumulate: accumulate, c: pc.baseAddress!, ldc: ldc)
                        }
                    }
                }
                for i in 0..<m {
                    for j in 0..<n {
                        let d = abs(c[i * ldc + j] - expected[i * ldc + j])
                        #expect(d <= 2e-6 * Float(k) + 1e-5, "\(m)x\(n)x\(k) accumulate \(accumulate) (\(i), \(j))")
                    }
                    // Padding columns of C are never touched.
                    for j in n..<ldc where accumulate { #expect(c[i * ldc + j] == expected[i * ldc + j]) }
                }
            }
        }
    }
}
