import Foundation
import Testing
@testable import ConvNet

/// A group of one process: sums and broadcasts leave the values as they are.
private final class SingleRank: TrainingGroup {
    let rank = 0, size = 1
    var calls = 0
    func sum(_ values: UnsafeMutableBufferPointer<Float>) throws { calls += 1 }
    func sum(_ values: inout [Double]) throws { calls += 1 }
    func broadcast(_ values: UnsafeMutableBufferPointer<Float>) throws { calls += 1 }
}

@Suite("Data-parallel hook")
struct DataParallelTests {
    @Test("Each rank's slice is contiguous, the slices cover the batch in rank order, and their sizes differ by at most one")
    func slices() {
        for count in 0...19 {
            for size in 1...5 {
                let batch = 7..<(7 + count)
                let slices = (0..<size).map { dataParallelSlice(batch, rank: $0, size: size) }
                #expect(slices.first!.lowerBound == batch.lowerBound)
                #expect(slices.last!.upperBound == batch.upperBound)
                for (a, b) in zip(slices, slices.dropFirst()) { #expect(a.upperBound == b.lowerBound) }
                let sizes = slices.map(\.count)
                #expect(sizes.max()! - sizes.min()! <= 1)
                #expect(sizes == sizes.sorted(by: >), "the first ranks take the extra samples")
            }
        }
    }

    @Test("A group of one trains the same bits as no group and never calls it")
    func groupOfOne() throws {
        func run(_ group: (any TrainingGroup)?) throws -> [Float] {
            let network = try Sequential(spec: "conv 2 3x3; relu; maxpool 2; flatten; dense 3", inputShape: [1, 8, 8], seed: 3)
            var random = SeededGenerator(seed: 5)
            let images = try Tensor(shape: [21, 1, 8, 8], scalars: (0..<(21 * 64)).map { _ in random.nextUnitFloat() })
            let data = try Dataset(name: "random", images: images, labels: (0..<21).map { $0 % 3 }, classNames: ["a", "b", "c"])
            var options = TrainingOptions()
            options.epochs = 2
            options.batchSize = 4
            let trainer = try Trainer(network: network, options: options)
            trainer.group = group
            try trainer.train(on: data, test: data)
            return network.parameters.flatMap(\.value.scalars)
        }
        let single = SingleRank()
        let alone = try run(nil), grouped = try run(single)
        #expect(alone.map(\.bitPattern) == grouped.map(\.bitPattern))
        #expect(single.calls == 0)
    }
}
