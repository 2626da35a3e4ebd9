import Foundation
import Testing
@testable import ConvNet

/// What a new user trips over: run folders, resuming, option values, messages (issue 18).
@Suite("convnet for a new user: run folders, options, messages", .serialized)
struct UsabilityCLITests {
    @Test("--out refuses a folder of the user's own files and leaves them untouched")
    func outRefusesForeignFolder() throws {
        let dir = try makeTemporaryFolder()
        let mine = [("model.npz", Data("my own model".utf8)), ("report.html", Data("<p>my report</p>".utf8))]
        for (name, data) in mine { try data.write(to: dir.appendingPathComponent(name)) }
        let r = try convnet(["train", "--model", "toy", "--epochs", "1", "--out", dir.path, "--no-report"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("not empty") && r.stderr.contains("model.npz") && r.stderr.contains("--out"), "\(r.stderr)")
        for (name, data) in mine { #expect(try Data(contentsOf: dir.appendingPathComponent(name)) == data) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["model.npz", "report.html"])
        // A file is not a folder.
        let file = dir.appendingPathComponent("model.npz")
        let onFile = try convnet(["train", "--model", "toy", "--epochs", "1", "--out", file.path])
        #expect(onFile.status != 0 && onFile.stderr.contains("is a file"))
    }

    @Test("a run that fails in epoch 1 says what to do, and its folder can be run again")
    func failedRunCanBeRerun() throws {
        let dir = try makeTemporaryFolder()
        let run = dir.appendingPathComponent("run")
        let common = ["train", "--model", "mlp", "--train-limit", "1000", "--epochs", "1", "--out", run.path, "--no-report"]
        let failed = try convnet(common + ["--lr", "1e6", "--momentum", "0.99"])
        #expect(failed.status == 1)
        #expect(failed.stderr.contains("diverged") && failed.stderr.contains("nothing to resume")
            && failed.stderr.contains("--out \(run.path)"), "\(failed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: run.appendingPathComponent("checkpoint.npz").path))
        let resume = try convnet(["train", "--resume", run.path])
        #expect(resume.status != 0 && resume.stderr.contains("before its first epoch ended") && resume.stderr.contains("start it again"),
                "\(resume.stderr)")
        let again = try convnet(common)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("starting it again"))
        let metrics = try RunMetrics.load(from: run.appendingPathComponent("metrics.csv"))
        #expect(metrics.epochs.map(\.epoch) == [1])
        #expect(Set(metrics.iterations.map(\.iteration)).count == metrics.iterations.count)
        // Once an epoch has ended, the run resumes from its checkpoint.
        let later = try convnet(["train", "--resume", run.path, "--epochs", "2", "--threads", "1"])
        #expect(later.status == 0, "\(later.stderr)")
        // A run that fails after a checkpoint says how to continue from it.
        let url = run.appendingPathComponent("checkpoint.npz")
        var arrays = try NumPyArchive.readOrdered(from: url)
        let i = try #require(arrays.firstIndex { $0.name == "dense1.weight" })
        arrays[i].array = try NumPyArray(shape: arrays[i].array.shape, float32: [Float](repeating: 3e38, count: arrays[i].array.count))
        try NumPyArchive.write(arrays, to: url, compressed: false)
        let diverged = try convnet(["train", "--resume", run.path, "--epochs", "3"])
        #expect(diverged.status == 1)
        #expect(diverged.stderr.contains("diverged") && diverged.stderr.contains("checkpoint of epoch 2")
            && diverged.stderr.contains("--resume \(run.path)"), "\(diverged.stderr)")
    }

    @Test("resuming drops metrics rows past the checkpoint, removes killed writes' temporaries, and counts all epochs' time")
    func resumeKeepsMetricsOnce() throws {
        let dir = try makeTemporaryFolder()
        let run = dir.appendingPathComponent("run"), longer = dir.appendingPathComponent("longer")
        let common = ["train", "--no-report", "--threads", "1"]
        #expect(try convnet(common + ["--model", "toy", "--epochs", "2", "--out", run.path]).status == 0)
        #expect(try convnet(common + ["--model", "toy", "--epochs", "3", "--out", longer.path]).status == 0)
        // As if the run was killed after writing epoch 3's metrics but before its checkpoint, in the
        // middle of writing that checkpoint; epochs 1 and 2 took 100 s each.
        var metrics = try RunMetrics.load(from: longer.appendingPathComponent("metrics.csv"))
        for i in metrics.epochs.indices { metrics.epochs[i].seconds = 100 }
        try metrics.write(to: run)
        let stale = run.appendingPathComponent(".checkpoint.npz.12345.tmp")
        try Data("half a checkpoint".utf8).write(to: stale)

        let resumed = try convnet(common + ["--resume", run.path, "--epochs", "3", "--json"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let after = try RunMetrics.load(from: run.appendingPathComponent("metrics.csv"))
        #expect(after.epochs.map(\.epoch) == [1, 2, 3])
        #expect(after.iterations.map(\.iteration) == Array(1...(3 * 32)))
        let jsonl = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        #expect(jsonl.split(separator: "\n").count == 3 * 32 + 3)
        #expect(!FileManager.default.fileExists(atPath: stale.path))
        let seconds = try #require(try resumed.json()["seconds"] as? Double)
        #expect(seconds >= 200, "the summary counts the 200 s of epochs 1 and 2")
        #expect(resumed.stdout.contains("after 3 epochs"))
        // Resuming a finished run trains nothing and still reports its last epoch and all its time.
        let finished = try convnet(common + ["--resume", run.path, "--json"])
        #expect(finished.status == 0, "\(finished.stderr)")
        let summary = try finished.json()
        #expect(summary["epochs"] as? Int == 3 && summary["train_loss"] as? Double != nil)
        #expect((summary["seconds"] as? Double ?? 0) >= 200)
        #expect(try RunMetrics.load(from: run.appendingPathComponent("metrics.csv")).epochs.map(\.epoch) == [1, 2, 3])
    }

    @Test("a checkpoint whose optimizer state or progress does not fit the network is refused with a message")
    func checkpointValidated() throws {
        let dir = try makeTemporaryFolder()
        let run = dir.appendingPathComponent("run")
        #expect(try convnet(["train", "--model", "toy", "--epochs", "1", "--out", run.path, "--no-report"]).status == 0)
        let url = run.appendingPathComponent("checkpoint.npz")
        let original = try NumPyArchive.readOrdered(from: url)
        func resume(_ change: (inout [(name: String, array: NumPyArray)]) throws -> Void) throws -> CLIResult {
            var arrays = original
            try change(&arrays)
            try NumPyArchive.write(arrays, to: url, compressed: false)
            return try convnet(["train", "--resume", run.path, "--epochs", "2"])
        }
        func set(_ arrays: inout [(name: String, array: NumPyArray)], _ name: String, _ array: NumPyArray) throws {
            let i = try #require(arrays.firstIndex { $0.name == name }, "no \(name) in \(arrays.map(\.name))")
            arrays[i].array = array
        }
        #expect(original.contains { $0.name == "optimizer.conv1.weight.momentum" })

        let big = try resume { try set(&$0, "optimizer.conv1.weight.momentum", NumPyArray(tensor: Tensor(shape: [4096]))) }
        #expect(big.status == 1, "refused with an error, not a crash: \(big.stderr)")
        #expect(big.stderr.contains("optimizer.conv1.weight.momentum") && big.stderr.contains("4096") && big.stderr.contains("1x1x3x3"))
        let small = try resume { try set(&$0, "optimizer.dense1.weight.momentum", NumPyArray(tensor: Tensor(shape: [1]))) }
        #expect(small.status == 1 && small.stderr.contains("optimizer.dense1.weight.momentum"), "\(small.stderr)")
        let stray = try resume { $0.append(("optimizer.conv9.weight.momentum", NumPyArray(tensor: Tensor(shape: [3])))) }
        #expect(stray.status == 1 && stray.stderr.contains("belongs to no parameter"), "\(stray.stderr)")

        let progress = try #require(original.first { $0.name == "train.progress" }).array.string()
        for (key, value) in [("epochsDone", "-3"), ("epochsDone", "9223372036854775807"), ("iteration", "-1"), ("iteration", "9223372036854775807"),
                           ("batchesInEpoch", "-1"), ("epochSeen", "9223372036854775807")] {
            let edited = progress.replacingOccurrences(
                of: "\"\(key)\":[0-9]+", with: "\"\(key)\":\(value)", options: .regularExpression)
            #expect(edited != progress)
            let r = try resume { try set(&$0, "train.progress", NumPyArray(string: edited)) }
            #expect(r.status == 1 && r.stderr.contains("checkpoint.npz") && r.stderr.contains("progress"), "\(key)=\(value): \(r.stderr)")
        }
        let steps = try resume { try set(&$0, "train.optimizer_steps", NumPyArray(labels: [-7])) }
        #expect(steps.status == 1 && steps.stderr.contains("steps"), "\(steps.stderr)")

        let badJSON = try resume { try set(&$0, "train.settings", NumPyArray(string: "{\"network\": [1, 2")) }
        #expect(badJSON.status == 1 && badJSON.stderr.contains("train.settings") && badJSON.stderr.contains("not valid JSON"), "\(badJSON.stderr)")
        #expect(!badJSON.stderr.contains("DecodingError") && !badJSON.stderr.contains("codingPath"))
        let wrongJSON = try resume { try set(&$0, "train.settings", NumPyArray(string: "{\"network\": 3}")) }
        #expect(wrongJSON.status == 1 && wrongJSON.stderr.contains("train.settings") && !wrongJSON.stderr.contains("DecodingError"),
                "\(wrongJSON.stderr)")

        let settings = try #require(original.first { $0.name == "train.settings" }).array.string()
        let zeroBatch = settings.replacingOccurrences(of: "\"batchSize\":64", with: "\"batchSize\":0")
        #expect(zeroBatch != settings)
        let badSettings = try resume { try set(&$0, "train.settings", NumPyArray(string: zeroBatch)) }
        #expect(badSettings.status == 1 && badSettings.stderr.contains("train.settings") && badSettings.stderr.contains("batch"),
                "\(badSettings.stderr)")

        let fine = try resume { _ in }
        #expect(fine.status == 0, "the unchanged checkpoint still resumes: \(fine.stderr)")
    }

    @Test("negative numbers reach the options, and every bad option value is a usage error naming the option")
    func optionValues() throws {
        let train = ["train", "--model", "toy", "--no-report", "--out", try makeTemporaryFolder().appendingPathComponent("never").path]
        let cases: [([String], String)] = [
            (["--epochs", "-1"], "--epochs"), (["--epochs", "0"], "--epochs"), (["--lr", "-0.1"], "--lr"), (["--lr", "nan"], "--lr"),
            (["--seed", "-1"], "--seed"), (["--batch-size", "0"], "--batch-size"), (["--batch-size", "-8"], "--batch-size"),
            (["--threads", "0"], "--threads"), (["--threads", "-2"], "--threads"), (["--validation", "1"], "--validation"),
            (["--momentum", "1"], "--momentum"), (["--momentum", "-0.5"], "--momentum"), (["--weight-decay", "-1"], "--weight-decay"),
            (["--lr-decay", "0"], "--lr-decay"), (["--decay-every", "-5"], "--decay-every"), (["--clip", "-1"], "--clip"),
            (["--clip-norm", "0"], "--clip-norm"), (["--train-limit", "0"], "--train-limit"), (["--init", "magic"], "--init"),
            (["--optimizer", "rmsprop"], "optimizer"), (["--early-stop", "soon"], "--early-stop"), (["--export", "hw6"], "--export"),
        ]
        for (arguments, option) in cases {
            let r = try convnet(train + arguments)
            #expect(r.status == 64, "\(arguments): exit \(r.status) \(r.stderr)")
            #expect(r.stderr.contains(option) && !r.stderr.contains("Missing value"), "\(arguments): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: train.last!))
        let others: [([String], String)] = [
            (["compare", "--lr", "-1"], "--lr"), (["compare", "--runs", "0"], "--runs"), (["compare", "--optimizers", "sgd,foo"], "foo"),
            (["gradcheck", "--epsilon", "-0.01"], "--epsilon"), (["explain", "--learning-rate", "nan"], "--learning-rate"),
            (["predict", "--weights", "m.npz", "--top", "-1", "a.png"], "--top"), (["plot", ".", "--smoothing", "-0.5"], "--smoothing"),
            (["datasets", "--benchmark-batch", "0"], "--benchmark-batch"), (["bench", "gemm", "--repeats", "-1"], "--repeats"),
            (["bench", "--batch-size", "-8"], "--batch-size"),
        ]
        for (arguments, option) in others {
            let r = try convnet(arguments)
            #expect(r.status == 64 && r.stderr.contains(option) && !r.stderr.contains("Missing value"), "\(arguments): \(r.status) \(r.stderr)")
        }
    }

    @Test("messages name the file and the problem in plain words")
    func plainMessages() throws {
        let dir = try makeTemporaryFolder()
        let folder = dir.appendingPathComponent("a-folder")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let spec = try convnet(["train", "--spec", folder.path, "--out", dir.appendingPathComponent("x").path])
        #expect(spec.status == 64 && spec.stderr.contains(folder.path) && spec.stderr.contains("folder"), "\(spec.stderr)")
        #expect(!spec.stderr.contains("NSCocoaErrorDomain") && !spec.stderr.contains("Error Domain"))
    }

    @Test("eval warns when the data set is not the one the model was trained on; bad norm_mean/norm_std and NaN weights are errors")
    func modelFileChecks() throws {
        let dir = try makeTemporaryFolder()
        let run = dir.appendingPathComponent("run")
        #expect(try convnet(["train", "--model", "mlp", "--epochs", "1", "--train-limit", "500", "--out", run.path, "--no-report"]).status == 0)
        let model = run.appendingPathComponent("model.npz")
        // Another 28x28, 10-class data set.
        var random = SeededGenerator(seed: 4)
        let images = try NumPyArray(shape: [20, 28, 28], float32: (0..<(20 * 784)).map { _ in random.nextUnitFloat() })
        let labels = NumPyArray(labels: (0..<20).map { $0 % 10 })
        let other = dir.appendingPathComponent("other.npz")
        try NumPyArchive.write([("x_train", images), ("y_train", labels), ("x_test", images), ("y_test", labels)], to: other, compressed: false)
        let mismatch = try convnet(["eval", "--weights", model.path, "--dataset", other.path])
        #expect(mismatch.status == 0, "\(mismatch.stderr)")
        #expect(mismatch.stderr.contains("warning") && mismatch.stderr.contains("mnist-sample") && mismatch.stderr.contains("other.npz"))
        let same = try convnet(["eval", "--weights", model.path, "--dataset", "mnist-sample"])
        #expect(same.status == 0 && !same.stderr.contains("warning"), "\(same.stderr)")

        let arrays = try NumPyArchive.readOrdered(from: model)
        func broken(_ name: String, _ change: (inout NumPyArray) throws -> Void) throws -> URL {
            var copy = arrays
            let i = try #require(copy.firstIndex { $0.name == name })
            try change(&copy[i].array)
            let url = dir.appendingPathComponent("broken-\(name).npz")
            try NumPyArchive.write(copy, to: url, compressed: false)
            return url
        }
        let norm = try broken("norm_std") { $0 = try NumPyArray(shape: [3], float32: [1, 1, 1]) }
        for command in [["eval", "--weights", norm.path], ["predict", "--weights", norm.path, "x.png"]] {
            let r = try convnet(command)
            #expect(r.status == 1 && r.stderr.contains(norm.lastPathComponent) && r.stderr.contains("norm_mean"), "\(command): \(r.stderr)")
        }
        let nan = try broken("dense1.weight") { a in
            var values = a.floats()
            values[7] = .nan
            a = try NumPyArray(shape: a.shape, float32: values)
        }
        for command in [["eval", "--weights", nan.path], ["predict", "--weights", nan.path, "x.png"]] {
            let r = try convnet(command)
            #expect(r.status == 1 && r.stderr.contains(nan.lastPathComponent) && r.stderr.contains("dense1.weight")
                && r.stderr.contains("nan"), "\(command): \(r.stderr)")
            #expect(!r.stdout.contains("nan%"))
        }
    }

    @Test("help texts explain hw5 and the zoo without course jargon")
    func helpTexts() throws {
        var texts: [String] = []
        for command in ["train", "eval", "predict", "models", "datasets", "download", "report", "plot", "explain", "compare", "gradcheck", "bench"] {
            let r = try convnet([command, "--help"])
            #expect(r.status == 0, "\(command)")
            texts.append(r.stdout)
        }
        texts.append(try convnet(["models"]).stdout)
        let all = texts.joined(separator: "\n").split(whereSeparator: \.isWhitespace).joined(separator: " ")  // help wraps lines
        for jargon in ["handout", "the course MLP", "the course CNN"] { #expect(!all.contains(jargon), "\(jargon)") }
        #expect(all.contains("homework 5"))
    }
}

