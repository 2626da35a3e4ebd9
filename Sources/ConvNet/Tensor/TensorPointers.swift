/// Tensors pinned for one call, their storage as raw pointers: what an executor builds its struct of
/// pointers from, so that it runs one flat `parallelFor` instead of a closure per tensor.
extension Tensor {
    /// Makes this tensor a buffer of `newShape` that nobody else sees (zero-filled with `zeroed`), as
    /// `overwrite` does, for a caller that then writes every element through `withMutableBaseAddresses`.
    @inline(__always)
    mutating func prepare(shape newShape: [Int], zeroed: Bool = false) {
        overwrite(shape: newShape, zeroed: zeroed) { _ in }
    }

    /// Runs `body` with the base addresses of up to four tensors to read (nil for an empty tensor).
    @inline(__always)
    static func withBaseAddresses<R>(
        _ a: Tensor, _ b: Tensor, _ c: Tensor = .empty, _ d: Tensor = .empty,
        _ body: (UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?) throws -> R
    ) rethrows -> R {
        try a.withUnsafeBufferPointer { a in
            try b.withUnsafeBufferPointer { b in
                try c.withUnsafeBufferPointer { c in
                    try d.withUnsafeBufferPointer { d in
                        try body(nonEmpty(a), nonEmpty(b), nonEmpty(c), nonEmpty(d))
                    }
                }
            }
        }
    }

    /// Runs `body` with the base addresses of three tensors to write (nil for an empty tensor), each
    /// uniquely held first (see `prepare`); they must be distinct tensors.
    @inline(__always)
    static func withMutableBaseAddresses<R>(
        _ a: inout Tensor, _ b: inout Tensor, _ c: inout Tensor,
        _ body: (UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?) throws -> R
    ) rethrows -> R {
        try a.withUnsafeMutableBufferPointer { a in
            try b.withUnsafeMutableBufferPointer { b in
                try c.withUnsafeMutableBufferPointer { c in
                    try body(a.isEmpty ? nil : a.baseAddress, b.isEmpty ? nil : b.baseAddress, c.isEmpty ? nil : c.baseAddress)
                }
            }
        }
    }

    @inline(__always)
    private static func nonEmpty(_ p: UnsafeBufferPointer<Float>) -> UnsafePointer<Float>? {
        p.isEmpty ? nil : p.baseAddress
    }
}
