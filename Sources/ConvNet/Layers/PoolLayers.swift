/// Max pooling over each channel; the output size floors, as in PyTorch. Caches the winners'
/// positions so backward routes each gradient to one input.
public final class MaxPool2D: Layer {
    public let kind = "maxpool"
    public var name = "maxpool"
    public let kernel: (height: Int, width: Int)
    public let stride: (height: Int, width: Int)
    /// The pooling's geometry (channels in = out), known once built.
    public private(set) var geometry: ConvGeometry!
    /// Per output element of the last forward pass, the winning input's offset inside its plane.
    public private(set) var argmax: [Int32] = []
    private var cachedInputShape: [Int]?
    /// Reused from call to call (see `Tensor.overwrite`).
    private var output = Tensor.empty, inputGradient = Tensor.empty

    /// A `kernel.0` x `kernel.1` window (height, width); `stride` defaults to the kernel size.
    public init(kernel: (Int, Int), stride: (Int, Int)? = nil) {
        self.kernel = (kernel.0, kernel.1)
        let s = stride ?? kernel
        self.stride = (s.0, s.1)
    }

    /// A square window of `kernel` x `kernel`; `stride` defaults to the kernel size.
    public convenience init(kernel: Int, stride: Int? = nil) {
        self.init(kernel: (kernel, kernel), stride: stride.map { ($0, $0) })
    }

    public func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] {
        geometry = try poolLayerGeometry(self, inputShape: inputShape, kernel: kernel, stride: stride)
        return [geometry.outChannels, geometry.outHeight, geometry.outWidth]
    }

    public func forward(_ input: Tensor, training: Bool, context: ExecutionContext) throws -> Tensor {
        cachedInputShape = input.shape
        maxPoolForward(input, geometry: geometry, into: &output, argmax: &argmax, context: context)
        return output
    }

    public func backward(_ outputGradient: Tensor, context: ExecutionContext) throws -> Tensor {
        guard let shape = cachedInputShape else { throw missingForward(self) }
        try checkGradientShape(self, outputGradient, expected: [shape[0], geometry.outChannels, geometry.outHeight, geometry.outWidth])
        maxPoolBackward(outputGradient, argmax: argmax, inputShape: shape, geometry: geometry, into: &inputGradient, context: context)
        return inputGradient
    }

    public var specStatement: String { poolSpec("maxpool", kernel, stride) }
    /// The winners stay (`argmax` is the layer's own buffer); only the forward pass's shape goes.
    public func releaseCaches() { cachedInputShape = nil }
}

/// Average pooling over each channel (no padding; the output size floors).
public final class AvgPool2D: Layer {
    public let kind = "avgpool"
    public var name = "avgpool"
    public let kernel: (height: Int, width: Int)
    public let stride: (height: Int, width: Int)
    private var geometry: ConvGeometry!
    private var cachedInputShape: [Int]?
    /// Reused from call to call (see `Tensor.overwrite`).
    private var output = Tensor.empty, inputGradient = Tensor.empty

    /// A `kernel.0` x `kernel.1` window (height, width); `stride` defaults to the kernel size.
    public init(kernel: (Int, Int), stride: (Int, Int)? = nil) {
        self.kernel = (kernel.0, kernel.1)
        let s = stride ?? kernel
        self.stride = (s.0, s.1)
    }

    /// A square window of `kernel` x `kernel`; `stride` defaults to the kernel size.
    public convenience init(kernel: Int, stride: Int? = nil) {
        self.init(kernel: (kernel, kernel), stride: stride.map { ($0, $0) })
    }

