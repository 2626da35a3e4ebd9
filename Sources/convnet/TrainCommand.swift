import ArgumentParser
import ConvNet
import Foundation

public struct TrainCommand: ParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a network (by default two-conv on the bundled MNIST sample).",
        discussion: """
            Examples:
              convnet train                                   # two-conv on mnist-sample
              convnet train --model lenet5 --dataset fashion-mnist --epochs 5
              convnet train --spec 'conv 8 3x3 pad 1; relu; maxpool 2; flatten; dense 10' --optimizer adam --lr 0.001
              convnet train --model toy --out runs/toy --json
              convnet train --recipe fashion-fast                # a recipe from convnet recipes
              convnet train --recipe fashion-fast --epochs 3     # the recipe with one setting changed
            """)

    @Option(help: "A training recipe (convnet recipes lists them): sets the network, data set, optimizer, schedule, augmentation and epochs at once; options given with it override single settings.")
    var recipe: String?

    @Option(help: "A zoo network: \(ModelZoo.names.joined(separator: ", ")).")
    var model: String?

    @Option(help: "A network as a text spec, inline or a file path (instead of --model).")
    var spec: String?

    @Option(help: "Data set name or .npz path (default: the model's, mnist-sample for most).")
    var dataset: String?

    @Option(help: "Where to look for data set files.")
    var dataDir: String?

    @Option(parsing: .unconditional, help: "Passes over the training set, at least 1 (default 10; with --resume, the new total).")
    var epochs: Int?

    @Option(parsing: .unconditional, help: "Images per mini-batch, at least 1 (default 64).")
    var batchSize: Int?

    @Option(help: "sgd, adagrad, adam or adamw (default sgd).")
    var optimizer: String?

    @Option(parsing: .unconditional, help: "Learning rate, a positive number (default 0.01, 0.001 for adam and adamw); with --schedule cosine or one-cycle, the peak.")
    var lr: Float?

    @Option(parsing: .unconditional, help: "SGD momentum, in [0, 1) (default 0.9).")
    var momentum: Float?

    @Flag(inversion: .prefixedNo, help: "Nesterov momentum (SGD; default off).")
    var nesterov: Bool?

    @Option(help: "The learning rate's curve: step (the rate times --lr-decay every --decay-every iterations; the default), cosine (down to 0 at the end, after --warmup), one-cycle (PyTorch's OneCycleLR: up from lr/25 for 30% of the run or for --warmup, then down).")
    var schedule: String?

    @Option(help: "Raise the learning rate linearly from near 0 over this many epochs (1, 0.5) or iterations (500it) at the start (default none).")
    var warmup: String?

    @Option(parsing: .unconditional, help: "Multiply the learning rate by this, in (0, 1], every --decay-every iterations (the step schedule; default 1, no decay).")
    var lrDecay: Float?

    @Option(parsing: .unconditional, help: "Iterations between learning-rate decays, at least 1 (default 1000).")
    var decayEvery: Int?

    @Option(parsing: .unconditional, help: "Clip each gradient element to ±VALUE (VALUE > 0).")
    var clip: Float?

    @Option(parsing: .unconditional, help: "Scale gradients so their global L2 norm is at most VALUE (VALUE > 0).")
    var clipNorm: Float?

    @Option(parsing: .unconditional, help: "Weight decay, 0 or more (default 0; 0.01 for adamw): L2 for sgd, adagrad and adam, decoupled for adamw.")
    var weightDecay: Float?

    @Option(help: "Which parameters weight decay applies to: all (the default), or weights (not biases and batch norm's scale and shift, the parameters of rank 1).")
    var decayScope: String?

    @Option(parsing: .unconditional, help: "Train softmax cross-entropy against targets smoothed by this, in [0, 1): (1 - e) on the label, e / classes on every class (default 0).")
    var labelSmoothing: Float?

    @Option(name: .customLong("init"), help: "Weight initialiser: pytorch (the default), gaussian[:std], truncated-normal[:std], uniform[:limit], xavier, xavier-normal, he, he-uniform.")
    var initializer: String?

    @Option(parsing: .unconditional, help: "Random seed, a whole number from 0 to 2^64-1 (default 1): the same seed and thread count give the same weights, bit for bit.")
    var seed: UInt64?

    @OptionGroup var threadsOption: ThreadsOption
    @OptionGroup var memoryBudgetOption: MemoryBudgetOption
    @OptionGroup var convAlgorithmOption: ConvAlgorithmOption

    @Option(help: "Stop early: acc=0.97 (training accuracy reached) or patience=3 (epochs without validation gain).")
    var earlyStop: String?

    @Option(parsing: .unconditional, help: "Fraction of the training set held out for validation, in [0, 1) (default 0.1 with --early-stop patience=N).")
    var validation: Double?

    @Option(parsing: .unconditional, help: "Use only the first N training images (N >= 1).")
    var trainLimit: Int?

    @Option(help: "Augment each training image anew every step: a comma-separated list of shift=N (translate by up to N pixels, padding with the background), flip (mirror left-right with probability 0.5; flip=alternate mirrors each image every other epoch, by a seeded coin of its own in the first), erase=P (with probability P set a random rectangle to the mean); for example shift=2,flip,erase=0.25; none for no augmentation. Seeded, never at evaluation.")
    var augment: String?

    @Option(parsing: .unconditional, help: "Keep an exponential moving average of the weights with this decay, in (0, 1) (0.999 is usual), updated after every step with the warm-up min(DECAY, (1 + n) / (10 + n)) at step n; batch norm's running statistics are averaged alike. The average is what each epoch's validation and test accuracy score and what model.npz holds (the checkpoint keeps both).")
    var ema: Float?

    @Option(help: "Test-time augmentation of every evaluation: flip (also the mirror image), shift=N (also the image moved N pixels down-right and up-left), or both (flip,shift=1: 6 passes); the class probabilities are the passes' mean. Recorded in model.npz, so convnet eval, predict and studio classify the same way; none for none (the default).")
    var tta: String?

    @Option(help: "Directory for metrics, weights, checkpoints and the report (default runs/MODEL-TIME).")
    var out: String?

    @Option(help: "Continue the run saved in DIR (its checkpoint.npz) exactly where it stopped.")
    var resume: String?

    @Option(help: "Also save checkpoint.npz every N iterations (it is always saved after each epoch and on Ctrl-C/SIGTERM), so a long epoch can resume mid-way.")
    var checkpointEvery: Int?

    @Option(help: "hw5: also write the weights as plain NumPy arrays in the layout that the NumPy code of a course's homework 5 (hw5) loads: mlp.npz (w1, b1, w2, b2) for --model mlp, cnn.npz (w_conv as kh x kw x in x out, b_conv, w_fc, b_fc) for --model tiny-cnn.")
    var export: String?

    @Flag(help: "Skip the HTML report at the end.")
    var noReport = false

    @Flag(help: "Print one JSON summary object as the last line of stdout.")
    var json = false

    @Flag(help: "Print each iteration and epoch as a JSON line (the metrics.jsonl rows) on stdout as training goes; convnet studio reads them.")
    var events = false

    /// Every option value is checked here, before anything runs: a bad one is a usage error (exit 64)
    /// that names the option and what it accepts. The options are read through `TrainOptionTable`.
    public mutating func validate() throws {
        if model != nil && spec != nil { throw ValidationError("give either --model or --spec, not both") }
        if let dir = resume, let out, URL(fileURLWithPath: out).standardizedFileURL != URL(fileURLWithPath: dir).standardizedFileURL {
            throw ValidationError("--resume \(dir) continues the run in its own folder; leave out --out \(out)")
        }
        let setup = try TrainOptionTable.setup(from: self)
        // Without --resume the run is this setup; with it, its options are checked against the checkpoint in run().
        if resume == nil { _ = try RunSettings(setup) }
    }

    public func run() throws {
        if let dir = resume {
            let directory = URL(fileURLWithPath: dir)
            let url = directory.appendingPathComponent("checkpoint.npz")
            guard FileManager.default.fileExists(atPath: url.path) else {
                if case .restartable = try RunFolder.inspect(directory) {
                    throw CommandError(
                        "\(dir) holds a run that stopped before its first epoch ended, so there is no checkpoint.npz to resume from; "
                            + "start it again with the same command and --out \(dir)")
                }
                throw CommandError("\(dir) holds no checkpoint.npz to resume from (was it written by convnet train --out?)")
            }
            let checkpoint = try Checkpoint.read(from: url, memoryBudget: memoryBudgetOption.budget)
            let saved: RunSettings
            do {
                saved = try JSONDecoder().decode(RunSettings.self, from: Data(checkpoint.settings.utf8))
            } catch {
                throw CommandError("\(url.path): its run settings (train.settings) cannot be read: \(plainWords(error)); "
                    + "the checkpoint is damaged or was written by another version of convnet")
            }
            let setup = try TrainOptionTable.resumed(TrainSetup(saved), command: self, directory: dir)
            try checkpoint.checkProgress(path: url.path)
            let done = checkpoint.progress.epochsDone
            if setup.options.epochs < done {
                throw ValidationError(
                    "--epochs \(setup.options.epochs) is fewer than the \(done) epochs the run in \(dir) has already trained; "
                        + "give --epochs \(done + 1) or more to train it further, or use \(directory.appendingPathComponent("model.npz").path) as it is")
            }
            do {
                try saved.validate()
            } catch {
                throw CommandError("\(url.path): its run settings (train.settings) do not make a run: \(plainWords(error))")
            }
            try checkSettings(saved, against: checkpoint, path: url.path)
            var settings = saved
            settings.take(setup)
            do { try settings.validate() } catch let error as ValueError { throw ValidationError("\(error)") }
            try execute(settings, directory: directory, checkpoint: checkpoint)
        } else {
            let settings = try RunSettings(TrainOptionTable.setup(from: self))
            let directory = URL(fileURLWithPath: out ?? defaultRunDirectory(settings.network.name))
            // Only rank 0 of a data-parallel run (see ProcessRanks) looks at and writes the run folder.
            switch ProcessRanks.isWriter ? try RunFolder.inspect(directory) : .new {
            case .new: break
            case .restartable:
                Terminal.error("\(directory.path) holds a run that stopped before its first epoch ended; starting it again")
            case .run:
                throw CommandError("\(directory.path) already holds a run; continue it with --resume \(directory.path) or choose another --out")
            case .foreign(let names):
                let shown = names.prefix(5).joined(separator: ", ") + (names.count > 5 ? ", ..." : "")
                throw CommandError(
                    "\(directory.path) is not empty and holds no ConvNet run (it has \(shown)); choose a new or empty folder for --out, "
                        + "so that nothing in it is overwritten")
            }
            try execute(settings, directory: directory, checkpoint: nil)
        }
    }

    func execute(_ settings: RunSettings, directory: URL, checkpoint: Checkpoint?) throws {
        let options = settings.options
        let budget = memoryBudgetOption.budget
        let (data, inputShape) = try prepareData(
            settings.dataset, dataDirectory: settings.dataDirectory, trainLimit: settings.trainLimit, network: settings.network,
            normalization: checkpoint?.model.normalization, validation: settings.validation, seed: options.seed, memoryBudget: budget)
        // The network gets what the data left of the budget.
        let networkBudget = budget.spending(data.bytes)
        let network: Sequential
        if let checkpoint {
            network = checkpoint.model.network
            network.memoryBudget = networkBudget
        } else {
            let weightInit = try WeightInit(parsing: settings.initializer)
            network = try Sequential(
                spec: settings.network.spec, inputShape: inputShape, seed: options.seed, weightInit: weightInit,
                biasInit: weightInit == .pytorchDefault ? .pytorchDefault : .constant(0), memoryBudget: networkBudget)
        }
        network.context = threadsOption.context.with(algorithm: settings.convAlgorithm ?? .auto)
        let train = data.split.train, test = data.split.test
        try checkClasses(network, loss: options.loss, dataset: train, name: settings.dataset)
        let trainer = try Trainer(network: network, options: options)
        if let checkpoint {
            try checkpoint.checkProgress(path: directory.appendingPathComponent("checkpoint.npz").path, epochs: options.epochs,
                                         batches: (train.count + options.batchSize - 1) / options.batchSize, batchSize: options.batchSize)
        }
        // Before the run folder is touched: a step that cannot fit the budget is refused now (`Trainer.train` checks it too).
        try network.checkMemory(batch: min(options.batchSize, train.count), training: true, optimizerSlots: trainer.parameterCopies)
        let checkpointURL = directory.appendingPathComponent("checkpoint.npz")
        if let checkpoint { try trainer.restore(from: checkpoint, path: checkpointURL.path) }
        trainer.group = ProcessRanks.current
        try trainer.joinGroup(train: train, evaluated: [data.validation, test].compactMap { $0 })

        // Only rank 0 of a data-parallel run writes the run folder: the other ranks hold no writer.
        if ProcessRanks.isWriter { RunFolder.removeStaleTemporaries(in: directory) }
        let metrics = !ProcessRanks.isWriter ? nil : try checkpoint == nil
            ? MetricsWriter(directory: directory, append: false)
            : MetricsWriter(resuming: directory, epochsDone: trainer.progress.epochsDone, iteration: trainer.progress.iteration)
        // Time and images of the epochs before a resume count in the summary too.
        let earlierEpochs = metrics?.metrics.epochs ?? []
        let tta = options.testTimeAugmentation
        let archive = ModelArchive(network: network, modelName: settings.network.name, loss: options.loss, classNames: train.classNames, normalization: data.normalization,
                                   dataset: settings.dataset, augmentation: options.augmentation?.description ?? "",
                                   training: TrainOptionTable.commandLine(TrainSetup(settings)).map(shellQuoted).joined(separator: " "),
                                   testTimeAugmentation: tta, testTimeFill: (tta?.shift ?? 0) > 0 ? TestTimeAugmentation.fill(for: train) : [])
        let settingsJSON = try Terminal.json(settings)
        Terminal.error("training \(settings.network.name) on \(settings.dataset): \(train.count) training, \(data.validation.map { "\($0.count) validation, " } ?? "")\(test.count) test images"
            + (data.transform.isIdentity ? "" : " (\(data.transform))") + "; \(network.parameterCount) parameters, \(options.optimizer.rawValue) lr \(options.learningRate), "
            + "batch \(options.batchSize)\(settings.recipe.map { ", recipe \($0)" } ?? ""), \(counted(network.context.threads, "thread"))\(ProcessRanks.current.map { " in each of \($0.size) ranks" } ?? ""); run in \(directory.path)")
        if checkpoint != nil {
            let done = trainer.progress.epochsDone
            Terminal.error(done < options.epochs || trainer.progress.batchesInEpoch > 0
                ? "resuming after epoch \(done) of \(options.epochs)"
                : "the run has trained all its \(done) epoch\(done == 1 ? "" : "s"); nothing to train (give --epochs \(done + 1) or more to train further)")
        }

        // The metrics files and the checkpoint go together: a checkpoint that cannot be written takes the rows
        // written with it back out of the files, so they hold what the last checkpoint on disk has seen.
        var lastSaved = checkpoint?.progress
        var savedMark = try metrics?.mark()
        var savedRows = (iterations: metrics?.metrics.iterations.count ?? 0, epochs: metrics?.metrics.epochs.count ?? 0)
        func saveCheckpoint() throws {
            guard let metrics, let mark = savedMark else { return }
            do {
                try metrics.flush()
                try Checkpoint(trainer: trainer, model: archive, settings: settingsJSON).write(to: checkpointURL)
            } catch {
                try? metrics.rollBack(to: mark, keepingIterations: savedRows.iterations, epochs: savedRows.epochs)
                throw error
            }
            lastSaved = trainer.progress
            savedMark = try metrics.mark()
            savedRows = (metrics.metrics.iterations.count, metrics.metrics.epochs.count)
        }

        var display = ProgressDisplay(epochs: options.epochs)
        let started = Date()
        Interruption.install()
        do {
            try trainer.train(on: train, validation: data.validation, test: test) { event in
                display.show(event)
                switch event {
                case .iteration(let r):
                    let row = IterationMetrics(epoch: r.epoch, iteration: r.iteration, loss: Double(r.loss), learningRate: Double(r.learningRate))
                    metrics?.record(row)
                    if events { Terminal.line(RunMetrics.jsonLine(row)) }
                    let interrupted = Interruption.received
                    if interrupted != nil || settings.checkpointEvery.map({ r.iteration % $0 == 0 && r.batch < r.batches }) == true {
                        // Metrics first: after a kill, the rows on disk are those the checkpoint has seen.
                        try saveCheckpoint()
                    }
                    if let sig = interrupted {
                        Terminal.error("\nstopped by \(Interruption.name(sig)) in epoch \(r.epoch) after batch \(r.batch) of \(r.batches) "
                            + "(iteration \(r.iteration)); saved \(checkpointURL.path)\ncontinue with: convnet train --resume \(directory.path)")
                        throw ExitCode(128 + sig)
                    }
                case .epoch(let e):
                    let row = EpochMetrics(epoch: e.epoch, iteration: e.iteration, trainLoss: e.trainLoss, trainAccuracy: e.trainAccuracy,
                                           testAccuracy: e.testAccuracy, seconds: e.seconds)
                    metrics?.recordPending(row)
                    try saveCheckpoint()
                    if events { Terminal.line(RunMetrics.jsonLine(row)) }  // after the checkpoint: a reader may stop the run now
                }
            }
        } catch let stop as ExitCode {
            throw stop  // interrupted: the checkpoint is saved and the resume command printed
        } catch {
            // The rows since the last checkpoint stay out of the files: they describe steps that a resume trains again.
            if let metrics, let mark = savedMark { try? metrics.rollBack(to: mark, keepingIterations: savedRows.iterations, epochs: savedRows.epochs) }
            let next = lastSaved.map {
                "\(Checkpoint.describe($0)) stays in \(checkpointURL.path): convnet train --resume \(directory.path) continues from it with the same settings"
            } ?? "no checkpoint was saved, so there is nothing to resume: \(directory.path) can be reused, run convnet train again with --out \(directory.path)"
            throw CommandError("\(plainWords(error)); \(next)")
        }
        let seconds = earlierEpochs.map(\.seconds).reduce(0, +) + Date().timeIntervalSince(started)
        if trainer.progress.stoppedEarly { Terminal.error("stopped early after epoch \(trainer.progress.epochsDone)") }

        let weightsURL = directory.appendingPathComponent("model.npz")
        guard let metrics else { return }
        // The checkpoint keeps the raw weights (to resume from); the model is the weight average.
        trainer.weightAverage?.copy(into: network)
        try archive.write(to: weightsURL)
        if settings.exportHW5 {
            let url = try CourseExport.write(model: settings.network.name, network: network, to: directory)
            Terminal.error("weights in the homework layout (--export hw5): \(url.path)")
        }
        // The last epoch already scored these weights on the test set; evaluate only when no epoch ran (a resume of a finished run).
        let testAccuracy = try trainer.epochRecords.last?.testAccuracy
            ?? evaluate(network, on: test, loss: options.loss, tta: tta, fill: archive.testTimeFill).accuracy
        if settings.report {
            let report = try writeReport(
                directory: directory, network: network, test: test, metrics: metrics.metrics,
                settings: settings.table(threads: network.context.threads) + [("test accuracy", String(format: "%.2f%%", 100 * testAccuracy))],
                title: "\(settings.network.name) on \(settings.dataset)")
            Terminal.error("report: \(report.path)")
        }
        let trainSeconds = earlierEpochs.map(\.seconds).reduce(0, +) + trainer.epochRecords.map(\.seconds).reduce(0, +)
        let trainedImages = Double((earlierEpochs.count + trainer.epochRecords.count) * train.count)
        let epochsDone = trainer.progress.epochsDone
        print(String(format: "test accuracy %.2f%% (%d images) after %d epoch%@ in %.1fs; weights in %@",
                     100 * testAccuracy, test.count, epochsDone, epochsDone == 1 ? "" : "s", seconds, weightsURL.path))
        if json {
            // A resume of a finished run trains no epoch: the last epoch is then the one its metrics hold.
            let last = trainer.epochRecords.last.map { (trainLoss: $0.trainLoss, trainAccuracy: $0.trainAccuracy) }
                ?? earlierEpochs.last.map { (trainLoss: $0.trainLoss, trainAccuracy: $0.trainAccuracy) }
            print(try Terminal.json(TrainSummary(
                model: settings.network.name, dataset: settings.dataset, epochs: trainer.progress.epochsDone, batch_size: options.batchSize,
                optimizer: options.optimizer.rawValue, seed: options.seed, recipe: settings.recipe,
                augmentation: options.augmentation?.description, train_images: train.count, test_images: test.count,
                train_loss: last?.trainLoss, train_accuracy: last?.trainAccuracy, test_accuracy: testAccuracy, seconds: seconds,
                images_per_second: trainSeconds > 0 ? trainedImages / trainSeconds : 0, weights: weightsURL.path)))
        }
    }
}

