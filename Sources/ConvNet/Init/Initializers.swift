import Foundation

/// How a weight tensor starts. `fanIn` and `fanOut` count the inputs and outputs of one unit
/// (for a conv: channels x kernel area).
public enum WeightInit: Sendable, Equatable, CustomStringConvertible {
    /// N(0, std).
    case gaussian(std: Float)
    /// N(0, std) redrawn until within 2 std of 0.
    case truncatedNormal(std: Float)
    /// U(-limit, limit).
    case uniform(limit: Float)
    /// Glorot: U(±sqrt(6 / (fanIn + fanOut))).
    case xavierUniform
    /// Glorot: N(0, sqrt(2 / (fanIn + fanOut))).
    case xavierNormal
    /// Kaiming: N(0, sqrt(2 / fanIn)), for ReLU networks.
    case heNormal
    /// Kaiming: U(±sqrt(6 / fanIn)).
    case heUniform
    /// PyTorch's default for Conv2d and Linear: U(±1 / sqrt(fanIn)).
    case pytorchDefault

    /// Parses `gaussian:0.01`, `truncated-normal:0.1`, `uniform:0.05`, `xavier`, `xavier-normal`, `he`,
    /// `he-uniform`, `pytorch`.
    public init(parsing text: String) throws {
        let parts = text.lowercased().split(separator: ":", maxSplits: 1).map(String.init)
        let name = parts.first ?? ""
        let arg = parts.count > 1 ? Float(parts[1]) : nil
        if parts.count > 1 && (arg == nil || !arg!.isFinite || arg! <= 0) {
            throw ValueError.invalidArgument("initialiser '\(text)': '\(parts[1])' is not a positive number")
        }
        switch name {
        case "gaussian", "normal": self = .gaussian(std: arg ?? 1)
        case "truncated-normal", "truncated": self = .truncatedNormal(std: arg ?? 0.1)
        case "uniform": self = .uniform(limit: arg ?? 0.05)
        case "xavier", "xavier-uniform", "glorot": self = .xavierUniform
        case "xavier-normal", "glorot-normal": self = .xavierNormal
        case "he", "he-normal", "kaiming": self = .heNormal
        case "he-uniform", "kaiming-uniform": self = .heUniform
        case "pytorch", "default": self = .pytorchDefault
        default:
            throw ValueError.invalidArgument(
                "unknown initialiser '\(text)'; use gaussian[:std], truncated-normal[:std], uniform[:limit], "
                    + "xavier, xavier-normal, he, he-uniform or pytorch")
        }
    }

    public var description: String {
        switch self {
        case .gaussian(let s): return "gaussian:\(s)"
        case .truncatedNormal(let s): return "truncated-normal:\(s)"
        case .uniform(let a): return "uniform:\(a)"
        case .xavierUniform: return "xavier"
        case .xavierNormal: return "xavier-normal"
        case .heNormal: return "he"
        case .heUniform: return "he-uniform"
        case .pytorchDefault: return "pytorch"
        }
    }

    /// `count` values drawn for a tensor with the given fans.
    public func sample(count: Int, fanIn: Int, fanOut: Int, random: inout SeededGenerator) -> [Float] {
        let fi = Double(max(fanIn, 1)), fo = Double(max(fanOut, 1))
        switch self {
        case .gaussian(let std): return normals(count, std: Double(std), random: &random)
        case .truncatedNormal(let std):
            return (0..<count).map { _ in
                var z = random.normal()
                while abs(z) > 2 { z = random.normal() }
                return Float(z * Double(std))
            }
        case .uniform(let a): return uniforms(count, limit: Double(a), random: &random)
        case .xavierUniform: return uniforms(count, limit: (6 / (fi + fo)).squareRoot(), random: &random)
        case .xavierNormal: return normals(count, std: (2 / (fi + fo)).squareRoot(), random: &random)
        case .heNormal: return normals(count, std: (2 / fi).squareRoot(), random: &random)
        case .heUniform: return uniforms(count, limit: (6 / fi).squareRoot(), random: &random)
        case .pytorchDefault: return uniforms(count, limit: 1 / fi.squareRoot(), random: &random)
        }
    }
}

/// How a bias starts.
public enum BiasInit: Sendable, Equatable {
    case constant(Float)
    /// U(±1 / sqrt(fanIn)), as PyTorch.
    case pytorchDefault

    public func sample(count: Int, fanIn: Int, random: inout SeededGenerator) -> [Float] {
        switch self {
        case .constant(let c): return [Float](repeating: c, count: count)
        case .pytorchDefault: return uniforms(count, limit: 1 / Double(max(fanIn, 1)).squareRoot(), random: &random)
        }
    }
}

private func normals(_ count: Int, std: Double, random: inout SeededGenerator) -> [Float] {
    (0..<count).map { _ in Float(random.normal() * std) }
}

private func uniforms(_ count: Int, limit: Double, random: inout SeededGenerator) -> [Float] {
    (0..<count).map { _ in Float((random.nextUnitDouble() * 2 - 1) * limit) }
}
