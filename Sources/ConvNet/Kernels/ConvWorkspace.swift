import CKernels

/// One scratch buffer of raw memory, grown on demand and never shrunk, so the steady state allocates
/// nothing. Grown (`reserve`) on the calling thread before a parallel region, only read (`pointer`) in it.
final class ScratchBuffer<Element> {
    private(set) var pointer: UnsafeMutablePointer<Element>
    private(set) var capacity = 0

    init() { pointer = UnsafeMutablePointer<Element>.allocate(capacity: 1) }

    deinit { pointer.deallocate() }

    /// Makes the buffer hold at least `count` elements (contents unspecified after growth).
    func reserve(_ count: Int) {
        guard capacity < count else { return }
        pointer.deallocate()
        pointer = UnsafeMutablePointer<Element>.allocate(capacity: count)
        capacity = count
    }
}

/// One item per thread (a struct of named `ScratchBuffer`s): grown to each call's thread count, never shrunk.
struct PerThread<Item> {
    private(set) var items: [Item] = []
    private let make: () -> Item

    init(_ make: @escaping () -> Item) { self.make = make }

    /// At least `count` items (the existing ones keep their memory).
    mutating func reserve(_ count: Int) {
        while items.count < count { items.append(make()) }
    }

    @inline(__always)
    subscript(t: Int) -> Item { items[t] }
}

/// One thread's scratch of the im2col / direct path: its column matrix (or the direct kernel's padded
/// sample), the column gradient, its weight- and bias-gradient partials (thread 0 writes the result
/// directly), and one sample's output gradient with a fused ReLU's mask applied.
struct ColumnScratch {
    let columns = ScratchBuffer<Float>()
    let columnGradient = ScratchBuffer<Float>()
    let weightGradient = ScratchBuffer<Float>()
    let biasGradient = ScratchBuffer<Float>()
    let maskedGradient = ScratchBuffer<Float>()
}

/// One thread's scratch of the implicit-GEMM path (sizes from `ImplicitConvPlan`): the padded input,
/// the forward pass's output panels, the transposed dL/dy, the weight- and bias-gradient partials;
/// for the implicit input gradient the padded dL/dy and its output panels; for the col2im input
/// gradient the masked dL/dy and the column gradient.
struct ImplicitScratch {
    let paddedInput = ScratchBuffer<Float>()
    let outputPanels = ScratchBuffer<Float>()
    let transposedGradient = ScratchBuffer<Float>()
    let weightGradient = ScratchBuffer<Float>()
    let biasGradient = ScratchBuffer<Float>()
    let paddedGradient = ScratchBuffer<Float>()
    let inputGradientPanels = ScratchBuffer<Float>()
    let maskedGradient = ScratchBuffer<Float>()
    let columnGradient = ScratchBuffer<Float>()
}

/// One thread's scratch of the Winograd path (sizes from `WinogradPlan`): the sample's zero-padded
/// source planes, one block's transformed input and its products (the weight gradient: dL/dM); for the
/// weight gradient the sample's dL/dy in whole tiles and the thread's partials of dU and db.
struct WinogradScratch {
    let paddedInput = ScratchBuffer<Float>()
    let transformedInput = ScratchBuffer<Float>()
    let products = ScratchBuffer<Float>()
    let paddedGradient = ScratchBuffer<Float>()
    let weightGradient = ScratchBuffer<Float>()
    let biasGradient = ScratchBuffer<Float>()
}

/// One thread's scratch of the pooled backward (conv -> ReLU -> maxpool through the winners): the padded
/// input, the sample's list of winners (`cn_pool_entries`; 8-byte words, so aligned for its counts), the
/// weight-gradient partial (kernel rows padded to the lane width), the padded input gradient and the
/// bias-gradient partial.
struct PooledScratch {
    let paddedInput = ScratchBuffer<Float>()
    let entries = ScratchBuffer<UInt64>()
    let weightGradient = ScratchBuffer<Float>()
    let paddedGradient = ScratchBuffer<Float>()
    let biasGradient = ScratchBuffer<Float>()

    /// Reserves `entries` for a list of `outChannels` channels of `pooled` values each (its size and
    /// layout are sparse.c's: `cn_pool_entries_bytes`).
    func reserveEntries(outChannels: Int, pooled: Int) {
        entries.reserve((cn_pool_entries_bytes(outChannels, pooled) &+ 7) / 8)
    }
}

/// Scratch of one convolution layer, reused from call to call: per path a struct of named buffers per
/// thread, plus the buffers all threads share. Every use has its own buffer, so no two paths (nor two
/// threads) can share memory whatever the thread count; each pass reserves what its plan needs on the
/// calling thread before its parallel region.
final class ConvWorkspace {
    var columns = PerThread { ColumnScratch() }
    var implicit = PerThread { ImplicitScratch() }
    var pooled = PerThread { PooledScratch() }
    var winograd = PerThread { WinogradScratch() }
    /// Per thread, one sample's convolution output, pooled from there (conv -> ReLU -> maxpool in inference).
    var sampleOutput = PerThread { ScratchBuffer<Float>() }
    /// Shared by all threads: the implicit path's packed forward and flipped weights, the pooled
    /// backward's weight with kernel rows padded to the lane width.
    let packedWeight = ScratchBuffer<Float>()
    let flippedWeight = ScratchBuffer<Float>()
    let paddedWeight = ScratchBuffer<Float>()
    /// Shared by all threads: the Winograd path's transformed weights, of the forward pass and of the
    /// input gradient.
    let winogradWeight = ScratchBuffer<Float>()
    let winogradFlippedWeight = ScratchBuffer<Float>()
    /// Offset tables of the implicit-GEMM path, built on first use for the layer's geometry.
    private var implicitPlan: ImplicitConvPlan?
    /// The Winograd plans of the forward pass and the input gradient, built on first use.
    private var winogradForward: WinogradPlan?
    private var winogradInputGradient: WinogradPlan?

    init() {}

    /// The implicit-GEMM plan for `geometry`, built once.
    func plan(for geometry: ConvGeometry) -> ImplicitConvPlan {
        if let plan = implicitPlan, plan.geometry == geometry { return plan }
        let plan = ImplicitConvPlan(geometry)
        implicitPlan = plan
        return plan
    }

    /// The Winograd plan of `direction` for `geometry` and threads of at most `samplesPerThread` samples,
    /// built once.
    func winogradPlan(for geometry: ConvGeometry, _ direction: WinogradPlan.Direction, samplesPerThread: Int) -> WinogradPlan {
        let kept = direction == .forward ? winogradForward : winogradInputGradient
        if let plan = kept, plan.geometry == geometry, plan.samplesPerThread == samplesPerThread { return plan }
        let plan = WinogradPlan(geometry, direction, samplesPerThread: samplesPerThread)
        switch direction {
        case .forward: winogradForward = plan
        case .inputGradient: winogradInputGradient = plan
        }
        return plan
    }
}
