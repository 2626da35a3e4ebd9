import Foundation

/// Throughput of one network: training steps and inference on data already in memory.
public struct ModelBenchmarkResult: Sendable, Codable {
    public var model: String
    public var batchSize: Int
    public var threads: Int
    public var trainImagesPerSecond: Double
    public var inferImagesPerSecond: Double
    public var trainGflops: Double
    public var peakRssMB: Double
    /// Tensor storage allocations (`TensorAllocations`) per training step over the timed steps, after
    /// the warm-up: 0 once every layer reuses its buffers.
    public var steadyStateAllocations: Double
    /// Latency of one inference call on a batch of `batchSize`, in microseconds: the median and the
    /// 99th percentile of many calls timed one by one (after the warm-up).
    public var latencyMedianMicroseconds: Double
    public var latencyP99Microseconds: Double
    /// Training steps timed in all: `repeats` runs of at least `steps` steps and `minimumRunSeconds` each.
    public var timedSteps: Int
    /// How much slower the slowest timed training run was than the fastest, per step (0.4: 40%). Large
    /// when other programs share the CPU; the figures are then not steady.
    public var trainRunSpread: Double
    /// `NetworkMemory`'s bound on a training step's bytes at this batch size (weights, momentum and buffers).
    public var trainingBytes: Int

    enum CodingKeys: String, CodingKey {
        case model, threads
        case batchSize = "batch_size"
        case trainImagesPerSecond = "train_images_per_second"
        case inferImagesPerSecond = "infer_images_per_second"
        case trainGflops = "train_gflops"
        case peakRssMB = "peak_rss_mb"
        case steadyStateAllocations = "steady_state_allocations"
        case latencyMedianMicroseconds = "latency_median_us"
        case latencyP99Microseconds = "latency_p99_us"
        case timedSteps = "timed_steps"
        case trainRunSpread = "train_run_spread"
        case trainingBytes = "training_bytes"
    }
}

extension Sequential {
    /// Multiply-add work of one forward pass for one sample, counted as 2 FLOPs per multiply-add
    /// (convolutions and dense layers only; the rest is memory-bound and small).
    public var forwardFlopsPerSample: Double {
        var total = 0.0
        for layer in layers {
            if let conv = layer as? Conv2D, let g = conv.geometry {
                total += 2 * Double(g.outChannels * g.outputPixels * g.patchSize)
            } else if let d = layer as? Dense, let w = d.weight {
                total += 2 * Double(w.value.count)
            }
        }
        return total
    }
}

