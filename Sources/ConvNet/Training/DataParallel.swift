import Foundation

/// The processes of a data-parallel run as the `Trainer` sees them: every rank holds the same
/// replica, trains on its own contiguous slice of each global batch, and the group adds up what the
/// ranks computed. ConvNet itself has no transport; `convnet-mpi` (the `Distributed/` package)
/// implements this over MPI. A group of size 1 trains exactly like no group.
///
/// Its `sum` of doubles (from `RankSum`) also serves the network's batch-norm layers, which the run
/// synchronises (see `BatchNorm`).
public protocol TrainingGroup: RankSum {
    /// This process's index in 0..<size; rank 0 writes the run's files.
    var rank: Int { get }
    var size: Int { get }
    /// Replaces `values` with their elementwise sum over all ranks. Every rank receives the same bits,
    /// and the same ranks and inputs give the same bits on every run (a fixed summation order).
    func sum(_ values: UnsafeMutableBufferPointer<Float>) throws
    /// Replaces `values` with rank 0's on every rank.
    func broadcast(_ values: UnsafeMutableBufferPointer<Float>) throws
}

/// Why a data-parallel run cannot go on.
public enum DataParallelError: Error, CustomStringConvertible {
    case replicasDiffer(rank: Int?, what: String)

    public var description: String {
        switch self {
        case .replicasDiffer(let rank, let what):
            return "\(rank.map { "rank \($0)" } ?? "another rank") does not hold the same \(what) as rank 0; give every rank the same data files, "
                + "build and options (with --resume, the same checkpoint)"
        }
    }
}

/// The contiguous part of `range` that `rank` of `size` takes: the first `count % size` ranks take
/// one element more, as the threads of one process split a batch.
public func dataParallelSlice(_ range: Range<Int>, rank: Int, size: Int) -> Range<Int> {
    let base = range.count / size, extra = range.count % size
    let start = range.lowerBound + rank * base + min(rank, extra)
    return start..<(start + base + (rank < extra ? 1 : 0))
}

extension Trainer {
    /// Checks, before the first step, that every rank of `group` holds rank 0's replica (weights,
    /// optimizer state, progress, options and data); an error names the problem. `train` runs this check itself unless it was done at this progress.
    public func joinGroup(train: Dataset, evaluated: [Dataset]) throws {
        groupRun = nil
        guard let group, group.size > 1 else { return }
        groupRun = try DataParallelRun(group: group, trainer: self, train: train, evaluated: evaluated)
    }
}

/// One data-parallel training run's reductions: the gradients and the step's loss and accuracy in
/// one fused buffer per step, the evaluation's confusion matrix, and the batch-norm layers' statistics
/// (one reduction per layer in each training forward pass and one in each backward pass, made by the
/// layers themselves while `synchronizeBatchNorm` has them use the group).
///
/// Dropout needs no reduction: its masks are drawn per global sample (see `Dropout`), as augmentation's
/// transforms are, so every rank draws for its rows what one process draws for them.
final class DataParallelRun {
    let group: any TrainingGroup
    /// Where the run stood and how many training images it had when the replicas were checked.
    let checked: (progress: TrainingProgress, images: Int)
    /// The network's batch-norm layers, in order.
    private let batchNorms: [BatchNorm]
    private var buffer: [Float] = []

    /// Checks that every rank holds rank 0's replica: weights (broadcast from rank 0 and compared bit
    /// for bit), optimizer state, progress and data.
    init(group: any TrainingGroup, trainer: Trainer, train: Dataset, evaluated: [Dataset]) throws {
        self.group = group
        checked = (trainer.progress, train.count)
        batchNorms = trainer.network.layers.compactMap { $0 as? BatchNorm }
        let parameters = trainer.network.parameters + trainer.network.layers.flatMap(\.buffers)
        var weights = [Float]()
        weights.reserveCapacity(parameters.reduce(0) { $0 + $1.value.count })
        for p in parameters { weights.append(contentsOf: p.value.scalars) }
        var fromRoot = weights
        try fromRoot.withUnsafeMutableBufferPointer { try group.broadcast($0) }
        let weightsDiffer = !zip(weights, fromRoot).allSatisfy { $0.bitPattern == $1.bitPattern }

        var hash = Fingerprint()
        hash.add(train)
        for data in evaluated { hash.add(data) }
        let state = trainer.optimizer.state
        for key in state.keys.sorted() { hash.add(key); hash.add(state[key]!.scalars) }
        hash.add(String(trainer.optimizer.steps))
        hash.add(String(decoding: try Fingerprint.encoder.encode(trainer.progress), as: UTF8.self))
        hash.add(String(decoding: try Fingerprint.encoder.encode(trainer.options), as: UTF8.self))
        // Rank 0's fingerprint reaches every rank as a sum in which only rank 0 counts; each rank then
        // compares its own, and a second sum tells every rank whether any differs.
        let chunks = hash.chunks
        var root = chunks.map { group.rank == 0 ? $0 : 0 }
        try group.sum(&root)
        let dataDiffer = chunks != root
        var flags = [weightsDiffer ? 1.0 : 0, dataDiffer ? 1.0 : 0]
        try group.sum(&flags)
        if weightsDiffer { throw DataParallelError.replicasDiffer(rank: group.rank, what: "initial weights") }
        if dataDiffer { throw DataParallelError.replicasDiffer(rank: group.rank, what: "data, optimizer state and options") }
        if flags[0] > 0 || flags[1] > 0 {
            throw DataParallelError.replicasDiffer(rank: nil, what: flags[0] > 0 ? "initial weights" : "data, optimizer state and options")
        }
    }

