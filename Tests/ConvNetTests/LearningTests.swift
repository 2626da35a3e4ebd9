import Testing
@testable import ConvNet

/// A ReLU whose backward forgets the mask: the gradient checker must catch it.
final class WrongBackwardReLU: Layer {
    let kind = "relu"
    var name = "relu"
    var input: Tensor?
    func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] { inputShape }
    func forward(_ x: Tensor, training: Bool, context: ExecutionContext) throws -> Tensor {
        input = x
        return relu(x)
    }
    func backward(_ dy: Tensor, context: ExecutionContext) throws -> Tensor { dy }
    var specStatement: String { "relu" }
}

@Suite("Gradient checker and learning")
struct LearningTests {
    @Test("the gradient checker fails a deliberately wrong backward")
    func checkerCatchesBug() throws {
        let net = try Sequential(inputShape: [6], seed: 1) {
            Dense(units: 8)
            WrongBackwardReLU()
        }
        let x = randomTensor([4, 6], seed: 2)
        let results = try GradientChecker().check(net, input: x, label: "wrong relu")
        let input = results.first { $0.quantity == "dL/dX" }!
        #expect(!input.passed)
        #expect(input.maxRelativeError > 0.1)
        #expect(results.contains { !$0.passed && $0.quantity == "dL/dweight" })
    }

    @Test("the 6x6 toy network learns to tell noise from noise with a square")
    func toyLearns() throws {
        let train = try ToySquares.make(count: 400, seed: 1)
        let test = try ToySquares.make(count: 1000, seed: 2)
        let net = try Sequential(spec: ToySquares.spec, inputShape: [1, 6, 6], seed: 3)
        let sgd = SGD(learningRate: 0.5, momentum: 0.9)
        var random = SeededGenerator(seed: 4)
        for _ in 0..<15 {
            let order = random.permutation(train.count)
            for start in stride(from: 0, to: train.count, by: 20) {
                let batch = Array(order[start..<min(start + 20, train.count)])
                let out = try net.forward(train.images.gather(batch), training: true)
                let loss = try LossFunction.binaryCrossEntropy.evaluate(output: out, labels: batch.map { train.labels[$0] })
                try net.backward(loss.gradient)
                sgd.step(net.parameters)
            }
        }
        let out = try net.forward(test.images)
        let correct = (0..<test.count).filter { (out[$0] > 0.5 ? 1 : 0) == test.labels[$0] }.count
        #expect(Double(correct) / Double(test.count) >= 0.98, "accuracy \(correct) / \(test.count)")
    }
}
