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

/// Runs the network in inference mode over `data` in batches and scores it.
public func evaluate(_ network: Sequential, on data: Dataset, loss: LossFunction, batchSize: Int = 256) throws -> Evaluation {
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
        let output = try network.forward(data.images.batch(start..<end), training: false)
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
