import Foundation
import Testing
@testable import ConvNet

/// What `convnet` prints when a file operation fails: plain words that name the path, a non-zero exit
/// status (never a signal), and never a hang (a named pipe or a device given as a file).
@Suite("Plain-word errors of the convnet command", .serialized)
struct PlainErrorsCLITests {
    /// Text that must never reach a user: Foundation's domains, coder and Swift type names.
    static let forbidden = [
        "NSCocoaErrorDomain", "NSPOSIXErrorDomain", "Error Domain", "EncodingError", "DecodingError", "Dictionary<String, Any>",
        "ConvNet.DataError", "DataError error", "The operation could not be completed", "You don't have permission", "UserInfo",
    ]

    struct Outcome {
        var status: Int32
        var exited: Bool  // false: ended by a signal
        var timedOut: Bool
        var stdout: String
        var stderr: String
    }

    /// Runs the built `convnet`, ending it (and failing) after `timeout` seconds.
    static func run(_ arguments: [String], timeout: Double = 60) throws -> Outcome {
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let candidates = [here.appendingPathComponent("convnet"), URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".build/release/convnet")]
        let executable = try #require(candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) },
                                      "convnet executable not found beside the tests; run swift build first")
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let outData = UncheckedBox<Data>(), errData = UncheckedBox<Data>()
        Thread { outData.value = out.fileHandleForReading.readDataToEndOfFile() }.start()
        Thread { errData.value = err.fileHandleForReading.readDataToEndOfFile() }.start()
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        while process.isRunning {
            if Date() > deadline { timedOut = true; process.terminate(); break }
            usleep(10_000)
        }
        process.waitUntilExit()
        while outData.value == nil || errData.value == nil { usleep(1000) }
        return Outcome(status: process.terminationStatus, exited: process.terminationReason == .exit, timedOut: timedOut,
                       stdout: String(decoding: outData.value!, as: UTF8.self), stderr: String(decoding: errData.value!, as: UTF8.self))
    }

    /// Files to fail on, made once per test.
    struct Setup {
        let folder: URL
        let model: URL
        let fifo: URL
        let run: URL

        init() throws {
            folder = try makeTemporaryFolder("plainerrors")
            let zoo = try ModelZoo.model(named: "toy")
            let network = try Sequential(spec: zoo.spec, inputShape: zoo.inputShape, seed: 1)
            model = folder.appendingPathComponent("model.npz")
            try ModelArchive(network: network, modelName: zoo.name, loss: zoo.loss, classNames: ["a", "b"], normalization: .identity)
                .write(to: model)
            fifo = folder.appendingPathComponent("pipe")
            #expect(mkfifo(fifo.path, 0o644) == 0)
            run = folder.appendingPathComponent("run")
            var metrics = RunMetrics()
            metrics.iterations = [IterationMetrics(epoch: 1, iteration: 1, loss: 1, learningRate: 0.1)]
            metrics.epochs = [EpochMetrics(epoch: 1, iteration: 1, trainLoss: 1, trainAccuracy: 0.5, testAccuracy: 0.5, seconds: 1)]
            try metrics.write(to: run)
        }
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        /// The arguments, given the setup.
        var arguments: @Sendable (Setup) -> [String]
        /// Texts the message must hold (the path among them).
        var expected: @Sendable (Setup) -> [String]
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "export -o a folder", arguments: { ["export", "--weights", $0.model.path, "-o", $0.folder.path] },
             expected: { [$0.folder.path, "is a folder, not a file"] }),
        Case(name: "export -o in a folder that does not exist",
             arguments: { ["export", "--weights", $0.model.path, "-o", $0.folder.appendingPathComponent("missing/model.onnx").path] },
             expected: { [$0.folder.appendingPathComponent("missing").path, "does not exist"] }),
        Case(name: "export --weights a named pipe", arguments: { ["export", "--weights", $0.fifo.path, "-o", $0.folder.appendingPathComponent("m.onnx").path] },
             expected: { [$0.fifo.path, "named pipe (FIFO)"] }),
        Case(name: "eval --weights a named pipe", arguments: { ["eval", "--weights", $0.fifo.path] },
             expected: { [$0.fifo.path, "is a named pipe (FIFO), not a regular file"] }),
        Case(name: "eval --weights /dev/zero", arguments: { _ in ["eval", "--weights", "/dev/zero"] },
             expected: { _ in ["/dev/zero is a device, not a regular file"] }),
        Case(name: "eval --weights /proc/self/mem", arguments: { _ in ["eval", "--weights", "/proc/self/mem"] },
             expected: { _ in ["/proc/self/mem"] }),
        Case(name: "eval --weights a folder", arguments: { ["eval", "--weights", $0.folder.path] },
             expected: { [$0.folder.path, "is a folder, not a file"] }),
        Case(name: "plot --out an existing file", arguments: { ["plot", $0.run.path, "--out", $0.model.path] },
             expected: { [$0.model.path, "is a file, not a folder"] }),
        Case(name: "plot a named pipe", arguments: { ["plot", $0.fifo.path] },
             expected: { [$0.fifo.path, "named pipe (FIFO)"] }),
        Case(name: "explain --html a folder", arguments: { ["explain", "--html", $0.folder.path] },
             expected: { [$0.folder.path, "is a folder, not a file"] }),
    ]

    @Test("a failed file operation is reported in plain words that name the path", arguments: cases)
    func plainMessage(_ failure: Case) throws {
        let setup = try Setup()
        defer { try? FileManager.default.removeItem(at: setup.folder) }
        let outcome = try Self.run(failure.arguments(setup))
        #expect(!outcome.timedOut, "convnet did not end: it waited on the file")
        #expect(outcome.exited, "convnet ended by a signal")
        #expect(outcome.status != 0)
        let message = outcome.stderr
        #expect(message.hasPrefix("Error: "), "\(message)")
        for text in failure.expected(setup) { #expect(message.contains(text), "'\(text)' missing from: \(message)") }
        for text in Self.forbidden { #expect(!message.contains(text) && !outcome.stdout.contains(text), "'\(text)' in: \(message)") }
        // Nothing was written in place of the folder or the pipe.
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: setup.folder.path, isDirectory: &isDirectory) && isDirectory.boolValue)
        #expect((try? CheckedFile.kind(atPath: setup.fifo.path)) == .namedPipe)
    }

    @Test("a bad option found while running shows the subcommand's usage, not the root's")
    func subcommandUsage() throws {
        let folder = try makeTemporaryFolder("plainusage")
        defer { try? FileManager.default.removeItem(at: folder) }
        let outcome = try Self.run(["train", "--model", "toy", "--epochs", "1", "--export", "hw5", "--no-report",
                                    "--out", folder.appendingPathComponent("run").path])
        #expect(outcome.exited && outcome.status == 64, "\(outcome.status) \(outcome.stderr)")
        #expect(outcome.stderr.contains("Usage: convnet train"), "\(outcome.stderr)")
        #expect(!outcome.stderr.contains("<subcommand>"), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("See 'convnet train --help'"), "\(outcome.stderr)")
    }
}

