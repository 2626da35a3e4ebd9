import Foundation

/// Weights that do not fit, or a weights file that is not one of ours.
public enum WeightsError: Error, CustomStringConvertible {
    case missing(path: String, name: String)
    case shape(path: String, name: String, found: [Int], expected: [Int])
    case notAModel(path: String, problem: String)
    /// A model file or checkpoint whose arrays are there but unusable (NaN weights, a normalisation or
    /// optimizer state that does not fit, progress values out of range).
    case damaged(path: String, problem: String)

    public var description: String {
        switch self {
        case .missing(let path, let name):
            return "\(path): weights do not fit the network: no array '\(name)'"
        case .shape(let path, let name, let found, let expected):
            return "\(path): weights do not fit the network: '\(name)' has shape \(formatShape(found)), the network needs \(formatShape(expected))"
        case .notAModel(let path, let problem): return "\(path): not a ConvNet model file: \(problem)"
        case .damaged(let path, let problem): return "\(path): cannot be used: \(problem)"
        }
    }
}

/// A trained network with everything needed to use it again: `model.npz`.
///
/// The file is a plain NumPy archive that `numpy.load(path)` opens without pickles:
/// - every parameter under its PyTorch-style name (`conv1.weight` [out, in, kh, kw], `dense1.weight`
///   [out, in], `conv1.bias`, ...) and batch-norm running statistics (`bn1.running_mean`, ...), float32;
/// - `meta.spec`, `meta.model`, `meta.loss`, `meta.dataset`, `meta.classes` (newline-separated) as UTF-8
///   bytes (uint8), `meta.augmentation` (`--augment`'s settings) when the training augmented, and
///   `meta.training` (the `convnet train` options that repeat the run: `--recipe NAME` and its overrides) when known,
///   `meta.tta` (`--tta`'s settings) when the model classifies with test-time augmentation, and then, with a shift,
///   `meta.tta_fill` (float32, one per channel: the value of shifted-in pixels);
/// - `meta.input_shape` (int64), `norm_mean` and `norm_std` (float32, one per channel): the input
///   preprocessing.
public struct ModelArchive {
    public var network: Sequential
    public var modelName: String
    public var loss: LossFunction
    public var classNames: [String]
    public var normalization: Normalization
    /// The data set it was trained on (empty when unknown).
    public var dataset: String
    /// The training's `--augment` settings (`Augmentation.description`; empty when none or unknown),
    /// stored as `meta.augmentation` when not empty.
    public var augmentation: String
    /// The `convnet train` options the model was trained with (`--recipe fashion-fast --epochs 3`), stored as
    /// `meta.training` when not empty.
    public var training: String
    /// The test-time augmentation every classification with the model uses (`--tta`; nil: none), stored as
    /// `meta.tta`, and the value per channel of the pixels its shifts move in (`meta.tta_fill`; empty without a shift).
    public var testTimeAugmentation: TestTimeAugmentation?
    public var testTimeFill: [Float]

    public init(
        network: Sequential, modelName: String, loss: LossFunction, classNames: [String], normalization: Normalization, dataset: String = "",
        augmentation: String = "", training: String = "", testTimeAugmentation: TestTimeAugmentation? = nil, testTimeFill: [Float] = []
    ) {
        self.network = network
        self.testTimeAugmentation = testTimeAugmentation?.isIdentity == true ? nil : testTimeAugmentation
        self.testTimeFill = testTimeFill
        self.augmentation = augmentation
        self.training = training
        self.dataset = dataset
        self.modelName = modelName
        self.loss = loss
        self.classNames = classNames
        self.normalization = normalization
    }

    /// The arrays of the archive, in order.
    public var arrays: [(name: String, array: NumPyArray)] {
        var out: [(name: String, array: NumPyArray)] = []
        for p in network.parameters + network.buffers { out.append((p.name, NumPyArray(tensor: p.value))) }
        out += normalization.arrays
        out.append(("meta.spec", NumPyArray(string: network.spec)))
        out.append(("meta.input_shape", NumPyArray(labels: network.inputShape)))
        out.append(("meta.model", NumPyArray(string: modelName)))
        out.append(("meta.loss", NumPyArray(string: loss.rawValue)))
        out.append(("meta.classes", NumPyArray(string: classNames.joined(separator: "\n"))))
        out.append(("meta.dataset", NumPyArray(string: dataset)))
        if !augmentation.isEmpty { out.append(("meta.augmentation", NumPyArray(string: augmentation))) }
        if !training.isEmpty { out.append(("meta.training", NumPyArray(string: training))) }
        if let tta = testTimeAugmentation {
            out.append(("meta.tta", NumPyArray(string: tta.description)))
            if tta.shift > 0 { out.append(("meta.tta_fill", try! NumPyArray(shape: [testTimeFill.count], float32: testTimeFill))) }
        }
        return out
    }

