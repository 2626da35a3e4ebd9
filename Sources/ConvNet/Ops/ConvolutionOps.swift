import CKernels
import Synchronization

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
    conv2dForward(input, weight: weight, bias: bias, geometry: g, workspace: ConvWorkspace(), into: &y)
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
    conv2dBackward(outputGradient, input: input, weight: weight, geometry: g, workspace: ConvWorkspace(), into: &grads)
    return grads
}

// MARK: - Fast paths
//
// Threads split the batch: thread t takes samples [n*t/T, n*(t+1)/T), with its own im2col buffer and,
// in the backward pass, its own weight and bias gradient accumulators, summed in thread order at the
// end. Inside a thread each sample is im2col + one single-threaded GEMM, the direct kernel, or the
// implicit GEMM (below); conv -> ReLU -> maxpool backward has its own path (ConvPoolBackward.swift).
// When the batch is smaller than the thread count, samples run one after another and the im2col
// path's GEMMs themselves are threaded.
// Forward outputs and input gradients do not depend on the thread count; weight and bias gradients
// depend only on it (fixed reduction order), so a run is deterministic for a given thread count.
// A 1x1, stride-1, unpadded convolution skips im2col (the input already is the column matrix).

/// How many threads split the batch (1: samples run in turn and the GEMMs are threaded instead).
/// Layers with very little work (tiny-cnn's 3-filter layer: ~0.1 ms a batch) stay on one thread, where
/// waking a second thread costs more than it saves.
@inline(__always)
func batchParts(_ n: Int, _ g: ConvGeometry) -> Int {
    let threads = Threading.threads
    if n &* g.outputSize &* g.patchSize < ConvTuning.minParallelMACs.load(ordering: .relaxed) { return 1 }
    return n >= threads ? threads : 1
}

enum ConvTuning {
    /// Multiply-adds of a whole-batch convolution below which the batch is not split across threads
    /// (tests set 0 to exercise the split on small shapes).
    static let minParallelMACs = Atomic<Int>(1 << 19)
    /// Patch sizes up to this compute the weight gradient by dot products of rows (`Gemm.dotNT`) instead
    /// of the packed GEMM: measured 40-70 vs 5-63 GFLOP/s for patches of 9 to 100 over 196 to 784 pixels
    /// (tiny-cnn, lenet5 and two-conv's first layers, tf-cnn's 10x10), while patches of 150 and more
    /// run faster through the GEMM.
    static let maxDotPatch = 128
    /// Which convolutions run as implicit GEMMs (`ImplicitConvPlan`): 0 where it measured faster
    /// (`usesImplicit`), 1 never, 2 wherever the geometry allows (tests).
    static let implicitMode = Atomic<Int>(0)
    /// Input channels from which the input gradient runs implicitly (see `usesImplicitInputGradient`).
    static let minImplicitInputChannels = Atomic<Int>(12)
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
            ys, planes: geometry.inChannels, geometry: geometry, output: output + s &* sampleSize,
            argmax: argmax + s &* sampleSize, threaded: false)
    }
}

/// Whether the forward pass (`forward`) or the backward pass (weight gradient, and the input gradient
/// per `usesImplicitInputGradient`) runs as an implicit GEMM: as `ConvTuning.implicitMode` says, by
/// default where that measured faster than the im2col or direct paths (1 thread, release):
/// multi-channel inputs (lenet5's second layer: training +22%; tf-cnn's: fwd and bwd 75 -> 175 GFLOP/s).
/// One-channel first layers keep the direct kernel and the dot-product weight gradient, except the
/// forward pass of large kernels with many filters (tf-cnn's 32 10x10: inference +4%; its weight
/// gradient ran 10% slower implicitly). Short reductions (25 and 9 taps) and few filters (a 16-wide
/// panel for 3 or 6 channels) lose.
@inline(__always)
private func usesImplicit(_ g: ConvGeometry, forward: Bool) -> Bool {
    switch ConvTuning.implicitMode.load(ordering: .relaxed) {
    case 1: return false
    case 2: return true
    default:
        if g.isPointwise { return false }
        if g.inChannels > 1 { return true }
        return forward && g.patchSize >= 64 && g.outChannels >= 16
    }
}