/// The last line of `convnet train --json`.
struct TrainSummary: Encodable {
    var model, dataset: String
    var epochs, batch_size: Int
    var optimizer: String
    var seed: UInt64
    /// nil (the key left out) when the run used no recipe, or no augmentation.
    var recipe, augmentation: String?
    var train_images, test_images: Int
    var train_loss, train_accuracy: Double?
    var test_accuracy, seconds, images_per_second: Double
    var weights: String

    func encode(to encoder: Encoder) throws {
        enum K: String, CodingKey { case model, dataset, epochs, batch_size, optimizer, seed, recipe, augmentation, train_images, test_images, train_loss, train_accuracy, test_accuracy, seconds, images_per_second, weights }
        var c = encoder.container(keyedBy: K.self)
        try c.encode(model, forKey: .model); try c.encode(dataset, forKey: .dataset); try c.encode(epochs, forKey: .epochs)
        try c.encode(batch_size, forKey: .batch_size); try c.encode(optimizer, forKey: .optimizer); try c.encode(seed, forKey: .seed)
        try c.encodeIfPresent(recipe, forKey: .recipe); try c.encodeIfPresent(augmentation, forKey: .augmentation)
        try c.encode(train_images, forKey: .train_images); try c.encode(test_images, forKey: .test_images)
        try c.encode(train_loss, forKey: .train_loss); try c.encode(train_accuracy, forKey: .train_accuracy)
        try c.encode(test_accuracy, forKey: .test_accuracy); try c.encode(seconds, forKey: .seconds)
        try c.encode(images_per_second, forKey: .images_per_second); try c.encode(weights, forKey: .weights)
    }
}

