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

    func run() throws {
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
