import Testing
@testable import ConvNet

@Suite("Networks: builder, spec, summary, errors")
struct NetworkTests {
    static let twoConv = "conv 50 3x3 pad 1; relu; maxpool 2; conv 100 3x3 pad 1; relu; maxpool 2; flatten; dense 10"

    @Test("a spec parses and prints back unchanged",
          arguments: [twoConv, "conv 6 5x5; relu; maxpool 2; conv 16 5x5; relu; maxpool 2; flatten; dense 120; relu; dense 84; relu; dense 10",
                      "conv 32 10x10 pad same; relu; maxpool 3 stride 2; conv 4 3x5 stride 2x1 pad 1,0,2,1; batchnorm; tanh; avgpool 2x1; flatten; dropout 0.5; dense 10; logsoftmax",
                      "conv 1 3x3; leakyrelu 0.01; maxpool 2; flatten; dense 1; sigmoid"])
    func specRoundTrip(spec: String) throws {
        let net = try Sequential(spec: spec, inputShape: [1, 28, 28])
        #expect(net.spec == spec)
    }

    @Test("the result builder and the spec give the same network and weights")
    func builderMatchesSpec() throws {
        let built = try Sequential(inputShape: [1, 28, 28], seed: 42) {
            Conv2D(filters: 50, kernel: 3, padding: 1)
            ReLU()
            MaxPool2D(kernel: 2)
            Conv2D(filters: 100, kernel: 3, padding: 1)
            ReLU()
            MaxPool2D(kernel: 2)
            Flatten()
            Dense(units: 10)
        }
        let parsed = try Sequential(spec: Self.twoConv, inputShape: [1, 28, 28], seed: 42)
        #expect(built.spec == parsed.spec)
        #expect(built.outputShapes == parsed.outputShapes)
        #expect(built.outputShapes[6] == [4900])
        #expect(built.parameters.map(\.name) == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "dense1.weight", "dense1.bias"])
        #expect(built.parameters.map(\.value.shape) == [[50, 1, 3, 3], [50], [100, 50, 3, 3], [100], [10, 4900], [10]])
        #expect(zip(built.parameters, parsed.parameters).allSatisfy { $0.value == $1.value })
        #expect(built.parameterCount == 500 + 45_100 + 49_010)
    }

    @Test("the summary lists every layer with its output shape and parameters")
    func summary() throws {
        let net = try Sequential(spec: "input 1x14x14; conv 3 3x3 pad 1; relu; maxpool 2; flatten; dense 10")
        let s = net.summary
        #expect(s.contains("conv1"))
        #expect(s.contains("3x14x14"))
        #expect(s.contains("147"))
        #expect(s.contains("1480"))
        #expect(s.contains("total parameters: \(30 + 1480)"))
    }

    @Test("the same seed gives the same weights, another seed other weights")
    func seeds() throws {
        let a = try Sequential(spec: Self.twoConv, inputShape: [1, 28, 28], seed: 7)
        let b = try Sequential(spec: Self.twoConv, inputShape: [1, 28, 28], seed: 7)
        let c = try Sequential(spec: Self.twoConv, inputShape: [1, 28, 28], seed: 8)
        #expect(a.parameters[0].value == b.parameters[0].value)
        #expect(a.parameters[0].value != c.parameters[0].value)
    }

    @Test("bad specs name the statement and the problem",
          arguments: [("conv 0 3x3", "statement 1"), ("relu; pool 2", "unknown layer 'pool'"), ("conv 8 3x3 pad -1", "padding"),
                      ("dense ten", "positive integer"), ("conv 4 3x3 foo 2", "unexpected 'foo'"), ("", "no layers"), ("dropout 1.5", "[0, 1)")])
    func badSpecs(spec: String, fragment: String) {
        #expect {
            _ = try Sequential(spec: spec, inputShape: [1, 8, 8])
        } throws: { error in
            "\(error)".contains(fragment)
        }
    }

    @Test("shapes that do not fit name the layer and both shapes")
    func badShapes() throws {
        #expect { _ = try Sequential(spec: "conv 4 9x9", inputShape: [1, 6, 6]) } throws: { error in
            let m = "\(error)"
            return m.contains("conv1") && m.contains("9x9") && m.contains("6x6")
        }
        #expect { _ = try Sequential(spec: "flatten; conv 4 3x3", inputShape: [1, 6, 6]) } throws: { error in
            "\(error)".contains("conv1") && "\(error)".contains("36")
        }
        let net = try Sequential(spec: "dense 3", inputShape: [4])
        #expect { _ = try net.forward(Tensor(shape: [2, 5])) } throws: { error in
            "\(error)".contains("2x5") && "\(error)".contains("4")
        }
        #expect { _ = try net.backward(Tensor(shape: [2, 3])) } throws: { error in
            "\(error)".contains("dense1")
        }
    }

    @Test("a NaN loss is a typed error, not a trap")
    func nanLoss() {
        let logits = try! Tensor(shape: [1, 2], scalars: [.nan, 0])
        #expect(throws: ValueError.self) { _ = try softmaxCrossEntropy(logits: logits, labels: [0]) }
        #expect(throws: ValueError.self) { _ = try softmaxCrossEntropy(logits: Tensor(shape: [1, 2]), labels: [2]) }
    }
}