@Suite("The report's charts")
struct ReportChartTests {
    @Test("a constant learning rate is drawn inside the plot, not on its top border")
    func learningRateBelowTopBorder() throws {
        var m = RunMetrics()
        for i in 1...50 { m.iterations.append(IterationMetrics(epoch: 1, iteration: i, loss: 1, learningRate: 0.01)) }
        let svg = RunCharts.learningRate(m).svg()
        func number(after marker: String, in text: Substring) throws -> Double {
            let start = try #require(text.range(of: marker)).upperBound
            return try #require(Double(text[start...].prefix { $0 != "\"" }))
        }
        let axes = try #require(svg.range(of: "class=\"axes\"")).upperBound
        let frame = svg[axes...][try #require(svg[axes...].range(of: "<rect ")).lowerBound...]
        let top = try number(after: "y=\"", in: frame), height = try number(after: "height=\"", in: frame)
        let line = try #require(svg.range(of: "class=\"series\""))
        let points = try #require(svg[line.upperBound...].range(of: "points=\""))
        let ys = try svg[points.upperBound...].prefix { $0 != "\"" }.split(separator: " ").map { pair in
            try #require(Double(pair.split(separator: ",")[1]))
        }
        #expect(ys.count == 50)
        #expect(ys.allSatisfy { $0 > top + 0.05 * height && $0 < top + height }, "line at \(ys.first ?? 0), plot \(top)...\(top + height)")
    }
}

/// Runs a command line tool; its exit status.
@discardableResult
func runTool(_ path: String, _ arguments: [String]) -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return -1 }
    process.waitUntilExit()
    return process.terminationStatus
}

