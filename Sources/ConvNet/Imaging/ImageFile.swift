import Foundation

/// An image file that cannot be used.
public struct ImageError: Error, CustomStringConvertible {
    public var path: String
    public var problem: String
    public var description: String { "\(path): cannot read image: \(problem)" }
}

/// Which way round a gray picture's tones are: light strokes on a dark background, as MNIST and
/// Fashion-MNIST store their images, or dark strokes on a light background, as ink on paper.
public enum Background: String, Sendable, Codable {
    case dark, light
}

/// Whether `Classifier.predict(_:inversion:)` turns a picture into its negative first.
public enum Inversion: String, Sendable, Codable, CaseIterable {
    /// When the picture's background (its border) is not the one the model's training images have.
    case auto
    /// Never: the picture is classified as it is.
    case never
    /// Always.
    case always
}

/// A decoded picture: `channels` planes (1 gray or 3 RGB) of height x width values in [0, 1], CHW.
public struct Picture: Sendable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [Float]

    /// Reads a PNG (8 or 16 bits; gray, gray+alpha, RGB, RGBA, palette; non-interlaced) or a PGM/PPM
    /// (P2, P3, P5, P6) file. Alpha is dropped.
    public static func read(from url: URL) throws -> Picture {
        let data: Data
        do { data = try CheckedFile.read(url, limit: maximumFileBytes) } catch let error as DataError {
            switch error {
            case .fileNotFound: throw ImageError(path: url.path, problem: "no such file")
            case .notAFile(_, let kind):
                throw ImageError(path: url.path, problem: "it is \(kind.notAFileWords)")
            case .io(_, let problem): throw ImageError(path: url.path, problem: problem)
            default: throw ImageError(path: url.path, problem: error.description)
            }
        }
        return try decode(data, source: url.path)
    }

    /// The largest picture read: 2^26 pixels (8192 x 8192).
    public static let maximumPixels = 1 << 26

    /// The largest image file read: 1 GiB (a 16-bit RGBA 8192 x 8192 PNM is 512 MiB).
    public static let maximumFileBytes = 1 << 30

    /// Decodes PNG or PGM/PPM content held in memory. `source` only labels errors.
    public static func decode(_ data: Data, source: String) throws -> Picture {
        let bytes = [UInt8](data)
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return try decodePNG(bytes, path: source) }
        if bytes.count >= 2, bytes[0] == UInt8(ascii: "P"), [UInt8(ascii: "2"), UInt8(ascii: "3"), UInt8(ascii: "5"), UInt8(ascii: "6")].contains(bytes[1]) {
            return try decodePNM(bytes, path: source)
        }
        throw ImageError(path: source, problem: "not a PNG or PGM/PPM file (unknown signature)")
    }

    /// This picture as one network input of shape C x H x W: channels converted (gray <-> RGB by
    /// averaging or repeating) and the size changed by area averaging (shrink) or bilinear sampling.
    public func fitted(to shape: [Int]) throws -> Tensor {
        guard shape.count == 3 else { throw ValueError.invalidArgument("the network input \(formatShape(shape)) is not an image shape C x H x W") }
        let (c, h, w) = (shape[0], shape[1], shape[2])
        guard c == 1 || c == 3 else { throw ValueError.invalidArgument("the network takes \(c)-channel images; only 1 or 3 channels can be made from a picture") }
        var planes: [[Float]] = (0..<channels).map { Array(pixels[($0 * width * height)..<(($0 + 1) * width * height)]) }
        if c == 1 && channels == 3 {
            planes = [(0..<(width * height)).map { (planes[0][$0] + planes[1][$0] + planes[2][$0]) / 3 }]
        } else if c == 3 && channels == 1 {
            planes = [planes[0], planes[0], planes[0]]
        }
        var out: [Float] = []
        out.reserveCapacity(c * h * w)
        for plane in planes { out += Picture.resample(plane, width: width, height: height, toWidth: w, toHeight: h) }
        return try Tensor(shape: [1, c, h, w], scalars: out)
    }

    /// Mean gray value of the picture's border (channels averaged): the outermost rows and columns, a ring
    /// `max(1, min(width, height) / 14)` pixels wide (2 for a 28x28 picture). The border is where a drawing
    /// shows its background.
    public var borderMean: Float {
        let ring = max(1, min(width, height) / 14)
        let plane = width &* height
        guard plane > 0, channels > 0, pixels.count >= plane &* channels else { return 0 }
        var sum: Double = 0, count = 0
        pixels.withUnsafeBufferPointer { buffer in
            let p = buffer.baseAddress!
            for y in 0..<height {
                let edgeRow = y < ring || y >= height &- ring
                for x in 0..<width where edgeRow || x < ring || x >= width &- ring {
                    var v: Float = 0
                    for c in 0..<channels { v += p[c &* plane &+ y &* width &+ x] }
                    sum += Double(v)
                    count &+= 1
                }
            }
        }
        return count == 0 ? 0 : Float(sum / Double(count * channels))
    }

    /// The picture's background as its border shows it: `.light` when the border's mean is above 0.5.
    public var background: Background { borderMean > 0.5 ? .light : .dark }

    /// The negative: every value v becomes 1 - v (dark strokes on white become white strokes on black).
    public func inverted() -> Picture {
        var out = self
        out.pixels.withUnsafeMutableBufferPointer { buffer in
            for i in buffer.indices { buffer[i] = 1 - buffer[i] }
        }
        return out
    }

    /// Area-average when shrinking, bilinear when growing.
    public static func resample(_ p: [Float], width: Int, height: Int, toWidth w: Int, toHeight h: Int) -> [Float] {
        if w == width && h == height { return p }
        var out = [Float](repeating: 0, count: w * h)
        let sx = Double(width) / Double(w), sy = Double(height) / Double(h)
        for y in 0..<h {
            for x in 0..<w {
                if sx >= 1 && sy >= 1 {
                    let x0 = Int(Double(x) * sx), x1 = max(x0 + 1, Int(Double(x + 1) * sx))
                    let y0 = Int(Double(y) * sy), y1 = max(y0 + 1, Int(Double(y + 1) * sy))
                    var s: Float = 0
                    for yy in y0..<min(y1, height) { for xx in x0..<min(x1, width) { s += p[yy * width + xx] } }
                    out[y * w + x] = s / Float((min(y1, height) - y0) * (min(x1, width) - x0))
                } else {
                    let fx = max(0, min(Double(width - 1), (Double(x) + 0.5) * sx - 0.5))
                    let fy = max(0, min(Double(height - 1), (Double(y) + 0.5) * sy - 0.5))
                    let x0 = Int(fx), y0 = Int(fy), x1 = min(x0 + 1, width - 1), y1 = min(y0 + 1, height - 1)
                    let ax = Float(fx - Double(x0)), ay = Float(fy - Double(y0))
                    let top = p[y0 * width + x0] * (1 - ax) + p[y0 * width + x1] * ax
                    let bottom = p[y1 * width + x0] * (1 - ax) + p[y1 * width + x1] * ax
                    out[y * w + x] = top * (1 - ay) + bottom * ay
                }
            }
        }
        return out
    }

    // MARK: PGM / PPM

    static func decodePNM(_ b: [UInt8], path: String) throws -> Picture {
        let kind = b[1]
        var i = 2
        func token() throws -> Int {
            while i < b.count {
                if b[i] == UInt8(ascii: "#") { while i < b.count && b[i] != 10 { i += 1 } } else if b[i] == 32 || (9...13).contains(b[i]) { i += 1 } else { break }
            }
            var v = 0, digits = 0
            while i < b.count, (48...57).contains(b[i]) {
                v = v * 10 + Int(b[i] - 48)
                digits += 1
                i += 1
                if v > 1 << 24 { throw ImageError(path: path, problem: "a header number is too large") }
            }
            guard digits > 0 else { throw ImageError(path: path, problem: "the header is incomplete or not numeric") }
            return v
        }
        let width = try token(), height = try token(), maxValue = try token()
        guard width > 0, height > 0, (1...65535).contains(maxValue) else {
            throw ImageError(path: path, problem: "bad size \(width)x\(height) or maximum value \(maxValue)")
        }
        guard width * height <= maximumPixels else {  // each is at most 2^24: no overflow
            throw ImageError(path: path, problem: "the image is \(width)x\(height), larger than the \(maximumPixels) pixels ConvNet reads")
        }
        let channels = (kind == UInt8(ascii: "3") || kind == UInt8(ascii: "6")) ? 3 : 1
        let count = width * height * channels
        // Every value takes at least one byte of the file (text values two, with their separator).
        guard count <= b.count - i else {
            throw ImageError(path: path, problem: "file is truncated: the header says \(width)x\(height)x\(channels) values, the file has \(b.count) bytes")
        }
        var values = [Int](repeating: 0, count: count)
        if kind == UInt8(ascii: "2") || kind == UInt8(ascii: "3") {
            for k in 0..<count { values[k] = try token() }
        } else {
            i += 1  // one whitespace byte after the header
            let bytesPer = maxValue > 255 ? 2 : 1
            guard b.count - i >= count * bytesPer else {
                throw ImageError(path: path, problem: "file is truncated: \(count * bytesPer) pixel bytes expected, \(max(0, b.count - i)) found")
            }
            for k in 0..<count { values[k] = bytesPer == 1 ? Int(b[i + k]) : Int(b[i + 2 * k]) << 8 | Int(b[i + 2 * k + 1]) }
        }
        var pixels = [Float](repeating: 0, count: count)
        for k in 0..<(width * height) {
            for c in 0..<channels { pixels[c * width * height + k] = Float(min(values[k * channels + c], maxValue)) / Float(maxValue) }
        }
        return Picture(width: width, height: height, channels: channels, pixels: pixels)
    }

    // MARK: PNG

    static func decodePNG(_ b: [UInt8], path: String) throws -> Picture {
        func fail(_ m: String) -> ImageError { ImageError(path: path, problem: m) }
        func u32(_ o: Int) -> Int { Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3]) }
        var offset = 8
        var width = 0, height = 0, depth = 0, colorType = 0
        var idat: [UInt8] = []
        var palette: [UInt8] = []
        var sawHeader = false, sawEnd = false
        while !sawEnd {
            guard b.count - offset >= 12 else { throw fail("file is truncated: it ends before the IEND chunk") }
            let length = u32(offset)
            let typeBytes = b[(offset + 4)..<(offset + 8)]
            let type = String(decoding: typeBytes.map { (0x20...0x7E).contains($0) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
            guard length <= b.count - offset - 12 else { throw fail("file is truncated inside the \(type) chunk") }
            let stored = UInt32(u32(offset + 8 + length))
            let crc = b.withUnsafeBytes { Gzip.crc32(UnsafeRawBufferPointer(rebasing: $0[(offset + 4)..<(offset + 8 + length)])) }
            guard crc == stored else {
                throw fail("the \(type) chunk is corrupt (CRC-32 \(String(format: "%08x", crc)), the file says \(String(format: "%08x", stored)))")
            }
            let body = b[(offset + 8)..<(offset + 8 + length)]
            guard sawHeader || type == "IHDR" else { throw fail("the first chunk is \(type), not IHDR") }
            switch type {
            case "IHDR":
                guard !sawHeader, length == 13 else { throw fail("bad IHDR chunk") }
                sawHeader = true
                width = u32(offset + 8); height = u32(offset + 12)
                depth = Int(b[offset + 16]); colorType = Int(b[offset + 17])
                if b[offset + 20] != 0 { throw fail("interlaced PNGs are not supported; save it without interlacing") }
            case "PLTE":
                guard length % 3 == 0, length <= 768 else { throw fail("bad palette (PLTE chunk of \(length) bytes)") }
                palette = Array(body)
            case "IDAT": idat += body
            case "IEND": sawEnd = true
            default: break
            }
            offset += 12 + length
        }
        guard width > 0, height > 0, width <= 1 << 24, height <= 1 << 24 else { throw fail("bad IHDR (size \(width)x\(height))") }
        guard width * height <= maximumPixels else {
            throw fail("the image is \(width)x\(height), larger than the \(maximumPixels) pixels ConvNet reads")
        }
        guard !idat.isEmpty else { throw fail("no image data (IDAT) — the file is truncated") }
        let samples: Int
        switch colorType {
        case 0: samples = 1
        case 2: samples = 3
        case 3: samples = 1
        case 4: samples = 2
        case 6: samples = 4
        default: throw fail("unknown PNG colour type \(colorType)")
        }
        guard colorType == 3 ? depth == 8 : (depth == 8 || depth == 16) else {
            throw fail("bit depth \(depth) is not supported (use 8 or 16 bits per sample, 8 for palette images)")
        }
        let bytesPerPixel = samples * depth / 8
        let stride = width * bytesPerPixel
        // The rows and their filter bytes: inflating stops there (a small file cannot claim gigabytes).
        let rawSize = height * (stride + 1)
        let raw: [UInt8]
        do {
            raw = [UInt8](try Gzip.decompress(Data(idat), source: path, limit: rawSize))
        } catch let DataError.malformed(_, problem) {
            throw fail("corrupt compressed image data (\(problem))")
        }
        guard raw.count >= height * (stride + 1) else { throw fail("file is truncated: image data ends early") }
        var image = [UInt8](repeating: 0, count: height * stride)
        for y in 0..<height {
            let filter = raw[y * (stride + 1)]
            let src = y * (stride + 1) + 1, dst = y * stride
            for x in 0..<stride {
                let a = x >= bytesPerPixel ? Int(image[dst + x - bytesPerPixel]) : 0
                let up = y > 0 ? Int(image[dst - stride + x]) : 0
                let c = (x >= bytesPerPixel && y > 0) ? Int(image[dst - stride + x - bytesPerPixel]) : 0
                let r = Int(raw[src + x])
                let v: Int
                switch filter {
                case 0: v = r
                case 1: v = r + a
                case 2: v = r + up
                case 3: v = r + (a + up) / 2
                case 4:
                    let p = a + up - c, pa = abs(p - a), pb = abs(p - up), pc = abs(p - c)
                    v = r + ((pa <= pb && pa <= pc) ? a : (pb <= pc ? up : c))
                default: throw fail("bad row filter \(filter)")
                }
                image[dst + x] = UInt8(truncatingIfNeeded: v)
            }
        }
        let channels = (colorType == 2 || colorType == 6 || colorType == 3) ? 3 : 1
        let plane = width * height
        var pixels = [Float](repeating: 0, count: channels * plane)
        let maxValue: Float = depth == 16 ? 65535 : 255
        for k in 0..<plane {
            for c in 0..<channels {
                let value: Float
                if colorType == 3 {
                    let index = Int(image[k]) * 3 + c
                    guard index < palette.count else { throw fail("palette index out of range") }
                    value = Float(palette[index]) / 255
                } else {
                    let o = k * bytesPerPixel + c * depth / 8
                    value = (depth == 16 ? Float(Int(image[o]) << 8 | Int(image[o + 1])) : Float(image[o])) / maxValue
                }
                pixels[c * plane + k] = value
            }
        }
        return Picture(width: width, height: height, channels: channels, pixels: pixels)
    }
}
