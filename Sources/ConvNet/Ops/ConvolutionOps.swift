/// 2-D convolution (cross-correlation, as in PyTorch): `y[n, o] = b[o] + sum_c w[o, c] * x[n, c]`.
///
/// - Parameters: input N x C x H x W, weight OC x C x KH x KW, bias OC.
/// - Returns: N x OC x OH x OW.
public func conv2d(
    _ input: Tensor, weight: Tensor, bias: Tensor, stride: (Int, Int) = (1, 1), padding: Padding = .valid,
    context: ExecutionContext = .default
) throws -> Tensor {
    let g = try convGeometry(input: input.shape, weight: weight.shape, stride: stride, padding: padding)
    guard bias.count == g.outChannels else {
        throw ShapeError.mismatch(operation: "conv2d", expected: "bias [\(g.outChannels)]", got: bias.shape)
    }
    var y = Tensor.empty
    conv2dForward(
        input, weight: weight, bias: bias, geometry: g,
        plan: ConvPlan(g, batch: input.batchSize, context: context, mode: .inference), workspace: ConvWorkspace(), into: &y)
    return y
}

/// The backward pass of `conv2d`: given dL/dy, returns dL/dx, dL/dw and dL/db.
public func conv2dBackward(
    _ outputGradient: Tensor, input: Tensor, weight: Tensor, stride: (Int, Int) = (1, 1),
    padding: Padding = .valid, context: ExecutionContext = .default
) throws -> ConvGradients {
    let g = try convGeometry(input: input.shape, weight: weight.shape, stride: stride, padding: padding)
    let expected = [input.shape[0], g.outChannels, g.outHeight, g.outWidth]
    guard outputGradient.shape == expected else {
        throw ShapeError.mismatch(
            operation: "conv2d backward", expected: "dL/dy of shape \(formatShape(expected))",
            got: outputGradient.shape)
    }
    var grads = ConvGradients.empty
    conv2dBackward(
        outputGradient, input: input, weight: weight, geometry: g,
        plan: ConvPlan(g, batch: input.batchSize, context: context), workspace: ConvWorkspace(), into: &grads)
    return grads
}

// MARK: - Running a plan
//
// `ConvPlan` picks each pass's kernel; `conv2dForward`, `conv2dBackward` and `conv2dBackwardThroughMaxPool`
// run what it picked. Each pins its tensors once, as the raw pointers of a `ConvPass`, and hands the pass
// to an executor: a flat function whose one `parallelFor` splits the batch (`ConvPlan.batchParts`): thread
// t takes samples [n*t/T, n*(t+1)/T) with its own scratch (a struct of named buffers per path in
// `ConvWorkspace`) and, in the backward pass, its own weight- and bias-gradient partials, summed in
// thread order at the end. Forward outputs and input gradients do not depend on the thread count; weight
// and bias gradients only through that fixed-order reduction, so a run is deterministic for a given
// thread count. The executors: `ConvolutionColumns.swift` (im2col + GEMM, the direct kernel, dot-product
// weight gradients), `ConvolutionImplicit.swift` (implicit GEMM), `ConvolutionWinograd.swift` (Winograd
// F(2x2, 3x3) forward, weight gradient and input gradient), `ConvPoolBackward.swift` (conv -> ReLU -> maxpool backward
// through the pooling's winners).

/// One convolution pass's tensors as raw pointers, with its geometry, plan and scratch: what an executor
/// runs on. Valid while the function that made it runs.
struct ConvPass {
    let geometry: ConvGeometry
    let plan: ConvPlan
    let workspace: ConvWorkspace
    /// Samples in the batch.
    let batch: Int
    /// The input (N x C x H x W) and the weight (OC x C x KH x KW).
    let x: UnsafePointer<Float>
    let w: UnsafePointer<Float>
    /// Forward: the bias, and the output (nil when each sample is pooled in cache instead).
    var bias: UnsafePointer<Float>? = nil
    var y: UnsafeMutablePointer<Float>? = nil
    /// Forward: apply ReLU to each sample's output while it is in cache; then pool it with `pool`.
    var fuseReLU = false
    var pool: FusedMaxPool? = nil
    /// Backward: dL/dy, and the output of a ReLU fused into the forward pass (its mask), or nil.
    var dy: UnsafePointer<Float>? = nil
    var reluOutput: UnsafePointer<Float>? = nil
    /// Backward: dL/dx (nil: not wanted), dL/dw and dL/db.
    var dx: UnsafeMutablePointer<Float>? = nil
    var dw: UnsafeMutablePointer<Float>? = nil
    var db: UnsafeMutablePointer<Float>? = nil

    var parts: Int { plan.batchParts }
    var context: ExecutionContext { plan.context }
    /// The most samples a thread takes.
    var samplesPerThread: Int { (batch &+ parts &- 1) / parts }
    /// The samples thread `t` takes.
    @inline(__always)
    func samples(_ t: Int) -> Range<Int> { (batch &* t / parts)..<(batch &* (t &+ 1) / parts) }
}

