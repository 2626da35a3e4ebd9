import ArgumentParser
import ConvNet
import Foundation

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Train one network with several optimizers, several seeds each, and chart their accuracy per epoch.",
        discussion: "Example: convnet compare --optimizers sgd,adam --runs 3 --model tiny-cnn --epochs 5 --out runs/compare")

    @Option(help: "Comma-separated optimizers: sgd, adagrad, adam.")
    var optimizers: String = "sgd,adam"

    @Option(parsing: .unconditional, help: "Runs per optimizer (seeds 1...N).")
    var runs: Int = 3

    @Option(help: "A zoo network (default tiny-cnn).")
    var model: String?

    @Option(help: "A network as a text spec, inline or a file path.")
    var spec: String?

    @Option(help: "Data set name or .npz path (default: the model's).")
    var dataset: String?

    @Option(help: "Where to look for data set files.")
    var dataDir: String?

    @Option(parsing: .unconditional, help: "Epochs per run.")
    var epochs: Int = 5

    @Option(parsing: .unconditional, help: "Images per mini-batch.")
    var batchSize: Int = 64

    @Option(parsing: .unconditional, help: "Learning rate for SGD and Adagrad (Adam uses --adam-lr).")
    var lr: Float = 0.01

    @Option(parsing: .unconditional, help: "Learning rate for Adam.")
    var adamLr: Float = 0.001

    @OptionGroup var threadsOption: ThreadsOption

    @Option(help: "Directory for comparison.svg, comparison.json and comparison.md.")
    var out: String = "runs/compare"

    @Flag(help: "Print the table as JSON.")
    var json = false

    func validate() throws {
        if runs < 1 { throw ValidationError("--runs must be at least 1, got \(runs)") }
        if epochs < 1 { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        if !(lr.isFinite && lr > 0) { throw ValidationError("--lr must be a positive number, got \(lr)") }
        if !(adamLr.isFinite && adamLr > 0) { throw ValidationError("--adam-lr must be a positive number, got \(adamLr)") }
        if model != nil && spec != nil { throw ValidationError("give either --model or --spec, not both") }
        for name in optimizers.split(separator: ",", omittingEmptySubsequences: false)
        where OptimizerKind(rawValue: name.trimmingCharacters(in: .whitespaces).lowercased()) == nil {
            throw ValidationError("--optimizers: unknown optimizer '\(name)'; use sgd, adagrad or adam, comma-separated")
        }
    }

    func run() throws {
        threadsOption.apply()
        let kinds = try optimizers.split(separator: ",").map { name -> OptimizerKind in
            guard let k = OptimizerKind(rawValue: name.trimmingCharacters(in: .whitespaces).lowercased()) else {
                throw ValidationError("--optimizers: unknown optimizer '\(name)'; use sgd, adagrad or adam, comma-separated")
            }
            return k
        }
        let choice = try NetworkChoice(model: spec == nil ? (model ?? "tiny-cnn") : nil, spec: spec)
        let datasetName = dataset ?? choice.defaultDataset
        let (data, inputShape) = try prepareData(datasetName, dataDirectory: dataDir, network: choice, seed: 1)
        let directory = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)

        var groups: [RunGroup] = []
        for kind in kinds {
            var results: [RunMetrics] = []
            for run in 1...runs {
                var options = TrainingOptions()
                options.epochs = epochs
                options.batchSize = batchSize
                options.optimizer = kind
                options.learningRate = kind == .adam ? adamLr : lr
                options.seed = UInt64(run)
                options.loss = choice.loss
                let network = try Sequential(spec: choice.spec, inputShape: inputShape, seed: UInt64(run))
                try checkClasses(network, loss: choice.loss, dataset: data.split.train, name: datasetName)
                let trainer = try Trainer(network: network, options: options)
                var metrics = RunMetrics()
                Terminal.error("\(kind.rawValue) run \(run)/\(runs)")
                var display = ProgressDisplay(epochs: epochs)
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
