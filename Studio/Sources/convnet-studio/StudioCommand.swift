import ArgumentParser
import Foundation
import ConvNetCLI
import StudioServer

/// `convnet-studio`: the web server behind `convnet studio` (which runs it with --convnet set to itself).
@main
struct StudioCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convnet-studio",
        abstract: "A local web page to draw a digit, watch the network's layers, browse the test set and train live.",
        discussion: """
            Serves http://HOST:PORT/ until Ctrl-C, which also stops a running training (it saves its checkpoint first).
            Without --weights or --run it draws with the newest run under --runs that has a model.npz.
            Usually started as `convnet studio`, which passes --convnet.
            """)

    @Option(help: "A model.npz to draw with.")
    var weights: String?

    @Option(name: .customLong("run"), help: "A run folder written by convnet train (its model.npz, or its checkpoint.npz).")
    var runFolder: String?

    @Option(help: "Port to listen on (0 picks a free one).")
    var port: Int = 8080

    @Option(help: "Address to bind; the default serves this machine only.")
    var host: String = "127.0.0.1"

    @Option(help: "Folder of run folders: the newest is drawn with, trainings write new ones here.")
    var runs: String = "runs"

    @Option(help: "Where to look for data set files.")
    var dataDir: String?

    @Option(help: "The convnet executable that trains (default: beside this one, then on PATH).")
    var convnet: String?

    @OptionGroup var memoryBudgetOption: MemoryBudgetOption

    func validate() throws {
        if weights != nil && runFolder != nil { throw ValidationError("give either --weights or --run, not both") }
        if !(0...65535).contains(port) { throw ValidationError("--port must be 0-65535, got \(port)") }
        if host.isEmpty { throw ValidationError("--host must not be empty") }
    }

    func run() async throws {
        let config = StudioConfiguration(
            host: host, port: port, weights: weights.map { URL(fileURLWithPath: $0) }, run: runFolder.map { URL(fileURLWithPath: $0) },
            runsDirectory: URL(fileURLWithPath: runs), dataDirectory: dataDir.map { URL(fileURLWithPath: $0) }, convnet: findConvnet(),
            memoryBudget: memoryBudgetOption.budget)
        let studio: Studio
        do { studio = try Studio(config) } catch let error as StudioError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            throw ExitCode(1)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let host = self.host
        let note = studio.startupNote
        try await studio.run { port in
            let shown = host.contains(":") ? "[\(host)]" : host
            FileHandle.standardOutput.write(Data("convnet studio: http://\(shown):\(port)/\n".utf8))
            FileHandle.standardError.write(Data("\(note); Ctrl-C stops\n".utf8))
        }
    }

    func findConvnet() -> URL? {
        if let convnet { return URL(fileURLWithPath: convnet) }
        let fm = FileManager.default
        if let me = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            let beside = me.deletingLastPathComponent().appendingPathComponent("convnet")
            if fm.isExecutableFile(atPath: beside.path) { return beside }
        }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(dir)).appendingPathComponent("convnet")
            if fm.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }
}
