import Foundation
import Testing
@testable import ConvNet

/// A spec with every layer keyword: strided, asymmetric and `same` padding, pooling with a stride
/// other than its size, batch norm on images and on features, leaky ReLU, dropout, log-softmax.
let everyLayerSpec = """
    input 1x28x28; conv 8 3x3 stride 2 pad 1; batchnorm; leakyrelu 0.1; maxpool 2 stride 1; conv 6 3x3 pad 0,1,1,0; tanh; \
    avgpool 2; conv 4 2x3 stride 1x2 pad same; sigmoid; flatten; dense 32; batchnorm; relu; dropout 0.3; dense 10; logsoftmax
    """
/// A dense layer straight on an image (the export adds a Flatten).
let denseOnImageSpec = "input 1x28x28; conv 4 5x5 stride 3; relu; dense 10"
/// Global average pooling before the classifier.
let globalPoolSpec = "input 1x28x28; conv 6 3x3 pad 1; relu; maxpool 2; conv 8 3x3; gap; flatten; dense 10"

/// A network trained briefly, saved and read back, with the raw test images it was tested on.
struct TrainedModel {
    var name: String
    var modelURL: URL
    /// Test images as the data set holds them (pixel values in [0, 1], before fitting and normalisation).
    var testImages: Tensor
}

/// Trains `spec` (or a zoo network) for one short epoch on the bundled digits (toy-squares for `toy`),
/// writes `model.npz` into `directory`.
func trainBriefly(name: String, spec: String, zooInput: [Int]?, loss: LossFunction, dataset: String,
                  in directory: URL, testCount: Int = 256) throws -> TrainedModel {
    #if DEBUG
    let trainCount = 128  // debug builds run the kernels ~300x slower
    #else
    let trainCount = 1024
    #endif
    let split = try DatasetCatalog.load(dataset, options: DatasetOptions(trainCount: trainCount, testCount: testCount))
    let dataShape = split.train.sampleShape
    let specShape = try NetworkSpec.parse(spec).inputShape
    let inputShape = zooInput.map { $0.first == 0 ? [dataShape[0]] + $0.dropFirst() : $0 } ?? specShape ?? dataShape
    let train = split.train.subset(Array(0..<min(trainCount, split.train.count)))
    let prepared = try DataSplit(train: train, test: split.test).prepared(for: inputShape, normalize: dataset != "toy-squares")
    let network = try Sequential(spec: spec, inputShape: inputShape, seed: 7)
    var options = TrainingOptions()
    options.epochs = 1
    options.batchSize = 32
    options.learningRate = 0.01
    options.loss = loss
    try Trainer(network: network, options: options).train(on: prepared.split.train)
    let archive = ModelArchive(network: network, modelName: name, loss: loss, classNames: split.train.classNames,
                               normalization: prepared.normalization, dataset: dataset)
    let url = directory.appendingPathComponent("\(name).npz")
    try archive.write(to: url)
    let test = split.test.subset(Array(0..<min(testCount, split.test.count)))
    return TrainedModel(name: name, modelURL: url, testImages: test.images)
}

/// Every zoo network and the two specs above, with their loss and data set.
let exportCases: [(name: String, spec: String, zooInput: [Int]?, loss: LossFunction, dataset: String)] =
    ModelZoo.models.map { ($0.name, $0.spec, Optional($0.inputShape), $0.loss, $0.defaultDataset) }
    + [("every-layer", everyLayerSpec, nil, .negativeLogLikelihood, "mnist-sample"),
       ("dense-on-image", denseOnImageSpec, nil, .softmaxCrossEntropy, "mnist-sample"),
       ("global-pool", globalPoolSpec, nil, .softmaxCrossEntropy, "mnist-sample")]

/// The package's `.venv/bin/python`, where `.ci/run` installs onnx and onnxruntime.
let venvPython = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent(".venv/bin/python")
let parityScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Benchmarks/onnx_check.py")
let hasVenv = FileManager.default.isExecutableFile(atPath: venvPython.path)
let isCI = ["1", "true", "yes"].contains((ProcessInfo.processInfo.environment["CI"] ?? "").lowercased())

