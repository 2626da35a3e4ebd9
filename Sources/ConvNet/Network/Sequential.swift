/// Collects layers for `Sequential { ... }`.
@resultBuilder
public enum LayerBuilder {
    public static func buildExpression(_ layer: any Layer) -> [any Layer] { [layer] }
    public static func buildExpression(_ layers: [any Layer]) -> [any Layer] { layers }
    public static func buildBlock(_ parts: [any Layer]...) -> [any Layer] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [any Layer]?) -> [any Layer] { part ?? [] }
    public static func buildEither(first: [any Layer]) -> [any Layer] { first }
    public static func buildEither(second: [any Layer]) -> [any Layer] { second }
    public static func buildArray(_ parts: [[any Layer]]) -> [any Layer] { parts.flatMap { $0 } }
}

/// A chain of layers built for one input shape. Building names each layer (`conv1`, `relu1`, ...),
/// infers every shape, and draws the initial weights from the seed.
public final class Sequential {
    /// Shape of one input sample (C x H x W for images, F for features).
    public let inputShape: [Int]
    public let layers: [any Layer]
    /// Per-sample output shape of each layer.
    public let outputShapes: [[Int]]
    public let seed: UInt64
    /// The first layer with trainable parameters (nil when none has any).
    private let firstTrainable: Int?

    public init(
        inputShape: [Int], seed: UInt64 = 0, weightInit: WeightInit = .pytorchDefault,
        biasInit: BiasInit = .pytorchDefault, layers: [any Layer]
    ) throws {
        guard !inputShape.isEmpty, inputShape.allSatisfy({ $0 > 0 }) else {
            throw ShapeError.layer(name: "input", message: "input shape \(formatShape(inputShape)) must have positive sizes")
        }
        guard !layers.isEmpty else { throw SpecError(line: 0, statement: "", message: "the network has no layers") }
        AllocatorTuning.apply()
        self.inputShape = inputShape
        self.layers = layers
        self.seed = seed
        var context = BuildContext(weightInit: weightInit, biasInit: biasInit, seed: seed)
        var counts: [String: Int] = [:]
        var shape = inputShape
        var shapes: [[Int]] = []
        for layer in layers {
            counts[layer.kind, default: 0] += 1
            layer.name = "\(layer.kind)\(counts[layer.kind]!)"
            shape = try layer.build(inputShape: shape, context: &context)
            shapes.append(shape)
        }
        outputShapes = shapes
        firstTrainable = layers.firstIndex(where: { !$0.parameters.isEmpty })
    }

    public convenience init(
        inputShape: [Int], seed: UInt64 = 0, weightInit: WeightInit = .pytorchDefault,
        biasInit: BiasInit = .pytorchDefault, @LayerBuilder _ content: () -> [any Layer]
    ) throws {
        try self.init(inputShape: inputShape, seed: seed, weightInit: weightInit, biasInit: biasInit, layers: content())
    }

    /// Builds the network a text spec describes (see `NetworkSpec`). The spec's own `input` statement
    /// is used when `inputShape` is nil.
    public convenience init(
        spec: String, inputShape: [Int]? = nil, seed: UInt64 = 0, weightInit: WeightInit = .pytorchDefault,
        biasInit: BiasInit = .pytorchDefault
    ) throws {
        let parsed = try NetworkSpec.parse(spec)
        guard let shape = inputShape ?? parsed.inputShape else {
            throw SpecError(line: 0, statement: "", message: "no input shape: add a statement such as 'input 1x28x28'")
        }
        try self.init(inputShape: shape, seed: seed, weightInit: weightInit, biasInit: biasInit, layers: parsed.layers)
    }

    public var outputShape: [Int] { outputShapes.last ?? inputShape }

    /// Runs every layer; `training` turns on batch statistics and dropout and keeps the caches that
    /// `backward` needs.
    ///
    /// Buffers: each layer writes its output into a buffer it keeps (`Tensor.overwrite`), which the
    /// next layer's cache then shares. The pass starts by releasing every layer's caches from the last
    /// pass, so each buffer is uniquely held again (unless a caller kept a returned tensor) and is
    /// written in place; the returned output is the last layer's buffer.
    public func forward(_ input: Tensor, training: Bool = false) throws -> Tensor {
        guard input.rank == inputShape.count + 1, input.sampleShape == inputShape else {
            throw ShapeError.layer(
                name: "input",
                message: "expected a batch of \(formatShape(inputShape)) samples (N x \(formatShape(inputShape))), got \(formatShape(input.shape))")
        }
        releaseCaches()
        var x = input
        var index = 0
        while index < layers.count {
            // conv -> relu: the convolution applies the ReLU per sample while its output is in cache;
            // the ReLU layer keeps the cache its backward needs (its output).
            // conv -> relu -> maxpool in inference: each sample is pooled in cache too and the convolution's
            // output is never stored (tf-cnn +7%, lenet5 +4% images/s). In training it measured no faster
            // for tf-cnn and 5% slower for lenet5, so training keeps the ReLU's output.
            if pooledBackward, !training, let conv = layers[index] as? Conv2D, conv.canFuseMaxPool, index + 2 < layers.count,
                layers[index + 1] is ReLU, let pool = layers[index + 2] as? MaxPool2D
            {
                x = conv.forwardFusingReLUAndMaxPool(x, pool: pool)
                index += 3
                continue
            }
            if let conv = layers[index] as? Conv2D, index + 1 < layers.count, let relu = layers[index + 1] as? ReLU {
                x = conv.forwardFusingReLU(x)
                relu.adoptFusedOutput(x)
                index += 2
                continue
            }
            x = try layers[index].forward(x, training: training)
            index += 1
        }
        return x
    }

