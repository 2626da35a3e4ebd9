/// Adagrad: G += g^2; w -= lr * g / (sqrt(G) + eps).
public final class Adagrad: Optimizer {
    public let kind = "adagrad"
    public var learningRate: Float
    public let epsilon: Float
    public let weightDecay: Float
    public let decayScope: WeightDecayScope
    public var state: [String: Tensor] = [:]
    public var steps = 0
    private var keys = StateKeys(".sum_squares")

    public init(learningRate: Float, epsilon: Float = 1e-10, weightDecay: Float = 0, decayScope: WeightDecayScope = .all) {
        self.learningRate = learningRate
        self.decayScope = decayScope
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    public func step(_ parameters: [Parameter], context: ExecutionContext) {
        let lr = learningRate, eps = epsilon
        for p in parameters {
            let wd = decayScope.decays(p) ? weightDecay : 0
            let key = keys[p.name]
            // Taken out of `state` while it is updated, so it is uniquely held and written in place.
            var sums = state[key] ?? Tensor(shape: p.value.shape)
            state[key] = nil
            // The loop trusts the counts: a state tensor of another size would be written past its end.
            precondition(sums.count == p.value.count, "optimizer state '\(key)' holds \(sums.count) values but parameter '\(p.name)' has \(p.value.count) (restore state through Trainer.restore, which checks it)")
            precondition(p.gradient.count == p.value.count, "gradient of '\(p.name)' has \(p.gradient.count) values, the parameter \(p.value.count)")
            p.value.withUnsafeMutableBufferPointer { w in
                p.gradient.withUnsafeBufferPointer { g in
                    sums.withUnsafeMutableBufferPointer { s in
                        for i in 0..<w.count {
                            let d = g[i] + wd * w[i]
                            s[i] += d * d
                            w[i] -= lr * d / (s[i].squareRoot() + eps)
                        }
                    }
                }
            }
            state[key] = sums
        }
        steps += 1
    }
}
