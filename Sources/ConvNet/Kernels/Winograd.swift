/// Winograd F(2x2, 3x3) convolution of 3x3, stride-1 layers (Lavin and Gray, 2016): each 2x2 block of
/// outputs ("tile") comes from a 4x4 window of the padded input as `Y = A^T [(G g G^T) . (B^T d B)] A`,
/// 16 multiplications per tile and channel pair instead of 36.
///
///     B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
///     A^T = [1 1 1 0; 0 1 -1 -1]
///
/// A plan runs one stride-1 3x3 correlation of a sample ("source", `inChannels` planes) into a target
/// (`outChannels` planes): the forward pass (source x, target y), or the input gradient (source dL/dy
/// shifted by 2 - padding, target dL/dx, weight flipped and its channels swapped: a stride-1
/// convolution's adjoint is a convolution). Per sample: the source is copied once into a zero-padded
/// plane of whole tiles; then per block of tiles (sized so that its transformed input and products stay
/// in cache) the input transform writes V[16][inChannels][block], 16 GEMMs through `Gemm.kernel` make
/// M[e] = U[e] (outChannels x inChannels) V[e], and the output transform writes the target. The
/// transformed weight U[16][outChannels][inChannels] is made once per call.
///
/// Every target element comes from the same arithmetic whatever the thread count; the block size
/// depends on the geometry only.
final class WinogradPlan {
    enum Direction { case forward, inputGradient }

    /// Transformed elements per tile (4 x 4).
    static let elements = 16
    /// Floats of transformed input and products a block of tiles may take (512 KiB, an L2).
    static let blockFloats = 1 << 17

    let geometry: ConvGeometry
    let direction: Direction
    /// The correlation it runs: source planes and size, target planes and size.
    let inChannels: Int, inHeight: Int, inWidth: Int
    let outChannels: Int, outHeight: Int, outWidth: Int
    /// Zero rows above and columns left of the source in the padded plane (negative: source rows or
    /// columns cut off).
    let offsetTop: Int, offsetLeft: Int
    /// Tiles per column and per row of the target, and in all.
    let tilesHigh: Int, tilesWide: Int
    var tiles: Int { tilesHigh &* tilesWide }
    /// The padded plane: every tile's 4x4 window inside it.
    let paddedHeight: Int, paddedWidth: Int
    /// Tiles per block (the last block of a sample may be shorter).
    let blockTiles: Int

    /// Whether Winograd F(2x2, 3x3) runs `g`: a 3x3 kernel at stride 1 (any padding).
    static func allows(_ g: ConvGeometry) -> Bool {
        g.kernelHeight == 3 && g.kernelWidth == 3 && g.strideH == 1 && g.strideW == 1
    }

    init(_ g: ConvGeometry, _ direction: Direction) {
        precondition(Self.allows(g), "Winograd F(2x2, 3x3) needs a 3x3 kernel at stride 1")
        geometry = g
        self.direction = direction
        switch direction {
        case .forward:
            (inChannels, inHeight, inWidth) = (g.inChannels, g.inHeight, g.inWidth)
            (outChannels, outHeight, outWidth) = (g.outChannels, g.outHeight, g.outWidth)
            (offsetTop, offsetLeft) = (g.padTop, g.padLeft)
        case .inputGradient:
            (inChannels, inHeight, inWidth) = (g.outChannels, g.outHeight, g.outWidth)
            (outChannels, outHeight, outWidth) = (g.inChannels, g.inHeight, g.inWidth)
            (offsetTop, offsetLeft) = (2 - g.padTop, 2 - g.padLeft)
        }
        tilesHigh = (outHeight + 1) / 2
        tilesWide = (outWidth + 1) / 2
        paddedHeight = 2 * tilesHigh + 2
        paddedWidth = 2 * tilesWide + 2
        let tiles = tilesHigh * tilesWide
        let fit = Self.blockFloats / (Self.elements * (inChannels + outChannels))
        blockTiles = tiles <= fit ? tiles : max(16, fit / 16 * 16)
    }

    // MARK: Scratch sizes (floats)

    var paddedCount: Int { inChannels &* paddedHeight &* paddedWidth }
    var transformedWeightCount: Int { Self.elements &* outChannels &* inChannels }
    var transformedInputCount: Int { Self.elements &* inChannels &* blockTiles }
    var productCount: Int { Self.elements &* outChannels &* blockTiles }

    // MARK: Kernels

