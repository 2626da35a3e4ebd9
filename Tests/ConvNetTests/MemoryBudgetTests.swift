import Foundation
import Testing
@testable import ConvNet

/// The memory budget: its parsing and default, `NetworkMemory`'s figures, and every place that checks it.
@Suite("Memory budget: figures and checks")
struct MemoryBudgetTests {
    @Test("--memory-budget's sizes: bytes, K/M/G/T as powers of 1024, decimals; nonsense and tiny sizes refused")
    func parsing() {
        #expect(MemoryBudget.parse("2G")?.bytes == 2 << 30)
        #expect(MemoryBudget.parse("512M")?.bytes == 512 << 20)
        #expect(MemoryBudget.parse("1.5GiB")?.bytes == 3 << 29)
        #expect(MemoryBudget.parse("3gb")?.bytes == 3 << 30)
        #expect(MemoryBudget.parse("1048576")?.bytes == 1 << 20)
        #expect(MemoryBudget.parse("2T")?.bytes == 2 << 40)
        for bad in ["", "G", "-1G", "1e9", "nan", "inf", "0", "1000", "1K", "9999999999T", "+5G", "5 X", "0x10M"] {
            #expect(MemoryBudget.parse(bad) == nil, "\(bad)")
        }
    }

    @Test("the default is 3/4 of the smallest of physical memory and the limits that apply")
    func machineRule() {
        #expect(MemoryBudget.machineBytes(physical: 8_000, addressSpaceLimit: nil, dataLimit: nil, cgroupLimit: nil) == 6_000)
        #expect(MemoryBudget.machineBytes(physical: 8_000, addressSpaceLimit: 4_000, dataLimit: nil, cgroupLimit: 6_000) == 3_000)
        #expect(MemoryBudget.machineBytes(physical: 8_000, addressSpaceLimit: nil, dataLimit: 5_000, cgroupLimit: 2_000) == 1_500)
        #expect(MemoryBudget.machine.bytes > 0 && MemoryBudget.machine.bytes <= Int(ProcessInfo.processInfo.physicalMemory))
    }

    @Test("byte counts for people")
    func formatting() {
        #expect(MemoryBudget.format(1) == "1 byte")
        #expect(MemoryBudget.format(512) == "512 bytes")
        #expect(MemoryBudget.format(3_200_000) == "3.20 MB")
        #expect(MemoryBudget.format(65_300_000_000) == "65.3 GB")
    }

    @Test("a network's bytes are its weights (value, gradient, optimizer state) plus per-sample buffers times the batch")
    func networkFigures() throws {
        let network = try Sequential(spec: "conv 4 3x3 pad 1; relu; maxpool 2; flatten; dense 10", inputShape: [1, 8, 8])
        let m = network.memory
        #expect(m.parameters == 4 * 9 + 4 + 10 * 64 + 10)
        #expect(m.fixedBytes() == m.parameters * 8 && m.fixedBytes(optimizerSlots: 2) == m.parameters * 16)
        let perSample = try #require(m.bytesPerSample(training: true))
        #expect(m.bytes(batch: 32, training: true, optimizerSlots: 1) == m.parameters * 12 + 32 * perSample)
        #expect(try #require(m.bytesPerSample(training: false)) < perSample)
        // conv1's buffers: its 4x8x8 output, plus the 1x3x3 x 8x8 unfolded columns (both 4 bytes a value).
        let conv = try #require(m.entries.first)
        #expect(conv.inferenceBytes == (4 * 64 + 9 * 64) * 4)
        // The largest batch that fits is the one the check accepts, and one more does not fit.
        let budget = MemoryBudget(bytes: m.bytes(batch: 100, training: true)! + perSample / 2)
        #expect(m.largestBatch(fitting: budget, training: true, limit: 1000) == 100)
        try m.check(batch: 100, training: true, budget: budget)
        #expect(throws: MemoryBudgetError.self) { try m.check(batch: 101, training: true, budget: budget) }
    }

    @Test("weights over the budget are refused before the layer creates them, naming the layer")
    func weightsRefusedBeforeBuilding() throws {
        do {
            _ = try Sequential(spec: "flatten; dense 4000; relu; dense 10", inputShape: [1, 28, 28], memoryBudget: MemoryBudget(bytes: 4 << 20))
            Issue.record("a 3.1M-weight network built within 4 MB")
        } catch let error as MemoryBudgetError {
            #expect(error.what.contains("dense1") && error.what.contains("dense 4000") && error.description.contains("--memory-budget"), "\(error)")
        }
    }

