/// Max and average pooling over each channel plane, stride and window from a `ConvGeometry`
/// (`inChannels == outChannels`, no padding).
public enum PoolingKernels {
    /// Max pooling of `planes` planes. `argmax` receives, per output, the flat input offset inside
    /// its plane of the first largest value (a tie sends the gradient to that one input only).
    public static func maxForward(
        _ x: UnsafePointer<Float>, planes: Int, geometry g: ConvGeometry,
        output y: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>
    ) {
        let h = g.inHeight, w = g.inWidth, oh = g.outHeight, ow = g.outWidth
        for p in 0..<planes {
            let src = x + p &* h &* w
            let dst = y + p &* oh &* ow
            let arg = argmax + p &* oh &* ow
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let y0 = oy &* g.strideH, x0 = ox &* g.strideW
                    var best = src[y0 &* w &+ x0]
                    var bestIndex = y0 &* w &+ x0
                    for ky in 0..<g.kernelHeight {
                        let row = (y0 &+ ky) &* w
                        for kx in 0..<g.kernelWidth {
                            let v = src[row &+ x0 &+ kx]
                            if v > best || (v != v && best == best) {
                                best = v
                                bestIndex = row &+ x0 &+ kx
                            }
                        }
                    }
                    dst[oy &* ow &+ ox] = best
                    arg[oy &* ow &+ ox] = Int32(truncatingIfNeeded: bestIndex)
                }
            }
        }
    }

    /// Routes each output gradient to the input that won the max; `dx` must start zeroed.
    public static func maxBackward(
        _ dy: UnsafePointer<Float>, argmax: UnsafePointer<Int32>, planes: Int, geometry g: ConvGeometry,
        inputGradient dx: UnsafeMutablePointer<Float>
    ) {
        let inPlane = g.inHeight &* g.inWidth, outPlane = g.outHeight &* g.outWidth
        for p in 0..<planes {
            let d = dx + p &* inPlane
            let src = dy + p &* outPlane
            let arg = argmax + p &* outPlane
            for i in 0..<outPlane { d[Int(arg[i])] += src[i] }
        }
    }

    public static func averageForward(
        _ x: UnsafePointer<Float>, planes: Int, geometry g: ConvGeometry, output y: UnsafeMutablePointer<Float>
    ) {
        let h = g.inHeight, w = g.inWidth, oh = g.outHeight, ow = g.outWidth
        let scale = 1 / Float(g.kernelHeight &* g.kernelWidth)
        for p in 0..<planes {
            let src = x + p &* h &* w
            let dst = y + p &* oh &* ow
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var s: Float = 0
                    for ky in 0..<g.kernelHeight {
                        let offset: Int = (oy &* g.strideH &+ ky) &* w &+ ox &* g.strideW
                        let row = src + offset
                        for kx in 0..<g.kernelWidth { s += row[kx] }
                    }
                    dst[oy &* ow &+ ox] = s * scale
                }
            }
        }
    }

    /// Spreads each output gradient evenly over its window; `dx` must start zeroed.
    public static func averageBackward(
        _ dy: UnsafePointer<Float>, planes: Int, geometry g: ConvGeometry, inputGradient dx: UnsafeMutablePointer<Float>
    ) {
        let h = g.inHeight, w = g.inWidth, oh = g.outHeight, ow = g.outWidth
        let scale = 1 / Float(g.kernelHeight &* g.kernelWidth)
        for p in 0..<planes {
            let src = dy + p &* oh &* ow
            let dst = dx + p &* h &* w
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let v = src[oy &* ow &+ ox] * scale
                    for ky in 0..<g.kernelHeight {
                        let offset: Int = (oy &* g.strideH &+ ky) &* w &+ ox &* g.strideW
                        let row = dst + offset
                        for kx in 0..<g.kernelWidth { row[kx] += v }
                    }
                }
            }
        }
    }
}
