import Foundation

extension Dataset {
    /// Splits off `fraction` of the samples, stratified by class (each class contributes the same share,
    /// rounded), with a seeded shuffle. Returns (kept, heldOut); both keep this set's class names.
    public func holdOut(fraction: Double, seed: UInt64, stratified: Bool = true) throws -> (kept: Dataset, heldOut: Dataset) {
        guard fraction > 0, fraction < 1 else {
            throw DataError.invalidOption("the held-out fraction must be between 0 and 1 (exclusive), got \(fraction)")
        }
        var random = SeededGenerator(seed: seed)
        var kept: [Int] = [], held: [Int] = []
        if stratified {
            var byClass = [[Int]](repeating: [], count: classCount)
            for (i, label) in labels.enumerated() { byClass[label].append(i) }
            for members in byClass where !members.isEmpty {
                let order = random.permutation(members.count).map { members[$0] }
                let h = Int((Double(members.count) * fraction).rounded())
                held += order.prefix(h)
                kept += order.dropFirst(h)
            }
        } else {
            let order = random.permutation(count)
            let h = Int((Double(count) * fraction).rounded())
            held = Array(order.prefix(h)); kept = Array(order.dropFirst(h))
        }
        guard !kept.isEmpty, !held.isEmpty else {
            throw DataError.invalidOption("\(name): holding out \(fraction) of \(count) samples leaves an empty set")
        }
        // Mix the classes so that no prefix is sorted by label.
        kept = random.permutation(kept.count).map { kept[$0] }
        held = random.permutation(held.count).map { held[$0] }
        return (subset(kept), subset(held))
    }
}

/// One mini-batch: `images` is B x (sample shape), `labels[i]` the class of image i, `indices` the samples'
/// positions in the data set.
public struct MiniBatch: Sendable {
    public var images: Tensor
    public var labels: [Int]
    public var indices: ArraySlice<Int>
    public var count: Int { labels.count }
}

/// Mini-batches over a data set: each epoch draws a seeded permutation of all samples and cuts it into
/// batches of `batchSize` (the last one may be smaller). Batches are gathered into buffers that are reused
/// from one batch to the next when the caller no longer holds the previous batch; the data set itself is
/// never copied.
public struct BatchLoader: Sendable {
    public let dataset: Dataset
    public let batchSize: Int
    public let shuffle: Bool
    public private(set) var generator: SeededGenerator
    public private(set) var epoch = 0

    public init(dataset: Dataset, batchSize: Int, seed: UInt64, shuffle: Bool = true) throws {
        guard batchSize > 0 else { throw DataError.invalidOption("the batch size must be positive, got \(batchSize)") }
        self.dataset = dataset
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.generator = SeededGenerator(seed: seed)
    }

    /// Batches per epoch.
    public var batchCount: Int { (dataset.count + batchSize - 1) / batchSize }

    /// The next epoch's batches (a new permutation each call when shuffling).
    public mutating func nextEpoch() -> EpochBatches {
        epoch += 1
        let order = shuffle ? generator.permutation(dataset.count) : Array(0..<dataset.count)
        return EpochBatches(dataset: dataset, order: order, batchSize: batchSize)
    }
}

/// The batches of one epoch, in order. `next()` returns a batch that shares its storage with the loader's
/// buffer: drop it (or let it go out of scope) before asking for the next one and no memory is allocated.
public struct EpochBatches: Sequence, IteratorProtocol, Sendable {
    public let dataset: Dataset
    public let order: [Int]
    public let batchSize: Int
    private var position = 0
    private var buffer: Tensor
    private var labelBuffer: [Int]

    init(dataset: Dataset, order: [Int], batchSize: Int) {
        self.dataset = dataset
        self.order = order
        self.batchSize = batchSize
        self.buffer = Tensor(shape: [Swift.min(batchSize, order.count)] + dataset.sampleShape)
        self.labelBuffer = []
        labelBuffer.reserveCapacity(batchSize)
    }

    public mutating func next() -> MiniBatch? {
        guard position < order.count else { return nil }
        let end = Swift.min(position + batchSize, order.count)
        let indices = order[position..<end]
        position = end
        if buffer.batchSize != indices.count {
            buffer = Tensor(shape: [indices.count] + dataset.sampleShape)   // only for the last, smaller batch
        }
        Self.gather(dataset.images, indices, into: &buffer)
        labelBuffer.removeAll(keepingCapacity: true)
        for i in indices { labelBuffer.append(dataset.labels[i]) }
        return MiniBatch(images: buffer, labels: labelBuffer, indices: indices)
    }

    /// Copies the samples at `indices` of `source` into the leading rows of `destination`.
    public static func gather(_ source: Tensor, _ indices: ArraySlice<Int>, into destination: inout Tensor) {
        let per = source.sampleShape.reduce(1, *)
        precondition(destination.count >= indices.count * per, "gather: destination too small")
        source.withUnsafeBufferPointer { src in
            destination.withUnsafeMutableBufferPointer { dst in
                let s = src.baseAddress!, d = dst.baseAddress!
                var row = 0
                for index in indices {
                    (d + row &* per).update(from: s + index &* per, count: per)
                    row &+= 1
                }
            }
        }
    }
}