    /// Writes `model.npz` atomically (a temporary file, then a rename).
    public func write(to url: URL) throws {
        try NumPyArchive.write(arrays, to: url, compressed: false)
    }

    /// Reads a model file and rebuilds its network with the stored weights.
    /// The network is built within `memoryBudget` (see `Sequential.memoryBudget`).
    public static func read(from url: URL, memoryBudget: MemoryBudget = .machine) throws -> ModelArchive {
        let arrays = try NumPyArchive.read(from: url)
        return try ModelArchive(arrays: arrays, path: url.path, memoryBudget: memoryBudget)
    }

    /// Rebuilds a model from its arrays (those of `arrays`, or a `model.npz` read with `NumPyArchive.read`);
    /// `path` names where they came from in error messages.
    public init(arrays: [(name: String, array: NumPyArray)], path: String = "model arrays", memoryBudget: MemoryBudget = .machine) throws {
        try self.init(arrays: Dictionary(arrays, uniquingKeysWith: { first, _ in first }), path: path, memoryBudget: memoryBudget)
    }

    /// Rebuilds a model from its arrays by name; `path` names where they came from in error messages.
    public init(arrays: [String: NumPyArray], path: String = "model arrays", memoryBudget: MemoryBudget = .machine) throws {
        func string(_ name: String) throws -> String {
            guard let a = arrays[name] else {
                throw WeightsError.notAModel(path: path, problem: "it has no '\(name)' array (was it written by convnet train?)")
            }
            do { return try a.string() } catch {
                throw WeightsError.notAModel(path: path, problem: "'\(name)' is not text: \(error)")
            }
        }
        let spec = try string("meta.spec")
        guard let shapeArray = arrays["meta.input_shape"], let inputShape = try? shapeArray.integers() else {
            throw WeightsError.notAModel(path: path, problem: "it has no 'meta.input_shape' array")
        }
        // The weights must be in the file: a spec that needs more values than the file holds is refused
        // before anything is allocated for it.
        let stored = arrays.values.reduce(0) { $0 &+ $1.count }
        do {
            try NetworkSpec.checkSize(NetworkSpec.parse(spec), inputShape: inputShape, parameterLimit: min(stored, NetworkSpec.maximumParameters))
        } catch let error as SpecError {
            throw WeightsError.notAModel(path: path, problem: "its meta.spec does not fit: \(error)")
        }
        let network: Sequential
        do {
            network = try Sequential(spec: spec, inputShape: inputShape, memoryBudget: memoryBudget)
        } catch let error as SpecError {
            throw WeightsError.notAModel(path: path, problem: "\(error)")
        } catch let error as ShapeError {
            throw WeightsError.notAModel(path: path, problem: "its network does not build: \(error)")
        }
        try ModelArchive.load(arrays, into: network, path: path)
        let lossName = try string("meta.loss")
        guard let loss = LossFunction(rawValue: lossName) else {
            throw WeightsError.notAModel(path: path, problem: "unknown loss '\(lossName)'")
        }
        let normalization: Normalization
        do {
            normalization = try Normalization(arrays: arrays) ?? .identity
        } catch {
            throw WeightsError.damaged(path: path, problem: "its input normalisation (norm_mean, norm_std): \(error)")
        }
        let classes = try string("meta.classes").split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var tta: TestTimeAugmentation?, fill: [Float] = []
        if arrays["meta.tta"] != nil {
            do {
                let t = try TestTimeAugmentation(parsing: try string("meta.tta"))
                try t.check(sampleShape: inputShape)
                tta = t
            } catch {
                throw WeightsError.damaged(path: path, problem: "its test-time augmentation (meta.tta): \(error)")
            }
            if tta?.shift ?? 0 > 0 {
                guard let f = arrays["meta.tta_fill"]?.floats(), f.count == inputShape[0], f.allSatisfy(\.isFinite) else {
                    throw WeightsError.damaged(path: path, problem: "its test-time augmentation shifts images, but meta.tta_fill does not hold one finite value per channel")
                }
                fill = f
            }
        }
        self.init(network: network, modelName: try string("meta.model"), loss: loss, classNames: classes,
                  normalization: normalization, dataset: (try? arrays["meta.dataset"]?.string()) ?? "",
                  augmentation: (try? arrays["meta.augmentation"]?.string()) ?? "", training: (try? arrays["meta.training"]?.string()) ?? "",
                  testTimeAugmentation: tta, testTimeFill: fill)
    }

