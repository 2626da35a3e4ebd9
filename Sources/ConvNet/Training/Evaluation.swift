import Foundation

/// Accuracy, per-class accuracy and the confusion matrix of a network on a data set.
public struct Evaluation: Sendable, Codable {
    public var accuracy: Double
    public var loss: Double
    /// confusion[true][predicted] counts.
    public var confusion: [[Int]]
    public var perClassAccuracy: [Double]
    /// The predicted class of every image, in order.
    public var predictions: [Int]
}

/// Class predictions from network outputs: argmax, or a 0.5 threshold for one sigmoid/logit output.
public func predictClasses(_ output: Tensor, loss: LossFunction) -> [Int] {
    (0..<output.batchSize).map { predictedClass(output, sample: $0, loss: loss) }
}

/// The number of samples whose predicted class (as `predictClasses` decides it) is their label.
func countCorrect(_ output: Tensor, labels: [Int], loss: LossFunction) -> Int {
    var correct = 0
    for (s, label) in zip(0..<output.batchSize, labels) where predictedClass(output, sample: s, loss: loss) == label {
        correct += 1
    }
    return correct
}

/// The predicted class of sample `s`: argmax, or a 0.5 threshold for one sigmoid/logit output.
private func predictedClass(_ output: Tensor, sample s: Int, loss: LossFunction) -> Int {
    let width = output.count / max(output.batchSize, 1)
    if width == 1 {
        let v = output[s]
        return loss == .sigmoidBinaryCrossEntropy ? (v > 0 ? 1 : 0) : (v > 0.5 ? 1 : 0)
    }
    var best = 0
    for j in 1..<width where output[s * width + j] > output[s * width + best] { best = j }
    return best
}

/// Runs the network in inference mode over `data` in batches and scores it; with `tta`, every batch is
/// classified by `testTimeOutputs` (shifted-in pixels take `fill`, one value per channel).
public func evaluate(
    _ network: Sequential, on data: Dataset, loss: LossFunction, batchSize: Int = 256, tta: TestTimeAugmentation? = nil, fill: [Float] = []
) throws -> Evaluation {
    let classes = data.classCount
    var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
    var predictions: [Int] = []
    predictions.reserveCapacity(data.count)
    var totalLoss = 0.0
    var start = 0
    // Batches as large as asked for, or as the network's memory budget allows.
    let batchSize = max(1, network.memory.largestBatch(fitting: network.memoryBudget, training: false, limit: batchSize))
    while start < data.count {
        let end = min(start + batchSize, data.count)
        let output = try testTimeOutputs(network, data.images.batch(start..<end), tta: tta, fill: fill, loss: loss)
        let labels = Array(data.labels[start..<end])
        totalLoss += Double(try loss.evaluate(output: output, labels: labels).value) * Double(end - start)
        for (label, predicted) in zip(labels, predictClasses(output, loss: loss)) {
            predictions.append(predicted)
            if predicted < classes { confusion[label][predicted] += 1 }
        }
        start = end
    }
    let correct = (0..<classes).reduce(0) { $0 + confusion[$1][$1] }
    let perClass = confusion.enumerated().map { i, row -> Double in
        let total = row.reduce(0, +)
        return total == 0 ? 0 : Double(row[i]) / Double(total)
    }
    return Evaluation(
        accuracy: data.count == 0 ? 0 : Double(correct) / Double(data.count), loss: data.count == 0 ? 0 : totalLoss / Double(data.count),
        confusion: confusion, perClassAccuracy: perClass, predictions: predictions)
}