    @Test("a batch over the budget is refused by forward before it allocates; evaluation and Classifier use smaller batches instead")
    func batchesWithinBudget() throws {
        let spec = "conv 8 3x3 pad 1; relu; maxpool 2; flatten; dense 10"
        let big = try Sequential(spec: spec, inputShape: [1, 12, 12], seed: 3)
        let perSample = try #require(big.memory.bytesPerSample(training: false))
        let budget = MemoryBudget(bytes: big.memory.fixedBytes()! + 5 * perSample)
        let small = try Sequential(spec: spec, inputShape: [1, 12, 12], seed: 3, memoryBudget: budget)
        var random = SeededGenerator(seed: 9)
        let images = try Tensor(shape: [23, 1, 12, 12], scalars: (0..<(23 * 144)).map { _ in random.nextUnitFloat() })
        do {
            _ = try small.forward(images, training: false)
            Issue.record("a batch of 23 ran within a budget of 5 samples")
        } catch let error as MemoryBudgetError {
            #expect(error.description.contains("a batch of at most 5 fits"), "\(error)")
        }
        // Evaluation goes in batches of 5 and scores exactly as one batch of 23 does.
        let data = try Dataset(name: "random", images: images, labels: (0..<23).map { $0 % 10 }, classNames: (0..<10).map(String.init))
        let whole = try evaluate(big, on: data, loss: .softmaxCrossEntropy)
        let chunked = try evaluate(small, on: data, loss: .softmaxCrossEntropy)
        #expect(whole.predictions == chunked.predictions && whole.confusion == chunked.confusion)
        #expect(abs(whole.loss - chunked.loss) < 1e-6)
    }

    @Test("a data set whose decoded pixels would not fit is refused before they are converted")
    func dataWithinBudget() throws {
        #expect(throws: MemoryBudgetError.self) {
            _ = try DatasetCatalog.load("toy-squares", options: DatasetOptions(trainCount: 500_000, memoryBudget: MemoryBudget(bytes: 8 << 20)))
        }
        let small = try DatasetCatalog.load("toy-squares", options: DatasetOptions(trainCount: 100, testCount: 50, memoryBudget: MemoryBudget(bytes: 8 << 20)))
        #expect(small.train.count == 100)
    }
}

/// The budget from the command line, with the process's address space limited (`ulimit -v`), as a user on a
/// small machine or a hostile input meets it: every case ends in the budget's error (exit 1), never a signal.
@Suite("Memory budget: hostile sizes under ulimit -v", .serialized)
struct MemoryBudgetCLITests {
    /// Runs convnet with its address space limited to `megabytes` (the default budget follows the limit).
    static func limited(_ megabytes: Int, _ arguments: [String]) throws -> CLIResult {
        try convnet(["-c", "ulimit -v \(megabytes * 1024) && exec \"$0\" \"$@\"", convnetExecutable().path] + arguments, program: "/bin/sh")
    }

