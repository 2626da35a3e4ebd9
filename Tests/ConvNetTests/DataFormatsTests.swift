import Foundation
import Testing
@testable import ConvNet

@Suite struct DataFormatsTests {
    func writeMNIST(_ dir: URL, train: Int = 6, test: Int = 4, gzip: Bool = false, labels: [UInt8]? = nil) throws {
        func put(_ name: String, _ data: Data) throws {
            try data.write(to: dir.appendingPathComponent(name))
        }
        let trainPixels = (0..<(train * 784)).map { UInt8($0 % 256) }
        try put("train-images-idx3-ubyte", idxData(magic: 2051, dims: [train, 28, 28], payload: trainPixels))
        try put("train-labels-idx1-ubyte", idxData(magic: 2049, dims: [train], payload: labels ?? (0..<train).map { UInt8($0 % 10) }))
        try put("t10k-images-idx3-ubyte", idxData(magic: 2051, dims: [test, 28, 28], payload: [UInt8](repeating: 255, count: test * 784)))
        try put("t10k-labels-idx1-ubyte", idxData(magic: 2049, dims: [test], payload: (0..<test).map { UInt8($0) }))
    }

    func expectDataError(_ body: () throws -> Void, file name: String, _ check: (DataError) -> Bool) {
        do { try body(); Issue.record("expected an error") } catch let e as DataError {
            #expect(check(e), "\(e)")
            #expect(e.description.contains(name), "message should name \(name): \(e)")
            #expect(!e.description.contains("\n"))
        } catch { Issue.record("untyped error \(error)") }
    }

    @Test func readsIDXThroughCatalog() throws {
        let dir = try makeTemporaryFolder()
        try writeMNIST(dir.appendingPathComponent("mnist").creatingFolder())
        let split = try DatasetCatalog.load("mnist", options: DatasetOptions(dataDirectory: dir))
        #expect(split.train.images.shape == [6, 1, 28, 28] && split.test.count == 4)
        #expect(split.train.labels == [0, 1, 2, 3, 4, 5])
        #expect(split.train.images[1] == 1.0 / 255.0 && split.test.images[0] == 1)
    }

    @Test func readsGzippedIDX() throws {
        #expect(try IDXFile.readLabels(fixtureURL("labels-idx1-ubyte.gz"), classes: 10) == [3, 1, 4, 1, 5])
        let sample = try FileBytes.readMaybeGzipped(DatasetCatalog.sampleURL())
        #expect(sample.count > 5_000 * 785)
        let (images, labels) = try DigitsCSV.read(DatasetCatalog.sampleURL())
        #expect(images.shape == [5_000, 1, 28, 28] && labels.count == 5_000)
        #expect(Set(labels) == Set(0..<10))
    }

    @Test func badIDXInputs() throws {
        let dir = try makeTemporaryFolder()
        let images = dir.appendingPathComponent("i"), labels = dir.appendingPathComponent("l")
        // Missing file.
        expectDataError({ _ = try IDXFile.readImages(dir.appendingPathComponent("absent-idx3")) }, file: "absent-idx3") {
            if case .fileNotFound = $0 { return true } else { return false }
        }
        // Wrong magic (a labels file read as images).
        try idxData(magic: 2049, dims: [2], payload: [0, 1]).write(to: images)
        expectDataError({ _ = try IDXFile.readImages(images) }, file: images.path) {
            if case .badMagic = $0 { return true } else { return false }
        }
        // Truncated.
        try idxData(magic: 2051, dims: [3, 28, 28], payload: [UInt8](repeating: 0, count: 2 * 784 + 10)).write(to: images)
        expectDataError({ _ = try IDXFile.readImages(images) }, file: images.path) {
            if case .truncated(_, let e, let a) = $0 { return e == 16 + 3 * 784 && a == 16 + 2 * 784 + 10 } else { return false }
        }
        // Count mismatch.
        try idxData(magic: 2051, dims: [3, 28, 28], payload: [UInt8](repeating: 0, count: 3 * 784)).write(to: images)
        try idxData(magic: 2049, dims: [2], payload: [0, 1]).write(to: labels)
        expectDataError({ _ = try IDXFile.readPair(images: images, labels: labels, classes: 10) }, file: labels.path) {
            if case .countMismatch(_, 3, _, 2) = $0 { return true } else { return false }
        }
        // Label out of range.
        try idxData(magic: 2049, dims: [3], payload: [0, 12, 1]).write(to: labels)
        expectDataError({ _ = try IDXFile.readLabels(labels, classes: 10) }, file: labels.path) {
            if case .labelOutOfRange(_, 1, 12, 10) = $0 { return true } else { return false }
        }
        // Truncated gzip.
        let sample = try Data(contentsOf: DatasetCatalog.sampleURL())
        let cut = dir.appendingPathComponent("cut.gz")
        try sample.prefix(1000).write(to: cut)
        expectDataError({ _ = try DigitsCSV.read(cut) }, file: "cut.gz") { $0.description.contains("truncated") }
        // Missing data set files: the message says how to get them.
        expectDataError({ _ = try DatasetCatalog.load("mnist", options: DatasetOptions(dataDirectory: dir.appendingPathComponent("empty"))) },
                        file: "train-images-idx3-ubyte") { $0.description.contains("convnet download mnist") }
    }