/// Forward convolution with a resolved geometry, as `plan` says; `workspace` keeps the scratch between
/// calls. With `fuseReLU`, each sample's output goes through ReLU while it is in cache (the same
/// arithmetic as `relu` on the whole output); with `pool`, each sample is then pooled from a per-thread
/// buffer and `output` is not written.
func conv2dForward(
    _ input: Tensor, weight: Tensor, bias: Tensor, geometry g: ConvGeometry, plan: ConvPlan, workspace: ConvWorkspace,
    fuseReLU: Bool = false, pool: FusedMaxPool? = nil, into output: inout Tensor
) {
    let n = input.batchSize
    // Every element is written: by the epilogue, bias then GEMM with beta 1, or the direct kernel.
    output.prepare(shape: pool == nil ? [n, g.outChannels, g.outHeight, g.outWidth] : [0])
    guard n > 0 else { return }
    if pool != nil {
        workspace.sampleOutput.reserve(plan.batchParts)
        for t in 0..<plan.batchParts { workspace.sampleOutput[t].reserve(g.outputSize) }
    }
    Tensor.withBaseAddresses(input, weight, bias) { x, w, b, _ in
        output.withUnsafeMutableBufferPointer { y in
            let pass = ConvPass(
                geometry: g, plan: plan, workspace: workspace, batch: n, x: x!, w: w!, bias: b,
                y: pool == nil ? y.baseAddress : nil, fuseReLU: fuseReLU, pool: pool)
            switch plan.forward {
            case .implicit: conv2dForwardImplicit(pass, implicit: workspace.plan(for: g))
            case .direct, .im2col: conv2dForwardColumns(pass)
            case .winograd:
                conv2dForwardWinograd(pass, winograd: workspace.winogradPlan(for: g, .forward, samplesPerThread: pass.samplesPerThread))
            }
        }
    }
}

/// Backward convolution with a resolved geometry, as `plan` says; `workspace` keeps the scratch between calls.
///
/// With `inputGradient == false` dL/dx is not computed (the returned `input` is an empty tensor): the
/// network's first layer during training, whose input gradient nobody reads.
///
/// `reluOutput`: the output of a ReLU fused into the forward pass (`fuseReLU`); `dy` is then dL/d of
/// that ReLU's output, and each sample's gradient goes through the ReLU's backward (the same arithmetic
/// as `reluBackward`) while it is in cache.
func conv2dBackward(
    _ dy: Tensor, input: Tensor, weight: Tensor, geometry g: ConvGeometry, plan: ConvPlan, workspace: ConvWorkspace,
    inputGradient: Bool = true, reluOutput: Tensor? = nil, into grads: inout ConvGradients
) {
    let n = input.batchSize
    var (dInput, dWeight, dBias) = grads.take()
    // The implicit path sums its partials into zeroed gradients; the column path's first sample and the
    // Winograd weight gradient write them. dL/dx: the implicit and Winograd input gradients and a
    // pointwise layer's GEMM write every element, col2im adds. The Winograd input gradient runs after the
    // weight gradient's executor, which then computes no dL/dx; after the Winograd weight gradient, a
    // col2im input gradient runs through the column executor without dW and db.
    let implicitWeight = plan.weightGradient == .implicit
    let winogradInput = inputGradient && plan.inputGradient == .winograd
    let adds = winogradInput ? false : implicitWeight ? plan.inputGradient != .implicit : !g.isPointwise
    dWeight.prepare(shape: weight.shape, zeroed: implicitWeight)
    dBias.prepare(shape: [g.outChannels], zeroed: implicitWeight)
    dInput.prepare(shape: inputGradient ? input.shape : [0], zeroed: adds)
    if n > 0 {
        Tensor.withBaseAddresses(input, weight, dy, reluOutput ?? .empty) { x, w, dyp, ry in
            Tensor.withMutableBaseAddresses(&dInput, &dWeight, &dBias) { dx, dw, db in
                let pass = ConvPass(
                    geometry: g, plan: plan, workspace: workspace, batch: n, x: x!, w: w!, dy: dyp, reluOutput: ry,
                    dx: inputGradient && !winogradInput ? dx : nil, dw: dw, db: db)
                switch plan.weightGradient {
                case .implicit: conv2dBackwardImplicit(pass, implicit: workspace.plan(for: g))
                case .dot, .gemm: conv2dBackwardColumns(pass)
                case .winograd:
                    var weight = pass
                    weight.dx = nil
                    let plan = workspace.winogradPlan(for: g, .forward, samplesPerThread: pass.samplesPerThread)
                    conv2dWeightGradientWinograd(weight, winograd: plan)
                    // A col2im input gradient: the column executor without dW and db.
                    if pass.dx != nil {
                        var input = pass
                        (input.dw, input.db) = (nil, nil)
                        conv2dBackwardColumns(input)
                    }
                }
                if winogradInput {
                    var input = pass
                    input.dx = dx
                    let plan = workspace.winogradPlan(for: g, .inputGradient, samplesPerThread: pass.samplesPerThread)
                    conv2dInputGradientWinograd(input, winograd: plan)
                }
            }
        }
    }
    grads = ConvGradients(input: dInput, weight: dWeight, bias: dBias)
}

/// A max pooling applied to each sample's output while it is in cache (conv -> ReLU -> maxpool forward
/// in one pass): the convolution's output is never stored, only the pooled values and their winners.
struct FusedMaxPool {
    /// The pooling's geometry (channels in = out = the convolution's filters).
    let geometry: ConvGeometry
    /// N x C x PH x PW pooled values, and per value the winner's offset in its OH x OW plane.
    let output: UnsafeMutablePointer<Float>
    let argmax: UnsafeMutablePointer<Int32>

    var sampleSize: Int { geometry.outChannels &* geometry.outputPixels }

    /// Pools one sample's output `ys` (OC x OH x OW) into sample `s` of the pooled output.
    @inline(__always)
    func pool(_ ys: UnsafePointer<Float>, sample s: Int, context: ExecutionContext) {
        PoolingKernels.maxForward(
            ys, planes: geometry.inChannels, geometry: geometry, output: output + s &* sampleSize,
            argmax: argmax + s &* sampleSize, context: context, threaded: false)
    }
}
