import Testing
@testable import ConvNet

/// `ConvPlan`: the measured rules on the zoo's layers, the batch split, the mode, and forcing.
@Suite("Convolution plans")
struct ConvPlanTests {
    static func geometry(_ input: [Int], filters: Int, kernel: Int, padding: Padding) throws -> ConvGeometry {
        try ConvGeometry(
            inChannels: input[0], inHeight: input[1], inWidth: input[2], outChannels: filters, kernelHeight: kernel,
            kernelWidth: kernel, strideH: 1, strideW: 1, padding: padding, operation: "test")
    }

    struct Expected: Sendable, CustomTestStringConvertible {
        var label: String
        var input: [Int], filters: Int, kernel: Int, padding: Padding
        var forward: ConvPlan.Forward, weightGradient: ConvPlan.WeightGradient, inputGradient: ConvPlan.InputGradient
        var pooledBackward: ConvPlan.PooledBackward
        var testDescription: String { label }
    }

    /// What the comments in `ConvPlan.init` say each zoo layer runs.
    static let zoo: [Expected] = [
        Expected(label: "tiny-cnn conv", input: [1, 14, 14], filters: 3, kernel: 3, padding: .symmetric(1),
                 forward: .direct, weightGradient: .dot, inputGradient: .col2im, pooledBackward: .lanes8),
        Expected(label: "lenet5 conv1", input: [1, 32, 32], filters: 6, kernel: 5, padding: .valid,
                 forward: .direct, weightGradient: .dot, inputGradient: .col2im, pooledBackward: .lanes8),
        Expected(label: "lenet5 conv2", input: [6, 14, 14], filters: 16, kernel: 5, padding: .valid,
                 forward: .implicit, weightGradient: .implicit, inputGradient: .col2im, pooledBackward: .lanes8),
        Expected(label: "tf-cnn conv1", input: [1, 28, 28], filters: 32, kernel: 10, padding: .same,
                 forward: .implicit, weightGradient: .dot, inputGradient: .col2im, pooledBackward: .lanes16),
        Expected(label: "tf-cnn conv2", input: [32, 14, 14], filters: 16, kernel: 5, padding: .same,
                 forward: .implicit, weightGradient: .implicit, inputGradient: .implicit, pooledBackward: .lanes8),
        Expected(label: "two-conv conv1", input: [1, 28, 28], filters: 50, kernel: 3, padding: .symmetric(1),
                 forward: .im2col, weightGradient: .dot, inputGradient: .col2im, pooledBackward: .dense),
        Expected(label: "two-conv conv2", input: [50, 14, 14], filters: 100, kernel: 3, padding: .symmetric(1),
                 forward: .winograd, weightGradient: .winograd, inputGradient: .winograd, pooledBackward: .dense),
        Expected(label: "vgg-bn conv2", input: [32, 28, 28], filters: 32, kernel: 3, padding: .symmetric(1),
                 forward: .implicit, weightGradient: .implicit, inputGradient: .implicit, pooledBackward: .dense),
        Expected(label: "fast-bn conv2, vgg-bn conv3", input: [32, 14, 14], filters: 64, kernel: 3, padding: .symmetric(1),
                 forward: .implicit, weightGradient: .implicit, inputGradient: .implicit, pooledBackward: .dense),
        Expected(label: "vgg-bn conv4", input: [64, 14, 14], filters: 64, kernel: 3, padding: .symmetric(1),
                 forward: .winograd, weightGradient: .winograd, inputGradient: .winograd, pooledBackward: .dense),
    ]

