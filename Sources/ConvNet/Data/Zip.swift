import Foundation

/// Reads ZIP archives (the container of NumPy's `.npz`) from bytes in memory: stored and deflated
/// entries, ZIP64 sizes and offsets. Every size and offset is checked against the bytes that are
/// there before anything is allocated, every entry's CRC-32 is verified, and inflating stops at the
/// size the central directory gives.
struct ZipReader {
    struct Entry {
        var name: String
        var method: Int
        var flags: Int
        var crc: UInt32
        var compressedSize: Int
        var uncompressedSize: Int
        var localHeaderOffset: Int
        var isDirectory: Bool { name.hasSuffix("/") }
    }

    let data: Data
    let source: String
    let entries: [Entry]

    init(data: Data, source: String) throws {
        self.data = data
        self.source = source
        entries = try ZipReader.centralDirectory(data, source: source)
    }

    private static func bad(_ source: String, _ problem: String) -> DataError {
        .malformed(path: source, problem: "not a readable .npz (zip) archive: \(problem)")
    }

    /// Little-endian fields at byte offsets from the start of `data` (callers check the range first).
    private static func u16(_ d: Data, _ o: Int) -> Int { Int(d[d.startIndex + o]) | Int(d[d.startIndex + o + 1]) << 8 }
    private static func u32(_ d: Data, _ o: Int) -> Int { u16(d, o) | u16(d, o + 2) << 16 }
    private static func u64(_ d: Data, _ o: Int) -> UInt64 { UInt64(u32(d, o)) | UInt64(u32(d, o + 4)) << 32 }

    /// A 64-bit size or offset that must lie within the file.
    private static func fileOffset(_ v: UInt64, _ d: Data, _ what: String, _ source: String) throws -> Int {
        guard v <= UInt64(d.count) else { throw bad(source, "\(what) \(v) lies beyond the end of the \(d.count)-byte file (truncated?)") }
        return Int(v)
    }

