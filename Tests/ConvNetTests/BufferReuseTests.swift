import Foundation
import Testing
@testable import ConvNet

/// Training steps reuse their tensor buffers (`Tensor.overwrite`): no allocation from the second step
/// on, the same numbers as fresh buffers, and value semantics intact. Allocations are counted on the
/// test's own thread (`TensorAllocations.countOnCurrentThread`), so suites running in parallel do not
/// disturb the counts.
@Suite("Buffer reuse", .serialized)
struct BufferReuseTests {
    /// Every non-convolution layer, each after a trainable one (so a training step runs its backward
    /// pass); the last network's first layer caches the input batch.
    static let bodies = [
        "input 2x6x6; batchnorm; maxpool 2; flatten; dense 8; batchnorm; relu; dropout 0.5",
        "input 2x6x6; batchnorm; avgpool 2 stride 1; leakyrelu; flatten; dense 8; tanh; dense 6; sigmoid",
        "input 2x6x6; dense 8; relu; dropout 0.3; dense 5; leakyrelu 0.1",
        // Convolutions: conv -> relu -> maxpool backward as one (as the first trainable layer, and with an
        // input gradient after batchnorm), the implicit GEMM with a fused ReLU, im2col with stride 2.
        "input 2x6x6; conv 4 3x3 pad 1; relu; maxpool 2; conv 3 3x3 pad 1; relu; flatten; dense 8",
        "input 2x6x6; batchnorm; conv 9 5x5 pad 2; relu; maxpool 2; conv 3 2x2 stride 2; flatten",
    ]

    /// The network body followed by the head each loss expects.
    static func spec(_ body: String, _ loss: LossFunction) -> String {
        switch loss {
        case .softmaxCrossEntropy, .meanSquaredError: return body + "; dense 3"
        case .negativeLogLikelihood: return body + "; dense 3; logsoftmax"
        case .binaryCrossEntropy: return body + "; dense 1; sigmoid"
        case .sigmoidBinaryCrossEntropy: return body + "; dense 1"
        }
    }

    static func dataset(count: Int, loss: LossFunction, seed: UInt64) throws -> Dataset {
        var random = SeededGenerator(seed: seed)
        let images = try Tensor(shape: [count, 2, 6, 6], scalars: (0..<(count * 72)).map { _ in random.uniform(-1, 1) })
        let classes = loss.isBinary ? 2 : 3
        return try Dataset(
            name: "random", images: images, labels: (0..<count).map { _ in random.below(classes) },
            classNames: (0..<classes).map(String.init))
    }

    static func options(_ loss: LossFunction, _ optimizer: OptimizerKind, batchSize: Int = 8, epochs: Int = 2) -> TrainingOptions {
        var o = TrainingOptions()
        o.loss = loss
        o.optimizer = optimizer
        o.batchSize = batchSize
        o.epochs = epochs
        o.learningRate = 0.05
        o.weightDecay = 0.001
        o.clipNorm = 5
        o.lrDecay = 0.9
        o.decayEvery = 3
        return o
    }

    /// Trains and returns, per step, the loss and the allocations this thread had made by its end.
    static func train(_ network: Sequential, _ data: Dataset, _ options: TrainingOptions) throws -> [(loss: Float, allocations: Int)] {
        var steps: [(loss: Float, allocations: Int)] = []
        steps.reserveCapacity(100)
        try Trainer(network: network, options: options).train(on: data) { event in
            if case .iteration(let record) = event {
                steps.append((record.loss, TensorAllocations.countOnCurrentThread))
            }
        }
        return steps
    }

    static let cases: [(Int, LossFunction, OptimizerKind)] = bodies.indices.flatMap { body in
        LossFunction.allCases.flatMap { loss in OptimizerKind.allCases.map { (body, loss, $0) } }
    }

