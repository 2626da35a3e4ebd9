import Foundation
@testable import ConvNet

/// The memory budget itself: a network spec (text) or a model archive (a ZIP, `model.npz`) in; the
/// budget's verdict or a clean error out. A network it accepts is built and, when its arithmetic is small
/// enough for a sanitized debug build, run forward and backward on a batch of 2: what that allocates must
/// stay within the budget (the campaign runs with `-malloc_limit_mb` just above it, so any single
/// allocation beyond it is a finding).
let budget = MemoryBudget(bytes: 48 << 20)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBudget(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: bytes, count: count)
    let network: Sequential
    if data.starts(with: [0x50, 0x4B]) {
        guard let arrays = try? NumPyArchive.parse(data, source: "fuzz.npz"),
              let model = try? ModelArchive(arrays: arrays, path: "model.npz", memoryBudget: budget) else { return 0 }
        network = model.network
    } else {
        let text = String(decoding: data, as: UTF8.self)
        guard let parsed = try? NetworkSpec.parse(text),
              let built = try? Sequential(spec: text, inputShape: parsed.inputShape ?? [1, 12, 12], memoryBudget: budget) else { return 0 }
        network = built
    }
    // What was built fits: its weights, and one sample's inference (checked while building).
    precondition(network.memory.bytes(batch: 1, training: false).map { $0 <= budget.bytes } ?? false)
    guard (try? network.checkMemory(batch: 2, training: true)) != nil else { return 0 }
    precondition(network.memory.bytes(batch: 2, training: true).map { $0 <= budget.bytes } ?? false)
    guard network.forwardFlopsPerSample < 2e6 else { return 0 }
    let input = Tensor(shape: [2] + network.inputShape)
    if let output = try? network.forward(input, training: true) {
        precondition(output.shape == [2] + network.outputShape)
        _ = try? network.backward(Tensor(shape: output.shape))
    }
    return 0
}
