/// An exponential moving average of a network's weights (`convnet train --ema DECAY`), the model that is
/// evaluated and saved in place of the last step's weights.
///
/// It starts as the network's weights when training starts (its first step). After optimizer step n (n = 1, 2, ...: the
/// run's iteration count, so a resumed run continues the same sequence) every average a becomes
///
///     a = d_n * a + (1 - d_n) * w,   d_n = min(decay, (1 + n) / (10 + n))
///
/// where w is the weight after the step: TensorFlow's `ExponentialMovingAverage` with `num_updates`
/// (timm's warm-up rule), so the first steps, whose weights are far from trained, weigh little for long
/// (d_1 = 2/11, d_10 = 0.55, d_90 = 0.91; `decay` rules from n = (10 decay - 1) / (1 - decay) on).
///
/// Batch-norm running statistics (the network's buffers) are averaged by the same rule, as timm's
/// `ModelEmaV2` averages every tensor of the model: the averaged weights mix roughly the last
/// 1 / (1 - decay) steps' weights, and their activations' statistics are close to the same mix of those
/// steps' statistics, which the running statistics (themselves averages over about 10 steps) track. Copying
/// the raw network's statistics instead would pair the averaged weights with the statistics of the last
/// few steps' weights only.
public final class WeightAverage {
    public let decay: Float
    /// The names of the network's parameters and buffers, in `parameters + buffers` order.
    public let names: [String]
    /// The averages, one per name.
    public private(set) var values: [Tensor]

    /// Starts the average at `network`'s current weights and buffers.
    public init(network: Sequential, decay: Float) {
        self.decay = decay
        let all = network.parameters + network.buffers
        names = all.map(\.name)
        values = all.map(\.value)
    }

    /// Starts the average over at `network`'s current weights and buffers (`Trainer` does so before a run's
    /// first step, after a data-parallel group has given every rank rank 0's weights).
    public func reset(from network: Sequential) {
        let all = network.parameters + network.buffers
        precondition(all.map(\.name) == names, "the network the average was made from")
        values = all.map(\.value)
    }

    /// The rate d_n of update n (1-based).
    public static func rate(decay: Float, update n: Int) -> Float {
        min(decay, Float(1 + n) / Float(10 + n))
    }

    /// Folds `network`'s weights and buffers into the averages as update `update` (the iteration just done).
    public func update(from network: Sequential, update n: Int) {
        let d = WeightAverage.rate(decay: decay, update: n)
        for (i, p) in (network.parameters + network.buffers).enumerated() {
            precondition(p.name == names[i] && p.value.count == values[i].count, "the network the average was made from")
            p.value.withUnsafeBufferPointer { w in
                values[i].withUnsafeMutableBufferPointer { a in
                    WeightAverageKernels.blend(a.baseAddress!, w.baseAddress!, count: a.count, decay: d)
                }
            }
        }
    }

    /// Runs `body` with the averages in `network` in place of its weights and buffers, then puts them back.
    public func withAveragedWeights<R>(in network: Sequential, _ body: () throws -> R) rethrows -> R {
        swapValues(network)
        defer { swapValues(network) }
        return try body()
    }

    /// Puts the averages into `network` for good (a copy: the average goes on unchanged).
    public func copy(into network: Sequential) {
        for (p, v) in zip(network.parameters + network.buffers, values) { p.value = v }
    }

    private func swapValues(_ network: Sequential) {
        for (i, p) in (network.parameters + network.buffers).enumerated() {
            precondition(p.name == names[i], "the network the average was made from")
            swap(&p.value, &values[i])
        }
    }

    /// The averages by name, as a checkpoint saves them (`ema.NAME`).
    public var state: [String: Tensor] { Dictionary(uniqueKeysWithValues: zip(names, values)) }

    /// Continues from `state`, which must hold every name with its shape and finite numbers; `path` names the
    /// checkpoint in the error (`WeightsError.damaged`).
    public func restore(_ state: [String: Tensor], path: String) throws(WeightsError) {
        var restored: [Tensor] = []
        for (name, current) in zip(names, values) {
            guard let t = state[name] else {
                throw .damaged(path: path, problem: "it holds no weight average 'ema.\(name)' (was the run trained without --ema?)")
            }
            guard t.shape == current.shape else {
                throw .damaged(path: path, problem: "weight average 'ema.\(name)' has shape \(formatShape(t.shape)), the network needs \(formatShape(current.shape))")
            }
            guard !t.hasNonFinite else { throw .damaged(path: path, problem: "weight average 'ema.\(name)' holds values that are not finite numbers") }
            restored.append(t)
        }
        if let extra = state.keys.sorted().first(where: { !names.contains($0) }) {
            throw .damaged(path: path, problem: "weight average 'ema.\(extra)' belongs to no parameter of the network")
        }
        values = restored
    }
}

/// The loop of the weight average.
enum WeightAverageKernels {
    /// a[i] = decay * a[i] + (1 - decay) * w[i].
    static func blend(_ a: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>, count: Int, decay: Float) {
        let keep = decay, take = 1 - decay
        for i in 0..<count { a[i] = keep * a[i] + take * w[i] }
    }
}
