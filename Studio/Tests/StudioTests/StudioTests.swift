import ConvNet
import Foundation
import Testing

import StudioServer

@Suite struct DrawnImageTests {
    func body(_ pixels: String) -> Data { Data("{\"pixels\": \(pixels)}".utf8) }

    @Test func parsesGrayLevels() throws {
        let levels = (0..<784).map { UInt8($0 % 256) }
        let image = try DrawnImage(json: body("[" + levels.map(String.init).joined(separator: ",") + "]"))
        #expect(image.levels == levels)
        #expect(image.values[255] == 1)
        #expect(image.values[1] == Float(1) / 255)
    }

    @Test(arguments: [
        ("{\"pixels\": [1, 2", "not valid JSON"),
        ("[1, 2, 3]", "no \"pixels\" array"),
        ("{\"pixel\": []}", "no \"pixels\" array"),
        ("{\"pixels\": \"abc\"}", "whole numbers"),
        ("{\"pixels\": [1.5]}", "whole numbers"),
        ("{\"pixels\": [1, 2, 3]}", "has 3 values"),
    ])
    func refusesMalformedBodies(text: String, message: String) {
        let error = #expect(throws: StudioError.self) { try DrawnImage(json: Data(text.utf8)) }
        #expect(error?.status == 400)
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }

    @Test func refusesLevelsOutOfRange() {
        var values = [Int](repeating: 0, count: 784)
        values[17] = 256
        let error = #expect(throws: StudioError.self) { try DrawnImage(json: body("\(values)")) }
        #expect(error?.message.contains("[17] is 256") == true)
    }

    /// The studio's prediction for a drawn image equals `convnet predict`'s (the Classifier on pictures)
    /// for a P5 PGM file of the same pixels, whatever input size the network takes.
    @Test(arguments: [[1, 28, 28], [1, 14, 14], [1, 32, 32], [3, 32, 32], [1, 20, 20]])
    func predictionMatchesConvnetPredict(shape: [Int]) throws {
        var random = SeededGenerator(seed: 7)
        let levels = (0..<784).map { _ in UInt8.random(in: 0...255, using: &random) }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("studio-\(UUID().uuidString).pgm")
        defer { try? FileManager.default.removeItem(at: url) }
        try (Data("P5\n28 28\n255\n".utf8) + Data(levels)).write(to: url)
        let network = try Sequential(spec: "conv 2 3x3; relu; flatten; dense 10", inputShape: shape, seed: 3)
        let classifier = Classifier(archive: ModelArchive(
            network: network, modelName: "test", loss: .softmaxCrossEntropy, classNames: (0..<10).map(String.init), normalization: .identity))
        let expected = try classifier.predict([try Picture.read(from: url)])[0]
        let input = try DrawnImage(levels: levels).input(for: shape)
        #expect(input.shape == [1] + shape)
        let got = try classifier.predict(input)[0]
        #expect(got.probabilities == expected.probabilities)
        #expect(got.label == expected.label)
    }

    @Test func refusesNonImageNetworks() {
        let error = #expect(throws: StudioError.self) { try DrawnImage(levels: [UInt8](repeating: 0, count: 784)).input(for: [10]) }
        #expect(error?.message.contains("drawing needs") == true)
    }
}

@Suite struct RunFolderTests {
    let root: URL
    let runs: RunFolders

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("studio-runs-\(UUID().uuidString)")
        let run = root.appendingPathComponent("first")
        try FileManager.default.createDirectory(at: run.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try Data("<html>".utf8).write(to: run.appendingPathComponent("report.html"))
        try Data("x".utf8).write(to: run.appendingPathComponent("sub/inner.txt"))
        try Data("secret".utf8).write(to: root.appendingPathComponent("outside.txt"))
        try FileManager.default.createSymbolicLink(atPath: run.appendingPathComponent("escape").path, withDestinationPath: "/etc")
        try FileManager.default.createSymbolicLink(atPath: run.appendingPathComponent("up.txt").path, withDestinationPath: "../outside.txt")
        runs = RunFolders(root: root)
    }

