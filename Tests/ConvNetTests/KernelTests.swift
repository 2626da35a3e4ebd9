import Testing
@testable import ConvNet

/// The fast kernels (packed GEMM, threaded batch-split convolution, im2col) against the slow references.
/// Every call gets its thread count, kernels and forced paths in its `ExecutionContext`, so the suite runs
/// in parallel with the others.
@Suite("Kernels")
struct KernelTests {
    static func randomArray(_ count: Int, _ random: inout SeededGenerator) -> [Float] {
        (0..<count).map { _ in random.uniform(-1, 1) }
    }

    static func randomTensor(_ shape: [Int], _ random: inout SeededGenerator) -> Tensor {
        try! Tensor(shape: shape, scalars: randomArray(shape.reduce(1, *), &random))
    }

    /// A context of `t` threads running the `kernels` kernels with `choices` forced; its convolutions split
    /// even the tests' small batches across the threads (they would stay on one thread otherwise).
    static func context(
        threads t: Int = 1, kernels: KernelLevel = .preferred, choices: ConvPlan.Choices = ConvPlan.Choices()
    ) -> ExecutionContext {
        ExecutionContext(threads: t, kernelLevel: kernels, convolution: choices, minParallelMACs: 0)
    }

    /// The kernels to exercise: the portable C kernels always, AVX2+FMA and AVX-512 where the CPU has them.
    static var kernelChoices: [KernelLevel] { KernelLevel.allCases.filter { $0 <= KernelLevel.cpu } }