/// The network's outputs for `images` (N x C x H x W) in inference mode, averaged over the passes of `tta`
/// (`TestTimeAugmentation.passes`; nil or a single pass: the plain forward pass, as the network returns it).
///
/// What is averaged is each class's probability as `Classifier.probabilities` reads it from an output row
/// (softmax of scores, exp of log-probabilities, a binary output's probability), and the mean is given back
/// in the network's own output form, so that argmax, the loss and `Classifier.probabilities` need nothing
/// new: log-probabilities for a softmax cross-entropy or NLL network (softmax of them is the mean), the
/// probability for one sigmoid output, its logit for `bce-logits`. A network trained with `mse` has no
/// probabilities: its outputs themselves are averaged.
public func testTimeOutputs(_ network: Sequential, _ images: Tensor, tta: TestTimeAugmentation?, fill: [Float], loss: LossFunction) throws -> Tensor {
    guard let tta, !tta.isIdentity else { return try network.forward(images, training: false) }
    try tta.check(sampleShape: images.sampleShape)
    let passes = tta.passes
    var sum = Tensor.empty
    var width = 0
    let mode = TestTimeKernels.Mode(loss: loss)
    for pass in passes {
        let output = try network.forward(TestTimeAugmentation.apply(pass, to: images, fill: fill), training: false)
        if width == 0 {
            width = output.count / max(output.batchSize, 1)
            sum = Tensor(shape: output.shape)
        }
        let rows = output.batchSize
        sum.withUnsafeMutableBufferPointer { total in
            output.withUnsafeBufferPointer { out in
                TestTimeKernels.accumulate(out.baseAddress!, rows: rows, width: width, mode: mode, into: total.baseAddress!)
            }
        }
    }
    let rows = sum.batchSize
    sum.withUnsafeMutableBufferPointer { total in
        TestTimeKernels.finish(total.baseAddress!, rows: rows, width: width, passes: passes.count, mode: mode)
    }
    return sum
}

/// The loops of `testTimeOutputs` over rows of network outputs.
enum TestTimeKernels {
    enum Mode {
        /// Softmax of scores (softmax cross-entropy), given back as log-probabilities.
        case softmax
        /// exp of log-probabilities (NLL), given back as log-probabilities.
        case logProbabilities
        /// One sigmoid output: a probability, given back as it is.
        case probability
        /// One logit (`bce-logits`): its sigmoid, given back as a logit.
        case logit
        /// The outputs themselves (`mse`, and a binary cross-entropy network with several outputs).
        case raw

        init(loss: LossFunction) {
            switch loss {
            case .softmaxCrossEntropy: self = .softmax
            case .negativeLogLikelihood: self = .logProbabilities
            case .sigmoidBinaryCrossEntropy: self = .logit
            case .binaryCrossEntropy: self = .probability
            case .meanSquaredError: self = .raw
            }
        }

        /// The mode for outputs `width` values wide: one output is a binary probability (or a logit).
        func forWidth(_ width: Int) -> Mode {
            if width == 1 { return self == .logit ? .logit : .probability }
            switch self {
            case .softmax, .logProbabilities: return self
            case .probability, .logit, .raw: return .raw
            }
        }
    }

    /// Adds each row's probabilities (or outputs, in `.raw`) to `total`.
    static func accumulate(_ out: UnsafePointer<Float>, rows: Int, width: Int, mode: Mode, into total: UnsafeMutablePointer<Float>) {
        let mode = mode.forWidth(width)
        for r in 0..<rows {
            let row = out + r &* width, sum = total + r &* width
            switch mode {
            case .softmax:
                var m = row[0]
                for j in 1..<width { m = max(m, row[j]) }
                var s: Float = 0
                for j in 0..<width { s += expf(row[j] - m) }
                for j in 0..<width { sum[j] += expf(row[j] - m) / s }
            case .logProbabilities:
                for j in 0..<width { sum[j] += expf(row[j]) }
            case .probability, .raw:
                for j in 0..<width { sum[j] += row[j] }
            case .logit:
                sum[0] += 1 / (1 + expf(-row[0]))
            }
        }
    }

    /// Turns the sums of `passes` passes into means, in the network's output form.
    static func finish(_ total: UnsafeMutablePointer<Float>, rows: Int, width: Int, passes: Int, mode: Mode) {
        let mode = mode.forWidth(width), scale = 1 / Float(passes)
        // A probability of exactly 0 would give a log of -infinity: the smallest normal float stands in for it.
        let tiny = Float.leastNormalMagnitude
        for i in 0..<(rows &* width) {
            let p = total[i] * scale
            switch mode {
            case .softmax, .logProbabilities: total[i] = logf(max(p, tiny))
            case .probability, .raw: total[i] = p
            case .logit: total[i] = logf(max(p, tiny)) - logf(max(1 - p, tiny))
            }
        }
    }
}
