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

// MARK: - Ranks as threads of this process

/// The ranks of a data-parallel run as threads of this test process: every sum waits for each rank's
/// values and adds them in rank order, as `MPIGroup` does, and fails on every rank when the ranks
/// submit different sizes (a rank out of step with the others).
final class ThreadRanks: @unchecked Sendable {
    struct OutOfStep: Error, CustomStringConvertible {
        var sizes: [Int]
        var description: String { "the ranks summed buffers of different sizes \(sizes) in the same call" }
    }

    let size: Int
    private let condition = NSCondition()
    private var slots: [[Double]]
    private var arrived = 0, generation = 0
    private var result: Result<[Double], OutOfStep> = .success([])

    init(size: Int) {
        self.size = size
        slots = Array(repeating: [], count: size)
    }

    /// The elementwise sum over the ranks, added in rank order (in Float arithmetic when `float`).
    func sum(rank: Int, _ values: [Double], float: Bool) throws -> [Double] {
        condition.lock()
        defer { condition.unlock() }
        let round = generation
        slots[rank] = values
        arrived += 1
        if arrived == size {
            if Set(slots.map(\.count)).count != 1 {
                result = .failure(OutOfStep(sizes: slots.map(\.count)))
            } else {
                var total = slots[0]
                for r in 1..<size {
                    for i in total.indices { total[i] = float ? Double(Float(total[i]) + Float(slots[r][i])) : total[i] + slots[r][i] }
                }
                result = .success(total)
            }
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while generation == round { condition.wait() }
        }
        return try result.get()
    }

    /// Runs `body(rank)` for every rank, each on a thread of its own, and returns their results in rank order.
    func run<T>(_ body: @escaping @Sendable (ThreadRank) throws -> T) throws -> [T] {
        let results = ResultBox<T>(count: size)
        let done = DispatchSemaphore(value: 0)
        for rank in 0..<size {
            let member = ThreadRank(rank: rank, ranks: self)
            let thread = Thread {
                results.set(rank, Result { try body(member) })
                done.signal()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        for _ in 0..<size { done.wait() }
        return try results.values()
    }
}

private final class ResultBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Result<T, any Error>?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ value: Result<T, any Error>) { lock.withLock { slots[i] = value } }
    func values() throws -> [T] { try lock.withLock { try slots.map { try $0!.get() } } }
}

/// One rank of `ThreadRanks` as the Trainer's group.
final class ThreadRank: TrainingGroup, @unchecked Sendable {
    let rank: Int
    let ranks: ThreadRanks
    var size: Int { ranks.size }
    init(rank: Int, ranks: ThreadRanks) {
        self.rank = rank
        self.ranks = ranks
    }
    func sum(_ values: UnsafeMutableBufferPointer<Float>) throws {
        let total = try ranks.sum(rank: rank, values.map(Double.init), float: true)
        for i in values.indices { values[i] = Float(total[i]) }
    }
    func sum(_ values: inout [Double]) throws { values = try ranks.sum(rank: rank, values, float: false) }
    func broadcast(_ values: UnsafeMutableBufferPointer<Float>) throws {
        let total = try ranks.sum(rank: rank, values.map { rank == 0 ? Double($0) : 0 }, float: true)
        for i in values.indices { values[i] = Float(total[i]) }
    }
}

/// Max |a - b| relative to max |a|.
private func relativeDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    let largest = a.map(abs).max() ?? 0
    return zip(a, b).map { abs($0 - $1) }.max().map { $0 / max(largest, .leastNormalMagnitude) } ?? 0
}

@Suite("Synchronised batch norm and per-sample dropout")
struct SynchronisedLayerTests {
    /// Random values from `seed`.
    static func random(_ count: Int, seed: UInt64) -> [Float] {
        var random = SeededGenerator(seed: seed)
        return (0..<count).map { _ in random.uniform(-2, 3) }
    }

