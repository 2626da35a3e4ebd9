/// Zero padding of a 2-D convolution: explicit amounts, or "same" (output size = ceil(input / stride)).
public enum Padding: Sendable, Equatable {
    case explicit(top: Int, left: Int, bottom: Int, right: Int)
    case same

    public static func symmetric(_ p: Int) -> Padding { .explicit(top: p, left: p, bottom: p, right: p) }
    public static let valid = Padding.symmetric(0)
}

/// Every size of one 2-D convolution or pooling window, resolved for a concrete input.
public struct ConvGeometry: Sendable, Equatable {
    public var inChannels: Int, inHeight: Int, inWidth: Int
    public var outChannels: Int
    public var kernelHeight: Int, kernelWidth: Int
    public var strideH: Int, strideW: Int
    public var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int
    public var outHeight: Int, outWidth: Int

    /// Resolves sizes; throws when the window does not fit or a size is not positive.
    public init(
        inChannels: Int, inHeight: Int, inWidth: Int, outChannels: Int,
        kernelHeight: Int, kernelWidth: Int, strideH: Int = 1, strideW: Int = 1,
        padding: Padding = .valid, operation: String = "conv"
    ) throws {
        guard inChannels > 0, inHeight > 0, inWidth > 0, outChannels > 0 else {
            throw ValueError.invalidArgument(
                "\(operation): input \(inChannels)x\(inHeight)x\(inWidth) and \(outChannels) output channels must all be positive")
        }
        guard kernelHeight > 0, kernelWidth > 0, strideH > 0, strideW > 0 else {
            throw ValueError.invalidArgument(
                "\(operation): kernel \(kernelHeight)x\(kernelWidth) and stride \(strideH)x\(strideW) must be positive")
        }
        self.inChannels = inChannels; self.inHeight = inHeight; self.inWidth = inWidth
        self.outChannels = outChannels
        self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth
        self.strideH = strideH; self.strideW = strideW
        switch padding {
        case .explicit(let t, let l, let b, let r):
            guard t >= 0, l >= 0, b >= 0, r >= 0 else {
                throw ValueError.invalidArgument("\(operation): padding must not be negative")
            }
            padTop = t; padLeft = l; padBottom = b; padRight = r
        case .same:
            let oh = (inHeight + strideH - 1) / strideH, ow = (inWidth + strideW - 1) / strideW
            let ph = max(0, (oh - 1) * strideH + kernelHeight - inHeight)
            let pw = max(0, (ow - 1) * strideW + kernelWidth - inWidth)
            padTop = ph / 2; padBottom = ph - ph / 2
            padLeft = pw / 2; padRight = pw - pw / 2
        }
        let spanH = inHeight + padTop + padBottom - kernelHeight
        let spanW = inWidth + padLeft + padRight - kernelWidth
        guard spanH >= 0, spanW >= 0 else {
            throw ValueError.invalidArgument(
                "\(operation): kernel \(kernelHeight)x\(kernelWidth) is larger than the padded input "
                    + "\(inHeight + padTop + padBottom)x\(inWidth + padLeft + padRight)")
        }
        outHeight = spanH / strideH + 1
        outWidth = spanW / strideW + 1
    }

    public var inputSize: Int { inChannels * inHeight * inWidth }
    public var outputSize: Int { outChannels * outHeight * outWidth }
    /// Rows of the im2col matrix: one per (channel, kernel row, kernel column).
    public var patchSize: Int { inChannels * kernelHeight * kernelWidth }
    public var outputPixels: Int { outHeight * outWidth }
    /// True when im2col would only copy the input (1x1 kernel, stride 1, no padding).
    public var isPointwise: Bool {
        kernelHeight == 1 && kernelWidth == 1 && strideH == 1 && strideW == 1
            && padTop == 0 && padLeft == 0 && padBottom == 0 && padRight == 0
    }
}

/// Gradients of a convolution with respect to its input, weight and bias.
public struct ConvGradients: Sendable {
    public var input: Tensor
    public var weight: Tensor
    public var bias: Tensor

    /// No storage yet: the buffers a layer passes to the backward pass on its first call.
    static var empty: ConvGradients { ConvGradients(input: .empty, weight: .empty, bias: .empty) }

    /// Moves the tensors out (leaving empty ones), so that their storage is uniquely held by the caller
    /// and `Tensor.overwrite` reuses it.
    mutating func take() -> (input: Tensor, weight: Tensor, bias: Tensor) {
        defer { self = .empty }
        return (input, weight, bias)
    }
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
