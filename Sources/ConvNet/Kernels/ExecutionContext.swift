/// How a network's passes run: the thread count, the kernel level, the convolution algorithm, the
/// convolution paths forced instead of the measured rules, and the batch size from which a convolution
/// splits its batch across threads.
///
/// A value, passed from the command or the library caller down through `Sequential`, the layers, the ops
/// and the kernels: nothing below reads a process-wide setting, so two networks (two `Classifier`s, the
/// studio's server beside a training) can run at once with different settings. `ExecutionContext()` is
/// the default: every core, the CPU's preferred kernels, the measured convolution paths.
///
/// Results depend on the context only as documented where the kernels are: not on the kernel level (the
/// vector kernels run the same sequence of fused multiply-adds per element), on the thread count only
/// through the fixed-order sums of per-thread weight-gradient partials, and on the algorithm (Winograd
/// rounds differently from the direct paths).
public struct ExecutionContext: Equatable, Sendable, CustomStringConvertible {
    /// Threads the kernels split their work into (at least 1).
    public var threads: Int {
        didSet { threads = max(1, threads) }
    }
    /// The vector kernels to run (at most `KernelLevel.cpu`, the best this CPU runs).
    public var kernelLevel: KernelLevel {
        didSet { kernelLevel = min(kernelLevel, KernelLevel.cpu) }
    }
    /// Which convolution algorithm the 3x3 stride-1 layers run (`ConvAlgorithm`; `--conv-algorithm`).
    public var algorithm: ConvAlgorithm
    /// Convolution paths to force instead of the measured rules, where the geometry allows them
    /// (`ConvPlan`); empty: the rules. Tests and `convnet bench conv` set them.
    public var convolution: ConvPlan.Choices
    /// Multiply-adds of a whole-batch convolution below which the batch is not split across threads:
    /// waking a second thread costs more than a tiny layer's pass (tests set 0 to split small shapes).
    public var minParallelMACs: Int

    public init(
        threads: Int = Threading.availableCores, kernelLevel: KernelLevel = .preferred, algorithm: ConvAlgorithm = .auto,
        convolution: ConvPlan.Choices = ConvPlan.Choices(), minParallelMACs: Int = 1 << 19
    ) {
        self.threads = max(1, threads)
        self.kernelLevel = min(kernelLevel, KernelLevel.cpu)
        self.algorithm = algorithm
        self.convolution = convolution
        self.minParallelMACs = minParallelMACs
    }

    /// Every core, the CPU's preferred kernels, the measured convolution paths.
    public static var `default`: ExecutionContext { ExecutionContext() }

    /// This context with `threads` threads.
    public func with(threads: Int) -> ExecutionContext {
        var c = self
        c.threads = threads
        return c
    }

    /// This context with the kernels of `level` (capped at what the CPU runs).
    public func with(kernelLevel level: KernelLevel) -> ExecutionContext {
        var c = self
        c.kernelLevel = level
        return c
    }

    /// This context running the convolutions with `algorithm`.
    public func with(algorithm: ConvAlgorithm) -> ExecutionContext {
        var c = self
        c.algorithm = algorithm
        return c
    }

    /// This context with `choices` forced on its convolutions.
    public func forcing(_ choices: ConvPlan.Choices) -> ExecutionContext {
        var c = self
        c.convolution = choices
        return c
    }

    /// Runs `body(0) ... body(count - 1)` on up to `threads` threads (`Threading.parallelFor`).
    @inline(__always)
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        Threading.parallelFor(count, threads: threads, body)
    }

    public var description: String {
        var parts = ["\(threads) \(threads == 1 ? "thread" : "threads")", "kernels \(kernelLevel.name)"]
        if algorithm != .auto { parts.append("convolution algorithm \(algorithm.rawValue)") }
        if convolution != ConvPlan.Choices() { parts.append("forced convolution paths") }
        return parts.joined(separator: ", ")
    }
}

extension KernelLevel {
    /// The best kernels this CPU runs.
    public static var cpu: KernelLevel { Gemm.cpuKernelLevel }

    /// The kernels chosen for this CPU when nobody asks for others: its best, except AVX2 where AVX-512
    /// runs at half width (AMD Zen 3/4).
    public static var preferred: KernelLevel { Gemm.defaultKernelLevel }
}
