import ArgumentParser
import ConvNet
import Foundation

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Score trained weights on a test set: accuracy, per-class accuracy, confusion matrix.")

    @Option(help: "A model.npz written by convnet train.")
    var weights: String

    @Option(help: "Data set name or .npz path (default: the one the model was trained on).")
    var dataset: String?

    @Option(help: "Where to look for data set files.")
    var dataDir: String?

    @OptionGroup var threadsOption: ThreadsOption
    @OptionGroup var convAlgorithmOption: ConvAlgorithmOption
    @OptionGroup var memoryBudgetOption: MemoryBudgetOption

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        try checkInputFile(weights, option: "--weights")
    }

    func run() throws {
        let archive = try ModelArchive.read(from: URL(fileURLWithPath: weights), memoryBudget: memoryBudgetOption.budget)
        archive.network.context = try convAlgorithmOption.applied(to: threadsOption.context)
        let (test, name) = try testSet(for: archive, dataset: dataset, dataDirectory: dataDir, weightsPath: weights, memoryBudget: memoryBudgetOption.budget)
        let classes = test.classCount
        // The model's own test-time augmentation (model.npz's meta.tta), as convnet predict and the studio classify.
        let result = try evaluate(archive.network, on: test, loss: archive.loss, tta: archive.testTimeAugmentation, fill: archive.testTimeFill)
        if json {
            struct Output: Encodable { var test_accuracy: Double; var per_class_accuracy: [Double]; var confusion: [[Int]] }
            print(try Terminal.json(Output(test_accuracy: result.accuracy, per_class_accuracy: result.perClassAccuracy, confusion: result.confusion)))
            return
        }
        let tta = archive.testTimeAugmentation.map { " with test-time augmentation \($0) (\($0.passes.count) passes averaged)" } ?? ""
        print(String(format: "%@ on %@: test accuracy %.2f%% (%d images)", Terminal.printable(archive.modelName), Terminal.printable(name),
                     100 * result.accuracy, test.count) + tta)
        let names = test.classNames.map(Terminal.printable)
        let width = max(5, names.map(\.count).max() ?? 0)
        print("\nconfusion matrix (rows: true class, columns: predicted)")
        let cell = max(5, String(result.confusion.flatMap { $0 }.max() ?? 0).count + 1)
        print("".padding(toLength: width, withPad: " ", startingAt: 0) + (0..<classes).map { String(repeating: " ", count: cell - String($0).count) + String($0) }.joined()
              + "   accuracy")
        for (i, row) in result.confusion.enumerated() {
            let counts = row.map { String(repeating: " ", count: cell - String($0).count) + String($0) }.joined()
            print(names[i].padding(toLength: width, withPad: " ", startingAt: 0) + counts + String(format: "   %6.2f%%", 100 * result.perClassAccuracy[i]))
        }
    }
}
