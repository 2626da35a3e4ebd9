/// Elementwise activations. ReLU and leaky ReLU cache their input; sigmoid and tanh cache their
/// output, from which their derivative follows.
public final class ReLU: Layer {
    public let kind = "relu"
    public var name = "relu"
    private var cachedInput: Tensor?
    public init() {}
    public func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] { inputShape }
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor {
        cachedInput = input
        return relu(input)
    }
    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        guard let x = cachedInput else { throw missingForward(self) }
        try checkGradientShape(self, outputGradient, expected: x.shape)
        return try reluBackward(outputGradient, input: x)
    }
    public var specStatement: String { "relu" }

    /// Takes the cache of a forward pass that a convolution computed with this ReLU fused in: the
    /// ReLU's output, whose sign pattern (y > 0 exactly where x > 0, NaN included) is all that
    /// `backward` reads.
    func adoptFusedOutput(_ output: Tensor) { cachedInput = output }
}

public final class LeakyReLU: Layer {
    public let kind = "leakyrelu"
    public var name = "leakyrelu"
    public let slope: Float
    private var cachedInput: Tensor?
    /// PyTorch's default slope is 0.01.
    public init(slope: Float = 0.01) { self.slope = slope }
    public func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] {
        guard slope.isFinite else { throw ShapeError.layer(name: name, message: "slope \(slope) is not finite") }
        return inputShape
    }
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor {
        cachedInput = input
        return leakyRelu(input, slope: slope)
    }
    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        guard let x = cachedInput else { throw missingForward(self) }
        try checkGradientShape(self, outputGradient, expected: x.shape)
        return try leakyReluBackward(outputGradient, input: x, slope: slope)
    }
    public var specStatement: String { "leakyrelu \(formatNumber(slope))" }
}

public final class Sigmoid: Layer {
    public let kind = "sigmoid"
    public var name = "sigmoid"
    private var cachedOutput: Tensor?
    public init() {}
    public func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] { inputShape }
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor {
        let y = sigmoid(input)
        cachedOutput = y
        return y
    }
    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        guard let y = cachedOutput else { throw missingForward(self) }
        try checkGradientShape(self, outputGradient, expected: y.shape)
        return try sigmoidBackward(outputGradient, output: y)
    }
    public var specStatement: String { "sigmoid" }
}

public final class Tanh: Layer {
    public let kind = "tanh"
    public var name = "tanh"
    private var cachedOutput: Tensor?
    public init() {}
    public func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] { inputShape }
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor {
        let y = tanh(input)
        cachedOutput = y
        return y
    }
    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        guard let y = cachedOutput else { throw missingForward(self) }
        try checkGradientShape(self, outputGradient, expected: y.shape)
        return try tanhBackward(outputGradient, output: y)
    }
    public var specStatement: String { "tanh" }
}

/// Log-softmax over the features of each sample; pair it with the `nll` loss.
public final class LogSoftmax: Layer {
    public let kind = "logsoftmax"
    public var name = "logsoftmax"
    private var cachedOutput: Tensor?
    public init() {}
    public func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] {
        guard inputShape.count == 1 else {
            throw ShapeError.layer(name: name, message: "needs a flat input of class scores, got \(formatShape(inputShape))")
        }
        return inputShape
    }
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor {
        let y = try logSoftmax(input)
        cachedOutput = y
        return y
    }
    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        guard let y = cachedOutput else { throw missingForward(self) }
        try checkGradientShape(self, outputGradient, expected: y.shape)
        return try logSoftmaxBackward(outputGradient, output: y)
    }
    public var specStatement: String { "logsoftmax" }
}

/// A number as the spec writes it: no trailing zeros.
func formatNumber(_ v: Float) -> String {
    if v == v.rounded() && abs(v) < 1e7 { return String(Int(v)) }
    return "\(v)"
}
