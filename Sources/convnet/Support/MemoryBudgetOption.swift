import ArgumentParser
import ConvNet

/// `--memory-budget SIZE`: the most memory a command may allocate for what its inputs ask for (the
/// network's weights and batch buffers, the decoded data), the same for every command that builds a network.
public struct MemoryBudgetOption: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Most memory for the network and the data, as bytes or with K, M, G or T (powers of 1024: 512M, 1.5G) "
            + "(default: 3/4 of the memory this machine gives the process, here \(MemoryBudget.machine)).",
        valueName: "size"))
    public var memoryBudget: String?

    public init() {}

    public func validate() throws {
        if let text = memoryBudget { _ = try Self.parse(text) }
    }

    /// The budget given, or the machine's.
    public var budget: MemoryBudget { memoryBudget.flatMap(MemoryBudget.parse) ?? .machine }

    /// `--memory-budget`'s text as a budget; anything else is a usage error naming the option.
    static func parse(_ text: String) throws -> MemoryBudget {
        guard let budget = MemoryBudget.parse(text) else {
            throw ValidationError("--memory-budget takes a size such as 512M, 2G or 1500000000 (bytes), at least 1M, got '\(text)'")
        }
        return budget
    }
}
