import Foundation

/// A loss value and its gradient with respect to the loss's input.
public struct LossResult: Sendable {
    /// The loss (mean over the batch, or over all elements).
    public var value: Float
    /// dL/dinput, of the loss input's shape.
    public var gradient: Tensor

    public init(value: Float, gradient: Tensor) {
        self.value = value
        self.gradient = gradient
    }
}

/// Softmax followed by cross-entropy, fused and numerically stable (log-sum-exp), mean over the batch.
///
/// - Parameters: logits [N, C]; labels N class indices.
/// - Returns: the mean loss and dL/dlogits = (softmax - onehot) / N.
public func softmaxCrossEntropy(logits: Tensor, labels: [Int]) throws -> LossResult {
    var gradient = Tensor.empty
    let loss = try softmaxCrossEntropy(logits: logits, labels: labels, gradient: &gradient)
    return LossResult(value: loss, gradient: gradient)
}

/// Softmax cross-entropy against smoothed targets (PyTorch's `CrossEntropyLoss(label_smoothing: e)`): the
/// target of sample s is q_j = (1 - e) [j = y_s] + e / C, so the loss is -sum_j q_j log softmax(x)_j, mean
/// over the batch, and dL/dlogits = (softmax - q) / N. `smoothing` 0 is `softmaxCrossEntropy` itself.
public func softmaxCrossEntropy(logits: Tensor, labels: [Int], smoothing: Float) throws -> LossResult {
    var gradient = Tensor.empty
    let loss = try softmaxCrossEntropy(logits: logits, labels: labels, smoothing: smoothing, gradient: &gradient)
    return LossResult(value: loss, gradient: gradient)
}

/// `softmaxCrossEntropy` writing dL/dlogits into a reusable buffer (see `Tensor.overwrite`); returns
/// the loss. `smoothing` e in [0, 1) mixes the one-hot target with the uniform one (see above).
func softmaxCrossEntropy(logits: Tensor, labels: [Int], smoothing: Float = 0, gradient: inout Tensor) throws -> Float {
    let (n, c) = try classShape(logits, labels: labels, operation: "softmax cross-entropy")
    guard smoothing >= 0, smoothing < 1 else {
        throw ValueError.invalidArgument("label smoothing must be in [0, 1), got \(smoothing)")
    }
    var total = 0.0
    let onTarget = 1 - smoothing, uniform = smoothing / Float(c)
    gradient.overwrite(shape: logits.shape) { g in
        logits.withUnsafeBufferPointer { x in
            for s in 0..<n {
                let row = x.baseAddress! + s * c, out = g.baseAddress! + s * c
                var m = row[0]
                for j in 1..<c { m = max(m, row[j]) }
                var sum: Float = 0
                for j in 0..<c {
                    let e = expf(row[j] - m)
                    out[j] = e
                    sum += e
                }
                let logSum = logf(sum) + m
                let scale = 1 / (sum * Float(n))
                for j in 0..<c { out[j] *= scale }
                if smoothing == 0 {
                    total += Double(logSum - row[labels[s]])
                    out[labels[s]] -= 1 / Float(n)
                } else {
                    // -sum_j q_j (x_j - logSum) = logSum - (1 - e) x_y - (e / C) sum_j x_j
                    var rowSum: Float = 0
                    for j in 0..<c { rowSum += row[j] }
                    total += Double(logSum - onTarget * row[labels[s]] - uniform * rowSum)
                    for j in 0..<c { out[j] -= uniform / Float(n) }
                    out[labels[s]] -= onTarget / Float(n)
                }
            }
        }
    }
    return try finite(Float(total / Double(n)), "softmax cross-entropy")
}

/// Log-softmax along the last dimension: x - logsumexp(x), stable.
public func logSoftmax(_ x: Tensor) throws -> Tensor {
    var y = Tensor.empty
    try logSoftmax(x, into: &y)
    return y
}