    @Test func servesFilesInsideARun() throws {
        #expect(try runs.file(run: "first", components: ["report.html"]).lastPathComponent == "report.html")
        #expect(try runs.file(run: "first", components: ["sub", "inner.txt"]).lastPathComponent == "inner.txt")
        #expect(Set(runs.all().keys) == ["first"])
    }

    @Test(arguments: [
        ["..", "outside.txt"], ["sub", "..", "..", "outside.txt"], ["", "etc", "passwd"], ["."], ["escape", "passwd"], ["up.txt"],
        ["a/../../outside.txt"],
    ])
    func refusesWaysOut(components: [String]) {
        let error = #expect(throws: StudioError.self) { try runs.file(run: "first", components: components) }
        #expect(error?.status == 403, "\(components): \(error?.message ?? "")")
    }

    @Test func missingRunsAndFilesAre404() {
        #expect((#expect(throws: StudioError.self) { try runs.file(run: "second", components: ["report.html"]) })?.status == 404)
        #expect((#expect(throws: StudioError.self) { try runs.file(run: "..", components: ["outside.txt"]) })?.status == 404)
        #expect((#expect(throws: StudioError.self) { try runs.file(run: "first", components: ["nothing.txt"]) })?.status == 404)
        #expect((#expect(throws: StudioError.self) { try runs.file(run: "first", components: ["sub"]) })?.status == 404)
    }

    @Test func newestModelIsTheLatestModelFile() throws {
        #expect(runs.newestModel() == nil)
        let older = root.appendingPathComponent("first/model.npz"), newer = root.appendingPathComponent("second/model.npz")
        try FileManager.default.createDirectory(at: newer.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data().write(to: older)
        try Data().write(to: newer)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -100)], ofItemAtPath: older.path)
        #expect(runs.newestModel()?.name == "second")
    }
}

@Suite struct TrainRequestTests {
    func request(_ text: String) throws -> TrainRequest { try TrainRequest.parse(Data(text.utf8)) }

