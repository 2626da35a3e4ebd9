/// conv -> ReLU, or conv -> ReLU -> maxpool, run as one stage of `Sequential`: the ReLU is applied to each
/// sample while the convolution's output is in cache, and the pooling, where the plan says so, pools each
/// sample in cache (inference) and runs backward through its winners (`conv2dBackwardThroughMaxPool`).
///
/// The stage holds the convolution's parameters by reference (it writes their gradients, as the layer's
/// own backward would) and keeps everything its passes need in its own buffers and one `Cache`: the layers
/// keep their own `forward` and `backward` for callers that run them one by one, and share no state with
/// the stage. The plan (`ConvPlan`, made with the stage's `fusion`) decides the kernels and how the
/// pooling is fused. The outputs and gradients equal the layers' run in turn (the pooled backward up to
/// rounding), which FusionTests checks.
final class ConvStage {
    /// The layers' names, for errors.
    let convName: String, poolName: String?
    /// The convolution's geometry and parameters (the `Conv2D`'s own `Parameter` objects).
    let geometry: ConvGeometry
    let weight: Parameter, bias: Parameter
    /// The pooling's geometry; nil: conv -> ReLU.
    let pooling: ConvGeometry?
    var fusion: ConvPlan.Fusion { pooling == nil ? .relu : .reluMaxPool }

    /// What forward leaves for backward.
    private struct Cache {
        /// The stage's input.
        var input: Tensor
        /// The plan the forward pass ran.
        var plan: ConvPlan
        /// relu(conv(input)); nil when each sample was pooled in cache instead.
        var activation: Tensor?
        /// Whether `pooled` and `argmax` hold this pass's pooling (conv -> ReLU -> maxpool).
        var pooled: Bool
    }

    private var cache: Cache?
    private let workspace = ConvWorkspace()
    /// Reused from pass to pass (see `Tensor.overwrite`): the activation (the ReLU's output), the pooled
    /// output and its winners (per pooled value, the winner's offset in its plane), dL/d(activation) for
    /// the dense pooled backward, and dL/dinput.
    private var activation = Tensor.empty, pooledOutput = Tensor.empty, argmax: [Int32] = []
    private var activationGradient = Tensor.empty, inputGradient = Tensor.empty

    /// The stage of `conv` -> ReLU (-> `pool`), after the layers are built.
    init(_ conv: Conv2D, pool: MaxPool2D?) {
        convName = conv.name
        poolName = pool?.name
        geometry = conv.geometry
        weight = conv.weight
        bias = conv.bias
        pooling = pool?.geometry
    }

    func plan(batch: Int, context: ExecutionContext, mode: ConvPlan.Mode) -> ConvPlan {
        ConvPlan(geometry, batch: batch, context: context, mode: mode, fusion: fusion)
    }

    /// relu(conv(input)), pooled when the stage has a pooling.
    func forward(_ input: Tensor, training: Bool, context: ExecutionContext) -> Tensor {
        // Drop last pass's references to the buffers first, so their storage is reused.
        cache = nil
        let plan = plan(batch: input.batchSize, context: context, mode: training ? .training : .inference)
        guard let pooling else {
            conv2dForward(
                input, weight: weight.value, bias: bias.value, geometry: geometry, plan: plan, workspace: workspace,
                fuseReLU: true, into: &activation)
            cache = Cache(input: input, plan: plan, activation: activation, pooled: false)
            return activation
        }
        if plan.poolsInCache {
            poolInCache(input, plan: plan, pooling: pooling)
            cache = Cache(input: input, plan: plan, activation: nil, pooled: true)
        } else {
            conv2dForward(
                input, weight: weight.value, bias: bias.value, geometry: geometry, plan: plan, workspace: workspace,
                fuseReLU: true, into: &activation)
            maxPoolForward(activation, geometry: pooling, into: &pooledOutput, argmax: &argmax, context: context)
            cache = Cache(input: input, plan: plan, activation: activation, pooled: true)
        }
        return pooledOutput
    }

    /// The forward pass that pools each sample while it is in cache: the convolution's output is never stored.
    private func poolInCache(_ input: Tensor, plan: ConvPlan, pooling: ConvGeometry) {
        let n = input.batchSize
        resizeWinners(&argmax, to: n &* pooling.outputSize)
        pooledOutput.prepare(shape: [n, pooling.outChannels, pooling.outHeight, pooling.outWidth])
        var unused = Tensor.empty
        pooledOutput.withUnsafeMutableBufferPointer { out in
            argmax.withUnsafeMutableBufferPointer { a in
                let pool = FusedMaxPool(geometry: pooling, output: out.baseAddress!, argmax: a.baseAddress!)
                conv2dForward(
                    input, weight: weight.value, bias: bias.value, geometry: geometry, plan: plan, workspace: workspace,
                    fuseReLU: true, pool: pool, into: &unused)
            }
        }
    }

    /// dL/dinput from dL/d(the stage's output), writing the convolution's parameter gradients; with
    /// `inputGradient == false`, dL/dinput is skipped (an empty tensor is returned).
    func backward(_ outputGradient: Tensor, inputGradient wanted: Bool, context: ExecutionContext) throws -> Tensor {
        guard let cache else { throw missingForward(named: convName) }
        let x = cache.input, n = x.batchSize
        var grads = ConvGradients(input: inputGradient, weight: weight.gradient, bias: bias.gradient)
        inputGradient = .empty
        weight.gradient = .empty
        bias.gradient = .empty
        defer {
            weight.gradient = grads.weight
            bias.gradient = grads.bias
            inputGradient = grads.input
        }
        let plan = cache.plan
        if let pooling, cache.pooled {
            let expected = [n, pooling.outChannels, pooling.outHeight, pooling.outWidth]
            try checkGradientShape(named: poolName ?? convName, outputGradient, expected: expected)
            if plan.backwardThroughWinners {
                conv2dBackwardThroughMaxPool(
                    pooledGradient: outputGradient, argmax: argmax, pooledOutput: pooledOutput, input: x, weight: weight.value,
                    geometry: geometry, plan: plan, workspace: workspace, inputGradient: wanted, into: &grads)
                return grads.input
            }
            // The pooling's backward, then the ReLU's and the convolution's together.
            maxPoolBackward(
                outputGradient, argmax: argmax, inputShape: [n, geometry.outChannels, geometry.outHeight, geometry.outWidth],
                geometry: pooling, into: &activationGradient, context: context)
            conv2dBackward(
                activationGradient, input: x, weight: weight.value, geometry: geometry, plan: plan, workspace: workspace,
                inputGradient: wanted, reluOutput: cache.activation, into: &grads)
            return grads.input
        }
        let expected = [n, geometry.outChannels, geometry.outHeight, geometry.outWidth]
        try checkGradientShape(named: convName, outputGradient, expected: expected)
        conv2dBackward(
            outputGradient, input: x, weight: weight.value, geometry: geometry, plan: plan, workspace: workspace,
            inputGradient: wanted, reluOutput: cache.activation, into: &grads)
        return grads.input
    }

    /// Drops what forward cached (the input is the previous stage's buffer).
    func releaseCaches() { cache = nil }

    /// Whether a forward pass left what backward needs.
    var hasForward: Bool { cache != nil }
}
