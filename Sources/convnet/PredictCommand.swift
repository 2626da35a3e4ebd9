import ArgumentParser
import ConvNet
import Foundation

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Classify PGM/PPM and PNG images with trained weights.",
        discussion: """
            Images are converted to the network's channels and resized to its input; the weights file's normalisation is applied.

            MNIST and Fashion-MNIST images are light on a dark background. A picture whose border is light (a dark drawing \
            on white paper) is inverted before a model trained on them classifies it, and a line on stderr names it; \
            --invert never classifies every picture as it is, --invert always inverts each one.
            """)

    @Option(help: "A model.npz written by convnet train.")
    var weights: String

    @Option(parsing: .unconditional, help: "How many classes to show per image.")
    var top: Int = 3

    @Option(help: ArgumentHelp("When to invert a picture: auto (when its border is light and the training images' background dark, or the other way round), never or always.", valueName: "when"))
    var invert: String = Inversion.auto.rawValue

    @Flag(help: "One JSON object per image.")
    var json = false

    @OptionGroup var threadsOption: ThreadsOption
    @OptionGroup var memoryBudgetOption: MemoryBudgetOption

    @Argument(help: "Image files.")
    var images: [String]

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one image file") }
        if top < 1 { throw ValidationError("--top must be at least 1") }
        if Inversion(rawValue: invert) == nil { throw ValidationError("--invert '\(invert)' is not a choice; use auto, never or always") }
    }

    /// Images decoded and classified at a time, so that memory does not grow with the number of arguments.
    static let picturesPerBatch = 64

    func run() throws {
        // The model is loaded once; the images are read, fitted and classified a batch at a time.
        let classifier = try Classifier(contentsOf: URL(fileURLWithPath: weights), memoryBudget: memoryBudgetOption.budget, context: threadsOption.context)
        // Fewer at a time when the network's input is large; none when not even one fits.
        try classifier.checkMemory()
        let batch = max(1, classifier.largestBatch(limit: Self.picturesPerBatch))
        for start in stride(from: 0, to: images.count, by: batch) {
            try classify(Array(images[start..<min(start + batch, images.count)]), with: classifier)
        }
    }

    /// Reads, classifies and prints one batch of image files (a bad file stops the command before that batch's
    /// output). Each picture is fitted to the network's input as soon as it is decoded, so only one decoded
    /// picture is held at a time.
    private func classify(_ paths: [String], with classifier: Classifier) throws {
        let inversion = Inversion(rawValue: invert) ?? .auto
        var inputs: [Float] = [], inverted: [Bool] = []
        for path in paths {
            let picture = try Picture.read(from: URL(fileURLWithPath: path))
            let flag = classifier.invertsPicture(picture, inversion: inversion)
            inverted.append(flag)
            inputs += try classifier.fitted(picture, inversion: flag ? .always : .never)
            if inversion == .auto, flag, let background = classifier.trainingBackground {
                let trainedOn = classifier.dataset.isEmpty ? "" : " (\(classifier.dataset))"
                FileHandle.standardError.write(Data(("note: \(Terminal.printable(path)) has a \(background == .dark ? "light" : "dark") background and the model was trained on "
                    + "\(background.rawValue) ones\(trainedOn): classifying its negative (--invert never keeps it as it is)\n").utf8))
            }
        }
        let predictions = try classifier.predict(Tensor(shape: [paths.count] + classifier.inputShape, scalars: inputs))
        let names = classifier.classNames
        func label(_ i: Int) -> String { i < names.count && !names[i].isEmpty ? names[i] : String(i) }
        for ((path, prediction), wasInverted) in zip(zip(paths, predictions), inverted) {
            guard prediction.probabilities.allSatisfy(\.isFinite) else {
                throw CommandError("\(Terminal.printable(path)): the model's outputs are not finite numbers (NaN or infinity), so it predicts nothing; "
                    + "the weights or the normalisation (norm_mean, norm_std) in \(weights) are broken: train the model again")
            }
            let ranked = prediction.probabilities.enumerated().sorted { $0.element > $1.element }.prefix(top)
            if json {
                struct Row: Encodable { var image: String; var inverted: Bool; var predictions: [Entry] }
                struct Entry: Encodable { var `class`: Int; var label: String; var probability: Double }
                print(try Terminal.json(Row(image: path, inverted: wasInverted, predictions: ranked.map {
                    Entry(class: $0.offset, label: label($0.offset), probability: Double($0.element))
                })))
            } else {
                let text = ranked.map { String(format: "%@ %.1f%%", Terminal.printable(label($0.offset)), 100 * $0.element) }.joined(separator: ", ")
                print("\(Terminal.printable(path)): \(text)")
            }
        }
    }
}
