import Foundation

/// Elementwise activation kernels over raw buffers. Backward kernels read the forward input (or
/// output, where that is cheaper) that the layer cached.
public enum ElementwiseKernels {
    public static func leakyRelu(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, slope: Float) {
        for i in 0..<count {
            let v = x[i]
            y[i] = v > 0 ? v : v * slope
        }
    }

    /// dx = dy where x > 0, else dy * slope (slope 0 is ReLU; the kink at 0 takes the slope side).
    public static func leakyReluBackward(
        _ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
        count: Int, slope: Float
    ) {
        for i in 0..<count { dx[i] = x[i] > 0 ? dy[i] : dy[i] * slope }
    }

    public static func sigmoid(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let v = x[i]
            // Stable on both sides: never exponentiates a large positive number.
            if v >= 0 {
                y[i] = 1 / (1 + expf(-v))
            } else {
                let e = expf(v)
                y[i] = e / (1 + e)
            }
        }
    }

    /// dx = dy * y * (1 - y), from the cached output y.
    public static func sigmoidBackward(
        _ dy: UnsafePointer<Float>, output y: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, count: Int
    ) {
        for i in 0..<count { dx[i] = dy[i] * y[i] * (1 - y[i]) }
    }

    public static func tanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = tanhf(x[i]) }
    }

    /// dx = dy * (1 - y^2), from the cached output y.
    public static func tanhBackward(
        _ dy: UnsafePointer<Float>, output y: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, count: Int
    ) {
        for i in 0..<count { dx[i] = dy[i] * (1 - y[i] * y[i]) }
    }
}

extension Tensor {
    /// A new tensor of this shape whose scalars `body` writes from this tensor's scalars.
    func mapBuffer(_ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        Tensor(shape: shape) { out in
            withUnsafeBufferPointer { src in body(src.baseAddress!, out.baseAddress!, count) }
        }
    }

    /// A new tensor from this one and `other` (same count), written by `body`.
    func zipBuffer(
        _ other: Tensor, _ body: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void
    ) -> Tensor {
        Tensor(shape: shape) { out in
            withUnsafeBufferPointer { a in
                other.withUnsafeBufferPointer { b in body(a.baseAddress!, b.baseAddress!, out.baseAddress!, count) }
            }
        }
    }
}
