import Foundation
@testable import ConvNet

/// Model archives (`model.npz`: spec, input shape, weights, normalisation, classes) and training
/// checkpoints (`checkpoint.npz`: the model plus optimizer state, progress and settings).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzModel(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: bytes, count: count)
    guard let ordered = try? NumPyArchive.parse(data, source: "fuzz.npz") else { return 0 }
    let arrays = Dictionary(ordered.map { ($0.name, $0.array) }, uniquingKeysWith: { a, _ in a })
    if let model = try? ModelArchive(arrays: arrays, path: "model.npz") {
        precondition(!model.network.layers.isEmpty)
    }
    // Checkpoint.read takes a file.
    let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("fuzz-checkpoint-\(getpid()).npz")
    guard (try? data.write(to: url)) != nil else { return 0 }
    _ = try? Checkpoint.read(from: url)
    return 0
}
