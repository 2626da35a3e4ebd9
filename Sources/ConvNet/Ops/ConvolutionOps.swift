import CKernels

/// Gradients of a convolution with respect to its input, weight and bias.
public struct ConvGradients: Sendable {
    public var input: Tensor
    public var weight: Tensor
    public var bias: Tensor

    /// No storage yet: the buffers a layer passes to the backward pass on its first call.
    static var empty: ConvGradients { ConvGradients(input: .empty, weight: .empty, bias: .empty) }

    /// Moves the tensors out (leaving empty ones), so that their storage is uniquely held by the caller
    /// and `Tensor.overwrite` reuses it.
    mutating func take() -> (input: Tensor, weight: Tensor, bias: Tensor) {
        defer { self = .empty }
        return (input, weight, bias)
    }
}

/// Resolves the geometry of a convolution of `input` (N x C x H x W) with `weight` (OC x C x KH x KW).
public func convGeometry(
    input: [Int], weight: [Int], stride: (Int, Int) = (1, 1), padding: Padding = .valid,
    operation: String = "conv2d"
) throws -> ConvGeometry {
    guard input.count == 4 else {
        throw ShapeError.mismatch(operation: operation, expected: "an N x C x H x W input", got: input)
    }
    guard weight.count == 4, weight[1] == input[1] else {
        throw ShapeError.mismatch(
            operation: operation, expected: "weight [out, \(input[1]), kh, kw] for \(input[1]) input channels",
            got: weight)
    }
    return try ConvGeometry(
        inChannels: input[1], inHeight: input[2], inWidth: input[3], outChannels: weight[0],
        kernelHeight: weight[2], kernelWidth: weight[3], strideH: stride.0, strideW: stride.1,
        padding: padding, operation: operation)
}

/// 2-D convolution (cross-correlation, as in PyTorch): `y[n, o] = b[o] + sum_c w[o, c] * x[n, c]`.
///
/// - Parameters: input N x C x H x W, weight OC x C x KH x KW, bias OC.
/// - Returns: N x OC x OH x OW.
public func conv2d(
    _ input: Tensor, weight: Tensor, bias: Tensor, stride: (Int, Int) = (1, 1), padding: Padding = .valid
) throws -> Tensor {
    let g = try convGeometry(input: input.shape, weight: weight.shape, stride: stride, padding: padding)
    guard bias.count == g.outChannels else {
        throw ShapeError.mismatch(operation: "conv2d", expected: "bias [\(g.outChannels)]", got: bias.shape)
    }
    var y = Tensor.empty
    conv2dForward(
        input, weight: weight, bias: bias, geometry: g, plan: ConvPlan(g, batch: input.batchSize, mode: .inference),
        workspace: ConvWorkspace(), into: &y)
    return y
}

/// The backward pass of `conv2d`: given dL/dy, returns dL/dx, dL/dw and dL/db.
public func conv2dBackward(
    _ outputGradient: Tensor, input: Tensor, weight: Tensor, stride: (Int, Int) = (1, 1),
    padding: Padding = .valid
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
        outputGradient, input: input, weight: weight, geometry: g, plan: ConvPlan(g, batch: input.batchSize),
        workspace: ConvWorkspace(), into: &grads)
    return grads
}

// MARK: - Executors
//
// `ConvPlan` picks each pass's kernel; these two functions run what it picked. Threads split the batch
// (`ConvPlan.batchParts`): thread t takes samples [n*t/T, n*(t+1)/T) with its own scratch (a struct of
// named buffers per path in `ConvWorkspace`) and, in the backward pass, its own weight- and
// bias-gradient partials, summed in thread order at the end. Forward outputs and input gradients do not
// depend on the thread count; weight and bias gradients only through that fixed-order reduction, so a
// run is deterministic for a given thread count. The executors: `ConvolutionColumns.swift` (im2col +
// GEMM, the direct kernel, dot-product weight gradients), `ConvolutionImplicit.swift` (implicit GEMM),
// `ConvPoolBackward.swift` (conv -> ReLU -> maxpool backward through the pooling's winners).

/// Forward convolution with a resolved geometry, as `plan` says; `workspace` keeps the scratch between
/// calls. With `fuseReLU`, each sample's output goes through ReLU while it is in cache (the same
/// arithmetic as `relu` on the whole output); with `pool`, each sample is then pooled from a per-thread
/// buffer and `output` is not written.
func conv2dForward(
    _ input: Tensor, weight: Tensor, bias: Tensor, geometry g: ConvGeometry, plan: ConvPlan, workspace: ConvWorkspace,
    fuseReLU: Bool = false, pool: FusedMaxPool? = nil, into output: inout Tensor
) {
    if pool != nil {
        workspace.sampleOutput.reserve(plan.batchParts)
        for t in 0..<plan.batchParts { workspace.sampleOutput[t].reserve(g.outputSize) }
    }
    switch plan.forward {
    case .implicit:
        conv2dForwardImplicit(
            input, weight: weight, bias: bias, implicit: workspace.plan(for: g), plan: plan, workspace: workspace,
            fuseReLU: fuseReLU, pool: pool, into: &output)
    case .direct, .im2col:
        conv2dForwardColumns(
            input, weight: weight, bias: bias, geometry: g, plan: plan, workspace: workspace, fuseReLU: fuseReLU,
            pool: pool, into: &output)
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
    switch plan.weightGradient {
    case .implicit:
        conv2dBackwardImplicit(
            dy, input: input, weight: weight, implicit: workspace.plan(for: g), plan: plan, workspace: workspace,
            inputGradient: inputGradient, reluOutput: reluOutput, into: &grads)
    case .dot, .gemm:
        conv2dBackwardColumns(
            dy, input: input, weight: weight, geometry: g, plan: plan, workspace: workspace,
            inputGradient: inputGradient, reluOutput: reluOutput, into: &grads)
    }
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
    func pool(_ ys: UnsafePointer<Float>, sample s: Int) {
        PoolingKernels.maxForward(
            level: Gemm.kernelLevel,
            ys, planes: geometry.inChannels, geometry: geometry, output: output + s &* sampleSize,
            argmax: argmax + s &* sampleSize, threaded: false)
    }
}
