import Foundation

/// A loss value and its gradient with respect to the loss's input.
public struct LossResult: Sendable {
    public var loss: Float
    public var gradient: Tensor
}

/// Softmax followed by cross-entropy, fused and numerically stable (log-sum-exp), mean over the batch.
///
/// - Parameters: logits [N, C]; labels N class indices.
/// - Returns: the mean loss and dL/dlogits = (softmax - onehot) / N.
public func softmaxCrossEntropy(logits: Tensor, labels: [Int]) throws -> LossResult {
    let (n, c) = try classShape(logits, labels: labels, operation: "softmax cross-entropy")
    var total = 0.0
    let grad = Tensor(shape: logits.shape) { g in
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
                total += Double(logSum - row[labels[s]])
                let scale = 1 / (sum * Float(n))
                for j in 0..<c { out[j] *= scale }
                out[labels[s]] -= 1 / Float(n)
            }
        }
    }
    return LossResult(loss: try finite(Float(total / Double(n)), "softmax cross-entropy"), gradient: grad)
}

/// Log-softmax along the last dimension: x - logsumexp(x), stable.
public func logSoftmax(_ x: Tensor) throws -> Tensor {
    guard x.rank == 2, x.shape[1] > 0 else {
        throw ShapeError.mismatch(operation: "log-softmax", expected: "an N x C input", got: x.shape)
    }
    let n = x.shape[0], c = x.shape[1]
    return Tensor(shape: x.shape) { y in
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
    try requireSameShape(dy, y, "log-softmax backward")
    let n = y.shape[0], c = y.shape[1]
    return Tensor(shape: y.shape) { dx in
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
    let (n, c) = try classShape(logProbabilities, labels: labels, operation: "NLL loss")
    var total = 0.0
    var grad = Tensor(shape: logProbabilities.shape)
    for s in 0..<n {
        total -= Double(logProbabilities[s * c + labels[s]])
        grad[s * c + labels[s]] = -1 / Float(n)
    }
    return LossResult(loss: try finite(Float(total / Double(n)), "NLL loss"), gradient: grad)
}

/// Binary cross-entropy on logits (sigmoid fused in), mean over all elements; targets in [0, 1].
public func sigmoidBinaryCrossEntropy(logits: Tensor, targets: Tensor) throws -> LossResult {
    try requireSameShape(targets, logits, "sigmoid binary cross-entropy")
    let count = logits.count
    var total = 0.0
    let grad = Tensor(shape: logits.shape) { g in
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
    return LossResult(loss: try finite(Float(total / Double(count)), "sigmoid binary cross-entropy"), gradient: grad)
}

/// Binary cross-entropy on probabilities (after a sigmoid layer), mean over all elements.
/// log(p) is clamped at -100, as in PyTorch, so p = 0 or 1 gives a finite loss.
public func binaryCrossEntropy(probabilities: Tensor, targets: Tensor) throws -> LossResult {
    try requireSameShape(targets, probabilities, "binary cross-entropy")
    let count = probabilities.count
    let eps: Float = 1e-12
    var total = 0.0
    let grad = Tensor(shape: probabilities.shape) { g in
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
    return LossResult(loss: try finite(Float(total / Double(count)), "binary cross-entropy"), gradient: grad)
}

/// Mean squared error over all elements.
public func meanSquaredError(predictions: Tensor, targets: Tensor) throws -> LossResult {
    try requireSameShape(targets, predictions, "mean squared error")
    let count = predictions.count
    var total = 0.0
    let grad = Tensor(shape: predictions.shape) { g in
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
    return LossResult(loss: try finite(Float(total / Double(count)), "mean squared error"), gradient: grad)
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
    public func evaluate(output: Tensor, labels: [Int]) throws -> LossResult {
        switch self {
        case .softmaxCrossEntropy: return try ConvNet.softmaxCrossEntropy(logits: output, labels: labels)
        case .negativeLogLikelihood: return try ConvNet.nllLoss(logProbabilities: output, labels: labels)
        case .binaryCrossEntropy:
            return try ConvNet.binaryCrossEntropy(probabilities: output, targets: try binaryTargets(output, labels))
        case .sigmoidBinaryCrossEntropy:
            return try ConvNet.sigmoidBinaryCrossEntropy(logits: output, targets: try binaryTargets(output, labels))
        case .meanSquaredError:
            let width = output.count / max(output.batchSize, 1)
            var t = Tensor(shape: output.shape)
            for (s, label) in labels.enumerated() where s < output.batchSize {
                if width == 1 { t[s] = Float(label) } else if label >= 0 && label < width { t[s * width + label] = 1 }
            }
            return try ConvNet.meanSquaredError(predictions: output, targets: t)
        }
    }

    /// True when the network has one output unit and predicts class 1 above a threshold.
    public var isBinary: Bool { self == .binaryCrossEntropy || self == .sigmoidBinaryCrossEntropy }

    private func binaryTargets(_ output: Tensor, _ labels: [Int]) throws -> Tensor {
        guard output.count == labels.count else {
            throw ShapeError.mismatch(
                operation: "\(rawValue) loss", expected: "one output per sample (\(labels.count)x1)", got: output.shape)
        }
        if let bad = labels.first(where: { $0 != 0 && $0 != 1 }) {
            throw ValueError.labelOutOfRange(label: bad, classes: 2)
        }
        return try Tensor(shape: output.shape, scalars: labels.map(Float.init))
    }
}