    @Test("A training step allocates no tensor from the second step on (every loss and optimizer)", arguments: cases)
    func steadyState(body: Int, loss: LossFunction, optimizer: OptimizerKind) throws {
        let spec = Self.spec(Self.bodies[body], loss)
        // 44 samples in batches of 8: the last batch of each epoch is short.
        let data = try Self.dataset(count: 44, loss: loss, seed: 3)
        let net = try Sequential(spec: spec, seed: 5)
        let steps = try Self.train(net, data, Self.options(loss, optimizer))
        #expect(steps.count == 12)
        let afterFirst = steps[0].allocations
        for (i, step) in steps.enumerated().dropFirst(1) {
            #expect(step.allocations - afterFirst == 0, "\(spec) \(loss) \(optimizer): step \(i + 1)")
        }
        #expect(steps.allSatisfy { $0.loss.isFinite })
    }

    @Test("Reused buffers give bit-identical losses, weights and statistics to fresh zeroed ones", arguments: cases)
    func sameNumbersAsFreshBuffers(body: Int, loss: LossFunction, optimizer: OptimizerKind) throws {
        let spec = Self.spec(Self.bodies[body], loss)
        let data = try Self.dataset(count: 20, loss: loss, seed: 7)
        let options = Self.options(loss, optimizer, batchSize: 8, epochs: 2)
        let reused = try Sequential(spec: spec, seed: 9)
        let fresh = try Sequential(spec: spec, seed: 9)
        let a = try Self.train(reused, data, options)
        let b = try TensorAllocations.withFreshBuffers { try Self.train(fresh, data, options) }
        #expect(a.count == 6 && b.count == 6)
        #expect(a.map(\.loss) == b.map(\.loss), "\(spec) \(loss) \(optimizer)")
        // With fresh buffers every step allocates (the hook works), with reuse the later ones do not.
        #expect(zip(b.dropFirst(), b.dropLast()).allSatisfy { $0.allocations > $1.allocations })
        #expect(a[5].allocations == a[0].allocations)
        for (p, q) in zip(reused.parameters + reused.buffers, fresh.parameters + fresh.buffers) {
            #expect(p.value == q.value, "\(p.name)")
            #expect(p.gradient == q.gradient, "\(p.name) gradient")
        }
    }

