import Foundation

/// Raw 8-bit images before scaling: N x C x H x W bytes.
public struct ByteImages: Sendable {
    public var shape: [Int]
    public var bytes: [UInt8]

    /// Pixels scaled to [0, 1] as Float32, same shape.
    public func scaledTensor() -> Tensor {
        Tensor(shape: shape) { dst in
            bytes.withUnsafeBufferPointer { src in
                let d = dst.baseAddress!, s = src.baseAddress!
                let scale: Float = 1.0 / 255.0
                for i in 0..<src.count { d[i] = Float(s[i]) * scale }
            }
        }
    }
}

/// The IDX format of MNIST and Fashion-MNIST (big-endian header, unsigned bytes), gzipped or not.
public enum IDXFile {
    /// Images from an `idx3-ubyte` file: N x 1 x H x W bytes.
    public static func readImages(_ url: URL) throws -> ByteImages {
        let (dims, payload) = try read(url, expectedRank: 3)
        return ByteImages(shape: [dims[0], 1, dims[1], dims[2]], bytes: payload)
    }

    /// Labels from an `idx1-ubyte` file, checked against `classes`.
    public static func readLabels(_ url: URL, classes: Int) throws -> [Int] {
        let (_, payload) = try read(url, expectedRank: 1)
        var labels = [Int](repeating: 0, count: payload.count)
        for (i, b) in payload.enumerated() {
            let label = Int(b)
            if label >= classes { throw DataError.labelOutOfRange(path: url.path, index: i, label: label, classes: classes) }
            labels[i] = label
        }
        return labels
    }

    /// Reads the dimensions and the bytes after the header.
    static func read(_ url: URL, expectedRank: Int) throws -> ([Int], [UInt8]) {
        try parse(FileBytes.readMaybeGzipped(url, hint: "run `convnet download` or pass --data-dir"), path: url.path, expectedRank: expectedRank)
    }

    /// The dimensions and the values of IDX content (already inflated).
    static func parse(_ data: Data, path: String, expectedRank: Int) throws -> ([Int], [UInt8]) {
        let headerSize = 4 + 4 * expectedRank
        let expectedMagic = 0x0800 | expectedRank
        guard data.count >= 4 else { throw DataError.truncated(path: path, expectedBytes: headerSize, actualBytes: data.count) }
        let b = [UInt8](data.prefix(headerSize))
        let magic = Int(b[0]) << 24 | Int(b[1]) << 16 | Int(b[2]) << 8 | Int(b[3])
        guard magic == expectedMagic else {
            throw DataError.badMagic(path: path, expected: "\(expectedMagic) (IDX, unsigned bytes, \(expectedRank) dimensions)",
                                     found: "\(magic)")
        }
        guard data.count >= headerSize else { throw DataError.truncated(path: path, expectedBytes: headerSize, actualBytes: data.count) }
        var dims: [Int] = []
        for k in 0..<expectedRank {
            let o = 4 + 4 * k
            dims.append(Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3]))
        }
        // Each dimension is below 2^32, but their product can overflow: check it against the bytes there are.
        var count = 1
        for d in dims {
            let (c, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw DataError.malformed(
                    path: path, problem: "the header claims \(dims.map(String.init).joined(separator: "x")) values but the file holds only \(data.count) bytes (truncated or not an IDX file)")
            }
            count = c
        }
        guard data.count >= headerSize + count else {
            throw DataError.truncated(path: path, expectedBytes: headerSize + count, actualBytes: data.count)
        }
        guard data.count == headerSize + count else {
            throw DataError.malformed(path: path, problem: "\(data.count - headerSize - count) unexpected bytes after the \(dims.map(String.init).joined(separator: "x")) values")
        }
        let start = data.startIndex + headerSize
        return (dims, [UInt8](data[start..<(start + count)]))
    }

    /// Images and labels of one split, with the counts checked against each other.
    static func readPair(images: URL, labels: URL, classes: Int) throws -> (ByteImages, [Int]) {
        let im = try readImages(images)
        let lb = try readLabels(labels, classes: classes)
        guard im.shape[0] == lb.count else {
            throw DataError.countMismatch(images: images.path, imageCount: im.shape[0], labels: labels.path, labelCount: lb.count)
        }
        return (im, lb)
    }
}

/// CIFAR-10's binary batches: per record one label byte, then 3x32x32 pixel bytes (R, G, B planes).
public enum CIFAR10File {
    public static let classNames = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    public static let recordSize = 1 + 3 * 32 * 32
    public static let trainFiles = (1...5).map { "data_batch_\($0).bin" }
    public static let testFiles = ["test_batch.bin"]

    /// Reads and concatenates batches.
    public static func read(_ urls: [URL]) throws -> (ByteImages, [Int]) {
        var bytes: [UInt8] = []
        var labels: [Int] = []
        for url in urls {
            try parse(FileBytes.read(url, hint: "run `convnet download cifar10` or pass --data-dir"), source: url.path,
                      appendingTo: &bytes, labels: &labels)
        }
        return (ByteImages(shape: [labels.count, 3, 32, 32], bytes: bytes), labels)
    }

