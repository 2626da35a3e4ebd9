/// Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay,
/// following PyTorch's `torch.optim.SGD`:
/// g += wd * w; v = mu * v + g; w -= lr * (nesterov ? g + mu * v : v).
public final class SGD: Optimizer {
    public let kind = "sgd"
    public var learningRate: Float
    public let momentum: Float
    public let nesterov: Bool
    public let weightDecay: Float
    public var state: [String: Tensor] = [:]
    public var steps = 0

    public init(learningRate: Float, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
    }

    public func step(_ parameters: [Parameter]) {
        let lr = learningRate, mu = momentum, wd = weightDecay, nesterov = nesterov
        for p in parameters {
            let key = p.name + ".momentum"
            var velocity = mu != 0 ? (state[key] ?? Tensor(shape: p.value.shape)) : Tensor(shape: [0])
            state[key] = nil
            p.value.withUnsafeMutableBufferPointer { w in
                p.gradient.withUnsafeBufferPointer { g in
                    velocity.withUnsafeMutableBufferPointer { v in
                        for i in 0..<w.count {
                            var d = g[i] + wd * w[i]
                            if mu != 0 {
                                v[i] = mu * v[i] + d
                                d = nesterov ? d + mu * v[i] : v[i]
                            }
                            w[i] -= lr * d
                        }
                    }
                }
            }
            if mu != 0 { state[key] = velocity }
        }
        steps += 1
    }
}

/// Adagrad: G += g^2; w -= lr * g / (sqrt(G) + eps).
public final class Adagrad: Optimizer {
    public let kind = "adagrad"
    public var learningRate: Float
    public let epsilon: Float
    public let weightDecay: Float
    public var state: [String: Tensor] = [:]
    public var steps = 0

    public init(learningRate: Float, epsilon: Float = 1e-10, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    public func step(_ parameters: [Parameter]) {
        let lr = learningRate, eps = epsilon, wd = weightDecay
        for p in parameters {
            let key = p.name + ".sum_squares"
            var sums = state[key] ?? Tensor(shape: p.value.shape)
            state[key] = nil
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

/// Adam with bias correction (Kingma & Ba): m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
/// w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
public final class Adam: Optimizer {
    public let kind = "adam"
    public var learningRate: Float
    public let beta1: Float, beta2: Float, epsilon: Float
    public let weightDecay: Float
    public var state: [String: Tensor] = [:]
    public var steps = 0

    public init(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    public func step(_ parameters: [Parameter]) {
        steps += 1
        let t = Double(steps)
        let c1 = Float(1 - pow(Double(beta1), t)), c2 = Float(1 - pow(Double(beta2), t))
        let lr = learningRate, b1 = beta1, b2 = beta2, eps = epsilon, wd = weightDecay
        for p in parameters {
            let mKey = p.name + ".m", vKey = p.name + ".v"
            var m = state[mKey] ?? Tensor(shape: p.value.shape)
            var v = state[vKey] ?? Tensor(shape: p.value.shape)
            state[mKey] = nil
            state[vKey] = nil
            p.value.withUnsafeMutableBufferPointer { w in
                p.gradient.withUnsafeBufferPointer { g in
                    m.withUnsafeMutableBufferPointer { mp in
                        v.withUnsafeMutableBufferPointer { vp in
                            for i in 0..<w.count {
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

import Foundation
