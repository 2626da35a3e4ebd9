import CKernels

// MARK: - conv -> ReLU -> max pooling, backward through the pooling's winners
//
// Max pooling sends dL/dpool to one position per window and the ReLU zeroes the non-positive ones,
// so the convolution's dL/dy is mostly zeros (at least 3/4 for 2x2 pooling). This pass never builds
// it: per sample, the nonzero entries are listed per output channel (`cn_pool_entries`), and the
// weight and input gradients add one kernel-sized patch per entry (CKernels/sparse.c). The same
// gradients as `maxPoolBackward`, `reluBackward` and `conv2dBackward` in turn, up to rounding (sums
// run over windows instead of pixels). Same batch split and fixed-order reduction as the other paths.

/// Workspace slots of the pooled backward (after the implicit path's): the padded weight, shared, then
/// per thread the padded input, entry list, weight-gradient accumulator, padded input gradient and
/// bias-gradient partial.
private enum PooledSlot {
    static let base = 128
    static let paddedWeight = base
    static let perThread = 5
    static func paddedInput(_ t: Int) -> Int { base &+ 1 &+ t &* perThread }
    static func entries(_ t: Int) -> Int { paddedInput(t) &+ 1 }
    static func weightGradient(_ t: Int) -> Int { paddedInput(t) &+ 2 }
    static func paddedGradient(_ t: Int) -> Int { paddedInput(t) &+ 3 }
    static func biasGradient(_ t: Int) -> Int { paddedInput(t) &+ 4 }
}

/// Lanes per kernel row in the pooled backward (one or two 8-float vectors), or nil where the dense
/// path is faster or needed: kernels wider than 16, and rows that fill less than half their lanes
/// (two-conv's 3x3 layers ran 24% slower pooled: 3 of 8 lanes against a dense GEMM near peak), unless
/// there are so few filters that the dense GEMM is slow too (tiny-cnn's 3: +43% pooled).
func pooledBackwardLanes(_ g: ConvGeometry) -> Int? {
    let lanes = g.kernelWidth <= 8 ? 8 : g.kernelWidth <= 16 ? 16 : 0
    guard lanes > 0, 2 &* g.kernelWidth > lanes || g.outChannels < 8 else { return nil }
    return lanes
}

/// Gradients of conv -> ReLU -> max pooling from dL/dpool: `pooledGradient` (N x OC x PH x PW), the
/// pooling's `argmax` (per pooled value, the winner's offset in its OH x OW plane) and its output
/// `pooledOutput` (N x OC x PH x PW): the ReLU's output at each winner, so its mask (read in order,
/// rather than at the winners' scattered positions in the ReLU's whole output).
/// Needs `pooledBackwardLanes(g) != nil`.
func conv2dBackwardThroughMaxPool(
    pooledGradient: Tensor, argmax: [Int32], pooledOutput: Tensor, input: Tensor, weight: Tensor, geometry g: ConvGeometry,
    workspace: ConvWorkspace, inputGradient: Bool, into grads: inout ConvGradients
) {
    let plan = workspace.plan(for: g)
    let lanes = pooledBackwardLanes(g)!
    let n = input.batchSize
    let parts = batchParts(n, g)
    let rows = g.inChannels &* g.kernelHeight
    let pooled = pooledGradient.count / max(1, n &* g.outChannels)
    let planes = g.inChannels &* plan.paddedHeight &* plan.paddedWidth
    workspace.reserve(PooledSlot.paddedWeight, count: g.outChannels &* rows &* lanes)
    for t in 0..<parts {
        workspace.reserve(PooledSlot.paddedInput(t), count: planes &+ lanes)
        workspace.reserve(PooledSlot.entries(t), count: 2 &* (g.outChannels &+ 1 &+ g.outChannels &* pooled))
        workspace.reserve(PooledSlot.weightGradient(t), count: g.outChannels &* rows &* lanes)
        workspace.reserve(PooledSlot.biasGradient(t), count: g.outChannels)
        if inputGradient { workspace.reserve(PooledSlot.paddedGradient(t), count: planes &+ lanes) }
    }
    let paddedWeight = workspace.pointer(PooledSlot.paddedWeight)
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
            let padded = workspace.pointer(PooledSlot.paddedInput(t))
            let list = UnsafeMutableRawPointer(workspace.pointer(PooledSlot.entries(t)))
            let dw = workspace.pointer(PooledSlot.weightGradient(t))
            let db = workspace.pointer(PooledSlot.biasGradient(t))
            dw.update(repeating: 0, count: g.outChannels &* rows &* lanes)
            db.update(repeating: 0, count: g.outChannels)
            for s in (n &* t / parts)..<(n &* (t &+ 1) / parts) {
                let pooledOffset = s &* g.outChannels &* pooled
                cn_pool_entries(
                    dp + pooledOffset, am + pooledOffset, pv + pooledOffset, g.outChannels, pooled, pixelOffsets, list,
                    db)
                plan.padInput(x + s &* g.inputSize, into: padded)
                cn_sparse_weight_gradient(padded, rowOffsets, rows, lanes, list, g.outChannels, dw)
                guard let dx else { continue }
                let paddedGradient = workspace.pointer(PooledSlot.paddedGradient(t))
                paddedGradient.update(repeating: 0, count: planes)
                cn_sparse_input_gradient(paddedGradient, rowOffsets, rows, lanes, list, g.outChannels, paddedWeight)
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
                    workspace.pointer(PooledSlot.weightGradient(t)), g.outChannels &* rows, g.kernelWidth, lanes,
                    dw.baseAddress!)
                Reduce.add(workspace.pointer(PooledSlot.biasGradient(t)), into: db.baseAddress!, count: g.outChannels)
            }
        }
    }
    grads = ConvGradients(input: dInput, weight: dWeight, bias: dBias)
}
