import ArgumentParser
import ConvNet
import Foundation

/// `convnet bench ...`: performance measurements. Subcommands: `gemm` (matrix multiply kernels).
/// A `models` subcommand (training/inference images per second per zoo network) belongs here too:
/// add its type to `subcommands` below.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the speed of the numeric kernels.",
        subcommands: [BenchModelsCommand.self, BenchGemmCommand.self],
        defaultSubcommand: BenchModelsCommand.self)
}

/// `convnet bench gemm`: GFLOP/s of the single-precision GEMM on square and convolution shapes.
struct BenchGemmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "GFLOP/s of the GEMM on square 256-2048 and on two-conv's second-layer products.")

    @Flag(help: "One JSON object per line: {\"shape\", \"m\", \"n\", \"k\", \"threads\", \"gflops\"}.")
    var json = false

    @Option(help: "Threads (default: all cores).")
    var threads: Int?

    @Option(help: "Timed runs per shape; the median is reported.")
    var repeats: Int = 7

    @Flag(help: "Use the portable C kernel even where AVX2+FMA exist.")
    var portable = false

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
        if let t = threads {
            guard t > 0 else { throw ValidationError("--threads must be positive") }
            Threading.threads = t
        }
        Gemm.forcePortableKernel = portable
        let t = Threading.threads
        #if DEBUG
        let build = "debug build: these numbers are meaningless, use `swift build -c release`"
        #else
        let build = "release build"
        #endif
        if !json {
            print("convnet bench gemm: \(build), \(t) thread\(t == 1 ? "" : "s"), "
                + "kernel \(Gemm.usesAVX2 ? "AVX2+FMA" : "portable C"), median of \(repeats) runs")
        } else {
            #if DEBUG
            FileHandle.standardError.write(Data("warning: \(build)\n".utf8))
            #endif
        }
        for s in Self.shapes {
            let gflops = measure(s)
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
    func measure(_ s: Shape) -> Double {
        var random = SystemRandomNumberGenerator()
        let a = (0..<(s.m * s.k)).map { _ in Float.random(in: -1...1, using: &random) }
        let b = (0..<(s.k * s.n)).map { _ in Float.random(in: -1...1, using: &random) }
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
                            c: pc.baseAddress!, ldc: s.n)
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