/// Input gradients that run implicitly (stride 1) rather than as W^T * dL/dy + col2im: enough input
/// channels to fill most of a 16-channel panel (tf-cnn's 32, two-conv's 50). lenet5's 6 would use
/// 6 of 16 columns and ran slower.
@inline(__always)
private func usesImplicitInputGradient(_ plan: ImplicitConvPlan) -> Bool {
    guard plan.hasInputGradient else { return false }
    switch ConvTuning.implicitMode.load(ordering: .relaxed) {
    case 2: return true
    default: return plan.geometry.inChannels >= ConvTuning.minImplicitInputChannels.load(ordering: .relaxed)
    }
}

/// Forward convolution with a resolved geometry; `workspace` keeps the column matrices between calls.
/// With `fuseReLU`, each sample's output goes through ReLU while it is in cache (the same arithmetic as
/// `relu` on the whole output).
func conv2dForward(
    _ input: Tensor, weight: Tensor, bias: Tensor, geometry g: ConvGeometry, workspace: ConvWorkspace,
    fuseReLU: Bool = false, pool: FusedMaxPool? = nil, into output: inout Tensor
) {
    let n = input.batchSize
    let parts = batchParts(n, g)
    if pool != nil {
        workspace.sampleOutput.reserve(parts)
        for t in 0..<parts { workspace.sampleOutput[t].reserve(g.outputSize) }
    }
    if usesImplicit(g, forward: true) {
        conv2dForwardImplicit(
            input, weight: weight, bias: bias, plan: workspace.plan(for: g), workspace: workspace, fuseReLU: fuseReLU,
            pool: pool, into: &output)
        return
    }
    if !g.isPointwise {
        let count = usesDirectForward(g)
            ? cn_conv_direct_c1_scratch(g.inHeight, g.inWidth, g.padTop, g.padLeft, g.padBottom, g.padRight)
            : g.patchSize &* g.outputPixels
        workspace.columns.reserve(parts)
        for t in 0..<parts { workspace.columns[t].columns.reserve(count) }
    }
    func run(_ y: UnsafeMutablePointer<Float>?) {
        input.withUnsafeBufferPointer { x in
            weight.withUnsafeBufferPointer { w in
                bias.withUnsafeBufferPointer { b in
                    let x = x.baseAddress!, w = w.baseAddress!, b = b.baseAddress!
                    Threading.parallelFor(parts) { t in
                        let cols = g.isPointwise ? nil : workspace.columns[t].columns.pointer
                        for s in (n &* t / parts)..<(n &* (t &+ 1) / parts) {
                            // With a fused pooling the sample goes to a per-thread buffer and is pooled from there.
                            let ys = y.map { $0 + s &* g.outputSize } ?? workspace.sampleOutput[t].pointer
                            convForwardSample(x, sample: s, w, b, ys, cols, g, threaded: parts == 1, relu: fuseReLU)
                            pool?.pool(ys, sample: s)
                        }
                    }
                }
            }
        }
    }
    if pool != nil {
        run(nil)
    } else {
        // Every element is written: bias then GEMM with beta 1, or the direct kernel.
        output.overwrite(shape: [n, g.outChannels, g.outHeight, g.outWidth]) { run($0.baseAddress!) }
    }
}

/// One input channel, stride 1: the forward pass runs as a direct convolution on a padded copy of
/// the sample (`cn_conv_direct_c1`), with no column matrix, where that measured faster than
/// im2col + GEMM: few filters (tiny-cnn's 3: +24% training img/s) or kernels of 25 taps and more
/// (lenet5's 5x5: +4%, tf-cnn's 10x10: +3%); two-conv's 50 filters 3x3 ran 1-3% slower, so keep the GEMM.
@inline(__always)
private func usesDirectForward(_ g: ConvGeometry) -> Bool {
    g.inChannels == 1 && g.strideH == 1 && g.strideW == 1 && !g.isPointwise
        && (g.outChannels <= 8 || g.kernelHeight &* g.kernelWidth >= 25)
}

