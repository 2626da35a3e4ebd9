import Foundation
import Testing
@testable import ConvNet

/// Passes its input on and keeps a copy of every input it sees, with the `training` flag.
private final class Recorder: Layer {
    let kind = "recorder"
    var name = "recorder"
    var seen: [(training: Bool, images: Tensor)] = []
    func build(inputShape: [Int], context: inout BuildContext) throws -> [Int] { inputShape }
    func forward(_ input: Tensor, training: Bool, context: ExecutionContext) throws -> Tensor {
        seen.append((training, input))
        return input
    }
    func backward(_ outputGradient: Tensor, context: ExecutionContext) throws -> Tensor { outputGradient }
    var specStatement: String { "recorder" }
}

/// `count` random C x H x W images with labels 0..<3.
private func randomData(count: Int, shape: [Int] = [2, 5, 6], seed: UInt64 = 5) throws -> Dataset {
    var random = SeededGenerator(seed: seed)
    let per = shape.reduce(1, *)
    let images = try Tensor(shape: [count] + shape, scalars: (0..<(count * per)).map { _ in random.uniform(-1, 1) })
    return try Dataset(name: "random", images: images, labels: (0..<count).map { $0 % 3 }, classNames: ["a", "b", "c"])
}

/// Pixel (c, y, x) of the reference shift: the old pixel (y - dy, x - dx), or the channel's fill.
private func referenceShift(_ image: [Float], channels: Int, height: Int, width: Int, dx: Int, dy: Int, fill: [Float]) -> [Float] {
    var out = image
    for c in 0..<channels {
        for y in 0..<height {
            for x in 0..<width {
                let sy = y - dy, sx = x - dx
                out[(c * height + y) * width + x] = (0..<height).contains(sy) && (0..<width).contains(sx)
                    ? image[(c * height + sy) * width + sx] : fill[c]
            }
        }
    }
    return out
}

private func shifted(_ image: [Float], channels: Int, height: Int, width: Int, dx: Int, dy: Int, fill: [Float]) -> [Float] {
    var out = image
    out.withUnsafeMutableBufferPointer { p in
        fill.withUnsafeBufferPointer { f in
            AugmentationKernels.shift(p.baseAddress!, channels: channels, height: height, width: width, dx: dx, dy: dy, fill: f.baseAddress!)
        }
    }
    return out
}

@Suite("Data augmentation")
struct AugmentationTests {
    // MARK: Kernels

