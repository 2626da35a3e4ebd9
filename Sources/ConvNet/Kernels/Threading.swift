import Dispatch
import Foundation
import Synchronization

/// The kernels' threads: `parallelFor`, and the cores this process may use. How many threads a pass uses is
/// its `ExecutionContext`'s `threads`.
public enum Threading {
    /// Cores available to this process, read once (the query reads /proc and cgroup files): the default
    /// thread count of an `ExecutionContext`.
    public static let availableCores: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Runs `body(0) ... body(count - 1)` on up to `threads` threads; returns when all are done.
    /// Callers partition work so that each index writes its own memory. The calling thread and the
    /// `WorkerPool`'s spinning workers run it; a nested or concurrent call, which finds the pool busy,
    /// goes through libdispatch instead.
    public static func parallelFor(_ count: Int, threads: Int, _ body: (Int) -> Void) {
        if count <= 1 || threads <= 1 {
            for i in 0..<count { body(i) }
        } else if WorkerPool.shared.run(count, helpers: min(count, threads) &- 1, body) {
            return
        } else {
            withoutActuallyEscaping(body) { body in
                let box = UncheckedSendable(body)
                DispatchQueue.concurrentPerform(iterations: count) { box.value($0) }
            }
        }
    }
}

/// Carries a value the caller knows to be used safely across threads (disjoint writes).
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}
