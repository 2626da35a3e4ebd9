import ArgumentParser
import ConvNet
import Foundation

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a network (by default two-conv on the bundled MNIST sample).",
        discussion: """
            Examples:
              convnet train                                   # two-conv on mnist-sample
              convnet train --model lenet5 --dataset fashion-mnist --epochs 5
              convnet train --spec 'conv 8 3x3 pad 1; relu; maxpool 2; flatten; dense 10' --optimizer adam --lr 0.001
              convnet train --model toy --out runs/toy --json
            """)

    @Option(help: "A zoo network: \(ModelZoo.names.joined(separator: ", ")).")
    var model: String?

    @Option(help: "A network as a text spec, inline or a file path (instead of --model).")
    var spec: String?

    @Option(help: "Data set name or .npz path (default: the model's, mnist-sample for most).")
    var dataset: String?

    @Option(help: "Where to look for data set files.")
    var dataDir: String?

    @Option(help: "Passes over the training set.")
    var epochs: Int = 10

    @Option(help: "Images per mini-batch.")
    var batchSize: Int = 64

    @Option(help: "sgd, adagrad or adam.")
    var optimizer: String = "sgd"

    @Option(help: "Learning rate.")
    var lr: Float?

    @Option(help: "SGD momentum.")
    var momentum: Float = 0.9

    @Flag(help: "Nesterov momentum (SGD).")
    var nesterov = false

    @Option(help: "Multiply the learning rate by this every --decay-every iterations.")
    var lrDecay: Float = 1

    @Option(help: "Iterations between learning-rate decays.")
    var decayEvery: Int = 1000

    @Option(help: "Clip each gradient element to ±VALUE.")
    var clip: Float?

    @Option(help: "Scale gradients so their global L2 norm is at most VALUE.")
    var clipNorm: Float?

    @Option(help: "L2 weight decay.")
    var weightDecay: Float = 0

    @Option(help: "Weight initialiser: pytorch, gaussian[:std], truncated-normal[:std], uniform[:limit], xavier, xavier-normal, he, he-uniform.")
    var initializer: String = "pytorch"

    @Option(help: "Random seed: the same seed and thread count give the same weights, bit for bit.")
    var seed: UInt64 = 1

    @Option(help: "Threads for the kernels (default: all cores).")
    var threads: Int?

    @Option(help: "Stop early: acc=0.97 (training accuracy reached) or patience=3 (epochs without validation gain).")
    var earlyStop: String?

    @Option(help: "Fraction of the training set held out for validation.")
    var validation: Double = 0

    @Option(help: "Directory for metrics, weights, checkpoints and the report (default runs/MODEL-TIME).")
    var out: String?

    @Flag(help: "Print one JSON summary object as the last line of stdout.")
    var json = false

    mutating func validate() throws {
        if model != nil && spec != nil { throw ValidationError("give either --model or --spec, not both") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1, got \(t)") }
        if !(0..<1).contains(validation) { throw ValidationError("--validation must be in [0, 1), got \(validation)") }
    }

    func run() throws {
        if let t = threads { Threading.threads = t }
        let zooModel = spec == nil ? try ModelZoo.model(named: model ?? "two-conv") : nil
        var options = TrainingOptions()
        options.epochs = epochs
        options.batchSize = batchSize
        guard let kind = OptimizerKind(rawValue: optimizer.lowercased()) else {
            throw ValidationError("unknown optimizer '\(optimizer)'; use sgd, adagrad or adam")
        }
        options.optimizer = kind
        options.learningRate = lr ?? (kind == .adam ? 0.001 : 0.01)
        options.momentum = momentum
        options.nesterov = nesterov
        options.lrDecay = lrDecay
        options.decayEvery = decayEvery
        options.clipValue = clip
        options.clipNorm = clipNorm
        options.weightDecay = weightDecay
        options.seed = seed
        options.earlyStopping = try earlyStop.map(parseEarlyStop)
        options.loss = zooModel?.loss ?? .softmaxCrossEntropy
        try options.validate()

        let weightInit = try WeightInit(parsing: initializer)
        let datasetName = dataset ?? zooModel?.defaultDataset ?? "mnist-sample"
        let specText = try spec.map(readSpec) ?? zooModel!.spec
        let parsed = try NetworkSpec.parse(specText)
        let data = try loadTrainingData(
            datasetName, dataDirectory: dataDir, networkInput: zooModel.map { $0.inputShape } ?? parsed.inputShape,
            validation: validation, seed: seed)
        if spec != nil && parsed.layers.last?.kind == "sigmoid" { options.loss = .binaryCrossEntropy }
        if spec != nil && parsed.layers.last?.kind == "logsoftmax" { options.loss = .negativeLogLikelihood }
        let network = try Sequential(
            spec: specText, inputShape: data.train.sampleShape, seed: seed, weightInit: weightInit,
            biasInit: weightInit == .pytorchDefault ? .pytorchDefault : .constant(0))
        let classes = network.outputShape.reduce(1, *)
        if !(options.loss.isBinary && classes == 1) && classes != data.train.classCount {
            throw ValidationError(
                "the network ends in \(classes) outputs but '\(datasetName)' has \(data.train.classCount) classes; make the last layer 'dense \(data.train.classCount)'")
        }

        let trainer = try Trainer(network: network, options: options)
        let name = zooModel?.name ?? "custom"
        Terminal.error("training \(name) on \(datasetName): \(data.train.count) training, \(data.test.count) test images, "
            + "\(network.parameterCount) parameters, \(options.optimizer.rawValue) lr \(options.learningRate), batch \(batchSize), "
            + "\(Threading.threads) threads")
        var display = ProgressDisplay(epochs: epochs)
        let started = Date()
        try trainer.train(on: data.train, validation: data.validation, test: data.test) { event in
            display.show(event)
        }
        let seconds = Date().timeIntervalSince(started)
        let final = try evaluate(network, on: data.test, loss: options.loss)
        let last = trainer.epochRecords.last!
        let trainedImages = Double(trainer.progress.epochsDone * data.train.count)
        print(String(format: "test accuracy %.2f%% (%d images) after %d epochs in %.1fs", 100 * final.accuracy, data.test.count, trainer.progress.epochsDone, seconds))
        if json {
            struct Summary: Encodable {
                var model, dataset, optimizer: String
                var epochs, batch_size, train_images, test_images: Int
                var seed: UInt64
                var train_loss, train_accuracy, test_accuracy, seconds, images_per_second: Double
                var weights: String?
            }
            print(try Terminal.json(Summary(
                model: name, dataset: datasetName, optimizer: options.optimizer.rawValue, epochs: trainer.progress.epochsDone,
                batch_size: batchSize, train_images: data.train.count, test_images: data.test.count, seed: seed,
                train_loss: last.trainLoss, train_accuracy: last.trainAccuracy, test_accuracy: final.accuracy, seconds: seconds,
                images_per_second: trainedImages / max(trainer.epochRecords.map(\.seconds).reduce(0, +), 1e-9), weights: nil)))
        }
    }
}

/// `acc=0.97`, `0.97`, `patience=3` or `3`.
func parseEarlyStop(_ text: String) throws -> EarlyStopping {
    let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
    let key = parts.count == 2 ? parts[0].lowercased() : ""
    let value = parts.last ?? ""
    if key == "patience" || (key.isEmpty && Int(value) != nil) {
        guard let n = Int(value), n >= 1 else { throw ValidationError("--early-stop patience must be a whole number of epochs >= 1, got '\(value)'") }
        return .patience(n)
    }
    if key == "acc" || key == "accuracy" || key.isEmpty, let a = Double(value), a > 0, a <= 1 {
        return .trainAccuracy(a)
    }
    throw ValidationError("--early-stop takes acc=0.97 (stop at that training accuracy) or patience=3 (epochs without validation gain), got '\(text)'")
}

/// A spec given inline, or the contents of the file it names.
func readSpec(_ text: String) throws -> String {
    if FileManager.default.fileExists(atPath: text) {
        return try String(contentsOfFile: text, encoding: .utf8)
    }
    return text
}
