/// A named tensor that training updates, with the gradient its layer's backward pass wrote.
public final class Parameter {
    /// Full name in PyTorch's style: `conv1.weight`, `dense2.bias`, `bn1.running_mean`.
    public var name: String
    public var value: Tensor
    public var gradient: Tensor

    public init(name: String, value: Tensor) {
        self.name = name
        self.value = value
        self.gradient = Tensor(shape: value.shape)
    }
}

/// What a layer needs to create its parameters once its input shape is known.
public struct BuildContext {
    /// Weight initialiser for layers that do not name their own.
    public var weightInit: WeightInit
    /// Bias initialiser for layers that do not name their own.
    public var biasInit: BiasInit
    /// The network's random generator: every draw during building comes from it, in layer order.
    public var random: SeededGenerator

    public init(weightInit: WeightInit = .pytorchDefault, biasInit: BiasInit = .pytorchDefault, seed: UInt64 = 0) {
        self.weightInit = weightInit
        self.biasInit = biasInit
        self.random = SeededGenerator(seed: seed)
    }
}

/// One step of a network: a forward pass that caches what its backward pass needs, and a backward
/// pass that writes parameter gradients and returns dL/dinput.
///
/// Shapes given to `build` and returned by it are per sample (no batch dimension); tensors passed to
/// `forward` and `backward` carry the batch first.
///
/// Buffers: a layer keeps its output and its input gradient in stored tensors that it refills with
/// `Tensor.overwrite` on every call, and writes its parameters' `gradient` in place the same way. The
/// tensors it returns share that storage, so a caller that keeps one makes the next call copy (value
/// semantics hold either way); in a training step nobody keeps them and nothing is allocated. Its
/// caches (the input it saw, a mask) keep the previous layer's buffer shared until `releaseCaches`.
public protocol Layer: AnyObject {
    /// The layer's keyword in the text spec (`conv`, `relu`, ...), also the stem of its default name.
    var kind: String { get }
    /// Unique name in its network (`conv1`); parameter names start with it.
    var name: String { get set }
    /// Checks the input shape, creates parameters, and returns the output shape.
    func build(inputShape: [Int], context: inout BuildContext) throws -> [Int]
    /// The output for `input`; `context` says how the kernels run (threads, kernel level, forced paths).
    func forward(_ input: Tensor, training: Bool, context: ExecutionContext) throws -> Tensor
    /// dL/dinput from dL/doutput, after writing the parameters' gradients.
    func backward(_ outputGradient: Tensor, context: ExecutionContext) throws -> Tensor
    /// Trainable parameters, in a fixed order.
    var parameters: [Parameter] { get }
    /// State saved with the weights but not trained (batch-norm running statistics).
    var buffers: [Parameter] { get }
    /// This layer as one statement of the text spec.
    var specStatement: String { get }
    /// Drops what `forward` cached for `backward` (the input it saw, which is the previous layer's
    /// output buffer), so that buffer is uniquely held again and the next forward pass can write it in
    /// place. `backward` throws until the next `forward`. Kept: the layer's own buffers.
    func releaseCaches()
}

extension Layer {
    /// `forward` in the default context (every core, the CPU's preferred kernels).
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor {
        try forward(input, training: training, context: .default)
    }

    /// `backward` in the default context.
    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        try backward(outputGradient, context: .default)
    }

    public var parameters: [Parameter] { [] }
    public var buffers: [Parameter] { [] }
    /// Layers that cache nothing have nothing to release.
    public func releaseCaches() {}
}

/// A layer that can write its parameter gradients without computing dL/dinput, for the first
/// trainable layer of a network during training, whose input gradient nobody reads.
protocol ParameterGradientOnly: Layer {
    /// Writes the same parameter gradients as `backward`, and skips dL/dinput.
    func backwardParameters(_ outputGradient: Tensor, context: ExecutionContext) throws
}

/// Errors a layer (or a stage of layers, named by its first) raises when used out of order.
func missingForward(_ layer: any Layer) -> ShapeError { missingForward(named: layer.name) }

func missingForward(named name: String) -> ShapeError {
    .layer(name: name, message: "backward called before forward (nothing cached)")
}

func checkGradientShape(_ layer: any Layer, _ gradient: Tensor, expected: [Int]) throws {
    try checkGradientShape(named: layer.name, gradient, expected: expected)
}

func checkGradientShape(named name: String, _ gradient: Tensor, expected: [Int]) throws {
    guard gradient.shape == expected else {
        throw ShapeError.layer(
            name: name, message: "dL/doutput has shape \(formatShape(gradient.shape)), expected \(formatShape(expected))")
    }
}
