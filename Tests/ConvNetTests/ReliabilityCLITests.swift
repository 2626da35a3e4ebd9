import Foundation
import Testing
@testable import ConvNet

/// Crash safety and interruption of `convnet train`, driven through the built binary: a full disk (the
/// file-size limit), Ctrl-C/SIGTERM, SIGKILL at random moments with `--resume`, and `--resume` refusing
/// options that contradict the saved run; plus bad input files through the CLI.
@Suite("Reliability: disk full, interruption, kill and resume, bad files", .serialized)
struct ReliabilityCLITests {
    static var executable: URL {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("convnet")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/release/convnet")
    }

    /// Starts `convnet` with stdout and stderr going to files (read them after it ends).
    static func start(_ arguments: [String], log: URL) throws -> Process {
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        return p
    }

    static func files(_ dir: URL) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() }

    /// Bit patterns, so that the comparison is exact (and NaN-safe).
    static func bits(_ url: URL) throws -> [String: [UInt32]] { try weights(url).mapValues { $0.map(\.bitPattern) } }

    static let mlpRun = ["train", "--model", "mlp", "--train-limit", "512", "--batch-size", "16", "--threads", "1", "--seed", "3", "--no-report"]

    @Test("a full disk (file-size limit, EFBIG) fails the write with the reason and leaves the saved files as they were")
    func diskFull() throws {
        let dir = try makeTemporaryFolder()
        let run = dir.appendingPathComponent("run")
        let first = try convnet(Self.mlpRun + ["--epochs", "1", "--out", run.path])
        #expect(first.status == 0, "\(first.stderr)")
        let checkpoint = run.appendingPathComponent("checkpoint.npz"), model = run.appendingPathComponent("model.npz")
        let before = (try Data(contentsOf: checkpoint), try Data(contentsOf: model))
        #expect(before.0.count > 32_000, "the limit below must be smaller than the checkpoint (\(before.0.count) bytes)")
        // 16 KiB: the metrics rows still fit, the checkpoint does not.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", "ulimit -f 16; exec \"$0\" \"$@\"", Self.executable.path, "train", "--resume", run.path, "--epochs", "2", "--threads", "1"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationReason == .exit && p.terminationStatus == 1, "status \(p.terminationStatus): \(stderr)")
        #expect(stderr.contains(checkpoint.path) && stderr.contains("File too large") && stderr.contains("the existing file is unchanged"), "\(stderr)")
        #expect(try Data(contentsOf: checkpoint) == before.0)
        #expect(try Data(contentsOf: model) == before.1)
        #expect(!Self.files(run).contains { $0.hasSuffix(".tmp") }, "\(Self.files(run))")
        // Room again: the same resume now completes.
        let resumed = try convnet(["train", "--resume", run.path, "--epochs", "2", "--threads", "1"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
    }

    @Test("SIGINT and SIGTERM save a checkpoint mid-epoch and say how to resume; the resumed run matches an uninterrupted one bit for bit")
    func interruptAndResume() throws {
        let dir = try makeTemporaryFolder()
        let reference = dir.appendingPathComponent("reference")
        #expect(try convnet(Self.mlpRun + ["--epochs", "3", "--out", reference.path]).status == 0)
        var compared = 0
        for (signal, status) in [(SIGINT, Int32(130)), (SIGTERM, Int32(143))] {
            let run = dir.appendingPathComponent("run\(signal)")
            let log = dir.appendingPathComponent("log\(signal)")
            // Many epochs, so the signal surely lands while training; the resume then stops at the reference's 3.
            let p = try Self.start(Self.mlpRun + ["--epochs", "100", "--out", run.path], log: log)
            // Signal once the first epoch's row is on disk: in epoch 2, mid-way.
            let csv = run.appendingPathComponent("metrics.csv")
            let deadline = Date().addingTimeInterval(60)
            while !((try? String(contentsOf: csv, encoding: .utf8))?.contains("\nepoch,") ?? false) && Date() < deadline { usleep(5_000) }
            kill(p.processIdentifier, signal)
            p.waitUntilExit()
            let text = try String(contentsOf: log, encoding: .utf8)
            #expect(p.terminationReason == .exit && p.terminationStatus == status, "\(text)")
            #expect(text.contains("stopped by \(signal == SIGINT ? "SIGINT" : "SIGTERM")"), "\(text)")
            #expect(text.contains("continue with: convnet train --resume \(run.path)"), "\(text)")
            let saved = try Checkpoint.read(from: run.appendingPathComponent("checkpoint.npz"))
            #expect(saved.progress.iteration > 0)
            guard saved.progress.epochsDone < 3 else { continue }  // the machine was slow: past the reference's end
            let resumed = try convnet(["train", "--resume", run.path, "--epochs", "3", "--threads", "1"])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            #expect(try Self.bits(run.appendingPathComponent("model.npz")) == (try Self.bits(reference.appendingPathComponent("model.npz"))))
            compared += 1
        }
        #expect(compared >= 1, "no interrupted run stopped within the reference's 3 epochs")
    }

    /// SIGKILL gives the process no chance to clean up: whatever checkpoint is on disk must read, and
    /// resuming from it (mid-epoch, with --checkpoint-every) must end at the uninterrupted run's weights.
    @Test("SIGKILL at random moments, then --resume, ends with the uninterrupted run's weights bit for bit")
    func killAtRandomMoments() throws {
        let dir = try makeTemporaryFolder()
        let args = Self.mlpRun + ["--epochs", "12", "--checkpoint-every", "7"]
        let reference = dir.appendingPathComponent("reference")
        let began = Date()
        #expect(try convnet(args + ["--out", reference.path]).status == 0)
        let runtime = Date().timeIntervalSince(began)
        let run = dir.appendingPathComponent("run")
        var random = SeededGenerator(seed: 2026)
        var kills = 0, resumes = 0, fresh = 0
        for attempt in 0..<10 {
            let hasCheckpoint = FileManager.default.fileExists(atPath: run.appendingPathComponent("checkpoint.npz").path)
            if !hasCheckpoint { try? FileManager.default.removeItem(at: run) }
            let p = try Self.start(hasCheckpoint ? ["train", "--resume", run.path, "--threads", "1"] : args + ["--out", run.path],
                                   log: dir.appendingPathComponent("log\(attempt)"))
            hasCheckpoint ? (resumes += 1) : (fresh += 1)
            usleep(UInt32(1_000_000 * runtime * (0.05 + 0.3 * Double(random.nextUnitFloat()))))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            if p.terminationReason == .uncaughtSignal { kills += 1 }
            if p.terminationReason == .exit, p.terminationStatus == 0 { break }
            if FileManager.default.fileExists(atPath: run.appendingPathComponent("checkpoint.npz").path) {
                #expect(throws: Never.self) { _ = try Checkpoint.read(from: run.appendingPathComponent("checkpoint.npz")) }
            }
        }
        if !FileManager.default.fileExists(atPath: run.appendingPathComponent("model.npz").path) {
            let hasCheckpoint = FileManager.default.fileExists(atPath: run.appendingPathComponent("checkpoint.npz").path)
            if !hasCheckpoint { try? FileManager.default.removeItem(at: run) }
            let last = try convnet(hasCheckpoint ? ["train", "--resume", run.path, "--threads", "1"] : args + ["--out", run.path])
            #expect(last.status == 0, "\(last.stderr)")
        }
        print("kill test: reference run \(String(format: "%.2f", runtime)) s; \(kills) SIGKILLs landed, \(resumes) resumes, \(fresh) fresh starts")
        #expect(kills >= 3, "too few kills landed while training (\(kills))")
        #expect(try Self.bits(run.appendingPathComponent("model.npz")) == (try Self.bits(reference.appendingPathComponent("model.npz"))))
    }

    @Test("--resume refuses options that contradict the saved run, naming the option; --checkpoint-every 0 is a usage error")
    func resumeRefusesContradictions() throws {
        let dir = try makeTemporaryFolder()
        let run = dir.appendingPathComponent("run")
        #expect(try convnet(Self.mlpRun + ["--epochs", "1", "--out", run.path]).status == 0)
        let before = try Data(contentsOf: run.appendingPathComponent("checkpoint.npz"))
        for (option, value) in [("--model", "lenet5"), ("--dataset", "toy-squares"), ("--batch-size", "32"), ("--lr", "0.5"),
                                ("--seed", "4"), ("--optimizer", "adam"), ("--spec", "flatten; dense 10"), ("--train-limit", "100")] {
            let r = try convnet(["train", "--resume", run.path, option, value])
            #expect(r.status == 64, "\(option): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains("\(option) \(option == "--spec" ? "'\(value)'" : value) contradicts the run in \(run.path)"), "\(r.stderr)")
        }
        #expect(try Data(contentsOf: run.appendingPathComponent("checkpoint.npz")) == before)
        // The same values are no contradiction.
        let same = try convnet(["train", "--resume", run.path, "--model", "mlp", "--batch-size", "16", "--seed", "3", "--epochs", "2", "--threads", "1"])
        #expect(same.status == 0, "\(same.stderr)")
        let zero = try convnet(["train", "--checkpoint-every", "0", "--out", dir.appendingPathComponent("x").path])
        #expect(zero.status == 64 && zero.stderr.contains("--checkpoint-every"), "\(zero.stderr)")
    }

    @Test("bad files through the CLI: corrupt, truncated, huge; the message names the file and the file is unchanged")
    func badFiles() throws {
        let dir = try makeTemporaryFolder()
        let run = dir.appendingPathComponent("run")
        #expect(try convnet(["train", "--model", "toy", "--epochs", "1", "--out", run.path, "--no-report"]).status == 0)
        let model = try Data(contentsOf: run.appendingPathComponent("model.npz"))
        var cases: [(name: String, data: Data, expected: String)] = []
        var flipped = model
        flipped[model.count / 3] ^= 0x01
        cases.append(("flipped.npz", flipped, "CRC-32"))
        cases.append(("truncated.npz", model.prefix(model.count / 2), "not a readable .npz"))
        cases.append(("empty.npz", Data(), "too short for a zip file"))
        for c in cases {
            let url = dir.appendingPathComponent(c.name)
            try c.data.write(to: url)
            let r = try convnet(["eval", "--weights", url.path])
            #expect(r.status == 1 && r.stderr.contains(url.path) && r.stderr.contains(c.expected), "\(c.name): \(r.stderr)")
            #expect(!r.stderr.contains("Fatal error"))
            #expect(try Data(contentsOf: url) == c.data)
        }
        let huge = try convnet(["train", "--spec", "flatten; dense 65536; dense 65536", "--out", dir.appendingPathComponent("h").path])
        #expect(huge.status == 1 && huge.stderr.contains("statement 3") && huge.stderr.contains("weights"), "\(huge.stderr)")
        let tooBig = try convnet(["train", "--spec", "dense 1000000", "--out", dir.appendingPathComponent("b").path])
        // A spec is checked before anything runs: a usage error.
        #expect(tooBig.status == 64 && tooBig.stderr.contains("too large"), "\(tooBig.stderr)")
        // A PNG whose IDAT was changed after its CRC was computed.
        let png = dir.appendingPathComponent("digit.png")
        var bytes = try PNGEncoder.encode(width: 6, height: 6, colorType: .grayscale, pixels: [UInt8](repeating: 128, count: 36))
        bytes[bytes.count - 20] ^= 0x40
        try Data(bytes).write(to: png)
        let r = try convnet(["predict", "--weights", run.appendingPathComponent("model.npz").path, png.path])
        #expect(r.status == 1 && r.stderr.contains(png.path) && r.stderr.contains("CRC-32"), "\(r.stderr)")
    }
}
