import Foundation
import Testing
@testable import ConvNet

/// A 28x28 "7" drawn with 0 and 255 only: light strokes on black (as MNIST) or, `inverted`, black on white.
private func seven(inverted: Bool) -> [UInt8] {
    var pixels = [UInt8](repeating: 0, count: 28 * 28)
    for y in 5...7 { for x in 6...21 { pixels[y * 28 + x] = 255 } }
    for step in 0...16 {
        let y = 8 + step, x = 21 - (step * 11) / 16
        for dx in -1...0 { pixels[y * 28 + x + dx] = 255 }
    }
    return inverted ? pixels.map { 255 - $0 } : pixels
}

private func writePGM(_ pixels: [UInt8], to url: URL) throws {
    try (Data("P5\n28 28\n255\n".utf8) + Data(pixels)).write(to: url)
}

/// A small random-weight gray model, as if trained on `dataset` with the given normalisation.
private func grayArchive(dataset: String, mean: Float = 0.13) throws -> ModelArchive {
    let network = try Sequential(spec: "conv 4 3x3 pad 1; relu; maxpool 2; flatten; dense 10", inputShape: [1, 28, 28], seed: 7)
    return ModelArchive(network: network, modelName: "test-net", loss: .softmaxCrossEntropy, classNames: DatasetCatalog.digitNames,
                        normalization: try Normalization(mean: mean, std: 0.3), dataset: dataset)
}

@Suite("Picture polarity: dark-on-light drawings fitted to light-on-dark training data")
struct PolarityTests {
    @Test("the border tells the background; a negative is 1 - v")
    func border() throws {
        let dir = try makeTemporaryFolder()
        let drawn = dir.appendingPathComponent("drawn.pgm"), twin = dir.appendingPathComponent("twin.pgm")
        try writePGM(seven(inverted: true), to: drawn)
        try writePGM(seven(inverted: false), to: twin)
        let a = try Picture.read(from: drawn), b = try Picture.read(from: twin)
        #expect(a.background == .light && a.borderMean == 1)
        #expect(b.background == .dark && b.borderMean == 0)
        #expect(a.inverted().pixels == b.pixels)
        // A colour picture: the channels are averaged.
        let rgb = Picture(width: 4, height: 4, channels: 3, pixels: [Float](repeating: 0.9, count: 16) + [Float](repeating: 0.8, count: 16) + [Float](repeating: 0.1, count: 16))
        #expect(abs(rgb.borderMean - 0.6) < 1e-6 && rgb.background == .light)
    }

    @Test("the training background comes from the data set's name, else from the normalisation mean")
    func trainingBackground() throws {
        let gray = [1, 28, 28]
        let dark = try Normalization(mean: 0.13, std: 0.3), light = try Normalization(mean: 0.8, std: 0.3), middle = try Normalization(mean: 0.5, std: 0.3)
        #expect(Classifier.trainingBackground(dataset: "mnist", normalization: .identity, inputShape: gray) == .dark)
        #expect(Classifier.trainingBackground(dataset: "fashion-mnist", normalization: light, inputShape: gray) == .dark)
        #expect(Classifier.trainingBackground(dataset: "mnist-sample", normalization: dark, inputShape: [784]) == .dark)
        #expect(Classifier.trainingBackground(dataset: "toy-squares", normalization: dark, inputShape: [1, 6, 6]) == nil)
        #expect(Classifier.trainingBackground(dataset: "cifar10", normalization: dark, inputShape: gray) == nil)
        #expect(Classifier.trainingBackground(dataset: "mnist", normalization: dark, inputShape: [3, 32, 32]) == nil)
        #expect(Classifier.trainingBackground(dataset: "my.npz", normalization: dark, inputShape: gray) == .dark)
        #expect(Classifier.trainingBackground(dataset: "", normalization: light, inputShape: gray) == .light)
        #expect(Classifier.trainingBackground(dataset: "", normalization: middle, inputShape: gray) == nil)
        #expect(Classifier.trainingBackground(dataset: "my.npz", normalization: .identity, inputShape: gray) == nil)
    }

