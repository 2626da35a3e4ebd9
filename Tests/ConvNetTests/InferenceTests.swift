import Testing
@testable import ConvNet

@Suite("Small-batch inference paths")
struct InferenceTests {
    @Test("dense forward at batch 1-6 (dot products up to batch 4, split across threads for large layers) matches the reference",
          arguments: [(7, 5), (196, 30), (300, 900)])
    func denseSmallBatches(inFeatures: Int, outFeatures: Int) throws {
        var random = SeededGenerator(seed: 5)
        let w = try Tensor(shape: [outFeatures, inFeatures], scalars: (0..<(outFeatures * inFeatures)).map { _ in random.uniform(-1, 1) })
        let b = try Tensor(shape: [outFeatures], scalars: (0..<outFeatures).map { _ in random.uniform(-1, 1) })
        for n in 1...6 {
            let x = try Tensor(shape: [n, inFeatures], scalars: (0..<(n * inFeatures)).map { _ in random.uniform(-1, 1) })
            let y = try dense(x, weight: w, bias: b)
            #expect(maxAbsDifference(y, Reference.dense(x, weight: w, bias: b)) < 1e-4, "batch \(n), \(inFeatures) -> \(outFeatures)")
        }
    }
}
