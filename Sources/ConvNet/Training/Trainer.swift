import Foundation

/// Training stopped for a reason the user can act on.
public enum TrainingError: Error, CustomStringConvertible {
    case diverged(epoch: Int, iteration: Int, loss: Float)
    case incompatibleData(String)

    public var description: String {
        switch self {
        case .diverged(let epoch, let iteration, let loss):
            let why = loss.isFinite ? " (over \(Self.explodingLoss): the weights are blowing up)" : ""
            return "training diverged: the loss became \(loss) at iteration \(iteration) (epoch \(epoch))\(why); "
                + "try a smaller --lr, gradient clipping (--clip 1 or --clip-norm 5), or another --init"
        case .incompatibleData(let m): return m
        }
    }

    /// A batch's mean loss above this stops training as `diverged`: no classification loss of a network
    /// that is learning comes near it (cross-entropy starts at ln(classes)), and a run past it only grows.
    public static let explodingLoss: Float = 1e6
}

/// One mini-batch step, as reported to the caller.
public struct IterationRecord: Sendable, Codable {
    public var epoch: Int
    public var iteration: Int
    /// 1-based batch index within the epoch, and the number of batches per epoch.
    public var batch: Int
    public var batches: Int
    public var loss: Float
    public var learningRate: Float
    /// Seconds since the epoch began, and training images per second over them.
    public var seconds: Double
    public var imagesPerSecond: Double
}

/// The end of an epoch, as reported to the caller.
public struct EpochRecord: Sendable, Codable {
    public var epoch: Int
    public var iteration: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var validationAccuracy: Double?
    public var testAccuracy: Double?
    /// Seconds the epoch's training steps took (evaluation excluded).
    public var seconds: Double
    public var imagesPerSecond: Double
}

public enum TrainingEvent {
    case iteration(IterationRecord)
    case epoch(EpochRecord)
}

/// Where a run stands; saved in checkpoints so `--resume` continues exactly, also from the middle of an epoch.
public struct TrainingProgress: Sendable, Codable, Equatable {
    public var epochsDone = 0
    public var iteration = 0
    public var bestValidationAccuracy = -1.0
    public var epochsWithoutImprovement = 0
    public var stoppedEarly = false
    /// Batches of epoch `epochsDone + 1` already trained (0 at an epoch boundary), and that epoch's running
    /// sums so far (loss times images, correct predictions, images), so its record comes out the same.
    public var batchesInEpoch = 0
    public var epochLossSum = 0.0
    public var epochCorrect = 0
    public var epochSeen = 0
    public init() {}

    enum CodingKeys: String, CodingKey {
        case epochsDone, iteration, bestValidationAccuracy, epochsWithoutImprovement, stoppedEarly
        case batchesInEpoch, epochLossSum, epochCorrect, epochSeen
    }

    /// Checkpoints written before mid-epoch checkpoints existed have no epoch-position keys: they read as 0.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        epochsDone = try c.decode(Int.self, forKey: .epochsDone)
        iteration = try c.decode(Int.self, forKey: .iteration)
        bestValidationAccuracy = try c.decode(Double.self, forKey: .bestValidationAccuracy)
        epochsWithoutImprovement = try c.decode(Int.self, forKey: .epochsWithoutImprovement)
        stoppedEarly = try c.decode(Bool.self, forKey: .stoppedEarly)
        batchesInEpoch = try c.decodeIfPresent(Int.self, forKey: .batchesInEpoch) ?? 0
        epochLossSum = try c.decodeIfPresent(Double.self, forKey: .epochLossSum) ?? 0
        epochCorrect = try c.decodeIfPresent(Int.self, forKey: .epochCorrect) ?? 0
        epochSeen = try c.decodeIfPresent(Int.self, forKey: .epochSeen) ?? 0
    }
}

/// Mini-batch training of a `Sequential` network: one step is forward, loss, backward, clipping,
/// learning-rate schedule, optimizer update.
public final class Trainer {
    public let network: Sequential
    public let options: TrainingOptions
    public let optimizer: any Optimizer
    public var progress = TrainingProgress()
    public private(set) var epochRecords: [EpochRecord] = []
    /// The moving average of the weights (`TrainingOptions.ema`), updated after every step; nil without one.
    public let weightAverage: WeightAverage?

    /// Copies of the parameters that training keeps besides them: the optimizer's state and the weight average.
    public var parameterCopies: Int { optimizer.stateSuffixes.count + (weightAverage == nil ? 0 : 1) }
    /// The ranks of a data-parallel run (see `TrainingGroup`); nil, or a group of one, trains in this process alone.
    public var group: (any TrainingGroup)?
    /// The group's checked replicas (`joinGroup`).
    var groupRun: DataParallelRun?

    public init(network: Sequential, options: TrainingOptions) throws {
        try options.validate()
        self.network = network
        self.options = options
        self.optimizer = options.makeOptimizer()
        weightAverage = options.ema.map { WeightAverage(network: network, decay: $0) }
    }

