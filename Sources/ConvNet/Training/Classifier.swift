import Foundation

/// One image's classification.
public struct Prediction: Sendable, Equatable {
    /// The most probable class.
    public var label: Int
    /// Its name from the model file (the number when the file names none).
    public var name: String
    /// Probability of each class (softmax of the scores; two entries for a one-output binary network).
    public var probabilities: [Float]
    /// The network's raw output for the image (class scores, log-probabilities or a probability).
    public var outputs: [Float]
}

/// A trained model ready to classify images from Swift: load `model.npz` once, then call `predict`
/// as often as needed, from any number of threads at once.
///
/// ```swift
/// let classifier = try Classifier(contentsOf: URL(fileURLWithPath: "runs/two-conv/model.npz"))
/// let results = try classifier.predict(images)   // N x 1 x 28 x 28 pixel values in [0, 1]
/// print(results[0].name, results[0].probabilities[results[0].label])
/// ```
///
/// Images are pixel values in [0, 1] (as `Picture` reads them and the data sets load them), either in
/// the network's input shape or in a shape `convnet train` fits to it (28x28 for a 14x14 or 32x32
/// network, gray for RGB); the classifier applies the model's normalisation itself.
///
/// Thread safety: a network keeps its layers' buffers between calls, so each concurrent call runs on
/// its own copy of the network (same weights); copies are made on demand, kept, and reused, so a
/// steady stream of calls allocates no new network. Results do not depend on which copy runs them.
public final class Classifier: @unchecked Sendable {
    public let modelName: String
    /// Per-sample input shape of the network (C x H x W, or F).
    public let inputShape: [Int]
    public let classNames: [String]
    public let normalization: Normalization
    public let loss: LossFunction
    public let spec: String
    /// Values per image in the network's output.
    public let outputCount: Int
    /// The data set the model was trained on, as `model.npz` names it ("" when it does not).
    public let dataset: String
    /// The background of the model's training images: `.dark` for MNIST and Fashion-MNIST (light strokes
    /// on black); nil when it is not known or the network takes colour images. See `trainingBackground(dataset:normalization:inputShape:)`.
    public let trainingBackground: Background?
    /// The model's test-time augmentation (`model.npz`'s `meta.tta`), applied to every classification; nil: none.
    public let testTimeAugmentation: TestTimeAugmentation?
    private let testTimeFill: [Float]

    /// How each copy of the network runs (threads, kernels).
    public let context: ExecutionContext
    /// What each copy of the network may use (the archive's network's budget).
    public let memoryBudget: MemoryBudget
    /// Each parameter's and buffer's value by name, to build more copies of the network from.
    private let values: [(name: String, value: Tensor)]
    private let lock = NSLock()
    /// Networks not in use by a call right now (guarded by `lock`).
    private var idle: [Sequential]
    /// Input transforms by source shape (guarded by `lock`).
    private var transforms: [[Int]: InputTransform] = [:]

    /// Loads a `model.npz` written by `convnet train` (or `ModelArchive.write`). Each copy of the network
    /// runs within `memoryBudget` (a batch that does not fit it is classified in smaller batches) and in
    /// `context` (its threads and kernels; two classifiers may run at once with different contexts).
    public convenience init(contentsOf url: URL, memoryBudget: MemoryBudget = .machine, context: ExecutionContext = .default) throws {
        self.init(archive: try ModelArchive.read(from: url, memoryBudget: memoryBudget), context: context)
    }

    /// Classifies with `archive`'s network, which the classifier takes over: do not use it elsewhere. Every
    /// copy of the network runs in `context`.
    public init(archive: ModelArchive, context: ExecutionContext = .default) {
        let network = archive.network
        network.context = context
        self.context = context
        modelName = archive.modelName
        inputShape = network.inputShape
        classNames = archive.classNames
        normalization = archive.normalization
        loss = archive.loss
        spec = network.spec
        values = (network.parameters + network.buffers).map { ($0.name, $0.value) }
        idle = [network]
        memoryBudget = network.memoryBudget
        outputCount = network.outputShape.reduce(1, *)
        dataset = archive.dataset
        testTimeAugmentation = archive.testTimeAugmentation
        testTimeFill = archive.testTimeFill
        trainingBackground = Classifier.trainingBackground(dataset: archive.dataset, normalization: archive.normalization, inputShape: network.inputShape)
    }

