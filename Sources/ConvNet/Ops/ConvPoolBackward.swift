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
    plan: ConvPlan, workspace: ConvWorkspace, inputGradient: Bool, into grads: inout ConvGradients
) {
    let n = input.batchSize
    var (dInput, dWeight, dBias) = grads.take()
    // dL/dx: every element is written (cn_crop_planes); dW and db: the threads' partials are added.
    dInput.prepare(shape: inputGradient ? input.shape : [0])
    dWeight.prepare(shape: weight.shape, zeroed: true)
    dBias.prepare(shape: [g.outChannels], zeroed: true)
    if n > 0 {
        Tensor.withBaseAddresses(input, weight, pooledGradient, pooledOutput) { x, w, dp, pv in
            Tensor.withMutableBaseAddresses(&dInput, &dWeight, &dBias) { dx, dw, db in
                let pass = ConvPass(
                    geometry: g, plan: plan, workspace: workspace, batch: n, x: x!, w: w!, dy: dp, reluOutput: pv,
                    dx: inputGradient ? dx : nil, dw: dw, db: db)
                argmax.withUnsafeBufferPointer { pooledBackward(pass, argmax: $0.baseAddress!, pooled: pooledGradient.count / (n &* g.outChannels)) }
            }
        }
    }
    grads = ConvGradients(input: dInput, weight: dWeight, bias: dBias)
}

/// The executor: `p.dy` is dL/dpool, `p.reluOutput` the pooled output, `pooled` the pooled values per
/// channel of a sample.
private func pooledBackward(_ p: ConvPass, argmax: UnsafePointer<Int32>, pooled: Int) {
    let g = p.geometry, plan = p.workspace.plan(for: g)
    let lanes = p.plan.pooledBackward.lanes!
    let rows = g.inChannels &* g.kernelHeight
    let planes = g.inChannels &* plan.paddedHeight &* plan.paddedWidth
    let workspace = p.workspace, level = Int32(p.context.kernelLevel.rawValue)
    workspace.paddedWeight.reserve(g.outChannels &* rows &* lanes)
    workspace.pooled.reserve(p.parts)
    for t in 0..<p.parts {
        let scratch = workspace.pooled[t]
        scratch.paddedInput.reserve(planes &+ lanes)
        scratch.reserveEntries(outChannels: g.outChannels, pooled: pooled)
        scratch.weightGradient.reserve(g.outChannels &* rows &* lanes)
        scratch.biasGradient.reserve(g.outChannels)
        if p.dx != nil { scratch.paddedGradient.reserve(planes &+ lanes) }
    }
    let paddedWeight = workspace.paddedWeight.pointer
    if p.dx != nil { cn_pad_kernel_rows(p.w, g.outChannels &* rows, g.kernelWidth, lanes, paddedWeight) }
    plan.withOffsetTables { rowOffsets, pixelOffsets in
        p.context.parallelFor(p.parts) { t in
            let scratch = workspace.pooled[t]
            let padded = scratch.paddedInput.pointer
            let list = UnsafeMutableRawPointer(scratch.entries.pointer)
            let dw = scratch.weightGradient.pointer, db = scratch.biasGradient.pointer
            dw.update(repeating: 0, count: g.outChannels &* rows &* lanes)
            db.update(repeating: 0, count: g.outChannels)
            for s in p.samples(t) {
                let offset = s &* g.outChannels &* pooled
                cn_pool_entries(p.dy! + offset, argmax + offset, p.reluOutput! + offset, g.outChannels, pooled, pixelOffsets, list, db)
                plan.padInput(p.x + s &* g.inputSize, into: padded)
                cn_sparse_weight_gradient(level, padded, rowOffsets, rows, lanes, list, g.outChannels, dw)
                guard let dx = p.dx else { continue }
                let paddedGradient = scratch.paddedGradient.pointer
                paddedGradient.update(repeating: 0, count: planes)
                cn_sparse_input_gradient(level, paddedGradient, rowOffsets, rows, lanes, list, g.outChannels, paddedWeight)
                cn_crop_planes(
                    paddedGradient, g.inChannels, plan.paddedHeight, plan.paddedWidth, g.padTop, g.padLeft, g.inHeight,
                    g.inWidth, dx + s &* g.inputSize)
            }
        }
    }
    // Fixed-order reduction of the per-thread partials.
    for t in 0..<p.parts {
        cn_unpad_kernel_rows(workspace.pooled[t].weightGradient.pointer, g.outChannels &* rows, g.kernelWidth, lanes, p.dw!)
        Reduce.add(workspace.pooled[t].biasGradient.pointer, into: p.db!, count: g.outChannels)
    }
}
