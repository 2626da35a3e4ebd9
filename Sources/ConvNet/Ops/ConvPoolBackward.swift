import CKernels

// MARK: - conv -> ReLU -> max pooling, backward through the pooling's winners
//
// Max pooling sends dL/dpool to one position per window and the ReLU zeroes the non-positive ones,
// so the convolution's dL/dy is mostly zeros (at least 3/4 for 2x2 pooling). This pass never builds
// it: per sample, the nonzero entries are listed per output channel (`cn_pool_entries`), and the
// weight and input gradients add one kernel-sized patch per entry (CKernels/sparse.c). The same
// gradients as `maxPoolBackward`, `reluBackward` and `conv2dBackward` in turn, up to rounding (sums
// run over windows instead of pixels). Same batch split and fixed-order reduction as the other paths.

/// Gradients of conv -> ReLU -> max pooling from dL/dpool: `pooledGradient` (N x OC x PH x PW), the
/// pooling's `argmax` (per pooled value, the winner's offset in its OH x OW plane) and its output
/// `pooledOutput` (N x OC x PH x PW): the ReLU's output at each winner, so its mask (read in order,
/// rather than at the winners' scattered positions in the ReLU's whole output).
/// Needs `plan.pooledBackward != .dense`.
func conv2dBackwardThroughMaxPool(
    pooledGradient: Tensor, argmax: [Int32], pooledOutput: Tensor, input: Tensor, weight: Tensor, geometry g: ConvGeometry,
    plan convPlan: ConvPlan, workspace: ConvWorkspace, inputGradient: Bool, into grads: inout ConvGradients
) {
    let plan = workspace.plan(for: g)
    let lanes = convPlan.pooledBackward.lanes!
    let n = input.batchSize
    let parts = convPlan.batchParts
    let rows = g.inChannels &* g.kernelHeight
    let pooled = pooledGradient.count / max(1, n &* g.outChannels)
    let planes = g.inChannels &* plan.paddedHeight &* plan.paddedWidth
    workspace.paddedWeight.reserve(g.outChannels &* rows &* lanes)
    workspace.pooled.reserve(parts)
    for t in 0..<parts {
        let scratch = workspace.pooled[t]
        scratch.paddedInput.reserve(planes &+ lanes)
        scratch.reserveEntries(outChannels: g.outChannels, pooled: pooled)
        scratch.weightGradient.reserve(g.outChannels &* rows &* lanes)
        scratch.biasGradient.reserve(g.outChannels)
        if inputGradient { scratch.paddedGradient.reserve(planes &+ lanes) }
    }
    let paddedWeight = workspace.paddedWeight.pointer
    if inputGradient {
        weight.withUnsafeBufferPointer {
            cn_pad_kernel_rows($0.baseAddress!, g.outChannels &* rows, g.kernelWidth, lanes, paddedWeight)
        }
    }
    var (dInput, dWeight, dBias) = grads.take()
    pooledOutput.withUnsafeBufferPointer { pv in
    input.withUnsafeBufferPointer { x in
    pooledGradient.withUnsafeBufferPointer { dp in
    argmax.withUnsafeBufferPointer { am in
    plan.kernelRowOffsets.withUnsafeBufferPointer { rowOffsets in
    plan.pixelOffsets.withUnsafeBufferPointer { pixelOffsets in
    dInput.overwrite(shape: inputGradient ? input.shape : [0]) { dx in  // every element: cn_crop_planes
        let x = x.baseAddress!, dp = dp.baseAddress!, am = am.baseAddress!, pv = pv.baseAddress!
        let rowOffsets = rowOffsets.baseAddress!, pixelOffsets = pixelOffsets.baseAddress!
        let dx = inputGradient ? dx.baseAddress : nil
        Threading.parallelFor(parts) { t in
            let scratch = workspace.pooled[t]
            let padded = scratch.paddedInput.pointer
            let list = UnsafeMutableRawPointer(scratch.entries.pointer)
            let dw = scratch.weightGradient.pointer
            let db = scratch.biasGradient.pointer
            dw.update(repeating: 0, count: g.outChannels &* rows &* lanes)
            db.update(repeating: 0, count: g.outChannels)
            for s in (n &* t / parts)..<(n &* (t &+ 1) / parts) {
                let pooledOffset = s &* g.outChannels &* pooled
                cn_pool_entries(
                    dp + pooledOffset, am + pooledOffset, pv + pooledOffset, g.outChannels, pooled, pixelOffsets, list,
                    db)
                plan.padInput(x + s &* g.inputSize, into: padded)
                cn_sparse_weight_gradient(
                    Int32(Gemm.kernelLevel.rawValue), padded, rowOffsets, rows, lanes, list, g.outChannels, dw)
                guard let dx else { continue }
                let paddedGradient = scratch.paddedGradient.pointer
                paddedGradient.update(repeating: 0, count: planes)
                cn_sparse_input_gradient(
                    Int32(Gemm.kernelLevel.rawValue), paddedGradient, rowOffsets, rows, lanes, list, g.outChannels, paddedWeight)
                cn_crop_planes(
                    paddedGradient, g.inChannels, plan.paddedHeight, plan.paddedWidth, g.padTop, g.padLeft, g.inHeight,
                    g.inWidth, dx + s &* g.inputSize)
            }
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
                cn_unpad_kernel_rows(
                    workspace.pooled[t].weightGradient.pointer, g.outChannels &* rows, g.kernelWidth, lanes,
                    dw.baseAddress!)
                Reduce.add(workspace.pooled[t].biasGradient.pointer, into: db.baseAddress!, count: g.outChannels)
            }
        }
    }
    grads = ConvGradients(input: dInput, weight: dWeight, bias: dBias)
}
