import CKernels

/// The forward pass through the direct kernel (`.direct`) or im2col + GEMM (`.im2col`): each sample's
/// column matrix (or padded copy) in its thread's `ColumnScratch`.
func conv2dForwardColumns(
    _ input: Tensor, weight: Tensor, bias: Tensor, geometry g: ConvGeometry, plan: ConvPlan, workspace: ConvWorkspace,
    fuseReLU: Bool, pool: FusedMaxPool?, into output: inout Tensor
) {
    let n = input.batchSize
    let parts = plan.batchParts
    let direct = plan.forward == .direct
    if !g.isPointwise {
        let count = direct
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
                            convForwardSample(x, sample: s, w, b, ys, cols, g, direct: direct, threaded: parts == 1, relu: fuseReLU)
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

/// y_s = bias + W (OC x patch) * columns(x_s) (patch x pixels), into `ys`; or the direct kernel.
@inline(__always)
private func convForwardSample(
    _ x: UnsafePointer<Float>, sample s: Int, _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
    _ ys: UnsafeMutablePointer<Float>, _ cols: UnsafeMutablePointer<Float>?, _ g: ConvGeometry, direct: Bool,
    threaded: Bool, relu: Bool
) {
    let patch = g.patchSize, pixels = g.outputPixels
    let xs = x + s &* g.inputSize
    if direct, let cols {
        cn_conv_direct_c1(
            Int32(Gemm.kernelLevel.rawValue),
            xs, g.inHeight, g.inWidth, g.padTop, g.padLeft, g.padBottom, g.padRight, cols, g.kernelHeight,
            g.kernelWidth, g.outChannels, g.outHeight, g.outWidth, w, b, relu ? 1 : 0, ys)
        return
    }
    for o in 0..<g.outChannels {
        (ys + o &* pixels).initialize(repeating: b[o], count: pixels)
    }
    let columns: UnsafePointer<Float>
    if let cols {
        ConvKernels.im2col(level: Gemm.kernelLevel, xs, into: cols, geometry: g)
        columns = UnsafePointer(cols)
    } else {
        columns = xs
    }
    if threaded {
        Gemm.multiply(
            level: Gemm.kernelLevel,
            m: g.outChannels, n: pixels, k: patch, a: w, lda: patch, b: columns, ldb: pixels, beta: 1, c: ys,
            ldc: pixels)
    } else {
        Gemm.kernel(
            level: Gemm.kernelLevel, false, false, g.outChannels, pixels, patch, 1, w, patch, columns, pixels, 1, ys, pixels)
    }
    if relu { ElementwiseKernels.leakyRelu(ys, ys, count: g.outputSize, slope: 0) }
}

/// The backward pass with dot-product (`.dot`) or GEMM (`.gemm`) weight gradients from each sample's
/// column matrix, and W^T dL/dy + col2im input gradients, in each thread's `ColumnScratch`. With one
/// part the GEMMs are threaded and thread 0 writes dW and db directly.
func conv2dBackwardColumns(
    _ dy: Tensor, input: Tensor, weight: Tensor, geometry g: ConvGeometry, plan: ConvPlan, workspace: ConvWorkspace,
    inputGradient: Bool, reluOutput: Tensor?, into grads: inout ConvGradients
) {
    let n = input.batchSize
    let parts = plan.batchParts
    let dot = plan.weightGradient == .dot
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
                                        first: s == 0, dot: dot, threaded: true, reluOutput: ry, masked: masked)
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
                                            first: s == first, dot: dot, threaded: false, reluOutput: ry, masked: masked)
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
    first: Bool, dot: Bool, threaded: Bool, reluOutput: UnsafePointer<Float>?, masked: UnsafeMutablePointer<Float>?
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
        ConvKernels.im2col(level: Gemm.kernelLevel, xs, into: cols, geometry: g)
        columns = UnsafePointer(cols)
    } else {
        columns = xs
    }
    let beta: Float = first ? 0 : 1
    // dW (+)= dY_s (OC x P) * columns^T (P x patch); dcolumns = W^T (patch x OC) * dY_s (OC x P).
    if dot {
        Gemm.dotNT(
            level: Gemm.kernelLevel, m: oc, n: patch, k: pixels, a: dys, lda: pixels, b: columns, ldb: pixels, accumulate: !first, c: dw, ldc: patch)
    } else if threaded {
        Gemm.multiply(
            level: Gemm.kernelLevel,
            transB: true, m: oc, n: patch, k: pixels, a: dys, lda: pixels, b: columns, ldb: pixels, beta: beta,
            c: dw, ldc: patch)
    } else {
        Gemm.kernel(
            level: Gemm.kernelLevel, false, true, oc, patch, pixels, 1, dys, pixels, columns, pixels, beta, dw, patch)
    }
    guard let dx else { return }
    let dxs = dx + s &* g.inputSize
    let dcolumns = dcols ?? dxs
    if threaded {
        Gemm.multiply(
            level: Gemm.kernelLevel,
            transA: true, m: patch, n: pixels, k: oc, a: w, lda: patch, b: dys, ldb: pixels, beta: 0,
            c: dcolumns, ldc: pixels)
    } else {
        Gemm.kernel(
            level: Gemm.kernelLevel, true, false, patch, pixels, oc, 1, w, patch, dys, pixels, 0, dcolumns, pixels)
    }
    if let dcols {
        ConvKernels.col2im(level: Gemm.kernelLevel, dcols, into: dxs, geometry: g)
    }
}