    @Test("shift by (dx, dy) = (1, -1) moves every pixel one right and one up and fills the vacated border")
    func shiftKnownOffsets() {
        // One channel, 3 x 4, values 1...12 row by row.
        let image: [Float] = [1, 2, 3, 4,
                              5, 6, 7, 8,
                              9, 10, 11, 12]
        #expect(shifted(image, channels: 1, height: 3, width: 4, dx: 1, dy: -1, fill: [-7]) == [
            -7, 5, 6, 7,
            -7, 9, 10, 11,
            -7, -7, -7, -7,
        ])
        #expect(shifted(image, channels: 1, height: 3, width: 4, dx: -2, dy: 2, fill: [0]) == [
            0, 0, 0, 0,
            0, 0, 0, 0,
            3, 4, 0, 0,
        ])
        #expect(shifted(image, channels: 1, height: 3, width: 4, dx: 0, dy: 0, fill: [0]) == image)
        #expect(shifted(image, channels: 1, height: 3, width: 4, dx: 4, dy: 0, fill: [9]) == [Float](repeating: 9, count: 12))
        // Two channels take their own fill.
        let two: [Float] = [1, 2, 3, 4, 5, 6, 7, 8]  // 2 x 2 x 2
        #expect(shifted(two, channels: 2, height: 2, width: 2, dx: 0, dy: 1, fill: [-1, -2]) == [-1, -1, 1, 2, -2, -2, 5, 6])
    }

    @Test("shift matches a pixel-by-pixel reference for every offset up to the image size")
    func shiftAgainstReference() {
        var random = SeededGenerator(seed: 11)
        let (c, h, w) = (3, 5, 7)
        let image = (0..<(c * h * w)).map { _ in random.uniform(-1, 1) }
        let fill: [Float] = [-0.5, 0.25, 2]
        for dy in -6...6 {
            for dx in -8...8 {
                #expect(shifted(image, channels: c, height: h, width: w, dx: dx, dy: dy, fill: fill)
                            == referenceShift(image, channels: c, height: h, width: w, dx: dx, dy: dy, fill: fill), "dx \(dx) dy \(dy)")
            }
        }
    }

    @Test("flip mirrors each row of each channel, and twice is the identity")
    func flipMirrors() {
        var image: [Float] = [1, 2, 3,
                              4, 5, 6,   // channel 0
                              7, 8, 9,
                              10, 11, 12]  // channel 1
        image.withUnsafeMutableBufferPointer { AugmentationKernels.flipHorizontally($0.baseAddress!, channels: 2, height: 2, width: 3) }
        #expect(image == [3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10])
        var even: [Float] = [1, 2, 3, 4]
        even.withUnsafeMutableBufferPointer { AugmentationKernels.flipHorizontally($0.baseAddress!, channels: 1, height: 1, width: 4) }
        #expect(even == [4, 3, 2, 1])
        image.withUnsafeMutableBufferPointer { AugmentationKernels.flipHorizontally($0.baseAddress!, channels: 2, height: 2, width: 3) }
        #expect(image == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    }

    @Test("erase sets exactly the chosen rectangle to the value in every channel and leaves every other pixel")
    func eraseRectangle() {
        let (c, h, w) = (2, 4, 5)
        let original = (0..<(c * h * w)).map { Float($0 + 1) }
        var image = original
        let r = Augmentation.Rectangle(y: 1, x: 2, height: 2, width: 3)
        image.withUnsafeMutableBufferPointer {
            AugmentationKernels.erase($0.baseAddress!, channels: c, height: h, width: w, rectangle: r, value: 0)
        }
        for ch in 0..<c {
            for y in 0..<h {
                for x in 0..<w {
                    let i = (ch * h + y) * w + x
                    let inside = (1...2).contains(y) && (2...4).contains(x)
                    #expect(image[i] == (inside ? 0 : original[i]), "c \(ch) y \(y) x \(x)")
                }
            }
        }
        #expect(image.filter { $0 == 0 }.count == 2 * 2 * 3)
    }

    // MARK: Draws

    @Test("draws: shifts cover exactly [-N, N], flips and erasures come at their probability, rectangles fit torchvision's ranges")
    func drawStatistics() {
        let a = Augmentation(shift: 2, flip: true, erase: 0.25)
        var dxs = Set<Int>(), dys = Set<Int>(), flips = 0, erased = 0
        let n = 4000
        for row in 0..<n {
            let d = a.draw(seed: 7, epoch: 0, batch: row / 64, row: row % 64, height: 28, width: 28)
            dxs.insert(d.dx); dys.insert(d.dy)
            if d.flip { flips += 1 }
            if let r = d.erase {
                erased += 1
                #expect(r.y >= 0 && r.x >= 0 && r.y + r.height <= 28 && r.x + r.width <= 28 && r.height < 28 && r.width < 28)
                let area = Double(r.height * r.width) / (28 * 28)
                #expect(area > 0.01 && area < 0.37, "area fraction \(area)")
                let ratio = Double(r.height) / Double(r.width)
                #expect(ratio > 0.2 && ratio < 4.5, "ratio \(ratio)")
            }
        }
        #expect(dxs == Set(-2...2) && dys == Set(-2...2))
        #expect(abs(Double(flips) / Double(n) - 0.5) < 0.04, "\(flips) flips")
        #expect(abs(Double(erased) / Double(n) - 0.25) < 0.04, "\(erased) erasures")
        let off = Augmentation(shift: 3)
        let plain = off.draw(seed: 7, epoch: 0, batch: 0, row: 0, height: 8, width: 8)
        #expect(!plain.flip && plain.erase == nil)
    }

    @Test("the same seed, epoch, batch and row give the same draw; another seed, epoch, batch or row another")
    func drawSeeding() {
        let a = Augmentation(shift: 4, flip: true, erase: 1)
        func draws(seed: UInt64 = 1, epoch: Int = 0, batch: Int = 0) -> [Augmentation.Draw] {
            (0..<16).map { a.draw(seed: seed, epoch: epoch, batch: batch, row: $0, height: 32, width: 32) }
        }
        #expect(draws() == draws())
        #expect(draws() != draws(seed: 2))
        #expect(draws() != draws(epoch: 1))
        #expect(draws() != draws(batch: 1))
        let rows = draws()
        #expect(Set(rows.map { "\($0)" }).count > 8, "rows of one batch draw differently")
        #expect(Augmentation.imageSeed(seed: 1, epoch: 0, batch: 1, row: 0) != Augmentation.imageSeed(seed: 1, epoch: 1, batch: 0, row: 0))
    }

    // MARK: Batches

    @Test("a batch: the same seed, epoch and batch give identical bits, another batch or epoch other bits; a slice gets the full batch's rows")
    func batchReproducible() throws {
        let data = try randomData(count: 12)
        let augmenter = try BatchAugmenter(Augmentation(shift: 2, flip: true, erase: 0.5), seed: 3, train: data)
        func augmented(epoch: Int, batch: Int, rows: Range<Int> = 0..<12) -> [UInt32] {
            var images = data.images.gather(Array(rows))
            augmenter.apply(to: &images, epoch: epoch, batch: batch, firstRow: rows.lowerBound)
            return images.scalars.map(\.bitPattern)
        }
        let first = augmented(epoch: 0, batch: 0)
        #expect(first == augmented(epoch: 0, batch: 0))
        #expect(first != data.images.scalars.map(\.bitPattern))
        #expect(first != augmented(epoch: 0, batch: 1))
        #expect(first != augmented(epoch: 1, batch: 0))
        // A data-parallel rank's slice (rows 5..<9 of the batch) gets exactly those rows of the whole batch.
        let per = data.images.count / data.count
        #expect(augmented(epoch: 0, batch: 0, rows: 5..<9) == Array(first[(5 * per)..<(9 * per)]))
    }

    @Test("shifted-in pixels take each channel's smallest training value; augmenting needs C x H x W images and a shift below their size")
    func augmenterChecks() throws {
        let data = try randomData(count: 6, shape: [2, 4, 4])
        let augmenter = try BatchAugmenter(Augmentation(shift: 1), seed: 1, train: data)
        let per = 16
        for c in 0..<2 {
            var values: [Float] = []
            for i in 0..<6 {
                let start: Int = (i * 2 + c) * per
                values += data.images.scalars[start..<(start + per)]
            }
            #expect(augmenter.fill[c] == values.min())
        }
        #expect(augmenter.fill[0] != augmenter.fill[1])
        let flat = try Dataset(name: "flat", images: Tensor(shape: [3, 16], repeating: 0), labels: [0, 1, 2], classNames: ["a", "b", "c"])
        #expect { try BatchAugmenter(Augmentation(flip: true), seed: 1, train: flat) } throws: { error in
            "\(error)".contains("--augment") && "\(error)".contains("channels x height x width")
        }
        #expect { try BatchAugmenter(Augmentation(shift: 4), seed: 1, train: data) } throws: { error in
            "\(error)".contains("shift=4") && "\(error)".contains("below 4")
        }
    }

    // MARK: Training

    /// Trains a recorder-first network and returns what the recorder saw, the weights' bits and the trainer.
    private static func train(_ augmentation: Augmentation?, data: Dataset, test: Dataset? = nil, epochs: Int = 2)
        throws -> (seen: [(training: Bool, images: Tensor)], weights: [UInt32], trainer: Trainer) {
        let recorder = Recorder()
        let network = try Sequential(inputShape: data.sampleShape, seed: 4) {
            recorder
            Flatten()
            Dense(units: 3)
        }
        var options = TrainingOptions()
        options.epochs = epochs
        options.batchSize = 4
        options.seed = 9
        options.augmentation = augmentation
        let trainer = try Trainer(network: network, options: options)
        try trainer.train(on: data, test: test)
        return (recorder.seen, network.parameters.flatMap(\.value.scalars).map(\.bitPattern), trainer)
    }

    @Test("training augments each batch right after it is copied (as BatchAugmenter gives it), and evaluation sees plain images")
    func trainingSeesAugmentedBatches() throws {
        let data = try randomData(count: 10), test = try randomData(count: 6, seed: 8)
        let augmentation = Augmentation(shift: 1, flip: true, erase: 0.5)
        let run = try Self.train(augmentation, data: data, test: test)
        let augmenter = try BatchAugmenter(augmentation, seed: 9, train: data)
        let training = run.seen.filter(\.training).map(\.images), evaluation = run.seen.filter { !$0.training }.map(\.images)
        #expect(training.count == 2 * 3)
        var k = 0
        for epoch in 0..<2 {
            let order = run.trainer.epochOrder(epoch, count: data.count)
            for b in 0..<3 {
                var expected = data.images.gather(Array(order[(b * 4)..<min(b * 4 + 4, 10)]))
                #expect(training[k].scalars != expected.scalars, "epoch \(epoch) batch \(b) was not augmented")
                augmenter.apply(to: &expected, epoch: epoch, batch: b)
                #expect(training[k].scalars.map(\.bitPattern) == expected.scalars.map(\.bitPattern), "epoch \(epoch) batch \(b)")
                k += 1
            }
        }
        #expect(!evaluation.isEmpty)
        let plainTest = Set(test.images.scalars.map(\.bitPattern))
        for images in evaluation { #expect(images.scalars.allSatisfy { plainTest.contains($0.bitPattern) }, "evaluation saw augmented images") }
    }

    @Test("with augmentation off (nil or all off) training sees the plain batches and ends at the same bits; on, at other bits")
    func offIsUnchanged() throws {
        let data = try randomData(count: 10)
        let off = try Self.train(nil, data: data)
        var k = 0
        for epoch in 0..<2 {
            let order = off.trainer.epochOrder(epoch, count: data.count)
            for b in 0..<3 {
                let plain = data.images.gather(Array(order[(b * 4)..<min(b * 4 + 4, 10)]))
                #expect(off.seen.filter(\.training)[k].images.scalars.map(\.bitPattern) == plain.scalars.map(\.bitPattern))
                k += 1
            }
        }
        #expect(try Self.train(Augmentation(), data: data).weights == off.weights)
        #expect(try Self.train(Augmentation(shift: 1), data: data).weights != off.weights)
    }

    @Test("a run stopped mid-epoch and resumed from its checkpoint ends at the uninterrupted run's bits")
    func resumeMidEpoch() throws {
        let data = try randomData(count: 10)
        let augmentation = Augmentation(shift: 2, flip: true, erase: 0.5)
        var options = TrainingOptions()
        options.epochs = 3
        options.batchSize = 4
        options.seed = 9
        options.augmentation = augmentation
        func network() throws -> Sequential { try Sequential(spec: "conv 2 3x3 pad 1; relu; flatten; dense 3", inputShape: data.sampleShape, seed: 4) }
        // Stopped at epoch 2, batch 2 of 3.
        let (whole, resumed, checkpoint) = try trainWholeAndResumed(data, options, stoppingAfter: 5, network: network)
        #expect(checkpoint.progress.batchesInEpoch == 2)
        #expect(resumed == whole)
        options.augmentation = nil
        let plain = try network()
        try Trainer(network: plain, options: options).train(on: data)
        #expect(plain.parameters.flatMap(\.value.scalars).map(\.bitPattern) != whole)
    }

    // MARK: Options

    @Test("--augment parses its forms into the typed settings and prints them back")
    func parsing() throws {
        #expect(try Augmentation(parsing: "shift=2,flip,erase=0.25") == Augmentation(shift: 2, flip: true, erase: 0.25))
        #expect(try Augmentation(parsing: " erase , SHIFT=3 ") == Augmentation(shift: 3, erase: 0.5))
        #expect(try Augmentation(parsing: "flip") == Augmentation(flip: true))
        #expect(try Augmentation(parsing: "none").isIdentity)
        for text in ["shift=2,flip,erase=0.25", "shift=1", "flip", "erase=0.5", "shift=4,erase=1.0"] {
            let a = try Augmentation(parsing: text)
            #expect(try Augmentation(parsing: a.description) == a, "\(text) -> \(a)")
        }
        #expect(Augmentation(shift: 2, flip: true, erase: 0.25).description == "shift=2,flip,erase=0.25")
        #expect(Augmentation().description == "none")
    }

    @Test("bad --augment text is refused naming the option, the item and the accepted forms", arguments: [
        "", "shift", "shift=0", "shift=-1", "shift=1.5", "shift=x", "flip=1", "erase=0", "erase=1.5", "erase=nan", "erase=x",
        "rotate=10", "shift=2,,flip", "shift=1,shift=2", "=3",
    ])
    func parseErrors(text: String) {
        #expect { try Augmentation(parsing: text) } throws: { error in
            let m = "\(error)"
            return m.hasPrefix("--augment") && m.contains("shift=N") && m.contains("erase=P")
        }
    }

    @Test("TrainingOptions: old JSON without augmentation reads as none, none writes no key, and a value round-trips and validates")
    func optionsCodable() throws {
        let plain = TrainingOptions()
        let json = String(decoding: try JSONEncoder().encode(plain), as: UTF8.self)
        #expect(!json.contains("augmentation"), "no key when off, so older readers and fingerprints see the same options")
        #expect(try JSONDecoder().decode(TrainingOptions.self, from: Data(json.utf8)).augmentation == nil)
        var on = plain
        on.augmentation = Augmentation(shift: 2, flip: true, erase: 0.25)
        #expect(try JSONDecoder().decode(TrainingOptions.self, from: JSONEncoder().encode(on)) == on)
        on.augmentation = Augmentation(erase: 3)
        #expect { try on.validate() } throws: { "\($0)".contains("--augment erase") }
    }
}

