import Foundation
import Testing
import ConvNet  // not @testable: this target sees only what a package depending on ConvNet sees

/// A layer defined outside the library: multiplies its input by one learned factor.
final class Scale: Layer {
    let kind = "scale"
    var name = "scale"
    /// The factor the layer starts from (its spec argument); training moves `factor.value`.
    let initial: Float
    private(set) var factor: Parameter!
    private var cachedInput: Tensor?

    init(initial: Float) { self.initial = initial }

    func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] {
        factor = Parameter(name: "\(name).factor", value: try Tensor(shape: [1], scalars: [initial]))
        return inputShape
    }

    // `context` says how the library's kernels would run; a layer of plain Swift like this one ignores it.
    func forward(_ input: Tensor, training: Bool, context: ExecutionContext) throws -> Tensor {
        cachedInput = input
        let f = factor.value[0]
        return try Tensor(shape: input.shape, scalars: input.scalars.map { $0 * f })
    }

    func backward(_ outputGradient: Tensor, context: ExecutionContext) throws -> Tensor {
        guard let x = cachedInput else { throw ValueError.invalidArgument("scale: backward before forward") }
        let dFactor = zip(outputGradient.scalars, x.scalars).reduce(Float(0)) { $0 + $1.0 * $1.1 }
        factor.gradient = try Tensor(shape: [1], scalars: [dFactor])
        let f = factor.value[0]
        return try Tensor(shape: outputGradient.shape, scalars: outputGradient.scalars.map { $0 * f })
    }

    var parameters: [Parameter] { [factor].compactMap { $0 } }
    var specStatement: String { "scale \(initial)" }
    func releaseCaches() { cachedInput = nil }
}

func registerScale() throws {
    try NetworkSpec.registerLayer("scale") { arguments in
        guard arguments.count == 1, let factor = Float(arguments[0]) else {
            throw ValueError.invalidArgument("scale takes one number, e.g. 'scale 2', got \(arguments)")
        }
        return Scale(initial: factor)
    }
}

func temporaryFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("convnet-api-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Eight 1 x 4 x 4 images: class 1 has a bright centre.
func tinyData() throws -> Dataset {
    var random = SeededGenerator(seed: 3)
    var scalars: [Float] = [], labels: [Int] = []
    for i in 0..<8 {
        for y in 0..<4 { for x in 0..<4 {
            let centre = (1...2).contains(y) && (1...2).contains(x)
            scalars.append(random.nextUnitFloat() * 0.2 + (i % 2 == 1 && centre ? 0.8 : 0))
        } }
        labels.append(i % 2)
    }
    return try Dataset(name: "tiny", images: try Tensor(shape: [8, 1, 4, 4], scalars: scalars), labels: labels, classNames: ["no", "yes"])
}

@Suite("The library as another package uses it", .serialized)
struct LibraryAPITests {
    @Test("a custom layer registered by keyword trains, writes model.npz and reads back with its weights")
    func customLayerRoundTrip() throws {
        try registerScale()
        defer { NetworkSpec.unregisterLayer("scale") }
        let network = try Sequential(inputShape: [1, 4, 4], seed: 2) {
            Scale(initial: 0.5)
            Flatten()
            Dense(units: 2)
        }
        #expect(network.spec == "scale 0.5; flatten; dense 2")
        #expect(network.parameters.map(\.name) == ["scale1.factor", "dense1.weight", "dense1.bias"])
        var options = TrainingOptions()
        options.epochs = 3
        options.batchSize = 4
        let trainer = try Trainer(network: network, options: options)
        let data = try tinyData()
        try trainer.train(on: data)
        let learned = try #require(network.layers.first as? Scale).factor.value[0]
        #expect(learned != 0.5, "training moved the custom layer's parameter")

        let folder = try temporaryFolder()
        let url = folder.appendingPathComponent("model.npz")
        let archive = ModelArchive(network: network, modelName: "scaled", loss: .softmaxCrossEntropy, classNames: data.classNames,
                                   normalization: .identity, dataset: "tiny")
        try archive.write(to: url)
        let read = try ModelArchive.read(from: url)
        let readScale = try #require(read.network.layers.first as? Scale)
        #expect(readScale.factor.value[0] == learned)
        #expect(try read.network.forward(data.images) == network.forward(data.images))
        // The same model from arrays in memory, without a file.
        let fromArrays = try ModelArchive(arrays: archive.arrays)
        #expect(try fromArrays.network.forward(data.images) == network.forward(data.images))
        #expect(fromArrays.classNames == ["no", "yes"] && fromArrays.dataset == "tiny")

        // Without the registration the file is refused with a message that says what to do.
        NetworkSpec.unregisterLayer("scale")
        #expect(NetworkSpec.registeredKeywords.isEmpty)
        do {
            _ = try ModelArchive.read(from: url)
            Issue.record("read a model with an unregistered layer")
        } catch {
            #expect("\(error)".contains("model.npz") && "\(error)".contains("unknown layer 'scale'") && "\(error)".contains("registerLayer"))
        }
        // Bad arguments reach the factory and come back with the statement.
        try registerScale()
        #expect(throws: SpecError.self) { try NetworkSpec.parse("scale two; flatten; dense 2") }
        #expect(throws: ValueError.self) { try NetworkSpec.registerLayer("dense") { _ in Flatten() } }
        #expect(throws: ValueError.self) { try NetworkSpec.registerLayer("two words") { _ in Flatten() } }
    }

    @Test("Normalization throws on bad values instead of trapping; Parameter names can be set")
    func throwingInitialisers() throws {
        #expect(throws: ValueError.self) { try Normalization(mean: [0, 0], std: [1]) }
        #expect(throws: ValueError.self) { try Normalization(mean: [], std: []) }
        #expect(throws: ValueError.self) { try Normalization(mean: 0, std: 0) }
        #expect(throws: ValueError.self) { try Normalization(mean: .nan, std: 1) }
        let norm = try Normalization(mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25])
        var gray = try Tensor(shape: [1, 1, 2, 2], scalars: [1, 1, 1, 1])
        #expect(throws: ShapeError.self) { try norm.apply(to: &gray) }
        var rgb = Tensor(shape: [1, 3, 1, 1], repeating: 1)
        try norm.apply(to: &rgb)
        #expect(rgb.scalars == [2, 2, 2])

        let p = Parameter(name: "a", value: Tensor(shape: [2], repeating: 0))
        p.name = "custom.weight"
        #expect(p.name == "custom.weight")
        let loss = try softmaxCrossEntropy(logits: try Tensor(shape: [1, 2], scalars: [0, 0]), labels: [1])
        #expect(abs(loss.value - Float(log(2.0))) < 1e-6)
    }
}
