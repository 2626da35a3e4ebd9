import Foundation
@testable import ConvNet

/// The network spec text: parsing, the size check, and (for small networks) building it and one forward pass.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpec(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    guard let parsed = try? NetworkSpec.parse(text) else { return 0 }
    let shape = parsed.inputShape ?? [1, 12, 12]
    // Small limits keep one run well under a second in a debug, sanitized build.
    guard (try? NetworkSpec.checkSize(parsed, inputShape: shape, parameterLimit: 1 << 16, activationLimit: 1 << 14)) != nil,
          let network = try? Sequential(spec: text, inputShape: shape) else { return 0 }
    // Deep stacks of small layers pass the size limits and still take seconds under ASan: a finding of
    // time, not of correctness. Those are built and checked, but not run.
    guard network.forwardFlopsPerSample < 2e5, network.layers.count <= 32 else { return 0 }
    let input = Tensor(shape: [2] + shape)
    if let output = try? network.forward(input, training: true) {
        precondition(output.shape == [2] + network.outputShape)
        _ = try? network.backward(Tensor(shape: output.shape))
    }
    return 0
}
