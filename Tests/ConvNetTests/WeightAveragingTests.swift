import Foundation
import Testing
@testable import ConvNet

/// `count` random C x H x W images with labels 0..<3.
private func randomData(count: Int, shape: [Int] = [1, 4, 5], seed: UInt64 = 3) throws -> Dataset {
    var random = SeededGenerator(seed: seed)
    let per = shape.reduce(1, *)
    let images = try Tensor(shape: [count] + shape, scalars: (0..<(count * per)).map { _ in random.uniform(-1, 1) })
    return try Dataset(name: "random", images: images, labels: (0..<count).map { $0 % 3 }, classNames: ["a", "b", "c"])
}

private func values(_ network: Sequential) -> [[Float]] { (network.parameters + network.buffers).map(\.value.scalars) }

@Suite("Weight averaging (--ema)")
struct WeightAveragingTests {
    @Test("the rate follows min(decay, (1 + n) / (10 + n))")
    func rate() {
        #expect(WeightAverage.rate(decay: 0.999, update: 1) == Float(2) / 11)
        #expect(WeightAverage.rate(decay: 0.999, update: 10) == Float(11) / 20)
        #expect(WeightAverage.rate(decay: 0.5, update: 100) == 0.5)
        #expect(WeightAverage.rate(decay: 0.9, update: 80) == 0.9)  // 81/90 = 0.9 exactly: the decay from here on
    }

    @Test("two updates by hand: a = d1 a + (1 - d1) w, then with d2")
    func handComputed() throws {
        let network = try Sequential(spec: "flatten; dense 1", inputShape: [2], seed: 1)
        let weight = network.parameters[0], bias = network.parameters[1]
        weight.value = try Tensor(shape: [1, 2], scalars: [1, -2])
        bias.value = try Tensor(shape: [1], scalars: [0.5])
        let average = WeightAverage(network: network, decay: 0.99)
        weight.value = try Tensor(shape: [1, 2], scalars: [3, 0])
        bias.value = try Tensor(shape: [1], scalars: [-0.5])
        average.update(from: network, update: 1)  // d1 = 2/11
        let d1: Float = 2.0 / 11.0
        #expect(abs(average.values[0][0] - (d1 * 1 + (1 - d1) * 3)) < 1e-6)  // 29/11
        #expect(abs(average.values[0][0] - 29.0 / 11.0) < 1e-5)
        #expect(abs(average.values[0][1] - (d1 * -2)) < 1e-6)  // -4/11
        #expect(abs(average.values[1][0] - (d1 * 0.5 + (1 - d1) * -0.5)) < 1e-6)  // -7/22
        weight.value = try Tensor(shape: [1, 2], scalars: [1, 1])
        average.update(from: network, update: 2)  // d2 = 3/12 = 0.25
        #expect(abs(average.values[0][0] - (0.25 * 29.0 / 11.0 + 0.75 * 1)) < 1e-5)
        #expect(abs(average.values[0][1] - (0.25 * -4.0 / 11.0 + 0.75 * 1)) < 1e-5)
        #expect(abs(average.values[1][0] - (0.25 * -7.0 / 22.0 + 0.75 * -0.5)) < 1e-5)
        // The network's own weights are untouched by the average; swapping in and out restores them.
        #expect(weight.value.scalars == [1, 1])
        let inside = average.withAveragedWeights(in: network) { weight.value.scalars }
        #expect(inside == average.values[0].scalars)
        #expect(weight.value.scalars == [1, 1])
    }