    @Test("batch norm over 1 to 4 ranks (the 4th with an empty slice) gives one process's outputs, gradients and running statistics",
          arguments: [[2, 3, 2], [5]])
    func batchNormAcrossRanks(sampleShape: [Int]) throws {
        let n = 3, perSample = sampleShape.reduce(1, *)
        let x = try Tensor(shape: [n] + sampleShape, scalars: Self.random(n * perSample, seed: 1))
        // dL/dy of a loss that is the mean over the global batch.
        let dy = try Tensor(shape: [n] + sampleShape, scalars: Self.random(n * perSample, seed: 2))
        @Sendable func layer() throws -> BatchNorm {
            let bn = BatchNorm()
            var context = BuildContext()
            _ = try bn.build(inputShape: sampleShape, context: &context)
            bn.weight.value = try Tensor(shape: [sampleShape[0]], scalars: Self.random(sampleShape[0], seed: 3))
            bn.bias.value = try Tensor(shape: [sampleShape[0]], scalars: Self.random(sampleShape[0], seed: 4))
            return bn
        }
        let one = try layer()
        let y = try one.forward(x, training: true).scalars
        let dx = try one.backward(dy).scalars
        let oneGamma = one.weight.gradient.scalars, oneBeta = one.bias.gradient.scalars
        let running = one.runningMean.value.scalars + one.runningVariance.value.scalars

        for size in 1...4 {
            let ranks = ThreadRanks(size: size)
            struct RankResult: @unchecked Sendable {
                var rows: Range<Int>, y: [Float], dx: [Float], dgamma: [Float], dbeta: [Float], running: [Float]
            }
            let results = try ranks.run { group -> RankResult in
                let bn = try layer()
                bn.ranks = group
                let rows = dataParallelSlice(0..<n, rank: group.rank, size: size)
                let share = Float(rows.count) / Float(n)
                guard !rows.isEmpty else {
                    try bn.forwardWithoutSamples()
                    try bn.backwardWithoutSamples()
                    return RankResult(rows: rows, y: [], dx: [], dgamma: [], dbeta: [],
                                      running: bn.runningMean.value.scalars + bn.runningVariance.value.scalars)
                }
                let part = { (t: Tensor) in Array(t.scalars[(rows.lowerBound * perSample)..<(rows.upperBound * perSample)]) }
                let localX = try Tensor(shape: [rows.count] + sampleShape, scalars: part(x))
                // This rank's loss is the mean over its own slice: its dL/dy is 1/share times its part of the global one.
                let localDy = try Tensor(shape: [rows.count] + sampleShape, scalars: part(dy).map { $0 / share })
                let y = try bn.forward(localX, training: true).scalars
                let dx = try bn.backward(localDy).scalars.map { $0 * share }
                return RankResult(rows: rows, y: y, dx: dx, dgamma: bn.weight.gradient.scalars.map { $0 * share },
                                  dbeta: bn.bias.gradient.scalars.map { $0 * share },
                                  running: bn.runningMean.value.scalars + bn.runningVariance.value.scalars)
            }
            #expect(relativeDifference(y, results.flatMap(\.y)) <= 1e-5, "\(size) ranks: output")
            #expect(relativeDifference(dx, results.flatMap(\.dx)) <= 1e-5, "\(size) ranks: dL/dx")
            let dgamma = results.filter { !$0.rows.isEmpty }.map(\.dgamma).reduce(into: [Float](repeating: 0, count: oneGamma.count)) { s, g in
                for i in s.indices { s[i] += g[i] }
            }
            let dbeta = results.filter { !$0.rows.isEmpty }.map(\.dbeta).reduce(into: [Float](repeating: 0, count: oneBeta.count)) { s, g in
                for i in s.indices { s[i] += g[i] }
            }
            #expect(relativeDifference(oneGamma, dgamma) <= 1e-5, "\(size) ranks: dgamma")
            #expect(relativeDifference(oneBeta, dbeta) <= 1e-5, "\(size) ranks: dbeta")
            #expect(relativeDifference(running, results[0].running) <= 1e-6, "\(size) ranks: running statistics")
            for r in results.dropFirst() {
                #expect(r.running.map(\.bitPattern) == results[0].running.map(\.bitPattern), "every rank keeps the same running statistics")
            }
        }
    }

