import ArgumentParser
import ConvNet

/// `--conv-algorithm direct|winograd|auto`: which algorithm the 3x3 stride-1 convolutions run
/// (`ConvAlgorithm`), the same for `train`, `eval` and `bench`.
struct ConvAlgorithmOption: ParsableArguments {
    static let help = "Convolution algorithm of the 3x3 stride-1 layers: direct (never Winograd), winograd (Winograd F(2x2,3x3) on every such layer with more than one input channel) or auto (the measured rule for each layer shape; the default)."

    @Option(help: ArgumentHelp(Self.help, valueName: "algorithm"))
    var convAlgorithm: String?

    func validate() throws {
        _ = try algorithm()
    }

    /// The algorithm given (auto when none), or a usage error naming the option.
    func algorithm() throws -> ConvAlgorithm {
        guard let name = convAlgorithm else { return .auto }
        do { return try ConvAlgorithm(named: name) } catch { throw ValidationError("--conv-algorithm: \(error)") }
    }

    /// `context` running the algorithm given by `--conv-algorithm` (validated), or its own.
    func applied(to context: ExecutionContext) throws -> ExecutionContext {
        convAlgorithm == nil ? context : context.with(algorithm: try algorithm())
    }
}
