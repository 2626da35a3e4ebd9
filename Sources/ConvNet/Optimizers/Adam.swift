import Foundation

/// Adam with bias correction (Kingma & Ba): m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
/// w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
///
/// Weight decay is L2 (`g += wd * w` before the moments, as PyTorch's `Adam`), or decoupled when
/// `decoupledWeightDecay` is set (AdamW, Loshchilov & Hutter, as PyTorch's `AdamW`): `w *= 1 - lr * wd`
/// first, and the moments see the plain gradient.
public final class Adam: Optimizer {
    /// `adam`, or `adamw` when the weight decay is decoupled.
    public let kind: String
    public var learningRate: Float
    public let beta1: Float, beta2: Float, epsilon: Float
    public let weightDecay: Float
    public let decoupledWeightDecay: Bool
    public let decayScope: WeightDecayScope
    public var state: [String: Tensor] = [:]
    public var steps = 0
    private var mKeys = StateKeys(".m"), vKeys = StateKeys(".v")

    public init(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0,
                decoupledWeightDecay: Bool = false, decayScope: WeightDecayScope = .all) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
        self.decayScope = decayScope
        self.kind = decoupledWeightDecay ? "adamw" : "adam"
    }

    /// AdamW: Adam with decoupled weight decay (PyTorch's `AdamW`, whose default decay is 0.01).
    public static func adamW(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                             weightDecay: Float = 0.01, decayScope: WeightDecayScope = .all) -> Adam {
        Adam(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay,
             decoupledWeightDecay: true, decayScope: decayScope)
    }

    public func step(_ parameters: [Parameter], context: ExecutionContext) {
        steps += 1
        let t = Double(steps)
        let c1 = Float(1 - pow(Double(beta1), t)), c2 = Float(1 - pow(Double(beta2), t))
        let lr = learningRate, b1 = beta1, b2 = beta2, eps = epsilon
        for p in parameters {
            let decay = decayScope.decays(p) ? weightDecay : 0
            // L2 decay enters the gradient; decoupled decay shrinks the weight by lr * wd before the step.
            let wd = decoupledWeightDecay ? 0 : decay, shrink = decoupledWeightDecay ? 1 - lr * decay : 1
            let mKey = mKeys[p.name], vKey = vKeys[p.name]
            // Taken out of `state` while they are updated, so they are uniquely held and written in place.
            var m = state[mKey] ?? Tensor(shape: p.value.shape)
            var v = state[vKey] ?? Tensor(shape: p.value.shape)
            state[mKey] = nil
            state[vKey] = nil
            // The loop trusts the counts: a state tensor of another size would be written past its end.
            precondition(m.count == p.value.count, "optimizer state '\(mKey)' holds \(m.count) values but parameter '\(p.name)' has \(p.value.count) (restore state through Trainer.restore, which checks it)")
            precondition(v.count == p.value.count, "optimizer state '\(vKey)' holds \(v.count) values but parameter '\(p.name)' has \(p.value.count) (restore state through Trainer.restore, which checks it)")
            precondition(p.gradient.count == p.value.count, "gradient of '\(p.name)' has \(p.gradient.count) values, the parameter \(p.value.count)")
            p.value.withUnsafeMutableBufferPointer { w in
                p.gradient.withUnsafeBufferPointer { g in
                    m.withUnsafeMutableBufferPointer { mp in
                        v.withUnsafeMutableBufferPointer { vp in
                            for i in 0..<w.count {
                                w[i] *= shrink
                                let d = g[i] + wd * w[i]
                                mp[i] = b1 * mp[i] + (1 - b1) * d
                                vp[i] = b2 * vp[i] + (1 - b2) * d * d
                                let mHat = mp[i] / c1, vHat = vp[i] / c2
                                w[i] -= lr * mHat / (vHat.squareRoot() + eps)
                            }
                        }
                    }
                }
            }
            state[mKey] = m
            state[vKey] = v
        }
    }
}