    /// One GEMM against `Gemm.reference`; returns the fast result.
    @discardableResult
    static func checkGemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, beta: Float, pad: Int,
        seed: UInt64, context: ExecutionContext = context(), sourceLocation: SourceLocation = #_sourceLocation
    ) -> [Float] {
        var random = SeededGenerator(seed: seed)
        let aRows = transA ? k : m, aCols = transA ? m : k
        let bRows = transB ? n : k, bCols = transB ? k : n
        let lda = aCols + pad, ldb = bCols + pad, ldc = n + pad
        let a = randomArray(aRows * lda, &random), b = randomArray(bRows * ldb, &random)
        var c = randomArray(m * ldc, &random)
        if beta == 0 {
            // C must not be read when beta is 0: NaN must not leak through.
            for i in 0..<c.count { c[i] = .nan }
        }
        var expected = c
        Gemm.reference(
            transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
            beta: beta, c: &expected, ldc: ldc)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    Gemm.multiply(
                        transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: pa.baseAddress!,
                        lda: lda, b: pb.baseAddress!, ldb: ldb, beta: beta, c: pc.baseAddress!, ldc: ldc, context: context)
                }
            }
        }
        let tolerance = 2e-6 * Float(k) + 1e-5
        var worst: Float = 0
        for i in 0..<m {
            for j in 0..<n {
                let d = abs(c[i * ldc + j] - expected[i * ldc + j])
                worst = d.isNaN ? .infinity : max(worst, d)
            }
            // Padding columns of C are never touched.
            for j in n..<ldc where beta != 0 {
                #expect(c[i * ldc + j] == expected[i * ldc + j], sourceLocation: sourceLocation)
            }
        }
        #expect(
            worst <= tolerance,
            "transA \(transA) transB \(transB) \(m)x\(n)x\(k) alpha \(alpha) beta \(beta) pad \(pad): error \(worst)",
            sourceLocation: sourceLocation)
        return c
    }

    @Test("GEMM: all transpose cases, odd sizes, alpha/beta, padded strides", arguments: KernelLevel.allCases)
    func gemmCases(kernels: KernelLevel) {
        guard Self.kernelChoices.contains(kernels) else { return }
        gemmCases(Self.context(kernels: kernels))
    }

    func gemmCases(_ context: ExecutionContext) {
            let sizes: [(Int, Int, Int)] = [
                (1, 1, 1), (1, 5, 17), (5, 1, 3), (6, 16, 8), (7, 17, 9), (17, 33, 5), (33, 17, 67), (67, 5, 33),
                (12, 32, 1), (13, 47, 64),
            ]
            let scalings: [(Float, Float)] = [(1, 0), (1, 1), (0.5, -1.25), (-2, 0)]
            var seed: UInt64 = 1
            for transA in [false, true] {
                for transB in [false, true] {
                    for (m, n, k) in sizes {
                        for (alpha, beta) in scalings {
                            for pad in [0, 3] {
                                seed &+= 1
                                Self.checkGemm(
                                    transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta,
                                    pad: pad, seed: seed, context: context)
                            }
                        }
                    }
                }
            }
    }

    @Test("GEMM: depth above one block (K blocked), zero K and zero alpha")
    func gemmDeepAndDegenerate() {
        for transA in [false, true] {
            for transB in [false, true] {
                Self.checkGemm(transA: transA, transB: transB, m: 7, n: 19, k: 1100, alpha: 1, beta: 0.5, pad: 1, seed: 7)
                Self.checkGemm(transA: transA, transB: transB, m: 5, n: 3, k: 0, alpha: 1, beta: 0.5, pad: 0, seed: 8)
                Self.checkGemm(transA: transA, transB: transB, m: 5, n: 3, k: 0, alpha: 1, beta: 0, pad: 0, seed: 9)
                Self.checkGemm(transA: transA, transB: transB, m: 4, n: 9, k: 6, alpha: 0, beta: 2, pad: 0, seed: 10)
            }
        }
    }

    @Test("AVX2 is the automatic choice only where AVX-512 runs at half width (AMD family 0x19)")
    func halfWidthAVX512() {
        // CPUID leaf 1 EAX: Zen 4 (Genoa), Zen 3 (Milan), Zen 5 (Turin), Zen 2, an Intel Sapphire Rapids.
        #expect(Gemm.avx512RunsAtHalfWidth(vendor: "AuthenticAMD", leaf1EAX: 0x00A1_0F11))
        #expect(Gemm.avx512RunsAtHalfWidth(vendor: "AuthenticAMD", leaf1EAX: 0x00A0_0F11))
        #expect(!Gemm.avx512RunsAtHalfWidth(vendor: "AuthenticAMD", leaf1EAX: 0x00B0_0F21))
        #expect(!Gemm.avx512RunsAtHalfWidth(vendor: "AuthenticAMD", leaf1EAX: 0x0083_0F10))
        #expect(!Gemm.avx512RunsAtHalfWidth(vendor: "GenuineIntel", leaf1EAX: 0x0008_06F8))
        #expect(KernelLevel.preferred <= KernelLevel.cpu)
        #expect(KernelLevel.preferred >= min(KernelLevel.cpu, .avx2))
        #expect(ExecutionContext().kernelLevel == KernelLevel.preferred)
        // A context never asks for more than the CPU runs.
        #expect(ExecutionContext(kernelLevel: .avx512).kernelLevel == min(.avx512, KernelLevel.cpu))
    }

    @Test("GEMM: the AVX-512 kernel's products equal the AVX2 kernel's bit for bit")
    func gemmAVX512MatchesAVX2() {
        guard KernelLevel.cpu >= .avx512 else { return }
        // Tiles of 12 and 6 rows, 32, 16 and 8 columns, short and blocked depths, alpha and beta,
        // B read in place (few rows) and packed.
        let shapes = [(12, 32, 9), (13, 47, 64), (37, 611, 97), (131, 127, 130), (7, 19, 1100), (64, 80, 33), (200, 40, 600)]
        for (m, n, k) in shapes {
            for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
                for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1), (-2, 0.25)] {
                    let results = [KernelLevel.avx2, .avx512].map { level in
                        Self.checkGemm(
                            transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta, pad: 1,
                            seed: UInt64(m * n + k), context: Self.context(kernels: level))
                    }
                    // Bit patterns: the padding columns of C hold NaN when beta is 0.
                    #expect(
                        results[0].map(\.bitPattern) == results[1].map(\.bitPattern),
                        "\(m)x\(n)x\(k) transA \(transA) transB \(transB) alpha \(alpha) beta \(beta)")
                }
            }
        }
    }

    @Test("GEMM: threaded products equal the single-threaded ones bit for bit")
    func gemmThreadsAgree() {
        // Large enough (m * n * k >= the threading threshold) to be split; rows split, then columns.
        for (m, n, k) in [(131, 127, 130), (37, 611, 97)] {
            for (transA, transB) in [(false, false), (true, true), (false, true)] {
                let one = Self.checkGemm(
                    transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, beta: 1, pad: 2, seed: 42, context: Self.context(threads: 1))
                for t in [2, 3] {
                    let many = Self.checkGemm(
                        transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, beta: 1, pad: 2, seed: 42, context: Self.context(threads: t))
                    #expect(one == many, "\(m)x\(n)x\(k) with \(t) threads differs from 1 thread")
                }
            }
        }
    }

    struct ConvCase: CustomTestStringConvertible, Sendable {
        var batch: Int, channels: Int, height: Int, width: Int, filters: Int
        var kernel: (Int, Int), stride: (Int, Int), padding: Padding
        var testDescription: String {
            "n\(batch) c\(channels) \(height)x\(width) -> \(filters) k\(kernel.0)x\(kernel.1) s\(stride.0)x\(stride.1) \(padding)"
        }
    }

    static let convCases: [ConvCase] = [
        ConvCase(batch: 1, channels: 1, height: 7, width: 9, filters: 2, kernel: (3, 3), stride: (1, 1), padding: .valid),
        ConvCase(batch: 3, channels: 2, height: 9, width: 8, filters: 3, kernel: (3, 2), stride: (2, 2), padding: .symmetric(1)),
        ConvCase(batch: 3, channels: 3, height: 6, width: 5, filters: 4, kernel: (1, 1), stride: (1, 1), padding: .valid),
        ConvCase(batch: 2, channels: 2, height: 7, width: 5, filters: 3, kernel: (1, 1), stride: (2, 2), padding: .valid),
        ConvCase(
            batch: 3, channels: 2, height: 8, width: 7, filters: 5, kernel: (2, 3), stride: (1, 2),
            padding: .explicit(top: 1, left: 0, bottom: 2, right: 1)),
        ConvCase(batch: 3, channels: 2, height: 11, width: 10, filters: 3, kernel: (5, 5), stride: (2, 2), padding: .same),
        ConvCase(batch: 1, channels: 3, height: 5, width: 6, filters: 17, kernel: (3, 3), stride: (1, 1), padding: .same),
        ConvCase(batch: 3, channels: 1, height: 12, width: 13, filters: 4, kernel: (10, 10), stride: (1, 1), padding: .valid),
        ConvCase(batch: 4, channels: 1, height: 10, width: 10, filters: 6, kernel: (5, 5), stride: (1, 1), padding: .symmetric(2)),
        ConvCase(
            batch: 2, channels: 2, height: 9, width: 11, filters: 3, kernel: (3, 4), stride: (3, 3),
            padding: .explicit(top: 2, left: 3, bottom: 0, right: 2)),
        ConvCase(batch: 3, channels: 2, height: 4, width: 3, filters: 2, kernel: (3, 3), stride: (1, 1), padding: .symmetric(3)),
        // Rows of 8 floats or more: the vector copies and their overlapping last store in im2col.
        ConvCase(batch: 2, channels: 2, height: 13, width: 29, filters: 5, kernel: (3, 3), stride: (1, 1), padding: .symmetric(1)),
        ConvCase(batch: 2, channels: 1, height: 20, width: 28, filters: 3, kernel: (10, 10), stride: (1, 1), padding: .same),
        ConvCase(batch: 2, channels: 2, height: 11, width: 19, filters: 3, kernel: (3, 1), stride: (1, 1), padding: .valid),
        ConvCase(batch: 2, channels: 1, height: 17, width: 35, filters: 2, kernel: (5, 5), stride: (2, 2), padding: .symmetric(2)),
        // One channel, stride 1 (the direct forward kernel, forced: the measured rule takes im2col here):
        // filters past one block of 6, a partial block of 16 columns.
        ConvCase(batch: 2, channels: 1, height: 9, width: 21, filters: 13, kernel: (3, 3), stride: (1, 1), padding: .symmetric(1)),
        // Patch above 128, where the measured rule takes the packed GEMM for the weight gradient.
        ConvCase(batch: 3, channels: 6, height: 9, width: 8, filters: 7, kernel: (5, 5), stride: (1, 1), padding: .symmetric(1)),
        // Implicit GEMM: channel counts past one and two 16-wide panels (partial panels on both sides),
        // pixel and tap counts that are not multiples of 6, strides, and padding up to kernel - 1.
        ConvCase(batch: 3, channels: 18, height: 7, width: 9, filters: 20, kernel: (3, 3), stride: (1, 1), padding: .symmetric(1)),
        ConvCase(batch: 2, channels: 17, height: 6, width: 5, filters: 33, kernel: (2, 2), stride: (2, 1), padding: .valid),
        ConvCase(
            batch: 3, channels: 32, height: 7, width: 7, filters: 16, kernel: (5, 5), stride: (1, 1),
            padding: .explicit(top: 4, left: 2, bottom: 0, right: 3)),
        // Winograd F(2x2, 3x3): odd output sizes (partial tiles), odd channel counts, asymmetric padding
        // (padding 0 on one side, 2 on the other: the input gradient's shift runs from 2 down to 0).
        ConvCase(
            batch: 3, channels: 5, height: 10, width: 7, filters: 7, kernel: (3, 3), stride: (1, 1),
            padding: .explicit(top: 0, left: 2, bottom: 1, right: 0)),
    ]

    /// Plans the convolution tests force (`ExecutionContext.convolution`): the measured rules, then every forward,
    /// weight-gradient and input-gradient path at least once where the geometry allows it, and each
    /// measured choice replaced by another.
    static let forcedPlans: [(label: String, choices: ConvPlan.Choices)] = [
        ("measured", ConvPlan.Choices()),
        ("direct, dot, col2im", ConvPlan.Choices(forward: .direct, weightGradient: .dot, inputGradient: .col2im)),
        ("im2col, gemm, col2im", ConvPlan.Choices(forward: .im2col, weightGradient: .gemm, inputGradient: .col2im)),
        ("implicit everywhere", ConvPlan.Choices(forward: .implicit, weightGradient: .implicit, inputGradient: .implicit)),
        ("im2col, implicit, col2im", ConvPlan.Choices(forward: .im2col, weightGradient: .implicit, inputGradient: .col2im)),
        // The measured weight gradient: implicit for several channels, dot products for one.
        ("winograd forward and input gradient", ConvPlan.Choices(forward: .winograd, inputGradient: .winograd)),
        ("winograd, gemm weight gradient", ConvPlan.Choices(forward: .winograd, weightGradient: .gemm, inputGradient: .winograd)),
        ("winograd everywhere", ConvPlan.Choices(forward: .winograd, weightGradient: .winograd, inputGradient: .winograd)),
        // The Winograd weight gradient with a col2im input gradient (the column executor without dW).
        ("implicit, winograd weight gradient, col2im", ConvPlan.Choices(forward: .implicit, weightGradient: .winograd, inputGradient: .col2im)),
    ]

    /// The forced choices are taken wherever the geometry allows them.
    static func expectForced(_ choices: ConvPlan.Choices, _ g: ConvGeometry, batch: Int, _ label: String) {
        let plan = ConvPlan(g, batch: batch, context: context(choices: choices))
        let direct = g.inChannels == 1 && g.strideH == 1 && g.strideW == 1 && !g.isPointwise
        if let f = choices.forward {
            let allowed = f == .direct ? direct : f == .winograd ? WinogradPlan.allows(g) : true
            #expect((plan.forward == f) == allowed, "\(label): forward \(plan.forward)")
        }
        if let w = choices.weightGradient {
            let allowed = w == .winograd ? WinogradPlan.allows(g) : true
            #expect((plan.weightGradient == w) == allowed, "\(label): weight gradient \(plan.weightGradient)")
        }
        if let i = choices.inputGradient {
            let allowed = switch i {
            case .col2im: true
            case .implicit: plan.weightGradient == .implicit && ImplicitConvPlan.hasInputGradient(g)
            case .winograd: WinogradPlan.allows(g)
            }
            #expect((plan.inputGradient == i) == allowed, "\(label): input gradient \(plan.inputGradient)")
        }
    }

    static func close(_ a: Tensor, _ b: Tensor, tolerance: Float = 1e-4) -> Float? {
        guard a.shape == b.shape else { return .infinity }
        var worst: Float = 0
        for i in 0..<a.count {
            let d = abs(a[i] - b[i]) / max(1, abs(b[i]))
            if !(d <= tolerance) { worst = max(worst, d.isNaN ? .infinity : d) }
        }
        return worst == 0 ? nil : worst
    }

    @Test(
        "Convolution forward and backward match the references: im2col/direct and implicit GEMM, 1-3 threads",
        arguments: convCases)
    func convolution(_ c: ConvCase) throws {
        let g = try convGeometry(
            input: [c.batch, c.channels, c.height, c.width], weight: [c.filters, c.channels, c.kernel.0, c.kernel.1],
            stride: c.stride, padding: c.padding)
        for (label, choices) in Self.forcedPlans {
            var results: [KernelLevel: [Tensor]] = [:]
            Self.expectForced(choices, g, batch: c.batch, label)
            for kernels in Self.kernelChoices {
                results[kernels] = try convolutionAllThreads(c, kernels: kernels, choices: choices, "\(label), \(kernels)")
            }
            // The AVX-512 kernels run the AVX2 kernels' arithmetic, element for element.
            if let avx512 = results[.avx512], let avx2 = results[.avx2] {
                #expect(avx512 == avx2, "AVX-512 differs from AVX2, \(label)")
            }
        }
    }

    /// Checks 1-3 threads against the references; returns y, dL/dx, dL/dw and dL/db with 2 threads.
    func convolutionAllThreads(_ c: ConvCase, kernels: KernelLevel, choices: ConvPlan.Choices, _ label: String) throws -> [Tensor] {
        var random = SeededGenerator(seed: UInt64(c.channels * 1000 + c.height * 10 + c.filters))
        let x = Self.randomTensor([c.batch, c.channels, c.height, c.width], &random)
        let w = Self.randomTensor([c.filters, c.channels, c.kernel.0, c.kernel.1], &random)
        let b = Self.randomTensor([c.filters], &random)
        let expectedY = try Reference.conv2d(x, weight: w, bias: b, stride: c.stride, padding: c.padding)
        let dy = Self.randomTensor(expectedY.shape, &random)
        let expected = try Reference.conv2dBackward(dy, input: x, weight: w, stride: c.stride, padding: c.padding)

        var firstY: Tensor?, firstDx: Tensor?, twoThreads: [Tensor] = []
        for t in [1, 2, 3] {
            let context = Self.context(threads: t, kernels: kernels, choices: choices)
            let y = try conv2d(x, weight: w, bias: b, stride: c.stride, padding: c.padding, context: context)
            let grads = try conv2dBackward(dy, input: x, weight: w, stride: c.stride, padding: c.padding, context: context)
            #expect(Self.close(y, expectedY) == nil, "forward, \(t) threads, \(label)")
            #expect(Self.close(grads.input, expected.input) == nil, "dL/dx, \(t) threads, \(label)")
            #expect(Self.close(grads.weight, expected.weight) == nil, "dL/dw, \(t) threads, \(label)")
            #expect(Self.close(grads.bias, expected.bias) == nil, "dL/db, \(t) threads, \(label)")
            // The forward pass and dL/dx do not depend on the thread count at all.
            if let firstY, let firstDx {
                #expect(y == firstY, "forward with \(t) threads differs from 1 thread, \(label)")
                #expect(grads.input == firstDx, "dL/dx with \(t) threads differs from 1 thread, \(label)")
            } else {
                firstY = y
                firstDx = grads.input
            }
            if t == 2 { twoThreads = [y, grads.input, grads.weight, grads.bias] }
        }
        return twoThreads
    }

    @Test("Convolution is deterministic for a given thread count and reuses one workspace across shapes")
    func convolutionDeterministicWorkspace() throws {
        for (_, choices) in Self.forcedPlans.dropFirst() {
            try convolutionDeterministicWorkspaceCases(Self.context(threads: 2, choices: choices))
        }
    }

    func convolutionDeterministicWorkspaceCases(_ context: ExecutionContext) throws {
        let workspace = ConvWorkspace()
        var random = SeededGenerator(seed: 99)
        for c in Self.convCases {
            let x = Self.randomTensor([c.batch, c.channels, c.height, c.width], &random)
            let w = Self.randomTensor([c.filters, c.channels, c.kernel.0, c.kernel.1], &random)
            let b = Self.randomTensor([c.filters], &random)
            let g = try convGeometry(input: x.shape, weight: w.shape, stride: c.stride, padding: c.padding)
            let plan = ConvPlan(g, batch: c.batch, context: context)
            // Into one reused buffer; a result kept from the first call must not change.
            var y = Tensor.empty
            conv2dForward(x, weight: w, bias: b, geometry: g, plan: plan, workspace: workspace, into: &y)
            let y1 = y
            conv2dForward(x, weight: w, bias: b, geometry: g, plan: plan, workspace: workspace, into: &y)
            let y2 = y
            #expect(y1 == y2)
            let reference = try Reference.conv2d(x, weight: w, bias: b, stride: c.stride, padding: c.padding)
            #expect(Self.close(y1, reference) == nil)
            let dy = Self.randomTensor(y1.shape, &random)
            var grads = ConvGradients.empty
            conv2dBackward(dy, input: x, weight: w, geometry: g, plan: plan, workspace: workspace, into: &grads)
            let g1 = grads
            conv2dBackward(dy, input: x, weight: w, geometry: g, plan: plan, workspace: workspace, into: &grads)
            let g2 = grads
            #expect(g1.weight == g2.weight && g1.bias == g2.bias && g1.input == g2.input)
        }
    }

    @Test("im2col accumulate is the adjoint of expand: <expand(x), y> = <x, accumulate(y)>", arguments: convCases)
    func im2colAdjoint(_ c: ConvCase) throws {
        var random = SeededGenerator(seed: 5)
        let g = try convGeometry(
            input: [1, c.channels, c.height, c.width], weight: [c.filters, c.channels, c.kernel.0, c.kernel.1],
            stride: c.stride, padding: c.padding)
        let x = Self.randomArray(g.inputSize, &random)
        let y = Self.randomArray(g.patchSize * g.outputPixels, &random)
        var columns = [Float](repeating: .nan, count: y.count)
        var back = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { px in
            columns.withUnsafeMutableBufferPointer { Im2col.expand(px.baseAddress!, into: $0.baseAddress!, geometry: g) }
        }
        y.withUnsafeBufferPointer { py in
            back.withUnsafeMutableBufferPointer { Im2col.accumulate(py.baseAddress!, into: $0.baseAddress!, geometry: g) }
        }
        // The branch-free fast versions compute exactly the same values, with every kernel level.
        for level in Self.kernelChoices {
            var fastColumns = [Float](repeating: .nan, count: y.count)
            var fastBack = [Float](repeating: 0, count: x.count)
            x.withUnsafeBufferPointer { px in
                fastColumns.withUnsafeMutableBufferPointer { ConvKernels.im2col(level: level, px.baseAddress!, into: $0.baseAddress!, geometry: g) }
            }
            y.withUnsafeBufferPointer { py in
                fastBack.withUnsafeMutableBufferPointer { ConvKernels.col2im(level: level, py.baseAddress!, into: $0.baseAddress!, geometry: g) }
            }
            #expect(fastColumns == columns, "\(level)")
            #expect(fastBack == back, "\(level)")
        }
        let lhs = zip(columns, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let rhs = zip(x, back).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(lhs - rhs) <= 1e-4 * max(1, abs(lhs)), "\(lhs) vs \(rhs)")
    }
}
