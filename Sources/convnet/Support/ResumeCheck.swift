import ArgumentParser
import Foundation

/// `--resume DIR` continues the run its checkpoint describes: an option on the command line that says
/// otherwise (another model, data set, batch size, ...) is refused, naming the option, rather than ignored.
/// `--epochs` (the new total) and the options that do not change the run's math (`--threads`, `--checkpoint-every`,
/// `--json`, `--no-report`) may be given.
func checkResumeOptions(_ command: TrainCommand, against settings: RunSettings, directory: String,
                        arguments: [String] = Array(CommandLine.arguments.dropFirst())) throws {
    /// Whether `--name` appears on the command line (as `--name VALUE` or `--name=VALUE`).
    func given(_ name: String) -> Bool { arguments.contains { $0 == name || $0.hasPrefix(name + "=") } }
    func refuse(_ option: String, _ value: String, _ saved: String) -> ValidationError {
        ValidationError("\(option) \(value) contradicts the run in \(directory), which was trained with \(saved); "
            + "leave out \(option) to continue that run, or start a new one with another --out")
    }
    let o = settings.options
    if let model = command.model, model != settings.network.name {
        throw refuse("--model", model, settings.network.name == "custom" ? "a --spec network" : "--model \(settings.network.name)")
    }
    if let spec = command.spec {
        let text = (try? readSpec(spec)) ?? spec
        if settings.network.name != "custom" || text.trimmingCharacters(in: .whitespacesAndNewlines) != settings.network.spec.trimmingCharacters(in: .whitespacesAndNewlines) {
            throw refuse("--spec", "'\(spec)'", settings.network.name == "custom" ? "--spec '\(settings.network.spec)'" : "--model \(settings.network.name)")
        }
    }
    if let dataset = command.dataset, dataset != settings.dataset { throw refuse("--dataset", dataset, "--dataset \(settings.dataset)") }
    if let dir = command.dataDir, dir != settings.dataDirectory { throw refuse("--data-dir", dir, "--data-dir \(settings.dataDirectory ?? "(default)")") }
    if let limit = command.trainLimit, limit != settings.trainLimit { throw refuse("--train-limit", "\(limit)", "--train-limit \(settings.trainLimit.map(String.init) ?? "(none)")") }
    if let v = command.validation, v != settings.validation { throw refuse("--validation", "\(v)", "--validation \(settings.validation)") }
    if let lr = command.lr, lr != o.learningRate { throw refuse("--lr", "\(lr)", "--lr \(o.learningRate)") }
    if given("--batch-size"), command.batchSize != o.batchSize { throw refuse("--batch-size", "\(command.batchSize)", "--batch-size \(o.batchSize)") }
    if given("--optimizer"), command.optimizer.lowercased() != o.optimizer.rawValue { throw refuse("--optimizer", command.optimizer, "--optimizer \(o.optimizer.rawValue)") }
    if given("--seed"), command.seed != o.seed { throw refuse("--seed", "\(command.seed)", "--seed \(o.seed)") }
    if given("--momentum"), command.momentum != o.momentum { throw refuse("--momentum", "\(command.momentum)", "--momentum \(o.momentum)") }
    if given("--init"), command.initializer != settings.initializer { throw refuse("--init", command.initializer, "--init \(settings.initializer)") }
    if given("--weight-decay"), command.weightDecay != o.weightDecay { throw refuse("--weight-decay", "\(command.weightDecay)", "--weight-decay \(o.weightDecay)") }
    if let a = command.augment, try parseAugment(a) != o.augmentation { throw refuse("--augment", a, "--augment \(o.augmentation?.description ?? "none")") }
}