/// `logSoftmax` writing into a reusable buffer (see `Tensor.overwrite`).
func logSoftmax(_ x: Tensor, into output: inout Tensor) throws {
    guard x.rank == 2, x.shape[1] > 0 else {
        throw ShapeError.mismatch(operation: "log-softmax", expected: "an N x C input", got: x.shape)
    }
    let n = x.shape[0], c = x.shape[1]
    output.overwrite(shape: x.shape) { y in
        x.withUnsafeBufferPointer { xp in
            for s in 0..<n {
                let row = xp.baseAddress! + s * c, out = y.baseAddress! + s * c
                var m = row[0]
                for j in 1..<c { m = max(m, row[j]) }
                var sum: Float = 0
                for j in 0..<c { sum += expf(row[j] - m) }
                let logSum = logf(sum) + m
                for j in 0..<c { out[j] = row[j] - logSum }
            }
        }
    }
}

/// dL/dx of log-softmax from dL/dy and the forward output y: dx = dy - softmax(x) * sum(dy).
public func logSoftmaxBackward(_ dy: Tensor, output y: Tensor) throws -> Tensor {
    var dx = Tensor.empty
    try logSoftmaxBackward(dy, output: y, into: &dx)
    return dx
}

/// `logSoftmaxBackward` writing into a reusable buffer (see `Tensor.overwrite`).
func logSoftmaxBackward(_ dy: Tensor, output y: Tensor, into inputGradient: inout Tensor) throws {
    try requireSameShape(dy, y, "log-softmax backward")
    let n = y.shape[0], c = y.shape[1]
    inputGradient.overwrite(shape: y.shape) { dx in
        dy.withUnsafeBufferPointer { d in
            y.withUnsafeBufferPointer { yp in
                for s in 0..<n {
                    let dr = d.baseAddress! + s * c, yr = yp.baseAddress! + s * c, out = dx.baseAddress! + s * c
                    var sum: Float = 0
                    for j in 0..<c { sum += dr[j] }
                    for j in 0..<c { out[j] = dr[j] - expf(yr[j]) * sum }
                }
            }
        }
    }
}

/// Negative log-likelihood of log-probabilities [N, C], mean over the batch.
public func nllLoss(logProbabilities: Tensor, labels: [Int]) throws -> LossResult {
    var gradient = Tensor.empty
    let loss = try nllLoss(logProbabilities: logProbabilities, labels: labels, gradient: &gradient)
    return LossResult(value: loss, gradient: gradient)
}

/// `nllLoss` writing dL/dinput into a reusable buffer (see `Tensor.overwrite`); returns the loss.
func nllLoss(logProbabilities: Tensor, labels: [Int], gradient: inout Tensor) throws -> Float {
    let (n, c) = try classShape(logProbabilities, labels: labels, operation: "NLL loss")
    var total = 0.0
    gradient.overwrite(shape: logProbabilities.shape, zeroed: true) { grad in
        logProbabilities.withUnsafeBufferPointer { x in
            for s in 0..<n {
                total -= Double(x[s * c + labels[s]])
                grad[s * c + labels[s]] = -1 / Float(n)
            }
        }
    }
    return try finite(Float(total / Double(n)), "NLL loss")
}

/// Binary cross-entropy on logits (sigmoid fused in), mean over all elements; targets in [0, 1].
public func sigmoidBinaryCrossEntropy(logits: Tensor, targets: Tensor) throws -> LossResult {
    var gradient = Tensor.empty
    let loss = try sigmoidBinaryCrossEntropy(logits: logits, targets: targets, gradient: &gradient)
    return LossResult(value: loss, gradient: gradient)
}

/// `sigmoidBinaryCrossEntropy` writing dL/dlogits into a reusable buffer; returns the loss.
func sigmoidBinaryCrossEntropy(logits: Tensor, targets: Tensor, gradient: inout Tensor) throws -> Float {
    try requireSameShape(targets, logits, "sigmoid binary cross-entropy")
    let count = logits.count
    var total = 0.0
    gradient.overwrite(shape: logits.shape) { g in
        logits.withUnsafeBufferPointer { x in
            targets.withUnsafeBufferPointer { t in
                for i in 0..<count {
                    let v = x[i]
                    // max(v, 0) - v t + log(1 + e^-|v|)
                    total += Double(max(v, 0) - v * t[i] + log1pf(expf(-abs(v))))
                    let p = v >= 0 ? 1 / (1 + expf(-v)) : expf(v) / (1 + expf(v))
                    g[i] = (p - t[i]) / Float(count)
                }
            }
        }
    }
    return try finite(Float(total / Double(count)), "sigmoid binary cross-entropy")
}

