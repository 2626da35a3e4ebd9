/// Adds up figures over the ranks of a data-parallel run: what synchronised batch norm needs from the
/// run's `TrainingGroup` (which refines it). ConvNet has no transport of its own; `convnet-mpi` sums over MPI.
public protocol RankSum: AnyObject {
    /// Replaces `values` with their elementwise sum over all ranks. Every rank receives the same bits,
    /// and the same ranks and inputs give the same bits on every run (a fixed summation order).
    func sum(_ values: inout [Double]) throws
}

/// Batch normalisation (PyTorch's `BatchNorm1d` on N x F, `BatchNorm2d` on N x C x H x W, chosen from
/// the input shape). Training normalises with the batch's statistics and updates running averages;
/// inference uses the running averages.
///
/// Synchronised across ranks (PyTorch's `SyncBatchNorm`): while `ranks` is set, training normalises
/// with the statistics of the global batch, whose slices the ranks hold. Each training forward pass
/// adds up every rank's per-channel sum, sum of squares and count in one reduction, and each backward
/// pass the two per-channel gradient sums in one more, so N ranks compute what one process computes on
/// the whole batch (to rounding: the variance comes from the sum of squares, in Double) and every rank
/// keeps the same running statistics. A rank whose slice is empty still takes part in both reductions
/// (`forwardWithoutSamples`, `backwardWithoutSamples`). Without `ranks` the layer uses its own batch alone.
public final class BatchNorm: Layer {
    public let kind = "batchnorm"
    public var name = "bn"
    public let epsilon: Float
    /// Weight of the newest batch in the running averages (PyTorch's default 0.1).
    public let momentum: Float
    public private(set) var weight: Parameter!
    public private(set) var bias: Parameter!
    public private(set) var runningMean: Parameter!
    public private(set) var runningVariance: Parameter!
    private var channels = 0, spatial = 1
    /// Per-channel statistics of the last forward pass (sized in `build`, overwritten in place).
    private var mean: [Float] = [], variance: [Float] = [], invStd: [Float] = []
    /// The normalised input of the last training forward pass; `hasXhat` says whether it is current.
    private var xhat = Tensor.empty
    private var hasXhat = false
    /// Reused from call to call (see `Tensor.overwrite`).
    private var output = Tensor.empty, inputGradient = Tensor.empty
    /// The ranks whose slices make up the batch (synchronised batch norm); nil: this process's batch
    /// alone. A data-parallel `Trainer` sets it while it trains and clears it afterwards.
    public var ranks: (any RankSum)?
    /// Synchronised batch norm's reduction buffer (sums per channel, then the count), its per-channel
    /// input-gradient coefficients, and this rank's and the global batch's values per channel in the
    /// last training forward pass.
    private var reduced: [Double] = [], reducedGradient: [Double] = [], coefficients: [Float] = []
    private var localCount = 0, globalCount = 0

    public init(epsilon: Float = 1e-5, momentum: Float = 0.1) {
        self.epsilon = epsilon
        self.momentum = momentum
    }

