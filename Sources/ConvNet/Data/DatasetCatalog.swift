import Foundation

/// Where and how to load a data set by name.
public struct DatasetOptions: Sendable {
    /// `--data-dir`; nil means `DatasetCatalog.defaultDataDirectory()`.
    public var dataDirectory: URL?
    /// Training / test sizes for generated data (toy-squares); for files, the first N samples are kept.
    public var trainCount: Int?
    public var testCount: Int?
    /// Seed for generated data.
    public var seed: UInt64
    /// Array names inside .npz files (nil: the usual names are tried).
    public var trainImagesArray: String?
    public var trainLabelsArray: String?
    public var testImagesArray: String?
    public var testLabelsArray: String?
    /// A second .npz holding the test set (the handout's mnist_train.npz / mnist_test.npz).
    public var testFile: URL?
    public var environment: [String: String]
    /// What the decoded images may take: a data set whose pixels as 32-bit floats would not fit is refused
    /// before they are converted (`MemoryBudgetError`).
    public var memoryBudget: MemoryBudget

    public init(dataDirectory: URL? = nil, trainCount: Int? = nil, testCount: Int? = nil, seed: UInt64 = 0,
                testFile: URL? = nil, environment: [String: String] = ProcessInfo.processInfo.environment,
                memoryBudget: MemoryBudget = .machine) {
        self.memoryBudget = memoryBudget
        self.dataDirectory = dataDirectory
        self.trainCount = trainCount
        self.testCount = testCount
        self.seed = seed
        self.testFile = testFile
        self.environment = environment
    }
}

/// What `convnet datasets` prints for one data set.
public struct DatasetDescription: Sendable, Codable {
    public var name: String
    public var summary: String
    /// Where its files were found; nil when they were not.
    public var location: String?
    /// How to get it when it was not found.
    public var howToGet: String?
    public var trainCount: Int
    public var testCount: Int
    public var sampleShape: [Int]
    public var classCount: Int
    public var available: Bool { location != nil }
}

/// The data sets ConvNet knows by name, and .npz files by path.
public enum DatasetCatalog {
    public static let names = ["mnist-sample", "toy-squares", "mnist", "fashion-mnist", "cifar10"]
    public static let digitNames = (0..<10).map(String.init)
    public static let fashionNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    /// Where Debian's `dataset-fashion-mnist` installs the files.
    public static let systemFashionMNIST = URL(fileURLWithPath: "/usr/share/datasets/fashion-mnist")
    public static let sampleFileName = "mnist_5k.csv.gz"
    /// The fixed seed of the bundled sample's 4,000 / 1,000 split.
    public static let sampleSplitSeed: UInt64 = 20_240_905