    @Test("training averages every step's weights and batch-norm statistics, and scores the average")
    func trainingSteps() throws {
        let data = try randomData(count: 12)
        var options = TrainingOptions()
        options.epochs = 2
        options.batchSize = 4
        options.learningRate = 0.1
        options.ema = 0.9
        let network = try Sequential(spec: "conv 2 3x3 pad 1; batchnorm; relu; flatten; dense 3", inputShape: data.sampleShape, seed: 2)
        var expected = values(network)
        let trainer = try Trainer(network: network, options: options)
        var records: [EpochRecord] = []
        try trainer.train(on: data, test: data) { event in
            switch event {
            case .iteration(let r):
                let d = min(Float(0.9), Float(1 + r.iteration) / Float(10 + r.iteration))
                for (k, now) in values(network).enumerated() {
                    for i in now.indices { expected[k][i] = d * expected[k][i] + (1 - d) * now[i] }
                }
            case .epoch(let e): records.append(e)
            }
        }
        let average = try #require(trainer.weightAverage)
        #expect(average.names.contains { $0.hasSuffix(".running_mean") } && average.names.contains { $0.hasSuffix(".running_var") })
        for (k, got) in average.values.enumerated() {
            for i in got.scalars.indices { #expect(abs(got.scalars[i] - expected[k][i]) <= 1e-5 * max(1, abs(expected[k][i])), "\(average.names[k])[\(i)]") }
        }
        #expect(values(network) != average.values.map(\.scalars))
        let scored = try average.withAveragedWeights(in: network) { try evaluate(network, on: data, loss: options.loss).accuracy }
        #expect(records.last?.testAccuracy == scored)
    }

    @Test("a run with --ema, --tta and flip=alternate stopped mid-epoch and resumed ends at the uninterrupted run's bits, average included")
    func resumeMidEpoch() throws {
        struct Stop: Error {}
        let data = try randomData(count: 10)
        var options = TrainingOptions()
        options.epochs = 3
        options.batchSize = 4
        options.ema = 0.8
        options.testTimeAugmentation = TestTimeAugmentation(flip: true, shift: 1)
        options.augmentation = Augmentation(shift: 1, alternateFlips: true)
        func network() throws -> Sequential { try Sequential(spec: "conv 2 3x3 pad 1; batchnorm; relu; flatten; dense 3", inputShape: data.sampleShape, seed: 4) }
        let whole = try network()
        let uninterrupted = try Trainer(network: whole, options: options)
        try uninterrupted.train(on: data, test: data)
        let bits = { (v: [[Float]]) in v.flatMap { $0 }.map(\.bitPattern) }

        let interrupted = try network()
        let first = try Trainer(network: interrupted, options: options)
        #expect(throws: Stop.self) {
            try first.train(on: data, test: data) { event in
                if case .iteration(let r) = event, r.iteration == 5 { throw Stop() }
            }
        }
        let url = try makeTemporaryFolder().appendingPathComponent("checkpoint.npz")
        let archive = ModelArchive(network: interrupted, modelName: "custom", loss: options.loss, classNames: data.classNames, normalization: .identity)
        try Checkpoint(trainer: first, model: archive, settings: "{}").write(to: url)
        let checkpoint = try Checkpoint.read(from: url)
        #expect(checkpoint.weightAverage.count == first.weightAverage?.names.count)
        let resumed = try Trainer(network: checkpoint.model.network, options: options)
        try resumed.restore(from: checkpoint)
        try resumed.train(on: data, test: data)
        #expect(bits(values(checkpoint.model.network)) == bits(values(whole)))
        #expect(bits(resumed.weightAverage!.values.map(\.scalars)) == bits(uninterrupted.weightAverage!.values.map(\.scalars)))
        #expect(resumed.epochRecords.last?.testAccuracy == uninterrupted.epochRecords.last?.testAccuracy)

        // A checkpoint without the average does not resume a run with one, and the other way round.
        var bare = checkpoint
        bare.weightAverage = [:]
        #expect { try Trainer(network: network(), options: options).restore(from: bare) } throws: { "\($0)".contains("ema.") && "\($0)".contains("--ema") }
        var plain = options
        plain.ema = nil
        #expect { try Trainer(network: network(), options: plain).restore(from: checkpoint) } throws: { "\($0)".contains("no --ema") }
        var damaged = checkpoint
        damaged.weightAverage["dense1.bias"] = Tensor(shape: [3], repeating: .nan)
        #expect { try Trainer(network: network(), options: options).restore(from: damaged) } throws: { "\($0)".contains("not finite") }
    }

    @Test("--ema outside (0, 1) is refused naming the option", arguments: [Float(0), 1, 1.5, -0.1, .nan])
    func badDecay(decay: Float) {
        var options = TrainingOptions()
        options.ema = decay
        #expect { try options.validate() } throws: { "\($0)".contains("--ema") }
    }
}

