import ConvNet

/// The processes a command runs in. `convnet-mpi` (the `Distributed/` package) sets `current` to its
/// MPI ranks and `threadsPerRank` before it runs `TrainCommand`; in `convnet` they stay nil: one
/// process, which writes. This is how the MPI launcher talks to the parsed command; the command reads
/// them once and passes them down (the trainer's `group`, the network's context).
public enum ProcessRanks {
    nonisolated(unsafe) public static var current: (any TrainingGroup)?
    /// The threads each rank's kernels use by default: its share of its machine's cores (nil in `convnet`:
    /// every core). The command passes it down as its `ExecutionContext` (`ThreadsOption.context`).
    nonisolated(unsafe) public static var threadsPerRank: Int?

    /// Whether this process writes the run folder and prints results: rank 0, or the only process.
    static var isWriter: Bool { (current?.rank ?? 0) == 0 }
}
