import Foundation
import Testing
@testable import ConvNet

/// The run folder's files agree with each other: metrics rows go with the checkpoint they belong to, a torn
/// row is dropped, a hand-edited checkpoint that contradicts itself or its model is refused, charts survive
/// any number a metrics file holds, and a user's own files are not taken for a run.
@Suite("Checkpoints and metrics agree; charts take any number", .serialized)
struct CheckpointConsistencyTests {
    static func run(_ dir: URL, epochs: Int = 1) throws -> URL {
        let run = dir.appendingPathComponent("run")
        let r = try convnet(["train", "--model", "softmax-regression", "--epochs", String(epochs), "--train-limit", "256", "--out", run.path, "--no-report"])
        #expect(r.status == 0, "\(r.stderr)")
        return run
    }

    /// Rewrites one array of a checkpoint.
    static func edit(_ checkpoint: URL, _ name: String, _ array: NumPyArray) throws {
        var arrays = try NumPyArchive.readOrdered(from: checkpoint)
        let i = try #require(arrays.firstIndex { $0.name == name })
        arrays[i].array = array
        try NumPyArchive.write(arrays, to: checkpoint, compressed: false)
    }

    @Test("a checkpoint that cannot be written takes its metrics rows with it, and the error names the checkpoint that stays")
    func metricsFollowCheckpoint() throws {
        let dir = try makeTemporaryFolder()
        let run = try Self.run(dir)
        let csv = run.appendingPathComponent("metrics.csv"), jsonl = run.appendingPathComponent("metrics.jsonl")
        let before = (try Data(contentsOf: csv), try Data(contentsOf: jsonl))
        // ulimit -f 16: the metrics rows (a few hundred bytes) can be appended, the 60 KB checkpoint cannot.
        let r = try convnet(["-c", "ulimit -f 16 && exec \"$0\" \"$@\"", convnetExecutable().path, "train", "--resume", run.path, "--epochs", "2"],
                            program: "/bin/sh")
        #expect(r.status == 1, "\(r.status) \(r.stderr)")
        #expect(r.stderr.contains("the checkpoint of epoch 1 stays in"), "\(r.stderr)")
        #expect(try Data(contentsOf: csv) == before.0 && Data(contentsOf: jsonl) == before.1, "rows of the unsaved epoch 2 were left behind")
        // And the run goes on from epoch 1.
        let again = try convnet(["train", "--resume", run.path, "--epochs", "2", "--no-report"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try RunMetrics.load(from: csv).epochs.map(\.epoch) == [1, 2])
    }

    @Test("a torn last row (a killed append) is dropped on reading; a bad complete row is still an error")
    func tornRow() throws {
        let dir = try makeTemporaryFolder()
        let run = try Self.run(dir)
        let csv = run.appendingPathComponent("metrics.csv")
        let whole = try RunMetrics.load(from: csv)
        try (try Data(contentsOf: csv) + Data("iteration,2,5,0.7".utf8)).write(to: csv)
        let read = try RunMetrics.load(from: csv)
        #expect(read.iterations.count == whole.iterations.count && read.epochs.count == whole.epochs.count)
        try (try Data(contentsOf: csv) + Data("\n".utf8)).write(to: csv)
        #expect(throws: MetricsError.self) { _ = try RunMetrics.load(from: csv) }
    }

    @Test("a folder holding only the user's own metrics.csv is not taken for an interrupted run")
    func usersOwnMetrics() throws {
        let dir = try makeTemporaryFolder()
        let folder = dir.appendingPathComponent("mine")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let mine = Data("step,loss\n1,0.5\n".utf8)
        try mine.write(to: folder.appendingPathComponent("metrics.csv"))
        let r = try convnet(["train", "--model", "softmax-regression", "--epochs", "1", "--out", folder.path])
        #expect(r.status == 1 && r.stderr.contains("holds no ConvNet run"), "\(r.stderr)")
        #expect(try Data(contentsOf: folder.appendingPathComponent("metrics.csv")) == mine)
    }

    @Test("hand-edited checkpoints: contradicting counters, settings for another network or data set, unreadable progress")
    func editedCheckpoints() throws {
        let dir = try makeTemporaryFolder()
        let run = try Self.run(dir)
        let checkpoint = run.appendingPathComponent("checkpoint.npz")
        let pristine = try Data(contentsOf: checkpoint)
        let progress = try Checkpoint.read(from: checkpoint).progress
        func resume() throws -> CLIResult { try convnet(["train", "--resume", run.path, "--epochs", "2", "--no-report"]) }
        func encoded(_ p: TrainingProgress) throws -> NumPyArray { NumPyArray(string: String(decoding: try JSONEncoder().encode(p), as: UTF8.self)) }

        var skipped = progress
        skipped.iteration += 3  // iterations that no epoch or batch accounts for
        try Self.edit(checkpoint, "train.progress", try encoded(skipped))
        try Self.edit(checkpoint, "train.optimizer_steps", NumPyArray(labels: [skipped.iteration]))
        var r = try resume()
        #expect(r.status == 1 && r.stderr.contains("cannot be used") && r.stderr.contains("does not fit a run of 4 batches"), "\(r.stderr)")

        try pristine.write(to: checkpoint)
        try Self.edit(checkpoint, "train.optimizer_steps", NumPyArray(labels: [progress.iteration + 1]))
        r = try resume()
        #expect(r.status == 1 && r.stderr.contains("optimizer took"), "\(r.stderr)")

        try pristine.write(to: checkpoint)
        try Self.edit(checkpoint, "train.progress", NumPyArray(string: "{\"epochsDone\": \"one\"}"))
        r = try resume()
        #expect(r.status == 1 && r.stderr.contains("train.progress does not read") && !r.stderr.contains("no train.* arrays"), "\(r.stderr)")

        for (from, to, what) in [("\"mnist-sample\"", "\"toy-squares\"", "data set"), ("flatten; dense 10", "flatten; dense 12", "network")] {
            try pristine.write(to: checkpoint)
            let settings = try Checkpoint.read(from: checkpoint).settings
            #expect(settings.contains(from), "\(settings)")
            try Self.edit(checkpoint, "train.settings", NumPyArray(string: settings.replacingOccurrences(of: from, with: to)))
            r = try resume()
            #expect(r.status == 1 && r.stderr.contains("run settings name the \(what)"), "\(r.stderr)")
        }
        try pristine.write(to: checkpoint)
        #expect(try resume().status == 0)
    }

    @Test("charts take losses of ±1e308 and iterations of ±Int.max without trapping")
    func extremeNumbers() throws {
        var metrics = RunMetrics()
        for (i, loss) in [(1, 1e308), (Int.max, -1e308), (Int.min, 1.7976931348623157e308), (5, 2.0)] {
            metrics.iterations.append(IterationMetrics(epoch: 1, iteration: i, loss: loss, learningRate: loss))
        }
        metrics.epochs.append(EpochMetrics(epoch: Int.max, iteration: Int.max, trainLoss: 1e308, trainAccuracy: -1e308, testAccuracy: 1e308, seconds: 1e308))
        metrics.epochs.append(EpochMetrics(epoch: Int.min, iteration: 0, trainLoss: -1e308, trainAccuracy: 1e308, testAccuracy: -1e308, seconds: 1))
        let charts = RunCharts.all(metrics)
        #expect(!charts.isEmpty)
        let scale = NiceScale(minimum: -1e308, maximum: 1e308)
        #expect(scale.lower.isFinite && scale.upper.isFinite && (2...1001).contains(scale.ticks.count))
        #expect(SVG.coordinate(1e300) != "")
    }
}
