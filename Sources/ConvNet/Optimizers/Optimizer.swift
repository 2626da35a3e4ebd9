/// Updates parameters from their gradients. Each optimizer keeps per-parameter state, keyed by the
/// parameter's name, so the state can be saved and restored with the weights.
public protocol Optimizer: AnyObject {
    /// The learning rate the next `step` uses (a schedule may change it between steps).
    var learningRate: Float { get set }
    /// Applies one update to every parameter from its `gradient`; `context` gives the update loops their threads.
    func step(_ parameters: [Parameter], context: ExecutionContext)
    /// Per-parameter state tensors by name (`conv1.weight.momentum`), for checkpoints.
    var state: [String: Tensor] { get set }
    /// Number of steps taken so far.
    var steps: Int { get set }
    /// The name used on the command line.
    var kind: String { get }
}

extension Optimizer {
    /// The suffixes of the state tensors it keeps per parameter (`.momentum`; Adam's `.m` and `.v`):
    /// how checkpoints name them, and how many tensors of each parameter's size it holds.
    public var stateSuffixes: [String] {
        switch kind {
        case "sgd": [".momentum"]
        case "adam", "adamw": [".m", ".v"]
        case "adagrad": [".sum_squares"]
        default: []
        }
    }
}

/// The `state` keys of an optimizer for one suffix (`conv1.weight` -> `conv1.weight.momentum`), built
/// once per parameter name so that a step allocates no strings.
struct StateKeys {
    let suffix: String
    private var cache: [String: String] = [:]

    init(_ suffix: String) { self.suffix = suffix }

    subscript(name: String) -> String {
        mutating get {
            if let key = cache[name] { return key }
            let key = name + suffix
            cache[name] = key
            return key
        }
    }
}

/// The optimizers `convnet train` offers, by name.
public enum OptimizerKind: String, CaseIterable, Sendable, Codable {
    case sgd, adagrad, adam, adamw

    /// The rate a run with this optimizer starts from when none is given (PyTorch's for Adam and AdamW).
    public var defaultLearningRate: Float { self == .adam || self == .adamw ? 0.001 : 0.01 }
    /// The weight decay a run with this optimizer uses when none is given (PyTorch's `AdamW`: 0.01).
    public var defaultWeightDecay: Float { self == .adamw ? 0.01 : 0 }
}

/// Which parameters weight decay applies to (`--decay-scope`).
public enum WeightDecayScope: String, CaseIterable, Sendable, Codable {
    /// Every parameter (PyTorch's default, and this tool's before the option existed).
    case all
    /// Weight matrices and kernels only: parameters of rank 1 or less (biases, batch norm's scale and shift)
    /// are not decayed, as the usual recipes for batch-norm networks do.
    case weights

    /// Whether `parameter` is decayed.
    public func decays(_ parameter: Parameter) -> Bool {
        self == .all || parameter.value.shape.count > 1
    }
}

/// Learning rate that is multiplied by `decay` every `every` iterations (the course's step decay).
public struct StepDecay: Sendable, Equatable {
    public var base: Float
    public var decay: Float
    public var every: Int

    public init(base: Float, decay: Float = 1, every: Int = 1000) {
        self.base = base
        self.decay = decay
        self.every = max(1, every)
    }

    public func rate(atIteration iteration: Int) -> Float {
        if decay == 1 { return base }
        return base * powf(decay, Float(iteration / every))
    }
}

/// Gradient clipping applied before each step.
public enum GradientClipping: Sendable, Equatable {
    case none
    /// Each gradient element is clamped to [-c, c].
    case value(Float)
    /// All gradients are scaled together so their global L2 norm is at most c.
    case globalNorm(Float)

    /// Clips the gradients in place; returns the global norm before clipping.
    @discardableResult
    public func apply(to parameters: [Parameter]) -> Float {
        var sumSquares = 0.0
        for p in parameters {
            p.gradient.withUnsafeBufferPointer { g in
                for v in g { sumSquares += Double(v) * Double(v) }
            }
        }
        let norm = Float(sumSquares.squareRoot())
        switch self {
        case .none: break
        case .value(let c):
            for p in parameters {
                p.gradient.withUnsafeMutableBufferPointer { g in
                    for i in g.indices { g[i] = min(max(g[i], -c), c) }
                }
            }
        case .globalNorm(let c):
            if norm > c && norm > 0 {
                let scale = c / norm
                for p in parameters {
                    p.gradient.withUnsafeMutableBufferPointer { g in
                        for i in g.indices { g[i] *= scale }
                    }
                }
            }
        }
        return norm
    }
}

import Foundation

extension Optimizer {
    /// `step` in the default context.
    public func step(_ parameters: [Parameter]) { step(parameters, context: .default) }
}