    /// U[e][o][c] = (G g G^T)[e] for each target channel o and source channel c, where g is w[o][c]
    /// (forward) or w[c][o] rotated by 180 degrees (input gradient); w is the layer's OC x C x 3 x 3 weight.
    func transformWeight(_ w: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>) {
        let pairs = outChannels &* inChannels
        // The input gradient reads the taps backwards (180 degrees) from w[c][o].
        let flipped = direction == .inputGradient
        let step = flipped ? -1 : 1
        for o in 0..<outChannels {
            for c in 0..<inChannels {
                let pair = flipped ? (c &* outChannels &+ o) &* 9 &+ 8 : (o &* inChannels &+ c) &* 9
                let g = w + pair
                let k0 = SIMD4<Float>(g[0], g[step], g[2 &* step], 0)
                let k1 = SIMD4<Float>(g[3 &* step], g[4 &* step], g[5 &* step], 0)
                let k2 = SIMD4<Float>(g[6 &* step], g[7 &* step], g[8 &* step], 0)
                // G g: four rows of three; then each row (a, b, c) times G^T: (a, (a + b + c) / 2, (a - b + c) / 2, c).
                let target = u + (o &* inChannels &+ c)
                Self.storeKernelRow(k0, target, pairs, 0)
                Self.storeKernelRow((k0 + k1 + k2) * SIMD4<Float>(repeating: 0.5), target, pairs, 4)
                Self.storeKernelRow((k0 - k1 + k2) * SIMD4<Float>(repeating: 0.5), target, pairs, 8)
                Self.storeKernelRow(k2, target, pairs, 12)
            }
        }
    }

    @inline(__always)
    private static func storeKernelRow(_ r: SIMD4<Float>, _ u: UnsafeMutablePointer<Float>, _ stride: Int, _ e: Int) {
        u[e &* stride] = r[0]
        u[(e &+ 1) &* stride] = (r[0] + r[1] + r[2]) * 0.5
        u[(e &+ 2) &* stride] = (r[0] - r[1] + r[2]) * 0.5
        u[(e &+ 3) &* stride] = r[2]
    }

    /// Copies one sample's source planes into the zero-padded planes (`paddedCount` floats); with
    /// `mask`, each value is masked as ReLU's backward does (kept where mask > 0, else times 0).
    func pad(_ x: UnsafePointer<Float>, mask: UnsafePointer<Float>?, into padded: UnsafeMutablePointer<Float>) {
        Self.padPlanes(
            x, mask: mask, channels: inChannels, height: inHeight, width: inWidth, top: offsetTop, left: offsetLeft,
            paddedHeight: paddedHeight, paddedWidth: paddedWidth, into: padded)
    }

    /// Copies `channels` planes of height x width into planes of paddedHeight x paddedWidth, row r and
    /// column j of the source at row r + top and column j + left (negative: cut off), zeros elsewhere;
    /// masked as in `pad`.
    static func padPlanes(
        _ x: UnsafePointer<Float>, mask: UnsafePointer<Float>?, channels: Int, height: Int, width: Int, top: Int, left: Int,
        paddedHeight: Int, paddedWidth: Int, into padded: UnsafeMutablePointer<Float>
    ) {
        let first = max(0, left), end = min(paddedWidth, left &+ width)
        let count = max(0, end &- first), skip = first &- left
        for c in 0..<channels {
            let plane = padded + c &* paddedHeight &* paddedWidth
            for r in 0..<paddedHeight {
                let row = plane + r &* paddedWidth
                let sr = r &- top
                guard sr >= 0, sr < height, count > 0 else {
                    row.update(repeating: 0, count: paddedWidth)
                    continue
                }
                row.update(repeating: 0, count: first)
                let source = (c &* height &+ sr) &* width &+ skip
                if let mask {
                    for j in 0..<count {
                        let v = x[source &+ j]
                        row[first &+ j] = mask[source &+ j] > 0 ? v : v * 0
                    }
                } else {
                    (row + first).update(from: x + source, count: count)
                }
                (row + end).update(repeating: 0, count: paddedWidth &- end)
            }
        }
    }

