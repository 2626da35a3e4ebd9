import Foundation

/// One comparison of an analytic gradient with central differences.
public struct GradientCheckResult: Sendable, Codable, Equatable {
    /// Which check and layer (`conv stride 2 › conv2`).
    public var layer: String
    /// What was differentiated: `dL/dX` (the network input), or a parameter (`weight`, `bias`).
    public var quantity: String
    /// max |analytic - numeric| / max(max |analytic|, max |numeric|, 1e-2) over the checked elements.
    public var maxRelativeError: Double
    public var passed: Bool

    enum CodingKeys: String, CodingKey {
        case layer, quantity, passed
        case maxRelativeError = "max_rel_error"
    }
}

/// Numerical gradient checking by central differences: (L(w + e) - L(w - e)) / 2e against the
/// gradient that backward wrote.
public struct GradientChecker {
    public var epsilon: Float = 1e-2
    public var tolerance: Double = 1e-2
    /// Elements checked per tensor (chosen at random, seeded); all when the tensor is smaller.
    public var samplesPerTensor = 48
    public var seed: UInt64 = 7

    public init(epsilon: Float = 1e-2, tolerance: Double = 1e-2, samplesPerTensor: Int = 48, seed: UInt64 = 7) {
        self.epsilon = epsilon
        self.tolerance = tolerance
        self.samplesPerTensor = samplesPerTensor
        self.seed = seed
    }

    /// Checks dL/dinput and every parameter gradient of `network` on `input`.
    ///
    /// With `loss` nil the loss is a fixed random projection of the output, sum(out * r), summed in
    /// Double so rounding stays far below the differences measured. `labelSmoothing` goes to the loss.
    public func check(
        _ network: Sequential, input: Tensor, labels: [Int] = [], loss: LossFunction? = nil, labelSmoothing: Float = 0, label: String
    ) throws -> [GradientCheckResult] {
        var random = SeededGenerator(seed: seed)
        for case let dropout as Dropout in network.layers { dropout.freezesMask = true }
        defer { for case let dropout as Dropout in network.layers { dropout.freezesMask = false } }

        let output = try network.forward(input, training: true)
        let projection = (0..<output.count).map { _ in Double(random.uniform(-1, 1)) }
        func lossAndGradient(_ out: Tensor) throws -> (Double, Tensor) {
            if let loss {
                let r = try loss.evaluate(output: out, labels: labels, labelSmoothing: labelSmoothing)
                return (Double(r.value), r.gradient)
            }
            var total = 0.0
            for i in 0..<out.count { total += Double(out[i]) * projection[i] }
            return (total, try Tensor(shape: out.shape, scalars: projection.map(Float.init)))
        }
        func lossValue() throws -> Double { try lossAndGradient(network.forward(input, training: true)).0 }

        let (_, outputGradient) = try lossAndGradient(output)
        let inputGradient = try network.backward(outputGradient)
        let analytic = network.parameters.map { $0.gradient }

        var results: [GradientCheckResult] = []
        var x = input
        let inputError = try compare(analytic: inputGradient, random: &random) { index, delta in
            let old = x[index]
            x[index] = old + delta
            defer { x[index] = old }
            return try lossAndGradient(network.forward(x, training: true)).0
        }
        results.append(GradientCheckResult(layer: "\(label) › input", quantity: "dL/dX", maxRelativeError: inputError, passed: inputError <= tolerance))
        for (parameter, gradient) in zip(network.parameters, analytic) {
            let error = try compare(analytic: gradient, random: &random) { index, delta in
                let old = parameter.value[index]
                parameter.value[index] = old + delta
                defer { parameter.value[index] = old }
                return try lossValue()
            }
            let parts = parameter.name.split(separator: ".", maxSplits: 1).map(String.init)
            results.append(GradientCheckResult(
                layer: "\(label) › \(parts[0])", quantity: "dL/d\(parts.count > 1 ? parts[1] : parameter.name)",
                maxRelativeError: error, passed: error <= tolerance))
        }
        return results
    }

    /// Max error over sampled elements, relative to the largest gradient magnitude seen.
    private func compare(
        analytic: Tensor, random: inout SeededGenerator, loss: (Int, Float) throws -> Double
    ) throws -> Double {
        let indices: [Int]
        if analytic.count <= samplesPerTensor {
            indices = Array(0..<analytic.count)
        } else {
            indices = Array(random.permutation(analytic.count).prefix(samplesPerTensor))
        }
        var maxDiff = 0.0, scale = 0.0
        for i in indices {
            let plus = try loss(i, epsilon), minus = try loss(i, -epsilon)
            let numeric = (plus - minus) / (2 * Double(epsilon))
            let a = Double(analytic[i])
            maxDiff = max(maxDiff, abs(a - numeric))
            scale = max(scale, abs(a), abs(numeric))
        }
        // A gradient that is zero by construction (a bias before batch norm) is compared absolutely.
        return maxDiff / max(scale, 1e-2)
    }
}
