import Foundation

/// "Nice" axis ticks (1, 2, 2.5, 5 x 10^k steps) covering a data range.
public struct NiceScale: Sendable, Equatable {
    public var lower: Double
    public var upper: Double
    public var step: Double

    /// Covers [minimum, maximum] with about `targetTicks` ticks whose ends are multiples of the step.
    public init(minimum: Double, maximum: Double, targetTicks: Int = 6) {
        // Values beyond ±1e300 (a loss of 1e308 in a metrics file) are drawn at ±1e300, so that the
        // range and the steps stay finite numbers.
        var lo = minimum.isFinite ? min(max(minimum, -Self.limit), Self.limit) : 0
        var hi = maximum.isFinite ? min(max(maximum, -Self.limit), Self.limit) : 1
        if lo > hi { swap(&lo, &hi) }
        if hi - lo < 1e-12 * max(1, abs(hi)) {
            // A flat series: open a window around the value.
            let pad = lo == 0 ? 1 : abs(lo) * 0.1
            lo -= pad
            hi += pad
        }
        let step = NiceScale.niceNumber((hi - lo) / Double(max(targetTicks - 1, 1)), round: true)
        self.step = step
        self.lower = (lo / step).rounded(.down) * step
        self.upper = (hi / step).rounded(.up) * step
    }

    /// The largest magnitude an axis covers.
    static let limit = 1e300

    /// Tick positions from lower to upper (at most 1,000).
    public var ticks: [Double] {
        let count = ((upper - lower) / step).rounded()
        let n = count.isFinite ? Int(min(max(count, 0), 1000)) : 0
        return (0...n).map { lower + Double($0) * step }
    }

    /// Decimals needed to print the step without losing digits.
    public var decimals: Int {
        var d = 0
        var s = step
        while d < 8 && abs(s - s.rounded()) > 1e-9 * max(1, abs(s)) {
            s *= 10
            d += 1
        }
        return d
    }

    public func label(_ v: Double) -> String {
        let value = abs(v) < step * 1e-9 ? 0 : v
        if abs(value) >= 1e6 || (abs(value) > 0 && abs(value) < 1e-4) { return String(format: "%.1e", value) }
        return String(format: "%.\(decimals)f", value)
    }

    static func niceNumber(_ x: Double, round: Bool) -> Double {
        guard x > 0, x.isFinite else { return 1 }
        let exponent = floor(log10(x))
        let fraction = x / pow(10, exponent)
        let nice: Double
        if round {
            nice = fraction < 1.5 ? 1 : fraction < 2.25 ? 2 : fraction < 3.5 ? 2.5 : fraction < 7.5 ? 5 : 10
        } else {
            nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10
        }
        return nice * pow(10, exponent)
    }
}

/// Exponential moving average with bias correction (as TensorBoard's smoothing): the first values are
/// not pulled towards zero.
public func exponentialMovingAverage(_ values: [Double], smoothing: Double = 0.9) -> [Double] {
    let beta = min(max(smoothing, 0), 0.9999)
    var average = 0.0
    var weight = 0.0
    var out: [Double] = []
    out.reserveCapacity(values.count)
    for v in values {
        guard v.isFinite else {
            out.append(weight > 0 ? average / weight : .nan)
            continue
        }
        average = beta * average + (1 - beta) * v
        weight = beta * weight + (1 - beta)
        out.append(average / weight)
    }
    return out
}
