import CKernels

// The implicit-GEMM executors (`ConvPlan.Forward.implicit`, `ConvPlan.WeightGradient.implicit`): the
// batch split of `ConvPlan`; each sample is padded once into its thread's `ImplicitScratch` and runs
// through `ImplicitConvPlan`'s offset GEMMs. Weight-gradient partials are kept transposed per thread and
// summed in thread order.

func conv2dForwardImplicit(
    _ input: Tensor, weight: Tensor, bias: Tensor, implicit plan: ImplicitConvPlan, plan convPlan: ConvPlan,
    workspace: ConvWorkspace, fuseReLU: Bool, pool: FusedMaxPool?, into output: inout Tensor
) {
    let g = plan.geometry
    let n = input.batchSize
    let parts = convPlan.batchParts
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
                        plan.forward(
                            level: Gemm.kernelLevel, padded: padded, weight: w, bias: b, relu: fuseReLU, scratch: scratch, output: ys)
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

/// The weight gradient, and the input gradient implicitly (`.implicit`) or as W^T dL/dy + col2im (`.col2im`).
func conv2dBackwardImplicit(
    _ dy: Tensor, input: Tensor, weight: Tensor, implicit plan: ImplicitConvPlan, plan convPlan: ConvPlan,
    workspace: ConvWorkspace, inputGradient: Bool, reluOutput: Tensor?, into grads: inout ConvGradients
) {
    let g = plan.geometry
    let n = input.batchSize
    let parts = convPlan.batchParts
    let implicitInput = inputGradient && convPlan.inputGradient == .implicit
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
                                plan.transposeGradient(
                                    level: Gemm.kernelLevel, dys, reluOutput: mask, into: dyT, biasGradient: db)
                                plan.accumulateWeightGradient(
                                    level: Gemm.kernelLevel,
                                    padded: padded, transposedGradient: dyT, into: dwT, accumulate: s != first)
                                guard let dx else { continue }
                                let dxs = dx + s &* g.inputSize
                                if implicitInput {
                                    plan.inputGradient(
                                        level: Gemm.kernelLevel,
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
                                        level: Gemm.kernelLevel,
                                        true, false, g.patchSize, g.outputPixels, g.outChannels, 1, w, g.patchSize, source,
                                        g.outputPixels, 0, dcols, g.outputPixels)
                                    ConvKernels.col2im(level: Gemm.kernelLevel, dcols, into: dxs, geometry: g)
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