    public func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] {
        guard inputShape.count == 1 || inputShape.count == 3, inputShape.allSatisfy({ $0 > 0 }) else {
            throw ShapeError.layer(name: name, message: "needs F features or a C x H x W input, got \(formatShape(inputShape))")
        }
        guard epsilon > 0, momentum >= 0, momentum <= 1 else {
            throw ShapeError.layer(name: name, message: "epsilon must be positive and momentum in [0, 1]")
        }
        channels = inputShape[0]
        spatial = inputShape.dropFirst().reduce(1, *)
        weight = Parameter(name: "\(name).weight", value: Tensor(shape: [channels], repeating: 1))
        bias = Parameter(name: "\(name).bias", value: Tensor(shape: [channels], repeating: 0))
        runningMean = Parameter(name: "\(name).running_mean", value: Tensor(shape: [channels], repeating: 0))
        runningVariance = Parameter(name: "\(name).running_var", value: Tensor(shape: [channels], repeating: 1))
        mean = [Float](repeating: 0, count: channels)
        variance = mean
        invStd = mean
        return inputShape
    }

    public func forward(_ input: Tensor, training: Bool, context: ExecutionContext) throws -> Tensor {
        hasXhat = false
        let n = input.batchSize, channels = channels, spatial = spatial
        if training {
            if let ranks {
                try updateRunningStatistics(count: reduceStatistics(input, over: ranks))
            } else {
                guard n * spatial > 1 else {
                    throw ShapeError.layer(name: name, message: "needs more than one value per channel to train (batch of \(n))")
                }
                input.withUnsafeBufferPointer { x in
                    BatchNormKernels.statistics(x.baseAddress!, n: n, channels: channels, spatial: spatial, mean: &mean, variance: &variance)
                }
                updateRunningStatistics(count: n * spatial)
            }
        } else {
            for c in 0..<channels {
                mean[c] = runningMean.value[c]
                variance[c] = runningVariance.value[c]
            }
        }
        for c in 0..<channels { invStd[c] = 1 / (variance[c] + epsilon).squareRoot() }
        if training {
            xhat.overwrite(shape: input.shape) { h in normalize(input, xhat: h.baseAddress) }
            hasXhat = true
        } else {
            normalize(input, xhat: nil)
        }
        return output
    }

    /// Blends the batch's mean and variance (over `count` values per channel) into the running averages.
    private func updateRunningStatistics(count: Int) {
        // Running variance is unbiased, as in PyTorch.
        let m = Float(count), correction = m / (m - 1)
        for c in 0..<channels {
            runningMean.value[c] = (1 - momentum) * runningMean.value[c] + momentum * mean[c]
            runningVariance.value[c] = (1 - momentum) * runningVariance.value[c] + momentum * variance[c] * correction
        }
    }

    /// Synchronised batch norm's forward reduction: adds this slice's per-channel sum and sum of squares
    /// and its count (nil: an empty slice) to the other ranks' in one sum, sets `mean` and `variance` to
    /// the global batch's, and returns the global count of values per channel.
    private func reduceStatistics(_ input: Tensor?, over ranks: any RankSum) throws -> Int {
        let channels = channels, spatial = spatial, n = input?.batchSize ?? 0
        if reduced.count != 2 * channels + 1 { reduced = [Double](repeating: 0, count: 2 * channels + 1) }
        reduced.withUnsafeMutableBufferPointer { r in
            if let input {
                input.withUnsafeBufferPointer { x in
                    BatchNormKernels.sums(x.baseAddress!, n: n, channels: channels, spatial: spatial, sum: r.baseAddress!, squares: r.baseAddress! + channels)
                }
            } else {
                r.update(repeating: 0)
            }
            r[2 * channels] = Double(n * spatial)
        }
        try ranks.sum(&reduced)
        let m = reduced[2 * channels]
        guard m > 1 else {
            throw ShapeError.layer(name: name, message: "needs more than one value per channel to train (global batch of \(Int(m) / spatial) over the ranks)")
        }
        for c in 0..<channels {
            let mu = reduced[c] / m
            mean[c] = Float(mu)
            variance[c] = Float(max(reduced[channels + c] / m - mu * mu, 0))
        }
        (localCount, globalCount) = (n * spatial, Int(m))
        return Int(m)
    }

    /// A training forward pass of a rank whose slice of the batch is empty: takes part in the forward
    /// reduction and keeps the running statistics in step with the other ranks'.
    func forwardWithoutSamples() throws {
        hasXhat = false
        guard let ranks else { return }
        try updateRunningStatistics(count: reduceStatistics(nil, over: ranks))
    }

    /// The backward pass of a rank whose slice is empty: adds nothing to the backward reduction.
    func backwardWithoutSamples() throws {
        guard let ranks else { return }
        var zeros = [Double](repeating: 0, count: 2 * channels)
        try ranks.sum(&zeros)
    }

    /// Writes the output buffer (and xhat where given) from `input` and the current statistics.
    private func normalize(_ input: Tensor, xhat h: UnsafeMutablePointer<Float>?) {
        let n = input.batchSize, channels = channels, spatial = spatial
        output.overwrite(shape: input.shape) { out in
            input.withUnsafeBufferPointer { x in
                weight.value.withUnsafeBufferPointer { g in
                    bias.value.withUnsafeBufferPointer { b in
                        BatchNormKernels.normalize(
                            x.baseAddress!, n: n, channels: channels, spatial: spatial, mean: mean, invStd: invStd,
                            gamma: g.baseAddress!, beta: b.baseAddress!, xhat: h, y: out.baseAddress!)
                    }
                }
            }
        }
    }

    /// Writes dL/dgamma and dL/dbeta into the parameters' `gradient` in place.
    public func backward(_ outputGradient: Tensor, context: ExecutionContext) throws -> Tensor {
        guard hasXhat else {
            throw ShapeError.layer(name: name, message: "backward needs a training-mode forward pass first")
        }
        try checkGradientShape(self, outputGradient, expected: xhat.shape)
        if let ranks { return try synchronizedBackward(outputGradient, over: ranks) }
        let n = xhat.batchSize, channels = channels, spatial = spatial
        inputGradient.overwrite(shape: xhat.shape) { dxp in
            weight.gradient.overwrite(shape: [channels]) { dg in
                bias.gradient.overwrite(shape: [channels]) { db in
                    outputGradient.withUnsafeBufferPointer { dy in
                        xhat.withUnsafeBufferPointer { h in
                            weight.value.withUnsafeBufferPointer { g in
                                BatchNormKernels.backward(
                                    dy.baseAddress!, xhat: h.baseAddress!, n: n, channels: channels,
                                    spatial: spatial, invStd: invStd, gamma: g.baseAddress!, dx: dxp.baseAddress!,
                                    dgamma: dg.baseAddress!, dbeta: db.baseAddress!)
                            }
                        }
                    }
                }
            }
        }
        return inputGradient
    }

    /// Synchronised batch norm's backward pass. The ranks' losses are means over their own slices, so
    /// this rank's dL/dy is M/m times its part of the global batch's (m of the batch's M values per
    /// channel here). dgamma and dbeta are this slice's sums, which the data-parallel gradient sum
    /// weights by m/M and adds up; dx needs the global sums A = sum(dy), B = sum(dy * xhat) of the global
    /// dL/dy, added up in one reduction: dx = gamma * invStd * (dy - (A + xhat * B) / m).
    private func synchronizedBackward(_ outputGradient: Tensor, over ranks: any RankSum) throws -> Tensor {
        let n = xhat.batchSize, channels = channels, spatial = spatial
        if reducedGradient.count != 2 * channels { reducedGradient = [Double](repeating: 0, count: 2 * channels) }
        reducedGradient.withUnsafeMutableBufferPointer { s in
            outputGradient.withUnsafeBufferPointer { dy in
                xhat.withUnsafeBufferPointer { h in
                    BatchNormKernels.gradientSums(
                        dy.baseAddress!, xhat: h.baseAddress!, n: n, channels: channels, spatial: spatial,
                        sumDy: s.baseAddress!, sumDyX: s.baseAddress! + channels)
                }
            }
        }
        weight.gradient.overwrite(shape: [channels]) { dg in
            bias.gradient.overwrite(shape: [channels]) { db in
                for c in 0..<channels {
                    dg[c] = Float(reducedGradient[channels + c])
                    db[c] = Float(reducedGradient[c])
                }
            }
        }
        let share = Double(localCount) / Double(globalCount)
        for i in reducedGradient.indices { reducedGradient[i] *= share }
        try ranks.sum(&reducedGradient)
        if coefficients.count != 3 * channels { coefficients = [Float](repeating: 0, count: 3 * channels) }
        let m = Double(localCount)
        for c in 0..<channels {
            coefficients[c] = weight.value[c] * invStd[c]
            coefficients[channels + c] = Float(reducedGradient[c] / m)
            coefficients[2 * channels + c] = Float(reducedGradient[channels + c] / m)
        }
        inputGradient.overwrite(shape: xhat.shape) { dx in
            outputGradient.withUnsafeBufferPointer { dy in
                xhat.withUnsafeBufferPointer { h in
                    coefficients.withUnsafeBufferPointer { k in
                        BatchNormKernels.inputGradient(
                            dy.baseAddress!, xhat: h.baseAddress!, n: n, channels: channels, spatial: spatial,
                            scale: k.baseAddress!, a: k.baseAddress! + channels, b: k.baseAddress! + 2 * channels, dx: dx.baseAddress!)
                    }
                }
            }
        }
        return inputGradient
    }

    /// xhat is the layer's own buffer; it is only marked stale.
    public func releaseCaches() { hasXhat = false }

    public var parameters: [Parameter] { [weight, bias].compactMap { $0 } }
    public var buffers: [Parameter] { [runningMean, runningVariance].compactMap { $0 } }
    public var specStatement: String { "batchnorm" }
}

