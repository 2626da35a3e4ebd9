import ArgumentParser
import ConvNet

/// `--threads N`: how many threads the kernels use (default: every core), the same for every command.
struct ThreadsOption: ParsableArguments {
    @Option(parsing: .unconditional, help: "Threads for the kernels (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1, got \(t)") }
    }

    /// Sets `Threading.threads` when `--threads` was given.
    func apply() {
        if let t = threads { Threading.threads = t }
    }
}
