/// Branch-free im2col / col2im used by the convolution fast paths. For each (channel, kernel row,
/// kernel column) row of the column matrix, the range of output columns whose input column falls
/// inside the image is computed once, so the inner loops have no per-element bounds tests.
/// `Im2col.expand` / `Im2col.accumulate` compute the same values and stay as the simple versions.
enum ConvKernels {
    /// Output columns `ox` with `0 <= ox * stride + offset < width`, clipped to `0..<outWidth`.
    @inline(__always)
    static func validColumns(offset: Int, stride: Int, width: Int, outWidth: Int) -> (first: Int, end: Int) {
        // first = ceil(-offset / stride) when offset < 0, else 0
        let first = offset >= 0 ? 0 : (-offset &+ stride &- 1) / stride
        // last valid: ox * stride + offset <= width - 1
        let limit = width &- 1 &- offset
        let end = limit < 0 ? 0 : min(outWidth, limit / stride &+ 1)
        return (min(first, outWidth), max(end, min(first, outWidth)))
    }

    /// Writes the column matrix of `image` (C x H x W) into `columns` (patchSize x outputPixels).
    static func im2col(_ image: UnsafePointer<Float>, into columns: UnsafeMutablePointer<Float>, geometry g: ConvGeometry) {
        let oh = g.outHeight, ow = g.outWidth, h = g.inHeight, w = g.inWidth
        let sh = g.strideH, sw = g.strideW
        var dst = columns
        for c in 0..<g.inChannels {
            let plane = image + c &* h &* w
            for ki in 0..<g.kernelHeight {
                for kj in 0..<g.kernelWidth {
                    let offset = kj &- g.padLeft
                    let (first, end) = validColumns(offset: offset, stride: sw, width: w, outWidth: ow)
                    for oy in 0..<oh {
                        let iy = oy &* sh &+ ki &- g.padTop
                        let out = dst + oy &* ow
                        if iy < 0 || iy >= h {
                            var ox = 0
                            while ox < ow {
                                out[ox] = 0
                                ox &+= 1
                            }
                            continue
                        }
                        let src = plane + (iy &* w &+ offset)
                        for ox in 0..<first { out[ox] = 0 }
                        if sw == 1 {
                            // Short rows (often 14 or 28 floats): an inline loop beats a memmove call.
                            var ox = first
                            while ox < end {
                                out[ox] = src[ox]
                                ox &+= 1
                            }
                        } else {
                            var ox = first
                            while ox < end {
                                out[ox] = src[ox &* sw]
                                ox &+= 1
                            }
                        }
                        var ox = end
                        while ox < ow {
                            out[ox] = 0
                            ox &+= 1
                        }
                    }
                    dst += oh &* ow
                }
            }
        }
    }

    /// Adds the column matrix back onto `image` (C x H x W): the adjoint of `im2col`.
    static func col2im(_ columns: UnsafePointer<Float>, into image: UnsafeMutablePointer<Float>, geometry g: ConvGeometry) {
        let oh = g.outHeight, ow = g.outWidth, h = g.inHeight, w = g.inWidth
        let sh = g.strideH, sw = g.strideW
        var src = columns
        for c in 0..<g.inChannels {
            let plane = image + c &* h &* w
            for ki in 0..<g.kernelHeight {
                for kj in 0..<g.kernelWidth {
                    let offset = kj &- g.padLeft
                    let (first, end) = validColumns(offset: offset, stride: sw, width: w, outWidth: ow)
                    for oy in 0..<oh {
                        let iy = oy &* sh &+ ki &- g.padTop
                        if iy < 0 || iy >= h { continue }
                        let dst = plane + (iy &* w &+ offset)
                        let col = src + oy &* ow
                        if sw == 1 {
                            var ox = first
                            while ox < end {
                                dst[ox] += col[ox]
                                ox &+= 1
                            }
                        } else {
                            var ox = first
                            while ox < end {
                                dst[ox &* sw] += col[ox]
                                ox &+= 1
                            }
                        }
                    }
                    src += oh &* ow
                }
            }
        }
    }
}