/// Where a training step stands, for dropout's masks: with the run's seed, the epoch and batch (both
/// 0-based) and the row in the global batch of this process's first sample (the start of its
/// data-parallel slice; 0 in one process).
public struct DropoutPosition: Sendable, Equatable {
    public var seed: UInt64
    public var epoch: Int
    public var batch: Int
    public var firstRow: Int

    public init(seed: UInt64, epoch: Int, batch: Int, firstRow: Int = 0) {
        self.seed = seed
        self.epoch = epoch
        self.batch = batch
        self.firstRow = firstRow
    }
}

/// Inverted dropout: in training each value is zeroed with probability p and the rest scaled by
/// 1 / (1 - p); at inference it passes values through unchanged.
///
/// The mask of each sample is drawn from a generator of its own, seeded from the step's position
/// (`position`: the run's seed, epoch, batch), the sample's row in the global batch and the layer's
/// index in its network, as augmentation draws per image. So the masks do not depend on the thread
/// count or the number of data-parallel ranks, and a run resumed from a checkpoint, also mid-epoch,
/// draws the masks of the uninterrupted run. The `Trainer` sets the position before each step
/// (`Dropout.position(_:at:)`); a training pass without one draws from the layer's own seed and a
/// count of such passes.
public final class Dropout: Layer {
    public let kind = "dropout"
    public var name = "dropout"
    public let probability: Float
    /// Where the next training forward pass stands, its seed already mixed with the layer's index;
    /// one pass uses it and clears it.
    public var position: DropoutPosition?
    /// The layer's own seed (a draw of the network's generator), and the training passes run without
    /// a position, for masks drawn outside a `Trainer`.
    private var seed: UInt64 = 0
    private var passes = 0
    /// The last training mask (keep / (1 - p) or 0 per element); `hasMask` says whether it applies.
    private var mask = Tensor.empty
    private var hasMask = false
    /// When set, training forward passes reuse the last mask (for gradient checks).
    var freezesMask = false
    /// Reused from call to call (see `Tensor.overwrite`).
    private var output = Tensor.empty, inputGradient = Tensor.empty

