import Dispatch
import Foundation
import Synchronization
import Testing
@testable import ConvNet

/// `Threading.parallelFor` through the spinning `WorkerPool`: every index runs exactly once, whether
/// the workers are spinning or asleep, and nested or concurrent calls (which find the pool busy) still
/// run everything.
@Suite("Threading")
struct ThreadingTests {
    /// Runs `parallelFor(count)` on up to `threads` threads and returns how often each index ran.
    static func counts(_ count: Int, inner: Int = 0, threads: Int = 2) -> [Int] {
        let slots = UnsafeMutablePointer<Int>.allocate(capacity: max(count, 1))
        slots.initialize(repeating: 0, count: max(count, 1))
        defer { slots.deallocate() }
        let box = UncheckedSendable(slots)
        Threading.parallelFor(count, threads: threads) { i in
            if inner > 0 {
                // Nested: each inner index adds 1, so the slot ends at `inner` when all ran once.
                let innerSlots = counts(inner, threads: threads)
                box.value[i] += innerSlots.reduce(0, +) == inner && innerSlots.allSatisfy { $0 == 1 } ? 1 : 100
            } else {
                box.value[i] += 1
            }
        }
        return Array(UnsafeBufferPointer(start: slots, count: count))
    }

    @Test("every index runs once: 2-3 threads, counts 2 to 70,000, workers spinning and asleep")
    func everyIndexOnce() {
        for threads in [2, 3] {
            for round in 0..<300 {
                let count = [2, 3, 7, 64, 1000][round % 5]
                let c = Self.counts(count, threads: threads)
                #expect(c.allSatisfy { $0 == 1 }, "count \(count), round \(round), \(threads) threads")
                // Now and then let the workers fall asleep before the next job.
                if round % 50 == 49 { usleep(5_000) }
            }
            // More indices than the job word holds: the libdispatch path.
            #expect(Self.counts(70_000, threads: threads).allSatisfy { $0 == 1 })
        }
    }

    @Test("the caller waits for indices still running on a worker")
    func waitsForSlowIndices() {
        for round in 0..<200 {
            let done = UnsafeMutablePointer<Int>.allocate(capacity: 2)
            done.initialize(repeating: 0, count: 2)
            let box = UncheckedSendable(done)
            // One index is slow (~20-200 us of work), whichever thread takes it.
            let slow = round % 2
            Threading.parallelFor(2, threads: 2) { i in
                var x: Float = 1
                for k in 0..<(i == slow ? 20_000 * (1 + round % 10) : 10) { x = x * 0.999 + Float(k & 1) }
                box.value[i] = x.isNaN ? -1 : 1
            }
            #expect(done[0] == 1 && done[1] == 1, "round \(round)")
            done.deallocate()
        }
    }

    @Test("nested and concurrent calls run every index once")
    func nestedAndConcurrent() {
        for _ in 0..<50 {
            #expect(Self.counts(3, inner: 5).allSatisfy { $0 == 1 })
        }
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for round in 0..<100 where !Self.counts(2 + round % 4).allSatisfy({ $0 == 1 }) {
                failures.add(1, ordering: .relaxed)
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
    }
}
