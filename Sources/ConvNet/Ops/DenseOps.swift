/// Gradients of a fully connected layer.
public struct DenseGradients: Sendable {
    public var input: Tensor
    public var weight: Tensor
    public var bias: Tensor
}

/// Fully connected layer: y = x W^T + b, x [N, in], W [out, in] (PyTorch's layout), b [out].
public func dense(_ x: Tensor, weight: Tensor, bias: Tensor) throws -> Tensor {
    try checkDense(x, weight: weight, bias: bias)
    let n = x.batchSize, inF = weight.shape[1], outF = weight.shape[0]
    return Tensor(shape: [n, outF]) { y in
        x.withUnsafeBufferPointer { xp in
            weight.withUnsafeBufferPointer { w in
                bias.withUnsafeBufferPointer { b in
                    for s in 0..<n { (y.baseAddress! + s * outF).initialize(from: b.baseAddress!, count: outF) }
                    Gemm.multiply(
                        transB: true, m: n, n: outF, k: inF, a: xp.baseAddress!, lda: inF,
                        b: w.baseAddress!, ldb: inF, beta: 1, c: y.baseAddress!, ldc: outF)
                }
            }
        }
    }
}

/// dL/dx [N, in], dL/dW [out, in] and dL/db [out] from dL/dy [N, out].
public func denseBackward(_ dy: Tensor, input x: Tensor, weight: Tensor) throws -> DenseGradients {
    try denseBackward(dy, input: x, weight: weight, inputGradient: true)
}

/// With `inputGradient == false`, dL/dx is skipped (returned empty).
func denseBackward(_ dy: Tensor, input x: Tensor, weight: Tensor, inputGradient: Bool) throws -> DenseGradients {
    let n = x.batchSize, inF = weight.shape.count == 2 ? weight.shape[1] : 0, outF = weight.shape.first ?? 0
    guard dy.shape == [n, outF] else {
        throw ShapeError.mismatch(operation: "dense backward", expected: "dL/dy of shape \(n)x\(outF)", got: dy.shape)
    }
    guard x.count == n * inF else {
        throw ShapeError.mismatch(operation: "dense backward", expected: "\(n) samples of \(inF) features", got: x.shape)
    }
    var dx = Tensor(shape: inputGradient ? x.shape : [0]), dw = Tensor(shape: weight.shape), db = Tensor(shape: [outF])
    x.withUnsafeBufferPointer { xp in
        weight.withUnsafeBufferPointer { w in
            dy.withUnsafeBufferPointer { d in
                if inputGradient {
                    dx.withUnsafeMutableBufferPointer { dxp in
                        Gemm.multiply(
                        m: n, n: inF, k: outF, a: d.baseAddress!, lda: outF, b: w.baseAddress!, ldb: inF,
                            c: dxp.baseAddress!, ldc: inF)
                    }
                }
                dw.withUnsafeMutableBufferPointer { dwp in
                    Gemm.multiply(
                        transA: true, m: outF, n: inF, k: n, a: d.baseAddress!, lda: outF, b: xp.baseAddress!,
                        ldb: inF, c: dwp.baseAddress!, ldc: inF)
                }
                db.withUnsafeMutableBufferPointer { dbp in
                    Reduce.addColumnSums(d.baseAddress!, rows: n, columns: outF, into: dbp.baseAddress!)
                }
            }
        }
    }
    return DenseGradients(input: dx, weight: dw, bias: db)
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
