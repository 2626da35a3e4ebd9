import Testing
@testable import ConvNet

/// `Sequential` fuses conv -> relu (-> maxpool) into a `ConvStage` (the ReLU applied per sample inside the
/// convolution, its mask applied to dL/dy inside the convolution's backward, the pooling where the plan says
/// so through its winners). Checked against the layers run one by one, in the same context.
@Suite("Conv-ReLU fusion")
struct FusionTests {
    static let specs = [
        "conv 4 3x3 pad 1; relu; maxpool 2; conv 5 3x3; relu; flatten; dense 7",
        "conv 3 5x5 pad same; relu; conv 2 1x1; relu; flatten; dense 3",
        "conv 6 3x3 stride 2; relu; maxpool 2; flatten; dense 4; relu; dense 2",
        "conv 3 3x3; leakyrelu; conv 2 3x3; relu",
        // conv -> relu -> maxpool run backward as one: 16-lane kernel rows, overlapping pooling windows,
        // odd sizes, and the pooled block as the first trainable layer.
        "conv 3 10x10 pad same; relu; maxpool 2; conv 4 5x5 pad 2; relu; maxpool 3 stride 2; flatten; dense 3",
        "conv 17 5x5 pad 2; relu; maxpool 2 stride 1; conv 5 2x3; relu; maxpool 2; flatten; dense 2",
    ]

    /// One-channel inputs: the direct forward kernel (few filters, or 25 taps and more) applies the ReLU.
    static let oneChannelSpecs = [
        "conv 3 3x3 pad 1; relu; maxpool 2; flatten; dense 3",
        "conv 6 5x5 pad 2; relu; conv 2 3x3; relu; flatten; dense 2",
        "conv 10 5x5; relu; maxpool 2; flatten; dense 2",
    ]

    @Test(
        "Fused outputs and gradients equal the unfused layers (batch 1 and 3, 1 and 2 threads)",
        arguments: specs.map { ($0, 2) } + oneChannelSpecs.map { ($0, 1) })
    func fusedMatchesUnfused(_ spec: String, channels: Int) throws {
        var random = SeededGenerator(seed: 21)
        for kernels in KernelTests.kernelChoices {
            for batch in [1, 3] {
                for threads in [1, 2] {
                    let x = try Tensor(
                        shape: [batch, channels, 11, 9],
                        scalars: (0..<(batch * channels * 11 * 9)).map { _ in random.uniform(-1, 1) })
                    try Self.check(spec, x, KernelTests.context(threads: threads, kernels: kernels), &random)
                }
            }
        }
    }

    @Test(
        "With Winograd forced on the 3x3 stride-1 layers, fused outputs and gradients equal the unfused layers",
        arguments: specs.map { ($0, 2) } + oneChannelSpecs.map { ($0, 1) })
    func fusedMatchesUnfusedWinograd(_ spec: String, channels: Int) throws {
        var random = SeededGenerator(seed: 22)
        let x = try Tensor(
            shape: [3, channels, 11, 9], scalars: (0..<(3 * channels * 11 * 9)).map { _ in random.uniform(-1, 1) })
        let winograd = ConvPlan.Choices(forward: .winograd, weightGradient: .winograd, inputGradient: .winograd)
        try Self.check(spec, x, KernelTests.context(threads: 2, choices: winograd), &random)
    }

    /// `context` with its forced choices kept but the pooled backward's replaced by `pooled`.
    static func forcing(_ context: ExecutionContext, pooled: ConvPlan.PooledBackward?) -> ExecutionContext {
        var choices = context.convolution
        choices.pooledBackward = pooled
        return context.forcing(choices)
    }

    /// The fused network against the same layers run one by one, on input `x`, in `context`.
    static func check(_ spec: String, _ x: Tensor, _ context: ExecutionContext, _ random: inout SeededGenerator) throws {
        let shape = Array(x.shape.dropFirst())
        let fused = try Sequential(spec: spec, inputShape: shape, seed: 5, context: context)
        let plain = try Sequential(spec: spec, inputShape: shape, seed: 5, context: context)

        let y = try fused.forward(x, training: true)
        var z = x
        for layer in plain.layers { z = try layer.forward(z, training: true, context: context) }
        #expect(y == z, "forward: \(spec)")

        let dy = try Tensor(shape: y.shape, scalars: (0..<y.count).map { _ in random.uniform(-1, 1) })
        var dz = dy
        for layer in plain.layers.reversed() { dz = try layer.backward(dz, context: context) }
        // conv -> relu alone (the pooled backward forced off): bit-identical input gradients.
        fused.context = Self.forcing(context, pooled: .dense)
        #expect(try fused.forward(x, training: true) == z, "forward, conv -> relu only: \(spec)")
        #expect(try fused.backward(dy) == dz, "input gradient: \(spec)")
        // conv -> relu -> maxpool through the pooling's winners (sums run in another order): where the
        // measured rule takes it, and forced to 8 and 16 lanes where the kernel rows fit.
        for pooled in [nil, .lanes8, .lanes16] as [ConvPlan.PooledBackward?] {
            fused.context = Self.forcing(context, pooled: pooled)
            let label = "\(spec), pooled backward \(pooled?.rawValue ?? "measured")"
            // Inference pools each sample in cache where the plan says so; backward after it runs
            // from the pooled values.
            #expect(try fused.forward(x, training: false) == z, "forward, pooled in cache: \(label)")
            let dxFromPooled = try fused.backward(dy)
            #expect(try fused.forward(x, training: true) == z, "forward: \(label)")
            let dx = try fused.backward(dy)
            #expect(dxFromPooled == dx, "input gradient after an inference pass: \(label)")
            let worstInput = worstRelativeError(dx, dz)
            #expect(worstInput <= 1e-5, "input gradient through maxpool: \(label): \(worstInput)")
            // Parameter gradients: equal up to rounding (the pooled backward sums over windows).
            expectClose(fused.parameters, plain.parameters.map(\.gradient), label)

            // The training path (no input gradient for the first trainable layer) agrees too.
            for p in fused.parameters { p.gradient = Tensor(shape: p.value.shape, repeating: .nan) }
            _ = try fused.forward(x, training: true)
            try fused.backwardParameters(dy)
            expectClose(fused.parameters, plain.parameters.map(\.gradient), label)
        }
    }

