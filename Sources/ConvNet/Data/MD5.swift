import Foundation

/// MD5 (RFC 1321), only to check downloads against their published checksums. Not for security.
public struct MD5: Sendable {
    private var state: (UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476)
    private var buffer = [UInt8](repeating: 0, count: 64)
    private var buffered = 0
    private var length: UInt64 = 0

    public init() {}

    private static let s: [UInt32] = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                      5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
                                      4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                      6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21]
    private static let k: [UInt32] = (0..<64).map { i in UInt32(truncatingIfNeeded: Int64(abs(sin(Double(i + 1))) * 4_294_967_296.0)) }

    public mutating func update(_ data: Data) {
        data.withUnsafeBytes { update(UnsafeRawBufferPointer($0)) }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        length &+= UInt64(bytes.count)
        var offset = 0
        if buffered > 0 {
            let take = min(64 - buffered, bytes.count)
            for i in 0..<take { buffer[buffered + i] = bytes[i] }
            buffered += take
            offset = take
            if buffered == 64 {
                buffer.withUnsafeBytes { compress($0.baseAddress!) }
                buffered = 0
            }
        }
        while bytes.count - offset >= 64 {
            compress(bytes.baseAddress! + offset)
            offset += 64
        }
        for i in offset..<bytes.count { buffer[buffered] = bytes[i]; buffered += 1 }
    }

    private mutating func compress(_ block: UnsafeRawPointer) {
        var m = [UInt32](repeating: 0, count: 16)
        for i in 0..<16 { m[i] = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)) }
        var (a, b, c, d) = state
        for i in 0..<64 {
            var f: UInt32
            let g: Int
            switch i {
            case 0..<16: f = (b & c) | (~b & d); g = i
            case 16..<32: f = (d & b) | (~d & c); g = (5 &* i &+ 1) & 15
            case 32..<48: f = b ^ c ^ d; g = (3 &* i &+ 5) & 15
            default: f = c ^ (b | ~d); g = (7 &* i) & 15
            }
            f = f &+ a &+ MD5.k[i] &+ m[g]
            a = d; d = c; c = b
            let r = MD5.s[i]
            b = b &+ ((f << r) | (f >> (32 - r)))
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d)
    }

    /// The digest as 32 lowercase hex digits. Does not change `self`.
    public func hexDigest() -> String {
        var copy = self
        let bitLength = length &* 8
        var padding: [UInt8] = [0x80]
        let used = Int(length % 64)
        let zeros = (used < 56 ? 55 - used : 119 - used)
        padding += [UInt8](repeating: 0, count: zeros)
        for i in 0..<8 { padding.append(UInt8(truncatingIfNeeded: bitLength >> (8 * UInt64(i)))) }
        padding.withUnsafeBytes { copy.update($0) }
        let words = [copy.state.0, copy.state.1, copy.state.2, copy.state.3]
        return words.flatMap { w in (0..<4).map { UInt8(truncatingIfNeeded: w >> (8 * UInt32($0))) } }
            .map { String(format: "%02x", $0) }.joined()
    }

    public static func hex(_ data: Data) -> String {
        var md5 = MD5()
        md5.update(data)
        return md5.hexDigest()
    }

    /// MD5 of a file, read in 1 MiB chunks.
    public static func hex(ofFile url: URL) throws -> String {
        // Checked before opening: a named pipe would block the open, a device never ends.
        guard let kind = try CheckedFile.kind(atPath: url.path) else { throw DataError.fileNotFound(path: url.path, hint: "") }
        guard kind == .regularFile else { throw DataError.notAFile(path: url.path, kind: kind) }
        let handle: FileHandle
        do { handle = try FileHandle(forReadingFrom: url) } catch {
            throw DataError.io(path: url.path, problem: "cannot open: \(plainDescription(error))")
        }
        defer { try? handle.close() }
        var md5 = MD5()
        while true {
            let chunk: Data
            do { chunk = try handle.read(upToCount: 1 << 20) ?? Data() } catch {
                throw DataError.io(path: url.path, problem: "cannot read: \(plainDescription(error))")
            }
            if chunk.isEmpty { break }
            md5.update(chunk)
        }
        return md5.hexDigest()
    }
}
