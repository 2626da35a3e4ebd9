/// Fully connected layer: weight [out, in], bias [out], as PyTorch's `Linear`. Accepts any input
/// whose per-sample size is `in` (a 1 x 14 x 14 image feeds a 196-input layer directly).
public final class Dense: Layer, ParameterGradientOnly {
    public let kind = "dense"
    public var name = "dense"
    public let units: Int
    public let weightInit: WeightInit?
    public let biasInit: BiasInit?
    public private(set) var weight: Parameter!
    public private(set) var bias: Parameter!
    private var inputFeatures = 0
    /// The input of the last training forward pass (the previous layer's output), until `releaseCaches`.
    private var cachedInput: Tensor?
    /// Reused from call to call (see `Tensor.overwrite`).
    private var output = Tensor.empty, inputGradient = Tensor.empty

    public init(units: Int, weightInit: WeightInit? = nil, biasInit: BiasInit? = nil) {
        self.units = units
        self.weightInit = weightInit
        self.biasInit = biasInit
    }

    public func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] {
        guard units > 0 else { throw ShapeError.layer(name: name, message: "needs a positive number of units, got \(units)") }
        inputFeatures = inputShape.reduce(1, *)
        guard inputFeatures > 0 else { throw ShapeError.layer(name: name, message: "input \(formatShape(inputShape)) is empty") }
        let w = (weightInit ?? context.weightInit).sample(
            count: units * inputFeatures, fanIn: inputFeatures, fanOut: units, random: &context.random)
        let b = (biasInit ?? context.biasInit).sample(count: units, fanIn: inputFeatures, random: &context.random)
        weight = Parameter(name: "\(name).weight", value: try Tensor(shape: [units, inputFeatures], scalars: w))
        bias = Parameter(name: "\(name).bias", value: try Tensor(shape: [units], scalars: b))
        return [units]
    }

    public func forward(_ input: Tensor, training: Bool, context: ExecutionContext) throws -> Tensor {
        cachedInput = nil
        let flat = try input.reshaped([input.batchSize, inputFeatures])
        try dense(flat, weight: weight.value, bias: bias.value, into: &output, context: context)
        cachedInput = input
        return output
    }

    public func backward(_ outputGradient: Tensor, context: ExecutionContext) throws -> Tensor {
        try backwardParameters(outputGradient, context: context)
        try denseInputGradient(outputGradient, input: cachedInput!, weight: weight.value, into: &inputGradient, context: context)
        return inputGradient
    }

    public var parameters: [Parameter] { [weight, bias].compactMap { $0 } }
    public var specStatement: String { "dense \(units)" }
    public func releaseCaches() { cachedInput = nil }

    /// Writes dL/dW and dL/db into the parameters' `gradient` in place.
    func backwardParameters(_ outputGradient: Tensor, context: ExecutionContext) throws {
        guard let x = cachedInput else { throw missingForward(self) }
        try checkGradientShape(self, outputGradient, expected: [x.batchSize, units])
        try denseParameterGradients(
            outputGradient, input: x, weight: weight.value, weightGradient: &weight.gradient, biasGradient: &bias.gradient,
            context: context)
    }
}

/// Reshapes C x H x W to C*H*W; its backward restores the shape.
public final class Flatten: Layer {
    public let kind = "flatten"
    public var name = "flatten"
    private var inputShape: [Int] = []
    public init() {}

    public func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] {
        self.inputShape = inputShape
        return [inputShape.reduce(1, *)]
    }

    public func forward(_ input: Tensor, training: Bool, context: ExecutionContext) throws -> Tensor {
        try input.reshaped([input.batchSize, inputShape.reduce(1, *)])
    }

    public func backward(_ outputGradient: Tensor, context: ExecutionContext) throws -> Tensor {
        try outputGradient.reshaped([outputGradient.batchSize] + inputShape)
    }

    public var specStatement: String { "flatten" }
}
