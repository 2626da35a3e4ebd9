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

/// Splits `count` elementwise work items into contiguous ranges, one per thread, when there are
/// enough of them to pay for waking the other threads (up to `context.threads`); `body(start, length)` runs once per range.
/// Elementwise results do not depend on the split.
@inline(__always)
func forEachElementRange(_ count: Int, context: ExecutionContext, _ body: (Int, Int) -> Void) {
    let parts = count >= ElementwiseTuning.minParallelCount ? context.threads : 1
    if parts <= 1 {
        body(0, count)
        return
    }
    context.parallelFor(parts) { t in
        // Ranges aligned to 16 floats so neighbouring threads do not share a cache line.
        let first = (count &* t / parts) & ~15
        let end = t &+ 1 == parts ? count : (count &* (t &+ 1) / parts) & ~15
        if end > first { body(first, end &- first) }
    }
}

enum ElementwiseTuning {
    /// Elements below which elementwise kernels stay on the calling thread.
    static let minParallelCount = 1 << 16
}

extension Tensor {
    /// A new tensor of this shape whose scalars `body` writes from this tensor's scalars
    /// (`body(source, destination, count)`; large tensors are split across threads).
    func mapBuffer(context: ExecutionContext, _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        var out = Tensor.empty
        mapBuffer(into: &out, context: context, body)
        return out
    }

    /// Like `mapBuffer`, writing into `out` (reused as `Tensor.overwrite` describes).
    func mapBuffer(into out: inout Tensor, context: ExecutionContext, _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) {
        let count = count
        out.overwrite(shape: shape) { dst in
            withUnsafeBufferPointer { src in
                let s = src.baseAddress!, d = dst.baseAddress!
                forEachElementRange(count, context: context) { start, length in body(s + start, d + start, length) }
            }
        }
    }

    /// A new tensor from this one and `other` (same count), written by `body`.
    func zipBuffer(
        _ other: Tensor, context: ExecutionContext,
        _ body: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void
    ) -> Tensor {
        var out = Tensor.empty
        zipBuffer(other, into: &out, context: context, body)
        return out
    }

    /// Like `zipBuffer`, writing into `out` (reused as `Tensor.overwrite` describes).
    func zipBuffer(
        _ other: Tensor, into out: inout Tensor, context: ExecutionContext,
        _ body: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void
    ) {
        let count = count
        out.overwrite(shape: shape) { dst in
            withUnsafeBufferPointer { a in
                other.withUnsafeBufferPointer { b in
                    let pa = a.baseAddress!, pb = b.baseAddress!, d = dst.baseAddress!
                    forEachElementRange(count, context: context) { start, length in body(pa + start, pb + start, d + start, length) }
                }
            }
        }
    }
}
