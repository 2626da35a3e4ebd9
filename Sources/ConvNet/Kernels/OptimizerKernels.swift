/// The update loops of the optimizers, one branch-free loop per variant so the compiler vectorizes
/// them; large parameters are split across threads (`forEachElementRange`). Elementwise: results do
/// not depend on the split.
enum OptimizerKernels {
    /// SGD, following `torch.optim.SGD`: d = g + wd * w; with momentum v = mu * v + d and
    /// d = nesterov ? d + mu * v : v; then w -= lr * d. `v` is unused when `mu == 0`.
    static func sgd(
        weight w: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>, velocity v: UnsafeMutablePointer<Float>?,
        count: Int, learningRate lr: Float, momentum mu: Float, nesterov: Bool, weightDecay wd: Float,
        context: ExecutionContext
    ) {
        let w = UncheckedSendable(w), g = UncheckedSendable(g), v = UncheckedSendable(v)
        forEachElementRange(count, context: context) { start, length in
            let w = w.value + start, g = g.value + start
            guard mu != 0, let v = v.value.map({ $0 + start }) else {
                for i in 0..<length { w[i] -= lr * (g[i] + wd * w[i]) }
                return
            }
            if nesterov {
                for i in 0..<length {
                    let d = g[i] + wd * w[i]
                    let vi = mu * v[i] + d
                    v[i] = vi
                    w[i] -= lr * (d + mu * vi)
                }
            } else {
                for i in 0..<length {
                    let vi = mu * v[i] + (g[i] + wd * w[i])
                    v[i] = vi
                    w[i] -= lr * vi
                }
            }
        }
    }
}
