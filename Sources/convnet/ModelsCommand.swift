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
        struct Row: Encodable { var name, input, spec, loss, dataset, summary: String; var parameters: Int }
        for model in ModelZoo.models {
            let shape = model.inputShape(channels: 1)
            let network = try Sequential(spec: model.spec, inputShape: shape)
            let input = model.inputShape.first == 0 ? "Cx" + formatShape(Array(shape.dropFirst())) + " (C = 1 or 3)" : formatShape(shape)
            if json {
                print(try Terminal.json(Row(name: model.name, input: formatShape(shape), spec: model.spec, loss: model.loss.rawValue,
                                            dataset: model.defaultDataset, summary: model.summary, parameters: network.parameterCount)))
                continue
            }
            print("\(model.name)  —  \(model.summary)")
            print("  input \(input), \(network.parameterCount) parameters\(model.inputShape.first == 0 ? " with C = 1" : ""), loss \(model.loss.rawValue)")
            print("  spec: \(model.spec)")
            if verbose { print(network.summary.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n")) }
            print()
        }
    }
}
