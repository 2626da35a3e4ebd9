import CKernels

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
    /// Runs the C kernel at `level` (AVX2 row copies with masked tails from `.avx2` up).
    @inline(__always)
    static func im2col(
        level: KernelLevel, _ image: UnsafePointer<Float>, into columns: UnsafeMutablePointer<Float>,
        geometry g: ConvGeometry
    ) {
        cn_im2col(
            Int32(level.rawValue), image, columns, g.inChannels, g.inHeight, g.inWidth, g.kernelHeight, g.kernelWidth,
            g.strideH, g.strideW, g.padTop, g.padLeft, g.outHeight, g.outWidth)
    }

    /// Adds the column matrix back onto `image` (C x H x W): the adjoint of `im2col`.
    @inline(__always)
    static func col2im(
        level: KernelLevel, _ columns: UnsafePointer<Float>, into image: UnsafeMutablePointer<Float>,
        geometry g: ConvGeometry
    ) {
        cn_col2im(
            Int32(level.rawValue), columns, image, g.inChannels, g.inHeight, g.inWidth, g.kernelHeight, g.kernelWidth,
            g.strideH, g.strideW, g.padTop, g.padLeft, g.outHeight, g.outWidth)
    }
}