    /// The largest |a - b| / max(1, |b|), infinite when the shapes differ or a value is NaN.
    static func worstRelativeError(_ a: Tensor, _ b: Tensor) -> Float {
        guard a.shape == b.shape else { return .infinity }
        var worst: Float = 0
        for (u, v) in zip(a.scalars, b.scalars) {
            let d = abs(u - v) / max(1, abs(v))
            worst = d.isNaN ? .infinity : max(worst, d)
        }
        return worst
    }

    static func expectClose(_ parameters: [Parameter], _ expected: [Tensor], _ spec: String) {
        #expect(parameters.count == expected.count)
        for (p, g) in zip(parameters, expected) {
            let worst = worstRelativeError(p.gradient, g)
            #expect(worst <= 1e-5, "\(spec) \(p.name): \(worst)")
        }
    }

    @Test(
        "AVX2 and AVX-512 train to the same weights, bit for bit",
        arguments: specs + [
            // Implicit GEMM paths: channel pairs and single panels, 3x3 and 5x5, a dense layer.
            "conv 20 3x3 pad 1; relu; maxpool 2; conv 36 3x3 pad 1; relu; conv 18 5x5 pad 2; relu; flatten; dense 40; relu; dense 3",
        ])
    func avx512TrainsLikeAVX2(_ spec: String) throws {
        guard KernelLevel.cpu >= .avx512 else { return }
        var random = SeededGenerator(seed: 8)
        let batch = 5
        let x = try Tensor(
            shape: [batch, 2, 11, 9], scalars: (0..<(batch * 2 * 11 * 9)).map { _ in random.uniform(-1, 1) })
        let weights = try [KernelLevel.avx2, .avx512].map { level -> [[UInt32]] in
            let net = try Sequential(spec: spec, inputShape: [2, 11, 9], seed: 3, context: KernelTests.context(threads: 2, kernels: level))
            let sgd = SGD(learningRate: 0.05, momentum: 0.9)
            var buffers = LossBuffers()
            for _ in 0..<3 {
                let out = try net.forward(x, training: true)
                let classes = out.count / batch
                let loss = try LossFunction.softmaxCrossEntropy.evaluate(
                    output: try out.reshaped([batch, classes]), labels: (0..<batch).map { $0 % classes },
                    buffers: &buffers)
                try net.backwardParameters(try loss.gradient.reshaped(out.shape))
                sgd.step(net.parameters, context: net.context)
            }
            return net.parameters.map { $0.value.scalars.map(\.bitPattern) }
        }
        #expect(weights[0] == weights[1], "\(spec)")
    }

    @Test("A layer's own passes between a fused stage's do not touch the stage's state; NaN passes through the fused ReLU as through relu")
    func layersShareNoStateWithTheStage() throws {
        let net = try Sequential(spec: "conv 2 3x3 pad 1; relu; maxpool 2", inputShape: [1, 5, 5], seed: 1)
        var scalars = [Float](repeating: 0.5, count: 2 * 25)
        scalars[7] = .nan
        let x = try Tensor(shape: [2, 1, 5, 5], scalars: scalars)
        let dy = Tensor(shape: [2, 2, 2, 2], repeating: 0.25)
        let fusedOut = try net.forward(x, training: true)
        let dx = try net.backward(dy)
        _ = try net.forward(x, training: true)
        // The convolution and the ReLU run on their own (as the report's feature maps run them) ...
        let conv = net.layers[0] as! Conv2D
        let pre = try conv.forward(x, training: true)
        let activation = try net.layers[1].forward(pre, training: true)
        #expect(zip(activation.scalars, relu(pre).scalars).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) })
        _ = try conv.backward(Tensor(shape: pre.shape, repeating: 1))
        // ... and the stage's backward still runs from its own forward pass (bit patterns: NaN included).
        #expect(try net.backward(dy).scalars.map(\.bitPattern) == dx.scalars.map(\.bitPattern))
        #expect(try net.forward(x, training: true).scalars.map(\.bitPattern) == fusedOut.scalars.map(\.bitPattern))
    }
}
