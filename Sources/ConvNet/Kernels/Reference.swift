/// Slow, obviously correct implementations kept beside the fast paths as test oracles.
/// Plain nested loops over `Tensor` subscripts, accumulating in `Double`.
public enum Reference {
    /// Convolution by definition: every output is a sum over channel and window.
    public static func conv2d(
        _ x: Tensor, weight w: Tensor, bias b: Tensor, stride: (Int, Int), padding: Padding
    ) throws -> Tensor {
        let g = try convGeometry(input: x.shape, weight: w.shape, stride: stride, padding: padding)
        let n = x.shape[0]
        var y = Tensor(shape: [n, g.outChannels, g.outHeight, g.outWidth])
        for s in 0..<n {
            for o in 0..<g.outChannels {
                for oy in 0..<g.outHeight {
                    for ox in 0..<g.outWidth {
                        var sum = Double(b[o])
                        for c in 0..<g.inChannels {
                            for ky in 0..<g.kernelHeight {
                                for kx in 0..<g.kernelWidth {
                                    let iy = oy * g.strideH + ky - g.padTop
                                    let ix = ox * g.strideW + kx - g.padLeft
                                    if iy < 0 || iy >= g.inHeight || ix < 0 || ix >= g.inWidth { continue }
                                    sum += Double(x[s, c, iy, ix]) * Double(w[o, c, ky, kx])
                                }
                            }
                        }
                        y[s, o, oy, ox] = Float(sum)
                    }
                }
            }
        }
        return y
    }

    /// The convolution's gradients by definition: each output gradient flows back to the input and
    /// weight entries it multiplied.
    public static func conv2dBackward(
        _ dy: Tensor, input x: Tensor, weight w: Tensor, stride: (Int, Int), padding: Padding
    ) throws -> ConvGradients {
        let g = try convGeometry(input: x.shape, weight: w.shape, stride: stride, padding: padding)
        var dx = [Double](repeating: 0, count: x.count)
        var dw = [Double](repeating: 0, count: w.count)
        var db = [Double](repeating: 0, count: g.outChannels)
        for s in 0..<x.shape[0] {
            for o in 0..<g.outChannels {
                for oy in 0..<g.outHeight {
                    for ox in 0..<g.outWidth {
                        let d = Double(dy[s, o, oy, ox])
                        db[o] += d
                        for c in 0..<g.inChannels {
                            for ky in 0..<g.kernelHeight {
                                for kx in 0..<g.kernelWidth {
                                    let iy = oy * g.strideH + ky - g.padTop
                                    let ix = ox * g.strideW + kx - g.padLeft
                                    if iy < 0 || iy >= g.inHeight || ix < 0 || ix >= g.inWidth { continue }
                                    dx[x.flatIndex([s, c, iy, ix])] += d * Double(w[o, c, ky, kx])
                                    dw[w.flatIndex([o, c, ky, kx])] += d * Double(x[s, c, iy, ix])
                                }
                            }
                        }
                    }
                }
            }
        }
        return ConvGradients(
            input: try Tensor(shape: x.shape, scalars: dx.map(Float.init)),
            weight: try Tensor(shape: w.shape, scalars: dw.map(Float.init)),
            bias: try Tensor(shape: [g.outChannels], scalars: db.map(Float.init)))
    }

    /// Max pooling by definition (first maximum wins), returning the output and the gradient routing.
    public static func maxPool(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int)) -> Tensor {
        pool(x, kernel: kernel, stride: stride) { window in window.max()! }
    }

    public static func averagePool(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int)) -> Tensor {
        pool(x, kernel: kernel, stride: stride) { window in window.reduce(0, +) / Float(window.count) }
    }

    /// dL/dx of max pooling: each output gradient goes to the first maximum of its window.
    public static func maxPoolBackward(_ dy: Tensor, input x: Tensor, kernel: (Int, Int), stride: (Int, Int)) -> Tensor {
        var dx = Tensor(shape: x.shape)
        let oh = (x.shape[2] - kernel.0) / stride.0 + 1, ow = (x.shape[3] - kernel.1) / stride.1 + 1
        for s in 0..<x.shape[0] {
            for c in 0..<x.shape[1] {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var by = oy * stride.0, bx = ox * stride.1
                        var best = x[s, c, by, bx]
                        for ky in 0..<kernel.0 {
                            for kx in 0..<kernel.1 {
                                let v = x[s, c, oy * stride.0 + ky, ox * stride.1 + kx]
                                if v > best { best = v; by = oy * stride.0 + ky; bx = ox * stride.1 + kx }
                            }
                        }
                        dx[s, c, by, bx] += dy[s, c, oy, ox]
                    }
                }
            }
        }
        return dx
    }

    private static func pool(
        _ x: Tensor, kernel: (Int, Int), stride: (Int, Int), reduce: ([Float]) -> Float
    ) -> Tensor {
        let oh = (x.shape[2] - kernel.0) / stride.0 + 1, ow = (x.shape[3] - kernel.1) / stride.1 + 1
        var y = Tensor(shape: [x.shape[0], x.shape[1], oh, ow])
        for s in 0..<x.shape[0] {
            for c in 0..<x.shape[1] {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var window = [Float]()
                        for ky in 0..<kernel.0 {
                            for kx in 0..<kernel.1 { window.append(x[s, c, oy * stride.0 + ky, ox * stride.1 + kx]) }
                        }
                        y[s, c, oy, ox] = reduce(window)
                    }
                }
            }
        }
        return y
    }

    /// Fully connected layer by definition: y[n, o] = b[o] + sum_i w[o, i] x[n, i].
    public static func dense(_ x: Tensor, weight w: Tensor, bias b: Tensor) -> Tensor {
        let n = x.shape[0], inF = w.shape[1], outF = w.shape[0]
        var y = Tensor(shape: [n, outF])
        for s in 0..<n {
            for o in 0..<outF {
                var sum = Double(b[o])
                for i in 0..<inF { sum += Double(w[o, i]) * Double(x[s * inF + i]) }
                y[s, o] = Float(sum)
            }
        }
        return y
    }
}