    /// V[e][c][t] = (B^T d B)[e] for tiles `first ..< first + count` of the padded sample (t counted from
    /// `first`; rows of V are `blockTiles` long).
    func transformInput(_ padded: UnsafePointer<Float>, tiles first: Int, count: Int, into v: UnsafeMutablePointer<Float>) {
        let pw = paddedWidth, plane = paddedHeight &* paddedWidth
        let stride = inChannels &* blockTiles
        for c in 0..<inChannels {
            let source = padded + c &* plane
            let target = v + c &* blockTiles
            var ti = first / tilesWide, tj = first % tilesWide
            for t in 0..<count {
                let p = UnsafeRawPointer(source + ((2 &* ti) &* pw &+ 2 &* tj))
                let d0 = p.loadUnaligned(as: SIMD4<Float>.self)
                let d1 = p.loadUnaligned(fromByteOffset: 4 &* pw, as: SIMD4<Float>.self)
                let d2 = p.loadUnaligned(fromByteOffset: 8 &* pw, as: SIMD4<Float>.self)
                let d3 = p.loadUnaligned(fromByteOffset: 12 &* pw, as: SIMD4<Float>.self)
                // B^T d: rows; then each row (a, b, c, d) times B: (a - c, b + c, c - b, b - d).
                Self.storeRow(d0 - d2, target + t, stride, 0)
                Self.storeRow(d1 + d2, target + t, stride, 4)
                Self.storeRow(d2 - d1, target + t, stride, 8)
                Self.storeRow(d1 - d3, target + t, stride, 12)
                tj &+= 1
                if tj == tilesWide { tj = 0; ti &+= 1 }
            }
        }
    }

    @inline(__always)
    private static func storeRow(_ r: SIMD4<Float>, _ v: UnsafeMutablePointer<Float>, _ stride: Int, _ e: Int) {
        v[e &* stride] = r[0] - r[2]
        v[(e &+ 1) &* stride] = r[1] + r[2]
        v[(e &+ 2) &* stride] = r[2] - r[1]
        v[(e &+ 3) &* stride] = r[1] - r[3]
    }

    /// M[e] = U[e] V[e] for the `count` tiles of a block: 16 GEMMs of (outChannels x inChannels) x
    /// (inChannels x count), single-threaded.
    func multiply(
        level: KernelLevel, _ u: UnsafePointer<Float>, _ v: UnsafePointer<Float>, count: Int, into m: UnsafeMutablePointer<Float>
    ) {
        let oc = outChannels, ic = inChannels, bt = blockTiles
        for e in 0..<Self.elements {
            Gemm.kernel(
                level: level, false, false, oc, count, ic, 1, u + e &* oc &* ic, ic, v + e &* ic &* bt, bt, 0,
                m + e &* oc &* bt, bt)
        }
    }

    /// The target's 2x2 blocks of tiles `first ..< first + count` from M: A^T M A (+ bias), cut at the
    /// target's edges. Eight tiles at a time (M's rows are contiguous in the tile), then one by one.
    func transformOutput(
        _ m: UnsafePointer<Float>, tiles first: Int, count: Int, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>
    ) {
        let stride = outChannels &* blockTiles, pixels = outHeight &* outWidth
        let vectors = count / 8 * 8
        for o in 0..<outChannels {
            let source = m + o &* blockTiles
            let plane = y + o &* pixels
            let b = bias?[o] ?? 0
            var ti = first / tilesWide, tj = first % tilesWide
            var t = 0
            while t < vectors {
                let s = UnsafeRawPointer(source + t)
                func load(_ e: Int) -> SIMD8<Float> { s.loadUnaligned(fromByteOffset: 4 &* e &* stride, as: SIMD8<Float>.self) }
                // A^T M: rows r0 = m0 + m1 + m2, r1 = m1 - m2 - m3 (element by element); then each row
                // (a, b, c, d) times A: (a + b + c, b - c - d).
                let r00 = load(0) + load(4) + load(8), r01 = load(1) + load(5) + load(9)
                let r02 = load(2) + load(6) + load(10), r03 = load(3) + load(7) + load(11)
                let r10 = load(4) - load(8) - load(12), r11 = load(5) - load(9) - load(13)
                let r12 = load(6) - load(10) - load(14), r13 = load(7) - load(11) - load(15)
                let bias = SIMD8<Float>(repeating: b)
                let y00 = bias + (r00 + r01 + r02), y01 = bias + (r01 - r02 - r03)
                let y10 = bias + (r10 + r11 + r12), y11 = bias + (r11 - r12 - r13)
                for lane in 0..<8 {
                    storeTile(plane, ti, tj, y00[lane], y01[lane], y10[lane], y11[lane])
                    tj &+= 1
                    if tj == tilesWide { tj = 0; ti &+= 1 }
                }
                t &+= 8
            }
            while t < count {
                let s = source + t
                let m0 = SIMD4<Float>(s[0], s[stride], s[2 &* stride], s[3 &* stride])
                let m1 = SIMD4<Float>(s[4 &* stride], s[5 &* stride], s[6 &* stride], s[7 &* stride])
                let m2 = SIMD4<Float>(s[8 &* stride], s[9 &* stride], s[10 &* stride], s[11 &* stride])
                let m3 = SIMD4<Float>(s[12 &* stride], s[13 &* stride], s[14 &* stride], s[15 &* stride])
                let r0 = m0 + m1 + m2, r1 = m1 - m2 - m3
                storeTile(
                    plane, ti, tj, b + (r0[0] + r0[1] + r0[2]), b + (r0[1] - r0[2] - r0[3]), b + (r1[0] + r1[1] + r1[2]),
                    b + (r1[1] - r1[2] - r1[3]))
                tj &+= 1
                if tj == tilesWide { tj = 0; ti &+= 1 }
                t &+= 1
            }
        }
    }