    static func expectBudgetError(_ r: CLIResult, _ mentions: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 1, "exit \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.contains("over the memory budget") && r.stderr.contains("--memory-budget"), "\(r.stderr)", sourceLocation: sourceLocation)
        for m in mentions { #expect(r.stderr.contains(m), "\(m): \(r.stderr)", sourceLocation: sourceLocation) }
    }

    @Test("specs whose buffers need tens of gigabytes: padding 8000, 65536 filters, 10^5 layers")
    func hugeSpecs() throws {
        let dir = try makeTemporaryFolder()
        // 10^5 statements are too long for one argument: they go in a spec file.
        let relus = dir.appendingPathComponent("relus.txt")
        try Data((Array(repeating: "relu", count: 100_000).joined(separator: "\n") + "\nflatten\ndense 10\n").utf8).write(to: relus)
        for (spec, layer) in [("conv 1 1x1 pad 8000; maxpool 1000; flatten; dense 10", "conv1"), ("conv 65536 3x3; flatten; dense 10", "dense1"),
                              (relus.path, "per sample")] {
            let run = dir.appendingPathComponent("run")
            let r = try Self.limited(1500, ["train", "--spec", spec, "--epochs", "1", "--out", run.path])
            Self.expectBudgetError(r, [layer])
            #expect(!FileManager.default.fileExists(atPath: run.path), "the run folder was created for a run that cannot start")
        }
        // An explicit budget is obeyed the same way, and names the batch that fits.
        let r = try convnet(["train", "--model", "two-conv", "--batch-size", "100000", "--memory-budget", "64M", "--epochs", "1",
                             "--out", dir.appendingPathComponent("two").path])
        Self.expectBudgetError(r, ["--batch-size"])
    }

    @Test("a small model.npz declaring a 3x8192x8192 input: eval, predict and export end in the budget's error")
    func hugeInputModel() throws {
        let dir = try makeTemporaryFolder()
        let model = dir.appendingPathComponent("wide.npz")
        let network = try Sequential(spec: "maxpool 8192; flatten; dense 10", inputShape: [3, 8192, 8192])
        try ModelArchive(network: network, modelName: "wide", loss: .softmaxCrossEntropy, classNames: (0..<10).map(String.init),
                         normalization: .identity, dataset: "mnist-sample").write(to: model)
        let size = try FileManager.default.attributesOfItem(atPath: model.path)[.size] as? Int
        #expect((size ?? Int.max) < 8192)
        let picture = dir.appendingPathComponent("digit.pgm")
        try (Data("P5\n28 28\n255\n".utf8) + Data((0..<784).map { UInt8($0 % 256) })).write(to: picture)
        Self.expectBudgetError(try Self.limited(1500, ["eval", "--weights", model.path]))
        Self.expectBudgetError(try Self.limited(1500, ["predict", "--weights", model.path, picture.path]))
    }

    @Test("IDX files that inflate to 100 MB each: refused before their pixels become floats")
    func inflatedData() throws {
        let dir = try makeTemporaryFolder()
        let folder = dir.appendingPathComponent("fashion-mnist")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        func gzip(_ data: Data) throws -> Data {
            var out = Data([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3])
            out += try Gzip.deflateRaw(data)
            for v in [Gzip.crc32(data), UInt32(truncatingIfNeeded: data.count)] { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
            return out
        }
        // Unsigned bytes (type 0x08), zero pixels and labels.
        func idx(_ dims: [Int]) -> Data { idxData(magic: 0x0800 | dims.count, dims: dims, payload: [UInt8](repeating: 0, count: dims.reduce(1, *))) }
        let n = 127_551  // 127,551 images of 28x28: 100 MB
        for (name, dims) in [("train-images-idx3-ubyte", [n, 28, 28]), ("t10k-images-idx3-ubyte", [n, 28, 28]),
                             ("train-labels-idx1-ubyte", [n]), ("t10k-labels-idx1-ubyte", [n])] {
            try gzip(idx(dims)).write(to: folder.appendingPathComponent(name + ".gz"))
        }
        let r = try Self.limited(900, ["train", "--model", "lenet5", "--dataset", "fashion-mnist", "--data-dir", dir.path, "--epochs", "1",
                                       "--out", dir.appendingPathComponent("run").path])
        Self.expectBudgetError(r, ["fashion-mnist"])
    }

    @Test("predict holds one decoded picture at a time: twelve 8192x8192 PNGs classify within 1.5 GB")
    func manyLargePictures() throws {
        let dir = try makeTemporaryFolder()
        let run = dir.appendingPathComponent("run")
        let t = try convnet(["train", "--model", "tiny-cnn", "--epochs", "1", "--train-limit", "64", "--out", run.path, "--no-report"])
        #expect(t.status == 0, "\(t.stderr)")
        // An 8192x8192 gray PNG, deflated (about 100 KB): a vertical stroke on black.
        let side = 8192
        var rows = [UInt8](repeating: 0, count: side * (side + 1))
        for y in (side / 4)..<(3 * side / 4) { rows[y * (side + 1) + 1 + side / 2] = 255 }
        var raw = Data(rows)
        rows = []
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in raw { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
        func bigEndian(_ v: UInt32) -> Data { withUnsafeBytes(of: v.bigEndian) { Data($0) } }
        func chunk(_ type: String, _ body: Data) -> Data {
            let typed = Data(type.utf8) + body
            return bigEndian(UInt32(body.count)) + typed + bigEndian(Gzip.crc32(typed))
        }
        let header = bigEndian(UInt32(side)) + bigEndian(UInt32(side)) + Data([8, 0, 0, 0, 0])
        let zlib = Data([0x78, 0x9C]) + (try Gzip.deflateRaw(raw)) + bigEndian(b << 16 | a)
        raw = Data()
        let png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + chunk("IHDR", header) + chunk("IDAT", zlib) + chunk("IEND", Data())
        #expect(png.count < 1 << 20)
        var paths: [String] = []
        for i in 0..<12 {
            let url = dir.appendingPathComponent("big\(i).png")
            try png.write(to: url)
            paths.append(url.path)
        }
        let r = try Self.limited(1500, ["predict", "--weights", run.appendingPathComponent("model.npz").path] + paths)
        #expect(r.status == 0, "exit \(r.status): \(r.stderr)")
        #expect(r.stdout.split(separator: "\n").count == 12, "\(r.stdout)")
    }
}
