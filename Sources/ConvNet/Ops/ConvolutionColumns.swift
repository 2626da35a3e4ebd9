import CKernels

// The column executors: the forward pass through the direct kernel (`.direct`) or im2col + GEMM
// (`.im2col`), and the backward pass with dot-product (`.dot`) or GEMM (`.gemm`) weight gradients and
// W^T dL/dy + col2im input gradients, each sample's column matrix (or padded copy) in its thread's
// `ColumnScratch`.

/// The forward pass. With one part the GEMMs are threaded instead of the batch.
func conv2dForwardColumns(_ p: ConvPass) {
    let g = p.geometry
    let direct = p.plan.forward == .direct
    if !g.isPointwise {
        let count = direct
            ? cn_conv_direct_c1_scratch(g.inHeight, g.inWidth, g.padTop, g.padLeft, g.padBottom, g.padRight)
            : g.patchSize &* g.outputPixels
        p.workspace.columns.reserve(p.parts)
        for t in 0..<p.parts { p.workspace.columns[t].columns.reserve(count) }
    }
    p.context.parallelFor(p.parts) { t in
        let cols = g.isPointwise ? nil : p.workspace.columns[t].columns.pointer
        for s in p.samples(t) {
            // With a fused pooling the sample goes to a per-thread buffer and is pooled from there.
            let ys = p.y.map { $0 + s &* g.outputSize } ?? p.workspace.sampleOutput[t].pointer
            convForwardSample(p, sample: s, ys, cols, direct: direct, threaded: p.parts == 1)
            p.pool?.pool(ys, sample: s, context: p.context)
        }
    }
}

/// y_s = bias + W (OC x patch) * columns(x_s) (patch x pixels), into `ys`; or the direct kernel.
@inline(__always)
private func convForwardSample(
    _ p: ConvPass, sample s: Int, _ ys: UnsafeMutablePointer<Float>, _ cols: UnsafeMutablePointer<Float>?,
    direct: Bool, threaded: Bool
) {
    let g = p.geometry, w = p.w, b = p.bias!, level = p.context.kernelLevel
    let patch = g.patchSize, pixels = g.outputPixels
    let xs = p.x + s &* g.inputSize
    if direct, let cols {
        cn_conv_direct_c1(
            Int32(level.rawValue), xs, g.inHeight, g.inWidth, g.padTop, g.padLeft, g.padBottom, g.padRight, cols, g.kernelHeight,
            g.kernelWidth, g.outChannels, g.outHeight, g.outWidth, w, b, p.fuseReLU ? 1 : 0, ys)
        return
    }
    for o in 0..<g.outChannels {
        (ys + o &* pixels).initialize(repeating: b[o], count: pixels)
    }
    let columns: UnsafePointer<Float>
    if let cols {
        ConvKernels.im2col(level: level, xs, into: cols, geometry: g)
        columns = UnsafePointer(cols)
    } else {
        columns = xs
    }
    if threaded {
        Gemm.multiply(
            m: g.outChannels, n: pixels, k: patch, a: w, lda: patch, b: columns, ldb: pixels, beta: 1, c: ys,
            ldc: pixels, context: p.context)
    } else {
        Gemm.kernel(level: level, false, false, g.outChannels, pixels, patch, 1, w, patch, columns, pixels, 1, ys, pixels)
    }
    if p.fuseReLU { ElementwiseKernels.leakyRelu(ys, ys, count: g.outputSize, slope: 0) }
}

/// The backward pass. With one part the GEMMs are threaded and thread 0 writes dW and db directly;
/// otherwise each thread sums into its own partials (thread 0 into dW and db), added in thread order.
/// Without `p.dw` (another executor's weight gradient), dL/dx only.
func conv2dBackwardColumns(_ p: ConvPass) {
    let g = p.geometry, parts = p.parts
    let patch = g.patchSize, pixels = g.outputPixels
    let dot = p.plan.weightGradient == .dot
    let weights = p.dw != nil
    p.workspace.columns.reserve(parts)
    for t in 0..<parts {
        let scratch = p.workspace.columns[t]
        if !g.isPointwise {
            if weights { scratch.columns.reserve(patch &* pixels) }
            if p.dx != nil { scratch.columnGradient.reserve(patch &* pixels) }
        }
        if p.reluOutput != nil { scratch.maskedGradient.reserve(g.outputSize) }
        if t > 0 && weights {
            scratch.weightGradient.reserve(g.outChannels &* patch)
            scratch.biasGradient.reserve(g.outChannels)
        }
    }
    p.context.parallelFor(parts) { t in
        let scratch = p.workspace.columns[t]
        let dw = !weights ? nil : t == 0 ? p.dw : scratch.weightGradient.pointer
        let db = !weights ? nil : t == 0 ? p.db : scratch.biasGradient.pointer
        let range = p.samples(t)
        for s in range {
            convBackwardSample(p, sample: s, dw: dw, db: db, scratch, first: s == range.lowerBound, dot: dot, threaded: parts == 1)
        }
    }
    // Fixed-order reduction of the partial gradients.
    for t in 1..<max(parts, 1) where weights {
        Reduce.add(p.workspace.columns[t].weightGradient.pointer, into: p.dw!, count: g.outChannels &* patch)
        Reduce.add(p.workspace.columns[t].biasGradient.pointer, into: p.db!, count: g.outChannels)
    }
}