/// A layer the exporter does not know.
final class SquareLayer: Layer {
    let kind = "square"
    var name = "square"
    func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] { inputShape }
    func forward(_ input: Tensor, training: Bool, context: ExecutionContext) throws -> Tensor { input }
    func backward(_ outputGradient: Tensor, context: ExecutionContext) throws -> Tensor { outputGradient }
    var specStatement: String { "square" }
}

@Suite("ONNX export")
struct ONNXExportTests {
    @Test("the protobuf writer encodes varints, negative integers, floats and nested messages as protobuf does")
    func protobufEncoding() {
        var w = ProtobufWriter()
        w.int(1, 300)
        #expect(w.bytes == [0x08, 0xAC, 0x02])
        w = ProtobufWriter()
        w.int(3, -1)
        #expect(w.bytes == [0x18] + Array(repeating: 0xFF, count: 9) + [0x01])
        w = ProtobufWriter()
        w.float(2, 1)
        #expect(w.bytes == [0x15, 0x00, 0x00, 0x80, 0x3F])
        w = ProtobufWriter()
        w.message(7) { $0.string(1, "ab") }
        #expect(w.bytes == [0x3A, 0x04, 0x0A, 0x02, 0x61, 0x62])
    }

    @Test("the every-layer spec maps to the expected ONNX nodes, with resolved pads and a dynamic batch")
    func everyLayerNodes() throws {
        let network = try Sequential(spec: everyLayerSpec, seed: 1)
        let archive = ModelArchive(network: network, modelName: "custom", loss: .negativeLogLikelihood, classNames: [],
                                   normalization: try Normalization(mean: 0.13, std: 0.31))
        let model = try ONNXExport.model(from: archive)
        #expect(model.graph.nodes.map(\.opType) == [
            "Sub", "Mul", "Conv", "BatchNormalization", "LeakyRelu", "MaxPool", "Conv", "Tanh", "AveragePool", "Conv",
            "Sigmoid", "Flatten", "Gemm", "BatchNormalization", "Relu", "Identity", "Gemm", "LogSoftmax",
        ])
        #expect(model.graph.inputs.map(\.dims) == [[.named("N"), .size(1), .size(28), .size(28)]])
        #expect(model.graph.outputs.map(\.name) == ["log_probabilities"])
        #expect(model.graph.outputs[0].dims == [.named("N"), .size(10)])
        #expect(model.graph.nodes.last?.outputs == ["log_probabilities"])
        let convPads = model.graph.nodes.filter { $0.opType == "Conv" }.compactMap { node -> [Int]? in
            for case .ints("pads", let p) in node.attributes { return p }
            return nil
        }
        // pad 1; T,L,B,R 0,1,1,0; `same` for 2x3 stride 1x2 on 6x6 (output 6x3): one row and one column, both at the end
        #expect(convPads == [[1, 1, 1, 1], [0, 1, 1, 0], [0, 0, 1, 1]])
        // Every weight, bias and running statistic is an initializer, with its values.
        let initializers = Set(model.graph.initializers.map(\.name))
        for p in network.parameters + network.buffers { #expect(initializers.contains(p.name)) }
        let bytes = model.serialized()
        #expect(bytes.count > network.parameterCount * 4)
    }

    @Test("the input fitting is baked in when asked: 28x28 digits for lenet5 (pad) and mlp (2x2 average)")
    func fittingBakedIn() throws {
        for (name, steps) in [("lenet5", ["Pad"]), ("mlp", ["AveragePool"])] {
            let zoo = try ModelZoo.model(named: name)
            let network = try Sequential(spec: zoo.spec, inputShape: zoo.inputShape(channels: 1), seed: 1)
            let archive = ModelArchive(network: network, modelName: name, loss: zoo.loss, classNames: [], normalization: .identity)
            let model = try ONNXExport.model(from: archive, dataShape: [1, 28, 28])
            #expect(Array(model.graph.nodes.map(\.opType).prefix(steps.count)) == steps)
            #expect(model.graph.inputs[0].dims == [.named("N"), .size(1), .size(28), .size(28)])
            let fitting = model.metadata.first { $0.key == "convnet.input_fitting" }?.value ?? ""
            #expect(fitting.hasPrefix("baked into the graph"))
        }
    }

    @Test("what cannot be exported is refused with the layer or shape named")
    func refusals() throws {
        let network = try Sequential(inputShape: [4]) {
            Dense(units: 3)
            SquareLayer()
        }
        let archive = ModelArchive(network: network, modelName: "custom", loss: .softmaxCrossEntropy, classNames: [], normalization: .identity)
        #expect { try ONNXExport.model(from: archive) } throws: { error in
            "\(error)".contains("square1") && "\(error)".contains("'square'")
        }
        let lenet = try Sequential(spec: ModelZoo.model(named: "lenet5").spec, inputShape: [1, 32, 32])
        let lenetArchive = ModelArchive(network: lenet, modelName: "lenet5", loss: .softmaxCrossEntropy, classNames: [], normalization: .identity)
        #expect { try ONNXExport.model(from: lenetArchive, dataShape: [1, 40, 40]) } throws: { error in
            "\(error)".contains("1x40x40") && "\(error)".contains("1x32x32")
        }
    }
}