    @Test("synchronised batch norm's passes (over a group of one) pass the numerical gradient check")
    func synchronisedGradientCheck() throws {
        final class Alone: RankSum { func sum(_ values: inout [Double]) throws {} }
        // GradientCheckSuite's two batch-norm cases.
        for (spec, shape, batch) in [("conv 3 3x3; batchnorm", [2, 6, 5], 3), ("dense 5; batchnorm", [4], 6)] {
            let network = try Sequential(spec: spec, inputShape: shape, seed: 2)
            for case let bn as BatchNorm in network.layers { bn.ranks = Alone() }
            let count = batch * shape.reduce(1, *)
            let input = try Tensor(shape: [batch] + shape, scalars: Self.random(count, seed: 6))
            let results = try GradientChecker().check(network, input: input, label: "synchronised \(spec)")
            #expect(results.count >= 4)
            for r in results { #expect(r.passed, "\(r.layer) \(r.quantity): \(r.maxRelativeError)") }
        }
    }

    @Test("a global batch of one value per channel is refused on every rank alike")
    func batchNormGlobalBatchOfOne() throws {
        let ranks = ThreadRanks(size: 2)
        let messages = try ranks.run { group -> String in
            let bn = BatchNorm()
            var context = BuildContext()
            _ = try bn.build(inputShape: [4], context: &context)
            bn.ranks = group
            do {
                if group.rank == 0 { _ = try bn.forward(try Tensor(shape: [1, 4], scalars: [1, 2, 3, 4]), training: true) } else { try bn.forwardWithoutSamples() }
                return "trained"
            } catch {
                return "\(error)"
            }
        }
        #expect(messages.allSatisfy { $0.contains("more than one value per channel") }, "\(messages)")
    }

    /// Trains `spec` on 18 random 8x8 images in batches of 8 (the last of 2: with 3 ranks one slice is
    /// empty) for 2 epochs, in one process (`ranks` 0) or over `ranks` thread ranks; returns each rank's
    /// weights and running statistics.
    static func train(_ spec: String, ranks size: Int) throws -> [[Float]] {
        var random = SeededGenerator(seed: 5)
        let images = try Tensor(shape: [18, 1, 8, 8], scalars: (0..<(18 * 64)).map { _ in random.nextUnitFloat() })
        let data = try Dataset(name: "random", images: images, labels: (0..<18).map { $0 % 3 }, classNames: ["a", "b", "c"])
        @Sendable func run(_ group: (any TrainingGroup)?) throws -> [Float] {
            let network = try Sequential(spec: spec, inputShape: [1, 8, 8], seed: 3)
            var options = TrainingOptions()
            options.epochs = 2
            options.batchSize = 8
            options.learningRate = 0.05
            let trainer = try Trainer(network: network, options: options)
            trainer.group = group
            try trainer.train(on: data, test: data)
            let synchronised = network.layers.contains { layer in (layer as? BatchNorm).map { $0.ranks != nil } ?? false }
            #expect(!synchronised, "the trainer leaves batch norm unsynchronised")
            return (network.parameters + network.buffers).flatMap(\.value.scalars)
        }
        if size == 0 { return [try run(nil)] }
        return try ThreadRanks(size: size).run { try run($0) }
    }

    @Test("training over 2 and 3 ranks (one slice empty) with batch norm and dropout gives one process's weights and running statistics, the same bits on every rank and every run")
    func trainerAcrossRanks() throws {
        let spec = "conv 3 3x3 pad 1; batchnorm; relu; maxpool 2; flatten; dropout 0.3; dense 8; batchnorm; relu; dense 3"
        let one = try Self.train(spec, ranks: 0)[0]
        for size in [2, 3] {
            let ranks = try Self.train(spec, ranks: size)
            for r in ranks.dropFirst() { #expect(r.map(\.bitPattern) == ranks[0].map(\.bitPattern), "\(size) ranks: every rank holds the same weights") }
            let difference = relativeDifference(one, ranks[0])
            #expect(difference <= 1e-5, "\(size) ranks vs one process: \(difference)")
            #expect(try Self.train(spec, ranks: size)[0].map(\.bitPattern) == ranks[0].map(\.bitPattern), "\(size) ranks: the same bits again")
        }
    }

    @Test("a sample's dropout mask depends on its row in the global batch, not on the slice that holds it")
    func dropoutMasksPerSample() throws {
        let whole = try Sequential(spec: "dropout 0.5", inputShape: [40], seed: 1)
        let x = try Tensor(shape: [5, 40], scalars: [Float](repeating: 1, count: 200))
        let position = DropoutPosition(seed: 7, epoch: 2, batch: 3)
        Dropout.position(whole.layers, at: position)
        let all = try whole.forward(x, training: true).scalars
        let part = try Sequential(spec: "dropout 0.5", inputShape: [40], seed: 99)
        Dropout.position(part.layers, at: DropoutPosition(seed: 7, epoch: 2, batch: 3, firstRow: 2))
        let rows = try part.forward(try Tensor(shape: [3, 40], scalars: [Float](repeating: 1, count: 120)), training: true).scalars
        #expect(rows == Array(all[80...]))
        #expect(Set(all).isSubset(of: [0, 2]) && all.contains(0) && all.contains(2))
        // Another batch, another mask; a pass without a position draws anew each time.
        Dropout.position(whole.layers, at: DropoutPosition(seed: 7, epoch: 2, batch: 4))
        #expect(try whole.forward(x, training: true).scalars != all)
        #expect(try whole.forward(x, training: true).scalars != whole.forward(x, training: true).scalars)
    }

    @Test("a dropout network stopped mid-epoch and resumed from its checkpoint ends at the uninterrupted run's bits")
    func dropoutResumeMidEpoch() throws {
        var random = SeededGenerator(seed: 5)
        let images = try Tensor(shape: [10, 1, 5, 5], scalars: (0..<250).map { _ in random.nextUnitFloat() })
        let data = try Dataset(name: "random", images: images, labels: (0..<10).map { $0 % 3 }, classNames: ["a", "b", "c"])
        var options = TrainingOptions()
        options.epochs = 3
        options.batchSize = 4
        options.seed = 9
        func network() throws -> Sequential {
            try Sequential(spec: "conv 2 3x3 pad 1; relu; flatten; dropout 0.5; dense 6; relu; dropout 0.3; dense 3", inputShape: [1, 5, 5], seed: 4)
        }
        // Stopped at epoch 2, batch 2 of 3.
        let (whole, resumed, _) = try trainWholeAndResumed(data, options, stoppingAfter: 5, network: network)
        #expect(resumed == whole)
        options.seed = 10
        let other = try network()
        try Trainer(network: other, options: options).train(on: data)
        #expect(other.parameters.flatMap(\.value.scalars).map(\.bitPattern) != whole, "another seed draws other masks (and batches)")
    }

    @Test("convnet train with dropout stopped after epoch 1 and resumed to epoch 2 ends at the uninterrupted run's bits")
    func dropoutResume() throws {
        let dir = try makeTemporaryFolder()
        let common = ["train", "--spec", "conv 4 3x3 pad 1; relu; maxpool 2; flatten; dropout 0.5; dense 16; relu; dropout 0.25; dense 10",
                      "--train-limit", "300", "--batch-size", "32", "--seed", "5", "--threads", "1", "--no-report"]
        let a = try convnet(common + ["--epochs", "2", "--out", dir.appendingPathComponent("a").path])
        let c = try convnet(common + ["--epochs", "1", "--out", dir.appendingPathComponent("c").path])
        #expect(a.status == 0 && c.status == 0, "\(a.stderr)\(c.stderr)")
        let resumed = try convnet(["train", "--resume", dir.appendingPathComponent("c").path, "--epochs", "2", "--threads", "1"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try weights(dir.appendingPathComponent("a/model.npz")) == weights(dir.appendingPathComponent("c/model.npz")))
    }
}
