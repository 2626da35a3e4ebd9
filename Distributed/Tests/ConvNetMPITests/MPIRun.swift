import ConvNet
import Foundation
import Testing

/// What a finished command left.
struct Finished {
    var status: Int32
    var stdout: String
    var stderr: String
    var seconds: Double
}

/// The `convnet-mpi` that `swift test` built beside the test bundle.
let convnetMPI: URL = {
    URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        .appendingPathComponent("convnet-mpi")
}()

/// Runs a program to its end (or kills it after `timeout` seconds), reading stdout and stderr as it goes.
func runProgram(_ path: String, _ arguments: [String], environment extra: [String: String] = [:], timeout: Double = 300) throws -> Finished {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    for (k, v) in extra { environment[k] = v }
    process.environment = environment
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let started = Date()
    try process.run()
    let errText = Box()
    let reader = Thread { errText.data = err.fileHandleForReading.readDataToEndOfFile() }
    reader.start()
    let killer = Thread {
        while process.isRunning && Date().timeIntervalSince(started) < timeout { usleep(50_000) }
        if process.isRunning { process.terminate() }
    }
    killer.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while errText.data == nil { usleep(1000) }
    return Finished(
        status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errText.data!, as: UTF8.self), seconds: Date().timeIntervalSince(started))
}

final class Box: @unchecked Sendable { var data: Data? }

/// mpirun as the README gives it for one machine: shared memory between ranks, daemons on loopback,
/// no core binding (each rank runs its own threads), and `--timeout` so a hung job cannot hang the tests.
let mpirunOptions = ["--oversubscribe", "--bind-to", "none", "--mca", "btl", "self,vader", "--mca", "oob_tcp_if_include", "lo", "--timeout", "240"]

/// Open MPI refuses to run as root unless told.
let mpiEnvironment = ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_rmaps_base_oversubscribe": "1"]

func mpirun(ranks: Int, _ arguments: [String], options: [String] = mpirunOptions) throws -> Finished {
    try runProgram("/usr/bin/mpirun", options + ["-np", String(ranks), convnetMPI.path] + arguments, environment: mpiEnvironment)
}

/// A fresh folder for one test's runs.
func scratchFolder(_ name: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("convnet-mpi-tests-\(getpid())-\(name)")
    try? FileManager.default.removeItem(at: url)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// The trained weights and batch-norm running statistics in a run folder's model.npz, by name.
func weights(in run: URL) throws -> [String: [Float]] {
    let archive = try ModelArchive.read(from: run.appendingPathComponent("model.npz"))
    var result: [String: [Float]] = [:]
    for p in archive.network.parameters + archive.network.buffers { result[p.name] = p.value.scalars }
    return result
}

/// How far two sets of weights are apart: max |a - b| over all weights, relative to max |a|, and
/// whether they are the same bits.
func difference(_ a: [String: [Float]], _ b: [String: [Float]]) throws -> (relative: Double, identical: Bool) {
    try #require(Set(a.keys) == Set(b.keys), "the runs hold different parameters")
    var largest: Float = 0, worst: Float = 0, identical = true
    for (name, x) in a {
        let y = b[name]!
        try #require(x.count == y.count, "\(name) has \(x.count) and \(y.count) values")
        for (u, v) in zip(x, y) {
            largest = max(largest, abs(u))
            worst = max(worst, abs(u - v))
            if u.bitPattern != v.bitPattern { identical = false }
        }
    }
    return (Double(worst / max(largest, .leastNormalMagnitude)), identical)
}

/// The last stdout line of `train --json`, decoded.
func summary(_ result: Finished) throws -> [String: Any] {
    let line = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
    return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "no JSON summary in: \(result.stdout)")
}