/// True where this process may mount a small tmpfs (root with CAP_SYS_ADMIN, as on the CI machine).
let canMountTmpfs: Bool = {
    guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/bin/mount") else { return false }
    guard let probe = try? makeTemporaryFolder("mount-probe") else { return false }
    defer { try? FileManager.default.removeItem(at: probe) }
    guard runTool("/bin/mount", ["-t", "tmpfs", "-o", "size=16k", "tmpfs", probe.path]) == 0 else { return false }
    runTool("/bin/umount", [probe.path])
    return true
}()

@Suite("convnet on a full disk")
struct FullDiskTests {
    @Test("a full disk is reported as such, with the file, and the run folder stays reusable",
          .enabled(if: canMountTmpfs, "needs permission to mount a small tmpfs (root)"))
    func fullDisk() throws {
        let disk = try makeTemporaryFolder()
        // Three 4 KiB pages: the two metrics files take two, a checkpoint needs two more.
        #expect(runTool("/bin/mount", ["-t", "tmpfs", "-o", "size=12k", "tmpfs", disk.path]) == 0)
        defer { runTool("/bin/umount", [disk.path]) }
        let run = disk.appendingPathComponent("run")
        let r = try convnet(["train", "--model", "toy", "--epochs", "1", "--out", run.path, "--no-report"])
        #expect(r.status == 1)
        #expect(r.stderr.lowercased().contains("no space left on device") && r.stderr.contains(run.appendingPathComponent("checkpoint.npz").path),
                "\(r.stderr)")
        #expect(!r.stderr.contains("NSCocoaErrorDomain") && !r.stderr.contains("unwritableFile"))
        #expect(r.stderr.contains("can be reused"))
        let names = try FileManager.default.contentsOfDirectory(atPath: run.path)
        #expect(!names.contains { $0.hasSuffix(".tmp") }, "\(names)")
    }
}