    /// This rank's part of a global batch.
    func slice(_ batch: Range<Int>) -> Range<Int> { dataParallelSlice(batch, rank: group.rank, size: group.size) }

    /// Has the network's batch-norm layers normalise over the global batch, through the group (`on`),
    /// or over this process's batch alone again. `Trainer.train` turns it on for its steps.
    func synchronizeBatchNorm(_ on: Bool) {
        for layer in batchNorms { layer.ranks = on ? group : nil }
    }

    /// Replaces every parameter's gradient (this rank's mean over `local` of `global` samples) with the
    /// mean over the global batch, and returns the global batch's mean loss and correct count. A rank
    /// whose slice is empty (`local == 0`: it ran no forward or backward pass) first takes part in the
    /// batch-norm layers' reductions of the step, in the order the other ranks' passes made them.
    func reduce(_ parameters: [Parameter], local: Int, global: Int, loss: Float, correct: Int) throws -> (loss: Float, correct: Int) {
        if local == 0 {
            for layer in batchNorms { try layer.forwardWithoutSamples() }
            for layer in batchNorms.reversed() { try layer.backwardWithoutSamples() }
        }
        let total = parameters.reduce(0) { $0 + $1.value.count }
        let share = Float(local) / Float(global)
        buffer.removeAll(keepingCapacity: true)
        for p in parameters {
            if local == 0 {
                buffer.append(contentsOf: repeatElement(0, count: p.value.count))
            } else {
                p.gradient.scalars.withUnsafeBufferPointer { g in for v in g { buffer.append(v * share) } }
            }
        }
        buffer.append(local == 0 ? 0 : loss * Float(local))
        buffer.append(Float(correct))
        try buffer.withUnsafeMutableBufferPointer { try group.sum($0) }
        var offset = 0
        buffer.withUnsafeBufferPointer { sum in
            for p in parameters {
                let n = p.value.count
                p.gradient.overwrite(shape: p.value.shape) { g in
                    g.baseAddress!.update(from: sum.baseAddress! + offset, count: n)
                }
                offset += n
            }
        }
        return (buffer[total] / Float(global), Int(buffer[total + 1]))
    }

    /// The network's accuracy on `data`: each rank scores its contiguous shard and the confusion
    /// matrices are added up.
    func accuracy(of network: Sequential, on data: Dataset, loss: LossFunction, tta: TestTimeAugmentation? = nil, fill: [Float] = []) throws -> Double {
        let classes = data.classCount
        var confusion = [Double](repeating: 0, count: classes * classes)
        let shard = dataParallelSlice(0..<data.count, rank: group.rank, size: group.size)
        if !shard.isEmpty {
            let result = try evaluate(network, on: data.subset(Array(shard)), loss: loss, tta: tta, fill: fill)
            for (i, row) in result.confusion.enumerated() {
                for (j, n) in row.enumerated() { confusion[i * classes + j] = Double(n) }
            }
        }
        try group.sum(&confusion)
        let correct = (0..<classes).reduce(0.0) { $0 + confusion[$1 * classes + $1] }
        return data.count == 0 ? 0 : correct / Double(data.count)
    }
}

/// FNV-1a over the bits of what every replica must hold alike.
private struct Fingerprint {
    private var value: UInt64 = 0xcbf2_9ce4_8422_2325
    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    mutating func add(_ words: [Float]) {
        var h = value
        words.withUnsafeBufferPointer { for v in $0 { h = (h ^ UInt64(v.bitPattern)) &* 0x100_0000_01b3 } }
        value = h
    }
    mutating func add(_ text: String) {
        for byte in text.utf8 { value = (value ^ UInt64(byte)) &* 0x100_0000_01b3 }
    }
    mutating func add(_ data: Dataset) {
        add(data.images.scalars)
        add(data.labels.map(String.init).joined(separator: ","))
        add(data.classNames.joined(separator: "\n"))
    }
    /// The hash as three doubles of at most 22 bits each, exact in any sum over a few thousand ranks.
    var chunks: [Double] { [Double(value & 0x3F_FFFF), Double((value >> 22) & 0x3F_FFFF), Double(value >> 44)] }
}