    /// The order of the training images in `epoch` (0-based): a permutation that depends only on
    /// the seed and the epoch, so a resumed run sees the same batches.
    public func epochOrder(_ epoch: Int, count: Int) -> [Int] {
        var random = SeededGenerator(seed: options.seed ^ (UInt64(epoch + 1) &* 0x9E37_79B9_7F4A_7C15))
        return random.permutation(count)
    }

    /// Trains from `progress.epochsDone` (and `progress.batchesInEpoch` batches into the next epoch) to
    /// `options.epochs` (or an early stop), reporting each step and epoch to `onEvent`. The network's
    /// weights are updated in place; `progress` is up to date whenever `onEvent` is called, so a checkpoint
    /// written then resumes exactly there.
    public func train(
        on train: Dataset, validation: Dataset? = nil, test: Dataset? = nil,
        onEvent: (TrainingEvent) throws -> Void = { _ in }
    ) throws {
        guard train.sampleShape == network.inputShape else {
            throw TrainingError.incompatibleData(
                "the network takes \(formatShape(network.inputShape)) inputs but the data set '\(train.name)' has "
                    + "\(formatShape(train.sampleShape)) images")
        }
        guard train.count > 0 else { throw TrainingError.incompatibleData("the training set '\(train.name)' is empty") }
        let batchSize = options.batchSize
        let batches = (train.count + batchSize - 1) / batchSize
        let schedule = options.schedule(batchesPerEpoch: batches), clipping = options.clipping
        if schedule.warmupIterations >= schedule.totalIterations && schedule.warmupIterations > 0 {
            throw TrainingError.incompatibleData(
                "--warmup \(options.warmup!) is not shorter than the run's \(schedule.totalIterations) iterations "
                    + "(\(options.epochs) epochs of \(batches) batches)")
        }
        // The whole step's memory (its batch, or this rank's part of it, and the optimizer's state) is
        // checked against the budget before the first step allocates any of it; the weight average is one
        // more copy of the parameters, like an optimizer's state.
        let localBatch = group.map { dataParallelSlice(0..<batchSize, rank: $0.rank, size: $0.size).count } ?? batchSize
        try network.checkMemory(batch: min(localBatch, train.count), training: true, optimizerSlots: parameterCopies)
        let parameters = network.parameters
        // Reused from step to step, like the layers' buffers (see `Tensor.overwrite`): the batch, its
        // indices and labels, and the loss's gradient. `backwardParameters` releases the layers'
        // caches, so at the next step nobody else holds them and they are written in place.
        var images = Tensor.empty
        var indices: [Int] = [], labels: [Int] = []
        indices.reserveCapacity(batchSize)
        labels.reserveCapacity(batchSize)
        var lossBuffers = LossBuffers()
        let perSample = train.sampleShape.reduce(1, *)
        if groupRun?.group !== group || groupRun?.checked.progress != progress || groupRun?.checked.images != train.count {
            try joinGroup(train: train, evaluated: [validation, test].compactMap { $0 })
        }
        let parallel = groupRun
        parallel?.synchronizeBatchNorm(true)
        defer { parallel?.synchronizeBatchNorm(false) }
        // The average starts at the weights the first step starts from (on every rank, rank 0's).
        if progress.iteration == 0 { weightAverage?.reset(from: network) }
        let tta = options.testTimeAugmentation
        if let tta { try tta.check(sampleShape: train.sampleShape) }
        let fill = (tta?.shift ?? 0) > 0 ? TestTimeAugmentation.fill(for: train) : []
        // Scores the weight average when there is one (`WeightAverage`), with the test-time augmentation.
        let score = { (data: Dataset) throws -> Double in
            let run = {
                try parallel?.accuracy(of: self.network, on: data, loss: self.options.loss, tta: tta, fill: fill)
                    ?? evaluate(self.network, on: data, loss: self.options.loss, tta: tta, fill: fill).accuracy
            }
            return try self.weightAverage.map { try $0.withAveragedWeights(in: self.network, run) } ?? run()
        }

        let augmenter = try options.augmentation.flatMap { $0.isIdentity ? nil : try BatchAugmenter($0, seed: options.seed, train: train) }
        while progress.epochsDone < options.epochs && !progress.stoppedEarly {
            let epoch = progress.epochsDone + 1
            let order = epochOrder(progress.epochsDone, count: train.count)
            let started = Date()
            // A run resumed mid-epoch continues the epoch's sums (a value out of range starts the epoch over).
            if !(0...batches).contains(progress.batchesInEpoch) || !(0...(progress.batchesInEpoch * batchSize)).contains(progress.epochSeen)
                || !(0...progress.epochSeen).contains(progress.epochCorrect) || !progress.epochLossSum.isFinite {
                progress.batchesInEpoch = 0
            }
            if progress.batchesInEpoch == 0 { progress.epochLossSum = 0; progress.epochCorrect = 0; progress.epochSeen = 0 }
            var lossSum = progress.epochLossSum, correct = progress.epochCorrect, seen = progress.epochSeen
            let resumedSeen = seen
            for b in progress.batchesInEpoch..<batches {
                indices.removeAll(keepingCapacity: true)
                labels.removeAll(keepingCapacity: true)
                let batch = (b * batchSize)..<min((b + 1) * batchSize, train.count)
                for i in parallel?.slice(batch) ?? batch {
                    indices.append(order[i])
                    labels.append(train.labels[order[i]])
                }
                var stepLoss: Float = 0, stepCorrect = 0
                if !indices.isEmpty {
                    images.overwrite(shape: [indices.count] + train.sampleShape) { dst in
                        train.images.withUnsafeBufferPointer { src in
                            for (row, index) in indices.enumerated() {
                                (dst.baseAddress! + row * perSample).update(from: src.baseAddress! + index * perSample, count: perSample)
                            }
                        }
                    }
                    let firstRow = (parallel?.slice(batch).lowerBound ?? batch.lowerBound) - batch.lowerBound
                    augmenter?.apply(to: &images, epoch: progress.epochsDone, batch: b, firstRow: firstRow, indices: indices)
                    Dropout.position(network.layers, at: DropoutPosition(seed: options.seed, epoch: progress.epochsDone, batch: b, firstRow: firstRow))
                    let output = try network.forward(images, training: true)
                    let result: LossResult
                    do {
                        result = try options.loss.evaluate(output: output, labels: labels, labelSmoothing: options.labelSmoothing ?? 0, buffers: &lossBuffers)
                    } catch ValueError.nonFiniteLoss(_, let value) {
                        throw TrainingError.diverged(epoch: epoch, iteration: progress.iteration + 1, loss: value)
                    }
                    try network.backwardParameters(result.gradient)
                    stepLoss = result.value
                    stepCorrect = countCorrect(output, labels: labels, loss: options.loss)
                }
                if let parallel {
                    (stepLoss, stepCorrect) = try parallel.reduce(
                        parameters, local: indices.count, global: batch.count, loss: stepLoss, correct: stepCorrect)
                }
                // The batch's loss over every rank, so all of them stop together.
                if !(stepLoss <= TrainingError.explodingLoss) {
                    throw TrainingError.diverged(epoch: epoch, iteration: progress.iteration + 1, loss: stepLoss)
                }
                clipping.apply(to: parameters)
                optimizer.learningRate = schedule.rate(atIteration: progress.iteration)
                optimizer.step(parameters, context: network.context)
                progress.iteration += 1
                weightAverage?.update(from: network, update: progress.iteration)
                lossSum += Double(stepLoss) * Double(batch.count)
                seen += batch.count
                correct += stepCorrect
                // After the last batch this says "all batches done": a checkpoint written now resumes at the epoch's end.
                progress.batchesInEpoch = b + 1
                (progress.epochLossSum, progress.epochCorrect, progress.epochSeen) = (lossSum, correct, seen)
                let elapsed = Date().timeIntervalSince(started)
                try onEvent(.iteration(IterationRecord(
                    epoch: epoch, iteration: progress.iteration, batch: b + 1, batches: batches, loss: stepLoss,
                    learningRate: optimizer.learningRate, seconds: elapsed,
                    imagesPerSecond: elapsed > 0 ? Double(seen - resumedSeen) / elapsed : 0)))
            }
            let seconds = Date().timeIntervalSince(started)
            let validationAccuracy = try validation.map(score)
            let testAccuracy = try test.map(score)
            let trainAccuracy = Double(correct) / Double(max(seen, 1))
            progress.epochsDone = epoch
            progress.batchesInEpoch = 0
            (progress.epochLossSum, progress.epochCorrect, progress.epochSeen) = (0, 0, 0)
            switch options.earlyStopping {
            case .trainAccuracy(let target)?:
                if trainAccuracy >= target { progress.stoppedEarly = true }
            case .patience(let patience)?:
                let score = validationAccuracy ?? testAccuracy ?? trainAccuracy
                if score > progress.bestValidationAccuracy {
                    progress.bestValidationAccuracy = score
                    progress.epochsWithoutImprovement = 0
                } else {
                    progress.epochsWithoutImprovement += 1
                    if progress.epochsWithoutImprovement >= patience { progress.stoppedEarly = true }
                }
            case nil: break
            }
            let record = EpochRecord(
                epoch: epoch, iteration: progress.iteration, trainLoss: lossSum / Double(max(seen, 1)), trainAccuracy: trainAccuracy,
                validationAccuracy: validationAccuracy, testAccuracy: testAccuracy, seconds: seconds,
                imagesPerSecond: seconds > 0 ? Double(seen - resumedSeen) / seconds : 0)
            epochRecords.append(record)
            try onEvent(.epoch(record))
        }
    }
}
