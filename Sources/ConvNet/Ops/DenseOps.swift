/// Gradients of a fully connected layer.
public struct DenseGradients: Sendable {
    public var input: Tensor
    public var weight: Tensor
    public var bias: Tensor
}

/// Fully connected layer: y = x W^T + b, x [N, in], W [out, in] (PyTorch's layout), b [out].
public func dense(_ x: Tensor, weight: Tensor, bias: Tensor, context: ExecutionContext = .default) throws -> Tensor {
    var y = Tensor.empty
    try dense(x, weight: weight, bias: bias, into: &y, context: context)
    return y
}

/// `dense` writing into a reusable buffer (see `Tensor.overwrite`).
func dense(_ x: Tensor, weight: Tensor, bias: Tensor, into output: inout Tensor, context: ExecutionContext) throws {
    try checkDense(x, weight: weight, bias: bias)
    let n = x.batchSize, inF = weight.shape[1], outF = weight.shape[0]
    // Every element is written: the bias, then the products added.
    output.prepare(shape: [n, outF])
    guard n > 0, outF > 0 else { return }
    Tensor.withBaseAddresses(x, weight, bias) { xp, w, b, _ in
        output.withUnsafeMutableBufferPointer { y in
            let y = y.baseAddress!, xp = xp!, w = w!, b = b!
            for s in 0..<n { (y + s * outF).update(from: b, count: outF) }
            if n <= denseDotMaxBatch {
                denseDot(n: n, inF: inF, outF: outF, x: xp, w: w, y: y, context: context)
            } else {
                Gemm.multiply(transB: true, m: n, n: outF, k: inF, a: xp, lda: inF, b: w, ldb: inF, beta: 1, c: y, ldc: outF, context: context)
            }
        }
    }
}

/// Batches up to this size run the forward pass as one dot product per output (`Gemm.dotNT`) on the
/// weights as stored: the packed GEMM would repack all of W (3.2 MB for tf-cnn's dense1) for a single
/// row of x on every call. Measured with `convnet bench --batch-size 1 --threads 1` (latency median):
/// tf-cnn 285 -> 151 µs, lenet5 26.8 -> 14.7, mlp 3.3 -> 1.3, softmax-regression 6.8 -> 1.0.
let denseDotMaxBatch = 4

/// y += x W^T by row dot products, the outputs split across threads in blocks of 64 when there is
/// enough work. Each output's arithmetic depends on `inF` only (not on the split or the batch).
func denseDot(
    n: Int, inF: Int, outF: Int, x: UnsafePointer<Float>, w: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
    context: ExecutionContext
) {
    let block = 64
    let blocks = (outF + block - 1) / block
    let parts = n * inF * outF >= 1 << 18 ? min(blocks, context.threads) : 1
    if parts <= 1 {
        Gemm.dotNT(
            level: context.kernelLevel, m: n, n: outF, k: inF, a: x, lda: inF, b: w, ldb: inF, accumulate: true, c: y, ldc: outF)
        return
    }
    let pointers = UncheckedSendable((x, w, y))
    context.parallelFor(parts) { part in
        let (x, w, y) = pointers.value
        let first = part * blocks / parts * block, last = min(outF, (part + 1) * blocks / parts * block)
        guard first < last else { return }
        Gemm.dotNT(
            level: context.kernelLevel, m: n, n: last - first, k: inF, a: x, lda: inF, b: w + first * inF, ldb: inF, accumulate: true,
                   c: y + first, ldc: outF)
    }
}

/// dL/dx [N, in], dL/dW [out, in] and dL/db [out] from dL/dy [N, out].
public func denseBackward(
    _ dy: Tensor, input x: Tensor, weight: Tensor, context: ExecutionContext = .default
) throws -> DenseGradients {
    var grads = DenseGradients(input: .empty, weight: .empty, bias: .empty)
    try denseInputGradient(dy, input: x, weight: weight, into: &grads.input, context: context)
    try denseParameterGradients(
        dy, input: x, weight: weight, weightGradient: &grads.weight, biasGradient: &grads.bias, context: context)
    return grads
}

/// dL/dx (x's shape) from dL/dy, written into a reusable buffer (see `Tensor.overwrite`).
func denseInputGradient(
    _ dy: Tensor, input x: Tensor, weight: Tensor, into dx: inout Tensor, context: ExecutionContext
) throws {
    let (n, inF, outF) = try checkDenseBackward(dy, input: x, weight: weight)
    dx.overwrite(shape: x.shape) { dxp in
        weight.withUnsafeBufferPointer { w in
            dy.withUnsafeBufferPointer { d in
                // beta 0: every element of dL/dx is written.
                Gemm.multiply(
                    m: n, n: inF, k: outF, a: d.baseAddress!, lda: outF, b: w.baseAddress!, ldb: inF,
                    c: dxp.baseAddress!, ldc: inF, context: context)
            }
        }
    }
}

/// dL/dW and dL/db from dL/dy, written into reusable buffers (a parameter's `gradient`).
func denseParameterGradients(
    _ dy: Tensor, input x: Tensor, weight: Tensor, weightGradient dw: inout Tensor, biasGradient db: inout Tensor,
    context: ExecutionContext
) throws {
    let (n, inF, outF) = try checkDenseBackward(dy, input: x, weight: weight)
    // beta 0: every element of dL/dW is written; dL/db is summed into zeros.
    dw.prepare(shape: weight.shape)
    db.prepare(shape: [outF], zeroed: true)
    guard n > 0, inF > 0, outF > 0 else {
        dw.prepare(shape: weight.shape, zeroed: true)
        return
    }
    var unused = Tensor.empty
    Tensor.withBaseAddresses(x, dy) { xp, d, _, _ in
        Tensor.withMutableBaseAddresses(&dw, &db, &unused) { dwp, dbp, _ in
            Gemm.multiply(
                transA: true, m: outF, n: inF, k: n, a: d!, lda: outF, b: xp!, ldb: inF, c: dwp!, ldc: inF, context: context)
            Reduce.addColumnSums(d!, rows: n, columns: outF, into: dbp!)
        }
    }
}

/// (N, in, out) of a dense backward pass, after checking dL/dy and x against the weight.
private func checkDenseBackward(_ dy: Tensor, input x: Tensor, weight: Tensor) throws -> (Int, Int, Int) {
    let n = x.batchSize, inF = weight.shape.count == 2 ? weight.shape[1] : 0, outF = weight.shape.first ?? 0
    guard dy.shape == [n, outF] else {
        throw ShapeError.mismatch(operation: "dense backward", expected: "dL/dy of shape \(n)x\(outF)", got: dy.shape)
    }
    guard x.count == n * inF else {
        throw ShapeError.mismatch(operation: "dense backward", expected: "\(n) samples of \(inF) features", got: x.shape)
    }
    return (n, inF, outF)
}

func checkDense(_ x: Tensor, weight: Tensor, bias: Tensor) throws {
    guard weight.rank == 2 else {
        throw ShapeError.mismatch(operation: "dense", expected: "a weight of shape [out, in]", got: weight.shape)
    }
    let inF = weight.shape[1], outF = weight.shape[0]
    guard x.rank >= 2, x.count == x.batchSize * inF else {
        throw ShapeError.mismatch(operation: "dense", expected: "N x \(inF) input", got: x.shape)
    }
    guard bias.count == outF else {
        throw ShapeError.mismatch(operation: "dense", expected: "bias [\(outF)]", got: bias.shape)
    }
}