    @Test("A tensor kept from step 1 is unchanged by step 2: outputs, gradients, parameter gradients", arguments: bodies)
    func keptTensorsUnchanged(body: String) throws {
        let spec = Self.spec(body, .negativeLogLikelihood)
        let net = try Sequential(spec: spec, seed: 2)
        let sgd = SGD(learningRate: 0.1, momentum: 0.9)
        let x1 = randomTensor([4, 2, 6, 6], seed: 1), x2 = randomTensor([4, 2, 6, 6], seed: 2)
        let labels = [0, 1, 2, 1]

        // Step 1, keeping everything it returned.
        let y1 = try net.forward(x1, training: true)
        let loss1 = try LossFunction.negativeLogLikelihood.evaluate(output: y1, labels: labels)
        let dx1 = try net.backward(loss1.gradient)
        let kept = [y1, loss1.gradient, dx1] + net.parameters.map(\.gradient)
        let copies = kept.map { $0.scalars.map { $0 } }
        sgd.step(net.parameters)

        // Step 2 on another batch, then each layer run on its own, then the network on x1 again.
        let y2 = try net.forward(x2, training: true)
        try net.backwardParameters(try LossFunction.negativeLogLikelihood.evaluate(output: y2, labels: labels).gradient)
        sgd.step(net.parameters)
        var h = x2
        for layer in net.layers { h = try layer.forward(h, training: true) }
        _ = try net.backward(Tensor(shape: h.shape, repeating: 0.1))
        let y3 = try net.forward(x1, training: true)

        for (tensor, copy) in zip(kept, copies) { #expect(tensor.scalars == copy, "\(spec)") }
        #expect(y1 != y2 && y1 != y3 && y2 != y3, "the later passes computed other values")
    }

    @Test("overwrite writes in place when unique, copies when shared, resizes within capacity")
    func overwriteMechanism() throws {
        var buffer = Tensor.empty
        var before = TensorAllocations.countOnCurrentThread
        buffer.overwrite(shape: [2, 3]) { b in for i in b.indices { b[i] = Float(i) } }
        #expect(TensorAllocations.countOnCurrentThread == before + 1)  // the first call allocates
        #expect(buffer.shape == [2, 3] && buffer.scalars == [0, 1, 2, 3, 4, 5])
        let address = buffer.withUnsafeBufferPointer { $0.baseAddress }

        // Unique: written in place, stale values visible unless zeroed.
        before = TensorAllocations.countOnCurrentThread
        buffer.overwrite(shape: [3, 2]) { b in #expect(b[5] == 5) }
        buffer.overwrite(shape: [6], zeroed: true) { b in #expect(b.allSatisfy { $0 == 0 }); b[0] = 7 }
        #expect(TensorAllocations.countOnCurrentThread == before)
        #expect(buffer.withUnsafeBufferPointer { $0.baseAddress } == address)
        #expect(buffer.shape == [6] && buffer.scalars == [7, 0, 0, 0, 0, 0])

        // Shared: the holder keeps its values, the buffer gets a copy (counted), reused from then on.
        let held = buffer
        buffer.overwrite(shape: [6]) { b in b.update(repeating: 1) }
        #expect(held.scalars == [7, 0, 0, 0, 0, 0])
        #expect(buffer.scalars == [Float](repeating: 1, count: 6))
        #expect(TensorAllocations.countOnCurrentThread == before + 1)
        let copyAddress = buffer.withUnsafeBufferPointer { $0.baseAddress }
        buffer.overwrite(shape: [6]) { b in b.update(repeating: 2) }
        #expect(buffer.withUnsafeBufferPointer { $0.baseAddress } == copyAddress)

        // Smaller, then back to the old size: within capacity, no allocation.
        before = TensorAllocations.countOnCurrentThread
        buffer.overwrite(shape: [1, 2]) { b in b.update(repeating: 3) }
        #expect(buffer.count == 2 && buffer.scalars == [3, 3])
        buffer.overwrite(shape: [2, 3]) { b in b.update(repeating: 4) }
        #expect(buffer.count == 6 && buffer.scalars == [Float](repeating: 4, count: 6))
        #expect(TensorAllocations.countOnCurrentThread == before)
        #expect(buffer.withUnsafeBufferPointer { $0.baseAddress } == copyAddress)

        // Larger than the capacity: allocated (counted); a shrink of a shared buffer copies (counted).
        buffer.overwrite(shape: [1000]) { b in b.update(repeating: 5) }
        #expect(TensorAllocations.countOnCurrentThread == before + 1)
        let big = buffer
        buffer.overwrite(shape: [10]) { b in b.update(repeating: 6) }
        #expect(big.count == 1000 && big.scalars.allSatisfy { $0 == 5 })
        #expect(buffer.scalars == [Float](repeating: 6, count: 10))
        #expect(TensorAllocations.countOnCurrentThread == before + 2)
    }

    @Test("The counter sees Tensor's initialisers and copy-on-write copies, not empty tensors or shared storage")
    func counter() throws {
        let before = TensorAllocations.countOnCurrentThread
        let totalBefore = TensorAllocations.count
        var a = Tensor(shape: [3])                                       // 1
        _ = Tensor(shape: [2], unsafeUninitialized: { $0.update(repeating: 1) })  // 2
        _ = try Tensor(shape: [2], scalars: [1, 2])                      // 3
        _ = Tensor(shape: [0])                                           // no storage
        let b = a                                                        // shared, no copy
        _ = try a.reshaped([1, 3])                                       // shared, no copy
        a.withUnsafeMutableBufferPointer { $0[0] = 1 }                   // 4: copy-on-write
        a.withUnsafeMutableBufferPointer { $0[1] = 1 }                   // unique now
        #expect(b.scalars == [0, 0, 0] && a.scalars == [1, 1, 0])
        #expect(TensorAllocations.countOnCurrentThread - before == 4)
        #expect(TensorAllocations.count - totalBefore >= 4)
    }

    @Test("bench reports the steady-state allocations per training step (0 for the MLP)")
    func benchmarkAllocations() throws {
        let result = try ModelBenchmark.run(model: try ModelZoo.model(named: "mlp"), batchSize: 4, warmup: 2, warmupSeconds: 0, steps: 3, repeats: 1)
        #expect(result.steadyStateAllocations == 0)
        let json = String(decoding: try JSONEncoder().encode(result), as: UTF8.self)
        #expect(json.contains("\"steady_state_allocations\":0"))
    }
}