@Suite("ONNX Runtime parity", .serialized)
struct ONNXParityTests {
    @Test("every zoo network and every layer, after a short training: ONNX Runtime's outputs on 256 test images match convnet's within 1e-4, same classes, onnx.checker passes",
          .enabled(if: hasVenv || isCI, "no .venv/ with onnx and onnxruntime (bash .ci/run creates it); skipped locally"))
    func parity() throws {
        try #require(hasVenv, "CI is set but \(venvPython.path) is missing: .ci/run creates it from Benchmarks/requirements-test.txt")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("convnet-onnx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for c in exportCases {
            let trained = try trainBriefly(name: c.name, spec: c.spec, zooInput: c.zooInput, loss: c.loss, dataset: c.dataset, in: directory)
            let classifier = try Classifier(contentsOf: trained.modelURL)
            let predictions = try classifier.predict(trained.testImages)
            let expectedClasses = predictions.map(\.label)
            let expected = try Tensor(shape: [predictions.count, classifier.outputCount], scalars: predictions.flatMap(\.outputs))

            let onnxURL = directory.appendingPathComponent("\(c.name).onnx")
            let archive = try ModelArchive.read(from: trained.modelURL)
            try ONNXExport.write(archive, to: onnxURL, dataShape: trained.testImages.sampleShape)
            let inputsURL = directory.appendingPathComponent("\(c.name)-inputs.npy")
            let outputsURL = directory.appendingPathComponent("\(c.name)-outputs.npy")
            try NumPyArray(tensor: trained.testImages).write(to: inputsURL)
            let run = try runProcess(venvPython, [parityScript.path, onnxURL.path, inputsURL.path, outputsURL.path])
            try #require(run.status == 0, "\(c.name): onnx_check.py failed: \(run.stderr)")
            let info = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
            #expect(info["checker"] as? String == "passed")
            #expect(info["opset"] as? Int == ONNXModel.opsetVersion)

            let actual = try NumPyArray.read(from: outputsURL).tensor()
            try #require(actual.shape == expected.shape, "\(c.name): ONNX Runtime gave \(actual.shape), convnet \(expected.shape)")
            var maxDifference: Float = 0, maxMagnitude: Float = 0
            for (a, e) in zip(actual.scalars, expected.scalars) {
                maxDifference = max(maxDifference, abs(a - e))
                maxMagnitude = max(maxMagnitude, abs(e))
            }
            let width = actual.count / actual.batchSize
            let actualClasses = (0..<actual.batchSize).map { i in
                Classifier.probabilities(Array(actual.scalars[(i * width)..<((i + 1) * width)]), loss: c.loss)
                    .enumerated().max { $0.element < $1.element }!.offset
            }
            let agree = zip(actualClasses, expectedClasses).filter { $0 == $1 }.count
            print("ONNX parity \(c.name): \(actual.batchSize) images, max |ORT - convnet| = \(maxDifference) "
                + "(outputs up to \(maxMagnitude)), classes equal \(agree)/\(actual.batchSize), ops \(info["ops"] ?? "")")
            #expect(maxDifference <= 1e-4, "\(c.name): max abs difference \(maxDifference)")
            #expect(actualClasses == expectedClasses, "\(c.name): \(actual.batchSize - agree) classes differ")
        }
    }
}

