/// 2-D convolution layer: weight [out, in, kh, kw], bias [out], as PyTorch's `Conv2d`.
public final class Conv2D: Layer, ParameterGradientOnly {
    public let kind = "conv"
    public var name = "conv"
    public let filters: Int
    public let kernel: (height: Int, width: Int)
    public let stride: (height: Int, width: Int)
    public let padding: Padding
    public let weightInit: WeightInit?
    public let biasInit: BiasInit?

    public private(set) var weight: Parameter!
    public private(set) var bias: Parameter!
    public private(set) var geometry: ConvGeometry!
    /// The input of the last forward pass (backward rebuilds any column matrices from it).
    private var cachedInput: Tensor?
    private let workspace = ConvWorkspace()
    /// Reused from call to call (see `Tensor.overwrite`): the output, and dL/dinput between backward passes.
    private var output = Tensor.empty, inputGradient = Tensor.empty

    public init(
        filters: Int, kernel: (Int, Int), stride: (Int, Int) = (1, 1), padding: Padding = .valid,
        weightInit: WeightInit? = nil, biasInit: BiasInit? = nil
    ) {
        self.filters = filters
        self.kernel = (kernel.0, kernel.1)
        self.stride = (stride.0, stride.1)
        self.padding = padding
        self.weightInit = weightInit
        self.biasInit = biasInit
    }

    public convenience init(filters: Int, kernel: Int, stride: Int = 1, padding: Int = 0) {
        self.init(filters: filters, kernel: (kernel, kernel), stride: (stride, stride), padding: .symmetric(padding))
    }

    public func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] {
        guard inputShape.count == 3 else {
            throw ShapeError.layer(
                name: name, message: "needs a C x H x W input, got \(formatShape(inputShape)) (add no flatten before it)")
        }
        do {
            geometry = try ConvGeometry(
                inChannels: inputShape[0], inHeight: inputShape[1], inWidth: inputShape[2], outChannels: filters,
                kernelHeight: kernel.height, kernelWidth: kernel.width, strideH: stride.height, strideW: stride.width,
                padding: padding, operation: "layer \(name)")
        } catch let error as ValueError {
            throw ShapeError.layer(name: name, message: "input \(formatShape(inputShape)): \(error)")
        }
        let g = geometry!
        let fanIn = g.patchSize, fanOut = filters * g.kernelHeight * g.kernelWidth
        let w = (weightInit ?? context.weightInit).sample(
            count: filters * fanIn, fanIn: fanIn, fanOut: fanOut, random: &context.random)
        let b = (biasInit ?? context.biasInit).sample(count: filters, fanIn: fanIn, random: &context.random)
        weight = Parameter(name: "\(name).weight", value: try Tensor(shape: [filters, g.inChannels, g.kernelHeight, g.kernelWidth], scalars: w))
        bias = Parameter(name: "\(name).bias", value: try Tensor(shape: [filters], scalars: b))
        return [filters, g.outHeight, g.outWidth]
    }

    /// How this layer runs its passes on a batch of `batch` in `context` (see `ConvPlan`); `fusion`: the
    /// layers after it that its stage of `Sequential` runs fused with it (`ConvStage`).
    public func plan(batch: Int, context: ExecutionContext, mode: ConvPlan.Mode = .training, fusion: ConvPlan.Fusion = .none) -> ConvPlan {
        ConvPlan(geometry, batch: batch, context: context, mode: mode, fusion: fusion)
    }

    public func forward(_ input: Tensor, training: Bool, context: ExecutionContext) throws -> Tensor {
        // Drop last pass's references to `output` first, so its storage is reused.
        releaseCaches()
        conv2dForward(
            input, weight: weight.value, bias: bias.value, geometry: geometry,
            plan: plan(batch: input.batchSize, context: context), workspace: workspace, into: &output)
        cachedInput = input
        return output
    }

    public func backward(_ outputGradient: Tensor, context: ExecutionContext) throws -> Tensor {
        try runBackward(outputGradient, inputGradient: true, context: context)
    }

    func backwardParameters(_ outputGradient: Tensor, context: ExecutionContext) throws {
        _ = try runBackward(outputGradient, inputGradient: false, context: context)
    }

    /// The backward pass, writing into this layer's gradient buffers (the parameters' gradients and
    /// dL/dinput), handed over uniquely held so that their storage is reused; returns dL/dinput.
    private func runBackward(_ outputGradient: Tensor, inputGradient wanted: Bool, context: ExecutionContext) throws -> Tensor {
        guard let x = cachedInput else { throw missingForward(self) }
        try checkGradientShape(self, outputGradient, expected: [x.batchSize, filters, geometry.outHeight, geometry.outWidth])
        var grads = ConvGradients(input: inputGradient, weight: weight.gradient, bias: bias.gradient)
        inputGradient = .empty
        weight.gradient = .empty
        bias.gradient = .empty
        conv2dBackward(
            outputGradient, input: x, weight: weight.value, geometry: geometry,
            plan: plan(batch: x.batchSize, context: context), workspace: workspace, inputGradient: wanted, into: &grads)
        weight.gradient = grads.weight
        bias.gradient = grads.bias
        inputGradient = grads.input
        return inputGradient
    }

    public func releaseCaches() { cachedInput = nil }

    public var parameters: [Parameter] { [weight, bias].compactMap { $0 } }

    public var specStatement: String {
        var s = "conv \(filters) \(kernel.height)x\(kernel.width)"
        if stride != (1, 1) { s += stride.height == stride.width ? " stride \(stride.height)" : " stride \(stride.height)x\(stride.width)" }
        switch padding {
        case .same: s += " pad same"
        case .explicit(let t, let l, let b, let r):
            if t == l && l == b && b == r {
                if t != 0 { s += " pad \(t)" }
            } else {
                s += " pad \(t),\(l),\(b),\(r)"
            }
        }
        return s
    }
}