/// Pass `pass` of an image (C x H x W) written out pixel by pixel: moved by (dx, dy) with `fill`, then mirrored.
private func referencePass(_ image: [Float], shape: [Int], pass: Augmentation.Draw, fill: [Float]) -> [Float] {
    let (channels, height, width) = (shape[0], shape[1], shape[2])
    var moved = image
    for c in 0..<channels {
        for y in 0..<height {
            for x in 0..<width {
                let sy = y - pass.dy, sx = x - pass.dx
                moved[(c * height + y) * width + x] = (0..<height).contains(sy) && (0..<width).contains(sx) ? image[(c * height + sy) * width + sx] : fill[c]
            }
        }
    }
    guard pass.flip else { return moved }
    var out = moved
    for c in 0..<channels { for y in 0..<height { for x in 0..<width {
        out[(c * height + y) * width + x] = moved[(c * height + y) * width + (width - 1 - x)]
    } } }
    return out
}

@Suite("Test-time augmentation (--tta)")
struct TestTimeAugmentationTests {
    @Test("--tta parses flip and shift=N and prints them back; bad text names the option", arguments: ["flip", "shift=1", "flip,shift=2"])
    func parsing(text: String) throws {
        let t = try TestTimeAugmentation(parsing: text)
        #expect(t.description == text)
        #expect(try TestTimeAugmentation(parsing: t.description) == t)
        #expect(try TestTimeAugmentation(parsing: " SHIFT=2 , Flip ") == TestTimeAugmentation(flip: true, shift: 2))
        #expect(try TestTimeAugmentation(parsing: "none").isIdentity)
        for bad in ["", "flip=1", "shift", "shift=0", "shift=x", "rotate", "flip,flip"] {
            #expect { try TestTimeAugmentation(parsing: bad) } throws: { "\($0)".hasPrefix("--tta") && "\($0)".contains("shift=N") }
        }
    }

    @Test("the passes: 1, 2, 3 or 6, the image itself first")
    func passes() {
        #expect(TestTimeAugmentation().passes == [Augmentation.Draw()])
        #expect(TestTimeAugmentation(flip: true).passes == [Augmentation.Draw(), Augmentation.Draw(flip: true)])
        #expect(TestTimeAugmentation(shift: 2).passes == [Augmentation.Draw(), Augmentation.Draw(dx: 2, dy: 2), Augmentation.Draw(dx: -2, dy: -2)])
        #expect(TestTimeAugmentation(flip: true, shift: 1).passes.count == 6)
    }

