import CKernels

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
/// convolution's adjoint is a convolution). Each sample's source is copied into a zero-padded plane of
/// whole tiles; per block of tiles the input transform (`cn_winograd_input`) writes
/// V[16][inChannels][block], 16 GEMMs through `Gemm.kernel` make M[e] = U[e] (outChannels x inChannels)
/// V[e], and the output transform (`cn_winograd_output`) writes the targets. A block is several whole
/// samples where a sample has fewer than `wideTiles` tiles (a 14x14 map has 49: blocks of 245 tiles
/// across 5 samples keep the GEMMs wide), else a run of one sample's tiles sized so that its V and M
/// stay in cache. The transformed weight U[16][outChannels][inChannels] is made once per call. A forward
/// plan also runs the weight gradient (`runWeightGradient`).
///
/// Every target element comes from the same arithmetic whatever the thread count and whichever block
/// holds its tile (the GEMM's arithmetic per element does not depend on its width).
final class WinogradPlan {
    enum Direction { case forward, inputGradient }

    /// Transformed elements per tile (4 x 4).
    static let elements = 16
    /// Floats of transformed input and products a block of tiles may take (512 KiB, an L2).
    static let blockFloats = 1 << 17
    /// Samples with fewer tiles than this run in blocks of several samples, at most this many tiles
    /// (measured on two-conv's conv2, 49 tiles a sample: blocks of 245 tiles ran the forward pass
    /// about 30% faster than blocks of one sample) and at most `wideFloats` floats of V and M.
    static let wideTiles = 256
    static let wideFloats = 1 << 21

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
    /// Tiles per block: whole samples (`samplesPerBlock` of them; a thread's last block may hold fewer),
    /// or with `samplesPerBlock` 1 and more tiles than this, runs of one sample's tiles (its last may be
    /// shorter).
    let blockTiles: Int
    /// Samples per block where a sample has at most `blockTiles` tiles.
    let samplesPerBlock: Int
    /// The most samples a thread takes (`init`).
    let samplesPerThread: Int

    /// Whether Winograd F(2x2, 3x3) runs `g`: a 3x3 kernel at stride 1 (any padding).
    static func allows(_ g: ConvGeometry) -> Bool {
        g.kernelHeight == 3 && g.kernelWidth == 3 && g.strideH == 1 && g.strideW == 1
    }

    /// Whether `--conv-algorithm winograd` runs `g` with Winograd: it allows it, and the products have a
    /// depth of more than one channel (a one-channel first layer's products are too thin to gain).
    static func suits(_ g: ConvGeometry) -> Bool {
        allows(g) && g.inChannels > 1
    }

