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

    @Test("F(2x2, 3x3): forward and input gradient within 1e-5 of the output's scale on random data")
    func errorPerTileSize() throws {
        var random = SeededGenerator(seed: 32)
        // 24 channels, odd sizes (partial tiles), 'same' padding.
        let x = KernelTests.randomTensor([2, 24, 13, 15], &random)
        let w = KernelTests.randomTensor([10, 24, 3, 3], &random)
        let b = KernelTests.randomTensor([10], &random)
        let expected = try Reference.conv2d(x, weight: w, bias: b, stride: (1, 1), padding: .same)
        let dy = KernelTests.randomTensor(expected.shape, &random)
        let expectedDx = try Reference.conv2dBackward(dy, input: x, weight: w, stride: (1, 1), padding: .same).input
        let context = KernelTests.context(threads: 2, choices: ConvPlan.Choices(forward: .winograd, inputGradient: .winograd))
        let y = try conv2d(x, weight: w, bias: b, padding: .same, context: context)
        let dx = try conv2dBackward(dy, input: x, weight: w, padding: .same, context: context).input
        let forward = Self.scaledError(y, expected), input = Self.scaledError(dx, expectedDx)
        // For scale: the implicit GEMM's error on the same data.
        let direct = Self.scaledError(
            try conv2d(x, weight: w, bias: b, padding: .same, context: KernelTests.context(threads: 2)), expected)
        print("Winograd F(2x2, 3x3) max abs error / max |reference|: forward \(forward), input gradient \(input); implicit GEMM forward \(direct)")
        #expect(forward < 1e-5, "forward: \(forward)")
        #expect(input < 1e-5, "input gradient: \(input)")
    }
}
