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
    /// The output of the last forward pass when a following ReLU was fused into it (see `Sequential`).
    private var fusedReLUOutput: Tensor?
    /// The plan of the last forward pass when it pooled each sample in cache (`forwardFusingReLUAndMaxPool`).
    private var pooledInCachePlan: ConvPlan?
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

    /// How this layer runs its passes on a batch of `batch` with the current thread count (see `ConvPlan`).
    public func plan(batch: Int, mode: ConvPlan.Mode = .training) -> ConvPlan {
        ConvPlan(geometry, batch: batch, mode: mode)
    }

    public func forward(_ input: Tensor, training: Bool) throws -> Tensor {
        runForward(input, fuseReLU: false)
    }

    /// Forward pass with the following ReLU applied per sample while the output is in cache: returns
    /// relu(conv(input)), equal to the two layers run in turn. `backwardThroughReLU` then takes dL/d of
    /// the ReLU's output.
    func forwardFusingReLU(_ input: Tensor) -> Tensor {
        runForward(input, fuseReLU: true)
    }

    /// Forward pass through this convolution, the following ReLU and the max pooling `pool` in one pass:
    /// each sample is pooled while in cache and the convolution's output is never stored. Returns the
    /// pooling's output (and leaves `pool` ready for backward); `backwardThroughReLUAndMaxPool` follows,
    /// through the pooling's winners. Needs `plan(...).pooledBackward != .dense`.
    func forwardFusingReLUAndMaxPool(_ input: Tensor, pool: MaxPool2D) -> Tensor {
        releaseCaches()
        let plan = self.plan(batch: input.batchSize)
        let pooled = pool.forwardFused(batch: input.batchSize) { output, argmax, poolGeometry in
            conv2dForward(
                input, weight: weight.value, bias: bias.value, geometry: geometry, plan: plan, workspace: workspace,
                fuseReLU: true, pool: FusedMaxPool(geometry: poolGeometry, output: output, argmax: argmax),
                into: &self.output)
        }
        cachedInput = input
        pooledInCachePlan = plan
        return pooled
    }

    private func runForward(_ input: Tensor, fuseReLU: Bool) -> Tensor {
        // Drop last pass's references to `output` first, so its storage is reused.
        releaseCaches()
        conv2dForward(
            input, weight: weight.value, bias: bias.value, geometry: geometry, plan: plan(batch: input.batchSize),
            workspace: workspace, fuseReLU: fuseReLU, into: &output)
        cachedInput = input
        if fuseReLU { fusedReLUOutput = output }
        return output
    }

    /// Runs a backward pass that writes into this layer's gradient buffers (the parameters' gradients and
    /// dL/dinput), handed over uniquely held so that their storage is reused; returns dL/dinput.
    private func runBackward(_ body: (inout ConvGradients) -> Void) -> Tensor {
        var grads = ConvGradients(input: inputGradient, weight: weight.gradient, bias: bias.gradient)
        inputGradient = .empty
        weight.gradient = .empty
        bias.gradient = .empty
        body(&grads)
        weight.gradient = grads.weight
        bias.gradient = grads.bias
        inputGradient = grads.input
        return inputGradient
    }

    public func releaseCaches() {
        cachedInput = nil
        fusedReLUOutput = nil
        pooledInCachePlan = nil
    }

    /// True when the last forward pass applied the following ReLU and kept its output (`forwardFusingReLU`).
    var hasFusedReLU: Bool { fusedReLUOutput != nil }

    /// True when the last forward pass fused the following ReLU (and perhaps the max pooling after it), so
    /// that the fused backward passes apply; false after the layer's own `forward`.
    var hasFusedForward: Bool { fusedReLUOutput != nil || pooledInCachePlan != nil }

    /// Backward through the fused ReLU and this convolution: dL/dinput from dL/d(ReLU output), with the
    /// same parameter gradients as the two layers run in turn. `inputGradient == false` skips dL/dinput
    /// (returns an empty tensor).
    func backwardThroughReLU(_ outputGradient: Tensor, inputGradient: Bool = true) throws -> Tensor {
        guard let x = cachedInput, let y = fusedReLUOutput else { throw missingForward(self) }
        try checkGradientShape(self, outputGradient, expected: [x.batchSize, filters, geometry.outHeight, geometry.outWidth])
        return runBackward { grads in
            conv2dBackward(
                outputGradient, input: x, weight: weight.value, geometry: geometry, plan: plan(batch: x.batchSize),
                workspace: workspace, inputGradient: inputGradient, reluOutput: y, into: &grads)
        }
    }

    /// Backward through the fused ReLU and the max pooling `pool` that follows it, from dL/d(pooling
    /// output): the same gradients as the three layers run in turn. Where the plan says so (and always
    /// after `forwardFusingReLUAndMaxPool`, which stored no ReLU output) computed from the pooling's
    /// winners only (see `conv2dBackwardThroughMaxPool`); otherwise the pooling's backward, then
    /// `backwardThroughReLU`.
    func backwardThroughReLUAndMaxPool(_ pooledGradient: Tensor, pool: MaxPool2D, inputGradient: Bool = true) throws -> Tensor {
        guard let x = cachedInput else { throw missingForward(self) }
        let plan: ConvPlan
        if let pooledPlan = pooledInCachePlan {
            plan = pooledPlan
        } else if fusedReLUOutput != nil {
            plan = self.plan(batch: x.batchSize)
            if plan.pooledBackward == .dense {
                return try backwardThroughReLU(try pool.backward(pooledGradient), inputGradient: inputGradient)
            }
        } else {
            throw missingForward(self)
        }
        guard pooledGradient.rank == 4, pooledGradient.shape[0] == x.batchSize, pooledGradient.shape[1] == filters,
            pool.argmax.count == pooledGradient.count, pool.lastOutput.shape == pooledGradient.shape
        else {
            throw ShapeError.layer(
                name: pool.name,
                message: "dL/doutput has shape \(formatShape(pooledGradient.shape)), which does not match the last forward pass")
        }
        return runBackward { grads in
            conv2dBackwardThroughMaxPool(
                pooledGradient: pooledGradient, argmax: pool.argmax, pooledOutput: pool.lastOutput, input: x, weight: weight.value,
                geometry: geometry, plan: plan, workspace: workspace, inputGradient: inputGradient, into: &grads)
        }
    }

    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        guard let x = cachedInput else { throw missingForward(self) }
        try checkGradientShape(self, outputGradient, expected: [x.batchSize, filters, geometry.outHeight, geometry.outWidth])
        return runBackward { grads in
            conv2dBackward(
                outputGradient, input: x, weight: weight.value, geometry: geometry, plan: plan(batch: x.batchSize),
                workspace: workspace, into: &grads)
        }
    }

    public var parameters: [Parameter] { [weight, bias].compactMap { $0 } }

    func backwardParameters(_ outputGradient: Tensor) throws {
        guard let x = cachedInput else { throw missingForward(self) }
        try checkGradientShape(self, outputGradient, expected: [x.batchSize, filters, geometry.outHeight, geometry.outWidth])
        _ = runBackward { grads in
            conv2dBackward(
                outputGradient, input: x, weight: weight.value, geometry: geometry, plan: plan(batch: x.batchSize),
                workspace: workspace, inputGradient: false, into: &grads)
        }
    }

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
