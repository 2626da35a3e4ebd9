import ConvNet
import Foundation

/// A problem with a request or the studio's state, answered with `status` and a JSON `{"error": message}`.
public struct StudioError: Error, CustomStringConvertible, Sendable {
    public var status: Int
    public var message: String
    public init(_ status: Int, _ message: String) {
        self.status = status
        self.message = message
    }
    public var description: String { message }
}

/// The number of values a drawn image has: 28 x 28 gray pixels.
public let drawnPixelCount = 28 * 28

/// One drawn image as the page sends it: 784 gray levels 0...255, row by row (what a P5 PGM holds).
public struct DrawnImage: Sendable, Equatable {
    public var levels: [UInt8]

    /// Parses `{"pixels": [784 integers 0...255]}`.
    public init(json data: Data) throws {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw StudioError(400, "the body is not valid JSON; send {\"pixels\": [784 gray levels 0-255]}")
        }
        guard let dict = object as? [String: Any], dict["pixels"] != nil else {
            throw StudioError(400, "the JSON has no \"pixels\" array; send {\"pixels\": [784 gray levels 0-255]}")
        }
        struct Body: Decodable { var pixels: [Int] }
        guard let body = try? JSONDecoder().decode(Body.self, from: data) else {
            throw StudioError(400, "\"pixels\" must be an array of whole numbers (gray levels 0-255)")
        }
        guard body.pixels.count == drawnPixelCount else {
            throw StudioError(400, "\"pixels\" has \(body.pixels.count) values; a drawn image has \(drawnPixelCount) (28 x 28)")
        }
        if let i = body.pixels.firstIndex(where: { !(0...255).contains($0) }) {
            throw StudioError(400, "\"pixels\"[\(i)] is \(body.pixels[i]); each value must be a gray level 0-255")
        }
        levels = body.pixels.map { UInt8($0) }
    }

    public init(levels: [UInt8]) {
        precondition(levels.count == drawnPixelCount)
        self.levels = levels
    }

    /// Gray values in [0, 1] exactly as `Picture.read` decodes the same pixels from a P5 PGM (level / 255).
    public var values: [Float] { levels.map { Float($0) / Float(255) } }

    /// The network input for `shape` (C x H x W), before normalisation, made as `convnet predict`
    /// (`Classifier.predict` on pictures) makes it from a 28x28 gray picture: unchanged for a 28x28
    /// network, the training pipeline's transform where there is one (2x2 averaging to 14x14, zero
    /// padding to 32x32, gray to RGB), else `Picture.fitted(to:)`'s resampling.
    public func input(for shape: [Int]) throws -> Tensor {
        guard shape.count == 3, shape[0] == 1 || shape[0] == 3 else {
            throw StudioError(409, "this network takes \(shape.map(String.init).joined(separator: "x")) inputs; drawing needs a 1- or 3-channel image network")
        }
        let drawn = [1, 28, 28]
        let raw = try Tensor(shape: [1] + drawn, scalars: values)
        if shape == drawn { return raw }
        if let transform = try? InputTransform.choose(from: drawn, to: shape) { return try transform.apply(raw) }
        let plane = Picture.resample(values, width: 28, height: 28, toWidth: shape[2], toHeight: shape[1])
        var out: [Float] = []
        for _ in 0..<shape[0] { out += plane }
        return try Tensor(shape: [1] + shape, scalars: out)
    }
}

/// What `/api/predict` answers.
public struct DrawnPrediction: Encodable, Sendable {
    public var predicted: Int
    public var label: String
    public var probabilities: [Double]
    public var labels: [String]
    public var milliseconds: Double
}

/// One layer's output for the drawn input, values as base64 little-endian float32.
public struct LayerMaps: Encodable, Sendable {
    public var name: String
    public var kind: String
    /// C x H x W for images, [n] for vectors.
    public var shape: [Int]
    public var min: Float
    public var max: Float
    public var data: String
}

/// What `/api/maps` answers: the normalised input, every layer's output and the first convolution's filters.
public struct MapsResponse: Encodable, Sendable {
    public var input: LayerMaps
    public var layers: [LayerMaps]
    public var filters: LayerMaps?
}

func base64Floats(_ values: [Float]) -> String {
    values.withUnsafeBufferPointer { Data(buffer: $0) }.base64EncodedString()
}

func layerMaps(name: String, kind: String, shape: [Int], values: [Float]) -> LayerMaps {
    LayerMaps(name: name, kind: kind, shape: shape, min: values.min() ?? 0, max: values.max() ?? 0, data: base64Floats(values))
}

/// A model the studio serves: where it came from and its archive.
public struct ModelSource: Sendable, Equatable {
    /// The model file (model.npz or a run's checkpoint.npz).
    public var file: URL
    /// The run folder's name when it is one of the studio's runs.
    public var run: String?
}

