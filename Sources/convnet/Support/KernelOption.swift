import ArgumentParser
import ConvNet

/// `--kernels portable|avx2|avx512`: caps the vector kernels, for benchmarks that compare the paths.
struct KernelOption: ParsableArguments {
    @Option(help: "Kernels: portable, avx2 or avx512 (default: the best this CPU runs).")
    var kernels: String?

    /// Applies the cap; returns the kernels that will run.
    @discardableResult
    func apply() throws -> KernelLevel {
        if let name = kernels {
            let level = try KernelLevel(named: name)
            guard level <= Gemm.cpuKernelLevel else {
                throw ValidationError(
                    "this CPU cannot run the \(level) kernels; the best it runs is \(Gemm.cpuKernelLevel.name)")
            }
            Gemm.kernelLimit = level
        }
        return Gemm.kernelLevel
    }
}
