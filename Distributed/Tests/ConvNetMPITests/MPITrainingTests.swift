import ConvNet
import ConvNetCLI
import Foundation
import Testing

/// two-conv at global batch 128 (the issue's speed setting) for one epoch on 2001 images of the bundled
/// sample: 15 batches of 128 and one of 81, which 2 and 4 ranks split unevenly.
let trainArguments = ["train", "--model", "two-conv", "--epochs", "1", "--train-limit", "2001", "--batch-size", "128", "--no-report", "--json"]

@Suite("convnet-mpi train under mpirun", .serialized)
struct MPITrainingTests {
    /// One process with 2 threads, run in this test process exactly as `convnet train` runs it.
    func referenceRun(in folder: URL, arguments: [String] = trainArguments) throws -> (weights: [String: [Float]], accuracy: Double) {
        let run = folder.appendingPathComponent("reference")
        let command = try TrainCommand.parse(Array(arguments.dropFirst()) + ["--threads", "2", "--out", run.path])
        try command.run()
        let rows = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        let last = try #require(try JSONSerialization.jsonObject(with: Data(rows.last!.utf8)) as? [String: Any])
        return (try weights(in: run), try #require(last["test_accuracy"] as? Double))
    }

    @Test("1, 2 and 4 ranks train the weights of one process (within 1e-5, accuracy within 0.1 pt), the same bits on every run")
    func equivalence() throws {
        try checkEquivalence("two-conv", trainArguments.dropFirst().filter { $0 != "--json" }, runs: [(1, false), (2, false), (2, true), (4, false)]) { run in
            // Rank 0 alone wrote the run folder, and wrote all of it.
            let files = try FileManager.default.contentsOfDirectory(atPath: run.path).sorted()
            #expect(files == ["checkpoint.npz", "metrics.csv", "metrics.jsonl", "model.npz"])
        }
    }

    @Test("--resume under 2 ranks continues to the same bits as an uninterrupted 2-rank run")
    func resume() throws {
        let folder = try scratchFolder("resume")
        let common = ["train", "--model", "lenet5", "--train-limit", "1000", "--batch-size", "50", "--no-report", "--threads", "1"]
        let straight = folder.appendingPathComponent("straight"), resumed = folder.appendingPathComponent("resumed")
        let a = try mpirun(ranks: 2, common + ["--epochs", "2", "--out", straight.path])
        try #require(a.status == 0, "\(a.stderr)")
        let b = try mpirun(ranks: 2, common + ["--epochs", "1", "--out", resumed.path])
        try #require(b.status == 0, "\(b.stderr)")
        let c = try mpirun(ranks: 2, ["train", "--resume", resumed.path, "--epochs", "2", "--threads", "1"])
        try #require(c.status == 0, "\(c.stderr)")
        #expect(c.stderr.contains("resuming after epoch 1 of 2"))
        #expect(try difference(weights(in: straight), weights(in: resumed)).identical)
        let rows = try String(contentsOf: resumed.appendingPathComponent("metrics.csv"), encoding: .utf8)
        let straightRows = try String(contentsOf: straight.appendingPathComponent("metrics.csv"), encoding: .utf8)
        #expect(rows.split(separator: "\n").count == straightRows.split(separator: "\n").count)
    }

    @Test("A missing data file on one rank ends the whole job within seconds with that rank's message, leaving no files")
    func errorOnOneRank() throws {
        let folder = try scratchFolder("error")
        let run = folder.appendingPathComponent("run")
        let missing = folder.appendingPathComponent("missing.npz").path
        let common = ["train", "--model", "lenet5", "--epochs", "1", "--train-limit", "500", "--threads", "1", "--out", run.path]
        // Two programs in one job (MPMD): rank 0 has its data, rank 1 is given a file that is not there.
        let result = try runProgram(
            "/usr/bin/mpirun",
            mpirunOptions + ["-np", "1", convnetMPI.path] + common + [":", "-np", "1", convnetMPI.path] + common + ["--dataset", missing],
            environment: mpiEnvironment)
        #expect(result.status != 0)
        #expect(result.seconds < 30, "the job took \(result.seconds) s to end")
        #expect(result.stderr.contains("rank 1 of 2"), "\(result.stderr)")
        #expect(result.stderr.contains("missing.npz"), "\(result.stderr)")
        for name in ["model.npz", "checkpoint.npz", "metrics.csv"] {
            #expect(!FileManager.default.fileExists(atPath: run.appendingPathComponent(name).path), "\(name) was written")
        }
    }

    @Test("A bad option ends every rank with exit status 64 and one message")
    func usageError() throws {
        let result = try mpirun(ranks: 2, ["train", "--batch-size", "many"])
        #expect(result.status == 64)
        #expect(result.stderr.components(separatedBy: "Error: The value 'many' is invalid for '--batch-size").count == 2, "\(result.stderr)")
    }

    /// Runs `arguments` (after `train`) in this test process with 2 threads, as `convnet train` does, then on
    /// each of `runs` (ranks of 1 thread, one rank of 2; a repeat must give the first run's bits), checks each
    /// against the one process and hands its run folder to `eachRun`. Returns the one process's weights.
    @discardableResult
    func checkEquivalence(
        _ name: String, _ arguments: [String], runs: [(ranks: Int, repeatRun: Bool)] = [(1, false), (2, false), (2, true), (3, false), (3, true)],
        eachRun: (URL) throws -> Void = { _ in }
    ) throws -> [String: [Float]] {
        let folder = try scratchFolder(name)
        let reference = try referenceRun(in: folder, arguments: ["train"] + arguments)
        #expect(reference.accuracy > 0)
        var firstOfSize: [Int: [String: [Float]]] = [:]
        for (ranks, repeatRun) in runs {
            let out = folder.appendingPathComponent("r\(ranks)-\(repeatRun ? "b" : "a")")
            let result = try mpirun(ranks: ranks, ["train"] + arguments + ["--threads", ranks == 1 ? "2" : "1", "--json", "--out", out.path])
            try #require(result.status == 0, "mpirun -np \(ranks) failed: \(result.stderr)")
            let trained = try weights(in: out)
            let (relative, identical) = try difference(reference.weights, trained)
            let accuracy = try #require(try summary(result)["test_accuracy"] as? Double)
            print("equivalence \(name): \(ranks) ranks vs 1 process x 2 threads: max weight difference \(relative) "
                  + "(relative to the largest weight, running statistics included), \(identical ? "identical bits" : "not the same bits"), test accuracy "
                  + String(format: "%.2f%% vs %.2f%%", 100 * accuracy, 100 * reference.accuracy) + " in \(String(format: "%.1f", result.seconds)) s")
            #expect(relative <= 1e-5, "\(ranks) ranks: \(relative)")
            #expect(abs(accuracy - reference.accuracy) <= 0.001 + 1e-12)
            if ranks == 1 { #expect(identical, "one rank is one process: the same bits") }
            if repeatRun {
                #expect(try difference(firstOfSize[ranks]!, trained).identical, "the same ranks give the same bits")
            } else {
                firstOfSize[ranks] = trained
            }
            try eachRun(out)
        }
        return reference.weights
    }

    /// 258 training images in batches of 64: the last batch of 2 leaves rank 2 of 3 an empty slice.
    static let fewSteps = ["--epochs", "1", "--train-limit", "258", "--batch-size", "64", "--no-report"]

    /// vgg-bn by the mnist-best recipe (batch norm, augmentation, Nesterov, label smoothing) for 4 steps of
    /// 64, 64, 64 and 2 images, at lr 0.01: at the recipe's 0.05 a few steps already amplify rounding (a
    /// max-pooling winner that flips, a last batch of 2 normalised on its own) to 1e-3 and more, with ranks
    /// as with 1 against 2 threads in one process.
    static let vggBN = ["--recipe", "mnist-best", "--warmup", "0.5", "--lr", "0.01", "--epochs", "1", "--train-limit", "194",
                        "--batch-size", "64", "--no-report"]

    @Test("vgg-bn by the mnist-best recipe (batch norm, augmentation) on 1, 2 and 3 ranks trains one process's weights and running statistics")
    func batchNormEquivalence() throws {
        let weights = try checkEquivalence("vgg-bn", Self.vggBN)
        #expect(weights.keys.contains { $0.hasSuffix("running_var") })
    }

    /// A network with dropout in front of both dense layers and batch norm over features and over channels.
    static let dropoutSpec = "conv 8 3x3 pad 1; batchnorm; relu; maxpool 2; flatten; dropout 0.3; dense 32; batchnorm; relu; dropout 0.2; dense 10"

    @Test("A dropout network on 1, 2 and 3 ranks trains one process's weights")
    func dropoutEquivalence() throws {
        let weights = try checkEquivalence("dropout", ["--spec", Self.dropoutSpec, "--seed", "3"] + Self.fewSteps)
        #expect(weights.keys.contains { $0.hasSuffix("running_var") })
    }

    @Test("--resume under 2 ranks with batch norm and dropout continues to the same bits as an uninterrupted 2-rank run")
    func resumeBatchNormDropout() throws {
        let folder = try scratchFolder("resume-bn")
        let common = ["train", "--spec", Self.dropoutSpec, "--train-limit", "300", "--batch-size", "64", "--no-report", "--threads", "1"]
        let straight = folder.appendingPathComponent("straight"), resumed = folder.appendingPathComponent("resumed")
        let a = try mpirun(ranks: 2, common + ["--epochs", "2", "--out", straight.path])
        try #require(a.status == 0, "\(a.stderr)")
        let b = try mpirun(ranks: 2, common + ["--epochs", "1", "--out", resumed.path])
        try #require(b.status == 0, "\(b.stderr)")
        let c = try mpirun(ranks: 2, ["train", "--resume", resumed.path, "--epochs", "2", "--threads", "1"])
        try #require(c.status == 0, "\(c.stderr)")
        #expect(try difference(weights(in: straight), weights(in: resumed)).identical)
    }

    @Test("bench prints one row per rank count with its communication share")
    func bench() throws {
        let result = try mpirun(ranks: 2, ["bench", "--model", "lenet5", "--batch-size", "64", "--steps", "3", "--repeats", "1", "--json"])
        try #require(result.status == 0, "\(result.stderr)")
        let rows = result.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(rows.map { $0["ranks"] as? Int } == [1, 2])
        for row in rows {
            let share = try #require(row["communication_share"] as? Double)
            #expect(share >= 0 && share < 1)
            #expect((row["images_per_second"] as? Double ?? 0) > 0)
            #expect(row["reduced_floats"] as? Int == 61706 + 2)
            #expect(row["batchnorm_sums"] as? Int == 0, "lenet5 has no batch norm")
        }
    }

    @Test("bench of fast-bn counts two batch-norm reductions per layer and step on 2 ranks")
    func benchBatchNorm() throws {
        let result = try mpirun(ranks: 2, ["bench", "--model", "fast-bn", "--batch-size", "32", "--steps", "2", "--repeats", "1", "--warmup", "0", "--json"])
        try #require(result.status == 0, "\(result.stderr)")
        let rows = result.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(rows.map { $0["batchnorm_sums"] as? Int } == [0, 4])
        let share = try #require(rows.last?["batchnorm_ms"] as? Double)
        #expect(share > 0 && share <= (rows.last?["communication_ms"] as? Double ?? 0))
    }
}
