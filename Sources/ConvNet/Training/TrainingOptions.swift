/// When to stop before the last epoch.
public enum EarlyStopping: Sendable, Equatable, Codable {
    /// Stop once an epoch's training accuracy reaches the target (the course project's rule).
    case trainAccuracy(Double)
    /// Stop after this many epochs without a better validation accuracy.
    case patience(Int)
}

/// Everything that decides a training run besides the network and the data.
public struct TrainingOptions: Sendable, Equatable, Codable {
    public var epochs = 5
    public var batchSize = 64
    public var optimizer = OptimizerKind.sgd
    public var learningRate: Float = 0.01
    public var momentum: Float = 0.9
    public var nesterov = false
    public var weightDecay: Float = 0
    /// Step decay: the rate is multiplied by `lrDecay` every `decayEvery` iterations.
    public var lrDecay: Float = 1
    public var decayEvery = 1000
    /// Clip each gradient element to ±clipValue.
    public var clipValue: Float?
    /// Scale all gradients so their global norm is at most clipNorm.
    public var clipNorm: Float?
    public var earlyStopping: EarlyStopping?
    public var seed: UInt64 = 1
    public var loss = LossFunction.softmaxCrossEntropy
    /// Random changes to each training image (`--augment`); nil (also in runs saved before it existed): none.
    public var augmentation: Augmentation?

    public init() {}

    /// Checks every value; the message names the option and what it must be.
    public func validate() throws {
        func fail(_ m: String) -> ValueError { .invalidArgument(m) }
        guard epochs > 0 else { throw fail("--epochs must be positive, got \(epochs)") }
        guard batchSize > 0 else { throw fail("--batch-size must be positive, got \(batchSize)") }
        guard learningRate.isFinite, learningRate > 0 else { throw fail("--lr must be a positive number, got \(learningRate)") }
        guard momentum >= 0, momentum < 1 else { throw fail("--momentum must be in [0, 1), got \(momentum)") }
        guard weightDecay >= 0 else { throw fail("--weight-decay must not be negative, got \(weightDecay)") }
        guard lrDecay > 0, lrDecay <= 1 else { throw fail("--lr-decay must be in (0, 1], got \(lrDecay)") }
        guard decayEvery > 0 else { throw fail("--decay-every must be positive, got \(decayEvery)") }
        if let c = clipValue, !(c > 0) { throw fail("--clip must be positive, got \(c)") }
        if let c = clipNorm, !(c > 0) { throw fail("--clip-norm must be positive, got \(c)") }
        try augmentation?.validate()
        switch earlyStopping {
        case .trainAccuracy(let a) where !(a > 0 && a <= 1):
            throw fail("--early-stop accuracy must be in (0, 1], got \(a)")
        case .patience(let n) where n < 1:
            throw fail("--early-stop patience must be at least 1 epoch, got \(n)")
        default: break
        }
    }

    /// A fresh optimizer of the chosen kind.
    public func makeOptimizer() -> any Optimizer {
        switch optimizer {
        case .sgd: return SGD(learningRate: learningRate, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay)
        case .adagrad: return Adagrad(learningRate: learningRate, weightDecay: weightDecay)
        case .adam: return Adam(learningRate: learningRate, weightDecay: weightDecay)
        }
    }

    public var schedule: StepDecay { StepDecay(base: learningRate, decay: lrDecay, every: decayEvery) }

    public var clipping: GradientClipping {
        if let c = clipNorm { return .globalNorm(c) }
        if let c = clipValue { return .value(c) }
        return .none
    }
}
