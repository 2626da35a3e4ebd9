/// ReLU: max(x, 0).
public func relu(_ x: Tensor) -> Tensor { leakyRelu(x, slope: 0) }

/// dL/dx of ReLU given dL/dy and the forward input x.
public func reluBackward(_ dy: Tensor, input x: Tensor) throws -> Tensor {
    try leakyReluBackward(dy, input: x, slope: 0)
}

/// Leaky ReLU: x for x > 0, else slope * x.
public func leakyRelu(_ x: Tensor, slope: Float) -> Tensor {
    var y = Tensor.empty
    leakyRelu(x, slope: slope, into: &y)
    return y
}

/// `leakyRelu` writing into a reusable buffer (see `Tensor.overwrite`).
func leakyRelu(_ x: Tensor, slope: Float, into y: inout Tensor) {
    x.mapBuffer(into: &y) { ElementwiseKernels.leakyRelu($0, $1, count: $2, slope: slope) }
}

public func leakyReluBackward(_ dy: Tensor, input x: Tensor, slope: Float) throws -> Tensor {
    var dx = Tensor.empty
    try leakyReluBackward(dy, input: x, slope: slope, into: &dx)
    return dx
}

func leakyReluBackward(_ dy: Tensor, input x: Tensor, slope: Float, into dx: inout Tensor) throws {
    try requireSameShape(dy, x, "leaky ReLU backward")
    dy.zipBuffer(x, into: &dx) { ElementwiseKernels.leakyReluBackward($0, input: $1, $2, count: $3, slope: slope) }
}

/// Logistic sigmoid 1 / (1 + e^-x), computed without overflow.
public func sigmoid(_ x: Tensor) -> Tensor {
    var y = Tensor.empty
    sigmoid(x, into: &y)
    return y
}

func sigmoid(_ x: Tensor, into y: inout Tensor) {
    x.mapBuffer(into: &y) { ElementwiseKernels.sigmoid($0, $1, count: $2) }
}

/// dL/dx of the sigmoid from dL/dy and the forward *output* y.
public func sigmoidBackward(_ dy: Tensor, output y: Tensor) throws -> Tensor {
    var dx = Tensor.empty
    try sigmoidBackward(dy, output: y, into: &dx)
    return dx
}

func sigmoidBackward(_ dy: Tensor, output y: Tensor, into dx: inout Tensor) throws {
    try requireSameShape(dy, y, "sigmoid backward")
    dy.zipBuffer(y, into: &dx) { ElementwiseKernels.sigmoidBackward($0, output: $1, $2, count: $3) }
}

public func tanh(_ x: Tensor) -> Tensor {
    var y = Tensor.empty
    tanh(x, into: &y)
    return y
}

func tanh(_ x: Tensor, into y: inout Tensor) {
    x.mapBuffer(into: &y) { ElementwiseKernels.tanh($0, $1, count: $2) }
}

/// dL/dx of tanh from dL/dy and the forward *output* y.
public func tanhBackward(_ dy: Tensor, output y: Tensor) throws -> Tensor {
    var dx = Tensor.empty
    try tanhBackward(dy, output: y, into: &dx)
    return dx
}

func tanhBackward(_ dy: Tensor, output y: Tensor, into dx: inout Tensor) throws {
    try requireSameShape(dy, y, "tanh backward")
    dy.zipBuffer(y, into: &dx) { ElementwiseKernels.tanhBackward($0, output: $1, $2, count: $3) }
}

func requireSameShape(_ a: Tensor, _ b: Tensor, _ operation: String) throws {
    guard a.shape == b.shape else {
        throw ShapeError.mismatch(operation: operation, expected: formatShape(b.shape), got: a.shape)
    }
}
