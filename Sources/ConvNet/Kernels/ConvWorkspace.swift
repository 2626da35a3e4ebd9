/// Scratch buffers of one convolution layer, reused from call to call: numbered slots of raw `Float`
/// memory, grown on demand and never shrunk, so the steady state allocates nothing.
///
/// Slots are grown on the calling thread before a parallel region (`reserve`), and only read
/// (`pointer`) inside it: each thread then writes only its own slots.
final class ConvWorkspace {
    private var pointers: [UnsafeMutablePointer<Float>] = []
    private var capacities: [Int] = []
    /// Offset tables of the implicit-GEMM path, built on first use for the layer's geometry.
    var implicitPlan: ImplicitConvPlan?

    init() {}

    deinit {
        for p in pointers { p.deallocate() }
    }

    /// Makes slot `index` hold at least `count` floats (contents unspecified after growth).
    func reserve(_ index: Int, count: Int) {
        while pointers.count <= index {
            pointers.append(UnsafeMutablePointer<Float>.allocate(capacity: 16))
            capacities.append(16)
        }
        if capacities[index] < count {
            pointers[index].deallocate()
            pointers[index] = UnsafeMutablePointer<Float>.allocate(capacity: count)
            capacities[index] = count
        }
    }

    /// The implicit-GEMM plan for `geometry`, built once.
    func plan(for geometry: ConvGeometry) -> ImplicitConvPlan {
        if let plan = implicitPlan, plan.geometry == geometry { return plan }
        let plan = ImplicitConvPlan(geometry)
        implicitPlan = plan
        return plan
    }

    /// The memory of a slot already reserved.
    @inline(__always)
    func pointer(_ index: Int) -> UnsafeMutablePointer<Float> { pointers[index] }
}