    @Test func readsCIFAR10Batches() throws {
        let dir = try makeTemporaryFolder()
        let folder = try dir.appendingPathComponent("cifar10/cifar-10-batches-bin").creatingFolder()
        func batch(_ labels: [UInt8]) -> Data {
            var d = Data()
            for (i, l) in labels.enumerated() { d.append(l); d.append(contentsOf: [UInt8](repeating: UInt8(i), count: 3072)) }
            return d
        }
        for f in CIFAR10File.trainFiles { try batch([1, 2]).write(to: folder.appendingPathComponent(f)) }
        try batch([9]).write(to: folder.appendingPathComponent("test_batch.bin"))
        let split = try DatasetCatalog.load("cifar10", options: DatasetOptions(dataDirectory: dir))
        #expect(split.train.images.shape == [10, 3, 32, 32] && split.test.labels == [9])
        #expect(split.train.classNames[9] == "truck" && split.train.images[3072] == 1.0 / 255.0)
        // Truncated batch and bad label.
        try batch([1, 2]).prefix(5000).write(to: folder.appendingPathComponent("data_batch_3.bin"))
        expectDataError({ _ = try DatasetCatalog.load("cifar10", options: DatasetOptions(dataDirectory: dir)) }, file: "data_batch_3.bin") {
            if case .truncated = $0 { return true } else { return false }
        }
        try batch([1, 10]).write(to: folder.appendingPathComponent("data_batch_3.bin"))
        expectDataError({ _ = try DatasetCatalog.load("cifar10", options: DatasetOptions(dataDirectory: dir)) }, file: "data_batch_3.bin") {
            if case .labelOutOfRange(_, 1, 10, 10) = $0 { return true } else { return false }
        }
    }

    @Test func extractsTar() throws {
        // A one-file ustar archive built by hand.
        var header = [UInt8](repeating: 0, count: 512)
        let name = Array("dir/a.bin".utf8)
        header.replaceSubrange(0..<name.count, with: name)
        let size = Array(String(format: "%011o", 5).utf8)
        header.replaceSubrange(124..<(124 + size.count), with: size)
        header[156] = UInt8(ascii: "0")
        var data = Data(header)
        data.append(contentsOf: [1, 2, 3, 4, 5]); data.append(Data(count: 507 + 1024))
        let files = try TarArchive.files(in: data, source: "x.tar")
        #expect(files.count == 1 && files[0].path == "dir/a.bin" && files[0].content == Data([1, 2, 3, 4, 5]))
    }

    @Test func md5MatchesKnownVectors() {
        #expect(MD5.hex(Data()) == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(MD5.hex(Data("abc".utf8)) == "900150983cd24fb0d6963f7d28e17f72")
        #expect(MD5.hex(Data("The quick brown fox jumps over the lazy dog".utf8)) == "9e107d9d372bb6826bd81d3542a419d6")
        let long = Data((0..<1000).map { UInt8($0 % 251) })
        var incremental = MD5()
        incremental.update(long.prefix(3)); incremental.update(long.dropFirst(3).prefix(100)); incremental.update(long.dropFirst(103))
        #expect(incremental.hexDigest() == MD5.hex(long))
        #expect(MD5.hex(long) == "a24f1e3ef66950e1327f210e3997ba2c")   // Python's hashlib
    }
}

extension URL {
    func creatingFolder() throws -> URL {
        try FileManager.default.createDirectory(at: self, withIntermediateDirectories: true)
        return self
    }
}