    private static func centralDirectory(_ d: Data, source: String) throws -> [Entry] {
        let n = d.count
        guard n >= 22 else { throw bad(source, "\(n) bytes is too short for a zip file (truncated?)") }
        // The end-of-central-directory record: within the last 64 KiB + 22 bytes (the comment is at most 65535).
        var eocd = -1
        var o = n - 22
        let lowest = max(0, n - 22 - 65535)
        while o >= lowest {
            if d[d.startIndex + o] == 0x50, u32(d, o) == 0x0605_4B50 { eocd = o; break }
            o -= 1
        }
        guard eocd >= 0 else { throw bad(source, "no end-of-central-directory record (truncated, or not a zip file)") }
        var count = u16(d, eocd + 10)
        var directorySize = u32(d, eocd + 12)
        var directoryOffset = u32(d, eocd + 16)
        if count == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            // ZIP64: a locator right before the record points at the ZIP64 end record.
            guard eocd >= 20, u32(d, eocd - 20) == 0x0706_4B50 else { throw bad(source, "ZIP64 sizes without a ZIP64 locator") }
            let record = try fileOffset(u64(d, eocd - 12), d, "the ZIP64 end record's offset", source)
            guard record <= n - 56, u32(d, record) == 0x0606_4B50 else { throw bad(source, "no ZIP64 end record where its locator points") }
            let c = u64(d, record + 32)
            guard c <= UInt64(n / 46) else { throw bad(source, "the ZIP64 end record claims \(c) entries, more than the file can hold") }
            count = Int(c)
            directorySize = try fileOffset(u64(d, record + 40), d, "the central directory's size", source)
            directoryOffset = try fileOffset(u64(d, record + 48), d, "the central directory's offset", source)
        }
        guard directoryOffset <= n, directorySize <= n - directoryOffset else {
            throw bad(source, "the central directory (\(directorySize) bytes at \(directoryOffset)) lies beyond the end of the \(n)-byte file (truncated?)")
        }
        guard count <= directorySize / 46 else {
            throw bad(source, "the central directory claims \(count) entries in \(directorySize) bytes")
        }
        var entries: [Entry] = []
        entries.reserveCapacity(count)
        var names: Set<String> = []
        var p = directoryOffset
        let end = directoryOffset + directorySize
        for index in 0..<count {
            guard end - p >= 46, u32(d, p) == 0x0201_4B50 else { throw bad(source, "central directory entry \(index + 1) is damaged") }
            let flags = u16(d, p + 8), method = u16(d, p + 10)
            let crc = UInt32(u32(d, p + 16))
            var compressed = UInt64(u32(d, p + 20)), uncompressed = UInt64(u32(d, p + 24))
            let nameLength = u16(d, p + 28), extraLength = u16(d, p + 30), commentLength = u16(d, p + 32)
            var offset = UInt64(u32(d, p + 42))
            let variable = nameLength + extraLength + commentLength
            guard end - p - 46 >= variable else { throw bad(source, "central directory entry \(index + 1) runs past the directory") }
            let nameStart = d.startIndex + p + 46
            let name = String(decoding: d[nameStart..<(nameStart + nameLength)], as: UTF8.self)
            // ZIP64 extra field (id 1): the 64-bit values of the fields that read 0xFFFFFFFF, in this order.
            var e = p + 46 + nameLength
            let extraEnd = e + extraLength
            while extraEnd - e >= 4 {
                let id = u16(d, e), size = u16(d, e + 2)
                guard extraEnd - e - 4 >= size else { throw bad(source, "entry '\(name)' has a damaged extra field") }
                if id == 1 {
                    var f = e + 4
                    let fEnd = f + size
                    for field in 0..<3 {
                        let wide = field == 0 ? uncompressed == 0xFFFF_FFFF : field == 1 ? compressed == 0xFFFF_FFFF : offset == 0xFFFF_FFFF
                        guard wide else { continue }
                        guard fEnd - f >= 8 else { throw bad(source, "entry '\(name)' has a short ZIP64 extra field") }
                        let v = u64(d, f)
                        switch field {
                        case 0: uncompressed = v
                        case 1: compressed = v
                        default: offset = v
                        }
                        f += 8
                    }
                }
                e += 4 + size
            }
            let localOffset = try fileOffset(offset, d, "entry '\(name)''s offset", source)
            let compressedSize = try fileOffset(compressed, d, "entry '\(name)''s compressed size", source)
            guard uncompressed <= UInt64(Int.max / 2) else { throw bad(source, "entry '\(name)' claims \(uncompressed) bytes") }
            // Readers disagree on which copy counts (NumPy takes the last): refused rather than guessed.
            guard names.insert(name).inserted else { throw bad(source, "it holds two entries named '\(name)'") }
            entries.append(Entry(name: name, method: method, flags: flags, crc: crc, compressedSize: compressedSize,
                                 uncompressedSize: Int(uncompressed), localHeaderOffset: localOffset))
            p += 46 + variable
        }
        return entries
    }

    /// The content of one entry, inflated and checked against its size and CRC-32.
    func content(of entry: Entry) throws -> Data {
        let d = data, n = d.count
        let label = "entry '\(entry.name)'"
        let o = entry.localHeaderOffset
        guard o <= n - 30, ZipReader.u32(d, o) == 0x0403_4B50 else {
            throw ZipReader.bad(source, "\(label) has no local header where the directory points (truncated?)")
        }
        if entry.flags & 1 != 0 { throw ZipReader.bad(source, "\(label) is encrypted") }
        let start = o + 30 + ZipReader.u16(d, o + 26) + ZipReader.u16(d, o + 28)
        guard start <= n, entry.compressedSize <= n - start else {
            throw DataError.truncated(path: source, expectedBytes: start + entry.compressedSize, actualBytes: n)
        }
        let raw = d.subdata(in: (d.startIndex + start)..<(d.startIndex + start + entry.compressedSize))
        let bytes: Data
        switch entry.method {
        case 0:
            guard entry.compressedSize == entry.uncompressedSize else {
                throw ZipReader.bad(source, "\(label) is stored with \(entry.compressedSize) bytes but claims \(entry.uncompressedSize)")
            }
            bytes = raw
        case 8:
            let (bound, overflow) = entry.compressedSize.multipliedReportingOverflow(by: Gzip.maximumRatio)
            guard overflow || entry.uncompressedSize <= bound &+ 64 else {
                throw ZipReader.bad(source, "\(label) claims \(entry.uncompressedSize) bytes from \(entry.compressedSize) compressed, more than deflate can give")
            }
            do {
                bytes = try Gzip.inflateRaw(raw, size: entry.uncompressedSize, source: source)
            } catch let DataError.malformed(_, problem) {
                throw DataError.malformed(path: source, problem: "\(label): \(problem)")
            }
        default:
            throw ZipReader.bad(source, "\(label) uses compression method \(entry.method); only stored (0) and deflate (8) are read")
        }
        let crc = Gzip.crc32(bytes)
        guard crc == entry.crc else {
            throw DataError.malformed(
                path: source,
                problem: "\(label) is corrupt: its CRC-32 is \(String(format: "%08x", crc)), the archive says \(String(format: "%08x", entry.crc))")
        }
        return bytes
    }
}

