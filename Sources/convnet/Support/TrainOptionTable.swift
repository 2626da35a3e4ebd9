import ArgumentParser
import ConvNet
import Foundation

/// A run as `convnet train` is asked for it, before its network is resolved: a recipe's settings (or the
/// defaults), with every option given on the command line put over them by `TrainOptionTable`.
/// `RunSettings` is the same with the network resolved, as a checkpoint saves it.
struct TrainSetup: Equatable {
    var recipe: String?
    /// A zoo network; nil with `spec` (and for the default, two-conv, when neither is set).
    var model: String?
    /// A spec's text (the file's contents when `--spec` names a file).
    var spec: String?
    /// nil: the network's own data set.
    var dataset: String?
    var dataDirectory: String?
    var trainLimit: Int?
    /// nil: none, or 0.1 with `--early-stop patience=N`.
    var validation: Double?
    var initializer = "pytorch"
    var options = TrainSetup.defaultOptions
    var exportHW5 = false
    var report = true
    var checkpointEvery: Int?
    /// `--conv-algorithm`.
    var convAlgorithm = ConvAlgorithm.auto
    /// `--threads`; nil: every core.
    var threads: Int?
    /// `--memory-budget`; nil: the machine's.
    var memoryBudget: MemoryBudget?

    /// `TrainingOptions`' defaults, but 10 epochs (the default run's).
    static var defaultOptions: TrainingOptions {
        var o = TrainingOptions()
        o.epochs = 10
        return o
    }

    init() {}

    /// A recipe's settings, named after it.
    init(recipe: Recipe) {
        self.recipe = recipe.name
        model = recipe.model
        dataset = recipe.dataset
        trainLimit = recipe.trainLimit
        initializer = recipe.initializer
        options = recipe.options
    }

    /// The setup a saved run's settings describe (every value explicit).
    init(_ settings: RunSettings, threads: Int? = nil) {
        recipe = settings.recipe
        if settings.network.name == NetworkChoice.customName { spec = settings.network.spec } else { model = settings.network.name }
        dataset = settings.dataset
        dataDirectory = settings.dataDirectory
        trainLimit = settings.trainLimit
        validation = settings.validation
        initializer = settings.initializer
        options = settings.options
        exportHW5 = settings.exportHW5
        report = settings.report
        checkpointEvery = settings.checkpointEvery
        convAlgorithm = settings.convAlgorithm ?? .auto
        self.threads = threads
    }
}

/// One option of `convnet train`: its flag, how its text is parsed into a `TrainSetup`, how its value is
/// written back as command-line text (the report, `convnet recipes`, the resume check's messages), and what
/// `--resume` does with it. The ranges each value must lie in are checked once the whole setup is built, by
/// `TrainingOptions.validate` and `RunSettings.validate`, so a rule lives in one place.
struct TrainOption: Sendable {
    /// What `--resume DIR` does when the option is given.
    enum OnResume: Sendable {
        /// It changes the run's math: a value other than the saved one is refused.
        case mustMatch
        /// The new total (`--epochs`): at least the epochs already done.
        case newTotal
        /// It does not change the math (threads, checkpoints, the report): the new value is used.
        case honoured
    }

    enum Form: Sendable, Equatable {
        /// `--flag VALUE`.
        case value
        /// `--flag` alone (on); `--no-flag` turns it off where `negatable`.
        case flag(negatable: Bool)
    }

    /// `--lr`.
    let flag: String
    /// The report's name for it.
    let label: String
    let form: Form
    let onResume: OnResume
    /// Always shown in the report, even at its default.
    let core: Bool
    /// A valid value other than the default ("on" for a flag), for the table's own tests.
    let example: String
    /// The text given on the command line ("on"/"off" for a flag), nil when it was not given.
    let given: @Sendable (TrainCommand) -> String?
    /// Parses `text` into `setup`; a text that cannot be parsed is a usage error naming the flag.
    let apply: @Sendable (_ text: String, _ setup: inout TrainSetup) throws -> Void
    /// The setting's value as command-line text ("on"/"off" for a flag), nil where it is unset.
    let value: @Sendable (TrainSetup) -> String?

