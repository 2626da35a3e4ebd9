import ArgumentParser
import ConvNet
import Foundation

/// `convnet studio`: runs the separately built `convnet-studio` web server (the Studio/ sub-package,
/// kept out of this package so that the library and a plain `swift build` carry no HTTP stack).
struct StudioCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "studio",
        abstract: "A local web page: draw a digit, watch every layer, browse the test set, train live.",
        discussion: """
            Runs convnet-studio, found beside this executable, in Studio/.build/release of this checkout, or
            in $CONVNET_STUDIO. Build it once with:
              swift build -c release --package-path Studio
            Without --weights or --run it draws with the newest run under runs/ (or offers to train one).
            It binds 127.0.0.1 unless --host says otherwise; Ctrl-C stops it and a running training, which saves its checkpoint first.
            """)

    @Option(help: "A model.npz to draw with.")
    var weights: String?

    @Option(name: .customLong("run"), help: "A run folder written by convnet train.")
    var runFolder: String?

    @Option(help: "Port to listen on (0 picks a free one).")
    var port: Int = 8080

    @Option(help: "Address to bind; the default serves this machine only.")
    var host: String = "127.0.0.1"

    @Option(help: "Folder of run folders (trainings started on the page write theirs here).")
    var runs: String = "runs"

    @Option(help: "Where to look for data set files.")
    var dataDir: String?

    @OptionGroup var memoryBudgetOption: MemoryBudgetOption

    func validate() throws {
        if weights != nil && runFolder != nil { throw ValidationError("give either --weights or --run, not both") }
        if !(0...65535).contains(port) { throw ValidationError("--port must be 0-65535, got \(port)") }
    }

    func run() throws {
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let own = Bundle.main.executableURL?.resolvingSymlinksInPath() ?? me
        guard let server = StudioCommand.findServer(besides: own) else {
            throw CommandError("""
                convnet studio needs the convnet-studio server, which is built separately (it brings the HTTP stack):
                  swift build -c release --package-path Studio
                then run convnet studio again (it looks beside \(own.path), in Studio/.build/release/ and in $CONVNET_STUDIO)
                """)
        }
        var args = [server.path, "--port", String(port), "--host", host, "--runs", runs, "--convnet", own.path]
        if let weights { args += ["--weights", weights] }
        if let runFolder { args += ["--run", runFolder] }
        if let dataDir { args += ["--data-dir", dataDir] }
        if let budget = memoryBudgetOption.memoryBudget { args += ["--memory-budget", budget] }
        // Replace this process, so Ctrl-C and the exit status are the server's own.
        let cArgs = args.map { strdup($0) } + [nil]
        execv(server.path, cArgs)
        throw CommandError("cannot start \(server.path): \(String(cString: strerror(errno)))")
    }

    /// convnet-studio beside `executable`, in Studio/.build/release of the checkout that holds it, or in $CONVNET_STUDIO.
    static func findServer(besides executable: URL) -> URL? {
        let fm = FileManager.default
        var candidates: [URL] = []
        if let env = ProcessInfo.processInfo.environment["CONVNET_STUDIO"], !env.isEmpty { candidates.append(URL(fileURLWithPath: env)) }
        let folder = executable.deletingLastPathComponent()
        candidates.append(folder.appendingPathComponent("convnet-studio"))
        var up = folder
        for _ in 0..<4 {
            up = up.deletingLastPathComponent()
            candidates.append(up.appendingPathComponent("Studio/.build/release/convnet-studio"))
        }
        return candidates.first { fm.isExecutableFile(atPath: $0.path) }
    }
}
