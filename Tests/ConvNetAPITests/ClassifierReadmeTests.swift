import Foundation
import Testing
import ConvNet  // not @testable, like the README's reader

/// The README's `Classifier` example, compiled and run against the public API. Between the markers the
/// code is the README's block line for line after its `import ConvNet` (checked below), indented by 8 spaces.
func readmeClassifierExample(model: URL, images: Tensor, png: URL) throws -> (results: [Prediction], fromFiles: [Prediction]) {
        // README example begins

        // model: the URL of a model.npz from `convnet train`; images: N x 1 x 28 x 28 pixel values in [0, 1]
        let classifier = try Classifier(contentsOf: model)
        let results = try classifier.predict(images)
        for r in results.prefix(3) { print(r.label, r.name, r.probabilities[r.label]) }
        let fromFiles = try classifier.predict([try Picture.read(from: png)])   // PNG or PGM/PPM, any size
        // README example ends
        return (results, fromFiles)
}

@Suite("The README's Classifier example")
struct ClassifierReadmeTests {
    @Test("runs on a saved two-conv and a PNG file")
    func runs() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("convnet-readme-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let zoo = try ModelZoo.model(named: "two-conv")
        let network = try Sequential(spec: zoo.spec, inputShape: zoo.inputShape, seed: 1)
        let model = directory.appendingPathComponent("model.npz")
        try ModelArchive(network: network, modelName: zoo.name, loss: zoo.loss, classNames: (0..<10).map(String.init),
                         normalization: .identity).write(to: model)
        let digits = try DatasetCatalog.load("mnist-sample").test
        let first = try Tensor(shape: [1, 1, 28, 28], scalars: Array(digits.images.scalars.prefix(784)))
        let png = directory.appendingPathComponent("digit.png")
        let bytes = try PNGEncoder.encode(width: 28, height: 28, colorType: .grayscale,
                                          pixels: first.scalars.map { UInt8(($0 * 255).rounded()) })
        try Data(bytes).write(to: png)
        let (results, fromFiles) = try readmeClassifierExample(model: model, images: first, png: png)
        #expect(results.count == 1 && fromFiles.count == 1)
        #expect(results[0].probabilities.count == 10)
        // The PNG holds the same digit, rounded to 8 bits.
        #expect(zip(results[0].outputs, fromFiles[0].outputs).allSatisfy { abs($0 - $1) < 0.05 })
    }

    @Test("is the Classifier code block in README.md, line for line")
    func matchesReadme() throws {
        let block = try ReadmeBlocks.block(containing: "Classifier(contentsOf")
        #expect("import ConvNet\n" + (try ReadmeBlocks.markedCode(inFile: #filePath)) == block)
    }
}
