import Testing
@testable import ConvNet

/// Draws a tensor of uniform values in [-1, 1).
func randomTensor(_ shape: [Int], seed: UInt64) -> Tensor {
    var random = SeededGenerator(seed: seed)
    let count = shape.reduce(1, *)
    return try! Tensor(shape: shape, scalars: (0..<count).map { _ in random.uniform(-1, 1) })
}

func maxAbsDifference(_ a: Tensor, _ b: Tensor) -> Float {
    precondition(a.shape == b.shape, "\(a.shape) vs \(b.shape)")
    return zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0
}

@Suite("Layers: shapes and references")
struct LayerTests {
    static let specs: [(String, [Int])] = [
        ("conv 4 3x3 pad 1", [2, 7, 5]),
        ("conv 3 5x2 stride 2 pad same", [1, 9, 8]),
        ("maxpool 2", [3, 7, 7]),
        ("maxpool 3 stride 2", [2, 8, 9]),
        ("avgpool 2x3 stride 1", [2, 5, 6]),
        ("relu", [3, 4, 4]),
        ("leakyrelu 0.2", [6]),
        ("sigmoid", [6]),
        ("tanh", [2, 3, 3]),
        ("flatten", [2, 3, 3]),
        ("dense 7", [2, 3, 3]),
        ("batchnorm", [3, 4, 4]),
        ("batchnorm", [5]),
        ("dropout 0.5", [10]),
        ("logsoftmax", [4]),
    ]

    @Test("dL/dX has X's shape and every dL/dW has W's shape", arguments: 0..<specs.count)
    func gradientShapes(index: Int) throws {
        let (spec, shape) = Self.specs[index]
        let net = try Sequential(spec: spec, inputShape: shape, seed: 3)
        let x = randomTensor([3] + shape, seed: 5)
        let y = try net.forward(x, training: true)
        #expect(y.shape == [3] + net.outputShape)
        let dx = try net.backward(Tensor(shape: y.shape, repeating: 0.5))
        #expect(dx.shape == x.shape)
        for p in net.parameters { #expect(p.gradient.shape == p.value.shape, "\(p.name)") }
    }

    @Test("conv2d matches the naive reference, forward and backward",
          arguments: [((1, 1), Padding.valid), ((2, 2), .symmetric(1)), ((1, 2), .same), ((2, 1), .explicit(top: 0, left: 2, bottom: 1, right: 0))])
    func convMatchesReference(stride: (Int, Int), padding: Padding) throws {
        let x = randomTensor([2, 3, 7, 6], seed: 1)
        let w = randomTensor([4, 3, 3, 2], seed: 2)
        let b = randomTensor([4], seed: 3)
        let y = try conv2d(x, weight: w, bias: b, stride: stride, padding: padding)
        let yRef = try Reference.conv2d(x, weight: w, bias: b, stride: stride, padding: padding)
        #expect(y.shape == yRef.shape)
        #expect(maxAbsDifference(y, yRef) < 1e-5)
        let dy = randomTensor(y.shape, seed: 4)
        let g = try conv2dBackward(dy, input: x, weight: w, stride: stride, padding: padding)
        let gRef = try Reference.conv2dBackward(dy, input: x, weight: w, stride: stride, padding: padding)
        #expect(maxAbsDifference(g.input, gRef.input) < 1e-5)
        #expect(maxAbsDifference(g.weight, gRef.weight) < 1e-4)
        #expect(maxAbsDifference(g.bias, gRef.bias) < 1e-4)
    }

    @Test("pooling matches the naive reference; floors like PyTorch; ties send the gradient to one input")
    func poolingMatchesReference() throws {
        let x = randomTensor([2, 3, 7, 9], seed: 9)
        let (y, _) = try maxPool2d(x, kernel: (3, 3), stride: (2, 2))
        #expect(y.shape == [2, 3, 3, 4])
        #expect(maxAbsDifference(y, Reference.maxPool(x, kernel: (3, 3), stride: (2, 2))) == 0)
        let dy = randomTensor(y.shape, seed: 10)
        let dx = try maxPool2dBackward(dy, input: x, kernel: (3, 3), stride: (2, 2))
        #expect(maxAbsDifference(dx, Reference.maxPoolBackward(dy, input: x, kernel: (3, 3), stride: (2, 2))) < 1e-6)
        let avg = try averagePool2d(x, kernel: (2, 2), stride: (2, 2))
        #expect(maxAbsDifference(avg, Reference.averagePool(x, kernel: (2, 2), stride: (2, 2))) < 1e-6)

        let ties = Tensor(shape: [1, 1, 2, 2], repeating: 1)
        let tieGrad = try maxPool2dBackward(Tensor(shape: [1, 1, 1, 1], repeating: 1), input: ties, kernel: (2, 2), stride: (2, 2))
        #expect(tieGrad.scalars == [1, 0, 0, 0])
    }

    @Test("dense matches the naive reference")
    func denseMatchesReference() throws {
        let x = randomTensor([3, 5], seed: 1), w = randomTensor([4, 5], seed: 2), b = randomTensor([4], seed: 3)
        #expect(maxAbsDifference(try dense(x, weight: w, bias: b), Reference.dense(x, weight: w, bias: b)) < 1e-5)
    }

    @Test("batch norm: training normalises with batch statistics, inference with running averages")
    func batchNormModes() throws {
        let net = try Sequential(spec: "batchnorm", inputShape: [2, 3, 3])
        let x = randomTensor([4, 2, 3, 3], seed: 8)
        let y = try net.forward(x, training: true)
        for c in 0..<2 {
            var values: [Float] = []
            for n in 0..<4 { for i in 0..<9 { values.append(y[n * 18 + c * 9 + i]) } }
            let mean = values.reduce(0, +) / Float(values.count)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(values.count)
            #expect(abs(mean) < 1e-5)
            #expect(abs(variance - 1) < 1e-3)
        }
        let bn = net.layers[0] as! BatchNorm
        #expect(bn.runningMean.value.scalars != [0, 0])
        let inference = try net.forward(x, training: false)
        #expect(maxAbsDifference(inference, y) > 0.01)
    }

    @Test("dropout is off at inference and scales kept values by 1/(1-p) in training")
    func dropout() throws {
        let net = try Sequential(spec: "dropout 0.25", inputShape: [1000])
        let x = Tensor(shape: [1, 1000], repeating: 1)
        #expect(try net.forward(x, training: false) == x)
        let y = try net.forward(x, training: true)
        let kept = y.scalars.filter { $0 != 0 }
        #expect(kept.allSatisfy { abs($0 - 1 / 0.75) < 1e-6 })
        #expect(kept.count > 650 && kept.count < 850)
    }

    @Test("sigmoid and softmax cross-entropy stay finite on extreme logits")
    func numericalStability() throws {
        let x = try Tensor(shape: [1, 3], scalars: [1000, -1000, 0])
        #expect(sigmoid(x).scalars == [1, 0, 0.5])
        let r = try softmaxCrossEntropy(logits: x, labels: [1])
        #expect(abs(r.value - 2000) < 1e-2)
        #expect(!r.gradient.hasNonFinite)
        let b = try sigmoidBinaryCrossEntropy(logits: try Tensor(shape: [2, 1], scalars: [500, -500]), targets: try Tensor(shape: [2, 1], scalars: [0, 1]))
        #expect(abs(b.value - 500) < 1e-2)
    }
}