    @Test("auto inverts a dark-on-light 7 and classifies it as its light-on-dark twin; never keeps it")
    func classify() throws {
        let classifier = Classifier(archive: try grayArchive(dataset: "mnist"))
        #expect(classifier.trainingBackground == .dark && classifier.dataset == "mnist")
        let dir = try makeTemporaryFolder()
        let drawn = dir.appendingPathComponent("drawn.pgm"), twin = dir.appendingPathComponent("twin.pgm")
        try writePGM(seven(inverted: true), to: drawn)
        try writePGM(seven(inverted: false), to: twin)
        let a = try Picture.read(from: drawn), b = try Picture.read(from: twin)
        #expect(classifier.invertsPicture(a, inversion: .auto) && !classifier.invertsPicture(b, inversion: .auto))
        let reference = try classifier.predict([b])[0]
        let fitted = try classifier.predict([a, b], inversion: .auto)
        #expect(fitted[0].probabilities == reference.probabilities && fitted[1].probabilities == reference.probabilities)
        let kept = try classifier.predict([a], inversion: .never)[0]
        #expect(kept.probabilities != reference.probabilities)
        #expect(try classifier.predict([a])[0].probabilities == kept.probabilities)   // the library's default keeps pictures
        #expect(try classifier.predict([b], inversion: .always)[0].probabilities == kept.probabilities)
        // A model whose training background is not known leaves pictures alone.
        let unknown = Classifier(archive: try grayArchive(dataset: "", mean: 0.5))
        #expect(unknown.trainingBackground == nil && !unknown.invertsPicture(a, inversion: .auto))
    }

    @Test("convnet predict inverts, says so on stderr naming the image, and --invert never keeps it")
    func predictCommand() throws {
        let dir = try makeTemporaryFolder()
        let model = dir.appendingPathComponent("model.npz")
        try grayArchive(dataset: "mnist").write(to: model)
        let drawn = dir.appendingPathComponent("drawn.pgm"), twin = dir.appendingPathComponent("twin.pgm")
        try writePGM(seven(inverted: true), to: drawn)
        try writePGM(seven(inverted: false), to: twin)
        func rows(_ r: CLIResult) -> [[String: Any]] {
            r.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }
        func probabilities(_ row: [String: Any]) -> [Double] {
            ((row["predictions"] as? [[String: Any]]) ?? []).map { $0["probability"] as? Double ?? -1 }
        }
        let auto = try convnet(["predict", "--weights", model.path, "--json", "--top", "10", drawn.path, twin.path])
        #expect(auto.status == 0, "\(auto.stderr)")
        let autoRows = rows(auto)
        #expect(autoRows.map { $0["inverted"] as? Bool } == [true, false])
        #expect(probabilities(autoRows[0]) == probabilities(autoRows[1]))
        let notes = auto.stderr.split(separator: "\n")
        #expect(notes.count == 1 && notes[0].contains(drawn.path) && notes[0].contains("--invert never"), "\(auto.stderr)")

        let never = try convnet(["predict", "--weights", model.path, "--json", "--top", "10", "--invert", "never", drawn.path, twin.path])
        #expect(never.status == 0 && never.stderr.isEmpty, "\(never.stderr)")
        let neverRows = rows(never)
        #expect(neverRows.map { $0["inverted"] as? Bool } == [false, false])
        #expect(probabilities(neverRows[0]) != probabilities(neverRows[1]))

        let bad = try convnet(["predict", "--weights", model.path, "--invert", "sometimes", drawn.path])
        #expect(bad.status == 64 && bad.stderr.contains("--invert"), "\(bad.stderr)")
        let help = try convnet(["predict", "--help"])
        #expect(help.stdout.contains("--invert") && help.stdout.contains("never"))
    }
}

@Suite("convnet download: an installed set, and a failure offline", .serialized)
struct DownloadFirstUseTests {
    /// A port on 127.0.0.1 that nothing listens on.
    static func closedPort() throws -> Int {
        let server = try TestHTTPServer()
        let port = server.port
        server.stop()
        return port
    }

    @Test("a set convnet datasets finds is not downloaded again: exit 0, naming where it is")
    func alreadyInstalled() throws {
        let data = try makeTemporaryFolder().appendingPathComponent("data")
        let mnist = data.appendingPathComponent("mnist")
        try FileManager.default.createDirectory(at: mnist, withIntermediateDirectories: true)
        for name in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
            try Data([1]).write(to: mnist.appendingPathComponent(name))
        }
        let port = try Self.closedPort()
        let r = try convnet(["download", "mnist", "--data-dir", data.path, "--mirror", "http://127.0.0.1:\(port)/", "--no-standard-mirrors"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("already installed") && r.stdout.contains(mnist.path), "\(r.stdout)")
        // Debian's dataset-fashion-mnist, where this machine has it.
        if FileManager.default.fileExists(atPath: DatasetCatalog.systemFashionMNIST.appendingPathComponent("train-images-idx3-ubyte.gz").path) {
            let f = try convnet(["download", "fashion-mnist", "--data-dir", data.path, "--mirror", "http://127.0.0.1:\(port)/", "--no-standard-mirrors"])
            #expect(f.status == 0 && f.stdout.contains(DatasetCatalog.systemFashionMNIST.path), "\(f.stdout)\(f.stderr)")
            #expect(!FileManager.default.fileExists(atPath: data.appendingPathComponent("fashion-mnist").path))
        }
    }

