import ArgumentParser
import ConvNet
import Foundation

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Train one network with several optimizers, several seeds each, and chart their accuracy per epoch.",
        discussion: "Example: convnet compare --optimizers sgd,adam --runs 3 --model tiny-cnn --epochs 5 --out runs/compare")

    @Option(help: "Comma-separated optimizers: \(OptimizerKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var optimizers: String = "sgd,adam"

    @Option(parsing: .unconditional, help: "Runs per optimizer (seeds 1...N).")
    var runs: Int = 3

    @Option(help: "A training recipe (convnet recipes) whose network, data set and settings every run starts from.")
    var recipe: String?

    @Option(help: "A zoo network (default tiny-cnn, or the recipe's).")
    var model: String?

    @Option(help: "A network as a text spec, inline or a file path.")
    var spec: String?

    @Option(help: "Data set name or .npz path (default: the model's).")
    var dataset: String?

    @Option(help: "Where to look for data set files.")
    var dataDir: String?

    @Option(parsing: .unconditional, help: "Epochs per run (default 5, or the recipe's).")
    var epochs: Int?

    @Option(parsing: .unconditional, help: "Images per mini-batch (default 64, or the recipe's).")
    var batchSize: Int?

    @Option(parsing: .unconditional, help: "Learning rate for SGD and Adagrad (default 0.01; Adam and AdamW use --adam-lr).")
    var lr: Float?

    @Option(parsing: .unconditional, help: "Learning rate for Adam and AdamW (default 0.001).")
    var adamLr: Float?

    @OptionGroup var threadsOption: ThreadsOption
    @OptionGroup var memoryBudgetOption: MemoryBudgetOption

    @Option(help: "Directory for comparison.svg, comparison.json and comparison.md.")
    var out: String = "runs/compare"

    @Flag(help: "Print the table as JSON.")
    var json = false

    func validate() throws {
        if runs < 1 { throw ValidationError("--runs must be at least 1, got \(runs)") }
        if model != nil && spec != nil { throw ValidationError("give either --model or --spec, not both") }
        for kind in try kinds() { _ = try RunSettings(setup(for: kind, seed: 1)) }
    }

    func kinds() throws -> [OptimizerKind] {
        try optimizers.split(separator: ",", omittingEmptySubsequences: false).map { name in
            guard let k = OptimizerKind(rawValue: name.trimmingCharacters(in: .whitespaces).lowercased()) else {
                throw ValidationError("--optimizers: unknown optimizer '\(name)'; use \(OptimizerKind.allCases.map(\.rawValue).joined(separator: ", ")), comma-separated")
            }
            return k
        }
    }

    /// One run's settings, made by convnet train's option table (`TrainOptionTable`): the recipe or compare's
    /// defaults, then the options given, then the optimizer, its rate and the seed.
    func setup(for kind: OptimizerKind, seed: UInt64) throws -> TrainSetup {
        var setup = TrainSetup()
        var given: [(String, String?)] = [("--recipe", recipe), ("--model", model ?? (spec == nil && recipe == nil ? "tiny-cnn" : nil)), ("--spec", spec),
                                          ("--dataset", dataset), ("--data-dir", dataDir)]
        given += [("--epochs", epochs.map { "\($0)" } ?? (recipe == nil ? "5" : nil)), ("--batch-size", batchSize.map { "\($0)" }),
                  ("--optimizer", kind.rawValue), ("--seed", "\(seed)")]
        let rate = kind == .adam || kind == .adamw ? adamLr : lr
        given.append(("--lr", rate.map { "\($0)" }))
        for case let (flag, text?) in given { try TrainOptionTable.apply(flag, text, to: &setup) }
        return setup
    }

    func run() throws {
        let kinds = try kinds()
        let base = try RunSettings(setup(for: kinds[0], seed: 1))
        let choice = base.network
        let datasetName = base.dataset
        let budget = memoryBudgetOption.budget
        let (data, inputShape) = try prepareData(datasetName, dataDirectory: base.dataDirectory, trainLimit: base.trainLimit, network: choice, seed: 1,
                                                 memoryBudget: budget)
        let directory = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)

        var groups: [RunGroup] = []
        for kind in kinds {
            var results: [RunMetrics] = []
            for run in 1...runs {
                let settings = try RunSettings(setup(for: kind, seed: UInt64(run)))
                let options = settings.options
                let weightInit = try WeightInit(parsing: settings.initializer)
                let network = try Sequential(spec: choice.spec, inputShape: inputShape, seed: UInt64(run), weightInit: weightInit,
                                             biasInit: weightInit == .pytorchDefault ? .pytorchDefault : .constant(0), memoryBudget: budget.spending(data.bytes),
                                             context: threadsOption.context)
                try checkClasses(network, loss: choice.loss, dataset: data.split.train, name: datasetName)
                let trainer = try Trainer(network: network, options: options)
                var metrics = RunMetrics()
                Terminal.error("\(kind.rawValue) run \(run)/\(runs)")
                var display = ProgressDisplay(epochs: options.epochs)
                try trainer.train(on: data.split.train, test: data.split.test) { event in
                    display.show(event)
                    if case .epoch(let e) = event {
                        metrics.epochs.append(EpochMetrics(epoch: e.epoch, iteration: e.iteration, trainLoss: e.trainLoss,
                                                           trainAccuracy: e.trainAccuracy, testAccuracy: e.testAccuracy, seconds: e.seconds))
                    }
                }
                results.append(metrics)
            }
            groups.append(RunGroup(name: kind.rawValue, runs: results))
        }

        let title = "\(choice.name) on \(datasetName): accuracy per epoch (mean ± sd over \(runs) run\(runs == 1 ? "" : "s"))"
        let chartURL = directory.appendingPathComponent("comparison.svg")
        try AtomicFile.write(Data(ComparisonCharts.accuracy(groups, title: title).svg().utf8), to: chartURL)

        struct Row: Encodable {
            var optimizer: String
            var runs: Int
            var final_train_accuracy_mean, final_train_accuracy_sd, final_test_accuracy_mean, final_test_accuracy_sd: Double
        }
        let rows = groups.map { g -> Row in
            let train = ComparisonCharts.statistics(g.runs) { $0.trainAccuracy }.last
            let test = ComparisonCharts.statistics(g.runs) { $0.testAccuracy }.last
            return Row(optimizer: g.name, runs: g.runs.count, final_train_accuracy_mean: train?.mean ?? 0, final_train_accuracy_sd: train?.standardDeviation ?? 0,
                       final_test_accuracy_mean: test?.mean ?? 0, final_test_accuracy_sd: test?.standardDeviation ?? 0)
        }
        let table = TextTable(
            headers: ["optimizer", "runs", "final train accuracy", "final test accuracy"],
            rows: rows.map { [$0.optimizer, String($0.runs),
                              String(format: "%.2f%% ± %.2f", 100 * $0.final_train_accuracy_mean, 100 * $0.final_train_accuracy_sd),
                              String(format: "%.2f%% ± %.2f", 100 * $0.final_test_accuracy_mean, 100 * $0.final_test_accuracy_sd)] },
            alignments: [.left, .right, .right, .right])
        let jsonText = "[" + (try rows.map { try Terminal.json($0) }.joined(separator: ",")) + "]\n"
        try AtomicFile.write(Data(jsonText.utf8), to: directory.appendingPathComponent("comparison.json"))
        try AtomicFile.write(Data(table.markdown().utf8), to: directory.appendingPathComponent("comparison.md"))
        if json { print(jsonText, terminator: "") } else { print(table.text()) }
        Terminal.error("chart: \(chartURL.path)")
    }
}