/// The current model, shared by every request. Predictions go through the library's `Classifier`
/// (what `convnet predict` uses; concurrent calls run on copies of the network); the layer-by-layer
/// pass for the feature maps uses the store's own copy under a lock.
public final class ModelStore: @unchecked Sendable {
    private let lock = NSLock()
    private var archive: ModelArchive?
    private var classifier: Classifier?
    private var source: ModelSource?
    private var confusion: [String: Task<ConfusionData, any Error>] = [:]
    private var generation = 0
    public let dataDirectory: URL?
    /// What a loaded model's networks and its test set may take (`--memory-budget`).
    public let memoryBudget: MemoryBudget

    public init(dataDirectory: URL?, memoryBudget: MemoryBudget = .machine) {
        self.dataDirectory = dataDirectory
        self.memoryBudget = memoryBudget
    }

    /// Loads `file` (a model.npz, or a checkpoint.npz whose model is used) and makes it current.
    public func load(_ file: URL, run: String?) throws {
        func read() throws -> ModelArchive {
            file.lastPathComponent == "checkpoint.npz"
                ? try Checkpoint.read(from: file, memoryBudget: memoryBudget).model : try ModelArchive.read(from: file, memoryBudget: memoryBudget)
        }
        let archive = try read()
        let classifier = Classifier(archive: try read())
        lock.withLock {
            self.archive = archive
            self.classifier = classifier
            self.source = ModelSource(file: file, run: run)
            self.generation += 1
        }
    }

    public var current: (archive: ModelArchive, source: ModelSource, generation: Int)? {
        lock.withLock { archive.flatMap { a in source.map { (a, $0, generation) } } }
    }

    private func withModel<T>(_ body: (ModelArchive) throws -> T) throws -> T {
        try lock.withLock {
            guard let archive else {
                throw StudioError(409, "no model is loaded yet: train one in the Train section (or start the studio with --weights model.npz)")
            }
            return try body(archive)
        }
    }

    /// The prediction for a drawn image: the same input and probabilities as `convnet predict` on a
    /// PGM file of these pixels.
    public func predict(_ image: DrawnImage) throws -> DrawnPrediction {
        let start = Date()
        guard let classifier = lock.withLock({ self.classifier }) else {
            throw StudioError(409, "no model is loaded yet: train one in the Train section (or start the studio with --weights model.npz)")
        }
        // The same tensor Picture.fitted(to:) makes of a PGM with these pixels; the classifier normalises it.
        guard let result = try classifier.predict(try image.input(for: classifier.inputShape)).first else {
            throw StudioError(500, "the classifier returned no prediction")
        }
        let labels = result.probabilities.indices.map { i in
            i < classifier.classNames.count && !classifier.classNames[i].isEmpty ? classifier.classNames[i] : String(i)
        }
        return DrawnPrediction(
            predicted: result.label, label: result.name, probabilities: result.probabilities.map(Double.init), labels: labels,
            milliseconds: Date().timeIntervalSince(start) * 1000)
    }

    /// Every layer's output for a drawn image (the layers run one by one), and the first convolution's filters.
    public func maps(_ image: DrawnImage) throws -> MapsResponse {
        try withModel { archive in
            let network = archive.network
            let input = try archive.normalization.applied(to: try image.input(for: network.inputShape))
            var x = input
            var layers: [LayerMaps] = []
            defer { network.releaseCaches() }
            for (layer, shape) in zip(network.layers, network.outputShapes) {
                x = try layer.forward(x, training: false, context: network.context)
                if layer.kind == "flatten" { continue }
                layers.append(layerMaps(name: layer.name, kind: layer.kind, shape: shape, values: x.scalars))
            }
            var filters: LayerMaps?
            if let conv = network.layers.first(where: { $0.kind == "conv" }), let weight = conv.parameters.first {
                filters = layerMaps(name: weight.name, kind: "filters", shape: weight.value.shape, values: weight.value.scalars)
            }
            return MapsResponse(
                input: layerMaps(name: "input", kind: "input", shape: network.inputShape, values: input.scalars), layers: layers, filters: filters)
        }
    }

    /// The confusion matrix of the current model on its data set's test images (computed once per model,
    /// on a copy of the network so that drawing stays quick meanwhile).
    public func confusionData() async throws -> ConfusionData {
        let (archive, source, generation): (ModelArchive, ModelSource, Int) = try lock.withLock {
            guard let a = self.archive, let s = self.source else {
                throw StudioError(409, "no model is loaded yet: train one in the Train section (or start the studio with --weights model.npz)")
            }
            return (a, s, self.generation)
        }
        let key = "\(generation)"
        let task: Task<ConfusionData, any Error> = lock.withLock {
            if let t = confusion[key] { return t }
            let directory = dataDirectory, file = source.file, fallback = archive.dataset, budget = memoryBudget
            let t = Task.detached { try ConfusionData.compute(file: file, datasetFallback: fallback, dataDirectory: directory, memoryBudget: budget) }
            confusion = [key: t]
            return t
        }
        return try await task.value
    }
}

