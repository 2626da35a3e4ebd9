import Foundation
import Testing
@testable import ConvNet

/// Inputs that are well-formed but meaningless end in an error that says so (or, for text printed on a
/// terminal, are escaped), never in exit 0 with a nonsense answer.
@Suite("Meaningless input: an error or escaped text, not a nonsense answer", .serialized)
struct MeaninglessInputCLITests {
    /// A tiny-cnn trained for one short epoch, its model.npz's arrays, and a 28x28 picture.
    static func trained(_ dir: URL) throws -> (arrays: [(name: String, array: NumPyArray)], picture: URL) {
        let run = dir.appendingPathComponent("run")
        let r = try convnet(["train", "--model", "tiny-cnn", "--epochs", "1", "--train-limit", "64", "--out", run.path, "--no-report"])
        #expect(r.status == 0, "\(r.stderr)")
        let picture = dir.appendingPathComponent("digit.pgm")
        try (Data("P5\n28 28\n255\n".utf8) + Data((0..<784).map { UInt8(($0 * 7) % 256) })).write(to: picture)
        return (try NumPyArchive.readOrdered(from: run.appendingPathComponent("model.npz")), picture)
    }

    @Test("class names holding terminal escape sequences are printed escaped by predict and eval")
    func escapedClassNames() throws {
        let dir = try makeTemporaryFolder()
        var (arrays, picture) = try Self.trained(dir)
        let hostile = (0..<10).map { "\u{1B}]0;owned\u{07}\u{1B}[2J\($0)" }.joined(separator: "\n")
        let i = try #require(arrays.firstIndex { $0.name == "meta.classes" })
        arrays[i].array = NumPyArray(string: hostile)
        let model = dir.appendingPathComponent("hostile.npz")
        try NumPyArchive.write(arrays, to: model, compressed: false)
        let p = try convnet(["predict", "--weights", model.path, "--invert", "never", picture.path])
        #expect(p.status == 0, "\(p.stderr)")
        #expect(!p.stdout.contains("\u{1B}") && !p.stdout.contains("\u{07}") && p.stdout.contains("\\u{1B}]0;owned\\u{7}"), "\(p.stdout)")
    }

    @Test("a model whose outputs are not finite numbers predicts nothing: an error naming the weights, not -nan%")
    func nonFiniteOutputs() throws {
        let dir = try makeTemporaryFolder()
        var (arrays, picture) = try Self.trained(dir)
        let i = try #require(arrays.firstIndex { $0.name == "dense1.weight" })
        let count = arrays[i].array.floats().count
        arrays[i].array = try NumPyArray(shape: arrays[i].array.shape, float32: [Float](repeating: 3e38, count: count))
        let model = dir.appendingPathComponent("huge.npz")
        try NumPyArchive.write(arrays, to: model, compressed: false)
        let p = try convnet(["predict", "--weights", model.path, picture.path])
        #expect(p.status == 1, "\(p.stdout) \(p.stderr)")
        #expect(p.stderr.contains("not finite") && p.stderr.contains(model.path) && !p.stdout.contains("nan"), "\(p.stderr)")
    }

    @Test("images of 0x0 pixels (or 0 channels) are refused, not padded and trained on")
    func emptyImages() throws {
        let dir = try makeTemporaryFolder()
        for shape in [[8, 0, 0], [8, 1, 0, 5], [8, 0]] {
            let npz = dir.appendingPathComponent("empty-images.npz")
            try NumPyArchive.write([
                ("x_train", try NumPyArray(shape: shape, float32: [])),
                ("y_train", NumPyArray(labels: [0, 1, 0, 1, 0, 1, 0, 1])),
                ("x_test", try NumPyArray(shape: [4] + shape.dropFirst(), float32: [])),
                ("y_test", NumPyArray(labels: [0, 1, 0, 1])),
            ], to: npz, compressed: false)
            let r = try convnet(["train", "--model", "lenet5", "--dataset", npz.path, "--epochs", "1", "--out", dir.appendingPathComponent("run").path])
            #expect(r.status == 1 && r.stderr.contains("no pixels") && !r.stdout.contains("accuracy"), "\(shape): \(r.stdout) \(r.stderr)")
        }
    }

