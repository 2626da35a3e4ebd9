import Foundation
import Testing
@testable import ConvNet

@Suite struct DataPipelineTests {
    @Test func bundledSampleSplitsStratified() throws {
        let split = try DatasetCatalog.load("mnist-sample")
        #expect(split.train.count == 4_000 && split.test.count == 1_000)
        #expect(split.train.sampleShape == [1, 28, 28])
        for c in 0..<10 {
            #expect(split.train.labels.filter { $0 == c }.count == 400)
            #expect(split.test.labels.filter { $0 == c }.count == 100)
        }
        let head = Array(split.train.labels.prefix(20))
        #expect(Set(head).count > 1)
        let again = try DatasetCatalog.load("mnist-sample")
        #expect(again.test.labels == split.test.labels && again.test.images == split.test.images)
        let maxPixel = split.train.images.scalars.max()!
        #expect(maxPixel == 1 && split.train.images.scalars.min()! == 0)
    }

    @Test func toySquaresAndUnknownNames() throws {
        let split = try DatasetCatalog.load("toy-squares", options: DatasetOptions(trainCount: 10, testCount: 4, seed: 3))
        #expect(split.train.count == 10 && split.test.count == 4 && split.train.sampleShape == [1, 6, 6])
        #expect(throws: DataError.self) { try DatasetCatalog.load("imagenet") }
    }

    @Test func loadsHandoutNpzLayouts() throws {
        // Fixture: im_train (4, 14, 14), label_train (4, 1), im_test (196, 2), label_test (1, 2) uint8.
        let split = try DatasetCatalog.load(fixtureURL("stored.npz").path)
        #expect(split.train.images.shape == [4, 1, 14, 14] && split.train.labels == [0, 1, 2, 3])
        #expect(split.test.images.shape == [2, 1, 14, 14] && split.test.labels == [4, 5])
        // (196, N): column i is image i, value (k*2 + i)/392 at pixel k.
        #expect(split.test.images[1 * 196 + 5] == Float(5 * 2 + 1) / 392)
        #expect(split.train.classCount == 10)

        // Two files with the handout's names, uint8 pixels, labels out of range, missing arrays.
        let dir = try makeTemporaryFolder()
        let train = dir.appendingPathComponent("mnist_train.npz"), test = dir.appendingPathComponent("mnist_test.npz")
        try NumPyArchive.write([("img", try NumPyArray(shape: [3, 2, 2], uint8: Array(repeating: 255, count: 12))),
                                ("label", try NumPyArray(shape: [3, 1], int64: [1, 2, 3]))], to: train, compressed: true)
        try NumPyArchive.write([("img", try NumPyArray(shape: [1, 2, 2], uint8: [0, 0, 0, 255])),
                                ("label", try NumPyArray(shape: [1], int64: [0]))], to: test, compressed: false)
        let two = try DatasetCatalog.load(train.path, options: DatasetOptions(testFile: test))
        #expect(two.train.images.scalars.allSatisfy { $0 == 1 } && two.test.labels == [0])

        try NumPyArchive.write([("im_train", try NumPyArray(shape: [3, 2, 2], uint8: Array(repeating: 1, count: 12))),
                                ("label_train", try NumPyArray(shape: [2], int64: [1, 2]))], to: train, compressed: false)
        do { _ = try DatasetCatalog.load(train.path); Issue.record("no error") } catch let e as DataError {
            #expect(e.description.contains("mnist_train.npz"), "\(e)")
        }
        try NumPyArchive.write([("im_train", try NumPyArray(shape: [2, 2, 2], uint8: Array(repeating: 1, count: 8))),
                                ("label_train", try NumPyArray(shape: [2], int64: [1, -2])),
                                ("im_test", try NumPyArray(shape: [1, 2, 2], uint8: [0, 0, 0, 0])),
                                ("label_test", try NumPyArray(shape: [1], int64: [0]))], to: train, compressed: false)
        do { _ = try DatasetCatalog.load(train.path); Issue.record("no error") } catch let e as DataError {
            guard case .labelOutOfRange = e else { Issue.record("\(e)"); return }
            #expect(e.description.contains("mnist_train.npz"))
        }
    }

