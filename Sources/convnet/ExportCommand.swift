import ArgumentParser
import ConvNet
import Foundation

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write trained weights as an ONNX model (opset 17) for ONNX Runtime and other engines.",
        discussion: """
            The graph takes N x C x H x W float32 pixel values in [0, 1] (N dynamic) and applies the model's input \
            normalisation itself. --input-shape bakes in the fitting convnet train applied to the data set's images too \
            (2x2 averaging 28->14, zero padding 28->32, gray->RGB). The model, spec, classes and what was baked in are \
            in the file's metadata_props.
            """)

    @Option(help: "A model.npz written by convnet train.")
    var weights: String

    @Option(help: "The output format: onnx.")
    var format: String = "onnx"

    @Option(name: [.customShort("o"), .long], help: "The file to write (written atomically).")
    var output: String

    @Option(help: "Image shape CxHxW the graph takes, fitted to the network's input inside the graph (e.g. 1x28x28 for lenet5).")
    var inputShape: String?

    @OptionGroup var memoryBudgetOption: MemoryBudgetOption

    func validate() throws {
        guard format.lowercased() == "onnx" else {
            throw ValidationError("--format takes onnx, got '\(format)'")
        }
        if let inputShape, parseShape(inputShape) == nil {
            throw ValidationError("--input-shape takes C x H x W with positive sizes, like 1x28x28, got '\(inputShape)'")
        }
        try checkInputFile(weights, option: "--weights")
        try checkOutputFile(output, option: "--output")
    }

    func run() throws {
        let archive = try ModelArchive.read(from: URL(fileURLWithPath: weights), memoryBudget: memoryBudgetOption.budget)
        let dataShape = inputShape.flatMap(parseShape)
        let model = try ONNXExport.model(from: archive, dataShape: dataShape)
        let data = model.serialized()
        try AtomicFile.write(data, to: URL(fileURLWithPath: output), creatingFolder: false)
        let input = model.graph.inputs[0], out = model.graph.outputs[0]
        func dims(_ v: ONNXValueInfo) -> String {
            v.dims.map { d in
                switch d {
                case .size(let n): return String(n)
                case .named(let s): return s
                }
            }.joined(separator: "x")
        }
        print("wrote \(output) (\(data.count) bytes, ONNX IR \(ONNXModel.irVersion), opset \(ONNXModel.opsetVersion)): "
            + "input \(input.name) \(dims(input)), output \(out.name) \(dims(out)), \(model.graph.nodes.count) nodes")
        if let tta = archive.testTimeAugmentation {
            Terminal.error("note: the model classifies with test-time augmentation \(tta) in convnet (the mean of \(tta.passes.count) passes' "
                + "probabilities); the ONNX graph leaves it out and runs one pass on the image as it is")
        }
    }
}

/// `1x28x28` as [1, 28, 28]; nil unless every size is a positive integer (three of them).
func parseShape(_ text: String) -> [Int]? {
    let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
    guard parts.count == 3, parts.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
    return parts.map { $0! }
}
