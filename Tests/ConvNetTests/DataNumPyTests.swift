import Foundation
import Testing
@testable import ConvNet

@Suite struct DataNumPyTests {
    @Test func readsNumPyFixtures() throws {
        let f32 = try NumPyArray.read(from: fixtureURL("f32_c.npy"))
        #expect(f32.shape == [2, 3, 4] && f32.dtype == .float32)
        #expect(f32.floats() == (0..<24).map { Float($0) / 4 })
        let fortran = try NumPyArray.read(from: fixtureURL("f64_fortran.npy"))
        #expect(fortran.shape == [2, 3] && fortran.dtype == .float64)
        #expect(fortran.floats() == [0, 1, 2, 3, 4, 5])   // back in C order
        let u8 = try NumPyArray.read(from: fixtureURL("u8.npy"))
        #expect(u8.storage == .uint8([0, 1, 255, 7, 8, 9]) && u8.shape == [2, 3])
        let i64 = try NumPyArray.read(from: fixtureURL("i64.npy"))
        #expect(i64.storage == .int64([-3, 0, 5, 1 << 40]))
    }

    @Test func readsStoredAndCompressedArchivesInOrder() throws {
        let stored = try NumPyArchive.readOrdered(from: fixtureURL("stored.npz"))
        #expect(stored.map(\.name) == ["im_train", "label_train", "im_test", "label_test"])
        #expect(stored[0].array.shape == [4, 14, 14])
        let compressed = try NumPyArchive.readOrdered(from: fixtureURL("compressed.npz"))
        #expect(compressed.map(\.name) == ["b", "a"])
        #expect(compressed[0].array.storage == .float32([1, 1, 1]))
        #expect(try NumPyArchive.read(from: fixtureURL("compressed.npz"))["a"]?.integers() == [1, 2])
    }

    @Test(arguments: [false, true]) func roundTripsEveryDType(compressed: Bool) throws {
        let dir = try makeTemporaryFolder()
        let tensor = try Tensor(shape: [2, 1, 2, 2], scalars: (0..<8).map { Float($0) * 0.5 - 1 })
        let arrays: [(name: String, array: NumPyArray)] = [
            ("w", NumPyArray(tensor: tensor)),
            ("d", try NumPyArray(shape: [3], float64: [1.5, -2, 1e300])),
            ("u", try NumPyArray(shape: [2, 2], uint8: [1, 2, 3, 250])),
            ("labels", NumPyArray(labels: [3, 1, 4])),
            ("spec", NumPyArray(string: "conv 8 3x3; relu — ü")),
        ]
        let url = dir.appendingPathComponent("model.npz")
        try NumPyArchive.write(arrays, to: url, compressed: compressed)
        let back = try NumPyArchive.readOrdered(from: url)
        #expect(back.map(\.name) == arrays.map(\.name))
        for (a, b) in zip(arrays, back) { #expect(a.array == b.array) }
        #expect(try back[0].array.tensor() == tensor)
        #expect(try back[4].array.string() == "conv 8 3x3; relu — ü")
        #expect(try back[3].array.integers() == [3, 1, 4])
        // Only the final file is left: no temporary files.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["model.npz"])
        // .npy alone.
        let npy = dir.appendingPathComponent("w.npy")
        try NumPyArray(tensor: tensor).write(to: npy)
        #expect(try NumPyArray.read(from: npy).tensor() == tensor)
    }

    @Test func headerIsPaddedTo64Bytes() {
        let data = NumPyArray(labels: [1, 2]).npyData()
        #expect((data.count - 16) % 64 == 0)   // two int64 values after a 64-byte aligned header
        #expect(data[data.endIndex - 17] == 0x0A)
    }

    @Test func unsupportedDTypeNamesFileAndArray() throws {
        let error = try #require(throws: DataError.self) { try NumPyArchive.read(from: fixtureURL("bad_dtype.npz")) }
        guard case .unsupportedDType(let path, let array, let dtype) = error else { Issue.record("\(error)"); return }
        #expect(path.hasSuffix("bad_dtype.npz") && array == "x" && dtype == "<i2")
        #expect(error.description.contains("bad_dtype.npz") && !error.description.contains("\n"))
    }

    @Test func badNpyInputs() throws {
        let dir = try makeTemporaryFolder()
        let good = NumPyArray(tensor: try Tensor(shape: [10], scalars: Array(repeating: 1, count: 10))).npyData()
        let truncated = dir.appendingPathComponent("t.npy")
        try good.prefix(good.count - 5).write(to: truncated)
        #expect(throws: DataError.self) { try NumPyArray.read(from: truncated) }
        do { _ = try NumPyArray.read(from: truncated) } catch let e as DataError {
            guard case .truncated = e else { Issue.record("\(e)"); return }
        }
        let magic = dir.appendingPathComponent("m.npy")
        try Data("hello world, not numpy".utf8).write(to: magic)
        do { _ = try NumPyArray.read(from: magic); Issue.record("no error") } catch let e as DataError {
            guard case .badMagic = e else { Issue.record("\(e)"); return }
            #expect(e.description.contains("m.npy"))
        }
        let missing = dir.appendingPathComponent("nope.npz")
        do { _ = try NumPyArchive.read(from: missing); Issue.record("no error") } catch let e as DataError {
            guard case .fileNotFound = e else { Issue.record("\(e)"); return }
        }
        // A truncated .npz archive.
        let npz = dir.appendingPathComponent("cut.npz")
        try NumPyArchive.write([("a", NumPyArray(tensor: Tensor(shape: [100], repeating: 2)))], to: npz, compressed: false)
        let bytes = try Data(contentsOf: npz)
        try bytes.prefix(bytes.count / 2).write(to: npz)
        do { _ = try NumPyArchive.read(from: npz); Issue.record("no error") } catch let e as DataError {
            #expect(e.description.hasPrefix(npz.path))
        }
    }
}