    /// Stores tile (ti, tj)'s 2x2 outputs into `plane`, cut at the target's edges.
    @inline(__always)
    private func storeTile(_ plane: UnsafeMutablePointer<Float>, _ ti: Int, _ tj: Int, _ y00: Float, _ y01: Float, _ y10: Float, _ y11: Float) {
        let ow = outWidth, i = 2 &* ti, j = 2 &* tj
        let row = plane + (i &* ow &+ j)
        row[0] = y00
        let right = j &+ 1 < ow
        if right { row[1] = y01 }
        if i &+ 1 < outHeight {
            row[ow] = y10
            if right { row[ow &+ 1] = y11 }
        }
    }

    // MARK: Weight gradient (a forward plan: source x, target dL/dy)
    //
    // y = A^T [U . V] A per tile and channel pair, so dL/dU = sum over tiles of (A dy A^T) . V, and
    // dL/dg = G^T (dL/dU) G: per block, dM[e] = (A dy A^T)[e] (outChannels x tiles) and V[e] as in the
    // forward pass, then dU[e] += dM[e] V[e]^T (16 GEMMs with the tiles as their depth).

    /// Floats of one sample's dL/dy in whole tiles (`padGradient`).
    var gradientPlanesCount: Int { outChannels &* 4 &* tiles }

    /// Copies one sample's dL/dy (outChannels x outHeight x outWidth) into planes of whole tiles
    /// (2 tilesHigh x 2 tilesWide), zeros past its edges; with `mask`, masked as in `pad`.
    func padGradient(_ dy: UnsafePointer<Float>, mask: UnsafePointer<Float>?, into planes: UnsafeMutablePointer<Float>) {
        Self.padPlanes(
            dy, mask: mask, channels: outChannels, height: outHeight, width: outWidth, top: 0, left: 0,
            paddedHeight: 2 &* tilesHigh, paddedWidth: 2 &* tilesWide, into: planes)
    }

    /// dM[e][o][t] = (A dy A^T)[e] for tiles `first ..< first + count` of `padGradient`'s planes (the
    /// adjoint of the output transform; t counted from `first`, rows of dM `blockTiles` long).
    func transformGradient(_ planes: UnsafePointer<Float>, tiles first: Int, count: Int, into dm: UnsafeMutablePointer<Float>) {
        let pw = 2 &* tilesWide, plane = 4 &* tiles
        let stride = outChannels &* blockTiles
        for o in 0..<outChannels {
            let source = planes + o &* plane
            let target = dm + o &* blockTiles
            var ti = first / tilesWide, tj = first % tilesWide
            for t in 0..<count {
                let p = source + ((2 &* ti) &* pw &+ 2 &* tj)
                let a = p[0], b = p[1], c = p[pw], d = p[pw &+ 1]
                // A dy: rows (a, b), (a + c, b + d), (a - c, b - d), (-c, -d); then each row (p, q)
                // times A^T: (p, p + q, p - q, -q).
                Self.storeGradientRow(a, b, target + t, stride, 0)
                Self.storeGradientRow(a + c, b + d, target + t, stride, 4)
                Self.storeGradientRow(a - c, b - d, target + t, stride, 8)
                Self.storeGradientRow(-c, -d, target + t, stride, 12)
                tj &+= 1
                if tj == tilesWide { tj = 0; ti &+= 1 }
            }
        }
    }

    @inline(__always)
    private static func storeGradientRow(_ p: Float, _ q: Float, _ m: UnsafeMutablePointer<Float>, _ stride: Int, _ e: Int) {
        m[e &* stride] = p
        m[(e &+ 1) &* stride] = p + q
        m[(e &+ 2) &* stride] = p - q
        m[(e &+ 3) &* stride] = -q
    }

