import ArgumentParser
import Foundation

/// `--resume DIR` continues the run its checkpoint describes: an option on the command line that says
/// otherwise (another model, data set, batch size, ...) is refused, naming the option, rather than ignored.
/// Every run option is optional on the command line, so a given one is told from the default. `--epochs` (the new total) and the options that do not change the run's math (`--threads`, `--checkpoint-every`,
/// `--json`, `--no-report`) may be given.
func checkResumeOptions(_ command: TrainCommand, against settings: RunSettings, directory: String) throws {
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
    if let b = command.batchSize, b != o.batchSize { throw refuse("--batch-size", "\(b)", "--batch-size \(o.batchSize)") }
    if let name = command.optimizer, name.lowercased() != o.optimizer.rawValue { throw refuse("--optimizer", name, "--optimizer \(o.optimizer.rawValue)") }
    if let s = command.seed, s != o.seed { throw refuse("--seed", "\(s)", "--seed \(o.seed)") }
    if let m = command.momentum, m != o.momentum { throw refuse("--momentum", "\(m)", "--momentum \(o.momentum)") }
    if let n = command.nesterov, n != o.nesterov { throw refuse(n ? "--nesterov" : "--no-nesterov", "", o.nesterov ? "--nesterov" : "no --nesterov") }
    if let i = command.initializer, i != settings.initializer { throw refuse("--init", i, "--init \(settings.initializer)") }
    if let w = command.weightDecay, w != o.weightDecay { throw refuse("--weight-decay", "\(w)", "--weight-decay \(o.weightDecay)") }
    if let d = command.lrDecay, d != o.lrDecay { throw refuse("--lr-decay", "\(d)", "--lr-decay \(o.lrDecay)") }
    if let n = command.decayEvery, n != o.decayEvery { throw refuse("--decay-every", "\(n)", "--decay-every \(o.decayEvery)") }
    if let r = command.recipe, r.lowercased() != settings.recipe {
        throw refuse("--recipe", r, settings.recipe.map { "--recipe \($0)" } ?? "no recipe")
    }
    // The options whose parsed value the run keeps: compared as the run would have parsed them.
    if command.schedule != nil || command.warmup != nil || command.decayScope != nil || command.labelSmoothing != nil {
        let parsed = try command.makeOptions()
        if command.schedule != nil, parsed.scheduleKind != o.scheduleKind {
            throw refuse("--schedule", command.schedule!, "--schedule \((o.scheduleKind ?? .step).rawValue)")
        }
        if command.warmup != nil, parsed.warmup != o.warmup { throw refuse("--warmup", command.warmup!, o.warmup.map { "--warmup \($0)" } ?? "no warm-up") }
        if command.decayScope != nil, parsed.decayScope != o.decayScope {
            throw refuse("--decay-scope", command.decayScope!, "--decay-scope \((o.decayScope ?? .all).rawValue)")
        }
        if command.labelSmoothing != nil, parsed.labelSmoothing != o.labelSmoothing {
            throw refuse("--label-smoothing", "\(command.labelSmoothing!)", "--label-smoothing \(o.labelSmoothing ?? 0)")
        }
    }
    if let a = command.augment, try parseAugment(a) != o.augmentation { throw refuse("--augment", a, "--augment \(o.augmentation?.description ?? "none")") }
}
