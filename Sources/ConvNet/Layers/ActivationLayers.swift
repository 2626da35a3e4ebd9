/// Elementwise activations. ReLU and leaky ReLU cache their input; sigmoid, tanh and log-softmax keep
/// their output, from which their derivative follows. Each reuses its output and input-gradient
/// buffers from call to call (see `Tensor.overwrite`).
public final class ReLU: Layer {
    public let kind = "relu"
    public var name = "relu"
    private var cachedInput: Tensor?
    private var output = Tensor.empty, inputGradient = Tensor.empty
    public init() {}
    public func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] { inputShape }
    public func forward(_ input: Tensor, training: Bool, context: ExecutionContext) throws -> Tensor {
        cachedInput = nil
        leakyRelu(input, slope: 0, into: &output, context: context)
        cachedInput = input
        return output
    }
    public func backward(_ outputGradient: Tensor, context: ExecutionContext) throws -> Tensor {
        guard let x = cachedInput else { throw missingForward(self) }
        try checkGradientShape(self, outputGradient, expected: x.shape)
        try leakyReluBackward(outputGradient, input: x, slope: 0, into: &inputGradient, context: context)
        return inputGradient
    }
    public var specStatement: String { "relu" }
    public func releaseCaches() { cachedInput = nil }
}

public final class LeakyReLU: Layer {
    public let kind = "leakyrelu"
    public var name = "leakyrelu"
    public let slope: Float
    private var cachedInput: Tensor?
    private var output = Tensor.empty, inputGradient = Tensor.empty
    /// PyTorch's default slope is 0.01.
    public init(slope: Float = 0.01) { self.slope = slope }
    public func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] {
        guard slope.isFinite else { throw ShapeError.layer(name: name, message: "slope \(slope) is not finite") }
        return inputShape
    }
    public func forward(_ input: Tensor, training: Bool, context: ExecutionContext) throws -> Tensor {
        cachedInput = nil
        leakyRelu(input, slope: slope, into: &output, context: context)
        cachedInput = input
        return output
    }
    public func backward(_ outputGradient: Tensor, context: ExecutionContext) throws -> Tensor {
        guard let x = cachedInput else { throw missingForward(self) }
        try checkGradientShape(self, outputGradient, expected: x.shape)
        try leakyReluBackward(outputGradient, input: x, slope: slope, into: &inputGradient, context: context)
        return inputGradient
    }
    public var specStatement: String { "leakyrelu \(formatNumber(slope))" }
    public func releaseCaches() { cachedInput = nil }
}

public final class Sigmoid: Layer {
    public let kind = "sigmoid"
    public var name = "sigmoid"
    /// The output buffer doubles as the cache; `hasOutput` says whether it holds the last forward pass.
    private var output = Tensor.empty, inputGradient = Tensor.empty
    private var hasOutput = false
    public init() {}
    public func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] { inputShape }
    public func forward(_ input: Tensor, training: Bool, context: ExecutionContext) throws -> Tensor {
        sigmoid(input, into: &output, context: context)
        hasOutput = true
        return output
    }
    public func backward(_ outputGradient: Tensor, context: ExecutionContext) throws -> Tensor {
        guard hasOutput else { throw missingForward(self) }
        try checkGradientShape(self, outputGradient, expected: output.shape)
        try sigmoidBackward(outputGradient, output: output, into: &inputGradient, context: context)
        return inputGradient
    }
    public var specStatement: String { "sigmoid" }
    public func releaseCaches() { hasOutput = false }
}

public final class Tanh: Layer {
    public let kind = "tanh"
    public var name = "tanh"
    /// The output buffer doubles as the cache; `hasOutput` says whether it holds the last forward pass.
    private var output = Tensor.empty, inputGradient = Tensor.empty
    private var hasOutput = false
    public init() {}
    public func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] { inputShape }
    public func forward(_ input: Tensor, training: Bool, context: ExecutionContext) throws -> Tensor {
        tanh(input, into: &output, context: context)
        hasOutput = true
        return output
    }
    public func backward(_ outputGradient: Tensor, context: ExecutionContext) throws -> Tensor {
        guard hasOutput else { throw missingForward(self) }
        try checkGradientShape(self, outputGradient, expected: output.shape)
        try tanhBackward(outputGradient, output: output, into: &inputGradient, context: context)
        return inputGradient
    }
    public var specStatement: String { "tanh" }
    public func releaseCaches() { hasOutput = false }
}

/// Log-softmax over the features of each sample; pair it with the `nll` loss.
public final class LogSoftmax: Layer {
    public let kind = "logsoftmax"
    public var name = "logsoftmax"
    /// The output buffer doubles as the cache; `hasOutput` says whether it holds the last forward pass.
    private var output = Tensor.empty, inputGradient = Tensor.empty
    private var hasOutput = false
    public init() {}
    public func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] {
        guard inputShape.count == 1 else {
            throw ShapeError.layer(name: name, message: "needs a flat input of class scores, got \(formatShape(inputShape))")
        }
        return inputShape
    }
    public func forward(_ input: Tensor, training: Bool, context: ExecutionContext) throws -> Tensor {
        hasOutput = false
        try logSoftmax(input, into: &output)
        hasOutput = true
        return output
    }
    public func backward(_ outputGradient: Tensor, context: ExecutionContext) throws -> Tensor {
        guard hasOutput else { throw missingForward(self) }
        try checkGradientShape(self, outputGradient, expected: output.shape)
        try logSoftmaxBackward(outputGradient, output: output, into: &inputGradient)
        return inputGradient
    }
    public var specStatement: String { "logsoftmax" }
    public func releaseCaches() { hasOutput = false }
}

/// A number as the spec writes it: no trailing zeros.
func formatNumber(_ v: Float) -> String {
    if v == v.rounded() && abs(v) < 1e7 { return String(Int(v)) }
    return "\(v)"
}
