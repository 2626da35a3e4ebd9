import ArgumentParser
import ConvNet

/// `--kernels portable|avx2|avx512`: selects the vector kernels, for benchmarks that compare the paths.
struct KernelOption: ParsableArguments {
    @Option(help: "Kernels: portable, avx2 or avx512 (default: chosen from the CPU).")
    var kernels: String?

    func validate() throws {
        guard let name = kernels else { return }
        let level: KernelLevel
        do { level = try KernelLevel(named: name) } catch { throw ValidationError("\(error)") }
        guard level <= KernelLevel.cpu else {
            throw ValidationError(
                "this CPU cannot run the \(level) kernels; the best it runs is \(KernelLevel.cpu.name)")
        }
    }

    /// `context` running the kernels given by `--kernels` (validated), or its own.
    func applied(to context: ExecutionContext) throws -> ExecutionContext {
        guard let name = kernels else { return context }
        return context.with(kernelLevel: try KernelLevel(named: name))
    }
}
