import ArgumentParser
import ConvNet
import Foundation

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Classify PGM/PPM and PNG images with trained weights.",
        discussion: "Images are converted to the network's channels and resized to its input; the weights file's normalisation is applied.")

    @Option(help: "A model.npz written by convnet train.")
    var weights: String

    @Option(help: "How many classes to show per image.")
    var top: Int = 3

    @Flag(help: "One JSON object per image.")
    var json = false

    @OptionGroup var threadsOption: ThreadsOption

    @Argument(help: "Image files.")
    var images: [String]

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one image file") }
        if top < 1 { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
        threadsOption.apply()
        let archive = try ModelArchive.read(from: URL(fileURLWithPath: weights))
        // Read every image first: one bad file stops the command before any output.
        var inputs: [Tensor] = []
        for path in images {
            let picture = try Picture.read(from: URL(fileURLWithPath: path))
            inputs.append(try archive.normalization.applied(to: picture.fitted(to: archive.network.inputShape)))
        }
        for (path, input) in zip(images, inputs) {
            let output = try archive.network.forward(input, training: false)
            let probabilities = classProbabilities(output, loss: archive.loss)
            let ranked = probabilities.enumerated().sorted { $0.element > $1.element }.prefix(top)
            let names = archive.classNames
            func label(_ i: Int) -> String { i < names.count && !names[i].isEmpty ? names[i] : String(i) }
            if json {
                struct Row: Encodable { var image: String; var predictions: [Entry] }
                struct Entry: Encodable { var `class`: Int; var label: String; var probability: Double }
                print(try Terminal.json(Row(image: path, predictions: ranked.map {
                    Entry(class: $0.offset, label: label($0.offset), probability: Double($0.element))
                })))
            } else {
                let text = ranked.map { String(format: "%@ %.1f%%", label($0.offset), 100 * $0.element) }.joined(separator: ", ")
                print("\(path): \(text)")
            }
        }
    }
}

/// Class probabilities of one output row: softmax, or sigmoid/identity for one binary output.
func classProbabilities(_ output: Tensor, loss: LossFunction) -> [Float] {
    let row = Array(output.scalars.prefix(output.count / max(output.batchSize, 1)))
    if row.count == 1 {
        let p = loss == .sigmoidBinaryCrossEntropy ? 1 / (1 + exp(-row[0])) : row[0]
        return [1 - p, p]
    }
    if loss == .negativeLogLikelihood { return row.map { exp($0) } }
    let m = row.max() ?? 0
    let e = row.map { exp($0 - m) }
    let s = e.reduce(0, +)
    return e.map { $0 / s }
}
