/// A dense, row-major array of `Float` with a shape. Images are NCHW.
///
/// `Tensor` has value semantics (copy-on-write through its `[Float]` storage). Numeric kernels reach
/// the storage through `withUnsafeBufferPointer` / `withUnsafeMutableBufferPointer`.
public struct Tensor: Sendable, Equatable, CustomStringConvertible {
    public private(set) var shape: [Int]
    public var scalars: [Float]

    /// A tensor filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.scalars = [Float](repeating: value, count: shape.reduce(1, *))
    }

    /// A tensor over `scalars`; throws when the count does not match the shape.
    public init(shape: [Int], scalars: [Float]) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw ShapeError.invalidShape(shape) }
        let count = shape.reduce(1, *)
        guard count == scalars.count else {
            throw ShapeError.countMismatch(shape: shape, expected: count, got: scalars.count)
        }
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor whose storage is written by `body` before anyone can read it.
    public init(shape: [Int], unsafeUninitialized body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        let count = shape.reduce(1, *)
        self.shape = shape
        self.scalars = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            body(buffer)
            initialized = count
        }
    }

    public var count: Int { scalars.count }
    public var rank: Int { shape.count }
    /// The leading dimension (the batch for NCHW and [N, F] tensors).
    public var batchSize: Int { shape.first ?? 1 }
    /// The shape of one sample: everything after the batch dimension.
    public var sampleShape: [Int] { Array(shape.dropFirst()) }

    public subscript(index: Int) -> Float {
        get { scalars[index] }
        set { scalars[index] = newValue }
    }

    /// Element at a multi-dimensional index (slow; for tests and printing).
    public subscript(indices: Int...) -> Float {
        get { scalars[flatIndex(indices)] }
        set { scalars[flatIndex(indices)] = newValue }
    }

    func flatIndex(_ indices: [Int]) -> Int {
        precondition(indices.count == shape.count, "index rank \(indices.count) != tensor rank \(shape.count)")
        var flat = 0
        for (i, n) in zip(indices, shape) {
            precondition(i >= 0 && i < n, "index \(indices) out of range for shape \(shape)")
            flat = flat * n + i
        }
        return flat
    }

    /// The same scalars under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var copy = self
        try copy.reshape(newShape)
        return copy
    }

    public mutating func reshape(_ newShape: [Int]) throws {
        let count = newShape.reduce(1, *)
        guard newShape.allSatisfy({ $0 >= 0 }), count == scalars.count else {
            throw ShapeError.reshape(from: shape, to: newShape)
        }
        shape = newShape
    }

    /// Samples `range` of the leading dimension, as a new tensor.
    public func batch(_ range: Range<Int>) -> Tensor {
        let per = sampleShape.reduce(1, *)
        var newShape = shape
        newShape[0] = range.count
        return Tensor(shape: newShape, unsafeUninitialized: { dst in
            scalars.withUnsafeBufferPointer { src in
                _ = dst.initialize(from: src[(range.lowerBound * per)..<(range.upperBound * per)])
            }
        })
    }

    /// Samples at `indices` of the leading dimension, in that order.
    public func gather(_ indices: [Int]) -> Tensor {
        let per = sampleShape.reduce(1, *)
        var newShape = shape
        newShape[0] = indices.count
        return Tensor(shape: newShape, unsafeUninitialized: { dst in
            scalars.withUnsafeBufferPointer { src in
                for (row, index) in indices.enumerated() {
                    let from = src.baseAddress! + index * per
                    (dst.baseAddress! + row * per).initialize(from: from, count: per)
                }
            }
        })
    }

    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer(body)
    }

    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try scalars.withUnsafeMutableBufferPointer(body)
    }

    public var hasNonFinite: Bool { scalars.contains { !$0.isFinite } }

    public var description: String {
        let preview = scalars.prefix(8).map { String(format: "%.4g", Double($0)) }.joined(separator: ", ")
        return "Tensor\(shape)[\(preview)\(count > 8 ? ", ..." : "")]"
    }
}

/// A shape written as `1x28x28`.
public func formatShape(_ shape: [Int]) -> String {
    shape.map(String.init).joined(separator: "x")
}
