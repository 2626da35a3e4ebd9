#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Counts the tensor storage allocations the process makes, always on and cheap (a relaxed atomic
/// add and a thread-specific word per allocation).
///
/// Counted: every `Tensor` initialiser that creates non-empty storage (`init(shape:repeating:)`,
/// `init(shape:unsafeUninitialized:)`, `init(shape:scalars:)`, whose array is nearly always built for
/// it), the slow path of `Tensor.overwrite` (no buffer of the right size yet), and every copy-on-write
/// copy made when `Tensor.withUnsafeMutableBufferPointer` (or `overwrite`) writes to storage that
/// another tensor shares. Not counted: element-wise subscript writes and direct `scalars` assignment
/// (which bypass `Tensor`'s entry points), and the small `shape` arrays.
///
/// Tensors are created on the thread that calls an op (worker threads of the kernels only write into
/// buffers), so the per-thread count of a thread that runs a training step is that step's count, even
/// while other threads (parallel tests) allocate.
@usableFromInline
enum TensorAllocations {
    private static let total = Atomic<Int>(0)
    private static let threadCount = ThreadWord()
    private static let threadFresh = ThreadWord()

    /// Allocations by every thread since the process started.
    static var count: Int { total.load(ordering: .relaxed) }

    /// Allocations by the calling thread since it started.
    static var countOnCurrentThread: Int { threadCount.value }

    @usableFromInline
    static func record() {
        total.add(1, ordering: .relaxed)
        threadCount.value &+= 1
    }

    /// Test hook: while true on a thread, `Tensor.overwrite` there ignores the buffer it is given and
    /// allocates fresh zero-filled storage every time, as every op did before buffers were reused.
    static var freshBuffersOnCurrentThread: Bool {
        get { threadFresh.value != 0 }
        set { threadFresh.value = newValue ? 1 : 0 }
    }

    /// Runs `body` with `freshBuffersOnCurrentThread` set, then restores it.
    static func withFreshBuffers<R>(_ body: () throws -> R) rethrows -> R {
        let saved = freshBuffersOnCurrentThread
        freshBuffersOnCurrentThread = true
        defer { freshBuffersOnCurrentThread = saved }
        return try body()
    }
}

/// One `Int` per thread (a pthread key whose value is the integer itself; 0 on a new thread).
private struct ThreadWord: Sendable {
    let key: pthread_key_t

    init() {
        var key = pthread_key_t()
        let status = pthread_key_create(&key, nil)
        precondition(status == 0, "pthread_key_create failed (\(status))")
        self.key = key
    }

    var value: Int {
        get { Int(bitPattern: pthread_getspecific(key)) }
        nonmutating set { pthread_setspecific(key, UnsafeRawPointer(bitPattern: newValue)) }
    }
}