    /// The value as command-line arguments (`["--lr", "0.05"]`, `["--nesterov"]`, `["--no-nesterov"]`).
    func arguments(_ setup: TrainSetup) -> [String] {
        guard let v = value(setup) else { return [] }
        switch form {
        case .value: return [flag, v]
        case .flag(let negatable):
            if v == "on" { return [flag] }
            return negatable ? ["--no-" + flag.dropFirst(2)] : []
        }
    }

    /// The value in words for a message: the arguments, or `no --flag`.
    func described(_ setup: TrainSetup) -> String {
        let args = arguments(setup)
        return args.isEmpty ? "no \(flag)" : args.map(shellQuoted).joined(separator: " ")
    }
}

/// Every option of `convnet train` that describes the run, in the order they are applied (a recipe first,
/// then the network before the data set, the optimizer before its rate and decay). `--out`, `--resume`,
/// `--json` and `--events` say where and how the command reports, not what is trained, and are not here.
enum TrainOptionTable {
    static let all: [TrainOption] = [
        TrainOption(
            flag: "--recipe", label: "recipe", form: .value, onResume: .mustMatch, core: false, example: "fashion-fast",
            given: { $0.recipe },
            apply: { text, s in
                do { s = TrainSetup(recipe: try Recipes.recipe(named: text)) } catch { throw ValidationError("--recipe: \(error)") }
            },
            value: { $0.recipe }),
        TrainOption(
            flag: "--model", label: "model", form: .value, onResume: .mustMatch, core: true, example: "lenet5",
            given: { $0.model },
            apply: { text, s in
                do { _ = try ModelZoo.model(named: text) } catch { throw ValidationError("--model: \(error)") }
                s.model = text.lowercased()
                s.spec = nil
            },
            value: { $0.spec == nil ? ($0.model ?? "two-conv") : nil }),
        TrainOption(
            flag: "--spec", label: "spec", form: .value, onResume: .mustMatch, core: true, example: "flatten; dense 10",
            given: { $0.spec },
            apply: { text, s in
                s.spec = try readSpec(text)
                s.model = nil
            },
            value: { $0.spec?.trimmingCharacters(in: .whitespacesAndNewlines) }),
        TrainOption(
            flag: "--dataset", label: "dataset", form: .value, onResume: .mustMatch, core: true, example: "toy-squares",
            given: { $0.dataset },
            apply: { text, s in
                guard DatasetCatalog.recognizes(text) else {
                    throw ValidationError("--dataset: \(DataError.unknownDataset(name: text, known: DatasetCatalog.names))")
                }
                s.dataset = DatasetCatalog.canonicalName(text) ?? text
            },
            value: { $0.dataset }),
        TrainOption(
            flag: "--data-dir", label: "data folder", form: .value, onResume: .honoured, core: false, example: "data",
            given: { $0.dataDir }, apply: { text, s in s.dataDirectory = text }, value: { $0.dataDirectory }),
        .number("--train-limit", "training images", example: "100", given: \.trainLimit, field: \.trainLimit),
        TrainOption(
            flag: "--validation", label: "validation", form: .value, onResume: .mustMatch, core: false, example: "0.2",
            given: { $0.validation.map { "\($0)" } },
            apply: { text, s in s.validation = try parseNumber(text, "--validation") },
            value: { s in s.validation.flatMap { $0 > 0 ? "\($0)" : nil } }),
        TrainOption(
            flag: "--init", label: "initialiser", form: .value, onResume: .mustMatch, core: true, example: "he",
            given: { $0.initializer },
            apply: { text, s in
                do { _ = try WeightInit(parsing: text) } catch { throw ValidationError("--init: \(error)") }
                s.initializer = text.lowercased()
            },
            value: { $0.initializer }),
        .number("--seed", "seed", core: true, example: "7", given: \.seed, field: \.options.seed),
        .number("--epochs", "epochs", .newTotal, core: true, example: "3", given: \.epochs, field: \.options.epochs),
        .number("--batch-size", "batch size", core: true, example: "32", given: \.batchSize, field: \.options.batchSize),
        TrainOption(
            flag: "--optimizer", label: "optimizer", form: .value, onResume: .mustMatch, core: true, example: "adam",
            given: { $0.optimizer },
            apply: { text, s in
                guard let kind = OptimizerKind(rawValue: text.lowercased()) else {
                    throw ValidationError("--optimizer: unknown optimizer '\(text)'; use \(OptimizerKind.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                // Another optimizer starts from its own default rate and decay (--lr and --weight-decay come after it).
                if kind != s.options.optimizer {
                    s.options.learningRate = kind.defaultLearningRate
                    s.options.weightDecay = kind.defaultWeightDecay
                }
                s.options.optimizer = kind
            },
            value: { $0.options.optimizer.rawValue }),
        .number("--lr", "learning rate", core: true, example: "0.05", given: \.lr, field: \.options.learningRate),
        .number("--momentum", "momentum", example: "0.5", given: \.momentum, field: \.options.momentum),
        TrainOption(
            flag: "--nesterov", label: "Nesterov momentum", form: .flag(negatable: true), onResume: .mustMatch, core: false, example: "on",
            given: { $0.nesterov.map { $0 ? "on" : "off" } },
            apply: { text, s in s.options.nesterov = text == "on" }, value: { $0.options.nesterov ? "on" : "off" }),
        TrainOption(
            flag: "--schedule", label: "schedule", form: .value, onResume: .mustMatch, core: false, example: "cosine",
            given: { $0.schedule },
            apply: { text, s in
                guard let kind = ScheduleKind(rawValue: text.lowercased()) else {
                    throw ValidationError("--schedule takes \(ScheduleKind.allCases.map(\.rawValue).joined(separator: ", ")), got '\(text)'")
                }
                // A curve other than step decay replaces a recipe's decay (an --lr-decay given with it is refused).
                if kind != .step { s.options.lrDecay = 1 }
                s.options.scheduleKind = kind == .step ? nil : kind
            },
            value: { ($0.options.scheduleKind ?? .step).rawValue }),
        TrainOption(
            flag: "--warmup", label: "warm-up", form: .value, onResume: .mustMatch, core: false, example: "1",
            given: { $0.warmup },
            apply: { text, s in
                do {
                    let w = try Warmup(parsing: text)
                    s.options.warmup = w == .epochs(0) || w == .iterations(0) ? nil : w
                } catch { throw ValidationError("\(error)") }
            },
            value: { $0.options.warmup?.argument }),
        .number("--lr-decay", "lr decay", example: "0.5", given: \.lrDecay, field: \.options.lrDecay),
        .number("--decay-every", "decay every (iterations)", example: "100", given: \.decayEvery, field: \.options.decayEvery),
        .number("--clip", "clip", example: "1.0", given: \.clip, field: \.options.clipValue),
        .number("--clip-norm", "clip norm", example: "5.0", given: \.clipNorm, field: \.options.clipNorm),
        .number("--weight-decay", "weight decay", example: "0.0005", given: \.weightDecay, field: \.options.weightDecay),
        TrainOption(
            flag: "--decay-scope", label: "decay scope", form: .value, onResume: .mustMatch, core: false, example: "weights",
            given: { $0.decayScope },
            apply: { text, s in
                guard let scope = WeightDecayScope(rawValue: text.lowercased()) else {
                    throw ValidationError("--decay-scope takes \(WeightDecayScope.allCases.map(\.rawValue).joined(separator: " or ")), got '\(text)'")
                }
                s.options.decayScope = scope == .all ? nil : scope
            },
            value: { ($0.options.decayScope ?? .all).rawValue }),
        TrainOption(
            flag: "--label-smoothing", label: "label smoothing", form: .value, onResume: .mustMatch, core: false, example: "0.1",
            given: { $0.labelSmoothing.map { "\($0)" } },
            apply: { text, s in
                let e: Float = try parseNumber(text, "--label-smoothing")
                s.options.labelSmoothing = e == 0 ? nil : e
            },
            value: { "\($0.options.labelSmoothing ?? 0)" }),
        TrainOption(
            flag: "--early-stop", label: "early stop", form: .value, onResume: .mustMatch, core: false, example: "patience=2",
            given: { $0.earlyStop },
            apply: { text, s in s.options.earlyStopping = try parseEarlyStop(text) },
            value: { s in
                switch s.options.earlyStopping {
                case .trainAccuracy(let a)?: return "acc=\(a)"
                case .patience(let n)?: return "patience=\(n)"
                case nil: return nil
                }
            }),
        TrainOption(
            flag: "--augment", label: "augmentation", form: .value, onResume: .mustMatch, core: false, example: "shift=2,flip",
            given: { $0.augment },
            apply: { text, s in s.options.augmentation = try parseAugment(text) },
            value: { $0.options.augmentation?.description ?? "none" }),
        TrainOption(
            flag: "--ema", label: "weight average (EMA decay)", form: .value, onResume: .mustMatch, core: false, example: "0.999",
            given: { $0.ema.map { "\($0)" } },
            apply: { text, s in
                let d: Float = try parseNumber(text, "--ema")
                s.options.ema = d == 0 ? nil : d
            },
            value: { $0.options.ema.map { "\($0)" } }),
        TrainOption(
            flag: "--tta", label: "test-time augmentation", form: .value, onResume: .mustMatch, core: false, example: "flip,shift=1",
            given: { $0.tta },
            apply: { text, s in
                do {
                    let t = try TestTimeAugmentation(parsing: text)
                    s.options.testTimeAugmentation = t.isIdentity ? nil : t
                } catch { throw ValidationError("\(error)") }
            },
            value: { $0.options.testTimeAugmentation?.description }),
        TrainOption(
            flag: "--conv-algorithm", label: "convolution algorithm", form: .value, onResume: .mustMatch, core: false, example: "winograd",
            given: { $0.convAlgorithmOption.convAlgorithm },
            apply: { text, s in
                do { s.convAlgorithm = try ConvAlgorithm(named: text) } catch { throw ValidationError("--conv-algorithm: \(error)") }
            },
            value: { $0.convAlgorithm.rawValue }),
        .number("--checkpoint-every", "checkpoint every (iterations)", .honoured, example: "50", given: \.checkpointEvery, field: \.checkpointEvery),
        TrainOption(
            flag: "--export", label: "export", form: .value, onResume: .honoured, core: false, example: "hw5",
            given: { $0.export },
            apply: { text, s in
                guard text.lowercased() == "hw5" else { throw ValidationError("--export knows only 'hw5', got '\(text)'") }
                s.exportHW5 = true
            },
            value: { $0.exportHW5 ? "hw5" : nil }),
        TrainOption(
            flag: "--no-report", label: "no report", form: .flag(negatable: false), onResume: .honoured, core: false, example: "on",
            given: { $0.noReport ? "on" : nil }, apply: { text, s in s.report = text != "on" }, value: { $0.report ? "off" : "on" }),
        .number("--threads", "threads", .honoured, core: true, example: "1", given: \.threadsOption.threads, field: \.threads),
        TrainOption(
            flag: "--memory-budget", label: "memory budget (bytes)", form: .value, onResume: .honoured, core: false, example: "2G",
            given: { $0.memoryBudgetOption.memoryBudget },
            apply: { text, s in s.memoryBudget = try MemoryBudgetOption.parse(text) }, value: { $0.memoryBudget.map { "\($0.bytes)" } })
    ]

    /// Applies option `flag`'s `text` to `setup`, as if given on the command line (for commands that
    /// make runs from options of their own, such as `convnet compare`).
    static func apply(_ flag: String, _ text: String, to setup: inout TrainSetup) throws {
        guard let option = all.first(where: { $0.flag == flag }) else { preconditionFailure("\(flag) is not in the table") }
        try option.apply(text, &setup)
    }

    /// The setup the command line asks for: the defaults, then every option given, in the table's order.
    static func setup(from command: TrainCommand) throws -> TrainSetup {
        var setup = TrainSetup()
        for option in all { if let text = option.given(command) { try option.apply(text, &setup) } }
        return setup
    }

    /// The options that make `setup` from the defaults, as arguments to paste after `convnet train`
    /// (`--recipe` aside: the recipe's own settings are listed instead).
    static func arguments(_ setup: TrainSetup) -> [String] { arguments(setup, over: TrainSetup()) { _ in true } }

    /// The options that repeat the run's math: `--recipe NAME` and each option that differs from the
    /// recipe's (its overrides), or, without a recipe, each that differs from the defaults; the options that
    /// change no math (threads, checkpoints, the report) are left out.
    static func commandLine(_ setup: TrainSetup) -> [String] {
        let recipe = setup.recipe.flatMap { try? Recipes.recipe(named: $0) }
        let args = arguments(setup, over: recipe.map(TrainSetup.init(recipe:)) ?? TrainSetup()) { $0.onResume != .honoured }
        return (recipe.map { ["--recipe", $0.name] } ?? []) + args
    }

    /// The arguments of the options (`--recipe` aside) that `keep` keeps and whose values differ from `base`'s.
    private static func arguments(_ setup: TrainSetup, over base: TrainSetup, where keep: (TrainOption) -> Bool) -> [String] {
        all.filter { $0.flag != "--recipe" && keep($0) && $0.value(setup) != $0.value(base) }.flatMap { $0.arguments(setup) }
    }

    /// The report's rows: every core setting, and every other one that is not at its default.
    static func rows(_ setup: TrainSetup) -> [(key: String, value: String)] {
        let defaults = TrainSetup()
        return all.compactMap { option in
            guard let v = option.value(setup), option.core || v != option.value(defaults) else { return nil }
            return (option.label, v)
        }
    }

    /// `--resume`: every option given that changes the math must say what the saved run says; the others
    /// (and `--epochs`, the new total) are put over the saved setup. Returns the setup to continue with.
    static func resumed(_ saved: TrainSetup, command: TrainCommand, directory: String) throws -> TrainSetup {
        var setup = saved
        for option in all {
            guard let text = option.given(command) else { continue }
            var changed = saved
            try option.apply(text, &changed)
            switch option.onResume {
            case .mustMatch:
                guard option.value(changed) == option.value(saved) else {
                    throw ValidationError(
                        "\(option.described(changed)) contradicts the run in \(directory), which was trained with \(option.described(saved)); "
                            + "leave out \(option.flag) to continue that run, or start a new one with another --out")
                }
            case .newTotal, .honoured:
                try option.apply(text, &setup)
            }
        }
        return setup
    }
}

extension TrainOption {
    /// A number option: `given` is its property of `TrainCommand`, `field` the setting it sets.
    static func number<T: LosslessStringConvertible & Sendable>(
        _ flag: String, _ label: String, _ onResume: OnResume = .mustMatch, core: Bool = false, example: String,
        given: KeyPath<TrainCommand, T?> & Sendable, field: WritableKeyPath<TrainSetup, T> & Sendable
    ) -> TrainOption {
        TrainOption(
            flag: flag, label: label, form: .value, onResume: onResume, core: core, example: example,
            given: { $0[keyPath: given].map { "\($0)" } }, apply: { text, s in s[keyPath: field] = try parseNumber(text, flag) },
            value: { "\($0[keyPath: field])" })
    }

    /// A number option whose setting is unset (nil) by default.
    static func number<T: LosslessStringConvertible & Sendable>(
        _ flag: String, _ label: String, _ onResume: OnResume = .mustMatch, core: Bool = false, example: String,
        given: KeyPath<TrainCommand, T?> & Sendable, field: WritableKeyPath<TrainSetup, T?> & Sendable
    ) -> TrainOption {
        TrainOption(
            flag: flag, label: label, form: .value, onResume: onResume, core: core, example: example,
            given: { $0[keyPath: given].map { "\($0)" } }, apply: { text, s in s[keyPath: field] = try parseNumber(text, flag) as T },
            value: { $0[keyPath: field].map { "\($0)" } })
    }
}

/// A number option's text as `T`; anything else is a usage error naming the option.
private func parseNumber<T: LosslessStringConvertible>(_ text: String, _ flag: String) throws -> T {
    guard let v = T(text.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("\(flag) takes a number, got '\(text)'") }
    return v
}

/// `text` as one shell word: quoted when it holds anything but letters, digits and `-_.,=/:+`.
func shellQuoted(_ text: String) -> String {
    let plain = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_.,=/:+"))
    if !text.isEmpty && text.unicodeScalars.allSatisfy(plain.contains) { return text }
    return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

extension Warmup {
    /// The `--warmup` text that gives this warm-up: `1`, `0.5`, `500it`.
    var argument: String {
        switch self {
        case .epochs(let e): return e == e.rounded() && abs(e) < 1e9 ? String(Int(e)) : String(e)
        case .iterations(let n): return "\(n)it"
        }
    }
}
