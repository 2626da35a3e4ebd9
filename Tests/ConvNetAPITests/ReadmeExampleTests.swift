import Foundation
import Testing
import ConvNet  // not @testable, like the README's reader

/// The README's "In Swift" program, compiled and run here against the public API. Between the markers
/// the code is the README's code block line for line after its `import ConvNet` (checked below), indented
/// by 8 spaces.
func readmeExample() throws -> Double {
        // README example begins
        // The first 1,000 of the 4,000 bundled training digits, and the 1,000 test digits:
        // images N x 1 x 28 x 28 with values in [0, 1], labels 0...9.
        let data = try DatasetCatalog.load("mnist-sample", options: DatasetOptions(trainCount: 1000))

        let net = try Sequential(inputShape: [1, 28, 28], seed: 1) {
            Conv2D(filters: 8, kernel: 3, padding: 1)
            ReLU()
            MaxPool2D(kernel: 2)
            Flatten()
            Dense(units: 10)
        }
        print(net.summary)

        // One epoch of mini-batches, each a forward pass, the loss, a backward pass and an update.
        let optimizer = SGD(learningRate: 0.05, momentum: 0.9)
        var loader = try BatchLoader(dataset: data.train, batchSize: 32, seed: 1)
        for batch in loader.nextEpoch() {
            let logits = try net.forward(batch.images, training: true)
            let loss = try softmaxCrossEntropy(logits: logits, labels: batch.labels)
            try net.backward(loss.gradient)            // sets every parameter's .gradient
            optimizer.step(net.parameters)
        }
        let result = try evaluate(net, on: data.test, loss: .softmaxCrossEntropy)
        print("test accuracy", result.accuracy)

        // Your own images: N x C x H x W values in one flat array, row-major.
        let images = try Tensor(shape: [2, 1, 28, 28], scalars: [Float](repeating: 0.5, count: 2 * 28 * 28))
        let scores = try net.forward(images)           // 2 x 10 class scores
        print(scores.shape)
        // README example ends
        return result.accuracy
}

@Suite("The README's Swift example")
struct ReadmeExampleTests {
    @Test("runs and learns")
    func runs() throws {
        #expect(try readmeExample() > 0.5)
    }

    @Test("is the code block in README.md, line for line")
    func matchesReadme() throws {
        let block = try ReadmeBlocks.block(containing: "DatasetCatalog.load(\"mnist-sample\"")
        #expect("import ConvNet\n\n" + (try ReadmeBlocks.markedCode(inFile: #filePath)) == block)
    }
}