/// Writes ZIP archives in memory (stored or deflated entries, ZIP64 where a size or offset needs it),
/// for `.npz` files that NumPy's `np.load` reads.
struct ZipWriter {
    private(set) var data = Data()
    private var directory = Data()
    private var count = 0

    private static func append16(_ d: inout Data, _ v: Int) { d.append(UInt8(v & 0xFF)); d.append(UInt8((v >> 8) & 0xFF)) }
    private static func append32(_ d: inout Data, _ v: Int) { append16(&d, v & 0xFFFF); append16(&d, (v >> 16) & 0xFFFF) }
    private static func append64(_ d: inout Data, _ v: Int) { append32(&d, v & 0xFFFF_FFFF); append32(&d, (v >> 32) & 0xFFFF_FFFF) }

    mutating func add(name: String, content: Data, compressed: Bool) throws {
        let body = compressed ? try Gzip.deflateRaw(content) : content
        let crc = Gzip.crc32(content)
        let offset = data.count
        let nameBytes = Data(name.utf8)
        let wide = content.count >= 0xFFFF_FFFF || body.count >= 0xFFFF_FFFF
        let wideOffset = offset >= 0xFFFF_FFFF
        let version = wide || wideOffset ? 45 : 20
        let method = compressed ? 8 : 0
        // Local header.
        var local = Data()
        Self.append32(&local, 0x0403_4B50)
        Self.append16(&local, version); Self.append16(&local, 0); Self.append16(&local, method)
        Self.append16(&local, 0); Self.append16(&local, 0x21)  // 00:00, 1980-01-01
        Self.append32(&local, Int(crc))
        Self.append32(&local, wide ? 0xFFFF_FFFF : body.count); Self.append32(&local, wide ? 0xFFFF_FFFF : content.count)
        Self.append16(&local, nameBytes.count); Self.append16(&local, wide ? 20 : 0)
        local.append(nameBytes)
        if wide { Self.append16(&local, 1); Self.append16(&local, 16); Self.append64(&local, content.count); Self.append64(&local, body.count) }
        data.append(local)
        data.append(body)
        // Central directory entry.
        var extra = Data()
        if wide || wideOffset {
            var fields = Data()
            if wide { Self.append64(&fields, content.count); Self.append64(&fields, body.count) }
            if wideOffset { Self.append64(&fields, offset) }
            Self.append16(&extra, 1); Self.append16(&extra, fields.count); extra.append(fields)
        }
        Self.append32(&directory, 0x0201_4B50)
        Self.append16(&directory, 0x0300 | version); Self.append16(&directory, version)
        Self.append16(&directory, 0); Self.append16(&directory, method)
        Self.append16(&directory, 0); Self.append16(&directory, 0x21)
        Self.append32(&directory, Int(crc))
        Self.append32(&directory, wide ? 0xFFFF_FFFF : body.count); Self.append32(&directory, wide ? 0xFFFF_FFFF : content.count)
        Self.append16(&directory, nameBytes.count); Self.append16(&directory, extra.count); Self.append16(&directory, 0)
        Self.append16(&directory, 0); Self.append16(&directory, 0); Self.append32(&directory, 0o100644 << 16)
        Self.append32(&directory, wideOffset ? 0xFFFF_FFFF : offset)
        directory.append(nameBytes)
        directory.append(extra)
        count += 1
    }

    /// The finished archive.
    mutating func finish() -> Data {
        let directoryOffset = data.count
        data.append(directory)
        let needs64 = count >= 0xFFFF || directory.count >= 0xFFFF_FFFF || directoryOffset >= 0xFFFF_FFFF
        if needs64 {
            let record = data.count
            Self.append32(&data, 0x0606_4B50); Self.append64(&data, 44)
            Self.append16(&data, 45); Self.append16(&data, 45); Self.append32(&data, 0); Self.append32(&data, 0)
            Self.append64(&data, count); Self.append64(&data, count)
            Self.append64(&data, directory.count); Self.append64(&data, directoryOffset)
            Self.append32(&data, 0x0706_4B50); Self.append32(&data, 0); Self.append64(&data, record); Self.append32(&data, 1)
        }
        Self.append32(&data, 0x0605_4B50)
        Self.append16(&data, 0); Self.append16(&data, 0)
        Self.append16(&data, needs64 ? 0xFFFF : count); Self.append16(&data, needs64 ? 0xFFFF : count)
        Self.append32(&data, needs64 ? 0xFFFF_FFFF : directory.count)
        Self.append32(&data, needs64 ? 0xFFFF_FFFF : directoryOffset)
        Self.append16(&data, 0)
        return data
    }
}
