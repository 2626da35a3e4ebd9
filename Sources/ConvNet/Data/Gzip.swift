import CGzip
import Foundation

/// gzip and deflate inflate through the system zlib (gzip members, zlib streams and raw deflate), always
/// bounded: output beyond `limit` bytes is an error, not an allocation.
enum Gzip {
    /// The most any gzip file is inflated to unless a caller says otherwise (CIFAR-10's tar is 180 MB).
    static let defaultLimit = 1 << 30
    /// deflate cannot compress by more than about 1032:1, so no honest stream inflates to more.
    static let maximumRatio = 1032

    static func isGzip(_ data: Data) -> Bool {
        data.count >= 2 && data[data.startIndex] == 0x1F && data[data.startIndex + 1] == 0x8B
    }

    /// The whole decompressed content of a gzip (one or more members) or zlib stream. Throws
    /// `DataError.malformed` when it is empty, truncated, corrupt, or inflates to more than `limit` bytes.
    static func decompress(_ data: Data, source: String, limit: Int = defaultLimit) throws -> Data {
        if data.isEmpty { throw DataError.malformed(path: source, problem: "file is empty") }
        // gzip's trailer holds the size modulo 2^32 of the last member: a first guess, never trusted further.
        var guess = 0
        if isGzip(data), data.count >= 18 {
            let t = data.endIndex - 4
            guess = Int(data[t]) | Int(data[t + 1]) << 8 | Int(data[t + 2]) << 16 | Int(data[t + 3]) << 24
        }
        return try inflate(data, raw: false, source: source, limit: limit, sizeGuess: guess, exactSize: nil)
    }

    /// A raw deflate stream (a ZIP entry) that must inflate to exactly `size` bytes.
    static func inflateRaw(_ data: Data, size: Int, source: String) throws -> Data {
        try inflate(data, raw: true, source: source, limit: size, sizeGuess: size, exactSize: size)
    }

    private static func inflate(_ data: Data, raw: Bool, source: String, limit: Int, sizeGuess: Int, exactSize: Int?) throws -> Data {
        let (ratioBound, overflow) = data.count.multipliedReportingOverflow(by: maximumRatio)
        let ceiling = min(limit, overflow ? Int.max : ratioBound &+ 64)
        // One byte more than the limit lets the loop see that the stream goes on past it.
        var output = Data(count: max(1, min(max(sizeGuess, data.count &* 2, 1 << 16), ceiling) &+ 1))
        var produced = 0
        var stream = z_stream()
        let windowBits: Int32 = raw ? -15 : 15 + 32
        guard inflateInit2_(&stream, windowBits, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DataError.io(path: source, problem: "zlib failed to initialise")
        }
        defer { inflateEnd(&stream) }
        let what = raw ? "deflate" : "compressed"
        func tooBig() -> DataError {
            if let exact = exactSize {
                return .malformed(path: source, problem: "corrupt \(what) data: it inflates to more than the \(exact) bytes its header gives")
            }
            return .malformed(path: source, problem: "\(what) data inflates to more than \(limit) bytes; refusing (a corrupt file or a compression bomb)")
        }
        if data.count > Int(UInt32.max) { throw DataError.malformed(path: source, problem: "compressed data over 4 GiB is not supported") }
        try data.withUnsafeBytes { (input: UnsafeRawBufferPointer) in
            guard let base = input.bindMemory(to: Bytef.self).baseAddress else { return }
            stream.next_in = UnsafeMutablePointer(mutating: base)
            stream.avail_in = uInt(input.count)
            while true {
                if produced == output.count {
                    if produced > limit { throw tooBig() }
                    output.count = min(output.count * 2, limit + 1)
                }
                let status: Int32 = output.withUnsafeMutableBytes { out in
                    let o = out.bindMemory(to: Bytef.self).baseAddress!
                    stream.next_out = o + produced
                    let room = min(out.count - produced, Int(UInt32.max))
                    stream.avail_out = uInt(room)
                    let s = CGzip.inflate(&stream, Z_NO_FLUSH)
                    produced += room - Int(stream.avail_out)
                    return s
                }
                if produced > limit { throw tooBig() }
                switch status {
                case Z_STREAM_END:
                    // Another gzip member may follow (concatenated .gz files are valid gzip).
                    let remaining = Int(stream.avail_in)
                    if !raw, remaining >= 2, stream.next_in[0] == 0x1F, stream.next_in[1] == 0x8B {
                        inflateReset(&stream)
                        continue
                    }
                    return
                case Z_OK:
                    continue
                case Z_BUF_ERROR:
                    if stream.avail_in == 0 {
                        throw DataError.malformed(
                            path: source, problem: "file is truncated: the compressed stream ends early after \(data.count) bytes; delete it and download it again")
                    }
                    continue
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "error \(status)"
                    throw DataError.malformed(path: source, problem: "corrupt \(what) data (\(message))")
                }
            }
        }
        if let exact = exactSize, produced != exact {
            throw DataError.malformed(path: source, problem: "corrupt \(what) data: it inflates to \(produced) bytes, its header gives \(exact)")
        }
        output.count = produced
        return output
    }

    /// A raw deflate stream of `data` (zlib's default level), for ZIP entries.
    static func deflateRaw(_ data: Data) throws -> Data {
        var stream = z_stream()
        guard deflateInit2_(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
                            Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DataError.io(path: "deflate", problem: "zlib failed to initialise")
        }
        defer { deflateEnd(&stream) }
        guard data.count < Int(UInt32.max) else { throw DataError.io(path: "deflate", problem: "cannot compress 4 GiB or more in one entry") }
        var output = Data(count: Int(deflateBound(&stream, uLong(data.count))) + 16)
        var status: Int32 = Z_OK
        let produced: Int = data.withUnsafeBytes { input in
            output.withUnsafeMutableBytes { out in
                stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
                stream.avail_in = uInt(input.count)
                stream.next_out = out.bindMemory(to: Bytef.self).baseAddress
                stream.avail_out = uInt(out.count)
                status = CGzip.deflate(&stream, Z_FINISH)
                return out.count - Int(stream.avail_out)
            }
        }
        guard status == Z_STREAM_END else { throw DataError.io(path: "deflate", problem: "zlib deflate failed (\(status))") }
        output.count = produced
        return output
    }

    /// The CRC-32 of ZIP, gzip and PNG.
    static func crc32(_ bytes: UnsafeRawBufferPointer, initial: UInt32 = 0) -> UInt32 {
        var crc = UInt(initial)
        var p = bytes.bindMemory(to: Bytef.self).baseAddress
        var left = bytes.count
        while left > 0, let q = p {
            let n = min(left, 1 << 30)
            crc = CGzip.crc32(crc, q, uInt(n))
            p = q + n
            left -= n
        }
        return UInt32(truncatingIfNeeded: crc)
    }

    static func crc32(_ data: Data) -> UInt32 { data.withUnsafeBytes { crc32($0) } }
}
