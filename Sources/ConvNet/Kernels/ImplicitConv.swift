import CKernels

/// The implicit-GEMM convolution (`cn_igemm` in CKernels/implicit.c): forward pass, weight gradient
/// and (stride 1) input gradient of one sample, computed from a zero-padded copy of the image and two
/// offset tables instead of a column matrix. No im2col, col2im or packing of the image; the weight is
/// packed once per call into panels of 16 output channels.
///
/// Roles of the offset GEMM `C[i][j] = sum_s A[row[i] + red[s]] * B[s][j]`:
/// - forward: A = padded input, rows = output pixels, reduction = taps (channel, ky, kx), B = weight^T;
/// - weight gradient: A = padded input, rows = taps, reduction = output pixels, B = dL/dy^T;
/// - input gradient: A = dL/dy padded by kernel-1-padding, rows = input pixels, reduction = (output
///   channel, ky, kx), B = the flipped weight (a stride-1 convolution's adjoint is a convolution).
final class ImplicitConvPlan {
    static let rowTile = 6
    static let panel = 16

    let geometry: ConvGeometry
    /// The zero-padded input plane.
    let paddedHeight: Int, paddedWidth: Int
    /// Output pixel offsets in the padded input (window corners), padded to a multiple of 6 rows.
    let pixelRows: Int
    let pixelOffsets: [Int32]
    /// Tap offsets inside a window, (channel, ky, kx) order, padded to a multiple of 6 rows.
    let tapRows: Int
    let tapOffsets: [Int32]
    /// Panels of 16 output channels.
    let outputPanels: Int

    /// The input gradient runs implicitly (stride 1, each padding smaller than the kernel).
    let hasInputGradient: Bool
    /// dL/dy padded by (kernel - 1 - padding) on each side.
    let gradientHeight: Int, gradientWidth: Int
    let inputRows: Int
    let inputPixelOffsets: [Int32]
    /// (output channel, ky, kx) offsets in the padded dL/dy.
    let flippedTapOffsets: [Int32]
    /// Panels of 16 input channels.
    let inputPanels: Int

    /// Offsets of the kernel rows (channel, ky) in the padded input, for the pooled backward.
    let kernelRowOffsets: [Int32]

    init(_ g: ConvGeometry) {
        geometry = g
        let tile = Self.rowTile
        func roundUp(_ n: Int) -> Int { (n + tile - 1) / tile * tile }
        paddedHeight = g.inHeight + g.padTop + g.padBottom
        paddedWidth = g.inWidth + g.padLeft + g.padRight
        let plane = paddedHeight * paddedWidth
        pixelRows = roundUp(g.outputPixels)
        pixelOffsets = Self.grid(
            (1, g.outHeight, g.outWidth), strides: (0, g.strideH * paddedWidth, g.strideW), padded: pixelRows)
        tapRows = roundUp(g.patchSize)
        tapOffsets = Self.grid(
            (g.inChannels, g.kernelHeight, g.kernelWidth), strides: (plane, paddedWidth, 1), padded: tapRows)
        outputPanels = (g.outChannels + Self.panel - 1) / Self.panel

        hasInputGradient = Self.hasInputGradient(g)
        gradientHeight = g.inHeight + g.kernelHeight - 1
        gradientWidth = g.inWidth + g.kernelWidth - 1
        inputRows = roundUp(g.inHeight * g.inWidth)
        inputPixelOffsets = Self.grid((1, g.inHeight, g.inWidth), strides: (0, gradientWidth, 1), padded: inputRows)
        flippedTapOffsets = Self.grid(
            (g.outChannels, g.kernelHeight, g.kernelWidth),
            strides: (gradientHeight * gradientWidth, gradientWidth, 1), padded: g.outChannels * g.kernelHeight * g.kernelWidth)
        inputPanels = (g.inChannels + Self.panel - 1) / Self.panel
        kernelRowOffsets = Self.grid(
            (g.inChannels, g.kernelHeight, 1), strides: (plane, paddedWidth, 0), padded: g.inChannels * g.kernelHeight)
    }

    /// Whether the input gradient of `g` can run implicitly: stride 1, each padding smaller than the kernel.
    static func hasInputGradient(_ g: ConvGeometry) -> Bool {
        g.strideH == 1 && g.strideW == 1 && g.padTop < g.kernelHeight && g.padBottom < g.kernelHeight
            && g.padLeft < g.kernelWidth && g.padRight < g.kernelWidth
    }

    private static func grid(_ n: (Int, Int, Int), strides s: (Int, Int, Int), padded: Int) -> [Int32] {
        [Int32](unsafeUninitializedCapacity: padded) { buffer, count in
            cn_offset_grid(buffer.baseAddress!, n.0, n.1, n.2, s.0, s.1, s.2, padded)
            count = padded
        }
    }

    // MARK: Scratch sizes (floats)

    /// The padded input, with 16 floats of slack for the pooled backward's row vectors.
    var paddedInputCount: Int { geometry.inChannels * paddedHeight * paddedWidth + 16 }
    var forwardWeightCount: Int { outputPanels * geometry.patchSize * Self.panel }
    var forwardOutputCount: Int { outputPanels * pixelRows * Self.panel }
    var transposedGradientCount: Int { outputPanels * geometry.outputPixels * Self.panel }
    var weightGradientCount: Int { outputPanels * tapRows * Self.panel }
    var paddedGradientCount: Int { geometry.outChannels * gradientHeight * gradientWidth }
    var flippedWeightCount: Int { inputPanels * geometry.outChannels * geometry.kernelHeight * geometry.kernelWidth * Self.panel }
    var inputGradientCount: Int { inputPanels * inputRows * Self.panel }

    // MARK: Per-call packing