    @Test("TTA's probabilities are the mean of its passes' probabilities (softmax, log-softmax, sigmoid, logit); mse averages outputs",
          arguments: [
            ("conv 2 3x3 pad 1; relu; flatten; dense 3", LossFunction.softmaxCrossEntropy),
            ("conv 2 3x3 pad 1; relu; flatten; dense 3; logsoftmax", .negativeLogLikelihood),
            ("flatten; dense 1; sigmoid", .binaryCrossEntropy),
            ("flatten; dense 1", .sigmoidBinaryCrossEntropy),
            ("flatten; dense 3", .meanSquaredError),
          ])
    func meanOfPasses(spec: String, loss: LossFunction) throws {
        let shape = [2, 4, 5]
        let data = try randomData(count: 3, shape: shape, seed: 8)
        let network = try Sequential(spec: spec, inputShape: shape, seed: 6)
        let tta = TestTimeAugmentation(flip: true, shift: 1)
        let fill: [Float] = [-0.5, 0.25]
        let combined = try testTimeOutputs(network, data.images, tta: tta, fill: fill, loss: loss)
        let width = combined.count / 3
        let per = shape.reduce(1, *)
        for n in 0..<3 {
            let image = Array(data.images.scalars[(n * per)..<((n + 1) * per)])
            var mean = [Double](repeating: 0, count: loss == .meanSquaredError ? width : max(width, 2))
            for pass in tta.passes {
                let x = try Tensor(shape: [1] + shape, scalars: referencePass(image, shape: shape, pass: pass, fill: fill))
                let row = try network.forward(x, training: false).scalars
                let each = loss == .meanSquaredError ? row : Classifier.probabilities(row, loss: loss)
                for j in mean.indices { mean[j] += Double(each[j]) / Double(tta.passes.count) }
            }
            let row = Array(combined.scalars[(n * width)..<((n + 1) * width)])
            let got = loss == .meanSquaredError ? row : Classifier.probabilities(row, loss: loss)
            for j in mean.indices { #expect(abs(Double(got[j]) - mean[j]) < 1e-5, "image \(n) class \(j): \(got) vs \(mean)") }
        }
        // One pass (none) is the plain forward pass.
        let plain = try network.forward(data.images, training: false).scalars
        #expect(try testTimeOutputs(network, data.images, tta: nil, fill: [], loss: loss).scalars == plain)
    }

    @Test("model.npz records --tta and its fill; Classifier and evaluate classify alike; a damaged record is refused")
    func archiveAndClassifier() throws {
        let shape = [1, 4, 5]
        let data = try randomData(count: 6, shape: shape, seed: 2)
        let network = try Sequential(spec: "conv 2 3x3 pad 1; relu; flatten; dense 3", inputShape: shape, seed: 3)
        let tta = TestTimeAugmentation(flip: true, shift: 1)
        let url = try makeTemporaryFolder().appendingPathComponent("model.npz")
        try ModelArchive(network: network, modelName: "custom", loss: .softmaxCrossEntropy, classNames: data.classNames, normalization: .identity,
                         testTimeAugmentation: tta, testTimeFill: [-1]).write(to: url)
        let archive = try ModelArchive.read(from: url)
        #expect(archive.testTimeAugmentation == tta && archive.testTimeFill == [-1])
        let classifier = try Classifier(archive: ModelArchive.read(from: url))
        #expect(classifier.testTimeAugmentation == tta)
        let expected = try testTimeOutputs(network, data.images, tta: tta, fill: [-1], loss: .softmaxCrossEntropy)
        #expect(try classifier.outputs(data.images).scalars == expected.scalars)
        let evaluation = try evaluate(archive.network, on: data, loss: .softmaxCrossEntropy, tta: tta, fill: [-1])
        #expect(try classifier.predict(data.images).map(\.label) == evaluation.predictions)
        let plain = try evaluate(network, on: data, loss: .softmaxCrossEntropy)
        #expect(try Classifier(archive: ModelArchive(network: network, modelName: "c", loss: .softmaxCrossEntropy, classNames: data.classNames,
                                                        normalization: .identity)).predict(data.images).map(\.label) == plain.predictions)

        var arrays = try NumPyArchive.read(from: url)
        arrays["meta.tta"] = NumPyArray(string: "spin")
        let bad = url.deletingLastPathComponent().appendingPathComponent("bad.npz")
        try NumPyArchive.write(arrays.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, to: bad, compressed: false)
        #expect { try ModelArchive.read(from: bad) } throws: { "\($0)".contains("meta.tta") }
        arrays["meta.tta"] = NumPyArray(string: "shift=1")
        arrays["meta.tta_fill"] = nil
        try NumPyArchive.write(arrays.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, to: bad, compressed: false)
        #expect { try ModelArchive.read(from: bad) } throws: { "\($0)".contains("meta.tta_fill") }
    }
}

