import ConvNet

/// The processes a command runs in. `convnet-mpi` (the `Distributed/` package) sets `current` to its
/// MPI ranks before it runs `TrainCommand`; in `convnet` it stays nil: one process, which writes.
public enum ProcessRanks {
    nonisolated(unsafe) public static var current: (any TrainingGroup)?

    /// Whether this process writes the run folder and prints results: rank 0, or the only process.
    static var isWriter: Bool { (current?.rank ?? 0) == 0 }
}
