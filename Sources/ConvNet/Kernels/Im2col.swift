/// im2col / col2im for one image: the layout change that turns a convolution into one GEMM.
///
/// The column matrix has `patchSize` rows (channel, kernel row, kernel column) and `outputPixels`
/// columns; entries that fall in the zero padding are 0.
public enum Im2col {
    /// Writes the column matrix of `image` (C x H x W) into `columns` (patchSize x outputPixels).
    public static func expand(
        _ image: UnsafePointer<Float>, into columns: UnsafeMutablePointer<Float>, geometry g: ConvGeometry
    ) {
        let oh = g.outHeight, ow = g.outWidth, h = g.inHeight, w = g.inWidth
        var row = 0
        for c in 0..<g.inChannels {
            let plane = image + c &* h &* w
            for ki in 0..<g.kernelHeight {
                for kj in 0..<g.kernelWidth {
                    let dst = columns + row &* oh &* ow
                    for oy in 0..<oh {
                        let iy = oy &* g.strideH &+ ki &- g.padTop
                        let out = dst + oy &* ow
                        if iy < 0 || iy >= h {
                            out.update(repeating: 0, count: ow)
                            continue
                        }
                        let src = plane + iy &* w
                        if g.strideW == 1 {
                            // Contiguous run: zeros left, a copy, zeros right.
                            let shift = kj &- g.padLeft
                            let first = max(0, -shift), last = min(ow, w &- shift)
                            if first > 0 { out.update(repeating: 0, count: min(first, ow)) }
                            if last > first { (out + first).update(from: src + (first &+ shift), count: last &- first) }
                            if last < ow { (out + max(last, first)).update(repeating: 0, count: ow &- max(last, first)) }
                        } else {
                            for ox in 0..<ow {
                                let ix = ox &* g.strideW &+ kj &- g.padLeft
                                out[ox] = (ix >= 0 && ix < w) ? src[ix] : 0
                            }
                        }
                    }
                    row &+= 1
                }
            }
        }
    }

    /// Adds the column matrix `columns` back onto `image` (C x H x W), which the caller has zeroed
    /// or wants accumulated into: the adjoint of `expand`.
    public static func accumulate(
        _ columns: UnsafePointer<Float>, into image: UnsafeMutablePointer<Float>, geometry g: ConvGeometry
    ) {
        let oh = g.outHeight, ow = g.outWidth, h = g.inHeight, w = g.inWidth
        var row = 0
        for c in 0..<g.inChannels {
            let plane = image + c &* h &* w
            for ki in 0..<g.kernelHeight {
                for kj in 0..<g.kernelWidth {
                    let src = columns + row &* oh &* ow
                    for oy in 0..<oh {
                        let iy = oy &* g.strideH &+ ki &- g.padTop
                        if iy < 0 || iy >= h { continue }
                        let dst = plane + iy &* w
                        let col = src + oy &* ow
                        for ox in 0..<ow {
                            let ix = ox &* g.strideW &+ kj &- g.padLeft
                            if ix >= 0 && ix < w { dst[ix] += col[ox] }
                        }
                    }
                    row &+= 1
                }
            }
        }
    }
}