    /// Runs `body` with the kernel-row offsets and the pixel offsets pinned (the pooled backward's tables).
    func withOffsetTables<R>(_ body: (UnsafePointer<Int32>, UnsafePointer<Int32>) throws -> R) rethrows -> R {
        try kernelRowOffsets.withUnsafeBufferPointer { rows in
            try pixelOffsets.withUnsafeBufferPointer { pixels in try body(rows.baseAddress!, pixels.baseAddress!) }
        }
    }

    /// The weight as panels of 16 output channels (`forwardWeightCount` floats).
    func packForwardWeight(_ w: UnsafePointer<Float>, into b: UnsafeMutablePointer<Float>) {
        cn_pack_weights_forward(w, geometry.outChannels, geometry.patchSize, b)
    }

    /// The flipped weight as panels of 16 input channels (`flippedWeightCount` floats).
    func packFlippedWeight(_ w: UnsafePointer<Float>, into b: UnsafeMutablePointer<Float>) {
        let g = geometry
        cn_pack_weights_flipped(w, g.outChannels, g.inChannels, g.kernelHeight, g.kernelWidth, b)
    }

    // MARK: Per-sample passes

    /// Copies one sample into the zero-padded input buffer.
    func padInput(_ x: UnsafePointer<Float>, into padded: UnsafeMutablePointer<Float>) {
        let g = geometry
        cn_pad_planes(x, nil, g.inChannels, g.inHeight, g.inWidth, padded, paddedHeight, paddedWidth, g.padTop, g.padLeft)
    }

    /// y = bias + conv(x) for one sample (OC x OH x OW), through ReLU when `relu`; `padded` holds the
    /// sample from `padInput`, `weight` the output of `packForwardWeight`, `scratch` `forwardOutputCount` floats.
    func forward(
        level: KernelLevel, padded: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
        relu: Bool, scratch: UnsafeMutablePointer<Float>, output y: UnsafeMutablePointer<Float>
    ) {
        let g = geometry, level = Int32(level.rawValue)
        pixelOffsets.withUnsafeBufferPointer { rows in
            tapOffsets.withUnsafeBufferPointer { taps in
                cn_igemm(
                    level, padded, rows.baseAddress!, pixelRows, taps.baseAddress!, g.patchSize, weight, outputPanels,
                    scratch, 0)
            }
        }
        cn_panels_to_planes(level, scratch, pixelRows, g.outputPixels, g.outChannels, bias, relu ? 1 : 0, y)
    }

    /// dL/dy of one sample (masked by `reluOutput` > 0 when given) transposed into panels
    /// (`transposedGradientCount` floats); adds each channel's sum to `biasGradient`.
    func transposeGradient(
        level: KernelLevel, _ dy: UnsafePointer<Float>, reluOutput: UnsafePointer<Float>?,
        into dyT: UnsafeMutablePointer<Float>, biasGradient: UnsafeMutablePointer<Float>
    ) {
        cn_transpose_to_panels(
            Int32(level.rawValue), dy, reluOutput, geometry.outChannels, geometry.outputPixels, dyT, biasGradient)
    }

    /// Accumulates one sample's weight gradient, transposed, into `weightGradient`
    /// (`weightGradientCount` floats: panels x tapRows x 16); `accumulate == false` overwrites it.
    func accumulateWeightGradient(
        level: KernelLevel, padded: UnsafePointer<Float>, transposedGradient dyT: UnsafePointer<Float>,
        into weightGradient: UnsafeMutablePointer<Float>, accumulate: Bool
    ) {
        tapOffsets.withUnsafeBufferPointer { taps in
            pixelOffsets.withUnsafeBufferPointer { pixels in
                cn_igemm(
                    Int32(level.rawValue), padded, taps.baseAddress!, tapRows, pixels.baseAddress!,
                    geometry.outputPixels, dyT, outputPanels, weightGradient, accumulate ? 1 : 0)
            }
        }
    }

    /// Adds a transposed weight gradient (`accumulateWeightGradient`'s layout) onto dW (OC x patch).
    func addWeightGradient(_ transposed: UnsafePointer<Float>, to dw: UnsafeMutablePointer<Float>) {
        let g = geometry, panel = Self.panel
        for o in 0..<g.outChannels {
            let offset: Int = (o / panel) &* tapRows &* panel &+ o % panel
            let source = transposed + offset
            let row = dw + o &* g.patchSize
            for k in 0..<g.patchSize { row[k] += source[k &* panel] }
        }
    }

    /// dL/dx of one sample (C x H x W) from its dL/dy (masked by `reluOutput` > 0 when given); needs
    /// `hasInputGradient`. `paddedGradient`: `paddedGradientCount` floats, `scratch`: `inputGradientCount`.
    func inputGradient(
        level: KernelLevel, _ dy: UnsafePointer<Float>, reluOutput: UnsafePointer<Float>?,
        flippedWeight: UnsafePointer<Float>, paddedGradient: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>, output dx: UnsafeMutablePointer<Float>
    ) {
        let g = geometry, level = Int32(level.rawValue)
        cn_pad_planes(
            dy, reluOutput, g.outChannels, g.outHeight, g.outWidth, paddedGradient, gradientHeight, gradientWidth,
            g.kernelHeight - 1 - g.padTop, g.kernelWidth - 1 - g.padLeft)
        inputPixelOffsets.withUnsafeBufferPointer { rows in
            flippedTapOffsets.withUnsafeBufferPointer { taps in
                cn_igemm(
                    level, paddedGradient, rows.baseAddress!, inputRows, taps.baseAddress!, taps.count, flippedWeight,
                    inputPanels, scratch, 0)
            }
        }
        cn_panels_to_planes(level, scratch, inputRows, g.inHeight * g.inWidth, g.inChannels, nil, 0, dx)
    }
}
