import Foundation

/// A training run saved after an epoch: the model archive's arrays plus the optimizer's state, the
/// run's progress and its settings, in one `.npz` written atomically.
public struct Checkpoint {
    public var model: ModelArchive
    public var progress: TrainingProgress
    public var optimizerState: [String: Tensor]
    public var optimizerSteps: Int
    /// The weight average's values by parameter name (`WeightAverage.state`, saved as `ema.NAME`); empty without one.
    public var weightAverage: [String: Tensor]
    /// The caller's description of the run (JSON), returned unchanged on resume.
    public var settings: String

    public init(
        model: ModelArchive, progress: TrainingProgress, optimizerState: [String: Tensor], optimizerSteps: Int, settings: String,
        weightAverage: [String: Tensor] = [:]
    ) {
        self.model = model
        self.weightAverage = weightAverage
        self.progress = progress
        self.optimizerState = optimizerState
        self.optimizerSteps = optimizerSteps
        self.settings = settings
    }

    public init(trainer: Trainer, model: ModelArchive, settings: String) {
        self.init(model: model, progress: trainer.progress, optimizerState: trainer.optimizer.state,
                  optimizerSteps: trainer.optimizer.steps, settings: settings, weightAverage: trainer.weightAverage?.state ?? [:])
    }

    public func write(to url: URL) throws {
        var arrays = model.arrays
        for key in optimizerState.keys.sorted() { arrays.append(("optimizer.\(key)", NumPyArray(tensor: optimizerState[key]!))) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for key in weightAverage.keys.sorted() { arrays.append(("ema.\(key)", NumPyArray(tensor: weightAverage[key]!))) }
        arrays.append(("train.progress", NumPyArray(string: String(decoding: try encoder.encode(progress), as: UTF8.self))))
        arrays.append(("train.optimizer_steps", NumPyArray(labels: [optimizerSteps])))
        arrays.append(("train.settings", NumPyArray(string: settings)))
        try NumPyArchive.write(arrays, to: url, compressed: false)
    }

    public static func read(from url: URL, memoryBudget: MemoryBudget = .machine) throws -> Checkpoint {
        let arrays = try NumPyArchive.read(from: url)
        let model = try ModelArchive(arrays: arrays, path: url.path, memoryBudget: memoryBudget)
        let trainArrays = ["train.progress", "train.optimizer_steps", "train.settings"]
        let missing = trainArrays.filter { arrays[$0] == nil }
        guard missing.count < trainArrays.count else {
            throw WeightsError.notAModel(path: url.path, problem: "it is a model file but not a training checkpoint (no train.* arrays)")
        }
        guard missing.isEmpty else {
            throw WeightsError.damaged(path: url.path, problem: "it lacks \(missing.joined(separator: " and ")) (a checkpoint holds all of \(trainArrays.joined(separator: ", ")))")
        }
        func text(_ name: String) throws -> String {
            do { return try arrays[name]!.string() } catch {
                throw WeightsError.damaged(path: url.path, problem: "its \(name) is not text")
            }
        }
        let progressText = try text("train.progress"), settings = try text("train.settings")
        let progress: TrainingProgress
        do { progress = try JSONDecoder().decode(TrainingProgress.self, from: Data(progressText.utf8)) } catch {
            throw WeightsError.damaged(path: url.path, problem: "its train.progress does not read as a run's progress: \(plainDescription(error))")
        }
        guard let stepsArray = try? arrays["train.optimizer_steps"]!.integers(), stepsArray.count == 1, let steps = stepsArray.first else {
            throw WeightsError.damaged(path: url.path, problem: "its train.optimizer_steps is not one whole number")
        }
        var state: [String: Tensor] = [:]
        for (name, array) in arrays where name.hasPrefix("optimizer.") {
            state[String(name.dropFirst("optimizer.".count))] = try array.tensor()
        }
        var average: [String: Tensor] = [:]
        for (name, array) in arrays where name.hasPrefix("ema.") { average[String(name.dropFirst("ema.".count))] = try array.tensor() }
        return Checkpoint(model: model, progress: progress, optimizerState: state, optimizerSteps: steps, settings: settings, weightAverage: average)
    }
}

extension Checkpoint {
    /// Which checkpoint a run at `progress` writes, in words: "the checkpoint of epoch 3", or "the
    /// checkpoint at iteration 250 (epoch 4, after batch 15)" for one written in the middle of an epoch.
    public static func describe(_ progress: TrainingProgress) -> String {
        progress.batchesInEpoch == 0
            ? "the checkpoint of epoch \(progress.epochsDone)"
            : "the checkpoint at iteration \(progress.iteration) (epoch \(progress.epochsDone + 1), after batch \(progress.batchesInEpoch))"
    }