    @Test("The measured rules give the zoo's layers the paths their comments name", arguments: zoo)
    func zooPlans(_ e: Expected) throws {
        let g = try Self.geometry(e.input, filters: e.filters, kernel: e.kernel, padding: e.padding)
        let plan = ConvPlan(g, batch: 64, context: ExecutionContext(threads: 2))
        #expect(plan.forward == e.forward)
        #expect(plan.weightGradient == e.weightGradient)
        #expect(plan.inputGradient == e.inputGradient)
        #expect(plan.pooledBackward == e.pooledBackward)
        // tiny-cnn's layer has too little work to wake a second thread.
        #expect(plan.batchParts == (e.label == "tiny-cnn conv" ? 1 : 2))
        #expect(!plan.poolsInCache)
        // Pooling in cache: only in inference, and only where the stage fuses the pooling (`ConvStage`).
        let pooledStage = ConvPlan(g, batch: 64, context: ExecutionContext(threads: 2), mode: .inference, fusion: .reluMaxPool)
        #expect(pooledStage.poolsInCache == (e.pooledBackward != .dense))
        #expect(!ConvPlan(g, batch: 64, context: ExecutionContext(threads: 2), mode: .inference, fusion: .relu).poolsInCache)
        #expect(ConvPlan(g, batch: 64, context: ExecutionContext(threads: 2), mode: .training, fusion: .reluMaxPool).backwardThroughWinners
            == (e.pooledBackward != .dense))
        #expect(pooledStage.description.hasPrefix("fused relu, maxpool, forward \(e.forward.rawValue)"))
        // A forced choice is taken where the geometry allows it, in the context that forces it only.
        let other: ConvPlan.Forward = e.forward == .im2col ? .implicit : .im2col
        let forcing = ExecutionContext(threads: 2, convolution: ConvPlan.Choices(forward: other, pooledBackward: .dense))
        let forced = ConvPlan(g, batch: 64, context: forcing, mode: .inference, fusion: .reluMaxPool)
        #expect(forced.forward == other && forced.pooledBackward == .dense && !forced.poolsInCache)
        #expect(forced.weightGradient == e.weightGradient)
        #expect(ConvPlan(g, batch: 64, context: ExecutionContext(threads: 2)) == plan)
    }

    @Test("Choices the geometry does not allow fall back to the measured rule")
    func disallowedChoices() throws {
        // Two channels: no direct kernel. Stride 2: no implicit input gradient. 10 wide: no 8-lane rows.
        let g = try ConvGeometry(
            inChannels: 2, inHeight: 12, inWidth: 12, outChannels: 4, kernelHeight: 3, kernelWidth: 10, strideH: 2,
            strideW: 1, padding: .valid, operation: "test")
        let measured = ConvPlan(g, batch: 4, context: ExecutionContext(threads: 1))
        do {
            let choices = ConvPlan.Choices(forward: .direct, inputGradient: .implicit, pooledBackward: .lanes8)
            let plan = ConvPlan(g, batch: 4, context: ExecutionContext(threads: 1, convolution: choices))
            #expect(plan.forward == measured.forward && plan.forward != .direct)
            #expect(plan.inputGradient == .col2im)
            #expect(plan.pooledBackward == measured.pooledBackward && plan.pooledBackward != .lanes8)
            // Not 3x3 at stride 1: no Winograd.
            let winograd = ConvPlan.Choices(forward: .winograd, inputGradient: .winograd)
            let fallback = ConvPlan(g, batch: 4, context: ExecutionContext(threads: 1, convolution: winograd))
            #expect(fallback.forward == measured.forward && fallback.inputGradient == measured.inputGradient)
        }
        // The implicit input gradient only comes with the implicit weight gradient.
        let h = try Self.geometry([16, 8, 8], filters: 4, kernel: 3, padding: .symmetric(1))
        #expect(ConvPlan(h, batch: 4, context: ExecutionContext(threads: 1)).inputGradient == .implicit)
        let dotFirst = ExecutionContext(threads: 1, convolution: ConvPlan.Choices(weightGradient: .dot, inputGradient: .implicit))
        let plan = ConvPlan(h, batch: 4, context: dotFirst)
        #expect(plan.weightGradient == .dot && plan.inputGradient == .col2im)
        // The Winograd input gradient comes with any weight gradient; Winograd only where forced.
        let winograd = ConvPlan(
            h, batch: 4,
            context: ExecutionContext(threads: 1, convolution: ConvPlan.Choices(forward: .winograd, weightGradient: .dot, inputGradient: .winograd)))
        #expect(winograd.forward == .winograd && winograd.weightGradient == .dot && winograd.inputGradient == .winograd)
        #expect(ConvPlan(h, batch: 4, context: ExecutionContext(threads: 1)).forward != .winograd)
        // The Winograd weight gradient: where forced and the geometry allows it, with the Winograd input
        // gradient unless col2im is forced (the implicit one only comes with the implicit weight gradient).
        let winogradWeight = ConvPlan.Choices(weightGradient: .winograd, inputGradient: .implicit)
        let weightPlan = ConvPlan(h, batch: 4, context: ExecutionContext(threads: 1, convolution: winogradWeight))
        #expect(weightPlan.weightGradient == .winograd && weightPlan.inputGradient == .winograd)
        let withColumns = ConvPlan.Choices(weightGradient: .winograd, inputGradient: .col2im)
        #expect(ConvPlan(h, batch: 4, context: ExecutionContext(threads: 1, convolution: withColumns)).inputGradient == .col2im)
        #expect(ConvPlan(h, batch: 4, context: ExecutionContext(threads: 1)).weightGradient != .winograd)
        let notWinograd = ConvPlan(g, batch: 4, context: ExecutionContext(threads: 1, convolution: winogradWeight))
        #expect(notWinograd.weightGradient == measured.weightGradient)
    }

    @Test("--conv-algorithm: direct never takes Winograd, winograd takes it on every 3x3 stride-1 layer with channels, auto follows the measured rule")
    func algorithms() throws {
        // The zoo's convolutions and a few others: 3x3 with many and with one input channel, 5x5, stride 2.
        let shapes: [(input: [Int], filters: Int, kernel: Int, stride: Int)] = [
            ([50, 14, 14], 100, 3, 1), ([32, 14, 14], 64, 3, 1), ([1, 28, 28], 50, 3, 1), ([6, 14, 14], 16, 5, 1),
            ([32, 28, 28], 32, 3, 1), ([8, 9, 9], 4, 3, 2),
        ]
        for s in shapes {
            let g = try ConvGeometry(
                inChannels: s.input[0], inHeight: s.input[1], inWidth: s.input[2], outChannels: s.filters, kernelHeight: s.kernel,
                kernelWidth: s.kernel, strideH: s.stride, strideW: s.stride, padding: .symmetric(s.kernel / 2), operation: "test")
            for batch in [1, 64] {
                let auto = ConvPlan(g, batch: batch, context: ExecutionContext(threads: 2))
                let direct = ConvPlan(g, batch: batch, context: ExecutionContext(threads: 2, algorithm: .direct))
                let winograd = ConvPlan(g, batch: batch, context: ExecutionContext(threads: 2, algorithm: .winograd))
                #expect(direct.forward != .winograd && direct.weightGradient != .winograd && direct.inputGradient != .winograd)
                let suits = s.kernel == 3 && s.stride == 1 && s.input[0] > 1
                // auto: the measured rule, Winograd from 48 input channels; else direct.
                #expect((auto.forward == .winograd) == (suits && s.input[0] >= 48), "\(s)")
                #expect((auto.weightGradient == .winograd) == (suits && s.input[0] >= 48), "\(s)")
                #expect((auto.inputGradient == .winograd) == (suits && s.input[0] >= 48), "\(s)")
                if !suits || s.input[0] < 48 { #expect(auto.description == direct.description) }
                #expect((winograd.forward == .winograd) == suits, "\(s)")
                #expect((winograd.weightGradient == .winograd) == suits, "\(s)")
                #expect((winograd.inputGradient == .winograd) == suits, "\(s)")
                if !suits { #expect(winograd.description == direct.description) }
                // Forced paths still win over the algorithm (`convnet bench conv --forward ...`).
                let forced = ConvPlan(
                    g, batch: batch,
                    context: ExecutionContext(threads: 2, algorithm: .winograd, convolution: ConvPlan.Choices(forward: .im2col, inputGradient: .col2im)))
                #expect(forced.forward == .im2col && forced.inputGradient == .col2im)
            }
        }
        #expect(try ConvAlgorithm(named: "Winograd") == .winograd)
        #expect(throws: ValueError.self) { try ConvAlgorithm(named: "fft") }
    }

    @Test("The batch is split across threads only with enough samples and work")
    func batchSplit() throws {
        let g = try Self.geometry([6, 14, 14], filters: 16, kernel: 5, padding: .valid)
        #expect(ConvPlan(g, batch: 64, context: ExecutionContext(threads: 3)).batchParts == 3)
        #expect(ConvPlan(g, batch: 200, context: ExecutionContext(threads: 200)).batchParts == 200)
        #expect(ConvPlan(g, batch: 64, context: ExecutionContext(threads: 200)).batchParts == 1)
        #expect(ConvPlan(g, batch: 1, context: ExecutionContext(threads: 2)).batchParts == 1)
        // tiny-cnn's layer: too little work to wake a second thread.
        let tiny = try Self.geometry([1, 14, 14], filters: 3, kernel: 3, padding: .symmetric(1))
        #expect(ConvPlan(tiny, batch: 64, context: ExecutionContext(threads: 2)).batchParts == 1)
    }
}