    /// `$CONVNET_DATA`, else `~/.convnet/data`.
    public static func defaultDataDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let dir = environment["CONVNET_DATA"], !dir.isEmpty { return URL(fileURLWithPath: dir, isDirectory: true) }
        let home = environment["HOME"].map { URL(fileURLWithPath: $0, isDirectory: true) }
            ?? FileManager.default.homeDirectoryForCurrentUser
        return home.appendingPathComponent(".convnet/data", isDirectory: true)
    }

    static func dataDirectory(_ options: DatasetOptions) -> URL {
        options.dataDirectory ?? defaultDataDirectory(environment: options.environment)
    }

    /// The name in `names` that `name` or its alias (`sample`, `toy`, `fashion`, `cifar-10`) stands for, in any
    /// case; nil for anything else (an .npz path).
    public static func canonicalName(_ name: String) -> String? {
        let aliases = ["sample": "mnist-sample", "toy": "toy-squares", "fashion": "fashion-mnist", "cifar-10": "cifar10"]
        let lower = name.lowercased()
        return names.contains(lower) ? lower : aliases[lower]
    }

    /// Whether `load` takes `name`: a data set's name or alias, or an .npz file's path.
    public static func recognizes(_ name: String) -> Bool {
        canonicalName(name) != nil || name.hasSuffix(".npz") || FileManager.default.fileExists(atPath: name)
    }

    /// Loads a data set by name (see `names`, `canonicalName`) or an .npz file by path. Pixels are scaled to [0, 1].
    public static func load(_ name: String, options: DatasetOptions = DatasetOptions()) throws -> DataSplit {
        let split: DataSplit
        switch canonicalName(name) {
        case "mnist-sample":
            split = try loadSample()
        case "toy-squares":
            let count = CheckedSize.sum([options.trainCount ?? 2_000, options.testCount ?? 1_000])
            try checkDecoded("toy-squares", values: count.flatMap { CheckedSize.product([$0, ToySquares.side * ToySquares.side]) },
                             budget: options.memoryBudget, advice: "give a smaller --train-limit")
            let train = try ToySquares.make(count: options.trainCount ?? 2_000, seed: options.seed)
            let test = try ToySquares.make(count: options.testCount ?? 1_000, seed: options.seed &+ 0x9E37_79B9)
            return DataSplit(train: train, test: test)
        case "mnist":
            split = try loadIDX(name: "mnist", folders: idxFolders("mnist", options), classNames: digitNames, budget: options.memoryBudget)
        case "fashion-mnist":
            split = try loadIDX(name: "fashion-mnist", folders: idxFolders("fashion-mnist", options) + [systemFashionMNIST], classNames: fashionNames,
                                budget: options.memoryBudget)
        case "cifar10":
            split = try loadCIFAR10(folders: cifarFolders(options), budget: options.memoryBudget)
        default:
            if recognizes(name) {
                split = try loadNPZ(URL(fileURLWithPath: name), options: options)
            } else {
                throw DataError.unknownDataset(name: name, known: names)
            }
        }
        return try limit(split, options)
    }

    /// Refuses a data set whose `values` pixels, as 32-bit floats beside the bytes they are decoded from,
    /// would not fit `budget` (nil values: more than can be counted).
    static func checkDecoded(_ name: String, values: Int?, budget: MemoryBudget, advice: String = "use a smaller data set") throws {
        try budget.check(values.flatMap { CheckedSize.product([$0, 5]) },
                         for: "decoding the data set '\(name)' (\(values.map { "\($0) pixel values" } ?? "its pixels") as 32-bit floats)", advice: advice)
    }

    static func limit(_ split: DataSplit, _ options: DatasetOptions) throws -> DataSplit {
        var split = split
        if let n = options.trainCount, n < split.train.count {
            guard n > 0 else { throw DataError.invalidOption("the training size must be positive, got \(n)") }
            split.train = split.train.subset(Array(0..<n))
        }
        if let n = options.testCount, n < split.test.count {
            guard n > 0 else { throw DataError.invalidOption("the test size must be positive, got \(n)") }
            split.test = split.test.subset(Array(0..<n))
        }
        return split
    }

    // MARK: The bundled sample

    /// The bundled `mnist_5k.csv.gz`: next to the executable (SwiftPM's resource bundle), then in the source tree.
    public static func sampleURL() throws -> URL {
        let bundleName = "ConvNet_ConvNet.resources"
        var candidates: [URL] = [Bundle.main.bundleURL.appendingPathComponent(bundleName)]
        if let exe = Bundle.main.executableURL?.resolvingSymlinksInPath().deletingLastPathComponent() {
            candidates.append(exe.appendingPathComponent(bundleName))
        }
        candidates = candidates.map { $0.appendingPathComponent(sampleFileName) }
        candidates.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources/\(sampleFileName)"))
        for url in candidates where FileManager.default.fileExists(atPath: url.path) { return url }
        throw DataError.fileNotFound(path: candidates[0].path, hint: "the resource bundle \(bundleName) must sit next to the convnet executable")
    }

    /// 5,000 digits split 4,000 / 1,000, stratified by class (400 / 100 of each), with a fixed seed.
    public static func loadSample() throws -> DataSplit {
        let (bytes, labels) = try DigitsCSV.read(sampleURL())
        let all = try Dataset(name: "mnist-sample", images: bytes.scaledTensor(), labels: labels, classNames: digitNames)
        let (train, test) = try all.holdOut(fraction: 0.2, seed: sampleSplitSeed)
        return DataSplit(train: train, test: test)
    }

    // MARK: IDX

    static let idxFiles = [("train-images-idx3-ubyte", "train-images.idx3-ubyte"), ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
                           ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"), ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte")]

    static func idxFolders(_ name: String, _ options: DatasetOptions) -> [URL] {
        let root = dataDirectory(options)
        return [root.appendingPathComponent(name), root]
    }

    /// The four IDX files in the first folder holding all of them (plain or .gz).
    static func findIDX(in folders: [URL]) -> [URL]? {
        for folder in folders {
            var found: [URL] = []
            for (a, b) in idxFiles {
                let options = [a, a + ".gz", b, b + ".gz"].map { folder.appendingPathComponent($0) }
                if let hit = options.first(where: { FileManager.default.fileExists(atPath: $0.path) }) { found.append(hit) }
            }
            if found.count == 4 { return found }
        }
        return nil
    }

    static func loadIDX(name: String, folders: [URL], classNames: [String], budget: MemoryBudget = .machine) throws -> DataSplit {
        guard let files = findIDX(in: folders) else {
            throw DataError.fileNotFound(path: folders[0].appendingPathComponent(idxFiles[0].0 + ".gz").path,
                                         hint: "looked in \(folders.map(\.path).joined(separator: ", ")); run `convnet download \(name)` or pass --data-dir")
        }
        let (trainImages, trainLabels) = try IDXFile.readPair(images: files[0], labels: files[1], classes: classNames.count)
        let (testImages, testLabels) = try IDXFile.readPair(images: files[2], labels: files[3], classes: classNames.count)
        try checkDecoded(name, values: CheckedSize.sum([trainImages.bytes.count, testImages.bytes.count]), budget: budget)
        return DataSplit(
            train: try Dataset(name: name, images: trainImages.scaledTensor(), labels: trainLabels, classNames: classNames),
            test: try Dataset(name: name, images: testImages.scaledTensor(), labels: testLabels, classNames: classNames))
    }

    // MARK: CIFAR-10

    static func cifarFolders(_ options: DatasetOptions) -> [URL] {
        let root = dataDirectory(options)
        return [root.appendingPathComponent("cifar10/cifar-10-batches-bin"), root.appendingPathComponent("cifar-10-batches-bin"),
                root.appendingPathComponent("cifar10"), root]
    }

    static func findCIFAR(in folders: [URL]) -> URL? {
        folders.first { f in (CIFAR10File.trainFiles + CIFAR10File.testFiles).allSatisfy { FileManager.default.fileExists(atPath: f.appendingPathComponent($0).path) } }
    }

    static func loadCIFAR10(folders: [URL], budget: MemoryBudget = .machine) throws -> DataSplit {
        guard let folder = findCIFAR(in: folders) else {
            throw DataError.fileNotFound(path: folders[0].appendingPathComponent("data_batch_1.bin").path,
                                         hint: "run `convnet download cifar10` or pass --data-dir")
        }
        let names = CIFAR10File.classNames(in: folder)
        let (trainImages, trainLabels) = try CIFAR10File.read(CIFAR10File.trainFiles.map { folder.appendingPathComponent($0) })
        let (testImages, testLabels) = try CIFAR10File.read(CIFAR10File.testFiles.map { folder.appendingPathComponent($0) })
        try checkDecoded("cifar10", values: CheckedSize.sum([trainImages.bytes.count, testImages.bytes.count]), budget: budget)
        return DataSplit(
            train: try Dataset(name: "cifar10", images: trainImages.scaledTensor(), labels: trainLabels, classNames: names),
            test: try Dataset(name: "cifar10", images: testImages.scaledTensor(), labels: testLabels, classNames: names))
    }

    // MARK: .npz

    static let trainImageNames = ["im_train", "x_train", "images_train", "train_images", "img", "images", "im", "x"]
    static let trainLabelNames = ["label_train", "y_train", "labels_train", "train_labels", "label", "labels", "y"]
    static let testImageNames = ["im_test", "x_test", "images_test", "test_images"]
    static let testLabelNames = ["label_test", "y_test", "labels_test", "test_labels"]

    /// A data set from .npz arrays: the training arrays from `url`, the test arrays from the same file or from
    /// `options.testFile`. Images (N, H, W), (N, C, H, W), (N, H, W, C), (N, D) or the handout's (D, N) with
    /// square D; labels (N,), (N, 1), (1, N) or one-hot. Values above 1.5 are taken as 0-255 pixels and scaled.
    public static func loadNPZ(_ url: URL, options: DatasetOptions = DatasetOptions()) throws -> DataSplit {
        let arrays = try NumPyArchive.readOrdered(from: url)
        let testArrays = try options.testFile.map { try NumPyArchive.readOrdered(from: $0) } ?? arrays
        let testURL = options.testFile ?? url
        func pick(_ list: [(name: String, array: NumPyArray)], _ given: String?, _ candidates: [String], _ file: URL) throws -> (String, NumPyArray) {
            let wanted = given.map { [$0] } ?? candidates
            for name in wanted { if let hit = list.first(where: { $0.name == name }) { return (hit.name, hit.array) } }
            throw DataError.missingArray(path: file.path, name: wanted.joined(separator: "' or '"), available: list.map(\.name))
        }
        let separate = options.testFile != nil
        let trainImages = try pick(arrays, options.trainImagesArray, trainImageNames, url)
        let trainLabels = try pick(arrays, options.trainLabelsArray, trainLabelNames, url)
        let testImages = try pick(testArrays, options.testImagesArray, separate ? testImageNames + trainImageNames : testImageNames, testURL)
        let testLabels = try pick(testArrays, options.testLabelsArray, separate ? testLabelNames + trainLabelNames : testLabelNames, testURL)
        try checkDecoded(url.lastPathComponent, values: CheckedSize.sum([trainImages.1.count, separate || testImages.0 != trainImages.0 ? testImages.1.count : 0]),
                         budget: options.memoryBudget)
        let trainY = try labels(trainLabels.1, name: trainLabels.0, file: url)
        let testY = try labels(testLabels.1, name: testLabels.0, file: testURL)
        let trainX = try images(trainImages.1, name: trainImages.0, count: trainY.count, file: url, labelsName: trainLabels.0)
        let testX = try images(testImages.1, name: testImages.0, count: testY.count, file: testURL, labelsName: testLabels.0)
        let maxLabel = max(trainY.max() ?? 0, testY.max() ?? 0)
        let classes = maxLabel < 10 ? 10 : maxLabel + 1
        let names = (0..<classes).map(String.init)
        let name = url.deletingPathExtension().lastPathComponent
        return DataSplit(train: try Dataset(name: name, images: trainX, labels: trainY, classNames: names),
                         test: try Dataset(name: name, images: testX, labels: testY, classNames: names))
    }

    /// The most classes a data set may have: a label past it is an error, not a request for that many class names.
    public static let maxClasses = 100_000

    static func labels(_ array: NumPyArray, name: String, file: URL) throws -> [Int] {
        let shape = array.shape
        var values: [Int]
        do { values = try array.integers() } catch {
            throw DataError.malformed(path: file.path, problem: "array '\(name)' holds labels that are not whole numbers")
        }
        if shape.count == 2 && shape[0] > 1 && shape[1] > 1 {
            // One-hot: classes along the shorter axis.
            let classesFirst = shape[0] < shape[1]
            let (n, k) = classesFirst ? (shape[1], shape[0]) : (shape[0], shape[1])
            func value(_ i: Int, _ c: Int) -> Int { classesFirst ? values[c * n + i] : values[i * k + c] }
            values = try (0..<n).map { i in
                let c = (0..<k).max { value(i, $0) < value(i, $1) }!
                // An all-zero row names no class: refused rather than read as class 0.
                guard value(i, c) > 0 else {
                    throw DataError.malformed(path: file.path, problem: "one-hot labels '\(name)': sample \(i) has no class set (its row is all zeros)")
                }
                return c
            }
        } else if shape.count > 2 {
            throw DataError.badArrayShape(path: file.path, array: name, shape: shape, expected: "labels (N,), (N, 1) or (1, N)")
        }
        if let i = values.firstIndex(where: { $0 < 0 || $0 >= maxClasses }) {
            let top = values.max() ?? 0
            throw DataError.labelOutOfRange(path: file.path, index: i, label: values[i], classes: top >= maxClasses ? maxClasses : max(1, top + 1))
        }
        return values
    }

    static func images(_ array: NumPyArray, name: String, count n: Int, file: URL, labelsName: String) throws -> Tensor {
        var t = try array.tensor()
        let s = array.shape
        func square(_ d: Int) -> Int? { let r = Int(Double(d).squareRoot().rounded()); return r * r == d ? r : nil }
        let expected = "images (N, H, W), (N, C, H, W), (N, H, W, C), (N, D) or (D, N) with N = \(n) labels in '\(labelsName)'"
        switch s.count {
        case 2 where s[0] == n && s[1] != n:
            if let side = square(s[1]) { try t.reshape([n, 1, side, side]) } else { try t.reshape([n, s[1], 1, 1]) }
        case 2 where s[1] == n:
            // The handout's layout: one column per image.
            let d = s[0]
            let src = t
            t = Tensor(shape: [n, d]) { dst in
                src.withUnsafeBufferPointer { p in
                    for i in 0..<n { for k in 0..<d { dst[i &* d &+ k] = p[k &* n &+ i] } }
                }
            }
            if let side = square(d) { try t.reshape([n, 1, side, side]) } else { try t.reshape([n, d, 1, 1]) }
        case 3 where s[0] == n:
            try t.reshape([n, 1, s[1], s[2]])
        case 4 where s[0] == n:
            if (s[3] == 1 || s[3] == 3) && !(s[1] == 1 || s[1] == 3) {
                let (h, w, c) = (s[1], s[2], s[3])
                let src = t
                t = Tensor(shape: [n, c, h, w]) { dst in
                    src.withUnsafeBufferPointer { p in
                        for i in 0..<n { for y in 0..<h { for x in 0..<w { for ch in 0..<c {
                            dst[((i &* c &+ ch) &* h &+ y) &* w &+ x] = p[((i &* h &+ y) &* w &+ x) &* c &+ ch]
                        } } } }
                    }
                }
            }
        default:
            if s.contains(n) || s.isEmpty {
                throw DataError.badArrayShape(path: file.path, array: name, shape: s, expected: expected)
            }
            throw DataError.countMismatch(images: "\(file.path) '\(name)'", imageCount: s.first ?? 0, labels: "'\(labelsName)'", labelCount: n)
        }
        if array.dtype == .uint8 || (t.scalars.max() ?? 0) > 1.5 {
            t.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] *= 1.0 / 255.0 } }
        }
        return t
    }

    // MARK: Listing

    /// Every named data set, where it was found or how to get it, sizes and shapes.
    public static func describeAll(options: DatasetOptions = DatasetOptions()) -> [DatasetDescription] {
        let root = dataDirectory(options)
        let sample = try? sampleURL()
        var result = [DatasetDescription(name: "mnist-sample", summary: "5,000 real MNIST digits bundled with ConvNet, split 4,000 / 1,000 stratified",
                                         location: sample?.path, howToGet: sample == nil ? "reinstall ConvNet with its resource bundle" : nil,
                                         trainCount: 4_000, testCount: 1_000, sampleShape: [1, 28, 28], classCount: 10)]
        result.append(DatasetDescription(name: "toy-squares", summary: "generated 6x6 noise vs. noise with a 3x3 square (sizes via options)",
                                         location: "generated", howToGet: nil, trainCount: options.trainCount ?? 2_000,
                                         testCount: options.testCount ?? 1_000, sampleShape: [1, 6, 6], classCount: 2))
        let mnist = findIDX(in: idxFolders("mnist", options))
        result.append(DatasetDescription(name: "mnist", summary: "handwritten digits (IDX files)", location: mnist.map { $0[0].deletingLastPathComponent().path },
                                         howToGet: mnist == nil ? "convnet download mnist --data-dir \(root.path)" : nil,
                                         trainCount: 60_000, testCount: 10_000, sampleShape: [1, 28, 28], classCount: 10))
        let fashion = findIDX(in: idxFolders("fashion-mnist", options) + [systemFashionMNIST])
        result.append(DatasetDescription(name: "fashion-mnist", summary: "Zalando clothing images (IDX files)", location: fashion.map { $0[0].deletingLastPathComponent().path },
                                         howToGet: fashion == nil ? "convnet download fashion-mnist --data-dir \(root.path) (or apt-get install dataset-fashion-mnist)" : nil,
                                         trainCount: 60_000, testCount: 10_000, sampleShape: [1, 28, 28], classCount: 10))
        let cifar = findCIFAR(in: cifarFolders(options))
        result.append(DatasetDescription(name: "cifar10", summary: "32x32 colour images in 10 classes (binary batches)", location: cifar?.path,
                                         howToGet: cifar == nil ? "convnet download cifar10 --data-dir \(root.path)" : nil,
                                         trainCount: 50_000, testCount: 10_000, sampleShape: [3, 32, 32], classCount: 10))
        return result
    }
}
