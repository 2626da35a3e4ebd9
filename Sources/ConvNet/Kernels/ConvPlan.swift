/// The convolution algorithm of the 3x3 stride-1 layers (`convnet train|eval|bench --conv-algorithm`).
/// "direct" is every path that computes the sum of products as written (im2col + GEMM, the implicit GEMM,
/// the one-channel direct kernel: `ConvPlan`'s rules choose among them), as against Winograd's transformed
/// products, which round differently. The same seed, thread count and algorithm give the same weights.
public enum ConvAlgorithm: String, CaseIterable, Sendable, Codable {
    /// `ConvPlan`'s measured rule for each layer shape.
    case auto
    /// Never Winograd.
    case direct
    /// Winograd F(2x2, 3x3) on every layer it suits (`WinogradPlan.suits`: 3x3, stride 1, more than one
    /// input channel), whether or not it measured faster there.
    case winograd

    /// The algorithm called `name` (any case).
    public init(named name: String) throws(ValueError) {
        guard let a = ConvAlgorithm(rawValue: name.lowercased()) else {
            throw .invalidArgument(
                "unknown convolution algorithm '\(name)'; the algorithms are \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = a
    }
}

/// How one convolution layer runs: the kernel of each pass and the batch split, chosen by `ConvPlan.init`
/// from the layer's shape, the batch size, the execution context (its threads and forced paths) and the
/// mode. Every measured rule lives in that one function (1 thread, release, on the 2-core machine unless
/// said otherwise); the executors (`Ops/ConvolutionColumns.swift`, `Ops/ConvolutionImplicit.swift`,
/// `Ops/ConvolutionWinograd.swift`, `Ops/ConvPoolBackward.swift`) only follow it. Tests and `convnet
/// bench conv` force choices through `ExecutionContext.convolution`.
///
/// To add a path: a case in the pass's enum, its rule (and where the geometry allows it, `allows`) in
/// `init`, and its executor in `conv2dForward` / `conv2dBackward`.
public struct ConvPlan: Equatable, Sendable, CustomStringConvertible {
    public enum Forward: String, CaseIterable, Sendable {
        /// A direct convolution of a padded copy of each one-channel sample (`cn_conv_direct_c1`), no column matrix.
        case direct
        /// im2col + GEMM per sample; a 1x1, stride-1, unpadded layer uses its input as the column matrix.
        case im2col
        /// Implicit GEMM from a padded copy of each sample (`ImplicitConvPlan`).
        case implicit
        /// Winograd F(2x2, 3x3) (`WinogradPlan`): 3x3 kernels at stride 1 only.
        case winograd
    }

    public enum WeightGradient: String, CaseIterable, Sendable {
        /// Dot products of rows of dL/dy and of the column matrix (`Gemm.dotNT`).
        case dot
        /// The packed GEMM, dL/dy times the column matrix transposed.
        case gemm
        /// Implicit GEMM from the padded sample and the transposed dL/dy; the input gradient is then
        /// computed in the same pass (`InputGradient`).
        case implicit
        /// Winograd F(2x2, 3x3) (`WinogradPlan`): dL/dw = G^T [sum over tiles of (A dy A^T) . (B^T d B)] G;
        /// 3x3 kernels at stride 1 only; the input gradient runs separately (Winograd or col2im).
        case winograd
    }

    public enum InputGradient: String, CaseIterable, Sendable {
        /// W^T dL/dy per sample, then col2im (a pointwise layer writes dL/dx directly).
        case col2im
        /// The stride-1 adjoint as a convolution of the padded dL/dy with the flipped weight; only with
        /// the implicit weight gradient.
        case implicit
        /// The stride-1 adjoint as a Winograd F(2x2, 3x3) convolution of dL/dy with the flipped weight
        /// (`WinogradPlan`): 3x3 kernels at stride 1 only; with any weight gradient.
        case winograd
    }

    /// conv -> ReLU -> maxpool backward through the pooling's winners (`conv2dBackwardThroughMaxPool`),
    /// with kernel rows padded to 8 or 16 lanes, or the layers' dense backward passes in turn.
    public enum PooledBackward: String, CaseIterable, Sendable {
        case dense
        case lanes8 = "8 lanes"
        case lanes16 = "16 lanes"

        /// Floats per kernel row (nil: dense).
        var lanes: Int? { self == .lanes8 ? 8 : self == .lanes16 ? 16 : nil }
    }

    /// Training keeps every layer's output for backward; inference may pool a conv -> ReLU -> maxpool's
    /// samples in cache.
    public enum Mode: Sendable { case training, inference }

    /// The layers that run fused with the convolution in its stage of `Sequential` (`ConvStage`): none, the
    /// ReLU after it (applied per sample in cache, its mask applied to dL/dy in backward), or the ReLU and
    /// a max pooling (then `pooledBackward` and `poolsInCache` apply).
    public enum Fusion: String, Sendable {
        case none
        case relu
        case reluMaxPool = "relu, maxpool"
    }

    /// Choices to force instead of the measured rules (nil: measured), where the geometry allows them.
    public struct Choices: Equatable, Sendable {
        public var forward: Forward?
        public var weightGradient: WeightGradient?
        public var inputGradient: InputGradient?
        public var pooledBackward: PooledBackward?

        public init(
            forward: Forward? = nil, weightGradient: WeightGradient? = nil, inputGradient: InputGradient? = nil,
            pooledBackward: PooledBackward? = nil
        ) {
            self.forward = forward
            self.weightGradient = weightGradient
            self.inputGradient = inputGradient
            self.pooledBackward = pooledBackward
        }
    }

    public let forward: Forward
    public let weightGradient: WeightGradient
    public let inputGradient: InputGradient
    public let pooledBackward: PooledBackward
    /// Threads that split the batch (thread t takes samples [n*t/T, n*(t+1)/T)); 1: the samples run in
    /// turn and the im2col path's GEMMs are threaded instead.
    public let batchParts: Int
    /// conv -> ReLU -> maxpool pools each sample while it is in cache and never stores the convolution's output.
    public let poolsInCache: Bool
    /// What runs fused with the convolution.
    public let fusion: Fusion

    /// conv -> ReLU -> maxpool runs backward through the pooling's winners (`conv2dBackwardThroughMaxPool`)
    /// rather than through the pooling's, the ReLU's and the convolution's dense passes in turn.
    public var backwardThroughWinners: Bool { fusion == .reluMaxPool && pooledBackward != .dense }

    /// The threads, kernels and forced paths the plan was made for; the executors run with it.
    public let context: ExecutionContext

    /// The plan of a convolution of geometry `g` on a batch of `batch` in `context`.
    public init(_ g: ConvGeometry, batch: Int, context: ExecutionContext, mode: Mode = .training, fusion: Fusion = .none) {
        self.context = context
        self.fusion = fusion
        let forced = context.convolution, threads = context.threads

        // Batch split: layers with very little work (tiny-cnn's 3-filter layer: ~0.1 ms a batch) stay on
        // one thread, where waking a second thread costs more than it saves.
        let macs = batch &* g.outputSize &* g.patchSize
        batchParts = macs < context.minParallelMACs || batch < threads ? 1 : threads

        // Forward. Multi-channel inputs run as implicit GEMMs (lenet5's second layer: training +22%;
        // tf-cnn's: fwd and bwd 75 -> 175 GFLOP/s), and so does the forward pass of one-channel layers
        // with large kernels and many filters (tf-cnn's 32 10x10: inference +4%). Other one-channel,
        // stride-1 layers run the direct kernel where that measured faster than im2col + GEMM: few
        // filters (tiny-cnn's 3: +24% training img/s) or kernels of 25 taps and more (lenet5's 5x5: +4%);
        // two-conv's 50 filters 3x3 ran 1-3% slower direct, so keep the GEMM. Short reductions (25 and
        // 9 taps) and few filters (a 16-wide panel for 3 or 6 channels) lose implicitly.
        //
        // Winograd F(2x2, 3x3) (3x3, stride 1) from 48 input channels: `convnet bench conv` at batch 128
        // / 64, 2 threads, AMD EPYC family 25 model 1 (Zen 3, AVX2 kernels) under concurrent training
        // runs, best of 3 interleaved, forward against the implicit GEMM in three runs: two-conv's conv2
        // (50 -> 100, 14x14) 19.1 vs 33.5 / 12.2 vs 18.7 ms, then 25.1 vs 39.5 / 13.7 vs 19.3; vgg-bn's
        // 64 -> 64 (14x14) 16.1 vs 21.5 / 9.4 vs 10.9, then 24.2 vs 29.1 / 9.1 vs 11.2. From 32 channels
        // it was not reliably faster: fast-bn's and vgg-bn's 32 -> 64 (14x14) 9.6 vs 11.1 / 5.0 vs 5.9,
        // then 13.9 vs 14.8 / 6.2 vs 5.9; vgg-bn's 32 -> 32 (28x28) 19.0 vs 21.8 / 9.7 vs 11.2, then 25.6
        // vs 22.8 / 10.1 vs 11.9. The one-channel conv1 ran 2-3x slower (products with a depth of 1).
        // That is `auto`; the algorithm (`--conv-algorithm`) may instead ask for Winograd on every layer
        // it suits, or on none.
        let direct = g.inChannels == 1 && g.strideH == 1 && g.strideW == 1 && !g.isPointwise
        let winograd = WinogradPlan.allows(g)
        func takesWinograd(fromChannels measured: Int) -> Bool {
            switch context.algorithm {
            case .auto: winograd && g.inChannels >= measured
            case .direct: false
            case .winograd: WinogradPlan.suits(g)
            }
        }
        if let f = forced.forward, (f != .direct || direct) && (f != .winograd || winograd) {
            forward = f
        } else if takesWinograd(fromChannels: 48) {
            forward = .winograd
        } else if !g.isPointwise && (g.inChannels > 1 || (g.patchSize >= 64 && g.outChannels >= 16)) {
            forward = .implicit
        } else if direct && (g.outChannels <= 8 || g.kernelHeight &* g.kernelWidth >= 25) {
            forward = .direct
        } else {
            forward = .im2col
        }

        // Weight gradient. Multi-channel inputs: implicit (above); one-channel layers (tf-cnn's 10x10
        // ran 10% slower implicitly): dot products of rows for patches up to 128 (40-70 vs 5-63 GFLOP/s
        // for patches of 9 to 100 over 196 to 784 pixels), the packed GEMM from 150 on.
        //
        // Winograd weight and input gradients (3x3, stride 1) from 48 input channels; same measurements
        // as the forward pass, backward against the implicit GEMM's: two-conv's conv2 44.7 vs 66.6 /
        // 25.0 vs 35.8 ms, then 60.1 vs 84.3 / 31.6 vs 41.4; vgg-bn's 64 -> 64 35.9 vs 42.1 / 17.8 vs
        // 21.2, then 50.6 vs 54.8 / 18.5 vs 21.8; not faster from 32 channels (32 -> 64: 23.3 vs 22.0 /
        // 12.0 vs 11.2; 32 -> 32 at 28x28: 44.3 vs 43.3 / 22.8 vs 23.0).
        let winogradBackward = takesWinograd(fromChannels: 48)
        if let w = forced.weightGradient, w != .winograd || winograd {
            weightGradient = w
        } else if winogradBackward {
            weightGradient = .winograd
        } else if !g.isPointwise && g.inChannels > 1 {
            weightGradient = .implicit
        } else {
            weightGradient = g.patchSize <= 128 ? .dot : .gemm
        }

        // Input gradient: implicit (stride 1, each padding smaller than the kernel) from 12 input channels,
        // enough to fill most of a 16-channel panel (tf-cnn's 32, two-conv's 50); lenet5's 6 would use
        // 6 of 16 columns and ran slower. Winograd (3x3, stride 1, any weight gradient): above.
        // With the Winograd weight gradient, the Winograd input gradient (col2im is far slower).
        let implicitInput = weightGradient == .implicit && ImplicitConvPlan.hasInputGradient(g)
        if let i = forced.inputGradient, (i != .implicit || implicitInput) && (i != .winograd || winograd) {
            inputGradient = i
        } else if winogradBackward || weightGradient == .winograd {
            inputGradient = .winograd
        } else {
            inputGradient = implicitInput && g.inChannels >= 12 ? .implicit : .col2im
        }

        // Pooled backward: kernel rows in one or two 8-float vectors, unless they fill less than half
        // their lanes (two-conv's 3x3 layers ran 24% slower pooled: 3 of 8 lanes against a dense GEMM
        // near peak) and there are enough filters for the dense GEMM to be fast (tiny-cnn's 3: +43% pooled).
        let lanes: PooledBackward = g.kernelWidth <= 8 ? .lanes8 : g.kernelWidth <= 16 ? .lanes16 : .dense
        if let p = forced.pooledBackward, p.lanes.map({ g.kernelWidth <= $0 }) ?? true {
            pooledBackward = p
        } else {
            pooledBackward = lanes != .dense && (2 &* g.kernelWidth > lanes.lanes! || g.outChannels < 8) ? lanes : .dense
        }

        // Pooling in cache (its backward is the pooled one): tf-cnn +7%, lenet5 +4% images/s in
        // inference; in training it measured no faster for tf-cnn and 5% slower for lenet5.
        poolsInCache = mode == .inference && fusion == .reluMaxPool && pooledBackward != .dense
    }

    public var description: String {
        var parts = fusion == .none ? [] : ["fused \(fusion.rawValue)"]
        parts += [
            "forward \(forward.rawValue)", "weight gradient \(weightGradient.rawValue)",
            "input gradient \(inputGradient.rawValue)", "pooled backward \(pooledBackward.rawValue)",
        ]
        if poolsInCache { parts.append("pools in cache") }
        parts.append(batchParts == 1 ? "batch in turn" : "batch split \(batchParts) ways")
        return parts.joined(separator: ", ")
    }
}
