import ArgumentParser
import ConvNet

/// `--threads N`: how many threads the kernels use (default: every core), the same for every command.
struct ThreadsOption: ParsableArguments {
    @Option(parsing: .unconditional, help: "Threads for the kernels (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1, got \(t)") }
    }

    /// The execution context of the command: `--threads` threads (default: every core, or under
    /// `convnet-mpi` this rank's share of them), the CPU's kernels.
    var context: ExecutionContext {
        ExecutionContext(threads: threads ?? ProcessRanks.threadsPerRank ?? Threading.availableCores)
    }
}