    public func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] {
        geometry = try poolLayerGeometry(self, inputShape: inputShape, kernel: kernel, stride: stride)
        return [geometry.outChannels, geometry.outHeight, geometry.outWidth]
    }

    public func forward(_ input: Tensor, training: Bool, context: ExecutionContext) throws -> Tensor {
        cachedInputShape = nil
        try averagePool2d(input, kernel: kernel, stride: stride, into: &output)
        cachedInputShape = input.shape
        return output
    }

    public func backward(_ outputGradient: Tensor, context: ExecutionContext) throws -> Tensor {
        guard let shape = cachedInputShape else { throw missingForward(self) }
        try checkGradientShape(self, outputGradient, expected: [shape[0], geometry.outChannels, geometry.outHeight, geometry.outWidth])
        try averagePool2dBackward(outputGradient, inputShape: shape, kernel: kernel, stride: stride, into: &inputGradient)
        return inputGradient
    }

    public var specStatement: String { poolSpec("avgpool", kernel, stride) }
    public func releaseCaches() { cachedInputShape = nil }
}

private func poolLayerGeometry(
    _ layer: any Layer, inputShape: [Int], kernel: (Int, Int), stride: (Int, Int)
) throws -> ConvGeometry {
    guard inputShape.count == 3 else {
        throw ShapeError.layer(name: layer.name, message: "needs a C x H x W input, got \(formatShape(inputShape))")
    }
    do {
        return try poolGeometry(input: [1] + inputShape, kernel: kernel, stride: stride, operation: "layer \(layer.name)")
    } catch let error as ValueError {
        throw ShapeError.layer(name: layer.name, message: "input \(formatShape(inputShape)): \(error)")
    }
}

private func poolSpec(_ keyword: String, _ k: (height: Int, width: Int), _ s: (height: Int, width: Int)) -> String {
    let kernel = k.height == k.width ? "\(k.height)" : "\(k.height)x\(k.width)"
    if s == k { return "\(keyword) \(kernel)" }
    let stride = s.height == s.width ? "\(s.height)" : "\(s.height)x\(s.width)"
    return "\(keyword) \(kernel) stride \(stride)"
}

/// Global average pooling (`gap`, PyTorch's `AdaptiveAvgPool2d(1)`, ONNX's `GlobalAveragePool`): the mean
/// of each channel over its whole plane, C x H x W -> C x 1 x 1.
public final class GlobalAvgPool: Layer {
    public let kind = "gap"
    public var name = "gap"
    private var channels = 0, plane = 0
    private var cachedInputShape: [Int]?
    /// Reused from call to call (see `Tensor.overwrite`).
    private var output = Tensor.empty, inputGradient = Tensor.empty

    public init() {}

    public func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] {
        guard inputShape.count == 3, inputShape.allSatisfy({ $0 > 0 }) else {
            throw ShapeError.layer(name: name, message: "needs a C x H x W input, got \(formatShape(inputShape))")
        }
        channels = inputShape[0]
        plane = inputShape[1] * inputShape[2]
        return [channels, 1, 1]
    }

    public func forward(_ input: Tensor, training: Bool, context: ExecutionContext) throws -> Tensor {
        cachedInputShape = nil
        guard input.rank == 4, input.shape[1] == channels, input.shape[2] * input.shape[3] == plane else {
            throw ShapeError.mismatch(operation: "layer \(name)", expected: "N x \(channels) x H x W with H x W = \(plane)", got: input.shape)
        }
        let planes = input.batchSize * channels, planeSize = self.plane
        output.overwrite(shape: [input.batchSize, channels, 1, 1]) { y in
            input.withUnsafeBufferPointer { x in
                GlobalPoolingKernels.averageForward(x.baseAddress!, planes: planes, plane: planeSize, output: y.baseAddress!)
            }
        }
        cachedInputShape = input.shape
        return output
    }

    public func backward(_ outputGradient: Tensor, context: ExecutionContext) throws -> Tensor {
        guard let shape = cachedInputShape else { throw missingForward(self) }
        try checkGradientShape(self, outputGradient, expected: [shape[0], channels, 1, 1])
        let planes = shape[0] * channels, planeSize = self.plane
        inputGradient.overwrite(shape: shape) { dx in
            outputGradient.withUnsafeBufferPointer { dy in
                GlobalPoolingKernels.averageBackward(dy.baseAddress!, planes: planes, plane: planeSize, inputGradient: dx.baseAddress!)
            }
        }
        return inputGradient
    }

    public var specStatement: String { "gap" }
    public func releaseCaches() { cachedInputShape = nil }
}
