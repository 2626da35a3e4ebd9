/// What a network needs in memory, worked out from its layers' shapes alone: its parameters, and per
/// sample of a batch the buffers each layer keeps for inference and for training. The figures are upper
/// bounds (every buffer counted as if none were shared or chunked), so a batch that fits them fits the run.
///
/// One function gives the figures that the memory budget checks (`Sequential.checkMemory`), that
/// `convnet models` and `convnet bench` print, and that pick the largest batch that fits.
public struct NetworkMemory: Sendable, Equatable {
    /// One layer's share.
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var statement: String
        /// Trainable values and saved buffers (batch-norm statistics).
        public var parameters: Int
        /// Bytes per sample: the output buffer (and a convolution's unfolded columns) for inference; the
        /// output, the input gradient, the caches backward reads and the workspace for training.
        public var inferenceBytes: Int
        public var trainingBytes: Int

        /// The sentence naming this layer in a budget error: `layer conv1 (conv 64 3x3 pad 1)`.
        public var label: String { "layer \(name) (\(statement))" }
    }

    public var entries: [Entry]
    /// Bytes per sample of the batch itself (the input copy) and of the loss's buffers.
    public var inputBytes: Int
    public var lossBytes: Int

    /// Every parameter and buffer the layers hold.
    public var parameters: Int { entries.reduce(0) { $0 &+ $1.parameters } }

    /// Bytes per sample for inference (`training: false`) or a training step.
    public func bytesPerSample(training: Bool) -> Int? {
        CheckedSize.sum([inputBytes] + entries.map { training ? $0.trainingBytes : $0.inferenceBytes } + [training ? lossBytes : 0])
    }

    /// Bytes that do not grow with the batch: each parameter's value and gradient, and
    /// `optimizerSlots` state tensors of its size (momentum: 1; Adam: 2).
    public func fixedBytes(optimizerSlots: Int = 0) -> Int? {
        CheckedSize.product([parameters, 4, 2 + max(optimizerSlots, 0)])
    }

    /// Everything a batch of `batch` samples needs (nil: more than can be counted).
    public func bytes(batch: Int, training: Bool, optimizerSlots: Int = 0) -> Int? {
        guard let perSample = bytesPerSample(training: training) else { return nil }
        return CheckedSize.sum([fixedBytes(optimizerSlots: optimizerSlots), CheckedSize.product([perSample, max(batch, 0)])])
    }

    /// The largest batch, up to `limit`, that fits `budget` (0: not even one sample).
    public func largestBatch(fitting budget: MemoryBudget, training: Bool, optimizerSlots: Int = 0, limit: Int) -> Int {
        guard let fixed = fixedBytes(optimizerSlots: optimizerSlots), fixed <= budget.bytes,
              let perSample = bytesPerSample(training: training) else { return 0 }
        return min(max(limit, 0), (budget.bytes - fixed) / max(perSample, 1))
    }

    /// The layer that needs the most per sample.
    public func largest(training: Bool) -> Entry? {
        entries.max { (training ? $0.trainingBytes : $0.inferenceBytes) < (training ? $1.trainingBytes : $1.inferenceBytes) }
    }

    /// Throws `MemoryBudgetError` when a batch of `batch` does not fit `budget`, naming the layer that needs
    /// the most per sample and the batch size that would fit.
    public func check(batch: Int, training: Bool, optimizerSlots: Int = 0, budget: MemoryBudget) throws(MemoryBudgetError) {
        let need = bytes(batch: batch, training: training, optimizerSlots: optimizerSlots)
        if let need, need <= budget.bytes { return }
        let fits = largestBatch(fitting: budget, training: training, optimizerSlots: optimizerSlots, limit: batch)
        var what = "\(training ? "training" : "running") the network on a batch of \(counted(batch, "sample"))"
        if let top = largest(training: training) {
            let share = training ? top.trainingBytes : top.inferenceBytes
            what += " (\(counted(entries.count, "layer")); the largest part: \(top.label), \(MemoryBudget.format(share)) per sample)"
        }
        let fixed = fixedBytes(optimizerSlots: optimizerSlots)
        let advice: String
        if fixed.map({ $0 > budget.bytes }) ?? true {
            advice = "its \(counted(parameters, "parameter")) alone need \(fixed.map(MemoryBudget.format) ?? "more than can be counted"): use a smaller network"
        } else if fits > 0 {
            advice = "a batch of at most \(fits) fits (--batch-size), or use a smaller network or input"
        } else {
            advice = "not even one sample fits: use a smaller network or input"
        }
        try budget.check(need, for: what, advice: advice)
    }

    /// The figures for layers of known kinds; a layer of another kind (a custom one) is counted like an
    /// activation: its output and input gradient, plus its output again as a cache.
    static func entry(for layer: any Layer, input: [Int], output: [Int], parameters: Int) -> Entry {
        let i = CheckedSize.product(input) ?? Int.max / 64, o = CheckedSize.product(output) ?? Int.max / 64
        let float = 4
        var inference = o &* float, training = (2 &* o &+ i) &* float
        switch layer {
        case let conv as Conv2D where input.count == 3 && output.count == 3:
            // The unfolded input (im2col columns), written in forward and again for the input gradient.
            let columns = CheckedSize.product([input[0], conv.kernel.height, conv.kernel.width, output[1], output[2], float]) ?? Int.max / 64
            inference = inference &+ columns
            training = training &+ 2 &* columns
        case is Flatten:
            // A reshape: it shares its input's storage, and its gradient its output gradient's.
            inference = 0
            training = 0
        case is ReLU, is LeakyReLU, is Sigmoid, is Tanh:
            training = (o &+ i) &* float  // the output and the input gradient; the cache is the input itself
        case is MaxPool2D:
            training = training &+ o &* 8  // the argmax of each output
        case is BatchNorm, is Dropout:
            training = training &+ o &* float  // the normalised input, or the mask
        default:
            break
        }
        return Entry(name: layer.name, statement: layer.specStatement, parameters: parameters, inferenceBytes: inference, trainingBytes: training)
    }

    /// The parameters a layer of a known kind will create for `input`, before it is built (`Int.max` when
    /// they cannot be counted; nil for other kinds, which create at most a few values per channel).
    static func parametersBeforeBuild(_ layer: any Layer, input: [Int]) -> Int? {
        switch layer {
        case let conv as Conv2D:
            let w = CheckedSize.product([conv.filters, input.first ?? 0, conv.kernel.height, conv.kernel.width])
            return CheckedSize.sum([w, conv.filters]) ?? Int.max
        case let dense as Dense:
            let w = CheckedSize.product([dense.units, CheckedSize.product(input) ?? Int.max])
            return CheckedSize.sum([w, dense.units]) ?? Int.max
        default:
            return nil
        }
    }
}
