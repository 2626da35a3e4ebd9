import Testing
@testable import ConvNet

/// The 2x2/2 max-pool kernel (AVX2 and portable C) against a plain scalar loop: values and argmax,
/// with ties (the first wins) and NaN (it wins and propagates).
@Suite("Pool kernels", )
struct PoolKernelTests {
    /// Scalar definition: candidates in row-major window order; a candidate wins when greater or NaN.
    static func expected(_ x: [Float], planes: Int, h: Int, w: Int) -> ([Float], [Int32]) {
        let oh = h / 2, ow = w / 2
        var y = [Float](repeating: 0, count: planes * oh * ow), a = [Int32](repeating: 0, count: y.count)
        for p in 0..<planes {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let i = 2 * oy * w + 2 * ox
                    var best = x[p * h * w + i], bestIndex = i
                    for j in [i + 1, i + w, i + w + 1] {
                        let v = x[p * h * w + j]
                        if v > best || v.isNaN { best = v; bestIndex = j }
                    }
                    y[(p * oh + oy) * ow + ox] = best
                    a[(p * oh + oy) * ow + ox] = Int32(bestIndex)
                }
            }
        }
        return (y, a)
    }

    @Test("maxpool 2x2 stride 2: odd sizes, rows shorter and longer than 8 windows, ties and NaN",
          arguments: KernelLevel.allCases)
    func maxPool2x2(kernels: KernelLevel) throws {
        guard KernelTests.kernelChoices.contains(kernels) else { return }
        var random = SeededGenerator(seed: 11)
        let sizes = [(2, 2), (3, 5), (14, 14), (5, 15), (7, 16), (9, 17), (28, 28), (4, 31), (6, 33), (10, 48)]
        for (h, w) in sizes {
            for planes in [1, 3] {
                for threads in [1, 2] {
                    var x = (0..<(planes * h * w)).map { _ in Float(Int(random.uniform(0, 4))) - 1 }
                    if h * w > 8 { x[5] = .nan; x[x.count - 1] = .nan }
                    let g = try ConvGeometry(
                        inChannels: planes, inHeight: h, inWidth: w, outChannels: planes, kernelHeight: 2,
                        kernelWidth: 2, strideH: 2, strideW: 2)
                    var y = [Float](repeating: -7, count: planes * g.outputPixels)
                    var a = [Int32](repeating: -1, count: y.count)
                    x.withUnsafeBufferPointer { px in
                        y.withUnsafeMutableBufferPointer { py in
                            a.withUnsafeMutableBufferPointer { pa in
                                PoolingKernels.maxForward(
                                    px.baseAddress!, planes: planes, geometry: g, output: py.baseAddress!,
                                    argmax: pa.baseAddress!, context: KernelTests.context(threads: threads, kernels: kernels))
                            }
                        }
                    }
                    let (ey, ea) = Self.expected(x, planes: planes, h: h, w: w)
                    #expect(a == ea, "\(h)x\(w) planes \(planes)")
                    #expect(zip(y, ey).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }, "\(h)x\(w) planes \(planes)")
                }
            }
        }
    }
}
