// The implicit-GEMM executors (`ConvPlan.Forward.implicit`, `ConvPlan.WeightGradient.implicit`): the
// batch split of `ConvPlan`; each sample is padded once into its thread's `ImplicitScratch` and runs
// through `ImplicitConvPlan`'s offset GEMMs. Weight-gradient partials are kept transposed per thread and
// summed in thread order.

/// The forward pass: the weight packed into panels once, then per sample pad, offset GEMM, epilogue.
func conv2dForwardImplicit(_ p: ConvPass, implicit plan: ImplicitConvPlan) {
    let g = p.geometry
    p.workspace.packedWeight.reserve(plan.forwardWeightCount)
    p.workspace.implicit.reserve(p.parts)
    for t in 0..<p.parts {
        p.workspace.implicit[t].paddedInput.reserve(plan.paddedInputCount)
        p.workspace.implicit[t].outputPanels.reserve(plan.forwardOutputCount)
    }
    let packed = p.workspace.packedWeight.pointer
    plan.packForwardWeight(p.w, into: packed)
    p.context.parallelFor(p.parts) { t in
        let padded = p.workspace.implicit[t].paddedInput.pointer
        let scratch = p.workspace.implicit[t].outputPanels.pointer
        for s in p.samples(t) {
            let ys = p.y.map { $0 + s &* g.outputSize } ?? p.workspace.sampleOutput[t].pointer
            plan.padInput(p.x + s &* g.inputSize, into: padded)
            plan.forward(level: p.context.kernelLevel, padded: padded, weight: packed, bias: p.bias!, relu: p.fuseReLU, scratch: scratch, output: ys)
            p.pool?.pool(ys, sample: s, context: p.context)
        }
    }
}

/// The weight gradient, and the input gradient implicitly (`.implicit`) or as W^T dL/dy + col2im
/// (`.col2im`). dW and db must start zeroed: the threads' partials are added to them in thread order.
func conv2dBackwardImplicit(_ p: ConvPass, implicit plan: ImplicitConvPlan) {
    let g = p.geometry
    let implicitInput = p.dx != nil && p.plan.inputGradient == .implicit
    let columnInput = p.dx != nil && !implicitInput
    if implicitInput {
        p.workspace.flippedWeight.reserve(plan.flippedWeightCount)
        plan.packFlippedWeight(p.w, into: p.workspace.flippedWeight.pointer)
    }
    p.workspace.implicit.reserve(p.parts)
    for t in 0..<p.parts {
        let scratch = p.workspace.implicit[t]
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
    p.context.parallelFor(p.parts) { t in
        let scratch = p.workspace.implicit[t]
        let range = p.samples(t)
        scratch.biasGradient.pointer.update(repeating: 0, count: g.outChannels)
        if range.isEmpty { scratch.weightGradient.pointer.update(repeating: 0, count: plan.weightGradientCount) }
        for s in range {
            implicitBackwardSample(p, plan, sample: s, scratch, first: s == range.lowerBound, implicitInput: implicitInput)
        }
    }
    // Fixed-order reduction of the per-thread partials.
    for t in 0..<p.parts {
        plan.addWeightGradient(p.workspace.implicit[t].weightGradient.pointer, to: p.dw!)
        Reduce.add(p.workspace.implicit[t].biasGradient.pointer, into: p.db!, count: g.outChannels)
    }
}

/// One sample: its weight-gradient partial (overwritten with `first`, else accumulated) and bias sums,
/// then dL/dx_s implicitly or through W^T dL/dy_s and col2im.
@inline(__always)
private func implicitBackwardSample(
    _ p: ConvPass, _ plan: ImplicitConvPlan, sample s: Int, _ scratch: ImplicitScratch, first: Bool, implicitInput: Bool
) {
    let g = p.geometry, level = p.context.kernelLevel
    let dys = p.dy! + s &* g.outputSize
    let mask = p.reluOutput.map { $0 + s &* g.outputSize }
    let padded = scratch.paddedInput.pointer, dyT = scratch.transposedGradient.pointer
    plan.padInput(p.x + s &* g.inputSize, into: padded)
    plan.transposeGradient(level: level, dys, reluOutput: mask, into: dyT, biasGradient: scratch.biasGradient.pointer)
    plan.accumulateWeightGradient(level: level, padded: padded, transposedGradient: dyT, into: scratch.weightGradient.pointer, accumulate: !first)
    guard let dx = p.dx else { return }
    let dxs = dx + s &* g.inputSize
    if implicitInput {
        plan.inputGradient(
            level: level, dys, reluOutput: mask, flippedWeight: p.workspace.flippedWeight.pointer,
            paddedGradient: scratch.paddedGradient.pointer, scratch: scratch.inputGradientPanels.pointer, output: dxs)
        return
    }
    // dcolumns = W^T (patch x OC) * dY_s (OC x P), then col2im.
    var source = dys
    if let mask {
        let masked = scratch.maskedGradient.pointer
        ElementwiseKernels.leakyReluBackward(dys, input: mask, masked, count: g.outputSize, slope: 0)
        source = UnsafePointer(masked)
    }
    let dcols = scratch.columnGradient.pointer
    Gemm.kernel(
        level: level, true, false, g.patchSize, g.outputPixels, g.outChannels, 1, p.w, g.patchSize, source, g.outputPixels, 0, dcols,
        g.outputPixels)
    ConvKernels.col2im(level: level, dcols, into: dxs, geometry: g)
}
