/// A dense, row-major array of `Float` with a shape. Images are NCHW.
///
/// `Tensor` has value semantics (copy-on-write through its `[Float]` storage). Numeric kernels reach
/// the storage through `withUnsafeBufferPointer` / `withUnsafeMutableBufferPointer`.
///
/// Layers keep their outputs and gradients in tensors they own and refill them with `overwrite`
/// (see there), so a training step reuses its buffers; `TensorAllocations` counts what is allocated.
public struct Tensor: Sendable, Equatable, CustomStringConvertible {
    public private(set) var shape: [Int]
    public var scalars: [Float]

    /// A tensor filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.scalars = [Float](repeating: value, count: shape.reduce(1, *))
        if !scalars.isEmpty { TensorAllocations.record() }
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
        if count > 0 { TensorAllocations.record() }
    }

    /// A tensor whose storage is written by `body` before anyone can read it.
    public init(shape: [Int], unsafeUninitialized body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        let count = shape.reduce(1, *)
        self.shape = shape
        self.scalars = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            body(buffer)
            initialized = count
        }
        if count > 0 { TensorAllocations.record() }
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

    /// Writes to the storage, after copying it first when another tensor shares it (copy-on-write;
    /// such a copy is counted in `TensorAllocations`).
    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        let before = scalars.withUnsafeBufferPointer { $0.baseAddress }
        return try scalars.withUnsafeMutableBufferPointer { buffer in
            // A different address: the storage was shared and Array made a private copy. (The shared
            // block is still alive, so a fresh block cannot have reused its address.)
            if UnsafePointer(buffer.baseAddress) != before { TensorAllocations.record() }
            return try body(&buffer)
        }
    }

    /// Makes this tensor a buffer of `newShape` that nobody else sees, lets `write` fill it, and
    /// returns what `write` returns: the way a layer keeps an output or gradient buffer from one call
    /// to the next.
    ///
    /// A layer holds the buffer in a stored property (starting as `Tensor.empty`), calls
    /// `buffer.overwrite(shape:) { ... }` and returns `buffer`. The returned copy shares the storage;
    /// when every holder of it (the caller, the next layer's cache) has let go by the next call, the
    /// storage is uniquely referenced and written in place, with no allocation. Value semantics are
    /// kept whatever the callers do: storage someone still holds is never written; Array's
    /// copy-on-write gives this buffer a private copy first (counted in `TensorAllocations`), and that
    /// copy is reused from then on.
    ///
    /// - The storage is reused when its capacity suffices: a smaller shape (the last, short batch of an
    ///   epoch) shrinks the array and a larger one grows it again within its capacity, both without
    ///   allocating. Only when the capacity is too small is new storage allocated (counted).
    /// - `write` receives the whole buffer, holding stale values (the last call's) unless `zeroed`;
    ///   it must write every element. Kernels that accumulate (`+=`) pass `zeroed: true`.
    /// - `write` must not touch this tensor itself (its storage is borrowed for the call).
    ///
    /// With `TensorAllocations.freshBuffersOnCurrentThread` set, fresh zero-filled storage is
    /// allocated every time instead (the behaviour before buffers were reused; tests compare both).
    @inline(__always)
    mutating func overwrite<R>(
        shape newShape: [Int], zeroed: Bool = false, _ write: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        let count = newShape.reduce(1, *)
        precondition(newShape.allSatisfy { $0 >= 0 }, "negative dimension in \(newShape)")
        if shape != newShape { shape = newShape }
        if TensorAllocations.freshBuffersOnCurrentThread {
            scalars = [Float](repeating: 0, count: count)
            if count > 0 { TensorAllocations.record() }
        } else if count != scalars.count {
            if count <= scalars.capacity {
                // Within capacity: no allocation when unique (a shared array is copied: counted below).
                let before = scalars.withUnsafeBufferPointer { $0.baseAddress }
                if count < scalars.count {
                    scalars.removeLast(scalars.count - count)
                } else {
                    scalars.append(contentsOf: repeatElement(0, count: count - scalars.count))
                }
                if count > 0 && scalars.withUnsafeBufferPointer({ $0.baseAddress }) != before { TensorAllocations.record() }
            } else {
                scalars = [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
                TensorAllocations.record()
            }
        }
        return try withUnsafeMutableBufferPointer { buffer in
            if zeroed { buffer.update(repeating: 0) }
            return try write(buffer)
        }
    }

    /// A tensor with no elements and no storage: the starting value of a reusable buffer.
    static var empty: Tensor { Tensor(shape: [0]) }

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