func label(_ archive: ModelArchive, _ i: Int) -> String {
    i < archive.classNames.count && !archive.classNames[i].isEmpty ? archive.classNames[i] : String(i)
}

/// The model's test-set results: the confusion matrix and every image's probabilities.
public struct ConfusionData: Sendable {
    public var dataset: String
    public var labels: [String]
    public var matrix: [[Int]]
    public var accuracy: Double
    public var actual: [Int]
    public var predicted: [Int]
    public var probabilities: [[Float]]
    public var images: Tensor

    static func compute(file: URL, datasetFallback: String, dataDirectory: URL?, memoryBudget: MemoryBudget = .machine) throws -> ConfusionData {
        let archive = file.lastPathComponent == "checkpoint.npz"
            ? try Checkpoint.read(from: file, memoryBudget: memoryBudget).model : try ModelArchive.read(from: file, memoryBudget: memoryBudget)
        let name = archive.dataset.isEmpty ? datasetFallback : archive.dataset
        guard !name.isEmpty else { throw StudioError(409, "\(file.path) does not say which data set it was trained on, so there is no test set to show") }
        let split = try DatasetCatalog.load(name, options: DatasetOptions(dataDirectory: dataDirectory, memoryBudget: memoryBudget))
        try split.checkFitting(to: archive.network.inputShape, name: name, memoryBudget: memoryBudget)
        let test = try split.prepared(for: archive.network.inputShape, normalization: archive.normalization).split.test
        archive.network.memoryBudget = memoryBudget.spending(split.bytes)
        let classes = max(archive.network.outputShape.reduce(1, *), 2)
        let perImage = test.images.count / max(test.count, 1)
        var probabilities: [[Float]] = []
        var predicted: [Int] = []
        var start = 0
        while start < test.count {
            let end = min(start + 200, test.count)
            let batch = try Tensor(shape: [end - start] + archive.network.inputShape,
                                   scalars: Array(test.images.scalars[(start * perImage)..<(end * perImage)]))
            let output = try archive.network.forward(batch, training: false)
            let width = output.count / (end - start)
            for i in 0..<(end - start) {
                let p = Classifier.probabilities(Array(output.scalars[(i * width)..<((i + 1) * width)]), loss: archive.loss)
                probabilities.append(p)
                predicted.append(p.indices.max { p[$0] < p[$1] } ?? 0)
            }
            start = end
        }
        let count = max(classes, test.classCount)
        var matrix = [[Int]](repeating: [Int](repeating: 0, count: count), count: count)
        for (a, p) in zip(test.labels, predicted) where a < count && p < count { matrix[a][p] += 1 }
        let correct = zip(test.labels, predicted).filter { $0 == $1 }.count
        return ConfusionData(
            dataset: name, labels: (0..<count).map { label(archive, $0) }, matrix: matrix,
            accuracy: test.count > 0 ? Double(correct) / Double(test.count) : 0, actual: test.labels, predicted: predicted,
            probabilities: probabilities, images: test.images)
    }

    /// Up to `limit` test images with this actual and predicted class, as gray levels for display.
    public func cell(actual: Int, predicted want: Int, limit: Int) -> [CellImage] {
        let shape = Array(images.shape.dropFirst())
        let perImage = shape.reduce(1, *)
        var out: [CellImage] = []
        for i in self.actual.indices where self.actual[i] == actual && predicted[i] == want {
            if out.count >= limit { break }
            let values = Array(images.scalars[(i * perImage)..<((i + 1) * perImage)])
            let lo: Float = values.min() ?? 0, hi: Float = values.max() ?? 1
            let scale: Float = hi > lo ? 255 / (hi - lo) : 0
            let levels = values.map { (v: Float) -> UInt8 in UInt8(Swift.max(0, Swift.min(255, ((v - lo) * scale).rounded()))) }
            out.append(CellImage(index: i, shape: shape, levels: Data(levels).base64EncodedString(), probabilities: probabilities[i].map(Double.init)))
        }
        return out
    }
}

/// One test image of a confusion-matrix cell: gray levels (base64 bytes, C x H x W) and its probabilities.
public struct CellImage: Encodable, Sendable {
    public var index: Int
    public var shape: [Int]
    public var levels: String
    public var probabilities: [Double]
}