    /// Appends the records of one batch file's content.
    static func parse(_ data: Data, source: String, appendingTo bytes: inout [UInt8], labels: inout [Int]) throws {
        guard !data.isEmpty, data.count % recordSize == 0 else {
            throw DataError.truncated(path: source, expectedBytes: (data.count / recordSize + 1) * recordSize, actualBytes: data.count)
        }
        let n = data.count / recordSize
        bytes.reserveCapacity(bytes.count + n * (recordSize - 1))
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let p = raw.bindMemory(to: UInt8.self)
            for r in 0..<n {
                let label = Int(p[r &* recordSize])
                if label >= classNames.count {
                    throw DataError.labelOutOfRange(path: source, index: r, label: label, classes: classNames.count)
                }
                labels.append(label)
                let start = r &* recordSize &+ 1
                bytes.append(contentsOf: p[start..<(start + recordSize - 1)])
            }
        }
    }

    /// Class names from `batches.meta.txt` when present, else the standard ones.
    static func classNames(in folder: URL) -> [String] {
        let meta = folder.appendingPathComponent("batches.meta.txt")
        guard let text = try? CheckedFile.readText(meta, limit: 1 << 16) else { return classNames }
        let names = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return names.count == 10 ? names : classNames
    }
}

/// The bundled sample's CSV: one image per line, 784 pixel values then the label, no header.
public enum DigitsCSV {
    public static func read(_ url: URL, side: Int = 28, classes: Int = 10) throws -> (ByteImages, [Int]) {
        try parse(FileBytes.readMaybeGzipped(url), source: url.path, side: side, classes: classes)
    }

    static func parse(_ data: Data, source: String, side: Int, classes: Int) throws -> (ByteImages, [Int]) {
        let pixels = side * side
        var bytes: [UInt8] = []
        var labels: [Int] = []
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let p = raw.bindMemory(to: UInt8.self)
            var i = 0
            var line = 0
            var row = [Int](repeating: 0, count: pixels + 1)
            while i < p.count {
                // One line.
                var field = 0, value = 0, digits = 0
                line += 1
                while i < p.count {
                    let c = p[i]
                    i &+= 1
                    if c >= 48 && c <= 57 {
                        value = value &* 10 &+ Int(c &- 48); digits &+= 1
                        if value > 255 { throw DataError.malformed(path: source, problem: "line \(line): value above 255") }
                    } else if c == 44 || c == 10 {  // ',' or '\n'
                        guard digits > 0 else { throw DataError.malformed(path: source, problem: "line \(line): empty field \(field + 1)") }
                        guard field <= pixels else { throw DataError.malformed(path: source, problem: "line \(line): more than \(pixels + 1) fields") }
                        row[field] = value
                        field &+= 1; value = 0; digits = 0
                        if c == 10 { break }
                    } else if c == 13 || c == 32 {
                        continue
                    } else {
                        throw DataError.malformed(path: source, problem: "line \(line): unexpected character '\(Character(Unicode.Scalar(c)))'")
                    }
                }
                if digits > 0 {  // last line without '\n'
                    guard field <= pixels else { throw DataError.malformed(path: source, problem: "line \(line): more than \(pixels + 1) fields") }
                    row[field] = value; field &+= 1
                }
                if field == 0 { continue }
                guard field == pixels + 1 else {
                    throw DataError.malformed(path: source, problem: "line \(line): \(field) fields, expected \(pixels + 1) (\(pixels) pixels then the label)")
                }
                let label = row[pixels]
                if label >= classes { throw DataError.labelOutOfRange(path: source, index: labels.count, label: label, classes: classes) }
                for k in 0..<pixels { bytes.append(UInt8(truncatingIfNeeded: row[k])) }
                labels.append(label)
            }
        }
        guard !labels.isEmpty else { throw DataError.malformed(path: source, problem: "no images in the file") }
        return (ByteImages(shape: [labels.count, 1, side, side], bytes: bytes), labels)
    }
}

/// Just enough of POSIX tar (ustar and GNU long names) to unpack CIFAR-10's archive.
enum TarArchive {
    /// The regular files of the archive: (path, content).
    static func files(in data: Data, source: String) throws -> [(path: String, content: Data)] {
        var result: [(path: String, content: Data)] = []
        var offset = data.startIndex
        var longName: String?
        func text(_ range: Range<Int>) -> String {
            let slice = data[range]
            let end = slice.firstIndex(of: 0) ?? slice.endIndex
            return String(decoding: data[range.lowerBound..<end], as: UTF8.self)
        }
        while offset + 512 <= data.endIndex {
            let header = offset..<(offset + 512)
            if data[header].allSatisfy({ $0 == 0 }) { break }
            var name = text(offset..<(offset + 100))
            let prefix = text((offset + 345)..<(offset + 500))
            if !prefix.isEmpty { name = prefix + "/" + name }
            // The size: octal digits, optionally padded with spaces or NULs (no sign, at most 11 digits).
            var size = 0, digits = 0
            for i in (offset + 124)..<(offset + 136) {
                let c = data[i]
                if c >= 0x30 && c <= 0x37 && digits < 11 {
                    size = size * 8 + Int(c - 0x30); digits += 1
                } else if c == 0x20 || c == 0 {
                    if digits > 0 { break }
                } else {
                    throw DataError.malformed(path: source, problem: "bad tar header at byte \(offset - data.startIndex): the size field is not octal")
                }
            }
            let type = data[offset + 156]
            let contentStart = offset + 512
            guard contentStart + size <= data.endIndex else {
                throw DataError.truncated(path: source, expectedBytes: contentStart + size - data.startIndex, actualBytes: data.count)
            }
            let content = data[contentStart..<(contentStart + size)]
            switch type {
            case UInt8(ascii: "L"):
                longName = String(decoding: content.prefix { $0 != 0 }, as: UTF8.self)
            case 0, UInt8(ascii: "0"):
                result.append((longName ?? name, Data(content)))
                longName = nil
            default:
                longName = nil
            }
            offset = contentStart + (size + 511) / 512 * 512
        }
        return result
    }
}
