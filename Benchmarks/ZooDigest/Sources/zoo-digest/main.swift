import ConvNet

/// FNV-1a over the bit patterns of every value: equal digests mean bit-identical tensors.
func digest(_ tensors: [Tensor]) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for t in tensors { for v in t.scalars { h = (h ^ UInt64(v.bitPattern)) &* 0x100_0000_01b3 } }
    return String(h, radix: 16)
}

// Every zoo network (lenet5 with 1 and 3 channels), every kernel level this CPU runs, 1, 2, 3 and 5 threads:
// 3 SGD steps (momentum 0.9) on seeded random batches of 37, then one inference pass. An argument names the
// convolution algorithm (`auto`, `direct` or `winograd`; default auto), so that `direct` on a new checkout
// can be compared with a checkout from before an algorithm existed:
// `swift run -c release --package-path Benchmarks/ZooDigest zoo-digest direct`.
let algorithm: ConvAlgorithm
do {
    algorithm = try ConvAlgorithm(named: CommandLine.arguments.dropFirst().first ?? "auto")
} catch {
    fatalError("zoo-digest [auto|direct|winograd]: \(error)")
}
let levels = KernelLevel.allCases.filter { $0 <= KernelLevel.cpu }
for model in ModelZoo.models {
    for channels in model.name == "lenet5" ? [1, 3] : [1] {
        for level in levels {
            for threads in [1, 2, 3, 5] {
                let context = ExecutionContext(threads: threads, kernelLevel: level, algorithm: algorithm)
                let shape = model.inputShape(channels: channels)
                let net = try Sequential(spec: model.spec, inputShape: shape, seed: 4, context: context)
                var random = SeededGenerator(seed: 8)
                let batch = 37, count = batch * shape.reduce(1, *)
                func batchTensor() throws -> Tensor {
                    try Tensor(shape: [batch] + shape, scalars: (0..<count).map { _ in random.uniform(-1, 1) })
                }
                let optimizer = SGD(learningRate: 0.05, momentum: 0.9)
                let classes = model.loss.isBinary ? 2 : net.outputShape.reduce(1, *)
                for _ in 0..<3 {
                    let x = try batchTensor()
                    let labels = (0..<batch).map { _ in Int(random.next() % UInt64(classes)) }
                    let y = try net.forward(x, training: true)
                    try net.backwardParameters(try model.loss.evaluate(output: y, labels: labels).gradient)
                    optimizer.step(net.parameters, context: context)
                }
                let logits = try net.forward(try batchTensor(), training: false)
                let weights = digest(net.parameters.map(\.value) + net.buffers.map(\.value))
                print("\(model.name) c\(channels) \(level.name) t\(threads) weights \(weights) logits \(digest([logits]))")
            }
        }
    }
}
