import Testing
@testable import ConvNet

/// The shortcuts a training step takes against the plain layer-by-layer passes.
@Suite("Training paths")
struct TrainingPathTests {
    static let specs = [
        "conv 4 3x3 pad 1; relu; maxpool 2; conv 5 3x3; leakyrelu; flatten; dense 7",
        "flatten; dense 9; relu; dense 4",
        "conv 3 5x5 pad same; sigmoid; avgpool 2; flatten; dense 3",
    ]

    @Test("backwardParameters writes the parameter gradients of backward", arguments: specs)
    func parameterGradients(_ spec: String) throws {
        var random = SeededGenerator(seed: 11)
        let x = try Tensor(shape: [5, 2, 10, 9], scalars: (0..<(5 * 2 * 10 * 9)).map { _ in random.uniform(-1, 1) })
        for threads in [1, 2] {
            let net = try Sequential(spec: spec, inputShape: [2, 10, 9], seed: 3, context: KernelTests.context(threads: threads))
            let y = try net.forward(x, training: true)
            let dy = try Tensor(shape: y.shape, scalars: (0..<y.count).map { _ in random.uniform(-1, 1) })
            try net.backward(dy)
            let full = net.parameters.map(\.gradient)
            for p in net.parameters { p.gradient = Tensor(shape: p.value.shape, repeating: .nan) }
            try net.backwardParameters(dy)
            // The same arithmetic in the same context: bit for bit.
            for (p, g) in zip(net.parameters, full) {
                #expect(p.gradient == g, "\(p.name), \(threads) threads")
            }
        }
    }

    @Test("Threaded elementwise activations match the single-threaded kernels")
    func elementwiseSplit() throws {
        var random = SeededGenerator(seed: 12)
        let count = ElementwiseTuning.minParallelCount + 77
        let x = try Tensor(shape: [count], scalars: (0..<count).map { _ in random.uniform(-3, 3) })
        let dy = try Tensor(shape: [count], scalars: (0..<count).map { _ in random.uniform(-1, 1) })
        var results: [[Tensor]] = []
        for threads in [1, 2, 3] {
            let c = ExecutionContext(threads: threads)
            let r = relu(x, context: c), l = leakyRelu(x, slope: 0.1, context: c), s = sigmoid(x, context: c), t = tanh(x, context: c)
            results.append([
                r, l, s, t, try reluBackward(dy, input: x, context: c), try leakyReluBackward(dy, input: x, slope: 0.1, context: c),
                try sigmoidBackward(dy, output: s, context: c), try tanhBackward(dy, output: t, context: c),
            ])
        }
        #expect(results[0] == results[1] && results[0] == results[2])
        // Spot-check against the definition.
        for i in stride(from: 0, to: count, by: 997) {
            #expect(results[0][0][i] == max(x[i], 0))
            #expect(results[0][4][i] == (x[i] > 0 ? dy[i] : 0))
        }
    }
}
