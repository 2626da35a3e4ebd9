/// Gradients of a convolution with respect to its input, weight and bias.
public struct ConvGradients: Sendable {
    public var input: Tensor
    public var weight: Tensor
    public var bias: Tensor
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
    var workspace = [Float]()
    return conv2dForward(input, weight: weight, bias: bias, geometry: g, workspace: &workspace)
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
    var workspace = [Float]()
    return conv2dBackward(outputGradient, input: input, weight: weight, geometry: g, workspace: &workspace)
}

/// Forward convolution with a resolved geometry; `workspace` is reused for the column matrix.
func conv2dForward(
    _ input: Tensor, weight: Tensor, bias: Tensor, geometry g: ConvGeometry, workspace: inout [Float]
) -> Tensor {
    let n = input.batchSize
    let patch = g.patchSize, pixels = g.outputPixels
    if !g.isPointwise && workspace.count < patch * pixels {
        workspace = [Float](repeating: 0, count: patch * pixels)
    }
    return Tensor(shape: [n, g.outChannels, g.outHeight, g.outWidth]) { out in
        input.withUnsafeBufferPointer { x in
            weight.withUnsafeBufferPointer { w in
                bias.withUnsafeBufferPointer { b in
                    workspace.withUnsafeMutableBufferPointer { cols in
                        for s in 0..<n {
                            let xs = x.baseAddress! + s * g.inputSize
                            let ys = out.baseAddress! + s * g.outputSize
                            // Start from the bias, then add W x columns.
                            for o in 0..<g.outChannels {
                                (ys + o * pixels).initialize(repeating: b[o], count: pixels)
                            }
                            let columns: UnsafePointer<Float>
                            if g.isPointwise {
                                columns = xs
                            } else {
                                Im2col.expand(xs, into: cols.baseAddress!, geometry: g)
                                columns = UnsafePointer(cols.baseAddress!)
                            }
                            Gemm.multiply(
                                m: g.outChannels, n: pixels, k: patch, a: w.baseAddress!, lda: patch,
                                b: columns, ldb: pixels, beta: 1, c: ys, ldc: pixels)
                        }
                    }
                }
            }
        }
    }
}

/// Backward convolution with a resolved geometry; `workspace` is reused for column matrices.
func conv2dBackward(
    _ dy: Tensor, input: Tensor, weight: Tensor, geometry g: ConvGeometry, workspace: inout [Float]
) -> ConvGradients {
    let n = input.batchSize
    let patch = g.patchSize, pixels = g.outputPixels
    if workspace.count < 2 * patch * pixels {
        workspace = [Float](repeating: 0, count: 2 * patch * pixels)
    }
    var dWeight = Tensor(shape: weight.shape)
    var dBias = Tensor(shape: [g.outChannels])
    var dInput = Tensor(shape: input.shape)
    input.withUnsafeBufferPointer { x in
        weight.withUnsafeBufferPointer { w in
            dy.withUnsafeBufferPointer { dyp in
                dWeight.withUnsafeMutableBufferPointer { dw in
                    dBias.withUnsafeMutableBufferPointer { db in
                        dInput.withUnsafeMutableBufferPointer { dx in
                            workspace.withUnsafeMutableBufferPointer { ws in
                                let cols = ws.baseAddress!
                                let dcols = ws.baseAddress! + patch * pixels
                                for s in 0..<n {
                                    let xs = x.baseAddress! + s * g.inputSize
                                    let dys = dyp.baseAddress! + s * g.outputSize
                                    let dxs = dx.baseAddress! + s * g.inputSize
                                    Reduce.addRowSums(dys, rows: g.outChannels, columns: pixels, into: db.baseAddress!)
                                    let columns: UnsafePointer<Float>
                                    if g.isPointwise {
                                        columns = xs
                                    } else {
                                        Im2col.expand(xs, into: cols, geometry: g)
                                        columns = UnsafePointer(cols)
                                    }
                                    // dW += dY_s (OC x P) * columns^T (P x patch)
                                    Gemm.multiply(
                                        transB: true, m: g.outChannels, n: patch, k: pixels,
                                        a: dys, lda: pixels, b: columns, ldb: pixels,
                                        beta: 1, c: dw.baseAddress!, ldc: patch)
                                    // dcolumns = W^T (patch x OC) * dY_s (OC x P)
                                    if g.isPointwise {
                                        Gemm.multiply(
                                            transA: true, m: patch, n: pixels, k: g.outChannels,
                                            a: w.baseAddress!, lda: patch, b: dys, ldb: pixels,
                                            beta: 0, c: dxs, ldc: pixels)
                                    } else {
                                        Gemm.multiply(
                                            transA: true, m: patch, n: pixels, k: g.outChannels,
                                            a: w.baseAddress!, lda: patch, b: dys, ldb: pixels,
                                            beta: 0, c: dcols, ldc: pixels)
                                        Im2col.accumulate(dcols, into: dxs, geometry: g)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return ConvGradients(input: dInput, weight: dWeight, bias: dBias)
}

/// Small reductions shared by several ops.
enum Reduce {
    /// `out[r] += sum_c m[r, c]` for a rows x columns matrix.
    static func addRowSums(_ m: UnsafePointer<Float>, rows: Int, columns: Int, into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let row = m + r &* columns
            var s: Float = 0
            for c in 0..<columns { s += row[c] }
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
