import Foundation
import Testing
@testable import ConvNet

@Suite("Global average pooling (gap)")
struct GlobalPoolingTests {
    @Test("forward is the naive average over each whole plane; backward shares each gradient equally", arguments: [[3, 4, 5], [1, 1, 1], [2, 7, 3]])
    func matchesReference(shape: [Int]) throws {
        let network = try Sequential(spec: "gap", inputShape: shape, seed: 1)
        #expect(network.outputShape == [shape[0], 1, 1])
        let x = randomTensor([2] + shape, seed: 4)
        let y = try network.forward(x, training: true)
        let reference = Reference.averagePool(x, kernel: (shape[1], shape[2]), stride: (shape[1], shape[2]))
        #expect(y.shape == reference.shape)
        #expect(maxAbsDifference(y, reference) < 1e-6)
        let dy = randomTensor(y.shape, seed: 5)
        let dx = try network.backward(dy)
        var expected = Tensor(shape: x.shape)
        let plane = Float(shape[1] * shape[2])
        for n in 0..<2 { for c in 0..<shape[0] { for i in 0..<shape[1] { for j in 0..<shape[2] {
            expected[n, c, i, j] = dy[n, c, 0, 0] / plane
        } } } }
        #expect(maxAbsDifference(dx, expected) < 1e-7)
    }

    @Test("a hand-computed plane: the mean of 1...6 is 3.5")
    func handComputed() throws {
        let network = try Sequential(spec: "gap", inputShape: [1, 2, 3])
        let y = try network.forward(Tensor(shape: [1, 1, 2, 3], scalars: [1, 2, 3, 4, 5, 6]), training: false)
        #expect(y.scalars == [3.5])
    }

    @Test("the gradient check passes")
    func gradientCheck() throws {
        let c = try #require(GradientCheckSuite.cases.first { $0.name.hasPrefix("gap") })
        for result in try GradientCheckSuite.run(c) { #expect(result.passed, "\(result)") }
    }

    @Test("spec syntax: gap, avgpool global and globalavgpool build it; it writes itself as gap; a flat input is refused")
    func spec() throws {
        for text in ["gap", "avgpool global", "GlobalAvgPool", "AVGPOOL Global"] {
            let network = try Sequential(spec: "conv 2 3x3; \(text); flatten; dense 3", inputShape: [1, 6, 6], seed: 1)
            #expect(network.layers[1] is GlobalAvgPool, "\(text)")
            #expect(network.spec.contains("gap"))
            #expect(network.outputShapes[1] == [2, 1, 1])
            #expect(try Sequential(spec: network.spec, inputShape: [1, 6, 6]).spec == network.spec)
        }
        #expect(throws: (any Error).self) { try Sequential(spec: "flatten; gap", inputShape: [1, 4, 4]) }
        #expect(throws: (any Error).self) { try Sequential(spec: "gap 2", inputShape: [1, 4, 4]) }
        #expect(throws: (any Error).self) { try NetworkSpec.registerLayer("gap") { _ in Flatten() } }
    }

    @Test("ONNX export: gap is a GlobalAveragePool node, a dense after it gets a Flatten")
    func onnx() throws {
        let network = try Sequential(spec: "conv 4 3x3 pad 1; relu; gap; dense 10", inputShape: [1, 8, 8], seed: 1)
        let archive = ModelArchive(network: network, modelName: "custom", loss: .softmaxCrossEntropy, classNames: [], normalization: .identity)
        let model = try ONNXExport.model(from: archive)
        #expect(model.graph.nodes.map(\.opType) == ["Conv", "Relu", "GlobalAveragePool", "Flatten", "Gemm"])
        #expect(model.graph.outputs[0].dims == [.named("N"), .size(10)])
    }

    @Test("a network with gap trains: the loss falls on a separable toy problem")
    func trains() throws {
        var random = SeededGenerator(seed: 2)
        // Class 1 images are bright, class 0 dark: the channel mean alone tells them apart.
        let labels = (0..<32).map { $0 % 2 }
        let scalars = labels.flatMap { label in (0..<16).map { _ in random.uniform(0, 1) + Float(label) } }
        let data = try Dataset(name: "toy", images: Tensor(shape: [32, 1, 4, 4], scalars: scalars), labels: labels, classNames: ["dark", "bright"])
        let network = try Sequential(spec: "conv 2 1x1; gap; flatten; dense 2", inputShape: [1, 4, 4], seed: 3)
        var options = TrainingOptions()
        options.epochs = 20
        options.batchSize = 8
        options.learningRate = 0.1
        let trainer = try Trainer(network: network, options: options)
        try trainer.train(on: data)
        #expect(trainer.epochRecords.last!.trainLoss < trainer.epochRecords.first!.trainLoss * 0.5)
    }
}
