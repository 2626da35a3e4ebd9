import Testing
@testable import ConvNet

/// Any `--threads` value gives the same results: the forward pass (inference and training) and the input
/// gradients do not depend on the thread count at all, and the weights after training only through the
/// fixed-order reduction of the per-thread weight-gradient partials (so they are bit-identical from run to
/// run at one thread count, and equal to one thread's up to rounding). Thread counts from 28 up once made
/// two kernel paths share scratch memory inside one inference pass (lenet5, tf-cnn), so the logits changed
/// from run to run.
@Suite("Thread counts")
struct ThreadCountTests {
    static let models = ["lenet5", "tf-cnn", "two-conv"]
    #if DEBUG
    // Debug builds run the kernels ~300x slower: fewer thread counts, still above 28 and up to the batch.
    static let threadCounts = [2, 3, 29]
    static let batch = 29
    #else
    static let threadCounts = [2, 3, 29, 64, 200]
    static let batch = 200
    #endif

    /// What one thread count produces: logits of an inference pass, after `steps` training steps
    /// the weights, then the training-mode output and the input gradient of one more batch.
    struct Run: Equatable {
        var logits: Tensor
        var weights: [Tensor]
        var trainingOutput: Tensor
        var inputGradient: Tensor
    }

    static func run(_ modelName: String, threads: Int, steps: Int = 2) throws -> Run {
        let model = try ModelZoo.model(named: modelName)
        let shape = model.inputShape(channels: 1)
        let net = try Sequential(spec: model.spec, inputShape: shape, seed: 4, context: KernelTests.context(threads: threads))
        var random = SeededGenerator(seed: 8)
        let count = batch * shape.reduce(1, *)
        func batchTensor() throws -> Tensor {
            try Tensor(shape: [batch] + shape, scalars: (0..<count).map { _ in random.uniform(-1, 1) })
        }
        let probe = try batchTensor()
        // Twice: the second pass runs with the scratch the first one left behind.
        _ = try net.forward(probe, training: false)
        let logits = try net.forward(probe, training: false)
        let optimizer = SGD(learningRate: 0.05, momentum: 0.9)
        for _ in 0..<steps {
            let x = try batchTensor()
            let labels = (0..<batch).map { _ in Int(random.next() % 10) }
            let y = try net.forward(x, training: true)
            try net.backwardParameters(try model.loss.evaluate(output: y, labels: labels).gradient)
            optimizer.step(net.parameters, context: net.context)
        }
        let weights = net.parameters.map(\.value)
        let y = try net.forward(probe, training: true)
        let dy = try Tensor(shape: y.shape, scalars: (0..<y.count).map { _ in random.uniform(-1, 1) })
        let dx = try net.backward(dy)
        return Run(logits: logits, weights: weights, trainingOutput: y, inputGradient: dx)
    }

    @Test("1, 2, 3, 29, 64 and 200 threads: the same logits, input gradients and weights as 1 thread", arguments: models)
    func sameResults(_ model: String) throws {
        let one = try Self.run(model, threads: 1)
        for threads in Self.threadCounts {
            let r = try Self.run(model, threads: threads)
            #expect(r.logits == one.logits, "\(model), \(threads) threads: inference logits")
            // Different weights (below) give a different training pass; compare it from one thread's weights.
            #expect(r.weights.count == one.weights.count)
            for (w, w1) in zip(r.weights, one.weights) {
                let worst = zip(w.scalars, w1.scalars).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .infinity
                #expect(w.shape == w1.shape && worst <= 1e-5, "\(model), \(threads) threads: weights differ by \(worst)")
            }
            // Bit-identical from run to run at one thread count.
            let again = try Self.run(model, threads: threads)
            #expect(again == r, "\(model), \(threads) threads: a second run differs")
        }
    }

    @Test("The training-mode forward pass and the input gradient do not depend on the thread count", arguments: models)
    func sameTrainingPass(_ model: String) throws {
        let one = try Self.run(model, threads: 1, steps: 0)
        for threads in Self.threadCounts {
            let r = try Self.run(model, threads: threads, steps: 0)
            #expect(r.logits == one.logits, "\(model), \(threads) threads: inference logits")
            #expect(r.trainingOutput == one.trainingOutput, "\(model), \(threads) threads: training-mode output")
            #expect(r.inputGradient == one.inputGradient, "\(model), \(threads) threads: input gradient")
        }
    }

    /// A classifier of `model` (seeded weights) whose networks run with `threads` threads.
    static func classifier(_ model: ZooModel, threads: Int) throws -> Classifier {
        let shape = model.inputShape(channels: 1)
        let net = try Sequential(spec: model.spec, inputShape: shape, seed: 4)
        let archive = ModelArchive(
            network: net, modelName: model.name, loss: model.loss, classNames: (0..<10).map(String.init), normalization: .identity)
        return Classifier(archive: archive, context: KernelTests.context(threads: threads))
    }

    @Test("Two classifiers with different thread counts run at once and give the logits each gives alone", arguments: models)
    func concurrentClassifiers(_ modelName: String) async throws {
        let model = try ModelZoo.model(named: modelName)
        var random = SeededGenerator(seed: 12)
        let shape = model.inputShape(channels: 1)
        let images = try Tensor(shape: [Self.batch] + shape, scalars: (0..<(Self.batch * shape.reduce(1, *))).map { _ in random.uniform(0, 1) })
        let one = try Self.classifier(model, threads: 1), three = try Self.classifier(model, threads: 3)
        let aloneOne = try one.outputs(images), aloneThree = try three.outputs(images)
        #expect(aloneOne == aloneThree, "\(modelName): logits depend on the thread count")
        // Both at once, several times over, from tasks that run in parallel.
        let results = try await withThrowingTaskGroup(of: (Int, Tensor).self) { group in
            for i in 0..<6 {
                group.addTask { (i, try (i % 2 == 0 ? one : three).outputs(images)) }
            }
            var results: [(Int, Tensor)] = []
            for try await r in group { results.append(r) }
            return results
        }
        for (i, out) in results {
            #expect(out == (i % 2 == 0 ? aloneOne : aloneThree), "\(modelName): run \(i) at once differs from alone")
        }
        #expect(one.context.threads == 1 && three.context.threads == 3)
    }
}
