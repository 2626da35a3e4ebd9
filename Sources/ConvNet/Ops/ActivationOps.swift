/// ReLU: max(x, 0).
public func relu(_ x: Tensor, context: ExecutionContext = .default) -> Tensor { leakyRelu(x, slope: 0, context: context) }

/// dL/dx of ReLU given dL/dy and the forward input x.
public func reluBackward(_ dy: Tensor, input x: Tensor, context: ExecutionContext = .default) throws -> Tensor {
    try leakyReluBackward(dy, input: x, slope: 0, context: context)
}

/// Leaky ReLU: x for x > 0, else slope * x.
public func leakyRelu(_ x: Tensor, slope: Float, context: ExecutionContext = .default) -> Tensor {
    var y = Tensor.empty
    leakyRelu(x, slope: slope, into: &y, context: context)
    return y
}

/// `leakyRelu` writing into a reusable buffer (see `Tensor.overwrite`).
func leakyRelu(_ x: Tensor, slope: Float, into y: inout Tensor, context: ExecutionContext) {
    x.mapBuffer(into: &y, context: context) { ElementwiseKernels.leakyRelu($0, $1, count: $2, slope: slope) }
}

public func leakyReluBackward(_ dy: Tensor, input x: Tensor, slope: Float, context: ExecutionContext = .default) throws -> Tensor {
    var dx = Tensor.empty
    try leakyReluBackward(dy, input: x, slope: slope, into: &dx, context: context)
    return dx
}

func leakyReluBackward(_ dy: Tensor, input x: Tensor, slope: Float, into dx: inout Tensor, context: ExecutionContext) throws {
    try requireSameShape(dy, x, "leaky ReLU backward")
    dy.zipBuffer(x, into: &dx, context: context) { ElementwiseKernels.leakyReluBackward($0, input: $1, $2, count: $3, slope: slope) }
}

/// Logistic sigmoid 1 / (1 + e^-x), computed without overflow.
public func sigmoid(_ x: Tensor, context: ExecutionContext = .default) -> Tensor {
    var y = Tensor.empty
    sigmoid(x, into: &y, context: context)
    return y
}

func sigmoid(_ x: Tensor, into y: inout Tensor, context: ExecutionContext) {
    x.mapBuffer(into: &y, context: context) { ElementwiseKernels.sigmoid($0, $1, count: $2) }
}

/// dL/dx of the sigmoid from dL/dy and the forward *output* y.
public func sigmoidBackward(_ dy: Tensor, output y: Tensor, context: ExecutionContext = .default) throws -> Tensor {
    var dx = Tensor.empty
    try sigmoidBackward(dy, output: y, into: &dx, context: context)
    return dx
}

func sigmoidBackward(_ dy: Tensor, output y: Tensor, into dx: inout Tensor, context: ExecutionContext) throws {
    try requireSameShape(dy, y, "sigmoid backward")
    dy.zipBuffer(y, into: &dx, context: context) { ElementwiseKernels.sigmoidBackward($0, output: $1, $2, count: $3) }
}

public func tanh(_ x: Tensor, context: ExecutionContext = .default) -> Tensor {
    var y = Tensor.empty
    tanh(x, into: &y, context: context)
    return y
}

func tanh(_ x: Tensor, into y: inout Tensor, context: ExecutionContext) {
    x.mapBuffer(into: &y, context: context) { ElementwiseKernels.tanh($0, $1, count: $2) }
}

/// dL/dx of tanh from dL/dy and the forward *output* y.
public func tanhBackward(_ dy: Tensor, output y: Tensor, context: ExecutionContext = .default) throws -> Tensor {
    var dx = Tensor.empty
    try tanhBackward(dy, output: y, into: &dx, context: context)
    return dx
}

func tanhBackward(_ dy: Tensor, output y: Tensor, into dx: inout Tensor, context: ExecutionContext) throws {
    try requireSameShape(dy, y, "tanh backward")
    dy.zipBuffer(y, into: &dx, context: context) { ElementwiseKernels.tanhBackward($0, output: $1, $2, count: $3) }
}

func requireSameShape(_ a: Tensor, _ b: Tensor, _ operation: String) throws {
    guard a.shape == b.shape else {
        throw ShapeError.mismatch(operation: operation, expected: formatShape(b.shape), got: a.shape)
    }
}
