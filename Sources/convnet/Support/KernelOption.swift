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
        guard level <= Gemm.cpuKernelLevel else {
            throw ValidationError(
                "this CPU cannot run the \(level) kernels; the best it runs is \(Gemm.cpuKernelLevel.name)")
        }
    }

    /// Selects the kernels given by `--kernels` (validated); returns the kernels that will run.
    @discardableResult
    func apply() throws -> KernelLevel {
        if let name = kernels { Gemm.kernelLimit = try KernelLevel(named: name) }
        return Gemm.kernelLevel
    }
}