@Suite("Alternating flips (--augment flip=alternate)")
struct AlternatingFlipTests {
    @Test("each image flips every other epoch, from a seeded coin of its own; the coins differ between images")
    func alternates() {
        var first: [Bool] = []
        for image in 0..<64 {
            let e0 = Augmentation.alternatingFlip(seed: 7, image: image, epoch: 0)
            first.append(e0)
            for epoch in 1..<6 { #expect(Augmentation.alternatingFlip(seed: 7, image: image, epoch: epoch) == (e0 != (epoch % 2 == 1))) }
        }
        #expect(first.contains(true) && first.contains(false))
        #expect((0..<64).map { Augmentation.alternatingFlip(seed: 8, image: $0, epoch: 0) } != first)
    }

    @Test("the augmenter mirrors an image by its index in the training set, wherever it sits in the batch")
    func byIndex() throws {
        let shape = [1, 2, 3]
        let images = try Tensor(shape: [2] + shape, scalars: (0..<12).map(Float.init))
        let augmenter = try BatchAugmenter(Augmentation(alternateFlips: true), seed: 3, channels: 1, height: 2, width: 3, fill: [0])
        for epoch in 0..<3 {
            for indices in [[5, 9], [9, 5]] {
                var x = images
                augmenter.apply(to: &x, epoch: epoch, batch: indices[0], firstRow: 0, indices: indices)
                for (row, index) in indices.enumerated() {
                    let original = Array(images.scalars[(row * 6)..<(row * 6 + 6)])
                    let flipped = [original[2], original[1], original[0], original[5], original[4], original[3]]
                    let want = Augmentation.alternatingFlip(seed: 3, image: index, epoch: epoch) ? flipped : original
                    #expect(Array(x.scalars[(row * 6)..<(row * 6 + 6)]) == want)
                }
            }
        }
    }

    @Test("flip=alternate parses, prints back and reads old settings without the field")
    func parsing() throws {
        let a = try Augmentation(parsing: "shift=2,flip=alternate")
        #expect(a == Augmentation(shift: 2, flip: true, alternateFlips: true))
        #expect(a.description == "shift=2,flip=alternate")
        #expect(try Augmentation(parsing: a.description) == a)
        #expect(try Augmentation(parsing: "flip") != a)
        let old = try JSONDecoder().decode(Augmentation.self, from: Data(#"{"shift":2,"flip":true,"erase":0}"#.utf8))
        #expect(old == Augmentation(shift: 2, flip: true))
        #expect { try Augmentation(parsing: "flip=sometimes") } throws: { "\($0)".contains("flip=alternate") }
    }
}

@Suite("convnet train --ema --tta", .serialized)
struct AveragingCLITests {
    @Test("model.npz holds the average and meta.tta, the checkpoint both; eval repeats the run's accuracy; resume checks both; export says it leaves TTA out")
    func endToEnd() throws {
        let dir = try makeTemporaryFolder()
        let run = dir.appendingPathComponent("run")
        let r = try convnet(["train", "--model", "toy", "--epochs", "2", "--ema", "0.9", "--tta", "flip,shift=1", "--augment", "flip=alternate",
                             "--no-report", "--json", "--out", run.path])
        try #require(r.status == 0, "\(r.stderr)")
        let trained = try #require(try r.json()["test_accuracy"] as? Double)
        let modelURL = run.appendingPathComponent("model.npz")
        let archive = try ModelArchive.read(from: modelURL)
        #expect(archive.testTimeAugmentation == TestTimeAugmentation(flip: true, shift: 1))
        #expect(archive.testTimeFill.count == 1)
        let checkpoint = try Checkpoint.read(from: run.appendingPathComponent("checkpoint.npz"))
        for p in archive.network.parameters + archive.network.buffers { #expect(checkpoint.weightAverage[p.name] == p.value, "\(p.name)") }
        #expect(checkpoint.model.network.parameters.map(\.value) != archive.network.parameters.map(\.value))

        let eval = try convnet(["eval", "--weights", modelURL.path, "--json"])
        try #require(eval.status == 0, "\(eval.stderr)")
        #expect(try eval.json()["test_accuracy"] as? Double == trained)
        let words = try convnet(["eval", "--weights", modelURL.path])
        #expect(words.stdout.contains("test-time augmentation flip,shift=1 (6 passes averaged)"), "\(words.stdout)")

        let export = try convnet(["export", "--weights", modelURL.path, "-o", dir.appendingPathComponent("m.onnx").path])
        #expect(export.status == 0 && export.stderr.contains("leaves it out"), "\(export.stderr)")

        let other = try convnet(["train", "--resume", run.path, "--epochs", "3", "--ema", "0.99"])
        #expect(other.status == 64 && other.stderr.contains("--ema 0.99 contradicts"), "\(other.stderr)")
        let noTTA = try convnet(["train", "--resume", run.path, "--epochs", "3", "--tta", "none"])
        #expect(noTTA.status == 64 && noTTA.stderr.contains("contradicts"), "\(noTTA.stderr)")
        let more = try convnet(["train", "--resume", run.path, "--epochs", "3", "--no-report"])
        #expect(more.status == 0, "\(more.stderr)")
    }
}