    @Test("a data set without test images is an error, not 'test accuracy 0.00% (0 images)'")
    func emptyTestSet() throws {
        let dir = try makeTemporaryFolder()
        let npz = dir.appendingPathComponent("empty-test.npz")
        try NumPyArchive.write([
            ("x_train", try NumPyArray(shape: [8, 1, 6, 6], float32: [Float](repeating: 0.5, count: 288))),
            ("y_train", NumPyArray(labels: [0, 1, 0, 1, 0, 1, 0, 1])),
            ("x_test", try NumPyArray(shape: [0, 1, 6, 6], float32: [])),
            ("y_test", NumPyArray(labels: [])),
        ], to: npz, compressed: false)
        let r = try convnet(["train", "--spec", "flatten; dense 2", "--dataset", npz.path, "--epochs", "1", "--out", dir.appendingPathComponent("run").path])
        #expect(r.status == 1 && !r.stdout.contains("0.00%"), "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("no test images") || r.stderr.contains("empty"), "\(r.stderr)")
    }

    @Test("datasets --benchmark-batch beyond its images is a usage error, not a crash")
    func benchmarkBatchBound() throws {
        let r = try convnet(["datasets", "--benchmark-batch", "9223372036854775807"])
        #expect(r.status == 64 && r.stderr.contains("--benchmark-batch"), "\(r.stderr)")
    }
}

@Suite("Labels and generated data within bounds")
struct LabelBoundsTests {
    static func npz(_ dir: URL, labels: NumPyArray, count: Int) throws -> URL {
        let url = dir.appendingPathComponent("labels.npz")
        try NumPyArchive.write([
            ("x_train", try NumPyArray(shape: [count, 1, 2, 2], float32: [Float](repeating: 0.5, count: count * 4))), ("y_train", labels),
            ("x_test", try NumPyArray(shape: [count, 1, 2, 2], float32: [Float](repeating: 0.5, count: count * 4))), ("y_test", labels),
        ], to: url, compressed: false)
        return url
    }

    @Test("a label of 10^9 or Int64.max is refused naming the sample, before any class name is made")
    func hugeLabels() throws {
        let dir = try makeTemporaryFolder()
        for label in [1_000_000_000, Int.max] {
            let url = try Self.npz(dir, labels: NumPyArray(labels: [0, label]), count: 2)
            #expect {
                _ = try DatasetCatalog.load(url.path)
            } throws: { error in
                "\(error)".contains("label \(label) of sample 1") && "\(error)".contains("\(DatasetCatalog.maxClasses) classes")
            }
        }
    }

    @Test("one-hot labels with an all-zero row are refused, not read as class 0")
    func allZeroOneHot() throws {
        let dir = try makeTemporaryFolder()
        let url = try Self.npz(dir, labels: try NumPyArray(shape: [3, 2], float32: [1, 0, 0, 0, 0, 1]), count: 3)
        #expect { _ = try DatasetCatalog.load(url.path) } throws: { "\($0)".contains("sample 1 has no class set") }
    }

    @Test("toy-squares refuses more examples than it can hold, before allocating them")
    func toyBound() throws {
        #expect { _ = try ToySquares.make(count: 1_000_000_000, seed: 1) } throws: { "\($0)".contains("at most") }
        #expect { _ = try ToySquares.make(count: 1_000_000_000_000_000_000, seed: 1) } throws: { "\($0)".contains("--train-limit") }
    }
}

@Suite("Archives with an entry twice")
struct DuplicateEntryTests {
    @Test("an .npz holding an array twice (the same entry name, or a and a.npy) is refused, not read as the first copy")
    func duplicates() throws {
        let one = NumPyArray(labels: [1]), two = NumPyArray(labels: [2])
        let same = try NumPyArchive.archiveData([("y", one), ("y", two)], compressed: false)
        #expect { _ = try NumPyArchive.parse(same, source: "same.npz") } throws: { "\($0)".contains("two entries named 'y.npy'") }
        var zip = ZipWriter()
        try zip.add(name: "y.npy", content: one.npyData(), compressed: false)
        try zip.add(name: "y", content: two.npyData(), compressed: true)
        #expect { _ = try NumPyArchive.parse(zip.finish(), source: "alias.npz") } throws: { "\($0)".contains("the array 'y' twice") }
        // One copy of each is read as before.
        let fine = try NumPyArchive.parse(try NumPyArchive.archiveData([("x", one), ("y", two)], compressed: true), source: "fine.npz")
        #expect(fine.map(\.name) == ["x", "y"])
    }
}
