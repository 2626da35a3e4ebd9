import Foundation
import Testing

@testable import ConvNet

/// A small report built from the toy network and toy data.
func toyReport(testCount: Int = 40) throws -> (RunReport, Sequential, Dataset) {
    let network = try Sequential(spec: ToySquares.spec, inputShape: [1, 6, 6], seed: 3)
    let test = try ToySquares.make(count: testCount, seed: 11)
    let report = try RunReport.make(
        network: network, test: test, metrics: sampleMetrics(),
        settings: [("model", "toy"), ("optimizer", "sgd <lr 0.1>")], title: "Toy report")
    return (report, network, test)
}

@Suite("HTML report")
struct ReportTests {
    @Test func buildsInputsFromNetworkAndTestSet() throws {
        let (report, network, test) = try toyReport()
        let counts = try #require(report.confusionMatrix)
        #expect(counts.count == 2 && counts.allSatisfy { $0.count == 2 })
        #expect(counts.flatMap { $0 }.reduce(0, +) == test.count)
        #expect(report.misclassifiedTotal == counts[0][1] + counts[1][0])
        #expect(report.misclassified.count == min(24, report.misclassifiedTotal!))
        #expect(report.firstLayerFilters?.shape == [1, 1, 3, 3])
        #expect(report.featureMaps.count == 3)  // the first image of each class, then the next ones
        #expect(report.featureMaps[0].caption.contains("noise") && report.featureMaps[1].caption.contains("square"))
        #expect(report.featureMaps.allSatisfy { $0.activations.shape == [1, 4, 4] && $0.image.shape == [1, 6, 6] })
        #expect(report.network.map(\.layer) == ["input"] + network.layers.map(\.name))
        #expect(report.network.reduce(0) { $0 + $1.parameters } == network.parameterCount)

        // The feature maps are the first layer's output for those images.
        let sample = report.featureMaps[0]
        let conv = network.layers[0] as! Conv2D
        let expected = try conv2d(try sample.image.reshaped([1, 1, 6, 6]), weight: conv.weight.value, bias: conv.bias.value)
        #expect(expected.scalars == sample.activations.scalars)

        // Predictions agree with the network's forward pass.
        let output = try network.forward(test.images, training: false)
        let predicted = output.scalars.map { $0 > 0.5 ? 1 : 0 }
        #expect(zip(predicted, test.labels).filter { $0 == $1 }.count == counts[0][0] + counts[1][1])
    }

    @Test func writesSelfContainedPageAndSVGs() throws {
        let dir = try temporaryDirectory("report")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (report, _, _) = try toyReport()
        let url = try ReportWriter.write(report, to: dir)
        #expect(url.lastPathComponent == "report.html")
        // CONVNET_KEEP_REPORT=DIR keeps a copy to look at (for example with chromium --screenshot).
        if let keep = ProcessInfo.processInfo.environment["CONVNET_KEEP_REPORT"] {
            try ReportWriter.write(report, to: URL(fileURLWithPath: keep))
            try Data(ToyWalkthrough.make(seed: 0).html().utf8).write(to: URL(fileURLWithPath: keep).appendingPathComponent("explain.html"))
        }
        let html = try String(contentsOf: url, encoding: .utf8)
        for file in ["loss.svg", "loss_per_epoch.svg", "accuracy.svg", "learning_rate.svg", "confusion_matrix.svg", "filters.svg", "feature_maps.svg", "misclassified.svg"] {
            let svg = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            try checkWellFormed(svg)
            #expect(html.contains("href=\"\(file)\""))
        }
        // No external resources: the only URLs are the SVG namespace and links to the files beside it.
        let external = html.components(separatedBy: "http").dropFirst().filter { !$0.hasPrefix("://www.w3.org/2000/svg") }
        #expect(external.isEmpty)
        #expect(!html.contains("<link") && !html.contains("src=\"http") && !html.contains("@import"))
        #expect(html.contains("@media print"))
        #expect(html.contains("sgd &lt;lr 0.1&gt;"))
        #expect(html.contains("<h1>Toy report</h1>"))
        #expect(html.components(separatedBy: "<svg").count - 1 == 8)
    }

    @Test func convenienceFunctionAndOptionalParts() throws {
        let dir = try temporaryDirectory("report2")
        defer { try? FileManager.default.removeItem(at: dir) }
        let network = try Sequential(spec: "dense 3", inputShape: [4], seed: 1)
        let url = try writeReport(directory: dir, network: network, test: nil, metrics: nil, settings: [])
        let html = try String(contentsOf: url, encoding: .utf8)
        #expect(html.contains("<h2>Network</h2>") && !html.contains("<svg"))
        let wrongShape = try ToySquares.make(count: 2, seed: 1)
        #expect(throws: ShapeError.self) { try writeReport(directory: dir, network: network, test: wrongShape, metrics: nil, settings: []) }
    }
}
