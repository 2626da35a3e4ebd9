import ConvNet
import Foundation

/// A network to train: a zoo model or a spec, with the loss its last layer calls for.
struct NetworkChoice: Codable {
    var name: String
    var spec: String
    /// The zoo's input shape (a leading 0 takes the channel count from the data).
    var zooInput: [Int]?
    var loss: LossFunction
    var defaultDataset: String

    /// The name of a network given as a spec.
    static let customName = "custom"

    /// `--model NAME` or `--spec TEXT|FILE` (two-conv when neither is given).
    init(model: String?, spec: String?) throws {
        if let spec {
            try self.init(specText: readSpec(spec))
        } else {
            try self.init(zoo: ModelZoo.model(named: model ?? "two-conv"))
        }
    }

    /// A zoo network.
    init(zoo: ZooModel) {
        name = zoo.name
        spec = zoo.spec
        zooInput = zoo.inputShape
        loss = zoo.loss
        defaultDataset = zoo.defaultDataset
    }

    /// A network given as a spec's text.
    init(specText text: String) throws {
        let parsed = try NetworkSpec.parse(text)
        name = Self.customName
        spec = text
        zooInput = nil
        switch parsed.layers.last?.kind {
        case "sigmoid": loss = .binaryCrossEntropy
        case "logsoftmax": loss = .negativeLogLikelihood
        default: loss = .softmaxCrossEntropy
        }
        defaultDataset = "mnist-sample"
    }

    /// The network's input shape for data whose images are `sampleShape`, checked with
    /// `NetworkSpec.checkSize` (a layer that does not fit, or absurd sizes, is an error naming the statement).
    func inputShape(forData sampleShape: [Int]) throws -> [Int] {
        let shape: [Int]
        if let zooInput {
            shape = zooInput.first == 0 ? [sampleShape.first ?? 1] + zooInput.dropFirst() : zooInput
        } else {
            shape = try NetworkSpec.parse(spec).inputShape ?? sampleShape
        }
        try NetworkSpec.checkSize(NetworkSpec.parse(spec), inputShape: shape)
        return shape
    }
}

/// Loads a data set and prepares it for a network: shape transform, hold-out, normalisation.
func prepareData(
    _ dataset: String, dataDirectory: String?, trainLimit: Int? = nil, network: NetworkChoice,
    normalization: Normalization? = nil, validation: Double = 0, seed: UInt64, memoryBudget: MemoryBudget = .machine
) throws -> (data: PreparedData, inputShape: [Int]) {
    let options = DatasetOptions(dataDirectory: dataDirectory.map { URL(fileURLWithPath: $0) }, trainCount: trainLimit, seed: seed,
                                 memoryBudget: memoryBudget)
    let split = try DatasetCatalog.load(dataset, options: options)
    try checkTestImages(split, name: dataset)
    let inputShape = try network.inputShape(forData: split.train.sampleShape)
    try split.checkFitting(to: inputShape, name: dataset, memoryBudget: memoryBudget)
    let data = try split.prepared(
        for: inputShape, normalize: dataset != "toy-squares", normalization: normalization, validationFraction: validation, seed: seed)
    return (data, inputShape)
}

/// A data set without test images leaves nothing to measure accuracy on: an error, not "0.00% (0 images)".
func checkTestImages(_ split: DataSplit, name: String) throws {
    guard split.test.count > 0 else {
        throw CommandError("the data set '\(name)' has no test images, so there is no accuracy to measure; "
            + "an .npz needs a non-empty test set (x_test and y_test)")
    }
}

/// Checks that the network's outputs match the data set's classes.
func checkClasses(_ network: Sequential, loss: LossFunction, dataset: Dataset, name: String) throws {
    let outputs = network.outputShape.reduce(1, *)
    if !(loss.isBinary && outputs == 1) && outputs != dataset.classCount {
        throw CommandError(
            "the network ends in \(outputs) outputs but '\(name)' has \(dataset.classCount) classes; make the last layer 'dense \(dataset.classCount)'")
    }
}

/// The test set of the data set a saved model was trained on (or `override`), prepared with the
/// model's own normalisation.
func testSet(for archive: ModelArchive, dataset override: String?, dataDirectory: String?, weightsPath: String,
             memoryBudget: MemoryBudget = .machine) throws -> (Dataset, String) {
    guard let name = override ?? (archive.dataset.isEmpty ? nil : archive.dataset) else {
        throw CommandError("\(weightsPath) does not say which data set it was trained on; give --dataset")
    }
    if let override, !archive.dataset.isEmpty, override != archive.dataset {
        Terminal.error("warning: \(weightsPath) was trained on '\(archive.dataset)', not on '\(override)': "
            + "its accuracy there measures how it transfers, not how well it learnt")
    }
    let split = try DatasetCatalog.load(name, options: DatasetOptions(dataDirectory: dataDirectory.map { URL(fileURLWithPath: $0) }, memoryBudget: memoryBudget))
    try checkTestImages(split, name: name)
    try split.checkFitting(to: archive.network.inputShape, name: name, memoryBudget: memoryBudget)
    let data = try split.prepared(for: archive.network.inputShape, normalization: archive.normalization)
    // The network gets what the data left of the budget.
    archive.network.memoryBudget = memoryBudget.spending(data.bytes)
    try checkClasses(archive.network, loss: archive.loss, dataset: data.split.test, name: name)
    return (data.split.test, name)
}
