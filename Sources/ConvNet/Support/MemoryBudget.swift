import Foundation

/// How many bytes a command may allocate for what its inputs ask for: the network's weights and the
/// per-sample buffers of a batch, decoded data, generated data. Every size that comes from a file or an
/// option is checked against it before anything is allocated, so an input asking for too much ends in
/// `MemoryBudgetError`, which names what needs the memory and what to change, instead of an abort.
public struct MemoryBudget: Sendable, Equatable, CustomStringConvertible {
    public var bytes: Int

    public init(bytes: Int) { self.bytes = max(bytes, 0) }

    /// The smallest budget `parse` takes (1 MiB): below that not even the bundled sample fits.
    public static let minimumBytes = 1 << 20

    /// The default: three quarters of the memory this process can have: the machine's physical memory,
    /// or less where a limit says so (the cgroup's `memory.max` of a container, `ulimit -v` less what the
    /// process already maps, `ulimit -d`). A quarter stays for what the budget does not count (the
    /// program, its stacks, the allocator's slack, other processes).
    public static let machine = MemoryBudget(bytes: machineBytes(
        physical: Int(clamping: ProcessInfo.processInfo.physicalMemory),
        addressSpaceLimit: limit(RLIMIT_AS).map { $0 - min(mappedBytes() ?? 0, $0) },
        dataLimit: limit(RLIMIT_DATA), cgroupLimit: cgroupMemoryLimit()))

    /// The default's rule, for the figures it was given (nil: no such limit).
    public static func machineBytes(physical: Int, addressSpaceLimit: Int?, dataLimit: Int?, cgroupLimit: Int?) -> Int {
        let available = [physical, addressSpaceLimit, dataLimit, cgroupLimit].compactMap { $0 }.min() ?? physical
        return max(available / 4 * 3, 0)
    }

    /// Parses `--memory-budget`: a number of bytes, or one with the suffix K, M, G or T (powers of 1024,
    /// with or without `B`/`iB`; decimals allowed: `1.5G`).
    public static func parse(_ text: String) -> MemoryBudget? {
        var digits = text.trimmingCharacters(in: .whitespaces).uppercased()
        for suffix in ["IB", "B"] where digits.hasSuffix(suffix) && digits.count > suffix.count {
            digits.removeLast(suffix.count)
            break
        }
        var scale = 1.0
        if let last = digits.last, let power = ["K": 1, "M": 2, "G": 3, "T": 4][String(last)] {
            scale = pow(1024, Double(power))
            digits.removeLast()
        }
        // Plain decimals only (Double would also take "1e9", "0x10" and "inf").
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), let value = Double(digits) else { return nil }
        let bytes = (value * scale).rounded(.down)
        guard bytes >= Double(minimumBytes), bytes < 0x1p62 else { return nil }
        return MemoryBudget(bytes: Int(bytes))
    }

    public var description: String { Self.format(bytes) }

    /// Throws when `need` bytes (nil: more than can be counted) are over the budget.
    /// `what` names what needs them; `advice` says what to change besides the budget.
    public func check(_ need: Int?, for what: @autoclosure () -> String, advice: @autoclosure () -> String) throws(MemoryBudgetError) {
        guard let need, need <= bytes else {
            throw MemoryBudgetError(what: what(), bytes: need, budget: bytes, advice: advice())
        }
    }

    /// What is left after `bytes` are spent (0 when they are over it).
    public func spending(_ spent: Int) -> MemoryBudget { MemoryBudget(bytes: bytes - min(max(spent, 0), bytes)) }

    /// A byte count for people: "512 bytes", "3.2 MB", "65.3 GB" (powers of 1000, as `df -H` and `ls --si`).
    public static func format(_ bytes: Int) -> String {
        if bytes < 1000 { return bytes == 1 ? "1 byte" : "\(bytes) bytes" }
        var value = Double(bytes)
        for unit in ["kB", "MB", "GB", "TB", "PB"] {
            value /= 1000
            if value < 999.95 || unit == "PB" { return String(format: value < 9.995 ? "%.2f %@" : "%.1f %@", value, unit) }
        }
        return "\(bytes) bytes"
    }

    // MARK: The machine's figures

    private static func limit(_ resource: __rlimit_resource) -> Int? {
        var value = rlimit()
        guard getrlimit(__rlimit_resource_t(resource.rawValue), &value) == 0, value.rlim_cur != rlim_t.max else { return nil }
        return Int(clamping: value.rlim_cur)
    }

    /// The process's mapped address space now (`/proc/self/statm`'s first field, in pages).
    private static func mappedBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
              let pages = text.split(separator: " ").first.flatMap({ Int($0) }) else { return nil }
        return pages.multipliedReportingOverflow(by: Int(sysconf(Int32(_SC_PAGESIZE)))).partialValue
    }

    /// cgroup v2's `memory.max` for this process's group (nil where there is none or it is "max").
    private static func cgroupMemoryLimit() -> Int? {
        guard let membership = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return nil }
        for line in membership.split(separator: "\n") where line.hasPrefix("0::") {
            let path = String(line.dropFirst(3))
            let text = try? String(contentsOfFile: "/sys/fs/cgroup\(path == "/" ? "" : path)/memory.max", encoding: .utf8)
            return text.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        return nil
    }
}

/// An input asked for more memory than the budget allows.
public struct MemoryBudgetError: Error, CustomStringConvertible, Equatable {
    /// What needs the memory ("training conv1 ... at batch 64").
    public var what: String
    /// The bytes it needs (nil: more than can be counted).
    public var bytes: Int?
    public var budget: Int
    /// What to change besides the budget.
    public var advice: String

    public var description: String {
        "\(what) needs \(bytes.map(MemoryBudget.format) ?? "more bytes than can be counted"), over the memory budget of "
            + "\(MemoryBudget.format(budget)); \(advice)\(advice.isEmpty ? "" : ", or ")raise --memory-budget "
            + "(its default is 3/4 of the memory this machine gives the process)"
    }
}

/// Overflow-checked sums and products of sizes: nil when one overflows or is negative.
public enum CheckedSize {
    public static func product(_ values: [Int]) -> Int? {
        var p = 1
        for v in values {
            guard v >= 0 else { return nil }
            let (q, overflow) = p.multipliedReportingOverflow(by: v)
            guard !overflow else { return nil }
            p = q
        }
        return p
    }

    public static func sum(_ values: [Int?]) -> Int? {
        var s = 0
        for v in values {
            guard let v, v >= 0 else { return nil }
            let (t, overflow) = s.addingReportingOverflow(v)
            guard !overflow else { return nil }
            s = t
        }
        return s
    }
}
