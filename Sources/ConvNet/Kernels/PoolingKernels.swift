import CKernels

/// Max and average pooling over each channel plane, stride and window from a `ConvGeometry`
/// (`inChannels == outChannels`, no padding).
public enum PoolingKernels {
    /// Max pooling of `planes` planes. `argmax` receives, per output, the flat input offset inside
    /// its plane of the first largest value (a tie sends the gradient to that one input only).
    public static func maxForward(
        _ x: UnsafePointer<Float>, planes: Int, geometry g: ConvGeometry,
        output y: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>, context: ExecutionContext,
        threaded: Bool = true
    ) {
        let inPlane = g.inHeight &* g.inWidth, outPlane = g.outHeight &* g.outWidth
        let px = UncheckedSendable(x), py = UncheckedSendable(y), pa = UncheckedSendable(argmax)
        // Split the planes across threads when there is enough work; each plane is written by one thread.
        let parts = threaded && planes &* outPlane >= 1 << 15 ? min(context.threads, planes) : 1
        let is2x2 = g.kernelHeight == 2 && g.kernelWidth == 2 && g.strideH == 2 && g.strideW == 2
        context.parallelFor(parts) { t in
            let first = planes &* t / parts, end = planes &* (t &+ 1) / parts
            if is2x2 {
                // C kernel: AVX2 (8 windows at a time) from `.avx2` up (`context.kernelLevel`), else a scalar loop.
                cn_maxpool2x2(
                    Int32(context.kernelLevel.rawValue), px.value + first &* inPlane, end &- first, g.inHeight, g.inWidth, g.outHeight, g.outWidth,
                    py.value + first &* outPlane, pa.value + first &* outPlane)
                return
            }
            for p in first..<end {
                let src = px.value + p &* inPlane, dst = py.value + p &* outPlane, arg = pa.value + p &* outPlane
                maxPlane(src, g, dst, arg)
            }
        }
    }

    /// Branch-free candidate update: NaN wins (it propagates as in PyTorch), ties keep the first.
    @inline(__always)
    private static func challenge(_ v: Float, _ i: Int, _ best: inout Float, _ bestIndex: inout Int) {
        let wins = v > best || v != v
        best = wins ? v : best
        bestIndex = wins ? i : bestIndex
    }

    /// Any window and stride.
    @inline(__always)
    private static func maxPlane(
        _ src: UnsafePointer<Float>, _ g: ConvGeometry, _ dst: UnsafeMutablePointer<Float>, _ arg: UnsafeMutablePointer<Int32>
    ) {
        let w = g.inWidth, ow = g.outWidth, kh = g.kernelHeight, kw = g.kernelWidth
        for oy in 0..<g.outHeight {
            for ox in 0..<ow {
                let first = (oy &* g.strideH) &* w &+ ox &* g.strideW
                var best = src[first], bestIndex = first
                for ky in 0..<kh {
                    let row = first &+ ky &* w
                    for kx in 0..<kw { challenge(src[row &+ kx], row &+ kx, &best, &bestIndex) }
                }
                dst[oy &* ow &+ ox] = best
                arg[oy &* ow &+ ox] = Int32(truncatingIfNeeded: bestIndex)
            }
        }
    }

    /// Routes each output gradient to the input that won the max; `dx` must start zeroed.
    public static func maxBackward(
        _ dy: UnsafePointer<Float>, argmax: UnsafePointer<Int32>, planes: Int, geometry g: ConvGeometry,
        inputGradient dx: UnsafeMutablePointer<Float>, context: ExecutionContext
    ) {
        let inPlane = g.inHeight &* g.inWidth, outPlane = g.outHeight &* g.outWidth
        // Each plane's gradient is written by one thread.
        let parts = planes &* outPlane >= 1 << 15 ? min(context.threads, planes) : 1
        context.parallelFor(parts) { t in
            for p in (planes &* t / parts)..<(planes &* (t &+ 1) / parts) {
                let d = dx + p &* inPlane
                let src = dy + p &* outPlane
                let arg = argmax + p &* outPlane
                for i in 0..<outPlane { d[Int(arg[i])] += src[i] }
            }
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

/// Global average pooling: the mean of each channel plane.
public enum GlobalPoolingKernels {
    /// y[p] = (sum of plane p of x) / plane, for `planes` planes of `plane` values.
    public static func averageForward(_ x: UnsafePointer<Float>, planes: Int, plane: Int, output y: UnsafeMutablePointer<Float>) {
        let scale = 1 / Float(plane)
        for p in 0..<planes {
            let src = x + p &* plane
            var sum: Float = 0
            for i in 0..<plane { sum += src[i] }
            y[p] = sum * scale
        }
    }

    /// dx[p, i] = dy[p] / plane: every value of a plane gets an equal share of its mean's gradient.
    public static func averageBackward(_ dy: UnsafePointer<Float>, planes: Int, plane: Int, inputGradient dx: UnsafeMutablePointer<Float>) {
        let scale = 1 / Float(plane)
        for p in 0..<planes { (dx + p &* plane).update(repeating: dy[p] * scale, count: plane) }
    }
}
