import ArgumentParser
import ConvNet
import Foundation

/// `convnet recipes`: the training recipes and what each reached on this machine.
struct RecipesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recipes",
        abstract: "List the training recipes (convnet train --recipe NAME) with their settings and what they reached here.")

    @Flag(help: "One JSON object per recipe.")
    var json = false

    func run() throws {
        struct Row: Encodable {
            var name, summary, model, dataset, command: String
            var parameters: Int
            /// The recipe as explicit `convnet train` arguments.
            var arguments: [String]
            var reached: RecipeResult?
            var mean_accuracy, sd_accuracy: Double?
        }
        for recipe in Recipes.all {
            // The recipe's settings as the exact flags of convnet train (TrainOptionTable), ready to paste.
            let arguments = TrainOptionTable.arguments(TrainSetup(recipe: recipe))
            let zoo = try ModelZoo.model(named: recipe.model)
            let parameters = try Sequential(spec: zoo.spec, inputShape: zoo.inputShape(channels: 1)).parameterCount
            if json {
                print(try Terminal.json(Row(
                    name: recipe.name, summary: recipe.summary, model: recipe.model, dataset: recipe.dataset,
                    command: "convnet train --recipe \(recipe.name)", parameters: parameters,
                    arguments: arguments,
                    reached: recipe.reached, mean_accuracy: recipe.reached?.mean, sd_accuracy: recipe.reached?.standardDeviation)))
                continue
            }
            print("\(recipe.name)  —  \(recipe.summary)")
            print("  convnet train --recipe \(recipe.name)   (\(recipe.model), \(parameters) parameters)")
            print("  the same as: convnet train \(arguments.map(shellQuoted).joined(separator: " "))")
            if let r = recipe.reached {
                print("  reached: \(r.accuracyText) test accuracy on \(r.testImages) images, "
                    + String(format: "%.1f", r.minutes) + " min per run; \(r.measured)")
            } else {
                print("  reached: not measured")
            }
            print()
        }
    }
}