/// Everything that defines a run, saved in its checkpoint so `--resume` rebuilds it.
struct RunSettings: Codable {
    var network: NetworkChoice
    var dataset: String
    var dataDirectory: String?
    var trainLimit: Int?
    var validation: Double
    var initializer: String
    var options: TrainingOptions
    var exportHW5: Bool
    var report: Bool
    /// `--checkpoint-every N` (iterations); nil in runs saved before it existed.
    var checkpointEvery: Int?
    /// The `--recipe` the run started from; nil without one (and in runs saved before recipes existed).
    var recipe: String?
    /// `--conv-algorithm`; nil: auto (and runs saved before the option existed).
    var convAlgorithm: ConvAlgorithm?

    /// The run `setup` describes, its network resolved and every value checked (a usage error naming the option).
    init(_ setup: TrainSetup) throws {
        network = try setup.spec.map { try NetworkChoice(specText: $0) } ?? NetworkChoice(model: setup.model, spec: nil)
        dataset = setup.dataset ?? network.defaultDataset
        dataDirectory = setup.dataDirectory
        trainLimit = setup.trainLimit
        options = setup.options
        options.loss = network.loss
        if let v = setup.validation {
            validation = v
        } else if case .patience = options.earlyStopping {
            validation = 0.1
        } else {
            validation = 0
        }
        initializer = setup.initializer
        exportHW5 = setup.exportHW5
        report = setup.report
        checkpointEvery = setup.checkpointEvery
        recipe = setup.recipe
        convAlgorithm = setup.convAlgorithm == .auto ? nil : setup.convAlgorithm
        do {
            try validate()
        } catch let error as ValueError {
            throw ValidationError("\(error)")
        }
    }

