import Foundation

/// A minimal PNG encoder (8-bit grayscale or RGB, no interlacing) whose zlib stream uses stored
/// (uncompressed) deflate blocks, so it needs no compression library. Meant for small images
/// (filters, 28x28 digits) embedded in reports.
public enum PNGEncoder {
    public enum ColorType: UInt8, Sendable {
        case grayscale = 0
        case rgb = 2
        var channels: Int { self == .grayscale ? 1 : 3 }
    }

    /// Encodes `pixels` (row-major, `channels` bytes per pixel) as a PNG file.
    public static func encode(width: Int, height: Int, colorType: ColorType, pixels: [UInt8]) throws -> [UInt8] {
        guard width > 0, height > 0 else {
            throw ValueError.invalidArgument("PNG: image size must be positive, got \(width)x\(height)")
        }
        let stride = width * colorType.channels
        guard pixels.count == stride * height else {
            throw ValueError.invalidArgument("PNG: \(width)x\(height) \(colorType) needs \(stride * height) bytes, got \(pixels.count)")
        }
        var raw: [UInt8] = []
        raw.reserveCapacity((stride + 1) * height)
        for y in 0..<height {
            raw.append(0)  // filter: none
            raw.append(contentsOf: pixels[(y * stride)..<((y + 1) * stride)])
        }
        var header: [UInt8] = []
        appendBigEndian(&header, UInt32(width))
        appendBigEndian(&header, UInt32(height))
        header += [8, colorType.rawValue, 0, 0, 0]

        var file: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        appendChunk(&file, "IHDR", header)
        appendChunk(&file, "IDAT", zlibStored(raw))
        appendChunk(&file, "IEND", [])
        return file
    }

    /// A zlib stream of stored deflate blocks (at most 65,535 bytes each) with its Adler-32 trailer.
    public static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let n = min(65_535, data.count - offset)
            let final: UInt8 = offset + n >= data.count ? 1 : 0
            out.append(final)  // BFINAL, BTYPE = 00 (stored)
            out.append(UInt8(n & 0xFF))
            out.append(UInt8(n >> 8))
            out.append(UInt8(~n & 0xFF))
            out.append(UInt8((~n >> 8) & 0xFF))
            out.append(contentsOf: data[offset..<(offset + n)])
            offset += n
        } while offset < data.count
        appendBigEndian(&out, adler32(data))
        return out
    }

    public static func adler32(_ data: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        var i = 0
        while i < data.count {
            let end = min(i + 5552, data.count)
            while i < end {
                a &+= UInt32(data[i])
                b &+= a
                i += 1
            }
            a %= 65_521
            b %= 65_521
        }
        return (b << 16) | a
    }

    private static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func crc32<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    private static func appendBigEndian(_ out: inout [UInt8], _ v: UInt32) {
        out += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }

    private static func appendChunk(_ out: inout [UInt8], _ type: String, _ data: [UInt8]) {
        appendBigEndian(&out, UInt32(data.count))
        let body = Array(type.utf8) + data
        out += body
        appendBigEndian(&out, crc32(body))
    }

    /// `data:image/png;base64,...` for embedding.
    public static func dataURI(_ png: [UInt8]) -> String {
        "data:image/png;base64," + Data(png).base64EncodedString()
    }
}

/// How image values map to grey levels.
public enum PixelScaling: Sendable, Equatable {
    /// Each image's own minimum is black and maximum white.
    case perImage
    /// A fixed range for all images (values outside are clamped).
    case fixed(Float, Float)
    /// Zero is mid grey; the largest magnitude in the image is black or white.
    case symmetric
}

/// A rendered image: size and PNG bytes.
public struct RasterImage: Sendable {
    public var width: Int
    public var height: Int
    public var png: [UInt8]
    public var dataURI: String { PNGEncoder.dataURI(png) }

    /// Renders a C x H x W tensor (C = 1 grayscale, C = 3 RGB; other channel counts are averaged) or
    /// an H x W tensor.
    public init(tensor: Tensor, scaling: PixelScaling = .perImage) throws {
        let shape = tensor.shape
        let c: Int, h: Int, w: Int
        switch shape.count {
        case 2: (c, h, w) = (1, shape[0], shape[1])
        case 3: (c, h, w) = (shape[0], shape[1], shape[2])
        case 4 where shape[0] == 1: (c, h, w) = (shape[1], shape[2], shape[3])
        default:
            throw ShapeError.mismatch(operation: "image rendering", expected: "a C x H x W or H x W tensor", got: shape)
        }
        guard c > 0, h > 0, w > 0 else {
            throw ShapeError.mismatch(operation: "image rendering", expected: "a non-empty image", got: shape)
        }
        let plane = h * w
        let values: [Float]
        let colorType: PNGEncoder.ColorType
        if c == 3 {
            values = tensor.scalars
            colorType = .rgb
        } else {
            values = (0..<plane).map { i in
                var s: Float = 0
                for k in 0..<c { s += tensor.scalars[k * plane + i] }
                return s / Float(c)
            }
            colorType = .grayscale
        }
        let finite = values.filter(\.isFinite)
        var lo: Float = finite.min() ?? 0, hi: Float = finite.max() ?? 1
        switch scaling {
        case .perImage: break
        case .fixed(let a, let b): (lo, hi) = (a, b)
        case .symmetric:
            let m = max(abs(lo), abs(hi))
            (lo, hi) = (-m, m)
        }
        let span = hi > lo ? hi - lo : 1
        func byte(_ v: Float) -> UInt8 {
            guard v.isFinite else { return 0 }
            return UInt8((min(max((v - lo) / span, 0), 1) * 255).rounded())
        }
        var pixels = [UInt8](repeating: 0, count: plane * colorType.channels)
        if c == 3 {
            for i in 0..<plane {
                for k in 0..<3 { pixels[i * 3 + k] = byte(values[k * plane + i]) }
            }
        } else {
            for i in 0..<plane { pixels[i] = byte(values[i]) }
        }
        width = w
        height = h
        png = try PNGEncoder.encode(width: w, height: h, colorType: colorType, pixels: pixels)
    }
}
