/// Batch normalisation (PyTorch's `BatchNorm1d` on N x F, `BatchNorm2d` on N x C x H x W, chosen from
/// the input shape). Training normalises with the batch's statistics and updates running averages;
/// inference uses the running averages.
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

    public func forward(_ input: Tensor, training: Bool) throws -> Tensor {
        hasXhat = false
        let n = input.batchSize, channels = channels, spatial = spatial
        if training {
            guard n * spatial > 1 else {
                throw ShapeError.layer(name: name, message: "needs more than one value per channel to train (batch of \(n))")
            }
            input.withUnsafeBufferPointer { x in
                BatchNormKernels.statistics(x.baseAddress!, n: n, channels: channels, spatial: spatial, mean: &mean, variance: &variance)
            }
            // Running variance is unbiased, as in PyTorch.
            let m = Float(n * spatial), correction = m / (m - 1)
            for c in 0..<channels {
                runningMean.value[c] = (1 - momentum) * runningMean.value[c] + momentum * mean[c]
                runningVariance.value[c] = (1 - momentum) * runningVariance.value[c] + momentum * variance[c] * correction
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
    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        guard hasXhat else {
            throw ShapeError.layer(name: name, message: "backward needs a training-mode forward pass first")
        }
        try checkGradientShape(self, outputGradient, expected: xhat.shape)
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

    /// xhat is the layer's own buffer; it is only marked stale.
    public func releaseCaches() { hasXhat = false }

    public var parameters: [Parameter] { [weight, bias].compactMap { $0 } }
    public var buffers: [Parameter] { [runningMean, runningVariance].compactMap { $0 } }
    public var specStatement: String { "batchnorm" }
}

/// Inverted dropout: in training each value is zeroed with probability p and the rest scaled by
/// 1 / (1 - p); at inference it passes values through unchanged.
public final class Dropout: Layer {
    public let kind = "dropout"
    public var name = "dropout"
    public let probability: Float
    private var random = SeededGenerator(seed: 0)
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
        random = SeededGenerator(seed: context.random.next())
        return inputShape
    }

    public func forward(_ input: Tensor, training: Bool) throws -> Tensor {
        guard training, probability > 0 else {
            if !freezesMask { hasMask = false }
            return input
        }
        let keep = 1 - probability, scale = 1 / keep
        if !(freezesMask && hasMask && mask.shape == input.shape) {
            mask.overwrite(shape: input.shape) { m in
                for i in m.indices { m[i] = random.nextUnitFloat() < keep ? scale : 0 }
            }
        }
        hasMask = true
        input.zipBuffer(mask, into: &output) { a, b, out, count in
            for i in 0..<count { out[i] = a[i] * b[i] }
        }
        return output
    }

    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        guard hasMask else { return outputGradient }
        try checkGradientShape(self, outputGradient, expected: mask.shape)
        outputGradient.zipBuffer(mask, into: &inputGradient) { a, b, out, count in
            for i in 0..<count { out[i] = a[i] * b[i] }
        }
        return inputGradient
    }

    public var specStatement: String { "dropout \(formatNumber(probability))" }
}
