/// Small reductions shared by several ops.
enum Reduce {
    /// `out[i] += v[i]` for `count` elements.
    static func add(_ v: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { out[i] += v[i] }
    }

    /// `out[r] += sum_c m[r, c]` for a rows x columns matrix.
    /// Eight interleaved partial sums per row (a fixed order, so results are deterministic), which
    /// breaks the add-latency chain of a single running sum.
    static func addRowSums(_ m: UnsafePointer<Float>, rows: Int, columns: Int, into out: UnsafeMutablePointer<Float>) {
        let raw = UnsafeRawPointer(m)
        let vectorEnd = columns & ~7
        for r in 0..<rows {
            let rowOffset = r &* columns
            var acc = SIMD8<Float>()
            var c = 0
            while c < vectorEnd {
                acc += raw.loadUnaligned(fromByteOffset: (rowOffset &+ c) &* 4, as: SIMD8<Float>.self)
                c &+= 8
            }
            var s = acc.sum()
            while c < columns {
                s += m[rowOffset &+ c]
                c &+= 1
            }
            out[r] += s
        }
    }

    /// `out[c] += sum_r m[r, c]` for a rows x columns matrix.
    static func addColumnSums(_ m: UnsafePointer<Float>, rows: Int, columns: Int, into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let row = m + r &* columns
            for c in 0..<columns { out[c] += row[c] }
        }
    }
}
