import ArgumentParser
import ConvNet
import Foundation

/// `convnet bench ...`: performance measurements. `models` (the default: training and inference
/// images per second per zoo network), `gemm` (matrix multiply kernels), `conv` (per-layer timings).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Speed: training and inference images/s per zoo network (default), GEMM GFLOP/s, per-layer conv times.",
        subcommands: [BenchModelsCommand.self, BenchGemmCommand.self, BenchConvCommand.self],
        defaultSubcommand: BenchModelsCommand.self)

    /// "1 run", "3 runs": a count and its noun.
}

/// `convnet bench gemm`: GFLOP/s of the single-precision GEMM on square and convolution shapes.
struct BenchGemmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "GFLOP/s of the GEMM on square 256-2048 and on two-conv's second-layer products.")

    @Flag(help: "One JSON object per line: {\"shape\", \"m\", \"n\", \"k\", \"threads\", \"gflops\"}.")
    var json = false

    @OptionGroup var threadsOption: ThreadsOption

    @Option(parsing: .unconditional, help: "Timed runs per shape; the median is reported.")
    var repeats: Int = 7

    @OptionGroup var kernelOption: KernelOption

    struct Shape {
        var label: String
        var transA: Bool, transB: Bool
        var m: Int, n: Int, k: Int
    }

    static let shapes: [Shape] = [
        Shape(label: "square 256", transA: false, transB: false, m: 256, n: 256, k: 256),
        Shape(label: "square 512", transA: false, transB: false, m: 512, n: 512, k: 512),
        Shape(label: "square 1024", transA: false, transB: false, m: 1024, n: 1024, k: 1024),
        Shape(label: "square 2048", transA: false, transB: false, m: 2048, n: 2048, k: 2048),
        // two-conv's second layer at batch 64: cols (12544 x 450) times W^T (450 x 100) ...
        Shape(label: "conv fwd 12544x450*450x100", transA: false, transB: false, m: 12544, n: 100, k: 450),
        // ... dW = dY (100 x 12544) * cols^T (12544 x 450), cols stored 450 x 12544 ...
        Shape(label: "conv dW 100x12544*12544x450", transA: false, transB: true, m: 100, n: 450, k: 12544),
        // ... dcols = W^T (450 x 100) * dY (100 x 12544), W stored 100 x 450.
        Shape(label: "conv dcols 450x100*100x12544", transA: true, transB: false, m: 450, n: 12544, k: 100),
    ]

    func run() throws {
        guard repeats > 0 else { throw ValidationError("--repeats must be positive") }
        let context = try kernelOption.applied(to: threadsOption.context)
        let t = context.threads, kernels = context.kernelLevel
        #if DEBUG
        let build = "debug build: these numbers are meaningless, use `swift build -c release`"
        #else
        let build = "release build"
        #endif
        if !json {
            print("convnet bench gemm: \(build), \(t) thread\(t == 1 ? "" : "s"), "
                + "kernel \(kernels), " + (repeats == 1 ? "one run" : "median of \(repeats) runs"))
        } else {
            #if DEBUG
            FileHandle.standardError.write(Data("warning: \(build)\n".utf8))
            #endif
        }
        for s in Self.shapes {
            let gflops = measure(s, context: context)
            if json {
                print("{\"shape\":\"\(s.label)\",\"m\":\(s.m),\"n\":\(s.n),\"k\":\(s.k),\"threads\":\(t),"
                    + "\"gflops\":\(String(format: "%.1f", gflops))}")
            } else {
                print(s.label.padding(toLength: 30, withPad: " ", startingAt: 0)
                    + String(format: "%8.1f GFLOP/s", gflops))
            }
        }
    }

    /// Median GFLOP/s over `repeats` timed runs after one warm-up; each run repeats the product
    /// enough times to last at least ~50 ms.
    func measure(_ s: Shape, context: ExecutionContext) -> Double {
        var random = SeededGenerator(seed: 1)
        let a = (0..<(s.m * s.k)).map { _ in random.uniform(-1, 1) }
        let b = (0..<(s.k * s.n)).map { _ in random.uniform(-1, 1) }
        var c = [Float](repeating: 0, count: s.m * s.n)
        let lda = s.transA ? s.m : s.k, ldb = s.transB ? s.k : s.n
        let flops = 2.0 * Double(s.m) * Double(s.n) * Double(s.k)
        return a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    func once() {
                        Gemm.multiply(
                            transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k,
                            a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                            c: pc.baseAddress!, ldc: s.n, context: context)
                    }
                    let clock = ContinuousClock()
                    let warm = clock.measure { once() }
                    let seconds = Double(warm.components.seconds) + Double(warm.components.attoseconds) * 1e-18
                    let inner = max(1, Int(0.05 / max(seconds, 1e-9)))
                    var rates: [Double] = []
                    for _ in 0..<repeats {
                        let d = clock.measure { for _ in 0..<inner { once() } }
                        let t = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
                        rates.append(flops * Double(inner) / t / 1e9)
                    }
                    rates.sort()
                    return rates[rates.count / 2]
                }
            }
        }
    }
}