public enum ModelBenchmark {
    /// Times SGD-with-momentum training steps and inference passes on random data: a warm-up of at
    /// least `warmup` steps and `warmupSeconds` first, then the median time per step of `repeats` timed
    /// runs, each of at least `steps` steps and at least `minimumRunSeconds`. The warm-up is also timed
    /// because a fresh process runs its first parallel steps slowly on this VM: lenet5 alone, 6 alternating
    /// runs, measured 39-70k img/s after 3 warm-up steps and 73-103k after 1 s (0.3 s and 1 s gave the
    /// same). The minimum run length keeps a run of a few millisecond-long steps from being decided by
    /// one pause of the machine (`--repeats 2 --steps 3` gave lenet5 a third of the default's figure).
    /// Then single inference calls are timed one by one for `latencySeconds` (median and 99th percentile).
    public static func run(
        model: ZooModel, batchSize: Int, warmup: Int = 3, warmupSeconds: Double = 0.3, steps: Int = 10,
        repeats: Int = 5, minimumRunSeconds: Double = 0.1, latencySeconds: Double = 0.5, seed: UInt64 = 1,
        memoryBudget: MemoryBudget = .machine, context: ExecutionContext = .default
    ) throws -> ModelBenchmarkResult {
        guard batchSize > 0, steps > 0, repeats > 0, minimumRunSeconds >= 0, minimumRunSeconds.isFinite else {
            throw ValueError.invalidArgument("the benchmark needs a positive batch size, steps and repeats, and a finite minimum run time")
        }
        let shape = model.inputShape(channels: 1)
        let network = try Sequential(spec: model.spec, inputShape: shape, seed: seed, memoryBudget: memoryBudget, context: context)
        // The step's buffers, with momentum (SGD below), and the random batch beside them.
        let values = CheckedSize.product([batchSize] + shape)
        try network.checkMemory(batch: batchSize, training: true, optimizerSlots: 1)
        let trainingBytes = network.memory.bytes(batch: batchSize, training: true, optimizerSlots: 1) ?? Int.max
        try memoryBudget.check(CheckedSize.sum([trainingBytes, values.flatMap { CheckedSize.product([$0, 4]) }]),
                               for: "benchmarking \(model.name) at batch \(batchSize)", advice: "use a smaller --batch-size")
        var random = SeededGenerator(seed: seed)
        let count = values ?? 0
        let images = try Tensor(shape: [batchSize] + shape, scalars: (0..<count).map { _ in random.nextUnitFloat() })
        let classes = model.loss.isBinary ? 2 : network.outputShape.reduce(1, *)
        let labels = (0..<batchSize).map { _ in random.below(classes) }
        let sgd = SGD(learningRate: 0.001, momentum: 0.9)
        let parameters = network.parameters
        var lossBuffers = LossBuffers()

        // The Trainer's step (reusing its loss buffers the same way), on a fixed batch.
        func trainStep() throws {
            let out = try network.forward(images, training: true)
            let loss = try model.loss.evaluate(output: out, labels: labels, buffers: &lossBuffers)
            try network.backwardParameters(loss.gradient)
            sgd.step(parameters, context: network.context)
        }
        /// Seconds per step of each of `repeats` runs (sorted), and the steps run in all.
        func timed(_ body: () throws -> Void) throws -> (perStep: [Double], steps: Int) {
            var perStep: [Double] = [], total = 0
            for _ in 0..<repeats {
                let start = DispatchTime.now().uptimeNanoseconds
                var done = 0, seconds = 0.0
                while done < steps || seconds < minimumRunSeconds {
                    try body()
                    done += 1
                    seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                }
                perStep.append(seconds / Double(done))
                total += done
            }
            return (perStep.sorted(), total)
        }
        /// The middle value of sorted `values` (the mean of the two middle ones for an even count).
        func median(_ values: [Double]) -> Double {
            let n = values.count
            return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2
        }
        /// Runs `body` at least `warmup` times and for at least `warmupSeconds`.
        func warmUp(_ body: () throws -> Void) throws {
            let start = DispatchTime.now().uptimeNanoseconds
            var done = 0
            while done < warmup || Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < warmupSeconds {
                try body()
                done += 1
            }
        }
        try warmUp(trainStep)
        // Tensors are allocated on the thread that runs the step (see `TensorAllocations`).
        let allocationsBefore = TensorAllocations.countOnCurrentThread
        let train = try timed(trainStep)
        let allocations = TensorAllocations.countOnCurrentThread - allocationsBefore
        try warmUp { _ = try network.forward(images, training: false) }
        let infer = try timed { _ = try network.forward(images, training: false) }
        let latencies = try callLatencies(seconds: latencySeconds) { _ = try network.forward(images, training: false) }
        let trainStepSeconds = median(train.perStep), inferStepSeconds = median(infer.perStep)
        let batch = Double(batchSize)
        return ModelBenchmarkResult(
            model: model.name, batchSize: batchSize, threads: network.context.threads,
            trainImagesPerSecond: batch / trainStepSeconds, inferImagesPerSecond: batch / inferStepSeconds,
            trainGflops: 3 * network.forwardFlopsPerSample * batch / trainStepSeconds / 1e9,
            peakRssMB: peakResidentMegabytes(), steadyStateAllocations: Double(allocations) / Double(train.steps),
            latencyMedianMicroseconds: percentile(latencies, 0.5), latencyP99Microseconds: percentile(latencies, 0.99),
            timedSteps: train.steps, trainRunSpread: train.perStep.last! / train.perStep.first! - 1, trainingBytes: trainingBytes)
    }

    /// Microseconds of each call of `body`, timed one by one: at least 100 calls and `seconds` of them
    /// (at most 100,000 calls).
    static func callLatencies(seconds: Double, _ body: () throws -> Void) throws -> [Double] {
        var times: [Double] = []
        let start = DispatchTime.now().uptimeNanoseconds
        var now = start
        while times.count < 100 || (Double(now - start) / 1e9 < seconds && times.count < 100_000) {
            let before = DispatchTime.now().uptimeNanoseconds
            try body()
            now = DispatchTime.now().uptimeNanoseconds
            times.append(Double(now - before) / 1e3)
        }
        return times
    }

    /// The `q` quantile of `values` (nearest rank).
    static func percentile(_ values: [Double], _ q: Double) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((q * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }

    /// The process's peak resident set size so far, in MiB.
    public static func peakResidentMegabytes() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
