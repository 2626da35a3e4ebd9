/// Resolves pooling geometry for an N x C x H x W input (output size floors, as in PyTorch).
public func poolGeometry(input: [Int], kernel: (Int, Int), stride: (Int, Int), operation: String = "pool") throws -> ConvGeometry {
    guard input.count == 4 else {
        throw ShapeError.mismatch(operation: operation, expected: "an N x C x H x W input", got: input)
    }
    return try ConvGeometry(
        inChannels: input[1], inHeight: input[2], inWidth: input[3], outChannels: input[1],
        kernelHeight: kernel.0, kernelWidth: kernel.1, strideH: stride.0, strideW: stride.1,
        padding: .valid, operation: operation)
}

/// Max pooling; returns the output and, per output, the winning input's offset inside its plane.
public func maxPool2d(
    _ x: Tensor, kernel: (Int, Int), stride: (Int, Int), context: ExecutionContext = .default
) throws -> (output: Tensor, argmax: [Int32]) {
    let g = try poolGeometry(input: x.shape, kernel: kernel, stride: stride, operation: "maxpool")
    var y = Tensor.empty, argmax: [Int32] = []
    maxPoolForward(x, geometry: g, into: &y, argmax: &argmax, context: context)
    return (y, argmax)
}

/// Makes `argmax` hold `count` winners, within its capacity when the batch shrinks and grows back (the short
/// last batch of an epoch); the values are stale until the pooling writes them.
func resizeWinners(_ argmax: inout [Int32], to count: Int) {
    if argmax.count > count { argmax.removeLast(argmax.count - count) }
    if argmax.count < count { argmax.append(contentsOf: repeatElement(0, count: count - argmax.count)) }
}

/// Max pooling of `x` (N x C x H x W) into reusable buffers (see `Tensor.overwrite`): the output, and per
/// output the winner's offset inside its plane (resized within its capacity when the batch changes).
func maxPoolForward(_ x: Tensor, geometry g: ConvGeometry, into y: inout Tensor, argmax: inout [Int32], context: ExecutionContext) {
    let planes = x.batchSize &* g.inChannels
    let winners = planes &* g.outputPixels
    resizeWinners(&argmax, to: winners)
    y.prepare(shape: [x.batchSize, g.outChannels, g.outHeight, g.outWidth])
    guard winners > 0 else { return }
    Tensor.withBaseAddresses(x, .empty) { xp, _, _, _ in
        argmax.withUnsafeMutableBufferPointer { a in
            y.withUnsafeMutableBufferPointer { out in
                PoolingKernels.maxForward(xp!, planes: planes, geometry: g, output: out.baseAddress!, argmax: a.baseAddress!, context: context)
            }
        }
    }
}

/// dL/dx of max pooling from dL/dy and the forward input (the winners are found again from x).
public func maxPool2dBackward(
    _ dy: Tensor, input x: Tensor, kernel: (Int, Int), stride: (Int, Int), context: ExecutionContext = .default
) throws -> Tensor {
    let (y, argmax) = try maxPool2d(x, kernel: kernel, stride: stride, context: context)
    try requireSameShape(dy, y, "maxpool backward")
    let g = try poolGeometry(input: x.shape, kernel: kernel, stride: stride)
    return maxPoolBackward(dy, argmax: argmax, inputShape: x.shape, geometry: g, context: context)
}

func maxPoolBackward(_ dy: Tensor, argmax: [Int32], inputShape: [Int], geometry g: ConvGeometry, context: ExecutionContext) -> Tensor {
    var dx = Tensor.empty
    maxPoolBackward(dy, argmax: argmax, inputShape: inputShape, geometry: g, into: &dx, context: context)
    return dx
}

/// dL/dx of max pooling written into a reusable buffer (see `Tensor.overwrite`), zeroed first: the
/// kernel adds each output gradient to its winner.
func maxPoolBackward(
    _ dy: Tensor, argmax: [Int32], inputShape: [Int], geometry g: ConvGeometry, into dx: inout Tensor, context: ExecutionContext
) {
    dx.overwrite(shape: inputShape, zeroed: true) { dxp in
        dy.withUnsafeBufferPointer { d in
            argmax.withUnsafeBufferPointer { a in
                PoolingKernels.maxBackward(
                    d.baseAddress!, argmax: a.baseAddress!, planes: inputShape[0] * inputShape[1], geometry: g,
                    inputGradient: dxp.baseAddress!, context: context)
            }
        }
    }
}

/// Average pooling.
public func averagePool2d(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int)) throws -> Tensor {
    var y = Tensor.empty
    try averagePool2d(x, kernel: kernel, stride: stride, into: &y)
    return y
}

/// `averagePool2d` writing into a reusable buffer (see `Tensor.overwrite`).
func averagePool2d(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int), into y: inout Tensor) throws {
    let g = try poolGeometry(input: x.shape, kernel: kernel, stride: stride, operation: "avgpool")
    y.overwrite(shape: [x.shape[0], x.shape[1], g.outHeight, g.outWidth]) { out in
        x.withUnsafeBufferPointer { xp in
            PoolingKernels.averageForward(xp.baseAddress!, planes: x.shape[0] * x.shape[1], geometry: g, output: out.baseAddress!)
        }
    }
}

public func averagePool2dBackward(_ dy: Tensor, inputShape: [Int], kernel: (Int, Int), stride: (Int, Int)) throws -> Tensor {
    var dx = Tensor.empty
    try averagePool2dBackward(dy, inputShape: inputShape, kernel: kernel, stride: stride, into: &dx)
    return dx
}

/// `averagePool2dBackward` writing into a reusable buffer, zeroed first (windows may overlap).
func averagePool2dBackward(
    _ dy: Tensor, inputShape: [Int], kernel: (Int, Int), stride: (Int, Int), into dx: inout Tensor
) throws {
    let g = try poolGeometry(input: inputShape, kernel: kernel, stride: stride, operation: "avgpool backward")
    let expected = [inputShape[0], inputShape[1], g.outHeight, g.outWidth]
    guard dy.shape == expected else {
        throw ShapeError.mismatch(operation: "avgpool backward", expected: formatShape(expected), got: dy.shape)
    }
    dx.overwrite(shape: inputShape, zeroed: true) { dxp in
        dy.withUnsafeBufferPointer { d in
            PoolingKernels.averageBackward(d.baseAddress!, planes: inputShape[0] * inputShape[1], geometry: g, inputGradient: dxp.baseAddress!)
        }
    }
}
