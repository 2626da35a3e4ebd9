import Foundation

/// The shape of the learning rate over a run (`--schedule`).
public enum ScheduleKind: String, CaseIterable, Sendable, Codable {
    /// The base rate, multiplied by `--lr-decay` every `--decay-every` iterations (the course's step decay).
    case step
    /// Cosine annealing from the base rate down to 0 at the last iteration, after the linear warm-up.
    case cosine
    /// PyTorch's `OneCycleLR`: from base/25 up to the base rate and down to base/250,000, both halves cosine.
    case oneCycle = "one-cycle"
}

/// How long the learning rate rises linearly at the start of a run (`--warmup`).
public enum Warmup: Sendable, Equatable, Codable, CustomStringConvertible {
    /// A number of epochs (a fraction is allowed), turned into iterations with the run's batches per epoch.
    case epochs(Double)
    case iterations(Int)

    /// `1` or `0.5` (epochs), `500it` (iterations).
    public init(parsing text: String) throws(ValueError) {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if t.hasSuffix("it"), let n = Int(t.dropLast(2)), n >= 0 {
            self = .iterations(n)
        } else if let e = Double(t), e.isFinite, e >= 0 {
            self = .epochs(e)
        } else {
            throw .invalidArgument("--warmup takes a number of epochs (1, 0.5) or of iterations (500it), got '\(text)'")
        }
    }

    public var description: String {
        switch self {
        case .epochs(let e): return e == e.rounded() ? "\(Int(e)) epoch\(e == 1 ? "" : "s")" : "\(e) epochs"
        case .iterations(let n): return counted(n, "iteration")
        }
    }

    /// The warm-up's length in iterations for a run of `batchesPerEpoch` batches per epoch.
    public func iterations(batchesPerEpoch: Int) -> Int {
        switch self {
        case .epochs(let e): return Int((e * Double(batchesPerEpoch)).rounded())
        case .iterations(let n): return n
        }
    }
}

/// The learning rate of every iteration of a run, worked out from the iteration's index alone (so a resumed
/// run continues on the same curve). `t` below is the 0-based index of the step about to be taken, `T` the
/// run's iterations (epochs times batches per epoch), `W` the warm-up's iterations and `base` the `--lr`.
///
/// - step: `base * decay^floor(t / every)`, times the warm-up factor `(t + 1) / W` while `t < W`.
/// - cosine: `base * (t + 1) / W` while `t < W`, then `base * (1 + cos(pi * (t - W) / (T - W))) / 2`
///   (PyTorch's `CosineAnnealingLR` with `T_max = T - W` and `eta_min = 0`, after a linear warm-up).
/// - one-cycle: PyTorch's `OneCycleLR` (`anneal_strategy='cos'`, `div_factor=25`, `final_div_factor=1e4`),
///   rising for `W` iterations when a warm-up is given and for 30% of the run (`pct_start=0.3`) otherwise:
///   with `a(s, e, p) = e + (s - e) (1 + cos(pi p)) / 2` and `m = W - 1` (or `0.3 T - 1`), the rate is `a(base/25, base, t/m)`
///   up to `t = m` and `a(base, base/25/1e4, (t - m) / (T - 1 - m))` after it.
public struct LearningRateSchedule: Sendable, Equatable {
    public var kind: ScheduleKind
    public var base: Float
    public var stepDecay: StepDecay
    public var warmupIterations: Int
    public var totalIterations: Int

    /// PyTorch's `OneCycleLR` defaults.
    public static let oneCycleDivision: Double = 25, oneCycleFinalDivision: Double = 1e4, oneCycleRise = 0.3

    public init(kind: ScheduleKind, base: Float, stepDecay: StepDecay? = nil, warmupIterations: Int = 0, totalIterations: Int) {
        self.kind = kind
        self.base = base
        self.stepDecay = stepDecay ?? StepDecay(base: base)
        self.warmupIterations = max(0, warmupIterations)
        self.totalIterations = max(1, totalIterations)
    }

    public func rate(atIteration t: Int) -> Float {
        let b = Double(base), w = warmupIterations, total = totalIterations
        switch kind {
        case .step:
            let r = stepDecay.rate(atIteration: t)
            return t < w ? r * Float(t + 1) / Float(w) : r
        case .cosine:
            if t < w { return Float(b * Double(t + 1) / Double(w)) }
            let span = total - w
            guard span > 0 else { return base }
            let p = Double(min(t - w, span)) / Double(span)
            return Float(b * (1 + cos(Double.pi * p)) / 2)
        case .oneCycle:
            let initial = b / Self.oneCycleDivision, final = initial / Self.oneCycleFinalDivision
            let peak = (w > 0 ? Double(w) : Self.oneCycleRise * Double(total)) - 1
            let last = Double(total - 1)
            func anneal(_ start: Double, _ end: Double, _ p: Double) -> Double { end + (start - end) * (1 + cos(Double.pi * p)) / 2 }
            let x = Double(t)
            if x <= peak { return Float(peak > 0 ? anneal(initial, b, x / peak) : b) }
            guard last > peak else { return Float(final) }
            return Float(anneal(b, final, min(1, (x - peak) / (last - peak))))
        }
    }
}
