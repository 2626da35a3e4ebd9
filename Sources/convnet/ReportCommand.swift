import ArgumentParser
import ConvNet
import Foundation

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write DIR/report.html for a run made by convnet train --out DIR (charts, confusion matrix, filters, feature maps).")

    @Argument(help: "The run's directory (holds model.npz and metrics.csv).")
    var directory: String

    @Option(help: "Data set for the test images (default: the one the model was trained on).")
    var dataset: String?

    @Option(help: "Where to look for data set files.")
    var dataDir: String?

    @OptionGroup var memoryBudgetOption: MemoryBudgetOption

    func run() throws {
        let dir = URL(fileURLWithPath: directory)
        let weights = dir.appendingPathComponent("model.npz")
        guard FileManager.default.fileExists(atPath: weights.path) else {
            throw CommandError("\(directory) has no model.npz: is it a run directory written by convnet train --out?")
        }
        let archive = try ModelArchive.read(from: weights, memoryBudget: memoryBudgetOption.budget)
        let metrics = try RunMetrics.load(from: dir.appendingPathComponent(RunMetrics.csvFileName))
        let (test, name) = try testSet(for: archive, dataset: dataset, dataDirectory: dataDir, weightsPath: weights.path, memoryBudget: memoryBudgetOption.budget)
        var settings: [(key: String, value: String)] = [("model", archive.modelName), ("spec", archive.network.spec), ("dataset", name)]
        if !archive.augmentation.isEmpty { settings.append(("augmentation", archive.augmentation)) }
        let checkpointURL = dir.appendingPathComponent("checkpoint.npz")
        if let checkpoint = try? Checkpoint.read(from: checkpointURL, memoryBudget: memoryBudgetOption.budget),
           let run = try? JSONDecoder().decode(RunSettings.self, from: Data(checkpoint.settings.utf8)) {
            settings = run.table(threads: nil)
        }
        let result = try evaluate(archive.network, on: test, loss: archive.loss, tta: archive.testTimeAugmentation, fill: archive.testTimeFill)
        settings.append(("test accuracy", String(format: "%.2f%%", 100 * result.accuracy)))
        let page = try writeReport(directory: dir, network: archive.network, test: test, metrics: metrics, settings: settings,
                                   title: "\(archive.modelName) on \(name)")
        print(page.path)
    }
}