/// Binary cross-entropy on probabilities (after a sigmoid layer), mean over all elements.
/// log(p) is clamped at -100, as in PyTorch, so p = 0 or 1 gives a finite loss.
public func binaryCrossEntropy(probabilities: Tensor, targets: Tensor) throws -> LossResult {
    var gradient = Tensor.empty
    let loss = try binaryCrossEntropy(probabilities: probabilities, targets: targets, gradient: &gradient)
    return LossResult(value: loss, gradient: gradient)
}

/// `binaryCrossEntropy` writing dL/dprobabilities into a reusable buffer; returns the loss.
func binaryCrossEntropy(probabilities: Tensor, targets: Tensor, gradient: inout Tensor) throws -> Float {
    try requireSameShape(targets, probabilities, "binary cross-entropy")
    let count = probabilities.count
    let eps: Float = 1e-12
    var total = 0.0
    gradient.overwrite(shape: probabilities.shape) { g in
        probabilities.withUnsafeBufferPointer { p in
            targets.withUnsafeBufferPointer { t in
                for i in 0..<count {
                    let logP = max(logf(p[i]), -100), log1mP = max(logf(1 - p[i]), -100)
                    total -= Double(t[i] * logP + (1 - t[i]) * log1mP)
                    g[i] = (p[i] - t[i]) / max(p[i] * (1 - p[i]), eps) / Float(count)
                }
            }
        }
    }
    return try finite(Float(total / Double(count)), "binary cross-entropy")
}

/// Mean squared error over all elements.
public func meanSquaredError(predictions: Tensor, targets: Tensor) throws -> LossResult {
    var gradient = Tensor.empty
    let loss = try meanSquaredError(predictions: predictions, targets: targets, gradient: &gradient)
    return LossResult(value: loss, gradient: gradient)
}

/// `meanSquaredError` writing dL/dpredictions into a reusable buffer; returns the loss.
func meanSquaredError(predictions: Tensor, targets: Tensor, gradient: inout Tensor) throws -> Float {
    try requireSameShape(targets, predictions, "mean squared error")
    let count = predictions.count
    var total = 0.0
    gradient.overwrite(shape: predictions.shape) { g in
        predictions.withUnsafeBufferPointer { p in
            targets.withUnsafeBufferPointer { t in
                for i in 0..<count {
                    let d = p[i] - t[i]
                    total += Double(d * d)
                    g[i] = 2 * d / Float(count)
                }
            }
        }
    }
    return try finite(Float(total / Double(count)), "mean squared error")
}

private func classShape(_ x: Tensor, labels: [Int], operation: String) throws -> (Int, Int) {
    guard x.rank == 2, x.shape[1] > 0 else {
        throw ShapeError.mismatch(operation: operation, expected: "an N x C input", got: x.shape)
    }
    let n = x.shape[0], c = x.shape[1]
    guard labels.count == n else {
        throw ValueError.invalidArgument("\(operation): \(labels.count) labels for a batch of \(n)")
    }
    if let bad = labels.first(where: { $0 < 0 || $0 >= c }) {
        throw ValueError.labelOutOfRange(label: bad, classes: c)
    }
    return (n, c)
}

private func finite(_ loss: Float, _ name: String) throws -> Float {
    guard loss.isFinite else { throw ValueError.nonFiniteLoss(loss: name, value: loss) }
    return loss
}

