import CGzip
import Foundation

/// gzip inflate through the system zlib (single- or multi-member streams, raw zlib streams too).
enum Gzip {
    static func isGzip(_ data: Data) -> Bool {
        data.count >= 2 && data[data.startIndex] == 0x1F && data[data.startIndex + 1] == 0x8B
    }

    /// The whole decompressed content. Throws `DataError.truncated` when the stream ends early and
    /// `DataError.malformed` when it is corrupt.
    static func decompress(_ data: Data, source: String) throws -> Data {
        if data.isEmpty { throw DataError.malformed(path: source, problem: "file is empty") }
        // gzip's trailer holds the size modulo 2^32 of the last member: a good first guess.
        var capacity = max(data.count * 2, 1 << 16)
        if isGzip(data), data.count >= 18 {
            let t = data.endIndex - 4
            let isize = Int(data[t]) | Int(data[t + 1]) << 8 | Int(data[t + 2]) << 16 | Int(data[t + 3]) << 24
            if isize > 0 { capacity = max(capacity, isize + 1) }
        }
        var output = Data(count: capacity)
        var produced = 0
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DataError.io(path: source, problem: "zlib failed to initialise")
        }
        defer { inflateEnd(&stream) }
        try data.withUnsafeBytes { (input: UnsafeRawBufferPointer) in
            let base = input.bindMemory(to: Bytef.self).baseAddress!
            stream.next_in = UnsafeMutablePointer(mutating: base)
            stream.avail_in = uInt(input.count)
            while true {
                if produced == output.count { output.count = output.count * 2 }
                let status: Int32 = output.withUnsafeMutableBytes { out in
                    let o = out.bindMemory(to: Bytef.self).baseAddress!
                    stream.next_out = o + produced
                    let room = min(out.count - produced, Int(UInt32.max))
                    stream.avail_out = uInt(room)
                    let s = inflate(&stream, Z_NO_FLUSH)
                    produced += room - Int(stream.avail_out)
                    return s
                }
                switch status {
                case Z_STREAM_END:
                    // Another gzip member may follow (concatenated .gz files are valid gzip).
                    let remaining = Int(stream.avail_in)
                    if remaining >= 2, stream.next_in[0] == 0x1F, stream.next_in[1] == 0x8B {
                        inflateReset(&stream)
                        continue
                    }
                    return
                case Z_OK:
                    continue
                case Z_BUF_ERROR:
                    if stream.avail_in == 0 {
                        throw DataError.malformed(path: source, problem: "file is truncated: the gzip stream ends early after \(data.count) bytes; delete it and download it again")
                    }
                    continue
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "error \(status)"
                    throw DataError.malformed(path: source, problem: "corrupt gzip data (\(message))")
                }
            }
        }
        output.count = produced
        return output
    }
}