@Suite("Classifier")
struct ClassifierTests {
    /// A tiny-cnn with its initial weights and a made-up normalisation, as a classifier.
    func classifier() throws -> Classifier {
        let zoo = try ModelZoo.model(named: "tiny-cnn")
        let network = try Sequential(spec: zoo.spec, inputShape: zoo.inputShape, seed: 3)
        return Classifier(archive: ModelArchive(
            network: network, modelName: zoo.name, loss: zoo.loss, classNames: (0..<10).map { "digit \($0)" },
            normalization: try Normalization(mean: 0.2, std: 0.3)))
    }

    func images(_ n: Int, shape: [Int], seed: UInt64) throws -> Tensor {
        var random = SeededGenerator(seed: seed)
        return try Tensor(shape: [n] + shape, scalars: (0..<(n * shape.reduce(1, *))).map { _ in random.nextUnitFloat() })
    }

    @Test("predictions are the network's outputs on normalised images, with softmax probabilities and class names")
    func matchesNetwork() throws {
        let c = try classifier()
        let x = try images(5, shape: [1, 14, 14], seed: 1)
        let reference = try Sequential(spec: c.spec, inputShape: c.inputShape, seed: 3)
        let expected = try reference.forward(try Normalization(mean: 0.2, std: 0.3).applied(to: x))
        let predictions = try c.predict(x)
        #expect(predictions.count == 5)
        for (i, p) in predictions.enumerated() {
            #expect(p.outputs == Array(expected.scalars[(i * 10)..<((i + 1) * 10)]))
            #expect(abs(p.probabilities.reduce(0, +) - 1) < 1e-5)
            #expect(p.label == p.probabilities.indices.max { p.probabilities[$0] < p.probabilities[$1] })
            #expect(p.name == "digit \(p.label)")
        }
        // 28x28 digits are fitted to its 14x14 input by 2x2 averaging, as convnet train does.
        let big = try images(2, shape: [1, 28, 28], seed: 2)
        let fitted = try InputTransform.choose(from: [1, 28, 28], to: [1, 14, 14]).apply(big)
        #expect(try c.predict(big) == c.predict(fitted))
        // So are 28x28 pictures (a lenet5-style 32x32 network would pad them, not stretch them).
        let pictures = (0..<2).map { i in
            Picture(width: 28, height: 28, channels: 1, pixels: Array(big.scalars[(i * 784)..<((i + 1) * 784)]))
        }
        #expect(try c.predict(pictures) == c.predict(fitted))
        // A size training never fits (20x20) is resized.
        let odd = Picture(width: 20, height: 20, channels: 1, pixels: [Float](repeating: 0.5, count: 400))
        #expect(try c.predict([odd]) == c.predict(try odd.fitted(to: [1, 14, 14])))
    }

    @Test("concurrent callers get the results of one caller")
    func concurrentCallers() throws {
        let c = try classifier()
        let batches = try (0..<12).map { try images(1 + $0 % 3, shape: [1, 14, 14], seed: UInt64(10 + $0)) }
        let serial = try batches.map { try c.outputs($0).scalars }
        let lock = NSLock()
        let result = UncheckedBox<(worst: Float, failures: Int)>()
        result.value = (0, 0)
        DispatchQueue.concurrentPerform(iterations: 48) { i in
            let k = i % batches.count
            let out = try? c.outputs(batches[k]).scalars
            lock.withLock {
                var r = result.value!
                if let out, out.count == serial[k].count {
                    // Not bit for bit: other suites may switch the kernel level while this runs.
                    for (a, b) in zip(out, serial[k]) { r.worst = max(r.worst, abs(a - b)) }
                } else {
                    r.failures += 1
                }
                result.value = r
            }
        }
        #expect(result.value?.failures == 0)
        #expect((result.value?.worst ?? 1) < 1e-4)
    }
}

struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

func runProcess(_ executable: URL, _ arguments: [String]) throws -> ProcessResult {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let errData = UncheckedBox<Data>()
    let reader = Thread { errData.value = err.fileHandleForReading.readDataToEndOfFile() }
    reader.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while errData.value == nil { usleep(1000) }
    return ProcessResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData.value!, as: UTF8.self))
}
