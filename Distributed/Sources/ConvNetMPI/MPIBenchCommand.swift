import ArgumentParser
import CMPI
import ConvNet
import ConvNetCLI
import Foundation

/// One row of `convnet-mpi bench`: training throughput of `ranks` ranks together.
struct ScalingRow: Codable {
    var model: String
    var ranks: Int
    var threads_per_rank: Int
    var global_batch: Int
    var images_per_second: Double
    var step_ms: Double
    /// Milliseconds per step inside the gradient sum (mean over the ranks), and its share of the step.
    var communication_ms: Double
    var communication_share: Double
    /// Of that, milliseconds per step in batch norm's reductions (its statistics and gradient sums),
    /// and how many of them a step makes (two per batch-norm layer; 0 for one rank, which makes none).
    var batchnorm_ms: Double
    var batchnorm_sums: Int
    /// Gradient floats summed per step (the fused buffer: every parameter plus loss and accuracy).
    var reduced_floats: Int
    /// "gather" (all buffers to every rank, added in rank order) or "allreduce" (MPI_Allreduce's ring).
    var reduction: String
    /// Throughput relative to the first row (one rank).
    var relative_to_one_rank: Double
}

struct MPIBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Training images/s for 1, 2, ... N ranks (N = mpirun's -np), with the share of each step spent in communication.",
        discussion: """
            Row k trains with ranks 0..<k (the others sleep) on random data, through the same Trainer and
            gradient sum as convnet-mpi train. Each rank uses the cores of its machine divided by the
            ranks working there (--threads overrides).
              mpirun -np 2 convnet-mpi bench --model two-conv --batch-size 128
            """)

    @Option(help: "A zoo network: \(ModelZoo.names.joined(separator: ", ")).")
    var model: String = "two-conv"

    @Option(help: "Global batch: the images of one step over all ranks.")
    var batchSize: Int = 128

    @Option(help: "Timed steps per row (after the warm-up).")
    var steps: Int = 20

    @Option(help: "Warm-up steps per row (at least 0.3 s are spent warming up).")
    var warmup: Int = 3

    @Option(help: "Threads per rank (default: the machine's cores divided by the ranks working on it).")
    var threads: Int?

    @Option(help: "Timed runs per row; the fastest counts.")
    var repeats: Int = 3

    @Flag(help: "Print one JSON object per row.")
    var json = false

    func validate() throws {
        if batchSize < 1 { throw ValidationError("--batch-size must be positive, got \(batchSize)") }
        if steps < 1 { throw ValidationError("--steps must be positive, got \(steps)") }
        if warmup < 0 { throw ValidationError("--warmup must not be negative, got \(warmup)") }
        if repeats < 1 { throw ValidationError("--repeats must be positive, got \(repeats)") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1, got \(t)") }
    }

    func run() throws {
        guard let world = ProcessRanks.current as? MPIGroup else { throw MPIError(message: "bench runs under convnet-mpi") }
        let zoo = try ModelZoo.model(named: model)
        var rows: [ScalingRow] = []
        if world.rank == 0 && !json {
            print("model \(zoo.name), global batch \(batchSize), \(steps) timed steps per run, best of \(repeats)")
            print("ranks  threads/rank    images/s   step ms   comm ms  comm share   bn ms  bn sums  vs 1 rank  sum")
        }
        for k in 1...world.size {
            var sub = cn_mpi_comm_null()
            MPI_Comm_split(world.communicator, world.rank < k ? 0 : Int32(cn_mpi_undefined()), Int32(world.rank), &sub)
            if world.rank < k {
                let group = MPIGroup(communicator: sub!)
                let context = ExecutionContext(threads: threads ?? max(1, Threading.availableCores / MPIRuntime.ranksOnThisHost(group)))
                var row = try measure(zoo, group: group, context: context)
                MPI_Comm_free(&sub)
                if world.rank == 0 {
                    row.relative_to_one_rank = row.images_per_second / (rows.first?.images_per_second ?? row.images_per_second)
                    rows.append(row)
                    if json {
                        print(try jsonLine(row))
                    } else {
                        print(String(format: "%5d  %12d  %10.0f  %8.2f  %8.2f  %9.1f%%  %6.2f  %7d  %8.2fx  ", row.ranks, row.threads_per_rank, row.images_per_second,
                                     row.step_ms, row.communication_ms, 100 * row.communication_share, row.batchnorm_ms, row.batchnorm_sums,
                                     row.relative_to_one_rank) + row.reduction)
                    }
                }
            }
            try world.idleBarrier()
        }
    }

    /// Times `steps` training steps of `group` after a warm-up, `repeats` times; keeps the fastest.
    private func measure(_ zoo: ZooModel, group: MPIGroup, context: ExecutionContext) throws -> ScalingRow {
        let shape = zoo.inputShape(channels: 1)
        let network = try Sequential(spec: zoo.spec, inputShape: shape, seed: 1, context: context)
        let classes = zoo.loss.isBinary ? 2 : network.outputShape.reduce(1, *)
        var random = SeededGenerator(seed: 7)
        func randomData(batches: Int) throws -> Dataset {
            let count = batches * batchSize
            let images = try Tensor(shape: [count] + shape, scalars: (0..<(count * shape.reduce(1, *))).map { _ in random.nextUnitFloat() })
            return try Dataset(name: "random", images: images, labels: (0..<count).map { _ in random.below(classes) },
                               classNames: (0..<classes).map(String.init))
        }
        // The first step of each timed pass is not timed: the clock starts when it ends.
        let warmData = try randomData(batches: max(warmup, 1)), timedData = try randomData(batches: steps + 1)
        var options = TrainingOptions()
        options.batchSize = batchSize
        options.learningRate = 0.001
        options.loss = zoo.loss
        options.epochs = 1
        let trainer = try Trainer(network: network, options: options)
        trainer.group = group
        // Warm up for at least `warmup` steps and 0.3 s, on every rank alike (the slowest decides).
        let warmStart = DispatchTime.now().uptimeNanoseconds
        var warming = true
        while warming {
            trainer.progress = TrainingProgress()
            try trainer.train(on: warmData)
            var flags = [Double(DispatchTime.now().uptimeNanoseconds - warmStart) / 1e9 < 0.3 ? 1.0 : 0]
            try group.sum(&flags)
            warming = flags[0] > 0
        }
        var best: (seconds: Double, communication: Double, batchNorm: Double, sums: Int)?
        for _ in 0..<repeats {
            trainer.progress = TrainingProgress()
            var start = (time: UInt64(0), communication: 0.0, batchNorm: 0.0, sums: 0)
            var result = (seconds: 0.0, communication: 0.0, batchNorm: 0.0, sums: 0)
            try trainer.train(on: timedData) { event in
                guard case .iteration(let r) = event else { return }
                let now = DispatchTime.now().uptimeNanoseconds
                // Within a training step the only sums of doubles are batch norm's.
                if r.batch == 1 { start = (now, group.communicationSeconds, group.doubleSeconds, group.doubleSums) }
                if r.batch == r.batches {
                    result = (Double(now - start.time) / 1e9, group.communicationSeconds - start.communication,
                              group.doubleSeconds - start.batchNorm, group.doubleSums - start.sums)
                }
            }
            if best == nil || result.seconds < best!.seconds { best = result }
        }
        var figures = [best!.seconds, best!.communication, best!.batchNorm]
        try group.sum(&figures)
        let seconds = figures[0] / Double(group.size), communication = figures[1] / Double(group.size)
        let timedSteps = Double(steps)
        let batchNormSums = group.size > 1 ? best!.sums / steps : 0
        return ScalingRow(
            model: zoo.name, ranks: group.size, threads_per_rank: context.threads, global_batch: batchSize,
            images_per_second: timedSteps * Double(batchSize) / seconds, step_ms: 1000 * seconds / timedSteps,
            communication_ms: 1000 * communication / timedSteps, communication_share: communication / seconds,
            batchnorm_ms: 1000 * figures[2] / Double(group.size) / timedSteps, batchnorm_sums: batchNormSums,
            reduced_floats: network.parameterCount + 2, reduction: group.gathers(network.parameterCount + 2) ? "gather" : "allreduce",
            relative_to_one_rank: 1)
    }

    private func jsonLine(_ row: ScalingRow) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(row), as: UTF8.self)
    }
}
