import Foundation
import Testing
@testable import ConvNet

/// Runs the `convnet` executable that `swift test` built beside the test bundle.
struct CLIResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var lastLine: String { stdout.split(separator: "\n").last.map(String.init) ?? "" }

    func json() throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(lastLine.utf8))
        return try #require(object as? [String: Any], "not a JSON object: \(lastLine)")
    }
}

/// The convnet executable beside the tests (or the release build's).
func convnetExecutable() throws -> URL {
    let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        .deletingLastPathComponent().appendingPathComponent("convnet")
    let candidates = [binary, URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/release/convnet")]
    guard let executable = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
        throw ValueError.invalidArgument("convnet executable not found beside the tests (\(binary.path)); run swift build first")
    }
    return executable
}

/// Runs convnet (or `program`, such as a shell that limits it and then runs it) with `arguments`.
func convnet(_ arguments: [String], in directory: URL? = nil, program: String? = nil) throws -> CLIResult {
    let process = Process()
    process.executableURL = try program.map { URL(fileURLWithPath: $0) } ?? convnetExecutable()
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = directory }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read both pipes while the process runs so neither fills up.
    let errData = UncheckedBox<Data>()
    let reader = Thread { errData.value = err.fileHandleForReading.readDataToEndOfFile() }
    reader.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while errData.value == nil { usleep(1000) }
    return CLIResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                     stderr: String(decoding: errData.value!, as: UTF8.self))
}

final class UncheckedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T?
    var value: T? {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
}

func weights(_ url: URL) throws -> [String: [Float]] {
    try NumPyArchive.read(from: url).filter { !$0.key.hasPrefix("meta.") }.mapValues { $0.floats() }
}