/// y_s = bias + W (OC x patch) * columns(x_s) (patch x pixels), into `ys`.
@inline(__always)
private func convForwardSample(
    _ x: UnsafePointer<Float>, sample s: Int, _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
    _ ys: UnsafeMutablePointer<Float>, _ cols: UnsafeMutablePointer<Float>?, _ g: ConvGeometry, threaded: Bool,
    relu: Bool
) {
    let patch = g.patchSize, pixels = g.outputPixels
    let xs = x + s &* g.inputSize
    if usesDirectForward(g), let cols {
        cn_conv_direct_c1(
            xs, g.inHeight, g.inWidth, g.padTop, g.padLeft, g.padBottom, g.padRight, cols, g.kernelHeight,
            g.kernelWidth, g.outChannels, g.outHeight, g.outWidth, w, b, relu ? 1 : 0, ys)
        return
    }
    for o in 0..<g.outChannels {
        (ys + o &* pixels).initialize(repeating: b[o], count: pixels)
    }
    let columns: UnsafePointer<Float>
    if let cols {
        ConvKernels.im2col(xs, into: cols, geometry: g)
        columns = UnsafePointer(cols)
    } else {
        columns = xs
    }
    if threaded {
        Gemm.multiply(
            m: g.outChannels, n: pixels, k: patch, a: w, lda: patch, b: columns, ldb: pixels, beta: 1, c: ys,
            ldc: pixels)
    } else {
        Gemm.kernel(false, false, g.outChannels, pixels, patch, 1, w, patch, columns, pixels, 1, ys, pixels)
    }
    if relu { ElementwiseKernels.leakyRelu(ys, ys, count: g.outputSize, slope: 0) }
}

