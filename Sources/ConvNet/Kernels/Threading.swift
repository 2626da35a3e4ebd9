import Dispatch
import Foundation
import Synchronization

/// How many threads the kernels may use. The default is every core the process can run on.
public enum Threading {
    private static let storage = Atomic<Int>(0)

    /// Cores available to this process, read once (the query reads /proc and cgroup files).
    public static let availableCores: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Threads the kernels use (at least 1). Setting 0 restores the default (all cores).
    public static var threads: Int {
        get {
            let n = storage.load(ordering: .relaxed)
            return n > 0 ? n : availableCores
        }
        set { storage.store(max(0, newValue), ordering: .relaxed) }
    }

    /// Runs `body(0) ... body(count - 1)` on up to `threads` threads; returns when all are done.
    /// Callers partition work so that each index writes its own memory. The calling thread and the
    /// `WorkerPool`'s spinning workers run it; a nested or concurrent call, which finds the pool busy,
    /// goes through libdispatch instead.
    public static func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        let threads = threads
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