    /// The convolution whose last forward pass fused the ReLU at `index` (then the two run backward as one).
    private func fusedConvolution(beforeReLUAt index: Int) -> Conv2D? {
        guard index > 0, layers[index] is ReLU, let conv = layers[index - 1] as? Conv2D, conv.hasFusedReLU else { return nil }
        return conv
    }

    /// conv -> relu -> maxpool ending at `index`, when the three can run backward as one (the pooling's
    /// winners carry the whole gradient; see `Conv2D.backwardThroughReLUAndMaxPool`).
    private func pooledConvolution(endingAt index: Int) -> (conv: Conv2D, pool: MaxPool2D)? {
        guard index > 1, let pool = layers[index] as? MaxPool2D, let conv = fusedConvolution(beforeReLUAt: index - 1),
            conv.supportsPooledBackward, pooledBackward
        else { return nil }
        return (conv, pool)
    }

    /// Whether conv -> relu -> maxpool runs as one, forward (pooling each sample in cache) and backward
    /// (through the pooling's winners); on by default, off to compare with the layers run in turn.
    var pooledBackward = true

    /// Backpropagates dL/doutput through every layer, writing each parameter's gradient, and returns
    /// dL/dinput.
    @discardableResult
    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        var g = outputGradient
        var index = layers.count - 1
        while index >= 0 {
            if let (conv, pool) = pooledConvolution(endingAt: index) {
                g = try conv.backwardThroughReLUAndMaxPool(g, pool: pool)
                index -= 3
            } else if let conv = fusedConvolution(beforeReLUAt: index) {
                g = try conv.backwardThroughReLU(g)
                index -= 2
            } else {
                g = try layers[index].backward(g)
                index -= 1
            }
        }
        return g
    }

    /// Backpropagates dL/doutput like `backward` and writes the same parameter gradients, but skips
    /// dL/dinput where nobody reads it: the first trainable layer computes no input gradient, and the
    /// parameter-free layers before it are not run. What a training step needs.
    ///
    /// It ends the step's use of the forward pass: every layer's caches are released (a second
    /// backward pass needs a new forward pass), so the buffers they shared, the input batch included,
    /// are uniquely held again and the next step reuses them without allocating.
    public func backwardParameters(_ outputGradient: Tensor) throws {
        defer { releaseCaches() }
        guard let first = firstTrainable else { return }
        var g = outputGradient
        var index = layers.count - 1
        while index > first {
            if let (conv, pool) = pooledConvolution(endingAt: index) {
                // The first trainable layer's input gradient is not needed.
                if index - 2 == first {
                    _ = try conv.backwardThroughReLUAndMaxPool(g, pool: pool, inputGradient: false)
                    return
                }
                g = try conv.backwardThroughReLUAndMaxPool(g, pool: pool)
                index -= 3
            } else if let conv = fusedConvolution(beforeReLUAt: index) {
                // The first trainable layer's input gradient is not needed.
                if index - 1 == first {
                    _ = try conv.backwardThroughReLU(g, inputGradient: false)
                    return
                }
                g = try conv.backwardThroughReLU(g)
                index -= 2
            } else {
                g = try layers[index].backward(g)
                index -= 1
            }
        }
        if let layer = layers[first] as? any ParameterGradientOnly {
            try layer.backwardParameters(g)
        } else {
            _ = try layers[first].backward(g)
        }
    }

    /// Drops every layer's forward caches (see `Layer.releaseCaches`); `forward` and
    /// `backwardParameters` call it, a caller running its own loop over `backward` may too.
    public func releaseCaches() {
        for layer in layers { layer.releaseCaches() }
    }

    /// Every trainable parameter, in layer order.
    public var parameters: [Parameter] { layers.flatMap { $0.parameters } }
    /// Every saved but untrained tensor (batch-norm running statistics).
    public var buffers: [Parameter] { layers.flatMap { $0.buffers } }
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// The layers as a text spec, one statement per layer, separated by "; ".
    public var spec: String { layers.map(\.specStatement).joined(separator: "; ") }

    /// A table of each layer with its output shape and parameter count.
    public var summary: String {
        var rows: [(String, String, String, String)] = [("layer", "spec", "output", "parameters")]
        rows.append(("input", "", formatShape(inputShape), "0"))
        for (layer, shape) in zip(layers, outputShapes) {
            let count = layer.parameters.reduce(0) { $0 + $1.value.count }
            rows.append((layer.name, layer.specStatement, formatShape(shape), String(count)))
        }
        let widths = (0..<4).map { c in rows.map { [$0.0, $0.1, $0.2, $0.3][c].count }.max()! }
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: w - s.count) }
        var lines = rows.map { r in
            [pad(r.0, widths[0]), pad(r.1, widths[1]), pad(r.2, widths[2]), String(repeating: " ", count: widths[3] - r.3.count) + r.3]
                .joined(separator: "  ")
        }
        lines.insert(String(repeating: "-", count: lines[0].count), at: 1)
        lines.append("total parameters: \(parameterCount)")
        return lines.joined(separator: "\n")
    }
}
