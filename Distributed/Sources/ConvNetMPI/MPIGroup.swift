import CMPI
import ConvNet
import Foundation

/// MPI's process set as the `Trainer`'s `TrainingGroup`: the ranks of one communicator.
///
/// Sums run in a fixed order so a run is repeatable bit for bit. With 2 ranks, or while each rank
/// receives at most `gatherLimit` floats, every rank gathers every rank's buffer (`MPI_Allgather`) and
/// adds them up in rank order 0, 1, ..., the same on every rank. Beyond that (more ranks, bigger
/// networks) the gather would move P-1 buffers to each rank, so the sum goes through `MPI_Allreduce`,
/// whose ring algorithm moves 2(P-1)/P of a buffer per rank: Open MPI picks its algorithm from the rank
/// count and message size and reduces each chunk once, so every rank gets the same bits and a rerun
/// with the same ranks gets them again, but the order of the additions is Open MPI's, not rank order.
public final class MPIGroup: TrainingGroup {
    public let communicator: MPI_Comm
    public let rank: Int
    public let size: Int
    /// Floats a rank may receive in a gathered sum (the buffer times the other ranks: 1 MB).
    public var gatherLimit = 1 << 18
    /// Seconds spent inside this group's collective calls so far (the communication share of a step).
    public private(set) var communicationSeconds = 0.0
    /// Sums of doubles made so far (batch norm's reductions among them), and the seconds they took.
    public private(set) var doubleSums = 0
    public private(set) var doubleSeconds = 0.0
    private var gathered: [Float] = [], gatheredDoubles: [Double] = []

    public init(communicator: MPI_Comm) {
        self.communicator = communicator
        var r: Int32 = 0, n: Int32 = 0
        MPI_Comm_rank(communicator, &r)
        MPI_Comm_size(communicator, &n)
        rank = Int(r)
        size = Int(n)
    }

    /// Whether a sum of `count` floats gathers and adds in rank order (else `MPI_Allreduce`).
    public func gathers(_ count: Int) -> Bool { size <= 2 || count * (size - 1) <= gatherLimit }

    public func sum(_ values: UnsafeMutableBufferPointer<Float>) throws {
        let started = DispatchTime.now().uptimeNanoseconds
        defer { communicationSeconds += Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }
        let n = values.count
        guard size > 1, n > 0 else { return }
        if !gathers(n) {
            try check(MPI_Allreduce(cn_mpi_in_place(), values.baseAddress, Int32(n), cn_mpi_float(), cn_mpi_sum(), communicator), "MPI_Allreduce")
            return
        }
        if gathered.count != n * size { gathered = [Float](repeating: 0, count: n * size) }
        try gathered.withUnsafeMutableBufferPointer { all in
            try check(MPI_Allgather(values.baseAddress, Int32(n), cn_mpi_float(), all.baseAddress, Int32(n), cn_mpi_float(), communicator), "MPI_Allgather")
            sumInRankOrder(all, into: values, ranks: size)
        }
    }

    /// Doubles always gather and add in rank order: they are the small sums (batch norm's per-channel
    /// statistics, counts, the evaluation's confusion matrix), where a gather costs what an all-reduce costs.
    public func sum(_ values: inout [Double]) throws {
        let started = DispatchTime.now().uptimeNanoseconds
        defer {
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            communicationSeconds += seconds
            doubleSeconds += seconds
            doubleSums += 1
        }
        let n = values.count
        guard size > 1, n > 0 else { return }
        if gatheredDoubles.count != n * size { gatheredDoubles = [Double](repeating: 0, count: n * size) }
        try values.withUnsafeMutableBufferPointer { mine in
            try gatheredDoubles.withUnsafeMutableBufferPointer { all in
                try check(MPI_Allgather(mine.baseAddress, Int32(n), cn_mpi_double(), all.baseAddress, Int32(n), cn_mpi_double(), communicator), "MPI_Allgather")
                for i in 0..<n {
                    var s = all[i]
                    for r in 1..<size { s += all[r &* n &+ i] }
                    mine[i] = s
                }
            }
        }
    }

    public func broadcast(_ values: UnsafeMutableBufferPointer<Float>) throws {
        guard size > 1, values.count > 0 else { return }
        try check(MPI_Bcast(values.baseAddress, Int32(values.count), cn_mpi_float(), 0, communicator), "MPI_Bcast")
    }

    /// Waits until every rank of the group arrives, sleeping between polls instead of spinning, so a
    /// rank that waits leaves the cores to the ranks that work.
    public func idleBarrier() throws {
        var request: MPI_Request? = nil
        try check(MPI_Ibarrier(communicator, &request), "MPI_Ibarrier")
        var done: Int32 = 0
        while done == 0 {
            try check(MPI_Test(&request, &done, cn_mpi_status_ignore()), "MPI_Test")
            if done == 0 { usleep(1000) }
        }
    }

    private func check(_ code: Int32, _ call: String) throws {
        guard code != MPI_SUCCESS else { return }
        throw MPIError(message: "\(call) failed with MPI error \(code)")
    }
}

/// Adds `ranks` consecutive blocks of `all` into `out`, block 0 first: out[i] = ((b0[i] + b1[i]) + b2[i]) + ...
func sumInRankOrder(_ all: UnsafeMutableBufferPointer<Float>, into out: UnsafeMutableBufferPointer<Float>, ranks: Int) {
    let n = out.count
    let a = all.baseAddress!, o = out.baseAddress!
    o.update(from: a, count: n)
    for r in 1..<ranks {
        let block = a + r &* n
        for i in 0..<n { o[i] += block[i] }
    }
}

public struct MPIError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The MPI library's life in this process: `MPI_Init_thread` once, then `MPI_Finalize` or `MPI_Abort`.
public enum MPIRuntime {
    /// Starts MPI (the main thread alone calls it; the kernels' worker threads never do) and returns
    /// the world's ranks.
    public static func start() -> MPIGroup {
        var provided: Int32 = 0
        MPI_Init_thread(nil, nil, Int32(cn_mpi_thread_funneled()), &provided)
        return MPIGroup(communicator: cn_mpi_comm_world())
    }

    /// How many ranks of the world run on this machine (they share its cores).
    public static func ranksOnThisHost(_ world: MPIGroup) -> Int {
        var local = cn_mpi_comm_null()
        guard MPI_Comm_split_type(world.communicator, Int32(cn_mpi_comm_type_shared()), Int32(world.rank), cn_mpi_info_null(), &local) == MPI_SUCCESS
        else { return 1 }
        var n: Int32 = 1
        MPI_Comm_size(local, &n)
        MPI_Comm_free(&local)
        return Int(n)
    }

    public static func finalize() { MPI_Finalize() }

    /// Ends every rank of the job at once with `code`.
    public static func abort(_ world: MPIGroup, code: Int32) -> Never {
        MPI_Abort(world.communicator, code)
        Foundation.exit(code)
    }
}