/// Backward convolution with a resolved geometry; `workspace` keeps column matrices and per-thread
/// gradient partials between calls.
///
/// With `inputGradient == false` dL/dx is not computed (the returned `input` is an empty tensor): the
/// network's first layer during training, whose input gradient nobody reads.
///
/// `reluOutput`: the output of a ReLU fused into the forward pass (`fuseReLU`); `dy` is then dL/d of
/// that ReLU's output, and each sample's gradient goes through the ReLU's backward (the same arithmetic
/// as `reluBackward`) into a per-thread buffer while it is in cache.
func conv2dBackward(
    _ dy: Tensor, input: Tensor, weight: Tensor, geometry g: ConvGeometry, workspace: ConvWorkspace,
    inputGradient: Bool = true, reluOutput: Tensor? = nil, into grads: inout ConvGradients
) {
    if usesImplicit(g, forward: false) {
        conv2dBackwardImplicit(
            dy, input: input, weight: weight, plan: workspace.plan(for: g), workspace: workspace,
            inputGradient: inputGradient, reluOutput: reluOutput, into: &grads)
        return
    }
    let n = input.batchSize
    let parts = batchParts(n, g)
    let patch = g.patchSize, pixels = g.outputPixels
    workspace.columns.reserve(parts)
    for t in 0..<parts {
        let scratch = workspace.columns[t]
        if !g.isPointwise {
            scratch.columns.reserve(patch &* pixels)
            if inputGradient { scratch.columnGradient.reserve(patch &* pixels) }
        }
        if reluOutput != nil { scratch.maskedGradient.reserve(g.outputSize) }
        if t > 0 {
            scratch.weightGradient.reserve(g.outChannels &* patch)
            scratch.biasGradient.reserve(g.outChannels)
        }
    }
    var (dInput, dWeight, dBias) = grads.take()
    let reluY = reluOutput ?? Tensor(shape: [0])
    let relu = reluOutput != nil
    reluY.withUnsafeBufferPointer { ry in
    input.withUnsafeBufferPointer { x in
        weight.withUnsafeBufferPointer { w in
            dy.withUnsafeBufferPointer { dyp in
                // dW and db: the first sample overwrites, the rest accumulate; col2im adds into dx.
                dWeight.overwrite(shape: weight.shape) { dw in
                    dBias.overwrite(shape: [g.outChannels]) { db in
                        dInput.overwrite(shape: inputGradient ? input.shape : [0], zeroed: !g.isPointwise) { dx in
                            let x = x.baseAddress!, w = w.baseAddress!, dyp = dyp.baseAddress!
                            let dw = dw.baseAddress!, db = db.baseAddress!
                            let dx: UnsafeMutablePointer<Float>? = inputGradient ? dx.baseAddress! : nil
                            let ry: UnsafePointer<Float>? = relu ? ry.baseAddress! : nil
                            if parts == 1 {
                                let scratch = workspace.columns[0]
                                let cols = g.isPointwise ? nil : scratch.columns.pointer
                                let dcols = g.isPointwise || !inputGradient ? nil : scratch.columnGradient.pointer
                                let masked = relu ? scratch.maskedGradient.pointer : nil
                                for s in 0..<n {
                                    convBackwardSample(
                                        x, dyp, w, sample: s, dw: dw, db: db, dx: dx, cols, dcols, g,
                                        first: s == 0, threaded: true, reluOutput: ry, masked: masked)
                                }
                            } else {
                                Threading.parallelFor(parts) { t in
                                    let scratch = workspace.columns[t]
                                    let cols = g.isPointwise ? nil : scratch.columns.pointer
                                    let dcols = g.isPointwise || !inputGradient ? nil : scratch.columnGradient.pointer
                                    let dwt = t == 0 ? dw : scratch.weightGradient.pointer
                                    let dbt = t == 0 ? db : scratch.biasGradient.pointer
                                    let masked = relu ? scratch.maskedGradient.pointer : nil
                                    let first = n &* t / parts
                                    for s in first..<(n &* (t &+ 1) / parts) {
                                        convBackwardSample(
                                            x, dyp, w, sample: s, dw: dwt, db: dbt, dx: dx, cols, dcols, g,
                                            first: s == first, threaded: false, reluOutput: ry, masked: masked)
                                    }
                                }
                                // Fixed-order reduction of the partial gradients.
                                for t in 1..<parts {
                                    Reduce.add(workspace.columns[t].weightGradient.pointer, into: dw, count: g.outChannels &* patch)
                                    Reduce.add(workspace.columns[t].biasGradient.pointer, into: db, count: g.outChannels)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    }
    grads = ConvGradients(input: dInput, weight: dWeight, bias: dBias)
}

/// One sample's backward pass: dW (+)= dY_s * columns^T, db (+)= row sums of dY_s,
/// dx_s = col2im(W^T * dY_s). With `first`, dW and db are overwritten instead of accumulated.
@inline(__always)
private func convBackwardSample(
    _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>, sample s: Int,
    dw: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>, dx: UnsafeMutablePointer<Float>?,
    _ cols: UnsafeMutablePointer<Float>?, _ dcols: UnsafeMutablePointer<Float>?, _ g: ConvGeometry,
    first: Bool, threaded: Bool, reluOutput: UnsafePointer<Float>?, masked: UnsafeMutablePointer<Float>?
) {
    let patch = g.patchSize, pixels = g.outputPixels, oc = g.outChannels
    let xs = x + s &* g.inputSize
    var dys = dy + s &* g.outputSize
    if let reluOutput, let masked {
        ElementwiseKernels.leakyReluBackward(dys, input: reluOutput + s &* g.outputSize, masked, count: g.outputSize, slope: 0)
        dys = UnsafePointer(masked)
    }
    if first { db.update(repeating: 0, count: oc) }
    Reduce.addRowSums(dys, rows: oc, columns: pixels, into: db)
    let columns: UnsafePointer<Float>
    if let cols {
        ConvKernels.im2col(xs, into: cols, geometry: g)
        columns = UnsafePointer(cols)
    } else {
        columns = xs
    }
    let beta: Float = first ? 0 : 1
    // dW (+)= dY_s (OC x P) * columns^T (P x patch); dcolumns = W^T (patch x OC) * dY_s (OC x P).
    if patch <= ConvTuning.maxDotPatch {
        Gemm.dotNT(m: oc, n: patch, k: pixels, a: dys, lda: pixels, b: columns, ldb: pixels, accumulate: !first, c: dw, ldc: patch)
    } else if threaded {
        Gemm.multiply(
            transB: true, m: oc, n: patch, k: pixels, a: dys, lda: pixels, b: columns, ldb: pixels, beta: beta,
            c: dw, ldc: patch)
    } else {
        Gemm.kernel(false, true, oc, patch, pixels, 1, dys, pixels, columns, pixels, beta, dw, patch)
    }
    guard let dx else { return }
    let dxs = dx + s &* g.inputSize
    let dcolumns = dcols ?? dxs
    if threaded {
        Gemm.multiply(
            transA: true, m: patch, n: pixels, k: oc, a: w, lda: patch, b: dys, ldb: pixels, beta: 0,
            c: dcolumns, ldc: pixels)
    } else {
        Gemm.kernel(true, false, patch, pixels, oc, 1, w, patch, dys, pixels, 0, dcolumns, pixels)
    }
    if let dcols {
        ConvKernels.col2im(dcols, into: dxs, geometry: g)
    }
}

// MARK: - Implicit GEMM
//
// The same batch split as above; each sample is padded once into a per-thread buffer and runs through
// `ImplicitConvPlan`'s offset GEMMs. Weight-gradient partials are kept transposed per thread and
// summed in thread order.

private func conv2dForwardImplicit(
    _ input: Tensor, weight: Tensor, bias: Tensor, plan: ImplicitConvPlan, workspace: ConvWorkspace, fuseReLU: Bool,
    pool: FusedMaxPool?, into output: inout Tensor
) {
    let g = plan.geometry
    let n = input.batchSize
    let parts = batchParts(n, g)
    workspace.packedWeight.reserve(plan.forwardWeightCount)
    workspace.implicit.reserve(parts)
    for t in 0..<parts {
        workspace.implicit[t].paddedInput.reserve(plan.paddedInputCount)
        workspace.implicit[t].outputPanels.reserve(plan.forwardOutputCount)
    }
    let packed = workspace.packedWeight.pointer
    weight.withUnsafeBufferPointer { plan.packForwardWeight($0.baseAddress!, into: packed) }
    func run(_ y: UnsafeMutablePointer<Float>?) {
        input.withUnsafeBufferPointer { x in
            bias.withUnsafeBufferPointer { b in
                let x = x.baseAddress!, b = b.baseAddress!, w = UnsafePointer(packed)
                Threading.parallelFor(parts) { t in
                    let padded = workspace.implicit[t].paddedInput.pointer
                    let scratch = workspace.implicit[t].outputPanels.pointer
                    for s in (n &* t / parts)..<(n &* (t &+ 1) / parts) {
                        let ys = y.map { $0 + s &* g.outputSize } ?? workspace.sampleOutput[t].pointer
                        plan.padInput(x + s &* g.inputSize, into: padded)
                        plan.forward(padded: padded, weight: w, bias: b, relu: fuseReLU, scratch: scratch, output: ys)
                        pool?.pool(ys, sample: s)
                    }
                }
            }
        }
    }
    if pool != nil {
        run(nil)
    } else {
        // Every element is written by the epilogue.
        output.overwrite(shape: [n, g.outChannels, g.outHeight, g.outWidth]) { run($0.baseAddress!) }
    }
}

private func conv2dBackwardImplicit(
    _ dy: Tensor, input: Tensor, weight: Tensor, plan: ImplicitConvPlan, workspace: ConvWorkspace,
    inputGradient: Bool, reluOutput: Tensor?, into grads: inout ConvGradients
) {
    let g = plan.geometry
    let n = input.batchSize
    let parts = batchParts(n, g)
    let implicitInput = inputGradient && usesImplicitInputGradient(plan)
    let columnInput = inputGradient && !implicitInput
    if implicitInput { workspace.flippedWeight.reserve(plan.flippedWeightCount) }
    workspace.implicit.reserve(parts)
    for t in 0..<parts {
        let scratch = workspace.implicit[t]
        scratch.paddedInput.reserve(plan.paddedInputCount)
        scratch.transposedGradient.reserve(plan.transposedGradientCount)
        scratch.weightGradient.reserve(plan.weightGradientCount)
        scratch.biasGradient.reserve(g.outChannels)
        if implicitInput {
            scratch.paddedGradient.reserve(plan.paddedGradientCount)
            scratch.inputGradientPanels.reserve(plan.inputGradientCount)
        }
        if columnInput {
            scratch.maskedGradient.reserve(g.outputSize)
            scratch.columnGradient.reserve(g.patchSize &* g.outputPixels)
        }
    }
    let flipped = workspace.flippedWeight.pointer
    if implicitInput {
        weight.withUnsafeBufferPointer { plan.packFlippedWeight($0.baseAddress!, into: flipped) }
    }
    var (dInput, dWeight, dBias) = grads.take()
    let reluY = reluOutput ?? Tensor(shape: [0])
    reluY.withUnsafeBufferPointer { ry in
        input.withUnsafeBufferPointer { x in
            weight.withUnsafeBufferPointer { w in
                dy.withUnsafeBufferPointer { dyp in
                    // The implicit input gradient writes every element; col2im adds.
                    dInput.overwrite(shape: inputGradient ? input.shape : [0], zeroed: columnInput) { dx in
                        let x = x.baseAddress!, w = w.baseAddress!, dyp = dyp.baseAddress!
                        let dx = inputGradient ? dx.baseAddress : nil
                        let ry = reluOutput != nil ? ry.baseAddress : nil
                        let flippedWeight = UnsafePointer(flipped)
                        Threading.parallelFor(parts) { t in
                            let scratch = workspace.implicit[t]
                            let padded = scratch.paddedInput.pointer
                            let dyT = scratch.transposedGradient.pointer
                            let dwT = scratch.weightGradient.pointer
                            let db = scratch.biasGradient.pointer
                            db.update(repeating: 0, count: g.outChannels)
                            let first = n &* t / parts, end = n &* (t &+ 1) / parts
                            if first == end { dwT.update(repeating: 0, count: plan.weightGradientCount) }
                            for s in first..<end {
                                let dys = dyp + s &* g.outputSize
                                let mask = ry.map { $0 + s &* g.outputSize }
                                plan.padInput(x + s &* g.inputSize, into: padded)
                                plan.transposeGradient(dys, reluOutput: mask, into: dyT, biasGradient: db)
                                plan.accumulateWeightGradient(
                                    padded: padded, transposedGradient: dyT, into: dwT, accumulate: s != first)
                                guard let dx else { continue }
                                let dxs = dx + s &* g.inputSize
                                if implicitInput {
                                    plan.inputGradient(
                                        dys, reluOutput: mask, flippedWeight: flippedWeight,
                                        paddedGradient: scratch.paddedGradient.pointer,
                                        scratch: scratch.inputGradientPanels.pointer, output: dxs)
                                } else {
                                    // dcolumns = W^T (patch x OC) * dY_s (OC x P), then col2im.
                                    var source = dys
                                    if let mask {
                                        let masked = scratch.maskedGradient.pointer
                                        ElementwiseKernels.leakyReluBackward(dys, input: mask, masked, count: g.outputSize, slope: 0)
                                        source = UnsafePointer(masked)
                                    }
                                    let dcols = scratch.columnGradient.pointer
                                    Gemm.kernel(
                                        true, false, g.patchSize, g.outputPixels, g.outChannels, 1, w, g.patchSize, source,
                                        g.outputPixels, 0, dcols, g.outputPixels)
                                    ConvKernels.col2im(dcols, into: dxs, geometry: g)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    // Fixed-order reduction of the per-thread partials.
    dWeight.overwrite(shape: weight.shape, zeroed: true) { dw in
        dBias.overwrite(shape: [g.outChannels], zeroed: true) { db in
            for t in 0..<parts {
                plan.addWeightGradient(workspace.implicit[t].weightGradient.pointer, to: dw.baseAddress!)
                Reduce.add(workspace.implicit[t].biasGradient.pointer, into: db.baseAddress!, count: g.outChannels)
            }
        }
    }
    grads = ConvGradients(input: dInput, weight: dWeight, bias: dBias)
}

/// Small reductions shared by several ops.
enum Reduce {
    /// `out[i] += v[i]` for `count` elements.
    static func add(_ v: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { out[i] += v[i] }
    }

    /// `out[r] += sum_c m[r, c]` for a rows x columns matrix.
    /// Eight interleaved partial sums per row (a fixed order, so results are deterministic), which
    /// breaks the add-latency chain of a single running sum.
    static func addRowSums(_ m: UnsafePointer<Float>, rows: Int, columns: Int, into out: UnsafeMutablePointer<Float>) {
        let raw = UnsafeRawPointer(m)
        let vectorEnd = columns & ~7
        for r in 0..<rows {
            let rowOffset = r &* columns
            var acc = SIMD8<Float>()
            var c = 0
            while c < vectorEnd {
                acc += raw.loadUnaligned(fromByteOffset: (rowOffset &+ c) &* 4, as: SIMD8<Float>.self)
                c &+= 8
            }
            var s = acc.sum()
            while c < columns {
                s += m[rowOffset &+ c]
                c &+= 1
            }
            out[r] += s
        }
    }

    /// `out[c] += sum_r m[r, c]` for a rows x columns matrix.
    static func addColumnSums(_ m: UnsafePointer<Float>, rows: Int, columns: Int, into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let row = m + r &* columns
            for c in 0..<columns { out[c] += row[c] }
        }
    }
}
