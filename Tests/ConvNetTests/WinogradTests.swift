import Testing
@testable import ConvNet

/// Winograd F(2x2, 3x3)'s rounding error against the double-precision reference. (Its results on every
/// test shape, thread count and kernel level are checked with the other paths in `KernelTests`.)
@Suite("Winograd")
struct WinogradTests {
    /// max |a - b| / max |b|: the error relative to the output's scale.
    static func scaledError(_ a: Tensor, _ b: Tensor) -> Float {
        var worst: Float = 0, scale: Float = 0
        for (u, v) in zip(a.scalars, b.scalars) {
            worst = max(worst, abs(u - v))
            scale = max(scale, abs(v))
        }
        return a.shape == b.shape ? worst / scale : .infinity
    }

    @Test("F(2x2, 3x3): forward, input and weight gradients within 1e-5 of the output's scale on random data")
    func errorPerTileSize() throws {
        var random = SeededGenerator(seed: 32)
        // 24 channels, odd sizes (partial tiles), 'same' padding.
        let x = KernelTests.randomTensor([2, 24, 13, 15], &random)
        let w = KernelTests.randomTensor([10, 24, 3, 3], &random)
        let b = KernelTests.randomTensor([10], &random)
        let expected = try Reference.conv2d(x, weight: w, bias: b, stride: (1, 1), padding: .same)
        let dy = KernelTests.randomTensor(expected.shape, &random)
        let expectedGrads = try Reference.conv2dBackward(dy, input: x, weight: w, stride: (1, 1), padding: .same)
        let context = KernelTests.context(
            threads: 2, choices: ConvPlan.Choices(forward: .winograd, weightGradient: .winograd, inputGradient: .winograd))
        let y = try conv2d(x, weight: w, bias: b, padding: .same, context: context)
        let grads = try conv2dBackward(dy, input: x, weight: w, padding: .same, context: context)
        let forward = Self.scaledError(y, expected), input = Self.scaledError(grads.input, expectedGrads.input)
        let weight = Self.scaledError(grads.weight, expectedGrads.weight)
        // For scale: the implicit GEMM's errors on the same data.
        let implicit = KernelTests.context(threads: 2)
        let direct = Self.scaledError(try conv2d(x, weight: w, bias: b, padding: .same, context: implicit), expected)
        let directWeight = Self.scaledError(
            try conv2dBackward(dy, input: x, weight: w, padding: .same, context: implicit).weight, expectedGrads.weight)
        print(
            "Winograd F(2x2, 3x3) max abs error / max |reference|: forward \(forward), input gradient \(input), "
                + "weight gradient \(weight); implicit GEMM forward \(direct), weight gradient \(directWeight)")
        #expect(forward < 1e-5, "forward: \(forward)")
        #expect(input < 1e-5, "input gradient: \(input)")
        #expect(weight < 1e-5, "weight gradient: \(weight)")
        #expect(Self.scaledError(grads.bias, expectedGrads.bias) < 1e-5)
    }

    @Test("Planes of more tiles than a block (blocks within a sample) match the reference at 1-3 threads")
    func blocksWithinSample() throws {
        var random = SeededGenerator(seed: 33)
        // 17 x 18 = 306 tiles per sample, blocks of 256 (17 + 15 channels): one full block and a partial one.
        let x = KernelTests.randomTensor([2, 17, 33, 35], &random)
        let w = KernelTests.randomTensor([15, 17, 3, 3], &random)
        let b = KernelTests.randomTensor([15], &random)
        let g = try convGeometry(input: x.shape, weight: w.shape, stride: (1, 1), padding: .symmetric(1))
        let plan = WinogradPlan(g, .forward)
        #expect(plan.tiles > plan.blockTiles && plan.samplesPerBlock == 1)
        let expected = try Reference.conv2d(x, weight: w, bias: b, stride: (1, 1), padding: .symmetric(1))
        let dy = KernelTests.randomTensor(expected.shape, &random)
        let expectedGrads = try Reference.conv2dBackward(dy, input: x, weight: w, stride: (1, 1), padding: .symmetric(1))
        let choices = ConvPlan.Choices(forward: .winograd, weightGradient: .winograd, inputGradient: .winograd)
        var first: [Tensor] = []
        for threads in [1, 2, 3] {
            let context = KernelTests.context(threads: threads, choices: choices)
            let y = try conv2d(x, weight: w, bias: b, padding: .symmetric(1), context: context)
            let grads = try conv2dBackward(dy, input: x, weight: w, padding: .symmetric(1), context: context)
            #expect(KernelTests.close(y, expected) == nil, "forward, \(threads) threads")
            #expect(KernelTests.close(grads.input, expectedGrads.input) == nil, "dL/dx, \(threads) threads")
            #expect(KernelTests.close(grads.weight, expectedGrads.weight) == nil, "dL/dw, \(threads) threads")
            #expect(KernelTests.close(grads.bias, expectedGrads.bias) == nil, "dL/db, \(threads) threads")
            if first.isEmpty {
                first = [y, grads.input]
            } else {
                #expect(y == first[0] && grads.input == first[1], "\(threads) threads differ from 1")
            }
        }
    }

    @Test(
        "The standard gradient checks of 3x3 stride-1 layers pass with Winograd forced (forward, both gradients)",
        arguments: ["conv 3x3 pad 1", "conv + relu + maxpool (backward as one)", "leakyrelu 0.1", "batchnorm 2d"])
    func gradientCheck(_ name: String) throws {
        let c = try #require(GradientCheckSuite.cases.first { $0.name == name })
        // The pooled backward forced off: the convolution's own backward, with the fused ReLU's mask.
        let choices = ConvPlan.Choices(forward: .winograd, weightGradient: .winograd, inputGradient: .winograd, pooledBackward: .dense)
        for threads in [1, 2] {
            let context = KernelTests.context(threads: threads, choices: choices)
            for result in try GradientCheckSuite.run(c, context: context) { #expect(result.passed, "\(threads) threads: \(result)") }
        }
    }
}