    /// Takes from `setup` what a resume may change: the epochs' new total and the settings that do not
    /// change the math (see `TrainOption.OnResume`).
    mutating func take(_ setup: TrainSetup) {
        options.epochs = setup.options.epochs
        dataDirectory = setup.dataDirectory
        exportHW5 = setup.exportHW5
        report = setup.report
        checkpointEvery = setup.checkpointEvery
    }

    /// The checks the options get on the command line, for settings read back from a checkpoint.
    func validate() throws {
        try options.validate()
        guard (0..<1).contains(validation) else { throw ValueError.invalidArgument("--validation must be in [0, 1), got \(validation)") }
        if let n = trainLimit, n < 1 { throw ValueError.invalidArgument("--train-limit must be at least 1, got \(n)") }
        if let n = checkpointEvery, n < 1 { throw ValueError.invalidArgument("--checkpoint-every takes a number of iterations >= 1, got \(n)") }
        do { _ = try WeightInit(parsing: initializer) } catch { throw ValueError.invalidArgument("--init: \(error)") }
        if exportHW5 { try CourseExport.check(model: network.name) }
    }

    /// The report's settings rows (`TrainOptionTable.rows`), after the options that repeat the run;
    /// `threads`: the run's thread count, where known.
    func table(threads: Int?) -> [(key: String, value: String)] {
        let setup = TrainSetup(self, threads: threads)
        let command = "convnet train " + TrainOptionTable.commandLine(setup).map(shellQuoted).joined(separator: " ")
        return [("command", command)] + TrainOptionTable.rows(setup)
    }
}

