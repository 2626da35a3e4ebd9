import Foundation
import Testing
@testable import ConvNet

@Suite("convnet export and predict", .serialized)
struct ExportCLITests {
    @Test("export writes an ONNX file with the weights and metadata; bad options exit 64, an unfit shape exits 1")
    func export() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("convnet-export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let trained = try trainBriefly(name: "tiny-cnn", spec: ModelZoo.model(named: "tiny-cnn").spec, zooInput: [1, 14, 14],
                                       loss: .softmaxCrossEntropy, dataset: "mnist-sample", in: directory, testCount: 4)
        let onnx = directory.appendingPathComponent("tiny.onnx").path
        let ok = try convnet(["export", "--weights", trained.modelURL.path, "--format", "onnx", "-o", onnx, "--input-shape", "1x28x28"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("input image Nx1x28x28, output logits Nx10"))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: onnx))
        // The weights are in the file as raw little-endian floats.
        let weight = try #require(try ModelArchive.read(from: trained.modelURL).network.parameters.first).value.scalars
        let raw = weight.withUnsafeBufferPointer { Data(buffer: $0) }
        #expect(bytes.range(of: raw) != nil)
        #expect(bytes.range(of: Data("convnet.input_fitting".utf8)) != nil)

        let badFormat = try convnet(["export", "--weights", trained.modelURL.path, "--format", "tflite", "-o", onnx])
        #expect(badFormat.status == 64)
        #expect(badFormat.stderr.contains("--format takes onnx"))
        let badShape = try convnet(["export", "--weights", trained.modelURL.path, "-o", onnx, "--input-shape", "28x28"])
        #expect(badShape.status == 64)
        let unfit = try convnet(["export", "--weights", trained.modelURL.path, "-o", directory.appendingPathComponent("x.onnx").path,
                                 "--input-shape", "3x28x28"])
        #expect(unfit.status == 1)
        #expect(unfit.stderr.contains("3x28x28"))
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("x.onnx").path))
        // The earlier file is untouched by the failed exports.
        #expect(try Data(contentsOf: URL(fileURLWithPath: onnx)) == bytes)
    }
}
