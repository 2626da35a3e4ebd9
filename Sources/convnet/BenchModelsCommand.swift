import ArgumentParser
import ConvNet
import Foundation

/// `convnet bench [--model NAME|all]`: training and inference images per second of the zoo's networks.
struct BenchModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "Training and inference images/s, GFLOP/s, peak memory and tensor allocations per training step per zoo network (data in memory, SGD with momentum; after a warm-up of at least 0.3 s, the median of several timed runs of at least 0.1 s each), and the latency of one inference call (median and 99th percentile in µs; --batch-size 1 --threads 1 for single-image latency).")

    @Option(help: "A zoo network, or all.")
    var model: String = "all"

    @Option(parsing: .unconditional, help: "Images per mini-batch (comma-separated for several, e.g. 64,128).")
    var batchSize: String = "64"

    @OptionGroup var threadsOption: ThreadsOption
    @OptionGroup var memoryBudgetOption: MemoryBudgetOption

    @Option(parsing: .unconditional, help: "Timed runs; the median is reported.")
    var repeats: Int = 5

    @Option(parsing: .unconditional, help: "Training steps per timed run, at least (a run goes on until it lasts 0.1 s).")
    var steps: Int = 10

    @Flag(help: "One JSON object per line.")
    var json = false

    @OptionGroup var kernelOption: KernelOption
    @OptionGroup var convAlgorithmOption: ConvAlgorithmOption

    func run() throws {
        let context = try convAlgorithmOption.applied(to: kernelOption.applied(to: threadsOption.context))
        guard repeats > 0, steps > 0 else { throw ValidationError("--repeats and --steps must be positive") }
        let sizes = try batchSize.split(separator: ",").map { text -> Int in
            guard let b = Int(text.trimmingCharacters(in: .whitespaces)), b > 0 else {
                throw ValidationError("--batch-size takes positive integers, got '\(text)'")
            }
            return b
        }
        let models = model == "all" ? ModelZoo.models.filter { $0.name != "toy" } : [try ModelZoo.model(named: model)]
        if !json {
            #if DEBUG
            print("warning: debug build; numbers are meaningless. Use swift build -c release.")
            #endif
            let runs = repeats == 1 ? "one run" : "median of \(repeats) runs"
            print("convnet bench: \(buildConfiguration) build, \(counted(context.threads, "thread")), kernel \(context.kernelLevel), "
                + "convolution algorithm \(context.algorithm.rawValue), "
                + "\(runs) of at least \(counted(steps, "step")) and 0.1 s")
            print("model                batch   train img/s   infer img/s   train GFLOP/s   peak RSS MB   bound MB   allocs/step"
                + "   latency µs median / p99")
        }
        for m in models {
            for b in sizes {
                let r = try ModelBenchmark.run(model: m, batchSize: b, steps: steps, repeats: repeats, memoryBudget: memoryBudgetOption.budget, context: context)
                if r.trainRunSpread > 0.25 {
                    FileHandle.standardError.write(Data(("note: \(m.name) batch \(b): the slowest timed run was \(Int((100 * r.trainRunSpread).rounded()))% "
                        + "slower than the fastest, so its figures are not steady (another program using the CPU?); run it again or with more --repeats\n").utf8))
                }
                if json {
                    print(try Terminal.json(r))
                } else {
                    print(m.name.padding(toLength: 20, withPad: " ", startingAt: 0)
                          + String(format: " %5d  %12.0f  %12.0f  %14.1f  %12.0f  %9.0f", b, r.trainImagesPerSecond, r.inferImagesPerSecond, r.trainGflops,
                                   r.peakRssMB, Double(r.trainingBytes) / 1e6)
                          + formatCount(r.steadyStateAllocations, width: 14)
                          + String(format: "   %10.1f / %.1f", r.latencyMedianMicroseconds, r.latencyP99Microseconds))
                }
            }
        }
    }
}

/// A per-step count right-aligned in `width` columns: whole numbers as integers, others with two decimals.
private func formatCount(_ v: Double, width: Int) -> String {
    let text = v == v.rounded() ? String(Int(v)) : String(format: "%.2f", v)
    return String(repeating: " ", count: max(0, width - text.count)) + text
}

var buildConfiguration: String {
    #if DEBUG
    return "debug"
    #else
    return "release"
    #endif
}
