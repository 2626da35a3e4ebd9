import CKernels

/// Single-precision matrix multiply on row-major buffers (the one entry point every layer uses).
public enum Gemm {
    /// `C = alpha * op(A) * op(B) + beta * C`, where op(A) is m x k and op(B) is k x n.
    /// With `transA`, A is stored k x m; with `transB`, B is stored n x k. `lda`, `ldb`, `ldc` are the
    /// stored row strides. With `beta == 0`, C is not read (it may hold anything, NaN included).
    ///
    /// Large products are split into `context.threads` disjoint blocks of C (rows or columns, whichever
    /// dimension is longer); every element is computed with the same arithmetic whatever the split, so
    /// the result is bit-identical for any thread count. The kernels are `context.kernelLevel`'s.
    public static func multiply(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int, context: ExecutionContext
    ) {
        if m <= 0 || n <= 0 { return }
        let level = context.kernelLevel, threads = context.threads
        if threads <= 1 || m &* n &* max(k, 1) < parallelThreshold {
            kernel(level: level, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
        // Split the longer side of C; the other operand is packed by every thread, so this keeps the
        // redundant packing small. Blocks are aligned to the micro-kernel's tile (6 rows, 16 columns).
        let splitRows = m >= n
        let align = splitRows ? 6 : 16
        let length = splitRows ? m : n
        let tiles = (length &+ align &- 1) / align
        let parts = min(threads, tiles)
        if parts <= 1 {
            kernel(level: level, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
        let pa = UncheckedSendable(a), pb = UncheckedSendable(b), pc = UncheckedSendable(c)
        context.parallelFor(parts) { part in
            let first = tiles &* part / parts &* align
            let last = min(length, tiles &* (part &+ 1) / parts &* align)
            if last <= first { return }
            if splitRows {
                let aOffset = transA ? first : first &* lda
                kernel(
                    level: level, transA, transB, last &- first, n, k, alpha, pa.value + aOffset, lda, pb.value, ldb, beta,
                    pc.value + first &* ldc, ldc)
            } else {
                let bOffset = transB ? first &* ldb : first
                kernel(
                    level: level, transA, transB, m, last &- first, k, alpha, pa.value, lda, pb.value + bOffset, ldb, beta,
                    pc.value + first, ldc)
            }
        }
    }

    /// Products with fewer multiply-adds than this (m * n * k) stay on the calling thread.
    static let parallelThreshold = 1 << 21

    /// One single-threaded call of the C kernel at `level` (at most `cpuKernelLevel`).
    @inline(__always)
    static func kernel(
        level: KernelLevel, _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int
    ) {
        cn_sgemm(Int32(level.rawValue), transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }

    /// `C = A * B^T` (or `C += A * B^T` with `accumulate`), A m x k and B n x k with rows contiguous in k:
    /// one dot product per element, single-threaded. Faster than the packed kernel for short, wide
    /// products with few columns (a small convolution's weight gradient: n = patch, k = pixels). Each
    /// element's arithmetic depends on k only. `level`: at most `cpuKernelLevel`.
    @inline(__always)
    static func dotNT(
        level: KernelLevel, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, accumulate: Bool, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cn_sgemm_nt_dot(Int32(level.rawValue), m, n, k, a, lda, b, ldb, accumulate ? 1 : 0, c, ldc)
    }

    /// Whether a CPU with this CPUID vendor string and leaf-1 EAX runs AVX-512 at half width (AMD Zen
    /// 3/4), where the AVX2 kernels are the automatic choice.
    static func avx512RunsAtHalfWidth(vendor: String, leaf1EAX: UInt32) -> Bool {
        let bytes = Array(vendor.utf8.prefix(12)) + [UInt8](repeating: 0, count: max(0, 12 - vendor.utf8.count))
        return bytes.withUnsafeBufferPointer { p in
            p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: 12) { cn_avx512_half_width($0, leaf1EAX) != 0 }
        }
    }

    /// The best kernels this CPU runs.
    public static let cpuKernelLevel = KernelLevel(rawValue: Int(cn_cpu_kernel_level())) ?? .portable

    /// The kernels this CPU prefers: `cpuKernelLevel`, except AVX2 where AVX-512 runs at half width
    /// (AMD Zen 3/4).
    public static let defaultKernelLevel = KernelLevel(rawValue: Int(cn_default_kernel_level())) ?? .portable

    /// Slow, obviously correct reference: the test oracle for `multiply`.
    public static func reference(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: [Float], lda: Int, b: [Float], ldb: Int, beta: Float, c: inout [Float], ldc: Int
    ) {
        for i in 0..<m {
            for j in 0..<n {
                var sum: Double = 0
                for p in 0..<k {
                    let av = transA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                    sum += Double(av) * Double(bv)
                }
                let old = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
                c[i * ldc + j] = Float(Double(alpha) * sum + old)
            }
        }
    }
}

/// The kernel families of `CKernels`, chosen at run time from the CPU. AVX2 and AVX-512 give
/// bit-identical results (the same fused multiply-adds per element); the portable kernels round differently.
public enum KernelLevel: Int, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    case portable = 0
    case avx2 = 1
    case avx512 = 2

    public static func < (a: KernelLevel, b: KernelLevel) -> Bool { a.rawValue < b.rawValue }

    /// The name `--kernels` takes.
    public var name: String {
        switch self {
        case .portable: "portable"
        case .avx2: "avx2"
        case .avx512: "avx512"
        }
    }

    public var description: String {
        switch self {
        case .portable: "portable C"
        case .avx2: "AVX2+FMA"
        case .avx512: "AVX-512"
        }
    }

    /// The level named `name` (`portable`, `avx2`, `avx512`).
    public init(named name: String) throws {
        guard let level = KernelLevel.allCases.first(where: { $0.name == name.lowercased() }) else {
            throw ValueError.invalidArgument(
                "unknown kernels '\(name)'; choose one of \(KernelLevel.allCases.map(\.name).joined(separator: ", "))")
        }
        self = level
    }
}
