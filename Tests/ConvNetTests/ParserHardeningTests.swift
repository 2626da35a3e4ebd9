import Foundation
import Testing
@testable import ConvNet

/// The rules every file reader follows (the fuzz targets in Fuzz/ check the same on random input): sizes in
/// headers are checked against the bytes that follow before anything is allocated, products of dimensions
/// are overflow-checked, decompression is bounded, checksums are verified, and bad content is an error.
@Suite struct ParserHardeningTests {
    /// The message of the error `body` throws ("" when it throws none).
    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "" } catch { return "\(error)" }
    }

    func npyHeader(_ dict: String) -> Data {
        var header = dict
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        var d = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        d.append(contentsOf: Array(header.utf8))
        return d
    }

    // MARK: .npy

    @Test func npyShapeLargerThanTheFileIsTruncatedNotAnAllocation() {
        let data = npyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }") + Data(count: 16)
        let m = message { _ = try NumPyArray.parse(data, source: "big.npy") }
        #expect(m.contains("big.npy") && m.contains("truncated"), "\(m)")
    }

    @Test func npyShapeWhoseProductOverflowsIsAnError() {
        for shape in ["(4294967296, 4294967296)", "(9223372036854775807, 2)", "(0, 4294967296, 4294967296)"] {
            let data = npyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }")
            let m = message { _ = try NumPyArray.parse(data, source: "huge.npy") }
            #expect(m.contains("huge.npy") && m.contains("too large"), "\(shape): \(m)")
        }
    }

    @Test func npyBadInputClasses() {
        let cases: [(String, String)] = [
            ("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", "unsupported dtype '|O'"),
            ("{'descr': '<U8', 'fortran_order': False, 'shape': (2,), }", "unsupported dtype '<U8'"),
            ("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", "fortran_order"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", "shape"),
            ("{'descr': '<f4', 'fortran_order': False, }", "no shape"),
        ]
        for (header, expected) in cases {
            let m = message { _ = try NumPyArray.parse(npyHeader(header) + Data(count: 64), source: "x.npy") }
            #expect(m.contains(expected), "\(header): \(m)")
        }
        #expect(message { _ = try NumPyArray.parse(Data([0x93, 0x4E, 0x55]), source: "x.npy") }.contains("truncated"))
        #expect(message { _ = try NumPyArray.parse(Data(count: 64), source: "x.npy") }.contains("magic"))
    }

    @Test func npyBigEndianAndFortranOrderAreRead() throws {
        var be = npyHeader("{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }")
        be.append(contentsOf: [0, 0, 1, 0, 0xFF, 0xFF, 0xFF, 0xFE])
        #expect(try NumPyArray.parse(be, source: "be.npy").integers() == [256, -2])
        var f = npyHeader("{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), }")
        f.append(contentsOf: [0, 3, 1, 4, 2, 5])  // column by column
        #expect(try NumPyArray.parse(f, source: "f.npy").integers() == [0, 1, 2, 3, 4, 5])
    }

    @Test func integersOutsideIntAreAnErrorNotATrap() throws {
        let a = try NumPyArray(shape: [2], float64: [1, 1e300])
        #expect(message { _ = try a.integers() }.contains("not an integer"))
        #expect(message { _ = try NumPyArray(shape: [1], float32: [.infinity]).integers() }.contains("not an integer"))
    }

    // MARK: .npz (ZIP)

    func npz(compressed: Bool) throws -> Data {
        let values = (0..<256).map { Float($0 % 7) }
        return try NumPyArchive.archiveData([("w", try NumPyArray(shape: [16, 16], float32: values)), ("b", NumPyArray(labels: [1, 2, 3]))],
                                            compressed: compressed)
    }

    @Test(arguments: [false, true]) func npzRoundTripsInMemoryAndThroughNumPyLayout(compressed: Bool) throws {
        let arrays = try NumPyArchive.parse(try npz(compressed: compressed), source: "m.npz")
        #expect(arrays.map(\.name) == ["w", "b"])
        #expect(try arrays[1].array.integers() == [1, 2, 3])
    }

    /// Flips one payload byte of the first entry: a stored entry's CRC no longer matches; a deflated one
    /// fails to inflate or fails its CRC. Either way an error naming the entry.
    @Test(arguments: [false, true]) func npzCorruptEntryIsRefused(compressed: Bool) throws {
        var data = try npz(compressed: compressed)
        let nameLength = Int(data[26]) | Int(data[27]) << 8, extraLength = Int(data[28]) | Int(data[29]) << 8
        let payload = 30 + nameLength + extraLength
        data[payload + (compressed ? 12 : 100)] ^= 0x10
        let m = message { _ = try NumPyArchive.parse(data, source: "bad.npz") }
        #expect(m.contains("bad.npz") && m.contains("'w.npy'") && (m.contains("CRC-32") || m.contains("corrupt")), "\(m)")
    }

    /// The case issue 18 reported: deflate data that inflates cleanly but to other bytes than were stored.
    @Test func npzDeflatedEntryWithWrongCRCIsRefused() throws {
        var data = try npz(compressed: true)
        // The CRC field of the first local header (offset 14) and of its central directory entry.
        let directory = data.count - 22
        let directoryOffset = Int(data[directory + 16]) | Int(data[directory + 17]) << 8 | Int(data[directory + 18]) << 16
        data[14] ^= 0xFF
        data[directoryOffset + 16] ^= 0xFF
        let m = message { _ = try NumPyArchive.parse(data, source: "crc.npz") }
        #expect(m.contains("crc.npz") && m.contains("CRC-32"), "\(m)")
    }

    @Test func npzEntryClaimingMoreThanDeflateCanGiveIsRefused() throws {
        var data = try npz(compressed: true)
        let directory = data.count - 22
        let directoryOffset = Int(data[directory + 16]) | Int(data[directory + 17]) << 8 | Int(data[directory + 18]) << 16
        // Uncompressed size of the first central directory entry: 2 GiB.
        data.replaceSubrange((directoryOffset + 24)..<(directoryOffset + 28), with: [0, 0, 0, 0x80])
        let m = message { _ = try NumPyArchive.parse(data, source: "bomb.npz") }
        #expect(m.contains("bomb.npz") && m.contains("more than deflate can give"), "\(m)")
    }

    @Test func npzTruncatedOrNotAZipIsRefused() throws {
        let data = try npz(compressed: false)
        for cut in [0, 10, 100, data.count / 2, data.count - 1] {
            let m = message { _ = try NumPyArchive.parse(data.prefix(cut), source: "cut.npz") }
            #expect(m.contains("cut.npz"), "cut at \(cut): \(m)")
        }
        #expect(message { _ = try NumPyArchive.parse(Data(repeating: 0x50, count: 1000), source: "x.npz") }.contains("end-of-central-directory"))
    }

    @Test func npzWrittenByNumPyStillReads() throws {
        // Fixtures written by NumPy's savez / savez_compressed (ZIP64 extra fields in the local headers).
        #expect(try NumPyArchive.readOrdered(from: fixtureURL("compressed.npz")).count == 2)
        #expect(try NumPyArchive.readOrdered(from: fixtureURL("stored.npz")).count == 4)
    }

    // MARK: gzip

    func gzip(_ data: Data) throws -> Data {
        let dir = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("x")
        try data.write(to: file)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/gzip")
        p.arguments = ["-n", "-k", file.path]
        try p.run(); p.waitUntilExit()
        return try Data(contentsOf: dir.appendingPathComponent("x.gz"))
    }

    @Test func gzipBombStopsAtTheLimit() throws {
        let bomb = try gzip(Data(count: 8 << 20))  // 8 MiB of zeros in ~8 KB
        #expect(bomb.count < 100_000)
        let m = message { _ = try Gzip.decompress(bomb, source: "bomb.gz", limit: 1 << 20) }
        #expect(m.contains("bomb.gz") && m.contains("more than 1048576 bytes"), "\(m)")
        #expect(try Gzip.decompress(bomb, source: "bomb.gz", limit: 8 << 20).count == 8 << 20)
    }

    /// The trailer's size is only a first guess for the buffer (capped by what deflate can give from the
    /// bytes there are): a trailer claiming 4 GiB allocates nothing like it, and zlib's length check fails.
    @Test func gzipTrailerClaimingGigabytesIsNotTrusted() throws {
        var small = try gzip(Data("hello".utf8))
        small.replaceSubrange((small.count - 4)..<small.count, with: [0xFF, 0xFF, 0xFF, 0xFF])  // ISIZE 4 GiB - 1
        #expect(message { _ = try Gzip.decompress(small, source: "s.gz") }.contains("s.gz: corrupt compressed data (incorrect length check)"))
    }

    @Test func gzipTruncatedAndCorruptAreErrors() throws {
        let data = try gzip(Data((0..<5000).map { UInt8($0 % 251) }))
        #expect(message { _ = try Gzip.decompress(data.prefix(data.count / 2), source: "t.gz") }.contains("truncated"))
        var bad = data
        bad[20] ^= 0xFF
        #expect(message { _ = try Gzip.decompress(bad, source: "c.gz") }.contains("c.gz"))
    }

    // MARK: IDX, tar

    @Test func idxDimensionsWhoseProductOverflowsAreAnError() throws {
        let dir = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("images-idx3-ubyte")
        try idxData(magic: 0x0803, dims: [0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], payload: [1, 2, 3]).write(to: url)
        let m = message { _ = try IDXFile.readImages(url) }
        #expect(m.contains(url.path) && m.contains("holds only"), "\(m)")
    }

    @Test func tarSizeFieldMustBeOctal() throws {
        var header = Data(count: 512)
        header.replaceSubrange(0..<4, with: Array("file".utf8))
        header.replaceSubrange(124..<136, with: Array("-0000000001 ".utf8))
        header[156] = UInt8(ascii: "0")
        let m = message { _ = try TarArchive.files(in: header + Data(count: 1024), source: "a.tar") }
        #expect(m.contains("a.tar") && m.contains("not octal"), "\(m)")
        header.replaceSubrange(124..<136, with: Array("77777777777 ".utf8))
        #expect(message { _ = try TarArchive.files(in: header + Data(count: 1024), source: "a.tar") }.contains("truncated"))
    }

    // MARK: PNG, PGM/PPM

    func png(width: Int, height: Int, rows: Data) -> Data {
        func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        func chunk(_ type: String, _ body: Data) -> Data {
            var typed = Data(type.utf8); typed.append(body)
            return Data(be32(body.count)) + typed + Data(be32(Int(Gzip.crc32(typed))))
        }
        var out = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        out += chunk("IHDR", Data(be32(width) + be32(height) + [8, 0, 0, 0, 0]))
        out += chunk("IDAT", PNGEncoderForTests.zlib(rows))
        out += chunk("IEND", Data())
        return out
    }

    @Test func pngReadsAndChecksChunkCRCs() throws {
        let good = png(width: 2, height: 2, rows: Data([0, 10, 20, 0, 30, 40]))
        let picture = try Picture.decode(good, source: "ok.png")
        #expect(picture.width == 2 && picture.pixels.count == 4)
        var bad = good
        bad[bad.count - 20] ^= 0x01  // inside the IDAT chunk
        let m = message { _ = try Picture.decode(bad, source: "bad.png") }
        #expect(m.contains("bad.png") && m.contains("IDAT chunk is corrupt (CRC-32"), "\(m)")
    }

    @Test func pngInflateIsBoundedByTheImageSize() throws {
        // A 1x1 gray image whose IDAT inflates to 16 MiB.
        let bomb = png(width: 1, height: 1, rows: Data(count: 16 << 20))
        #expect(bomb.count < 100_000)
        let m = message { _ = try Picture.decode(bomb, source: "bomb.png") }
        #expect(m.contains("bomb.png") && m.contains("inflates to more than 2 bytes"), "\(m)")
    }

    @Test func pngHugeOrTruncatedIsAnError() throws {
        let huge = png(width: 1 << 20, height: 1 << 20, rows: Data(count: 8))
        #expect(message { _ = try Picture.decode(huge, source: "h.png") }.contains("larger than"))
        let good = png(width: 2, height: 2, rows: Data([0, 10, 20, 0, 30, 40]))
        for cut in [8, 20, 40, good.count - 1] {
            #expect(message { _ = try Picture.decode(good.prefix(cut), source: "t.png") }.contains("t.png"), "cut \(cut)")
        }
    }

    @Test func pnmHeaderLargerThanTheFileIsAnError() {
        let m = message { _ = try Picture.decode(Data("P2\n16000000 16000000\n255\n1 2 3\n".utf8), source: "big.pgm") }
        #expect(m.contains("big.pgm") && m.contains("larger than"), "\(m)")
        let m2 = message { _ = try Picture.decode(Data("P3\n4000 4000\n255\n1 2 3\n".utf8), source: "short.ppm") }
        #expect(m2.contains("short.ppm") && m2.contains("truncated"), "\(m2)")
    }

    // MARK: spec and model archive

    @Test func specNumbersAreBounded() {
        for spec in ["dense 99999999999999999999", "dense 70000", "conv 8 3x100000", "maxpool 2 stride 99999", "conv 4 3 pad 1000000", "input 1x65537x2; dense 2"] {
            let m = message { _ = try NetworkSpec.parse(spec) }
            #expect(m.contains("network spec, statement"), "\(spec): \(m)")
        }
    }

    @Test func specSizeCheckRefusesAbsurdNetworksBeforeAllocating() throws {
        let wide = try NetworkSpec.parse("flatten; dense 65536; dense 65536; dense 65536")
        let m = message { try NetworkSpec.checkSize(wide, inputShape: [3, 256, 256]) }
        #expect(m.contains("statement 2") && m.contains("more than \(NetworkSpec.maximumParameters) weights"), "\(m)")
        let big = try NetworkSpec.parse("conv 65536 3x3 pad 1000; conv 65536 3x3")
        #expect(message { try NetworkSpec.checkSize(big, inputShape: [3, 1000, 1000]) }.contains("values per sample"))
        try NetworkSpec.checkSize(try NetworkSpec.parse(ModelZoo.model(named: "lenet5").spec), inputShape: [1, 28, 28])
    }

    @Test func modelArchiveWhoseSpecNeedsMoreWeightsThanItHoldsIsRefused() throws {
        let arrays: [String: NumPyArray] = [
            "meta.spec": NumPyArray(string: "flatten; dense 60000; dense 60000"),
            "meta.input_shape": NumPyArray(labels: [1, 28, 28]),
        ]
        let m = message { _ = try ModelArchive(arrays: arrays, path: "m.npz") }
        #expect(m.contains("m.npz") && m.contains("weights"), "\(m)")
    }
}

/// A zlib stream of `rows`, for PNG fixtures.
enum PNGEncoderForTests {
    static func zlib(_ rows: Data) -> Data {
        // zlib header, raw deflate, Adler-32.
        var out = Data([0x78, 0x9C])
        out += (try? Gzip.deflateRaw(rows)) ?? Data()
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in rows { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
        let adler = b << 16 | a
        out += Data([UInt8(adler >> 24), UInt8(adler >> 16 & 0xFF), UInt8(adler >> 8 & 0xFF), UInt8(adler & 0xFF)])
        return out
    }
}
