import Foundation
import Testing
import ConvNet  // not @testable, like the README's reader

/// The README's example that saves a network trained in Swift as model.npz and classifies an image file
/// with it, compiled and run against the public API. Between the markers the code is the README's block
/// line for line (checked below), indented by 8 spaces; it continues the "In Swift" program, whose `net`
/// and `data` are this function's parameters.
func readmeSaveAndClassifyExample(net: Sequential, data: DataSplit, modelFile: URL, imageFile: URL) throws
    -> (archive: ModelArchive, probabilities: [Float], best: Int) {
        // README example begins
        // modelFile: where to write, e.g. URL(fileURLWithPath: "model.npz"); imageFile: a PNG or PGM/PPM of a
        // digit, light on dark as MNIST's digits are (a dark-on-light drawing must be inverted first).
        let archive = ModelArchive(network: net, modelName: "my-cnn", loss: .softmaxCrossEntropy,
                                   classNames: data.test.classNames, normalization: .identity, dataset: "mnist-sample")
        try archive.write(to: modelFile)               // .identity: the images above were not normalised

        let picture = try Picture.read(from: imageFile)                                     // any size, gray or colour
        let input = try picture.fitted(to: net.inputShape).reshaped([1] + net.inputShape)  // 1 x 1 x 28 x 28
        let probabilities = Classifier.probabilities(try net.forward(input).scalars, loss: .softmaxCrossEntropy)
        let best = probabilities.indices.max { probabilities[$0] < probabilities[$1] }!
        print("class", data.test.classNames[best], "probability", probabilities[best])
        // README example ends
        return (archive, probabilities, best)
}

@Suite("The README's save-and-classify example")
struct SaveAndClassifyReadmeTests {
    @Test("writes a model.npz that Classifier reads and classifies a PNG file as Classifier does")
    func runs() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("convnet-readme-save-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = try DatasetCatalog.load("mnist-sample", options: DatasetOptions(trainCount: 100))
        let net = try Sequential(inputShape: [1, 28, 28], seed: 1) {
            Conv2D(filters: 8, kernel: 3, padding: 1)
            ReLU()
            MaxPool2D(kernel: 2)
            Flatten()
            Dense(units: 10)
        }
        // One image of the test set as an 8-bit PNG.
        let first = Array(data.test.images.scalars.prefix(784))
        let png = directory.appendingPathComponent("digit.png")
        let bytes = try PNGEncoder.encode(width: 28, height: 28, colorType: .grayscale, pixels: first.map { UInt8(($0 * 255).rounded()) })
        try Data(bytes).write(to: png)
        let modelFile = directory.appendingPathComponent("model.npz")
        let (archive, probabilities, best) = try readmeSaveAndClassifyExample(net: net, data: data, modelFile: modelFile, imageFile: png)
        #expect(probabilities.count == 10)
        #expect(abs(probabilities.reduce(0, +) - 1) < 1e-4)
        // The file holds the network: read back, it classifies the picture with the same probabilities.
        let classifier = try Classifier(contentsOf: modelFile)
        #expect(classifier.spec == archive.network.spec && classifier.modelName == "my-cnn")
        let prediction = try #require(try classifier.predict([try Picture.read(from: png)]).first)
        #expect(prediction.label == best)
        #expect(zip(prediction.probabilities, probabilities).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    @Test("is the save-and-classify code block in README.md, line for line")
    func matchesReadme() throws {
        let block = try ReadmeBlocks.block(containing: "try archive.write(to: modelFile)")
        #expect(try ReadmeBlocks.markedCode(inFile: #filePath) == block)
    }
}

@Suite("The README's Package.swift lines")
struct PackageLinesReadmeTests {
    @Test("name the dependency by path and the product by that name")
    func namesThePackage() throws {
        let block = try ReadmeBlocks.block(containing: ".package(name: \"ConvNet\", path:")
        #expect(block.contains(".product(name: \"ConvNet\", package: \"ConvNet\")"))
    }
}
