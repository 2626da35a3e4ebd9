import Foundation
import Testing

@testable import ConvNet

@Suite("Walkthrough")
struct ExplainTests {
    static let ids = [
        "input", "kernel", "conv", "leakyrelu", "maxpool", "flatten", "dense-weights", "pre-activation", "sigmoid", "loss",
        "dl-dz", "dense-gradients", "dl-df", "maxpool-backward", "leakyrelu-backward", "kernel-gradients", "update",
    ]

    func expectEqual(_ m: WalkthroughMatrix?, _ t: Tensor, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let m else {
            Issue.record("missing matrix \(what)", sourceLocation: sourceLocation)
            return
        }
        #expect(m.flat.count == t.count, "\(what) size", sourceLocation: sourceLocation)
        let diff = zip(m.flat, t.scalars).map { abs($0 - $1) }.max() ?? 0
        #expect(diff <= 1e-6, "\(what) differs by \(diff)", sourceLocation: sourceLocation)
    }

    @Test("every number equals an independent computation", arguments: [UInt64(0), 7, 42])
    func numbersMatchLibrary(seed: UInt64) throws {
        let lr: Float = 0.1
        let w = try ToyWalkthrough.make(seed: seed, learningRate: lr)
        #expect(w.steps.map(\.id) == Self.ids)
        func step(_ id: String) -> WalkthroughStep { w.step(id)! }

        // Independent forward and backward with the library's functions.
        let data = try ToySquares.make(count: 2, seed: seed)
        #expect(data.labels[1] == 1)
        let x = data.images.batch(1..<2)
        let fresh = try Sequential(spec: ToySquares.spec, inputShape: [1, 6, 6], seed: seed)
        let p = fresh.parameters
        let (K, b, W, c) = (p[0].value, p[1].value, p[2].value, p[3].value)
        let z1 = try conv2d(x, weight: K, bias: b)
        let a1 = leakyRelu(z1, slope: 0.01)
        let (pooled, argmax) = try maxPool2d(a1, kernel: (2, 2), stride: (2, 2))
        let f = try pooled.reshaped([1, 4])
        let z2 = try dense(f, weight: W, bias: c)
        let yHat = sigmoid(z2)
        let target = try Tensor(shape: [1, 1], scalars: [1])
        let loss = try binaryCrossEntropy(probabilities: yHat, targets: target)
        let dz2 = try sigmoidBackward(loss.gradient, output: yHat)
        let dg = try denseBackward(dz2, input: f, weight: W)
        let dp = try dg.input.reshaped(pooled.shape)
        let da1 = try maxPool2dBackward(dp, input: a1, kernel: (2, 2), stride: (2, 2))
        let dz1 = try leakyReluBackward(da1, input: z1, slope: 0.01)
        let cg = try conv2dBackward(dz1, input: x, weight: K)
        func updated(_ v: Tensor, _ g: Tensor) throws -> Tensor {
            try Tensor(shape: v.shape, scalars: zip(v.scalars, g.scalars).map { $0 - lr * $1 })
        }

        expectEqual(step("input").matrix("x"), x, "x")
        expectEqual(step("kernel").matrix("K"), K, "K")
        expectEqual(step("kernel").matrix("b"), b, "b")
        expectEqual(step("conv").matrix("z1"), z1, "z1")
        expectEqual(step("leakyrelu").matrix("a1"), a1, "a1")
        expectEqual(step("maxpool").matrix("a1"), a1, "a1 (pool)")
        expectEqual(step("maxpool").matrix("p"), pooled, "p")
        let winners = Set(argmax.map { MatrixCell(row: Int($0) / 4, column: Int($0) % 4) })
        #expect(step("maxpool").matrix("a1")?.markers == winners)
        #expect(winners.count == 4)
        expectEqual(step("flatten").matrix("f"), f, "f")
        expectEqual(step("dense-weights").matrix("W"), W, "W")
        expectEqual(step("dense-weights").matrix("c"), c, "c")
        expectEqual(step("pre-activation").matrix("z2"), z2, "z2")
        expectEqual(step("sigmoid").matrix("ŷ"), yHat, "ŷ")
        #expect(step("loss").matrix("L")?.flat == [loss.value])
        expectEqual(step("dl-dz").matrix("dL/dŷ"), loss.gradient, "dL/dŷ")
        expectEqual(step("dl-dz").matrix("dL/dz2"), dz2, "dL/dz2")
        #expect(abs(dz2[0] - (yHat[0] - 1)) < 1e-5)
        expectEqual(step("dense-gradients").matrix("dL/dW"), dg.weight, "dL/dW")
        expectEqual(step("dense-gradients").matrix("dL/dc"), dg.bias, "dL/dc")
        expectEqual(step("dl-df").matrix("dL/df"), dg.input, "dL/df")
        expectEqual(step("dl-df").matrix("dL/dp"), dp, "dL/dp")
        expectEqual(step("maxpool-backward").matrix("dL/da1"), da1, "dL/da1")
        // Zero except at the max positions.
        for (i, v) in da1.scalars.enumerated() where !winners.contains(MatrixCell(row: i / 4, column: i % 4)) { #expect(v == 0) }
        expectEqual(step("leakyrelu-backward").matrix("dL/dz1"), dz1, "dL/dz1")
        expectEqual(step("kernel-gradients").matrix("dL/dK"), cg.weight, "dL/dK")
        expectEqual(step("kernel-gradients").matrix("dL/db"), cg.bias, "dL/db")
        expectEqual(step("update").matrix("K'"), try updated(K, cg.weight), "K'")
        expectEqual(step("update").matrix("b'"), try updated(b, cg.bias), "b'")
        expectEqual(step("update").matrix("W'"), try updated(W, dg.weight), "W'")
        expectEqual(step("update").matrix("c'"), try updated(c, dg.bias), "c'")
        let newLoss = try binaryCrossEntropy(
            probabilities: sigmoid(try dense(
                try maxPool2d(leakyRelu(try conv2d(x, weight: try updated(K, cg.weight), bias: try updated(b, cg.bias)), slope: 0.01), kernel: (2, 2), stride: (2, 2)).output.reshaped([1, 4]),
                weight: try updated(W, dg.weight), bias: try updated(c, dg.bias))),
            targets: target)
        #expect(abs(step("update").matrix("L'")!.flat[0] - newLoss.value) < 1e-5)
    }

    /// The numbers in a rendered grid, in order.
    func numbers(in lines: [String]) -> [String] {
        let regex = try! NSRegularExpression(pattern: "-?[0-9]+\\.[0-9]{2}")
        return lines.filter { $0.hasPrefix("│") || $0.contains("│") }.flatMap { line -> [String] in
            let ns = line as NSString
            return regex.matches(in: line, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range) }
        }
    }

