import CKernels
import Foundation
import Synchronization

/// Persistent worker threads for `Threading.parallelFor`, which hand out a job's indices through one
/// atomic word and spin briefly between jobs before they sleep.
///
/// A training step runs a dozen short parallel regions (one per layer pass). Waking a sleeping
/// libdispatch worker costs tens of microseconds on a virtual machine, more than a small layer's
/// whole pass (tiny-cnn trained at half speed on 2 threads). Workers that are still spinning from the
/// last region pick a new job up within a microsecond; after `spinLimit` idle iterations they sleep on
/// a condition, so an idle process does not burn a core.
///
/// One job at a time: a call that finds the pool busy (another thread's job, or a nested call) returns
/// false and the caller runs the job another way. Which thread runs an index never changes a result:
/// callers partition work so that each index writes its own memory.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// Idle spin iterations (x86 pause, ~10-40 ns each) before a worker sleeps: ~0.1-0.5 ms.
    private static let spinLimit = 10_000

    /// The job word: generation (high 32 bits), next index (bits 16-31), index count (bits 0-15).
    private let state = Atomic<UInt64>(0)
    /// Indices of the current job not finished yet.
    private let remaining = Atomic<Int>(0)
    /// Workers allowed to take part in the current job (ids below this).
    private let participants = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private let condition = NSCondition()
    private let startLock = Mutex<Int>(0)  // workers started
    /// The current job's body: a pointer to the caller's closure, which lives on the caller's stack
    /// for the whole job. Written before the job word is published, read only after a claim. A plain
    /// pointer, so no worker holds a reference to the closure once its last index is done.
    private var body: UnsafePointer<(Int) -> Void>?

    /// Runs `body(0) ..< body(count - 1)` on the calling thread and up to `helpers` workers; false
    /// (nothing run) when the pool is busy or the count does not fit the job word.
    func run(_ count: Int, helpers: Int, _ body: (Int) -> Void) -> Bool {
        guard count > 0, count < 1 << 16, helpers > 0 else { return false }
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return false
        }
        defer { busy.store(false, ordering: .releasing) }
        startWorkers(helpers)
        withoutActuallyEscaping(body) { body in
            var closure = body
            withUnsafePointer(to: &closure) { runJob(count, helpers: helpers, body: $0) }
        }
        return true
    }

    /// Publishes the job, runs indices with the workers and waits until every index is done.
    private func runJob(_ count: Int, helpers: Int, body: UnsafePointer<(Int) -> Void>) {
        self.body = body
        remaining.store(count, ordering: .relaxed)
        participants.store(helpers, ordering: .relaxed)
        let generation = (state.load(ordering: .relaxed) >> 32) &+ 1
        state.store(generation << 32 | UInt64(count), ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            condition.lock()
            condition.broadcast()
            condition.unlock()
        }
        runIndices(generation: generation)
        var spins = 0
        while remaining.load(ordering: .acquiring) > 0 {
            spins &+= 1
            if spins < 1000 { cn_cpu_relax() } else { sched_yield() }
        }
        self.body = nil
    }

    /// Calls the job's body; any reference it takes to the closure is dropped before it returns, that
    /// is before the index counts as done.
    @inline(never)
    private static func invoke(_ body: UnsafePointer<(Int) -> Void>, _ index: Int) {
        body.pointee(index)
    }

    /// Claims and runs indices of job `generation` until none is left or another job is current.
    private func runIndices(generation: UInt64) {
        var word = state.load(ordering: .acquiring)
        while word >> 32 == generation {
            let next = (word >> 16) & 0xFFFF, count = word & 0xFFFF
            if next >= count { return }
            let (exchanged, original) = state.compareExchange(
                expected: word, desired: word &+ (1 << 16), ordering: .acquiringAndReleasing)
            if !exchanged {
                word = original
                continue
            }
            Self.invoke(body!, Int(next))
            remaining.subtract(1, ordering: .releasing)
            word = state.load(ordering: .acquiring)
        }
    }

    private func startWorkers(_ wanted: Int) {
        startLock.withLock { started in
            while started < wanted {
                let id = started
                let thread = Thread { [self] in workerLoop(id: id) }
                thread.name = "convnet worker \(id)"
                thread.start()
                started += 1
            }
        }
    }

    private func workerLoop(id: Int) -> Never {
        var seen = state.load(ordering: .acquiring) >> 32
        while true {
            var spins = 0
            var generation = state.load(ordering: .acquiring) >> 32
            while generation == seen {
                spins &+= 1
                if spins < Self.spinLimit {
                    cn_cpu_relax()
                } else {
                    condition.lock()
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    while state.load(ordering: .sequentiallyConsistent) >> 32 == seen { condition.wait() }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    condition.unlock()
                    spins = 0
                }
                generation = state.load(ordering: .acquiring) >> 32
            }
            seen = generation
            if id < participants.load(ordering: .relaxed) { runIndices(generation: generation) }
        }
    }
}