    /// `probability`: the chance that each value is zeroed in training, in [0, 1) (PyTorch's default 0.5).
    public init(probability: Float = 0.5) { self.probability = probability }

    public func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] {
        guard probability >= 0, probability < 1 else {
            throw ShapeError.layer(name: name, message: "drop probability must be in [0, 1), got \(probability)")
        }
        seed = context.random.next()
        return inputShape
    }

    /// Sets the position of the next training step on every dropout layer of `layers` (a network's
    /// layers, in order), each with the seed mixed with its index, so two dropout layers draw apart.
    public static func position(_ layers: [any Layer], at position: DropoutPosition) {
        for (index, layer) in layers.enumerated() {
            guard let dropout = layer as? Dropout else { continue }
            var own = position
            own.seed = mix(position.seed ^ 0x6472_6F70_6F75_7421 ^ (UInt64(truncatingIfNeeded: index) &* 0xD6E8_FEB8_6659_FD93))  // "dropout!"
            dropout.position = own
        }
    }

    /// The seed of the generator of the mask of global row `row` at `position`.
    static func sampleSeed(_ position: DropoutPosition, row: Int) -> UInt64 {
        var h = mix(position.seed)
        h = mix(h ^ (UInt64(truncatingIfNeeded: position.epoch) &* 0x9E37_79B9_7F4A_7C15))
        h = mix(h ^ (UInt64(truncatingIfNeeded: position.batch) &* 0xC2B2_AE3D_27D4_EB4F))
        return mix(h ^ (UInt64(truncatingIfNeeded: row) &* 0x1656_67B1_9E37_79F9))
    }

    /// SplitMix64's finaliser.
    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Writes `count` mask values: `scale` where a uniform draw falls below `keep`, else 0.
    static func drawMask(_ m: UnsafeMutablePointer<Float>, count: Int, random: inout SeededGenerator, keep: Float, scale: Float) {
        for i in 0..<count { m[i] = random.nextUnitFloat() < keep ? scale : 0 }
    }

    public func forward(_ input: Tensor, training: Bool, context: ExecutionContext) throws -> Tensor {
        guard training, probability > 0 else {
            if !freezesMask { hasMask = false }
            return input
        }
        let keep = 1 - probability, scale = 1 / keep
        if !(freezesMask && hasMask && mask.shape == input.shape) {
            let at = position ?? DropoutPosition(seed: seed, epoch: 0, batch: passes)
            if position == nil { passes += 1 }
            position = nil
            let n = input.batchSize, perSample = n == 0 ? 0 : input.count / n
            mask.overwrite(shape: input.shape) { m in
                for sample in 0..<n {
                    var random = SeededGenerator(seed: Dropout.sampleSeed(at, row: at.firstRow + sample))
                    Dropout.drawMask(m.baseAddress! + sample * perSample, count: perSample, random: &random, keep: keep, scale: scale)
                }
            }
        }
        hasMask = true
        input.zipBuffer(mask, into: &output, context: context) { a, b, out, count in
            for i in 0..<count { out[i] = a[i] * b[i] }
        }
        return output
    }

    public func backward(_ outputGradient: Tensor, context: ExecutionContext) throws -> Tensor {
        guard hasMask else { return outputGradient }
        try checkGradientShape(self, outputGradient, expected: mask.shape)
        outputGradient.zipBuffer(mask, into: &inputGradient, context: context) { a, b, out, count in
            for i in 0..<count { out[i] = a[i] * b[i] }
        }
        return inputGradient
    }

    public var specStatement: String { "dropout \(formatNumber(probability))" }
}
