import ArgumentParser
import ConvNet
import Foundation

struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models", abstract: "List the zoo's networks with their input shape, layers and parameter count.")

    @Flag(help: "Also print each network's layer table.")
    var verbose = false

    @Flag(help: "One JSON object per model.")
    var json = false

    func run() throws {
        struct Row: Encodable {
            var name, input, spec, loss, dataset, summary: String
            var parameters: Int
            /// `NetworkMemory`'s figures: bytes per sample of a training step and of inference, and of the weights.
            var training_bytes_per_sample, inference_bytes_per_sample, weight_bytes: Int
            var reached: [Reached]
        }
        /// What a recipe that trains this network reached here (`convnet recipes`).
        struct Reached: Encodable {
            var recipe, dataset, accuracy_text: String
            var epochs, seeds: Int
            var accuracy, sd, minutes: Double
        }
        for model in ModelZoo.models {
            let shape = model.inputShape(channels: 1)
            let network = try Sequential(spec: model.spec, inputShape: shape)
            let reached = Recipes.recipes(for: model.name).compactMap { recipe in
                recipe.reached.map {
                    Reached(recipe: recipe.name, dataset: recipe.dataset, accuracy_text: $0.accuracyText, epochs: recipe.options.epochs,
                            seeds: $0.seeds.count, accuracy: $0.mean, sd: $0.standardDeviation, minutes: $0.minutes)
                }
            }
            let memory = (training: network.memory.bytesPerSample(training: true) ?? 0, inference: network.memory.bytesPerSample(training: false) ?? 0,
                          weights: network.memory.fixedBytes() ?? 0)
            let input = model.inputShape.first == 0 ? "Cx" + formatShape(Array(shape.dropFirst())) + " (C = 1 or 3)" : formatShape(shape)
            if json {
                print(try Terminal.json(Row(name: model.name, input: formatShape(shape), spec: model.spec, loss: model.loss.rawValue,
                                            dataset: model.defaultDataset, summary: model.summary, parameters: network.parameterCount,
                                            training_bytes_per_sample: memory.training, inference_bytes_per_sample: memory.inference,
                                            weight_bytes: memory.weights, reached: reached)))
                continue
            }
            print("\(model.name)  —  \(model.summary)")
            print("  input \(input), \(network.parameterCount) parameters\(model.inputShape.first == 0 ? " with C = 1" : ""), loss \(model.loss.rawValue)")
            print("  spec: \(model.spec)")
            print("  memory: \(MemoryBudget.format(memory.training)) per training sample, \(MemoryBudget.format(memory.inference)) per inference sample, "
                + "\(MemoryBudget.format(memory.weights)) of weights and gradients (at most; see --memory-budget)")
            for r in reached {
                print("  reached: \(r.accuracy_text) on \(r.dataset) in \(counted(r.epochs, "epoch")), " + String(format: "%.1f", r.minutes)
                    + " min (convnet train --recipe \(r.recipe))")
            }
            for recipe in Recipes.recipes(for: model.name) where recipe.reached == nil {
                print("  reached: not measured (convnet train --recipe \(recipe.name), on \(recipe.dataset))")
            }
            if verbose { print(network.summary.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n")) }
            print()
        }
    }
}