    /// The background of a gray model's training images. By the data set's name: MNIST, the bundled
    /// sample and Fashion-MNIST are light on dark; toy-squares and CIFAR-10 have none (nil). Otherwise by the
    /// stored normalisation mean (the training images' mean value): below 0.35 dark, above 0.65 light,
    /// in between or without normalisation not known (nil). Colour networks (3 channels): nil.
    public static func trainingBackground(dataset: String, normalization: Normalization, inputShape: [Int]) -> Background? {
        let channels = inputShape.count == 3 ? inputShape[0] : 1
        guard channels == 1 else { return nil }
        switch dataset.lowercased() {
        case "mnist", "mnist-sample", "sample", "fashion-mnist", "fashion": return .dark
        case "toy-squares", "toy", "cifar10", "cifar-10": return nil
        default: break
        }
        guard normalization != .identity, normalization.mean.count == 1 else { return nil }
        let mean = normalization.mean[0]
        if mean < 0.35 { return .dark }
        if mean > 0.65 { return .light }
        return nil
    }

    /// Whether `inversion` turns `picture` into its negative before it is classified: `.always` does,
    /// `.never` does not, `.auto` does when the model's training background is known and the picture's
    /// border (`Picture.background`) shows the other one.
    public func invertsPicture(_ picture: Picture, inversion: Inversion) -> Bool {
        switch inversion {
        case .always: return true
        case .never: return false
        case .auto:
            guard let trainingBackground else { return false }
            return picture.background != trainingBackground
        }
    }

    /// Number of classes the predictions have (2 for a network with one binary output).
    public var classCount: Int { outputCount == 1 ? 2 : outputCount }

    /// Classifies a batch: N x C x H x W (or N x F) pixel values in [0, 1].
    public func predict(_ images: Tensor) throws -> [Prediction] {
        let out = try outputs(images)
        let n = out.batchSize, width = out.count / max(n, 1)
        return out.withUnsafeBufferPointer { buffer in
            (0..<n).map { i in
                let row = Array(buffer[(i * width)..<((i + 1) * width)])
                let probabilities = Classifier.probabilities(row, loss: loss)
                var best = 0
                for (c, p) in probabilities.enumerated() where p > probabilities[best] { best = c }
                let name = best < classNames.count && !classNames[best].isEmpty ? classNames[best] : String(best)
                return Prediction(label: best, name: name, probabilities: probabilities, outputs: row)
            }
        }
    }

    /// Classifies pictures of any size. A picture in a shape `convnet train` fits to the network's input
    /// (28x28 for a 14x14 or 32x32 network, gray for RGB) is fitted the same way (2x2 averaging, zero
    /// padding, repeated channels), so it looks as the training images did; any other is resized
    /// (`Picture.fitted`: area averaging or bilinear sampling, channels averaged or repeated).
    ///
    /// `inversion` first turns pictures into their negatives (`invertsPicture(_:inversion:)`): `.auto`
    /// fits a dark-on-light drawing to a model trained on light-on-dark images, as `convnet predict` does.
    /// The default, `.never`, classifies each picture as it is.
    public func predict(_ pictures: [Picture], inversion: Inversion = .never) throws -> [Prediction] {
        guard !pictures.isEmpty else { return [] }
        var scalars: [Float] = []
        for picture in pictures { scalars += try fitted(picture, inversion: inversion) }
        return try predict(try Tensor(shape: [pictures.count] + inputShape, scalars: scalars))
    }

    /// What one `predict` call on `images` images needs: the network's buffers plus, per image, two copies of
    /// its input (fitted, then normalised). nil: more than can be counted.
    public func bytes(forImages images: Int) -> Int? {
        let memory = lock.withLock { idle.first?.memory }
            ?? (try? Sequential(spec: spec, inputShape: inputShape, memoryBudget: memoryBudget))?.memory
        guard let memory, let inputs = CheckedSize.product([images] + inputShape + [8]) else { return nil }
        return CheckedSize.sum([memory.bytes(batch: images, training: false), inputs])
    }