/// `convnet bench conv`: forward and backward time of the zoo networks' convolution layers.
struct BenchConvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conv",
        abstract: "Milliseconds and GFLOP/s (counted as direct-convolution work, whatever the algorithm) of forward and backward passes of the zoo's convolution layers, and each layer's plan.")

    @Flag(help: "One JSON object per line.")
    var json = false

    @Option(help: "Force the forward path where the layer allows it: \(names(ConvPlan.Forward.self)).")
    var forward: String?

    @Option(help: "Force the weight-gradient path: \(names(ConvPlan.WeightGradient.self)).")
    var weightGradient: String?

    @Option(help: "Force the input-gradient path where the layer allows it: \(names(ConvPlan.InputGradient.self)).")
    var inputGradient: String?

    @OptionGroup var threadsOption: ThreadsOption

    @Option(parsing: .unconditional, help: "Batch size.")
    var batchSize: Int = 64

    @Option(parsing: .unconditional, help: "Timed runs per layer; the median is reported.")
    var repeats: Int = 7

    @OptionGroup var kernelOption: KernelOption
    @OptionGroup var convAlgorithmOption: ConvAlgorithmOption

    struct LayerCase {
        var label: String
        var input: [Int]
        var filters: Int, kernel: Int
        var padding: Padding
    }

    static let layers: [LayerCase] = [
        LayerCase(label: "tiny-cnn conv 3 3x3", input: [1, 14, 14], filters: 3, kernel: 3, padding: .symmetric(1)),
        LayerCase(label: "lenet5 conv 6 5x5", input: [1, 28, 28], filters: 6, kernel: 5, padding: .symmetric(2)),
        LayerCase(label: "two-conv conv1 50 3x3", input: [1, 28, 28], filters: 50, kernel: 3, padding: .symmetric(1)),
        LayerCase(label: "two-conv conv2 100 3x3", input: [50, 14, 14], filters: 100, kernel: 3, padding: .symmetric(1)),
        LayerCase(label: "tf-cnn conv1 32 10x10", input: [1, 28, 28], filters: 32, kernel: 10, padding: .same),
        LayerCase(label: "tf-cnn conv2 16 5x5", input: [32, 14, 14], filters: 16, kernel: 5, padding: .same),
        LayerCase(label: "vgg-bn conv2 32 3x3", input: [32, 28, 28], filters: 32, kernel: 3, padding: .symmetric(1)),
        LayerCase(label: "fast-bn/vgg-bn 64 3x3", input: [32, 14, 14], filters: 64, kernel: 3, padding: .symmetric(1)),
        LayerCase(label: "vgg-bn conv4 64 3x3", input: [64, 14, 14], filters: 64, kernel: 3, padding: .symmetric(1)),
    ]

    /// The plan choices the options force.
    func forcedChoices() throws -> ConvPlan.Choices {
        ConvPlan.Choices(
            forward: try planChoice(forward, "--forward"), weightGradient: try planChoice(weightGradient, "--weight-gradient"),
            inputGradient: try planChoice(inputGradient, "--input-gradient"))
    }

    func run() throws {
        guard repeats > 0, batchSize > 0 else { throw ValidationError("--repeats and --batch-size must be positive") }
        let context = try convAlgorithmOption.applied(to: kernelOption.applied(to: threadsOption.context)).forcing(try forcedChoices())
        try measure(context)
    }

    func measure(_ context: ExecutionContext) throws {
        let t = context.threads, kernels = context.kernelLevel
        #if DEBUG
        let build = "debug build: these numbers are meaningless, use `swift build -c release`"
        #else
        let build = "release build"
        #endif
        if !json {
            print("convnet bench conv: \(build), \(t) thread\(t == 1 ? "" : "s"), kernel \(kernels), batch \(batchSize), "
                + "convolution algorithm \(context.algorithm.rawValue), "
                + (repeats == 1 ? "one run" : "median of \(repeats) runs"))
        }
        for c in Self.layers {
            let layer = Conv2D(filters: c.filters, kernel: (c.kernel, c.kernel), padding: c.padding)
            var build = BuildContext(seed: 1)
            let outShape = try layer.build(inputShape: c.input, context: &build)
            var random = SeededGenerator(seed: 2)
            let x = try Tensor(
                shape: [batchSize] + c.input,
                scalars: (0..<(batchSize * c.input.reduce(1, *))).map { _ in random.uniform(-1, 1) })
            let dy = try Tensor(
                shape: [batchSize] + outShape,
                scalars: (0..<(batchSize * outShape.reduce(1, *))).map { _ in random.uniform(-1, 1) })
            let macs = Double(batchSize) * Double(outShape.reduce(1, *)) * Double(c.input[0] * c.kernel * c.kernel)
            var forward: [Double] = [], backward: [Double] = []
            for r in 0...repeats {
                let clock = ContinuousClock()
                var y: Tensor?
                let f = clock.measure { y = try? layer.forward(x, training: true, context: context) }
                let b = clock.measure { _ = try? layer.backward(dy, context: context) }
                precondition(y != nil)
                if r > 0 {  // run 0 is the warm-up
                    forward.append(Double(f.components.attoseconds) * 1e-15 + Double(f.components.seconds) * 1e3)
                    backward.append(Double(b.components.attoseconds) * 1e-15 + Double(b.components.seconds) * 1e3)
                }
            }
            let fm = forward.sorted()[forward.count / 2], bm = backward.sorted()[backward.count / 2]
            let fg = 2 * macs / fm / 1e6, bg = 4 * macs / bm / 1e6
            let plan = layer.plan(batch: batchSize, context: context)
            if json {
                print("{\"layer\":\"\(c.label)\",\"batch_size\":\(batchSize),\"threads\":\(t),\"algorithm\":\"\(context.algorithm.rawValue)\","
                    + "\"forward_ms\":\(String(format: "%.3f", fm)),\"backward_ms\":\(String(format: "%.3f", bm)),"
                    + "\"forward_gflops\":\(String(format: "%.1f", fg)),\"backward_gflops\":\(String(format: "%.1f", bg)),"
                    + "\"plan\":{\"forward\":\"\(plan.forward.rawValue)\",\"weight_gradient\":\"\(plan.weightGradient.rawValue)\","
                    + "\"input_gradient\":\"\(plan.inputGradient.rawValue)\",\"pooled_backward\":\"\(plan.pooledBackward.rawValue)\","
                    + "\"batch_parts\":\(plan.batchParts)}}")
            } else {
                print(c.label.padding(toLength: 24, withPad: " ", startingAt: 0)
                    + String(format: " fwd %8.3f ms %6.1f GFLOP/s   bwd %8.3f ms %6.1f GFLOP/s", fm, fg, bm, bg))
                print("    plan: \(plan)")
            }
        }
    }
}

/// "a, b or c": the values of a plan choice, for help texts and errors.
private func names<E: CaseIterable & RawRepresentable>(_: E.Type) -> String where E.RawValue == String {
    let all = E.allCases.map(\.rawValue)
    return all.dropLast().joined(separator: ", ") + " or " + all.last!
}

/// A plan choice from its option value; nil stays nil (the measured rule).
private func planChoice<E: CaseIterable & RawRepresentable>(_ value: String?, _ option: String) throws -> E?
where E.RawValue == String {
    guard let value else { return nil }
    guard let choice = E(rawValue: value) else {
        throw ValidationError("\(option) '\(value)' is not a path; use \(names(E.self))")
    }
    return choice
}
