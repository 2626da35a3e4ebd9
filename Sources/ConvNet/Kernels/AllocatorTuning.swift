import CKernels

/// glibc's malloc serves blocks above a (dynamic) threshold with fresh `mmap`s and returns freed
/// memory at the top of the heap to the system. A training step allocates and frees the same
/// activation-sized tensors (hundreds of KB to tens of MB) every step, so by default every step pays
/// page faults and kernel page clearing for all of them (measured: 20-40% of a step's CPU time on
/// lenet5 and tiny-cnn). Keeping such blocks in the heap lets the next step reuse the same, already
/// mapped memory: the resident size stays at the peak of one step instead of being given back and
/// faulted in again.
enum AllocatorTuning {
    /// Called whenever a network is built; the settings are applied once.
    static func apply() { cn_tune_allocator() }
}