/// The losses a network can train with, by name.
public enum LossFunction: String, CaseIterable, Sendable, Codable {
    /// Softmax cross-entropy on logits [N, C] (the default for classifiers).
    case softmaxCrossEntropy = "softmax-cross-entropy"
    /// Negative log-likelihood on log-probabilities [N, C] (after a `logsoftmax` layer).
    case negativeLogLikelihood = "nll"
    /// Binary cross-entropy on probabilities [N, 1] (after a `sigmoid` layer).
    case binaryCrossEntropy = "bce"
    /// Binary cross-entropy on logits [N, 1].
    case sigmoidBinaryCrossEntropy = "bce-logits"
    /// Mean squared error against one-hot targets (or the label itself for one output).
    case meanSquaredError = "mse"

    /// Loss and dL/doutput for a batch of network outputs and integer labels.
    public func evaluate(output: Tensor, labels: [Int], labelSmoothing: Float = 0) throws -> LossResult {
        var buffers = LossBuffers()
        return try evaluate(output: output, labels: labels, labelSmoothing: labelSmoothing, buffers: &buffers)
    }

    /// `evaluate` with the gradient and targets written into `buffers`, reused from call to call (a
    /// training loop keeps one `LossBuffers`; see `Tensor.overwrite`). The result's gradient shares the
    /// buffer's storage: drop it before the next call and that call allocates nothing.
    /// `labelSmoothing` (in [0, 1)) applies to softmax cross-entropy only; the other losses refuse it.
    func evaluate(output: Tensor, labels: [Int], labelSmoothing: Float = 0, buffers: inout LossBuffers) throws -> LossResult {
        let loss: Float
        if labelSmoothing != 0 && self != .softmaxCrossEntropy {
            throw ValueError.invalidArgument("label smoothing applies to softmax cross-entropy only, not to the \(rawValue) loss")
        }
        switch self {
        case .softmaxCrossEntropy:
            loss = try ConvNet.softmaxCrossEntropy(logits: output, labels: labels, smoothing: labelSmoothing, gradient: &buffers.gradient)
        case .negativeLogLikelihood:
            loss = try ConvNet.nllLoss(logProbabilities: output, labels: labels, gradient: &buffers.gradient)
        case .binaryCrossEntropy:
            try binaryTargets(output, labels, into: &buffers.targets)
            loss = try ConvNet.binaryCrossEntropy(probabilities: output, targets: buffers.targets, gradient: &buffers.gradient)
        case .sigmoidBinaryCrossEntropy:
            try binaryTargets(output, labels, into: &buffers.targets)
            loss = try ConvNet.sigmoidBinaryCrossEntropy(logits: output, targets: buffers.targets, gradient: &buffers.gradient)
        case .meanSquaredError:
            let width = output.count / max(output.batchSize, 1), n = output.batchSize
            buffers.targets.overwrite(shape: output.shape, zeroed: true) { t in
                for (s, label) in labels.enumerated() where s < n {
                    if width == 1 { t[s] = Float(label) } else if label >= 0 && label < width { t[s * width + label] = 1 }
                }
            }
            loss = try ConvNet.meanSquaredError(predictions: output, targets: buffers.targets, gradient: &buffers.gradient)
        }
        return LossResult(value: loss, gradient: buffers.gradient)
    }

    /// True when the network has one output unit and predicts class 1 above a threshold.
    public var isBinary: Bool { self == .binaryCrossEntropy || self == .sigmoidBinaryCrossEntropy }

    /// The labels (0 or 1) as float targets of the output's shape.
    private func binaryTargets(_ output: Tensor, _ labels: [Int], into targets: inout Tensor) throws {
        guard output.count == labels.count else {
            throw ShapeError.mismatch(
                operation: "\(rawValue) loss", expected: "one output per sample (\(labels.count)x1)", got: output.shape)
        }
        if let bad = labels.first(where: { $0 != 0 && $0 != 1 }) {
            throw ValueError.labelOutOfRange(label: bad, classes: 2)
        }
        targets.overwrite(shape: output.shape) { t in
            for (i, label) in labels.enumerated() { t[i] = Float(label) }
        }
    }
}

/// The buffers `LossFunction.evaluate` reuses from one call to the next: dL/doutput, and the targets
/// the binary and MSE losses build from the labels.
struct LossBuffers {
    var gradient = Tensor.empty
    var targets = Tensor.empty
}
