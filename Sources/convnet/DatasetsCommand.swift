import ArgumentParser
import ConvNet
import Foundation

struct DatasetsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datasets",
        abstract: "List the data sets, where each was found (or how to get it), sizes and shapes.")

    @Option(help: "Data directory (default: $CONVNET_DATA or ~/.convnet/data).")
    var dataDir: String?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(parsing: .unconditional, help: "Time one epoch of mini-batches of this size over 60,000 28x28 images, then exit.")
    var benchmarkBatch: Int?

    func validate() throws {
        if let b = benchmarkBatch, !(1...60_000).contains(b) {
            throw ValidationError("--benchmark-batch must be from 1 to 60000 (the images it batches), got \(b)")
        }
    }

    func run() throws {
        if let size = benchmarkBatch {
            let images = Tensor(shape: [60_000, 1, 28, 28], repeating: 0.5)
            let data = try Dataset(name: "bench", images: images, labels: (0..<60_000).map { $0 % 10 }, classNames: DatasetCatalog.digitNames)
            var loader = try BatchLoader(dataset: data, batchSize: size, seed: 1)
            for epoch in 0..<3 {
                let start = DispatchTime.now().uptimeNanoseconds
                var checksum: Float = 0
                for batch in loader.nextEpoch() { checksum += batch.images[0] }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                print(String(format: "epoch %d: 60,000 images in %.1f ms (%.2f M images/s, batch %d, check %.0f)",
                             epoch + 1, seconds * 1000, 60_000 / seconds / 1e6, size, checksum))
            }
            return
        }
        var options = DatasetOptions()
        options.dataDirectory = dataDir.map { URL(fileURLWithPath: $0, isDirectory: true) }
        let list = DatasetCatalog.describeAll(options: options)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try encoder.encode(list), as: UTF8.self))
            return
        }
        print("data directory: \((options.dataDirectory ?? DatasetCatalog.defaultDataDirectory()).path)")
        for d in list {
            let shape = d.sampleShape.map(String.init).joined(separator: "x")
            print("\(d.name.padding(toLength: 14, withPad: " ", startingAt: 0)) train \(d.trainCount) / test \(d.testCount), \(shape), \(d.classCount) classes: \(d.summary)")
            if let location = d.location { print("    found: \(location)") } else { print("    not found; get it with: \(d.howToGet ?? "-")") }
        }
        print("also: any .npz file by path (arrays im_train, label_train, im_test, label_test or x_train, y_train, ...)")
    }
}