    /// The plan of `direction` for `g`, for threads that take at most `samplesPerThread` samples each
    /// (blocks never hold more, so the scratch is no larger than a thread uses).
    init(_ g: ConvGeometry, _ direction: Direction, samplesPerThread: Int = .max) {
        precondition(Self.allows(g), "Winograd F(2x2, 3x3) needs a 3x3 kernel at stride 1")
        geometry = g
        self.direction = direction
        self.samplesPerThread = samplesPerThread
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
        if tiles < Self.wideTiles {
            let most = min(Self.wideTiles, Self.wideFloats / (Self.elements * (inChannels + outChannels)))
            samplesPerBlock = max(1, min(most / tiles, samplesPerThread))
            blockTiles = samplesPerBlock * tiles
        } else {
            samplesPerBlock = 1
            blockTiles = tiles <= fit ? tiles : max(16, fit / 16 * 16)
        }
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
    /// `first`; rows of V are `blockTiles` long): `cn_winograd_input` (eight tiles at a time with AVX2).
    func transformInput(
        level: KernelLevel, _ padded: UnsafePointer<Float>, tiles first: Int, count: Int, into v: UnsafeMutablePointer<Float>
    ) {
        cn_winograd_input(
            Int32(level.rawValue), padded, inChannels, paddedHeight &* paddedWidth, paddedWidth, tilesWide, first, count, v,
            blockTiles, inChannels &* blockTiles)
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
    /// target's edges: `cn_winograd_output` (eight tiles at a time with AVX2).
    func transformOutput(
        level: KernelLevel, _ m: UnsafePointer<Float>, tiles first: Int, count: Int, bias: UnsafePointer<Float>?,
        into y: UnsafeMutablePointer<Float>
    ) {
        cn_winograd_output(
            Int32(level.rawValue), m, outChannels, blockTiles, outChannels &* blockTiles, tilesWide, first, count, bias, y,
            outHeight, outWidth)
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
    /// adjoint of the output transform; t counted from `first`, rows of dM `blockTiles` long):
    /// `cn_winograd_gradient` (eight tiles at a time with AVX2).
    func transformGradient(
        level: KernelLevel, _ planes: UnsafePointer<Float>, tiles first: Int, count: Int, into dm: UnsafeMutablePointer<Float>
    ) {
        cn_winograd_gradient(
            Int32(level.rawValue), planes, outChannels, 4 &* tiles, 2 &* tilesWide, tilesWide, first, count, dm, blockTiles,
            outChannels &* blockTiles)
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

    /// The weight-gradient partial dU (`transformedWeightCount` floats, overwritten) of `count` samples
    /// (numbered from 0) in blocks: `pad(i, padded)` pads sample i's input into `padded` (as `pad`),
    /// `padGradient(i, gradient)` its dL/dy into `gradient` (as `padGradient`, `gradientPlanesCount`
    /// floats); `transformed` and `products` hold `transformedInputCount` and `productCount` floats.
    func runWeightGradient(
        level: KernelLevel, samples count: Int, padded: UnsafeMutablePointer<Float>, gradient: UnsafeMutablePointer<Float>,
        transformed v: UnsafeMutablePointer<Float>, products dm: UnsafeMutablePointer<Float>, into du: UnsafeMutablePointer<Float>,
        pad: (Int, UnsafeMutablePointer<Float>) -> Void, padGradient: (Int, UnsafeMutablePointer<Float>) -> Void
    ) {
        if count == 0 { du.update(repeating: 0, count: transformedWeightCount) }
        var sample = 0, accumulate = false
        while sample < count {
            if tiles > blockTiles {
                pad(sample, padded)
                padGradient(sample, gradient)
                var first = 0
                while first < tiles {
                    let run = min(blockTiles, tiles &- first)
                    transformInput(level: level, padded, tiles: first, count: run, into: v)
                    transformGradient(level: level, gradient, tiles: first, count: run, into: dm)
                    accumulateWeightGradient(level: level, dm, v, count: run, into: du, accumulate: accumulate)
                    accumulate = true
                    first &+= run
                }
                sample &+= 1
                continue
            }
            let group = min(samplesPerBlock, count &- sample)
            for i in 0..<group {
                pad(sample &+ i, padded)
                transformInput(level: level, padded, tiles: 0, count: tiles, into: v + i &* tiles)
                padGradient(sample &+ i, gradient)
                transformGradient(level: level, gradient, tiles: 0, count: tiles, into: dm + i &* tiles)
            }
            accumulateWeightGradient(level: level, dm, v, count: group &* tiles, into: du, accumulate: accumulate)
            accumulate = true
            sample &+= group
        }
    }

    /// The targets (outChannels x outHeight x outWidth each, every element written) of `count` samples
    /// (numbered from 0) in blocks: `pad(i, padded)` pads sample i's source into `padded`
    /// (`paddedCount` floats), `output(i)` is where its target goes, `finished(i, target)` runs once it
    /// is written. `u` is the transformed weight (`transformWeight`); `transformed` and `products` hold
    /// `transformedInputCount` and `productCount` floats.
    func run(
        level: KernelLevel, samples count: Int, weight u: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        padded: UnsafeMutablePointer<Float>, transformed v: UnsafeMutablePointer<Float>, products m: UnsafeMutablePointer<Float>,
        pad: (Int, UnsafeMutablePointer<Float>) -> Void, output: (Int) -> UnsafeMutablePointer<Float>,
        finished: (Int, UnsafeMutablePointer<Float>) -> Void
    ) {
        var sample = 0
        while sample < count {
            if tiles > blockTiles {
                // Blocks of tiles within the sample.
                pad(sample, padded)
                let y = output(sample)
                var first = 0
                while first < tiles {
                    let run = min(blockTiles, tiles &- first)
                    transformInput(level: level, padded, tiles: first, count: run, into: v)
                    multiply(level: level, u, v, count: run, into: m)
                    transformOutput(level: level, m, tiles: first, count: run, bias: bias, into: y)
                    first &+= run
                }
                finished(sample, y)
                sample &+= 1
                continue
            }
            // Blocks of whole samples, sample i's tiles in columns i * tiles ..< (i + 1) * tiles.
            let group = min(samplesPerBlock, count &- sample)
            for i in 0..<group {
                pad(sample &+ i, padded)
                transformInput(level: level, padded, tiles: 0, count: tiles, into: v + i &* tiles)
            }
            multiply(level: level, u, v, count: group &* tiles, into: m)
            for i in 0..<group {
                let y = output(sample &+ i)
                transformOutput(level: level, m + i &* tiles, tiles: 0, count: tiles, bias: bias, into: y)
                finished(sample &+ i, y)
            }
            sample &+= group
        }
    }
}