    /// The most images, up to `limit`, that one `predict` call can hold within `memoryBudget` (0: not even one).
    public func largestBatch(limit: Int) -> Int {
        guard let one = bytes(forImages: 1), let none = bytes(forImages: 0), one <= memoryBudget.bytes else { return 0 }
        return min(max(limit, 0), (memoryBudget.bytes - none) / max(one - none, 1))
    }

    /// Throws `MemoryBudgetError` when not even one image fits the budget.
    public func checkMemory() throws(MemoryBudgetError) {
        try memoryBudget.check(bytes(forImages: 1), for: "classifying one \(formatShape(inputShape)) image with the model \(modelName)",
                               advice: "use a model with a smaller input")
    }

    /// One picture as the network's input (its pixel values, before the model's normalisation), fitted and
    /// inverted as `predict(_:inversion:)` does: what a caller keeps instead of a large decoded picture.
    public func fitted(_ original: Picture, inversion: Inversion = .never) throws -> [Float] {
        let picture = invertsPicture(original, inversion: inversion) ? original.inverted() : original
        let shape = [picture.channels, picture.height, picture.width]
        if inputShape.count == 3, shape != inputShape, let t = try? transform(from: shape) {
            return try t.apply(try Tensor(shape: [1] + shape, scalars: picture.pixels)).scalars
        }
        return try picture.fitted(to: inputShape).scalars
    }

    /// The network's raw outputs (N x outputs) for a batch of pixel values in [0, 1], after the
    /// input fitting and the model's normalisation; with the model's test-time augmentation, the mean over
    /// its passes in the network's output form (`testTimeOutputs`), so the probabilities are the passes' mean.
    public func outputs(_ images: Tensor) throws -> Tensor {
        guard images.rank >= 2 else {
            throw ShapeError.mismatch(operation: "classify", expected: "N x \(formatShape(inputShape))", got: images.shape)
        }
        var x = images
        if images.sampleShape != inputShape {
            x = try transform(from: images.sampleShape).apply(images)
        }
        try normalization.apply(to: &x)
        let network = try checkOut()
        defer { checkIn(network) }
        // As many images at a time as the budget allows (all of them, unless they are many or large).
        let n = x.batchSize
        let step = max(1, network.memory.largestBatch(fitting: network.memoryBudget, training: false, limit: n))
        let tta = testTimeAugmentation, fill = testTimeFill
        if step >= n {
            // The network keeps its output buffer: hand the caller its own copy.
            let out = try testTimeOutputs(network, x, tta: tta, fill: fill, loss: loss)
            return try Tensor(shape: out.shape, scalars: out.scalars)
        }
        var scalars: [Float] = []
        scalars.reserveCapacity(n * outputCount)
        for start in stride(from: 0, to: n, by: step) {
            scalars += try testTimeOutputs(network, x.batch(start..<min(start + step, n)), tta: tta, fill: fill, loss: loss).scalars
        }
        return try Tensor(shape: [n] + network.outputShape, scalars: scalars)
    }

    private func transform(from shape: [Int]) throws -> InputTransform {
        if let t = lock.withLock({ transforms[shape] }) { return t }
        let t = try InputTransform.choose(from: shape, to: inputShape)
        lock.withLock { transforms[shape] = t }
        return t
    }

    private func checkOut() throws -> Sequential {
        if let network = lock.withLock({ idle.popLast() }) { return network }
        // Every copy is busy: build another with the same weights (the build's random draws are overwritten).
        let network = try Sequential(spec: spec, inputShape: inputShape, memoryBudget: memoryBudget, context: context)
        let byName = Dictionary(uniqueKeysWithValues: values.map { ($0.name, $0.value) })
        for p in network.parameters + network.buffers { p.value = byName[p.name]! }
        return network
    }

    private func checkIn(_ network: Sequential) {
        lock.withLock { idle.append(network) }
    }

    /// Class probabilities of one output row: softmax of scores, exp of log-probabilities, or
    /// [1 - p, p] for a single binary output (a probability, or a logit with the `bce-logits` loss).
    public static func probabilities(_ row: [Float], loss: LossFunction) -> [Float] {
        if row.count == 1 {
            let p = loss == .sigmoidBinaryCrossEntropy ? 1 / (1 + exp(-row[0])) : row[0]
            return [1 - p, p]
        }
        if loss == .negativeLogLikelihood { return row.map { exp($0) } }
        let m = row.max() ?? 0
        let e = row.map { exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }
}