/// A checkpoint's saved settings must describe its model: the same network and data set.
func checkSettings(_ saved: RunSettings, against checkpoint: Checkpoint, path: String) throws {
    let model = checkpoint.model
    let savedSpec = (try? NetworkSpec.parse(saved.network.spec).layers.map(\.specStatement).joined(separator: "; ")) ?? saved.network.spec
    guard savedSpec == model.network.spec else {
        throw CommandError("\(path): its run settings name the network '\(Terminal.printable(savedSpec))' but its weights are for "
            + "'\(Terminal.printable(model.network.spec))'; the checkpoint is damaged: start a new run")
    }
    guard model.dataset.isEmpty || model.dataset == saved.dataset else {
        throw CommandError("\(path): its run settings name the data set '\(Terminal.printable(saved.dataset))' but its model says it was trained on "
            + "'\(Terminal.printable(model.dataset))'; the checkpoint is damaged: start a new run")
    }
}

func defaultRunDirectory(_ name: String) -> String {
    let formatter = DateFormatter()
    formatter.dateFormat = "yyyyMMdd-HHmmss"
    return "runs/\(name)-\(formatter.string(from: Date()))"
}

/// `acc=0.97`, `0.97`, `patience=3` or `3`.
func parseEarlyStop(_ text: String) throws -> EarlyStopping {
    let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
    let key = parts.count == 2 ? parts[0].lowercased() : ""
    let value = parts.last ?? ""
    if key == "patience" || (key.isEmpty && Int(value) != nil) {
        guard let n = Int(value), n >= 1 else { throw ValidationError("--early-stop patience must be a whole number of epochs >= 1, got '\(value)'") }
        return .patience(n)
    }
    if key == "acc" || key == "accuracy" || key.isEmpty, let a = Double(value), a > 0, a <= 1 {
        return .trainAccuracy(a)
    }
    throw ValidationError("--early-stop takes acc=0.97 (stop at that training accuracy) or patience=3 (epochs without validation gain), got '\(text)'")
}