/// One sample's backward pass: dW (+)= dY_s * columns^T, db (+)= row sums of dY_s (skipped without
/// `dw`), dx_s = col2im(W^T * dY_s). With `first`, dW and db are overwritten instead of accumulated.
@inline(__always)
private func convBackwardSample(
    _ p: ConvPass, sample s: Int, dw: UnsafeMutablePointer<Float>?, db: UnsafeMutablePointer<Float>?,
    _ scratch: ColumnScratch, first: Bool, dot: Bool, threaded: Bool
) {
    let g = p.geometry, level = p.context.kernelLevel
    let patch = g.patchSize, pixels = g.outputPixels, oc = g.outChannels
    let xs = p.x + s &* g.inputSize
    var dys = p.dy! + s &* g.outputSize
    if let reluOutput = p.reluOutput {
        let masked = scratch.maskedGradient.pointer
        ElementwiseKernels.leakyReluBackward(dys, input: reluOutput + s &* g.outputSize, masked, count: g.outputSize, slope: 0)
        dys = UnsafePointer(masked)
    }
    if let dw, let db {
        convWeightGradientSample(p, xs: xs, dys: dys, dw: dw, db: db, scratch, first: first, dot: dot, threaded: threaded)
    }
    guard let dx = p.dx else { return }
    let dxs = dx + s &* g.inputSize
    let dcolumns = g.isPointwise ? dxs : scratch.columnGradient.pointer
    if threaded {
        Gemm.multiply(
            transA: true, m: patch, n: pixels, k: oc, a: p.w, lda: patch, b: dys, ldb: pixels, beta: 0,
            c: dcolumns, ldc: pixels, context: p.context)
    } else {
        Gemm.kernel(level: level, true, false, patch, pixels, oc, 1, p.w, patch, dys, pixels, 0, dcolumns, pixels)
    }
    if !g.isPointwise {
        ConvKernels.col2im(level: level, dcolumns, into: dxs, geometry: g)
    }
}

/// One sample's dW (+)= dY_s (OC x P) * columns(x_s)^T (P x patch) and db (+)= row sums of dY_s.
@inline(__always)
private func convWeightGradientSample(
    _ p: ConvPass, xs: UnsafePointer<Float>, dys: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>,
    db: UnsafeMutablePointer<Float>, _ scratch: ColumnScratch, first: Bool, dot: Bool, threaded: Bool
) {
    let g = p.geometry, level = p.context.kernelLevel
    let patch = g.patchSize, pixels = g.outputPixels, oc = g.outChannels
    if first { db.update(repeating: 0, count: oc) }
    Reduce.addRowSums(dys, rows: oc, columns: pixels, into: db)
    let columns: UnsafePointer<Float>
    if !g.isPointwise {
        let cols = scratch.columns.pointer
        ConvKernels.im2col(level: level, xs, into: cols, geometry: g)
        columns = UnsafePointer(cols)
    } else {
        columns = xs
    }
    let beta: Float = first ? 0 : 1
    if dot {
        Gemm.dotNT(level: level, m: oc, n: patch, k: pixels, a: dys, lda: pixels, b: columns, ldb: pixels, accumulate: !first, c: dw, ldc: patch)
    } else if threaded {
        Gemm.multiply(
            transB: true, m: oc, n: patch, k: pixels, a: dys, lda: pixels, b: columns, ldb: pixels, beta: beta,
            c: dw, ldc: patch, context: p.context)
    } else {
        Gemm.kernel(level: level, false, true, oc, patch, pixels, 1, dys, pixels, columns, pixels, beta, dw, patch)
    }
}