    @Test func transformsChosenFromInputShape() throws {
        let t14 = try InputTransform.choose(from: [1, 28, 28], to: [1, 14, 14])
        #expect(t14.steps == [.downsample2x2])
        let t32 = try InputTransform.choose(from: [1, 28, 28], to: [1, 32, 32])
        #expect(t32.steps == [.pad(top: 2, left: 2, bottom: 2, right: 2)])
        let rgb = try InputTransform.choose(from: [1, 28, 28], to: [3, 32, 32])
        #expect(rgb.steps == [.pad(top: 2, left: 2, bottom: 2, right: 2), .grayscaleToRGB])
        #expect(try InputTransform.choose(from: [1, 28, 28], to: [1, 28, 28]).isIdentity)
        #expect(try InputTransform.choose(from: [1, 28, 28], to: [196]).steps == [.downsample2x2])
        do { _ = try InputTransform.choose(from: [3, 32, 32], to: [1, 28, 28]); Issue.record("no error") } catch let e as DataError {
            #expect(e.description.contains("3x32x32") && e.description.contains("1x28x28"))
        }
        // Values.
        var images = Tensor(shape: [1, 1, 4, 4])
        for i in 0..<16 { images[i] = Float(i) }
        let down = try InputTransform.choose(from: [1, 4, 4], to: [1, 2, 2]).apply(images)
        #expect(down.scalars == [2.5, 4.5, 10.5, 12.5])
        let padded = try InputTransform.choose(from: [1, 4, 4], to: [3, 6, 6]).apply(images)
        #expect(padded.shape == [1, 3, 6, 6] && padded[0, 2, 1, 1] == 0 && padded[0, 2, 1, 2] == 1 && padded[0, 0, 4, 4] == 15)
    }

    @Test func normalizationFitsTrainAndAppliesToTest() throws {
        let split = try DatasetCatalog.load("mnist-sample")
        let prepared = try split.prepared(for: [1, 14, 14], validationFraction: 0.1, seed: 7)
        #expect(prepared.split.train.sampleShape == [1, 14, 14] && prepared.split.test.sampleShape == [1, 14, 14])
        #expect(prepared.split.train.count == 3_600 && prepared.validation?.count == 400)
        let after = Normalization.fit(prepared.split.train.images)
        #expect(abs(after.mean[0]) < 1e-3 && abs(after.std[0] - 1) < 1e-3)
        // The test set used the training statistics, not its own.
        let raw = try InputTransform.choose(from: [1, 28, 28], to: [1, 14, 14]).apply(split.test.images)
        #expect(try prepared.split.test.images == prepared.normalization.applied(to: raw))
        // Stored and read back.
        let stored = Dictionary(uniqueKeysWithValues: prepared.normalization.arrays.map { ($0.name, $0.array) })
        #expect(try Normalization(arrays: stored) == prepared.normalization)
    }

    @Test func batchesCoverEveryImageOncePerEpoch() throws {
        var images = Tensor(shape: [10, 1, 1, 2])
        for i in 0..<10 { images[2 * i] = Float(i); images[2 * i + 1] = Float(-i) }
        let data = try Dataset(name: "t", images: images, labels: (0..<10).map { $0 % 3 }, classNames: ["a", "b", "c"])
        var loader = try BatchLoader(dataset: data, batchSize: 4, seed: 1)
        #expect(loader.batchCount == 3)
        var orders: [[Int]] = []
        for _ in 0..<2 {
            var seen: [Int] = []
            var sizes: [Int] = []
            for batch in loader.nextEpoch() {
                sizes.append(batch.count)
                for (row, index) in batch.indices.enumerated() {
                    #expect(batch.images[2 * row] == Float(index) && batch.labels[row] == index % 3)
                }
                seen += batch.indices
            }
            #expect(sizes == [4, 4, 2] && seen.sorted() == Array(0..<10))
            orders.append(seen)
        }
        #expect(orders[0] != orders[1])
        var again = try BatchLoader(dataset: data, batchSize: 4, seed: 1)
        #expect(Array(again.nextEpoch().flatMap(\.indices)) == orders[0])
    }

    @Test func holdOutIsStratifiedAndSeeded() throws {
        let data = try DatasetCatalog.load("toy-squares", options: DatasetOptions(trainCount: 100, testCount: 2)).train
        let (kept, held) = try data.holdOut(fraction: 0.2, seed: 5)
        #expect(kept.count == 80 && held.count == 20 && held.labels.filter { $0 == 1 }.count == 10)
        let (_, held2) = try data.holdOut(fraction: 0.2, seed: 5)
        #expect(held2.images == held.images)
        #expect(throws: DataError.self) { try data.holdOut(fraction: 1.5, seed: 1) }
    }
}