    @Test("offline: no folder left behind, and the message names --mirror URL and the files to put by hand")
    func offline() throws {
        let root = try makeTemporaryFolder()
        let data = root.appendingPathComponent("data")
        let port = try Self.closedPort()
        let r = try convnet(["download", "mnist", "--data-dir", data.path, "--mirror", "http://127.0.0.1:\(port)/", "--no-standard-mirrors"])
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains("--mirror URL"), "\(r.stderr)")
        #expect(r.stderr.contains(data.appendingPathComponent("mnist").path) && r.stderr.contains("t10k-labels-idx1-ubyte.gz"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: data.path), "the data directory this run created is left behind")
        // An existing data directory stays, without an empty set folder in it.
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        let again = try convnet(["download", "cifar10", "--data-dir", data.path, "--mirror", "http://127.0.0.1:\(port)/", "--no-standard-mirrors"])
        #expect(again.status == 1 && again.stderr.contains("cifar-10-binary.tar.gz"), "\(again.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: data.path).isEmpty)
        // Options checked before anything runs.
        let noMirror = try convnet(["download", "mnist", "--data-dir", data.path, "--no-standard-mirrors"])
        #expect(noMirror.status == 64 && noMirror.stderr.contains("--mirror"), "\(noMirror.stderr)")
        let unknown = try convnet(["download", "imagenet", "--data-dir", data.path])
        #expect(unknown.status == 64 && unknown.stderr.contains("imagenet"), "\(unknown.stderr)")
    }

    @Test("a failed download keeps a partial file to resume and removes only what is empty")
    func partialKept() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let payload = Data((0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 13) })
        server.set("a.bin", .dropAfter(payload, bytes: 1_000, times: 100))
        let root = try makeTemporaryFolder().appendingPathComponent("fresh")
        let source = DownloadSource(dataset: "t", mirrors: [server.baseURL],
                                    files: [RemoteFile(name: "a.bin", md5: MD5.hex(payload)), RemoteFile(name: "b.bin", md5: MD5.hex(payload))], folder: "t")
        #expect(throws: DataError.self) { try Downloader(attemptsPerMirror: 2, timeout: 10).download(source, into: root) }
        let partial = Downloader.partialFiles(of: source, in: root)
        #expect(partial.count == 1 && partial[0].url.lastPathComponent == "a.bin.part" && partial[0].bytes > 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("t").path) == ["a.bin.part"])
        #expect(source.byHand(dataDirectory: root).contains(root.appendingPathComponent("t").path))
    }
}

@Suite("convnet bench: short runs and plurals")
struct BenchFirstUseTests {
    @Test("each timed run lasts at least the minimum time, whatever --steps says")
    func minimumRun() throws {
        let r = try ModelBenchmark.run(model: try ModelZoo.model(named: "mlp"), batchSize: 4, warmup: 1, warmupSeconds: 0, steps: 1,
                                       repeats: 2, minimumRunSeconds: 0.02, latencySeconds: 0)
        #expect(r.timedSteps > 2, "\(r.timedSteps) steps timed")
        #expect(r.trainRunSpread >= 0 && r.trainImagesPerSecond > 0)
        let one = try ModelBenchmark.run(model: try ModelZoo.model(named: "mlp"), batchSize: 4, warmup: 1, warmupSeconds: 0, steps: 5,
                                         repeats: 1, minimumRunSeconds: 0, latencySeconds: 0)
        #expect(one.timedSteps == 5 && one.trainRunSpread == 0)
    }

    @Test("bench headers say 'one run' and '1 thread', never 'of 1 runs'")
    func plurals() throws {
        let models = try convnet(["bench", "--model", "mlp", "--batch-size", "4", "--repeats", "1", "--steps", "1", "--threads", "1"])
        #expect(models.status == 0, "\(models.stderr)")
        let header = models.stdout.split(separator: "\n").first.map(String.init) ?? ""
        #expect(header.contains("1 thread,") && header.contains("one run of at least 1 step and"), "\(header)")
        let conv = try convnet(["bench", "conv", "--repeats", "1", "--batch-size", "2"])
        #expect(conv.status == 0 && conv.stdout.contains("one run") && !conv.stdout.contains("1 runs"), "\(conv.stdout)")
    }
}
