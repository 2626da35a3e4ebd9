import Foundation

/// A training run saved after an epoch: the model archive's arrays plus the optimizer's state, the
/// run's progress and its settings, in one `.npz` written atomically.
public struct Checkpoint {
    public var model: ModelArchive
    public var progress: TrainingProgress
    public var optimizerState: [String: Tensor]
    public var optimizerSteps: Int
    /// The caller's description of the run (JSON), returned unchanged on resume.
    public var settings: String

    public init(model: ModelArchive, progress: TrainingProgress, optimizerState: [String: Tensor], optimizerSteps: Int, settings: String) {
        self.model = model
        self.progress = progress
        self.optimizerState = optimizerState
        self.optimizerSteps = optimizerSteps
        self.settings = settings
    }

    public init(trainer: Trainer, model: ModelArchive, settings: String) {
        self.init(model: model, progress: trainer.progress, optimizerState: trainer.optimizer.state,
                  optimizerSteps: trainer.optimizer.steps, settings: settings)
    }

    public func write(to url: URL) throws {
        var arrays = model.arrays
        for key in optimizerState.keys.sorted() { arrays.append(("optimizer.\(key)", NumPyArray(tensor: optimizerState[key]!))) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        arrays.append(("train.progress", NumPyArray(string: String(decoding: try encoder.encode(progress), as: UTF8.self))))
        arrays.append(("train.optimizer_steps", NumPyArray(labels: [optimizerSteps])))
        arrays.append(("train.settings", NumPyArray(string: settings)))
        try NumPyArchive.write(arrays, to: url, compressed: false)
    }

    public static func read(from url: URL) throws -> Checkpoint {
        let arrays = try NumPyArchive.read(from: url)
        let model = try ModelArchive(arrays: arrays, path: url.path)
        guard let progressText = try arrays["train.progress"]?.string(),
              let progress = try? JSONDecoder().decode(TrainingProgress.self, from: Data(progressText.utf8)),
              let steps = try arrays["train.optimizer_steps"]?.integers().first,
              let settings = try arrays["train.settings"]?.string()
        else {
            throw WeightsError.notAModel(path: url.path, problem: "it is a model file but not a training checkpoint (no train.* arrays)")
        }
        var state: [String: Tensor] = [:]
        for (name, array) in arrays where name.hasPrefix("optimizer.") {
            state[String(name.dropFirst("optimizer.".count))] = try array.tensor()
        }
        return Checkpoint(model: model, progress: progress, optimizerState: state, optimizerSteps: steps, settings: settings)
    }
}

extension Trainer {
    /// Continues from a checkpoint: its progress and optimizer state (the weights are the network's).
    public func restore(from checkpoint: Checkpoint) {
        progress = checkpoint.progress
        progress.stoppedEarly = false
        optimizer.state = checkpoint.optimizerState
        optimizer.steps = checkpoint.optimizerSteps
    }
}