@Suite("convnet train --augment", .serialized)
struct AugmentationCLITests {
    @Test("--augment is in model.npz's metadata and the report; a resume with other augmentation is refused")
    func recorded() throws {
        let dir = try makeTemporaryFolder()
        let run = dir.appendingPathComponent("run")
        let r = try convnet(["train", "--model", "toy", "--epochs", "1", "--augment", "shift=1,flip,erase=0.5", "--out", run.path])
        #expect(r.status == 0, "\(r.stderr)")
        let arrays = try NumPyArchive.read(from: run.appendingPathComponent("model.npz"))
        #expect(try arrays["meta.augmentation"]?.string() == "shift=1,flip,erase=0.5")
        #expect(try ModelArchive.read(from: run.appendingPathComponent("model.npz")).augmentation == "shift=1,flip,erase=0.5")
        let report = try String(contentsOf: run.appendingPathComponent("report.html"), encoding: .utf8)
        #expect(report.contains("augmentation") && report.contains("shift=1,flip,erase=0.5"))
        let other = try convnet(["train", "--resume", run.path, "--epochs", "2", "--augment", "flip"])
        #expect(other.status == 64 && other.stderr.contains("--augment flip contradicts"), "\(other.stderr)")
        let same = try convnet(["train", "--resume", run.path, "--epochs", "2", "--augment", "flip,erase=0.5,shift=1", "--no-report"])
        #expect(same.status == 0, "\(same.stderr)")

        let plain = dir.appendingPathComponent("plain")
        #expect(try convnet(["train", "--model", "toy", "--epochs", "1", "--no-report", "--out", plain.path]).status == 0)
        #expect(try NumPyArchive.read(from: plain.appendingPathComponent("model.npz"))["meta.augmentation"] == nil)
    }

    @Test("a bad --augment is a usage error (64) naming the option and its forms, before any data loads")
    func usageError() throws {
        let dir = try makeTemporaryFolder()
        for bad in ["shift=x", "flip=2", "erase=0", "zoom"] {
            let r = try convnet(["train", "--dataset", dir.appendingPathComponent("missing.npz").path, "--augment", bad,
                                 "--out", dir.appendingPathComponent("run").path])
            #expect(r.status == 64, "\(bad): \(r.stderr)")
            #expect(r.stderr.contains("--augment") && r.stderr.contains("shift=N") && !r.stderr.contains("missing.npz"), "\(bad): \(r.stderr)")
        }
        let tooFar = try convnet(["train", "--model", "toy", "--augment", "shift=40", "--out", dir.appendingPathComponent("far").path])
        #expect(tooFar.status != 0 && tooFar.stderr.contains("shift=40"), "\(tooFar.stderr)")
    }
}
