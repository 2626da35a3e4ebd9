/// Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay,
/// following PyTorch's `torch.optim.SGD`:
/// g += wd * w; v = mu * v + g; w -= lr * (nesterov ? g + mu * v : v).
public final class SGD: Optimizer {
    public let kind = "sgd"
    public var learningRate: Float
    public let momentum: Float
    public let nesterov: Bool
    public let weightDecay: Float
    public let decayScope: WeightDecayScope
    public var state: [String: Tensor] = [:]
    public var steps = 0
    private var keys = StateKeys(".momentum")

    public init(learningRate: Float, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0, decayScope: WeightDecayScope = .all) {
        self.learningRate = learningRate
        self.decayScope = decayScope
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
    }

    public func step(_ parameters: [Parameter], context: ExecutionContext) {
        let lr = learningRate, mu = momentum, nesterov = nesterov
        for p in parameters {
            let wd = decayScope.decays(p) ? weightDecay : 0
            let key = keys[p.name]
            // Taken out of `state` while it is updated, so it is uniquely held and written in place.
            var velocity = mu != 0 ? (state[key] ?? Tensor(shape: p.value.shape)) : Tensor(shape: [0])
            state[key] = nil
            // The kernel trusts the counts: a state tensor of another size would be written past its end.
            precondition(mu == 0 || velocity.count == p.value.count, "optimizer state '\(key)' holds \(velocity.count) values but parameter '\(p.name)' has \(p.value.count) (restore state through Trainer.restore, which checks it)")
            precondition(p.gradient.count == p.value.count, "gradient of '\(p.name)' has \(p.gradient.count) values, the parameter \(p.value.count)")
            p.value.withUnsafeMutableBufferPointer { w in
                p.gradient.withUnsafeBufferPointer { g in
                    velocity.withUnsafeMutableBufferPointer { v in
                        OptimizerKernels.sgd(
                            weight: w.baseAddress!, gradient: g.baseAddress!, velocity: mu != 0 ? v.baseAddress : nil,
                            count: w.count, learningRate: lr, momentum: mu, nesterov: nesterov, weightDecay: wd, context: context)
                    }
                }
            }
            if mu != 0 { state[key] = velocity }
        }
        steps += 1
    }
}