    @Test func terminalShowsEveryValueWithTwoDecimals() throws {
        let w = try ToyWalkthrough.make(seed: 5)
        let text = w.text(colors: false)
        #expect(!text.contains("\u{1B}["))
        for step in w.steps {
            #expect(text.contains(step.title))
            for m in step.matrices {
                let grid = Walkthrough.grid(m).map(\.text)
                let shown = numbers(in: Array(grid.dropFirst()))
                #expect(shown == m.flat.map { formatValue(Double($0), decimals: 2) }, "\(step.id) \(m.name)")
                // The grid appears in the full text (each line, possibly beside another matrix).
                for line in grid where line.contains("│") { #expect(text.contains(line), "\(step.id) \(m.name): \(line)") }
            }
        }
        // Max-pool winners are bracketed: four in the forward step, four in the backward one.
        #expect(text.components(separatedBy: "[").count - 1 >= 8)
        #expect(w.text(colors: true).contains("\u{1B}[38;5;33m"))
    }

    @Test func htmlShowsEveryMatrixAsHeatMap() throws {
        let w = try ToyWalkthrough.make(seed: 5)
        let html = w.html()
        let matrices = w.steps.reduce(0) { $0 + $1.matrices.count }
        #expect(html.components(separatedBy: "<svg").count - 1 == matrices)
        #expect(html.components(separatedBy: "class=\"marker\"").count - 1 == 8)
        for step in w.steps {
            #expect(html.contains(SVG.escape(step.title)))
            for m in step.matrices {
                for v in m.flat { #expect(html.contains(">\(formatValue(Double(v), decimals: 2))</text>")) }
            }
        }
        #expect(throws: ValueError.self) { try ToyWalkthrough.make(seed: 0, learningRate: 0) }
    }

    @Test func seedsChangeTheExample() throws {
        let a = try ToyWalkthrough.make(seed: 1), b = try ToyWalkthrough.make(seed: 2), a2 = try ToyWalkthrough.make(seed: 1)
        #expect(a.step("input")!.matrices[0].flat != b.step("input")!.matrices[0].flat)
        #expect(a.text() == a2.text())
    }
}