@Suite("The convnet command", .serialized)
struct CLITests {
    @Test("train writes metrics, weights NumPy can read, a checkpoint, a report and a JSON summary")
    func trainToy() throws {
        let dir = try makeTemporaryFolder()
        let run = dir.appendingPathComponent("run")
        let r = try convnet(["train", "--model", "toy", "--epochs", "3", "--out", run.path, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try r.json()
        for key in ["model", "dataset", "epochs", "batch_size", "optimizer", "seed", "train_images", "test_images", "train_loss",
                    "train_accuracy", "test_accuracy", "seconds", "images_per_second", "weights"] {
            #expect(summary[key] != nil, "missing \(key)")
        }
        #expect((summary["test_accuracy"] as? Double ?? 0) >= 0.95)
        for file in ["metrics.csv", "metrics.jsonl", "model.npz", "checkpoint.npz", "report.html", "loss.svg"] {
            #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent(file).path), "missing \(file)")
        }
        let arrays = try NumPyArchive.read(from: run.appendingPathComponent("model.npz"))
        #expect(arrays["conv1.weight"]?.shape == [1, 1, 3, 3])
        #expect(arrays["dense1.weight"]?.shape == [1, 4])
        #expect(try arrays["meta.spec"]?.string() == ToySquares.spec)
        let metrics = try RunMetrics.load(from: run.appendingPathComponent("metrics.csv"))
        #expect(metrics.epochs.count == 3)
        #expect(metrics.iterations.count == 3 * 32)

        let again = try convnet(["train", "--model", "toy", "--out", run.path])
        #expect(again.status != 0)
        #expect(again.stderr.contains("already holds a run"))

        let eval = try convnet(["eval", "--weights", run.appendingPathComponent("model.npz").path, "--json"])
        #expect(eval.status == 0, "\(eval.stderr)")
        let e = try eval.json()
        #expect(e["test_accuracy"] as? Double == summary["test_accuracy"] as? Double)
        #expect((e["confusion"] as? [[Int]])?.count == 2)
        #expect((e["per_class_accuracy"] as? [Double])?.count == 2)
    }

    @Test("the same seed and thread count give the same weights; resuming continues exactly")
    func reproducibleAndResumable() throws {
        let dir = try makeTemporaryFolder()
        let common = ["train", "--spec", "conv 4 3x3 pad 1; relu; maxpool 2; flatten; dense 10", "--train-limit", "600",
                      "--batch-size", "32", "--optimizer", "adam", "--seed", "5", "--threads", "2", "--no-report"]
        let a = try convnet(common + ["--epochs", "2", "--out", dir.appendingPathComponent("a").path])
        let b = try convnet(common + ["--epochs", "2", "--out", dir.appendingPathComponent("b").path])
        let c = try convnet(common + ["--epochs", "1", "--out", dir.appendingPathComponent("c").path])
        #expect(a.status == 0 && b.status == 0 && c.status == 0, "\(a.stderr)\(c.stderr)")
        let resumed = try convnet(["train", "--resume", dir.appendingPathComponent("c").path, "--epochs", "2", "--threads", "2"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let wa = try weights(dir.appendingPathComponent("a/model.npz"))
        #expect(wa == (try weights(dir.appendingPathComponent("b/model.npz"))))
        #expect(wa == (try weights(dir.appendingPathComponent("c/model.npz"))))
        let metrics = try RunMetrics.load(from: dir.appendingPathComponent("c/metrics.csv"))
        #expect(metrics.epochs.map(\.epoch) == [1, 2])
        let other = try convnet(common.map { $0 == "5" ? "6" : $0 } + ["--epochs", "1", "--out", dir.appendingPathComponent("d").path])
        #expect(other.status == 0)
        #expect(try weights(dir.appendingPathComponent("d/model.npz")) != (try weights(dir.appendingPathComponent("c/model.npz"))) )
    }

    @Test("--conv-algorithm: each algorithm repeats bit for bit and resumes exactly; winograd stays near direct; eval and bench take it")
    func convAlgorithm() throws {
        let dir = try makeTemporaryFolder()
        let common = ["train", "--spec", "conv 6 3x3 pad 1; relu; conv 8 3x3 pad 1; relu; maxpool 2; flatten; dense 10", "--train-limit", "320",
                      "--batch-size", "32", "--seed", "3", "--threads", "2", "--no-report"]
        func run(_ name: String, _ extra: [String]) throws -> [String: [Float]] {
            let r = try convnet(common + extra + ["--out", dir.appendingPathComponent(name).path])
            #expect(r.status == 0, "\(r.stderr)")
            return try weights(dir.appendingPathComponent("\(name)/model.npz"))
        }
        let auto = try run("auto", ["--epochs", "2"])
        let direct = try run("direct", ["--epochs", "2", "--conv-algorithm", "direct"])
        let winograd = try run("winograd", ["--epochs", "2", "--conv-algorithm", "winograd"])
        let again = try run("again", ["--epochs", "2", "--conv-algorithm", "WINOGRAD"])
        _ = try run("half", ["--epochs", "1", "--conv-algorithm", "winograd"])
        // auto takes Winograd from 48 input channels, so here it is direct; winograd repeats and differs (its rounding), but little.
        #expect(auto == direct)
        #expect(winograd == again)
        #expect(winograd != direct)
        for (key, w) in winograd {
            let d = direct[key]!
            let largest = d.map(abs).max()!
            #expect(zip(w, d).map { abs($0 - $1) }.max()! <= 1e-3 * max(largest, 1), "\(key)")
        }
        // The resume keeps the saved algorithm (no option given), and refuses another.
        let half = dir.appendingPathComponent("half").path
        let refused = try convnet(["train", "--resume", half, "--epochs", "2", "--conv-algorithm", "direct"])
        #expect(refused.status == 64 && refused.stderr.contains("--conv-algorithm direct contradicts the run"), "\(refused.stderr)")
        let resumed = try convnet(["train", "--resume", half, "--epochs", "2", "--threads", "2"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try weights(dir.appendingPathComponent("half/model.npz")) == winograd)
        // A wrong name is a usage error that lists the algorithms.
        let wrong = try convnet(["train", "--conv-algorithm", "fft", "--epochs", "1"])
        #expect(wrong.status == 64 && wrong.stderr.contains("auto, direct, winograd"), "\(wrong.stderr)")
        let model = dir.appendingPathComponent("winograd/model.npz").path
        let evals = try ["direct", "winograd"].map { a in
            let e = try convnet(["eval", "--weights", model, "--conv-algorithm", a, "--json"])
            #expect(e.status == 0, "\(e.stderr)")
            return try e.json()["test_accuracy"] as? Double
        }
        #expect(evals[0] != nil && evals[1] != nil && abs(evals[0]! - evals[1]!) <= 0.01)
        let bench = try convnet(["bench", "conv", "--repeats", "1", "--batch-size", "2", "--conv-algorithm", "winograd", "--json"])
        #expect(bench.status == 0, "\(bench.stderr)")
        #expect(bench.stdout.contains("\"algorithm\":\"winograd\"") && bench.stdout.contains("\"forward\":\"winograd\""))
    }

    @Test("a diverging run stops with the iteration and advice, and writes no weights")
    func divergence() throws {
        let dir = try makeTemporaryFolder()
        let r = try convnet(["train", "--model", "mlp", "--lr", "1e6", "--momentum", "0.99", "--epochs", "2", "--train-limit", "1000",
                             "--out", dir.appendingPathComponent("run").path])
        #expect(r.status != 0)
        #expect(r.stderr.contains("diverged") && r.stderr.contains("iteration") && r.stderr.contains("--lr"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("run/model.npz").path))
    }

    @Test("predict classifies PNG and PGM images; a bad image fails before any output")
    func predict() throws {
        let dir = try makeTemporaryFolder()
        let run = dir.appendingPathComponent("run")
        let t = try convnet(["train", "--model", "tiny-cnn", "--epochs", "2", "--out", run.path, "--no-report"])
        #expect(t.status == 0, "\(t.stderr)")
        let sample = try DatasetCatalog.loadSample().test
        // The first test images of two classes, as a 28x28 PNG and a PGM.
        let i0 = sample.labels.firstIndex(of: 0)!, i1 = sample.labels.firstIndex(of: 1)!
        func bytes(_ i: Int) -> [UInt8] { (0..<784).map { UInt8(max(0, min(255, (sample.images[i * 784 + $0] * 255).rounded()))) } }
        let png = dir.appendingPathComponent("zero.png"), pgm = dir.appendingPathComponent("one.pgm")
        try Data(try PNGEncoder.encode(width: 28, height: 28, colorType: .grayscale, pixels: bytes(i0))).write(to: png)
        try (Data("P5\n28 28\n255\n".utf8) + Data(bytes(i1))).write(to: pgm)
        let model = run.appendingPathComponent("model.npz").path
        let r = try convnet(["predict", "--weights", model, "--json", png.path, pgm.path])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let top = lines.map { (($0["predictions"] as! [[String: Any]])[0]["class"] as! Int) }
        #expect(top == [0, 1])

        let bad = dir.appendingPathComponent("bad.png")
        try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0]).write(to: bad)
        let failed = try convnet(["predict", "--weights", model, png.path, bad.path])
        #expect(failed.status != 0)
        #expect(failed.stdout.isEmpty)
        #expect(failed.stderr.contains("bad.png"))
    }

    @Test("bad input: weights that do not fit, unknown names, wrong export")
    func badInput() throws {
        let dir = try makeTemporaryFolder()
        let run = dir.appendingPathComponent("run")
        #expect(try convnet(["train", "--model", "toy", "--epochs", "1", "--out", run.path, "--no-report"]).status == 0)
        var arrays = try NumPyArchive.readOrdered(from: run.appendingPathComponent("model.npz"))
        let index = arrays.firstIndex { $0.name == "conv1.weight" }!
        arrays[index].array = try NumPyArray(shape: [2, 1, 3, 3], float32: [Float](repeating: 0, count: 18))
        let broken = dir.appendingPathComponent("broken.npz")
        try NumPyArchive.write(arrays, to: broken, compressed: false)
        let r = try convnet(["eval", "--weights", broken.path])
        #expect(r.status != 0)
        #expect(r.stderr.contains("conv1.weight") && r.stderr.contains("2x1x3x3") && r.stderr.contains("1x1x3x3"))
        #expect(!r.stderr.contains("Fatal error"))

        let unknownModel = try convnet(["train", "--model", "resnet", "--out", dir.appendingPathComponent("x").path])
        #expect(unknownModel.status != 0 && unknownModel.stderr.contains("unknown model 'resnet'"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("x").path))
        let unknownData = try convnet(["train", "--dataset", "imagenet", "--out", dir.appendingPathComponent("y").path])
        #expect(unknownData.status != 0 && unknownData.stderr.contains("imagenet"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("y").path))
        let export = try convnet(["train", "--model", "toy", "--export", "hw5", "--out", dir.appendingPathComponent("z").path])
        #expect(export.status != 0 && export.stderr.contains("mlp"))
        let notModel = try convnet(["eval", "--weights", dir.appendingPathComponent("none.npz").path])
        #expect(notModel.status != 0 && notModel.stderr.contains("none.npz"))

        // --threads and --kernels: checked the same way by every command that takes them.
        let weights = run.appendingPathComponent("model.npz").path
        for command in [
            ["train", "--epochs", "1"], ["eval", "--weights", weights], ["predict", "--weights", weights, "a.png"],
            ["compare"], ["bench"], ["bench", "gemm"], ["bench", "conv"],
        ] {
            let r = try convnet(command + ["--threads", "0"])
            #expect(r.status != 0 && r.stderr.contains("--threads must be at least 1, got 0"), "\(command)")
        }
        for command in [["bench", "--model", "mlp"], ["bench", "gemm"], ["bench", "conv"]] {
            let r = try convnet(command + ["--kernels", "sse9"])
            #expect(r.status != 0 && r.stderr.contains("unknown kernels 'sse9'") && r.stderr.contains("avx2"), "\(command)")
        }
    }

    @Test("--export hw5 writes the course handout's files with its shapes and layouts")
    func courseExport() throws {
        let dir = try makeTemporaryFolder()
        let mlp = dir.appendingPathComponent("mlp"), cnn = dir.appendingPathComponent("cnn")
        #expect(try convnet(["train", "--model", "mlp", "--epochs", "1", "--export", "hw5", "--out", mlp.path, "--no-report"]).status == 0)
        #expect(try convnet(["train", "--model", "tiny-cnn", "--epochs", "1", "--export", "hw5", "--out", cnn.path, "--no-report"]).status == 0)
        let m = try NumPyArchive.read(from: mlp.appendingPathComponent("mlp.npz"))
        #expect(m["w1"]?.shape == [30, 196] && m["b1"]?.shape == [30, 1] && m["w2"]?.shape == [10, 30] && m["b2"]?.shape == [10, 1])
        let c = try NumPyArchive.read(from: cnn.appendingPathComponent("cnn.npz"))
        #expect(c["w_conv"]?.shape == [3, 3, 1, 3] && c["b_conv"]?.shape == [3, 1] && c["w_fc"]?.shape == [10, 147] && c["b_fc"]?.shape == [10, 1])
        // The handout's layouts: w_conv[y, x, c, o] = conv1.weight[o, c, y, x]; w_fc flattens (H, W, C).
        let ours = try NumPyArchive.read(from: cnn.appendingPathComponent("model.npz"))
        let wc = try c["w_conv"]!.tensor(), w = try ours["conv1.weight"]!.tensor()
        #expect(wc[2, 1, 0, 1] == w[1, 0, 2, 1])
        let fc = try c["w_fc"]!.tensor(), d = try ours["dense1.weight"]!.tensor()
        #expect(fc[4, (3 * 7 + 5) * 3 + 2] == d[4, (2 * 7 + 3) * 7 + 5])
    }

    @Test("early stopping: at a training accuracy, and after epochs without validation gain")
    func earlyStopping() throws {
        let dir = try makeTemporaryFolder()
        let a = try convnet(["train", "--model", "toy", "--epochs", "20", "--early-stop", "acc=0.95", "--out", dir.appendingPathComponent("a").path,
                             "--no-report", "--json"])
        #expect(a.status == 0, "\(a.stderr)")
        let epochs = try a.json()["epochs"] as? Int ?? 0
        #expect(epochs >= 1 && epochs < 20)
        #expect(a.stderr.contains("stopped early"))
        let b = try convnet(["train", "--model", "toy", "--epochs", "30", "--early-stop", "patience=2", "--out", dir.appendingPathComponent("b").path,
                             "--no-report", "--json"])
        #expect(b.status == 0, "\(b.stderr)")
        #expect((try b.json()["epochs"] as? Int ?? 0) < 30)
        #expect(b.stderr.contains("validation"))
        let bad = try convnet(["train", "--model", "toy", "--early-stop", "soon"])
        #expect(bad.status != 0 && bad.stderr.contains("--early-stop"))
    }

    @Test("gradcheck prints a table, or JSON with every check, and exits 0 when all pass")
    func gradcheck() throws {
        let r = try convnet(["gradcheck", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try r.json()
        #expect(j["passed"] as? Bool == true)
        let checks = try #require(j["checks"] as? [[String: Any]])
        #expect(checks.count == 92)  // softmax cross-entropy with label smoothing added 3, global average pooling 5
        #expect(checks.allSatisfy { $0["layer"] is String && $0["quantity"] is String && $0["max_rel_error"] is Double && $0["passed"] is Bool })
        let strict = try convnet(["gradcheck", "--tolerance", "1e-12"])
        #expect(strict.status == 1)
        #expect(strict.stdout.contains("FAIL"))
    }

    @Test("compare trains each optimizer several times and writes a chart and a table")
    func compare() throws {
        let dir = try makeTemporaryFolder()
        let r = try convnet(["compare", "--optimizers", "sgd,adam", "--runs", "2", "--model", "toy", "--epochs", "2",
                             "--out", dir.path, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        #expect(rows.map { $0["optimizer"] as? String } == ["sgd", "adam"])
        #expect(rows.allSatisfy { $0["runs"] as? Int == 2 })
        let svg = try String(contentsOf: dir.appendingPathComponent("comparison.svg"), encoding: .utf8)
        #expect(svg.contains("<svg") && svg.contains("sgd") && svg.contains("adam"))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("comparison.md").path))
    }

    @Test("bench, bench gemm and bench conv print one JSON object per line with the issue's keys")
    func benchJSON() throws {
        func objects(_ r: CLIResult) -> [[String: Any]] {
            r.stdout.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }
        let models = try convnet(["bench", "--model", "mlp", "--batch-size", "8,16", "--repeats", "1", "--steps", "2",
                                  "--threads", "2", "--kernels", "portable", "--json"])
        #expect(models.status == 0, "\(models.stderr)")
        let rows = objects(models)
        #expect(rows.map { $0["batch_size"] as? Int } == [8, 16])
        for row in rows {
            for key in ["model", "batch_size", "threads", "train_images_per_second", "infer_images_per_second",
                        "train_gflops", "peak_rss_mb", "steady_state_allocations", "latency_median_us", "latency_p99_us"] {
                #expect(row[key] != nil, "bench --json lacks \(key)")
            }
            #expect(row["model"] as? String == "mlp" && row["threads"] as? Int == 2)
            #expect((row["train_images_per_second"] as? Double ?? 0) > 0)
            let median = row["latency_median_us"] as? Double ?? 0, p99 = row["latency_p99_us"] as? Double ?? 0
            #expect(median > 0 && p99 >= median)
        }
        let gemm = try convnet(["bench", "gemm", "--repeats", "1", "--threads", "1", "--json"])
        #expect(gemm.status == 0, "\(gemm.stderr)")
        let shapes = objects(gemm)
        #expect(shapes.count == 7)
        #expect(shapes.allSatisfy { row in
            ["m", "n", "k", "threads", "gflops"].allSatisfy { row[$0] != nil } && (row["gflops"] as? Double ?? 0) > 0
        })
        let conv = try convnet(["bench", "conv", "--repeats", "1", "--batch-size", "2", "--json"])
        #expect(conv.status == 0, "\(conv.stderr)")
        #expect(objects(conv).count == 9)
    }

    @Test("report and plot redraw a finished run from its directory; models lists the zoo")
    func reportPlotModels() throws {
        let dir = try makeTemporaryFolder()
        let run = dir.appendingPathComponent("run")
        #expect(try convnet(["train", "--model", "toy", "--epochs", "2", "--out", run.path, "--no-report"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: run.appendingPathComponent("report.html").path))
        let report = try convnet(["report", run.path])
        #expect(report.status == 0, "\(report.stderr)")
        let page = try String(contentsOf: run.appendingPathComponent("report.html"), encoding: .utf8)
        #expect(page.contains("<svg") && page.contains("toy"))
        let plot = try convnet(["plot", run.path])
        #expect(plot.status == 0, "\(plot.stderr)")
        #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent("accuracy.svg").path))
        let notRun = try convnet(["report", dir.path])
        #expect(notRun.status != 0 && notRun.stderr.contains("model.npz"))
        let models = try convnet(["models"])
        for name in ModelZoo.names { #expect(models.stdout.contains(name)) }
        #expect(models.stdout.contains("94610"))
    }

    @Test("full Fashion-MNIST: one epoch of LeNet-5 on 60,000 images",
          .enabled(if: FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist") || ProcessInfo.processInfo.environment["CI"] != nil,
                   "needs Debian's dataset-fashion-mnist (.ci/run installs it)"))
    func fullFashionMNIST() throws {
        let dir = try makeTemporaryFolder()
        let r = try convnet(["train", "--model", "lenet5", "--dataset", "fashion-mnist", "--epochs", "1", "--out",
                             dir.appendingPathComponent("run").path, "--no-report", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try r.json()
        #expect(summary["train_images"] as? Int == 60_000)
        #expect(summary["test_images"] as? Int == 10_000)
        #expect((summary["test_accuracy"] as? Double ?? 0) > 0.80)
    }
}