    /// Copies every parameter and buffer of `network` from `arrays`, checking names, shapes and that
    /// every value is a finite number.
    public static func load(_ arrays: [String: NumPyArray], into network: Sequential, path: String) throws {
        for p in network.parameters + network.buffers {
            guard let a = arrays[p.name] else { throw WeightsError.missing(path: path, name: p.name) }
            guard a.shape == p.value.shape else {
                throw WeightsError.shape(path: path, name: p.name, found: a.shape, expected: p.value.shape)
            }
            let value = try a.tensor()
            if value.hasNonFinite, let bad = value.scalars.firstIndex(where: { !$0.isFinite }) {
                throw WeightsError.damaged(
                    path: path, problem: "'\(p.name)' holds \(value.scalars[bad]) at index \(bad); weights must be finite numbers")
            }
            p.value = value
        }
    }
}

/// The course handout's weight files (`--export hw5`): `mlp.npz` (w1, b1, w2, b2) and `cnn.npz`
/// (w_conv [h, w, C1, C2], b_conv, w_fc, b_fc), biases as (n, 1) columns.
public enum CourseExport {
    /// The zoo networks the handout has a file for.
    public static let models = ["mlp", "tiny-cnn"]

    /// Throws unless the handout has a file for zoo network `model`.
    public static func check(model: String) throws(ValueError) {
        guard models.contains(model) else {
            throw .invalidArgument("--export hw5 writes mlp.npz for --model mlp and cnn.npz for --model tiny-cnn only, not for '\(model)'")
        }
    }

    /// Writes the handout's file for `mlp` or `tiny-cnn` into `directory`; returns its URL.
    public static func write(model: String, network: Sequential, to directory: URL) throws -> URL {
        let p = Dictionary(uniqueKeysWithValues: network.parameters.map { ($0.name, $0.value) })
        func column(_ t: Tensor) throws -> NumPyArray { NumPyArray(tensor: try t.reshaped([t.count, 1])) }
        switch model {
        case "mlp":
            guard let w1 = p["dense1.weight"], let b1 = p["dense1.bias"], let w2 = p["dense2.weight"], let b2 = p["dense2.bias"] else { break }
            let url = directory.appendingPathComponent("mlp.npz")
            try NumPyArchive.write([("w1", NumPyArray(tensor: w1)), ("b1", try column(b1)), ("w2", NumPyArray(tensor: w2)), ("b2", try column(b2))],
                                   to: url, compressed: false)
            return url
        case "tiny-cnn":
            guard let wc = p["conv1.weight"], let bc = p["conv1.bias"], let wf = p["dense1.weight"], let bf = p["dense1.bias"],
                  let conv = network.layers.first as? Conv2D, let g = conv.geometry else { break }
            // [out, in, kh, kw] -> [kh, kw, in, out]
            var hwio = Tensor(shape: [g.kernelHeight, g.kernelWidth, g.inChannels, g.outChannels])
            for o in 0..<g.outChannels { for i in 0..<g.inChannels { for y in 0..<g.kernelHeight { for x in 0..<g.kernelWidth {
                hwio[y, x, i, o] = wc[o, i, y, x]
            } } } }
            // Our flatten is C, H, W; the handout flattens its (H, W, C) array: reorder the columns.
            let shape = network.outputShapes[2]  // after maxpool: C x H x W
            let (c, h, w) = (shape[0], shape[1], shape[2])
            var fc = Tensor(shape: wf.shape)
            for r in 0..<wf.shape[0] { for ci in 0..<c { for y in 0..<h { for x in 0..<w {
                fc[r, (y * w + x) * c + ci] = wf[r, (ci * h + y) * w + x]
            } } } }
            let url = directory.appendingPathComponent("cnn.npz")
            try NumPyArchive.write([("w_conv", NumPyArray(tensor: hwio)), ("b_conv", try column(bc)), ("w_fc", NumPyArray(tensor: fc)), ("b_fc", try column(bf))],
                                   to: url, compressed: false)
            return url
        default: break
        }
        try check(model: model)
        throw ValueError.invalidArgument("--export hw5: \(model) does not have the handout's layers (\(network.parameters.map(\.name).joined(separator: ", ")))")
    }
}