    @Test func buildsTrainArguments() throws {
        let args = try request(#"{"model": "lenet5", "dataset": "mnist-sample", "optimizer": "adam", "learning_rate": 0.001, "batch_size": 32, "epochs": 2}"#).arguments()
        #expect(args == ["train", "--model", "lenet5", "--dataset", "mnist-sample", "--optimizer", "adam", "--lr", "0.001", "--batch-size", "32", "--epochs", "2"])
        let spec = try request(#"{"spec": "flatten; dense 10", "epochs": 1}"#).arguments()
        #expect(spec.prefix(3) == ["train", "--spec", "flatten; dense 10"])
    }

    /// Without a recipe, only the given settings follow the network (two-conv when none is given):
    /// convnet train's own defaults are the rest.
    @Test func sendsOnlyTheGivenSettings() throws {
        #expect(try request("{}").arguments() == ["train", "--model", "two-conv"])
        #expect(try request(#"{"epochs": 3}"#).arguments() == ["train", "--model", "two-conv", "--epochs", "3"])
        #expect(try request(#"{"optimizer": "adamw", "learning_rate": 0.002}"#).arguments()
            == ["train", "--model", "two-conv", "--optimizer", "adamw", "--lr", "0.002"])
    }

    /// A recipe comes first, and only the settings the request gives follow it, so they override single
    /// settings of the recipe (as on the command line) and leave the rest.
    @Test func recipeThenOverrides() throws {
        let name = try #require(Recipes.all.first).name
        #expect(try request(#"{"recipe": "\#(name)"}"#).arguments() == ["train", "--recipe", name])
        #expect(try request(#"{"recipe": "\#(name)", "epochs": 2}"#).arguments() == ["train", "--recipe", name, "--epochs", "2"])
        #expect(try request(#"{"recipe": "\#(name)", "model": "lenet5", "batch_size": 32}"#).arguments()
            == ["train", "--recipe", name, "--model", "lenet5", "--batch-size", "32"])
        #expect(try request(#"{"recipe": "\#(name)", "spec": "flatten; dense 10"}"#).arguments()
            == ["train", "--recipe", name, "--spec", "flatten; dense 10"])
        // The run folder is named after the network trained.
        let recipe = try Recipes.recipe(named: name)
        #expect(try request(#"{"recipe": "\#(name)"}"#).networkName == recipe.model)
    }

    @Test func unknownRecipeNamesTheRecipes() {
        let error = #expect(throws: StudioError.self) { try request(#"{"recipe": "fashion-worst"}"#).arguments() }
        #expect(error?.status == 400)
        let message = error?.message ?? ""
        #expect(message.contains("unknown recipe 'fashion-worst'"), "\(message)")
        for name in Recipes.names { #expect(message.contains(name), "\(message)") }
        #expect(!message.contains("\n"))
    }

    /// The recipes reach the page with the values the form shows.
    @Test func recipeInfoCarriesTheFormsValues() throws {
        let recipe = try #require(Recipes.all.first)
        let info = RecipeInfo(recipe)
        #expect(info.name == recipe.name && info.model == recipe.model && info.dataset == recipe.dataset)
        #expect(info.optimizer == recipe.options.optimizer.rawValue)
        #expect(info.batchSize == recipe.options.batchSize && info.epochs == recipe.options.epochs)
        #expect(Float(info.learningRate) == recipe.options.learningRate)
        #expect("\(info.learningRate)" == "\(recipe.options.learningRate)")
    }

    @Test(arguments: ["sgd", "adagrad", "adam", "adamw", "AdamW"])
    func acceptsEveryOptimizer(name: String) throws {
        let args = try request(#"{"optimizer": "\#(name)"}"#).arguments()
        #expect(args.suffix(2) == ["--optimizer", name.lowercased()])
    }

    @Test(arguments: [
        (#"{"model": "resnet"}"#, "unknown network"),
        (#"{"recipe": "x", "model": "resnet"}"#, "unknown network"),
        (#"{"dataset": "imagenet"}"#, "unknown data set"),
        (#"{"optimizer": "rmsprop"}"#, "unknown optimizer"),
        (#"{"recipe": "plain", "optimizer": "rmsprop"}"#, "unknown optimizer"),
        (#"{"learning_rate": -1}"#, "learning_rate"),
        (#"{"batch_size": 0}"#, "batch_size"),
        (#"{"epochs": 1000}"#, "epochs"),
        (#"{"spec": "conv banana"}"#, "does not parse"),
        (#"{"spec": "/etc/passwd"}"#, "not a file name"),
        (#"{"model": "mlp", "spec": "flatten; dense 10"}"#, "not both"),
    ])
    func refusesBadValues(text: String, message: String) {
        let error = #expect(throws: StudioError.self) { try request(text).arguments() }
        #expect(error?.status == 400)
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("\n") == false)
    }

    @Test func refusesMalformedJSON() {
        #expect((#expect(throws: StudioError.self) { try request("{epochs: 1}") })?.message.contains("not valid JSON") == true)
        #expect((#expect(throws: StudioError.self) { try request(#"{"epochs": "one"}"#) })?.message.contains("wrong type") == true)
    }
}

@Suite struct WalkthroughJSONTests {
    @Test func everyStepKeepsItsMatrices() throws {
        let walkthrough = try ToyWalkthrough.make()
        let json = WalkthroughJSON(walkthrough)
        #expect(json.steps.count == walkthrough.steps.count)
        #expect(json.steps.first?.matrices.first?.values == walkthrough.steps.first?.matrices.first?.values)
        #expect(Set(json.steps.map(\.phase)).isSuperset(of: ["forward", "backward"]))
    }
}
