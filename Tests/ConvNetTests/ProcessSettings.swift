import Synchronization

/// Tests that change or depend on process-wide kernel settings (`Threading.threads`,
/// `Gemm.kernelLimit`, `ConvPlan.forcing` and `ConvPlan.minParallelMACs`) run their whole body under this lock, so
/// suites running in parallel never see each other's settings half-way through a comparison.
enum ProcessSettings {
    private static let lock = Mutex(())

    static func exclusive<R>(_ body: () throws -> R) rethrows -> R {
        try lock.withLock { _ in try body() }
    }
}
