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

    @Option(parsing: .unconditional, help: "How many classes to show per image.")
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
        // The model is loaded once and every image classified in one batch.
        let classifier = try Classifier(contentsOf: URL(fileURLWithPath: weights))
        // Read every image first: one bad file stops the command before any output.
        let pictures = try images.map { try Picture.read(from: URL(fileURLWithPath: $0)) }
        let predictions = try classifier.predict(pictures)
        let names = classifier.classNames
        func label(_ i: Int) -> String { i < names.count && !names[i].isEmpty ? names[i] : String(i) }
        for (path, prediction) in zip(images, predictions) {
            let ranked = prediction.probabilities.enumerated().sorted { $0.element > $1.element }.prefix(top)
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