/// `--augment shift=2,flip,erase=0.25`: nil for `none`; a bad text is a usage error naming the option and the accepted forms.
func parseAugment(_ text: String) throws -> Augmentation? {
    do {
        let augmentation = try Augmentation(parsing: text)
        return augmentation.isIdentity ? nil : augmentation
    } catch {
        throw ValidationError("\(error)")
    }
}

/// A spec given inline, or the contents of the file it names. A text that is neither a file nor a spec is a
/// usage error: a missing file when it looks like a file name (`mynet.txt`, `nets/a`), else the spec's error.
func readSpec(_ text: String) throws -> String {
    if let kind = try? CheckedFile.kind(atPath: text) {
        guard kind != .folder else { throw ValidationError("--spec \(text) is a folder; give the spec itself or a file that holds it") }
        do { return try readUserTextFile(text) } catch { throw ValidationError("--spec: \(plainWords(error))") }
    }
    do {
        _ = try NetworkSpec.parse(text)
    } catch {
        let oneWord = !text.contains(";") && !text.contains("\n") && !text.trimmingCharacters(in: .whitespaces).contains(" ")
        if oneWord && (text.contains("/") || text.range(of: #"\.[A-Za-z0-9]+$"#, options: .regularExpression) != nil) {
            throw ValidationError("--spec \(text): there is no such file (and the text is not a spec either)")
        }
        throw ValidationError("--spec: \(error)")
    }
    return text
}