@Suite("Reading and writing files that are not regular files")
struct CheckedFileTests {
    @Test("a named pipe, a device and a folder are named as such, at once, before any open")
    func refusesWhatIsNotAFile() throws {
        let folder = try makeTemporaryFolder("checkedfile")
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("pipe")
        #expect(mkfifo(fifo.path, 0o644) == 0)
        let cases: [(URL, String)] = [
            (fifo, "\(fifo.path) is a named pipe (FIFO), not a regular file"),
            (URL(fileURLWithPath: "/dev/zero"), "/dev/zero is a device, not a regular file"),
            (folder, "\(folder.path) is a folder, not a file"),
        ]
        for (url, message) in cases {
            #expect(throws: DataError.self) { try CheckedFile.read(url) }
            do { _ = try CheckedFile.read(url) } catch { #expect("\(error)" == message) }
            do { _ = try NumPyArchive.read(from: url) } catch { #expect("\(error)" == message) }
            do { _ = try Picture.read(from: url) } catch { #expect("\(error)".contains(url.path) && "\(error)".contains("not a")) }
            if url != folder {
                do { _ = try RunMetrics.load(from: url) } catch {
                    #expect("\(error)".contains(url.path) && "\(error)".contains("not a regular file"), "\(error)")
                }
            }
        }
    }

    @Test("/proc/self/mem gives an error naming it; /proc files whose size says 0 are read to their end")
    func procFiles() throws {
        do {
            _ = try CheckedFile.readText(URL(fileURLWithPath: "/proc/self/mem"))
            Issue.record("no error")
        } catch {
            #expect("\(error)".hasPrefix("/proc/self/mem: "), "\(error)")
        }
        let status = try CheckedFile.readText(URL(fileURLWithPath: "/proc/self/status"))
        #expect(status.contains("Pid:"))
    }

    @Test("a text file is read up to its limit and refused beyond it")
    func limit() throws {
        let folder = try makeTemporaryFolder("checkedlimit")
        defer { try? FileManager.default.removeItem(at: folder) }
        let exact = folder.appendingPathComponent("exact.txt"), over = folder.appendingPathComponent("over.txt")
        try AtomicFile.write(String(repeating: "a", count: 1 << 20), to: exact)
        try AtomicFile.write(String(repeating: "a", count: (1 << 20) + 1), to: over)
        #expect(try CheckedFile.readText(exact).count == 1 << 20)
        do { _ = try CheckedFile.readText(over); Issue.record("no error") } catch {
            #expect("\(error)" == "\(over.path): is larger than 1 MiB, the most read from such a file")
        }
        // /dev/zero never ends: refused as a device, not read until the limit.
        #expect(throws: DataError.notAFile(path: "/dev/zero", kind: .device)) { try CheckedFile.readText(URL(fileURLWithPath: "/dev/zero")) }
    }

    @Test("AtomicFile refuses a folder or a named pipe at the target and leaves it, and says when the folder is missing")
    func atomicTargets() throws {
        let folder = try makeTemporaryFolder("atomictargets")
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("pipe")
        #expect(mkfifo(fifo.path, 0o644) == 0)
        #expect(throws: DataError.notAFile(path: fifo.path, kind: .namedPipe)) { try AtomicFile.write("x", to: fifo) }
        #expect(try CheckedFile.kind(atPath: fifo.path) == .namedPipe)
        let sub = folder.appendingPathComponent("sub")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        #expect(throws: DataError.notAFile(path: sub.path, kind: .folder)) { try AtomicFile.write("x", to: sub) }
        let missing = folder.appendingPathComponent("missing/out.txt")
        do { try AtomicFile.write("x", to: missing, creatingFolder: false); Issue.record("no error") } catch {
            #expect("\(error)" == "\(missing.path): cannot write: the folder \(folder.path)/missing does not exist")
        }
        try AtomicFile.write("x", to: missing)  // the default creates it
        #expect(try CheckedFile.readText(missing) == "x")
        // A file where a folder of the path should be.
        let under = folder.appendingPathComponent("missing/out.txt/deeper.txt")
        do { try AtomicFile.write("x", to: under); Issue.record("no error") } catch {
            #expect("\(error)".contains("\(missing.path) is a regular file, not a folder"), "\(error)")
        }
    }

    @Test("the JSON coders' and Foundation's errors are described in plain words")
    func plainDescriptions() throws {
        struct Settings: Codable { var lr: Float; var options: [String: Int] }
        let errors: [Error] = [
            { do { _ = try JSONDecoder().decode(Settings.self, from: Data(#"{"lr": 1, "options": 3}"#.utf8)) } catch { return error }; return nil }()!,
            { do { _ = try JSONDecoder().decode(Settings.self, from: Data(#"[1]"#.utf8)) } catch { return error }; return nil }()!,
            { do { _ = try JSONDecoder().decode(Settings.self, from: Data(#"{"lr": 1"#.utf8)) } catch { return error }; return nil }()!,
            { do { _ = try JSONEncoder().encode(Settings(lr: .infinity, options: [:])) } catch { return error }; return nil }()!,
            { do { _ = try Data(contentsOf: URL(fileURLWithPath: "/nonexistent/file")) } catch { return error }; return nil }()!,
            { do { try Data().write(to: URL(fileURLWithPath: "/nonexistent/file")) } catch { return error }; return nil }()!,
        ]
        for error in errors {
            let text = plainDescription(error)
            for bad in PlainErrorsCLITests.forbidden + ["Swift.", "Optional", "CodingKeys"] {
                #expect(!text.contains(bad), "\(text)")
            }
        }
        #expect(plainDescription(errors[3]) == "'lr' is inf, which JSON cannot hold")
        #expect(plainDescription(errors[0]) == "'options' is not a JSON object")
    }
}