    /// dU[e] = dM[e] V[e]^T ((outChannels x count) x (count x inChannels)), added to dU with
    /// `accumulate`: 16 GEMMs, single-threaded.
    func accumulateWeightGradient(
        level: KernelLevel, _ dm: UnsafePointer<Float>, _ v: UnsafePointer<Float>, count: Int,
        into du: UnsafeMutablePointer<Float>, accumulate: Bool
    ) {
        let oc = outChannels, ic = inChannels, bt = blockTiles
        for e in 0..<Self.elements {
            Gemm.kernel(
                level: level, false, true, oc, ic, count, 1, dm + e &* oc &* bt, bt, v + e &* ic &* bt, bt, accumulate ? 1 : 0,
                du + e &* oc &* ic, ic)
        }
    }

    /// The layer's OC x C x 3 x 3 weight gradient (written) from dU[16][outChannels][inChannels]:
    /// dL/dw[o][c] = G^T dU[o][c] G.
    func transformWeightGradient(_ du: UnsafePointer<Float>, into dw: UnsafeMutablePointer<Float>) {
        let pairs = outChannels &* inChannels
        let half = SIMD4<Float>(repeating: 0.5)
        for pair in 0..<pairs {
            let s = du + pair
            func row(_ i: Int) -> SIMD4<Float> {
                SIMD4(s[4 &* i &* pairs], s[(4 &* i &+ 1) &* pairs], s[(4 &* i &+ 2) &* pairs], s[(4 &* i &+ 3) &* pairs])
            }
            // G^T dU: rows u0 + (u1 + u2) / 2, (u1 - u2) / 2, (u1 + u2) / 2 + u3; then each row
            // (p, q, r, s) times G: (p + (q + r) / 2, (q - r) / 2, (q + r) / 2 + s).
            let u0 = row(0), u1 = row(1), u2 = row(2), u3 = row(3)
            let sum = (u1 + u2) * half
            let taps = dw + pair &* 9
            Self.storeWeightRow(u0 + sum, taps)
            Self.storeWeightRow((u1 - u2) * half, taps + 3)
            Self.storeWeightRow(sum + u3, taps + 6)
        }
    }

    @inline(__always)
    private static func storeWeightRow(_ r: SIMD4<Float>, _ w: UnsafeMutablePointer<Float>) {
        let sum = (r[1] + r[2]) * 0.5
        w[0] = r[0] + sum
        w[1] = (r[1] - r[2]) * 0.5
        w[2] = sum + r[3]
    }

    /// Adds one sample to a weight-gradient partial dU (`transformedWeightCount` floats; overwritten by
    /// its first block without `accumulate`): `padded` is the sample's `pad`ded input, `gradient` its
    /// `padGradient`ed dL/dy; `transformed` and `products` hold `transformedInputCount` and
    /// `productCount` floats.
    func runWeightGradient(
        level: KernelLevel, padded: UnsafePointer<Float>, gradient: UnsafePointer<Float>,
        transformed v: UnsafeMutablePointer<Float>, products dm: UnsafeMutablePointer<Float>,
        into du: UnsafeMutablePointer<Float>, accumulate: Bool
    ) {
        var first = 0, accumulate = accumulate
        while first < tiles {
            let count = min(blockTiles, tiles &- first)
            transformInput(padded, tiles: first, count: count, into: v)
            transformGradient(gradient, tiles: first, count: count, into: dm)
            accumulateWeightGradient(level: level, dm, v, count: count, into: du, accumulate: accumulate)
            accumulate = true
            first &+= count
        }
    }

    /// One sample's target (outChannels x outHeight x outWidth, every element written) from its padded
    /// source (`pad`) and the transformed weight (`transformWeight`); `transformed` and `products` hold
    /// `transformedInputCount` and `productCount` floats.
    func run(
        level: KernelLevel, padded: UnsafePointer<Float>, weight u: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        transformed v: UnsafeMutablePointer<Float>, products m: UnsafeMutablePointer<Float>, output y: UnsafeMutablePointer<Float>
    ) {
        var first = 0
        while first < tiles {
            let count = min(blockTiles, tiles &- first)
            transformInput(padded, tiles: first, count: count, into: v)
            multiply(level: level, u, v, count: count, into: m)
            transformOutput(m, tiles: first, count: count, bias: bias, into: y)
            first &+= count
        }
    }
}
