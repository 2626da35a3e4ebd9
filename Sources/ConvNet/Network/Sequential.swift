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
    /// What `forward` and `backward` run, in order: the layers, with conv -> ReLU (-> maxpool) as one stage.
    let stages: [Stage]
    /// The stage of the first layer with trainable parameters (nil when none has any).
    private let firstTrainableStage: Int?

    /// What the network needs in memory (see `NetworkMemory`).
    public let memory: NetworkMemory
    /// What `forward` may use: a batch whose buffers (`memory`) would not fit is refused before anything
    /// is allocated for it. Building checks the weights against it, and one sample's inference.
    public var memoryBudget: MemoryBudget
    /// How the passes run: threads, kernel level, forced convolution paths (see `ExecutionContext`). Each
    /// network has its own, so two networks can run at once with different settings.
    public var context: ExecutionContext
    /// The last batch that `forward` found within the budget (size, training), so it checks once per size.
    private var checkedBatch: (size: Int, training: Bool, budget: MemoryBudget)?

    public init(
        inputShape: [Int], seed: UInt64 = 0, weightInit: WeightInit = .pytorchDefault,
        biasInit: BiasInit = .pytorchDefault, memoryBudget: MemoryBudget = .machine, context: ExecutionContext = .default,
        layers: [any Layer]
    ) throws {
        guard !inputShape.isEmpty, inputShape.allSatisfy({ $0 > 0 }) else {
            throw ShapeError.layer(name: "input", message: "input shape \(formatShape(inputShape)) must have positive sizes")
        }
        guard !layers.isEmpty else { throw SpecError(line: 0, statement: "", message: "the network has no layers") }
        AllocatorTuning.apply()
        self.inputShape = inputShape
        self.layers = layers
        self.seed = seed
        self.context = context
        var build = BuildContext(weightInit: weightInit, biasInit: biasInit, seed: seed)
        var counts: [String: Int] = [:]
        var shape = inputShape
        var shapes: [[Int]] = []
        var entries: [NetworkMemory.Entry] = []
        var parameterBytes = 0
        for layer in layers {
            counts[layer.kind, default: 0] += 1
            layer.name = "\(layer.kind)\(counts[layer.kind]!)"
            // A layer's weights (value and gradient) are checked against the budget before it creates them.
            if let count = NetworkMemory.parametersBeforeBuild(layer, input: shape) {
                let need = CheckedSize.sum([parameterBytes, CheckedSize.product([count, 8])])
                try memoryBudget.check(need, for: "building layer \(layer.name) (\(layer.specStatement)) with \(counted(count, "parameter"))"
                                       + " on a \(formatShape(shape)) input", advice: "use a smaller network")
            }
            let input = shape
            shape = try layer.build(inputShape: shape, context: &build)
            shapes.append(shape)
            let count = (layer.parameters + layer.buffers).reduce(0) { $0 &+ $1.value.count }
            parameterBytes = parameterBytes &+ count &* 8
            entries.append(NetworkMemory.entry(for: layer, input: input, output: shape, parameters: count))
        }
        outputShapes = shapes
        memory = NetworkMemory(entries: entries, inputBytes: (CheckedSize.product(inputShape) ?? Int.max / 8) &* 4,
                               lossBytes: (CheckedSize.product(shape) ?? Int.max / 8) &* 8)
        self.memoryBudget = memoryBudget
        try memory.check(batch: 1, training: false, budget: memoryBudget)
        let stages = Stage.compile(layers)
        self.stages = stages
        let firstTrainable = layers.firstIndex(where: { !$0.parameters.isEmpty })
        firstTrainableStage = firstTrainable.flatMap { i in stages.firstIndex { $0.layers.contains(i) } }
    }

    public convenience init(
        inputShape: [Int], seed: UInt64 = 0, weightInit: WeightInit = .pytorchDefault,
        biasInit: BiasInit = .pytorchDefault, memoryBudget: MemoryBudget = .machine, context: ExecutionContext = .default,
        @LayerBuilder _ content: () -> [any Layer]
    ) throws {
        try self.init(
            inputShape: inputShape, seed: seed, weightInit: weightInit, biasInit: biasInit, memoryBudget: memoryBudget,
            context: context, layers: content())
    }

    /// Builds the network a text spec describes (see `NetworkSpec`). The spec's own `input` statement
    /// is used when `inputShape` is nil.
    public convenience init(
        spec: String, inputShape: [Int]? = nil, seed: UInt64 = 0, weightInit: WeightInit = .pytorchDefault,
        biasInit: BiasInit = .pytorchDefault, memoryBudget: MemoryBudget = .machine, context: ExecutionContext = .default
    ) throws {
        let parsed = try NetworkSpec.parse(spec)
        guard let shape = inputShape ?? parsed.inputShape else {
            throw SpecError(line: 0, statement: "", message: "no input shape: add a statement such as 'input 1x28x28'")
        }
        try self.init(
            inputShape: shape, seed: seed, weightInit: weightInit, biasInit: biasInit, memoryBudget: memoryBudget,
            context: context, layers: parsed.layers)
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
        try checkMemory(batch: input.batchSize, training: training)
        releaseCaches()
        var x = input
        for stage in stages {
            switch stage.kind {
            case .layer(let layer): x = try layer.forward(x, training: training, context: context)
            case .conv(let conv, _): x = conv.forward(x, training: training, context: context)
            }
        }
        return x
    }

    /// Backpropagates dL/doutput through every layer, writing each parameter's gradient, and returns
    /// dL/dinput.
    @discardableResult
    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        var g = outputGradient
        for stage in stages.reversed() { g = try stage.backward(g, inputGradient: true, context: context) }
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
        guard let first = firstTrainableStage else { return }
        var g = outputGradient
        for s in stages.indices[first...].reversed() { g = try stages[s].backward(g, inputGradient: s != first, context: context) }
    }

    /// Throws `MemoryBudgetError` when a batch of `batch` samples would not fit `memoryBudget` (plus
    /// `optimizerSlots` state tensors per parameter, for a training run's check before its first step).
    public func checkMemory(batch: Int, training: Bool, optimizerSlots: Int = 0) throws(MemoryBudgetError) {
        if optimizerSlots == 0, let c = checkedBatch, c.size == batch, c.training == training, c.budget == memoryBudget { return }
        try memory.check(batch: batch, training: training, optimizerSlots: optimizerSlots, budget: memoryBudget)
        if optimizerSlots == 0 { checkedBatch = (batch, training, memoryBudget) }
    }

    /// Drops every layer's forward caches (see `Layer.releaseCaches`); `forward` and
    /// `backwardParameters` call it, a caller running its own loop over `backward` may too.
    public func releaseCaches() {
        for layer in layers { layer.releaseCaches() }
        for stage in stages { if case .conv(let conv, _) = stage.kind { conv.releaseCaches() } }
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

/// A step of `Sequential`'s passes: one layer, or conv -> ReLU (-> maxpool) run as one `ConvStage`
/// (compiled once, when the network is built).
struct Stage {
    enum Kind {
        /// A layer on its own: its own `forward` and `backward`.
        case layer(any Layer)
        /// conv -> ReLU, or conv -> ReLU -> maxpool (see `ConvStage`), and those layers.
        case conv(ConvStage, [any Layer])
    }

    let kind: Kind
    /// The indices of its layers in `Sequential.layers`.
    let layers: Range<Int>

    static func compile(_ layers: [any Layer]) -> [Stage] {
        var stages: [Stage] = []
        var i = 0
        while i < layers.count {
            if let conv = layers[i] as? Conv2D, i + 1 < layers.count, layers[i + 1] is ReLU {
                let pool = i + 2 < layers.count ? layers[i + 2] as? MaxPool2D : nil
                let count = pool == nil ? 2 : 3
                stages.append(Stage(kind: .conv(ConvStage(conv, pool: pool), Array(layers[i..<(i + count)])), layers: i..<(i + count)))
                i += count
                continue
            }
            stages.append(Stage(kind: .layer(layers[i]), layers: i..<(i + 1)))
            i += 1
        }
        return stages
    }

    /// dL/dinput of the stage from dL/doutput, writing its parameters' gradients; with `inputGradient ==
    /// false`, a layer that can skip dL/dinput does (the returned tensor is then not meaningful).
    func backward(_ g: Tensor, inputGradient: Bool, context: ExecutionContext) throws -> Tensor {
        switch kind {
        case .layer(let layer):
            return try Self.backwardInTurn([layer], g, inputGradient: inputGradient, context: context)
        case .conv(let conv, let layers):
            // After a caller ran the layers' own forward passes instead of the network's, their own backward.
            guard conv.hasForward else { return try Self.backwardInTurn(layers, g, inputGradient: inputGradient, context: context) }
            return try conv.backward(g, inputGradient: inputGradient, context: context)
        }
    }

    /// The layers' own backward passes in turn; with `inputGradient == false` the first skips dL/dinput
    /// where it can (the returned tensor is then empty).
    private static func backwardInTurn(_ layers: [any Layer], _ g: Tensor, inputGradient: Bool, context: ExecutionContext) throws -> Tensor {
        var g = g
        for (i, layer) in layers.enumerated().reversed() {
            if i == 0, !inputGradient, let layer = layer as? any ParameterGradientOnly {
                try layer.backwardParameters(g, context: context)
                return .empty
            }
            g = try layer.backward(g, context: context)
        }
        return g
    }
}