    /// Checks the progress counters and the optimizer's step count: each in range and consistent with the
    /// others (so that arithmetic on them cannot overflow). `path` names the checkpoint in the error.
    public func checkProgress(path: String = "checkpoint") throws(WeightsError) {
        func fail(_ problem: String) -> WeightsError { .damaged(path: path, problem: problem) }
        let p = progress
        // Far above any real run, far below where the counters' arithmetic could overflow.
        let limit = 1 << 40
        guard (0...limit).contains(p.epochsDone) else { throw fail("its progress says \(counted(p.epochsDone, "epoch")) done") }
        guard (0...limit).contains(p.iteration), p.iteration >= p.epochsDone else {
            throw fail("its progress says iteration \(p.iteration) after \(p.epochsDone) epochs")
        }
        guard (0...p.epochsDone).contains(p.epochsWithoutImprovement) else {
            throw fail("its progress says \(p.epochsWithoutImprovement) epochs without improvement after \(p.epochsDone) epochs")
        }
        guard p.bestValidationAccuracy == -1 || (0...1).contains(p.bestValidationAccuracy) else {
            throw fail("its progress holds a best validation accuracy of \(p.bestValidationAccuracy)")
        }
        guard (0...limit).contains(p.batchesInEpoch), (0...limit).contains(p.epochSeen), (0...p.epochSeen).contains(p.epochCorrect),
              p.epochLossSum.isFinite, p.epochLossSum >= 0
        else {
            throw fail("its progress within the epoch (batch \(p.batchesInEpoch), \(p.epochCorrect) of \(p.epochSeen) images right, "
                + "loss sum \(p.epochLossSum)) is out of range")
        }
        guard (0...limit).contains(optimizerSteps), optimizerSteps == p.iteration else {
            throw fail("it says the optimizer took \(optimizerSteps) steps in \(counted(p.iteration, "iteration")) (one step each)")
        }
        guard p.epochSeen == 0 || p.batchesInEpoch > 0, p.batchesInEpoch <= p.iteration else {
            throw fail("its progress within the epoch (batch \(p.batchesInEpoch), \(p.epochSeen) images) contradicts its iteration \(p.iteration)")
        }
    }
}

extension Checkpoint {
    /// Checks the progress against the run it continues: at most its `epochs`, and a position within the
    /// epoch that `batches` batches of at most `batchSize` images allow.
    public func checkProgress(path: String = "checkpoint", epochs: Int, batches: Int, batchSize: Int) throws(WeightsError) {
        func fail(_ problem: String) -> WeightsError { .damaged(path: path, problem: problem) }
        let p = progress
        guard p.epochsDone <= epochs else {
            throw fail("its progress says \(counted(p.epochsDone, "epoch")) done, but its settings ask for \(epochs)")
        }
        // One iteration per batch: the epochs done and the batches of the next one add up to the iteration.
        let (done, overflow) = p.epochsDone.multipliedReportingOverflow(by: batches)
        guard p.batchesInEpoch <= batches, !overflow, p.iteration == done &+ p.batchesInEpoch,
              p.epochSeen <= p.batchesInEpoch.multipliedReportingOverflow(by: batchSize).partialValue
        else {
            throw fail("its progress (iteration \(p.iteration), epoch \(p.epochsDone + 1), batch \(p.batchesInEpoch), \(p.epochSeen) images) "
                + "does not fit a run of \(counted(batches, "batch")) of \(batchSize) per epoch")
        }
    }
}

extension Trainer {
    /// Continues from a checkpoint: its progress and optimizer state (the weights are the network's).
    ///
    /// Every value is checked against this trainer's network and optimizer before it is used: each
    /// optimizer state tensor must belong to a parameter under a key this optimizer uses, have the
    /// parameter's shape and hold finite numbers; the progress counters must be in range. `path` names the
    /// checkpoint in the error (`WeightsError.damaged`).
    public func restore(from checkpoint: Checkpoint, path: String = "checkpoint") throws {
        func fail(_ problem: String) -> WeightsError { .damaged(path: path, problem: problem) }
        try checkpoint.checkProgress(path: path)
        let parameters = Dictionary(network.parameters.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let suffixes = optimizer.stateSuffixes
        for (key, tensor) in checkpoint.optimizerState.sorted(by: { $0.key < $1.key }) {
            let owner = suffixes.isEmpty
                ? parameters.keys.filter { key.hasPrefix($0 + ".") }.max(by: { $0.count < $1.count })
                : suffixes.lazy.compactMap { key.hasSuffix($0) ? String(key.dropLast($0.count)) : nil }.first { parameters[$0] != nil }
            guard let name = owner, let parameter = parameters[name] else {
                throw fail("optimizer state 'optimizer.\(key)' belongs to no parameter of the network for \(optimizer.kind)")
            }
            guard tensor.shape == parameter.value.shape else {
                throw fail("optimizer state 'optimizer.\(key)' has shape \(formatShape(tensor.shape)), "
                    + "but parameter '\(name)' has \(formatShape(parameter.value.shape))")
            }
            guard !tensor.hasNonFinite else { throw fail("optimizer state 'optimizer.\(key)' holds values that are not finite numbers") }
        }
        if let average = weightAverage {
            try average.restore(checkpoint.weightAverage, path: path)
        } else if let name = checkpoint.weightAverage.keys.sorted().first {
            throw fail("it holds a weight average ('ema.\(name)') but this run has no --ema")
        }
        progress = checkpoint.progress
        progress.stoppedEarly = false
        optimizer.state = checkpoint.optimizerState
        optimizer.steps = checkpoint.optimizerSteps
    }
}
