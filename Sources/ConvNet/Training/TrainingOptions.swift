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
    /// Step decay: the rate is multiplied by `lrDecay` every `decayEvery` iterations (the `step` schedule only).
    public var lrDecay: Float = 1
    public var decayEvery = 1000
    /// The learning rate's curve (`--schedule`); nil (also in runs saved before it existed): step decay.
    public var scheduleKind: ScheduleKind?
    /// The linear warm-up at the start (`--warmup`); nil: none.
    public var warmup: Warmup?
    /// Which parameters weight decay applies to (`--decay-scope`); nil: all of them.
    public var decayScope: WeightDecayScope?
    /// Softmax cross-entropy against targets smoothed by this (`--label-smoothing`, in [0, 1)); nil: none.
    public var labelSmoothing: Float?
    /// Clip each gradient element to ±clipValue.
    public var clipValue: Float?
    /// Scale all gradients so their global norm is at most clipNorm.
    public var clipNorm: Float?
    public var earlyStopping: EarlyStopping?
    public var seed: UInt64 = 1
    public var loss = LossFunction.softmaxCrossEntropy
    /// Random changes to each training image (`--augment`); nil (also in runs saved before it existed): none.
    public var augmentation: Augmentation?
    /// The decay of an exponential moving average of the weights (`--ema`, in (0, 1)), which is evaluated and
    /// saved as the model (`WeightAverage`); nil (also in runs saved before it existed): none.
    public var ema: Float?
    /// Test-time augmentation of every evaluation (`--tta`), also recorded in model.npz; nil: none.
    public var testTimeAugmentation: TestTimeAugmentation?

    public init() {}

    /// Upper bounds that keep every count derived from these (iterations, batch buffers) far from overflow.
    public static let maxEpochs = 1_000_000, maxBatchSize = 1 << 20

    /// Checks every value; the message names the option and what it must be.
    public func validate() throws {
        func fail(_ m: String) -> ValueError { .invalidArgument(m) }
        guard (1...Self.maxEpochs).contains(epochs) else { throw fail("--epochs must be from 1 to \(Self.maxEpochs), got \(epochs)") }
        guard (1...Self.maxBatchSize).contains(batchSize) else { throw fail("--batch-size must be from 1 to \(Self.maxBatchSize), got \(batchSize)") }
        guard learningRate.isFinite, learningRate > 0 else { throw fail("--lr must be a positive finite number, got \(learningRate)") }
        guard momentum >= 0, momentum < 1 else { throw fail("--momentum must be in [0, 1), got \(momentum)") }
        guard weightDecay.isFinite, weightDecay >= 0 else { throw fail("--weight-decay must be a finite number, 0 or more, got \(weightDecay)") }
        guard lrDecay > 0, lrDecay <= 1 else { throw fail("--lr-decay must be in (0, 1], got \(lrDecay)") }
        guard decayEvery > 0 else { throw fail("--decay-every must be positive, got \(decayEvery)") }
        if let c = clipValue, !(c.isFinite && c > 0) { throw fail("--clip must be a positive finite number, got \(c)") }
        if let c = clipNorm, !(c.isFinite && c > 0) { throw fail("--clip-norm must be a positive finite number, got \(c)") }
        try augmentation?.validate()
        try testTimeAugmentation?.validate()
        if let d = ema, !(d > 0 && d < 1) { throw fail("--ema must be a decay in (0, 1), such as 0.999, got \(d)") }
        if let e = labelSmoothing {
            guard e >= 0, e < 1 else { throw fail("--label-smoothing must be in [0, 1), got \(e)") }
            guard e == 0 || loss == .softmaxCrossEntropy else {
                throw fail("--label-smoothing applies to softmax cross-entropy only; this network trains with the \(loss.rawValue) loss")
            }
        }
        if case .epochs(let e)? = warmup, !(e >= 0 && e < Double(epochs)) {
            throw fail("--warmup must be shorter than the run's \(epochs) epochs, got \(e) epochs")
        }
        if case .iterations(let n)? = warmup, n < 0 { throw fail("--warmup must not be negative, got \(n) iterations") }
        if scheduleKind != nil && scheduleKind != .step && lrDecay != 1 {
            throw fail("--lr-decay belongs to the step schedule; --schedule \(scheduleKind!.rawValue) sets the rate's whole curve, so leave out --lr-decay")
        }
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
        let scope = decayScope ?? .all
        switch optimizer {
        case .sgd: return SGD(learningRate: learningRate, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay, decayScope: scope)
        case .adagrad: return Adagrad(learningRate: learningRate, weightDecay: weightDecay, decayScope: scope)
        case .adam: return Adam(learningRate: learningRate, weightDecay: weightDecay, decayScope: scope)
        case .adamw: return Adam.adamW(learningRate: learningRate, weightDecay: weightDecay, decayScope: scope)
        }
    }

    /// The learning rate of each iteration of a run with `batchesPerEpoch` batches per epoch.
    public func schedule(batchesPerEpoch: Int) -> LearningRateSchedule {
        LearningRateSchedule(
            kind: scheduleKind ?? .step, base: learningRate, stepDecay: StepDecay(base: learningRate, decay: lrDecay, every: decayEvery),
            warmupIterations: warmup?.iterations(batchesPerEpoch: batchesPerEpoch) ?? 0, totalIterations: epochs * batchesPerEpoch)
    }

    public var clipping: GradientClipping {
        if let c = clipNorm { return .globalNorm(c) }
        if let c = clipValue { return .value(c) }
        return .none
    }
}
