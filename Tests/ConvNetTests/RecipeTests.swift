import Foundation
import Testing
@testable import ConvNet

@Suite("Recipes and the zoo's networks built for accuracy")
struct RecipeTests {
    /// Parameter counts worked out by hand (weights + biases, batch norm's scale and shift; not its running statistics).
    /// vgg-bn: conv 1->32 (320), bn 64, conv 32->32 (9,248), bn 64, conv 32->64 (18,496), bn 128, conv 64->64 (36,928),
    ///   bn 128, dense 3,136->10 (31,370).
    /// fast-bn: conv 1->32 (320), bn 64, conv 32->64 (18,496), bn 128, dense 3,136->128 (401,536), dense 128->10 (1,290).
    /// cifar-vgg: conv 3->32 (896), bn 64, conv 32->32 (9,248), bn 64, conv 32->64 (18,496), bn 128, conv 64->64 (36,928),
    ///   bn 128, conv 64->128 (73,856), bn 256, conv 128->128 (147,584), bn 256, dense 2,048->10 (20,490).
    static let accuracyNets: [(name: String, input: [Int], parameters: Int)] = [
        ("vgg-bn", [1, 28, 28], 96_746),
        ("fast-bn", [1, 28, 28], 421_834),
        ("cifar-vgg", [3, 32, 32], 308_394),
    ]

    @Test("the networks built for accuracy have the stated parameter counts, all under 1 M")
    func parameterCounts() throws {
        for net in Self.accuracyNets {
            let zoo = try ModelZoo.model(named: net.name)
            #expect(zoo.inputShape == net.input, "\(net.name)")
            let network = try Sequential(spec: zoo.spec, inputShape: zoo.inputShape, seed: 1)
            #expect(network.parameterCount == net.parameters, "\(net.name)")
            #expect(network.parameterCount < 1_000_000)
            #expect(network.layers.contains { $0.kind == "batchnorm" }, "\(net.name) has no batch norm")
        }
    }

    @Test("each network built for accuracy trains: a few steps on one fixed batch of random images lower its loss")
    func trainsAStep() throws {
        for net in Self.accuracyNets {
            let zoo = try ModelZoo.model(named: net.name)
            let network = try Sequential(spec: zoo.spec, inputShape: zoo.inputShape, seed: 3)
            let images = randomTensor([8] + zoo.inputShape, seed: 4)
            let labels = (0..<8).map { $0 % 10 }
            let sgd = SGD(learningRate: 0.05, momentum: 0.9)
            var losses: [Float] = []
            for _ in 0..<6 {
                let out = try network.forward(images, training: true)
                #expect(out.shape == [8, 10])
                let loss = try LossFunction.softmaxCrossEntropy.evaluate(output: out, labels: labels)
                losses.append(loss.value)
                try network.backward(loss.gradient)
                sgd.step(network.parameters)
            }
            #expect(losses.last! < losses.first! * 0.8, "\(net.name): losses \(losses)")
        }
    }

    @Test("recipes are found by name (any case); an unknown name lists every recipe")
    func lookup() throws {
        #expect(Recipes.names.count == Set(Recipes.names).count, "duplicate recipe names")
        for name in ["fashion-best", "fashion-fast", "two-conv-fashion", "mnist-best", "cifar", "plain"] {
            #expect(try Recipes.recipe(named: name).name == name)
            #expect(try Recipes.recipe(named: name.uppercased()).name == name)
        }
        #expect(throws: RecipeError.unknown("nope", known: Recipes.names)) { try Recipes.recipe(named: "nope") }
        let message = RecipeError.unknown("nope", known: Recipes.names).description
        for name in Recipes.names { #expect(message.contains(name)) }
    }

    @Test("every recipe names a zoo network and a known data set, and its options pass validation")
    func table() throws {
        for recipe in Recipes.all {
            _ = try ModelZoo.model(named: recipe.model)
            #expect(DatasetCatalog.names.contains(recipe.dataset), "\(recipe.name): \(recipe.dataset)")
            try recipe.options.validate()
            _ = try WeightInit(parsing: recipe.initializer)
            #expect(recipe.settingsLine.hasPrefix("--model \(recipe.model) --dataset \(recipe.dataset)"))
            if let r = recipe.reached {
                #expect(r.seeds.count == r.accuracies.count && !r.seeds.isEmpty, "\(recipe.name)")
                #expect(r.accuracies.allSatisfy { (0...1).contains($0) } && r.minutes > 0)
            }
        }
        #expect(try Recipes.recipe(named: "two-conv-fashion").model == "two-conv", "two-conv's recipe must train two-conv itself")
        #expect(try Recipes.recipe(named: "mnist-best").dataset == "mnist-sample")
        #expect(try Recipes.recipe(named: "cifar").model == "cifar-vgg")
        #expect(Recipes.recipes(for: "fast-bn").map(\.name).contains("fashion-best"))
    }

    @Test("a recipe's result: mean and sample standard deviation over its seeds, worked out by hand")
    func resultStatistics() {
        let r = RecipeResult(seeds: [1, 2, 3], accuracies: [0.94, 0.942, 0.938], testImages: 10_000, minutes: 10, measured: "test")
        #expect(abs(r.mean - 0.94) < 1e-12)
        // deviations 0, 0.002, -0.002: sum of squares 8e-6, / 2 = 4e-6, sqrt = 0.002
        #expect(abs(r.standardDeviation - 0.002) < 1e-12)
        #expect(r.accuracyText == "94.00% ± 0.20 (seeds 1, 2, 3)")
        let one = RecipeResult(seeds: [1], accuracies: [0.9251], testImages: 10_000, minutes: 2.5, measured: "test")
        #expect(one.standardDeviation == 0)
        #expect(one.accuracyText == "92.51% (seed 1 only)")
    }
}

@Suite("convnet recipes and train --recipe", .serialized)
struct RecipeCLITests {
    @Test("convnet recipes lists every recipe with its command, settings and what it reached; --json gives one object each")
    func recipesCommand() throws {
        let r = try convnet(["recipes"])
        #expect(r.status == 0, "\(r.stderr)")
        for recipe in Recipes.all {
            #expect(r.stdout.contains("convnet train --recipe \(recipe.name)"))
            #expect(r.stdout.contains(recipe.settingsLine))
            if let reached = recipe.reached { #expect(r.stdout.contains(reached.accuracyText)) }
        }
        #expect(r.stdout.contains("reached:"))
        let json = try convnet(["recipes", "--json"])
        #expect(json.status == 0)
        let lines = json.stdout.split(separator: "\n")
        #expect(lines.count == Recipes.all.count)
        for (line, recipe) in zip(lines, Recipes.all) {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["name"] as? String == recipe.name)
            #expect(object["model"] as? String == recipe.model)
            #expect((object["parameters"] as? Int ?? 0) > 0)
        }
    }

    @Test("convnet models shows each new network's measured accuracy, or says it is not measured")
    func modelsShowReached() throws {
        let r = try convnet(["models"])
        #expect(r.status == 0, "\(r.stderr)")
        for net in RecipeTests.accuracyNets {
            #expect(r.stdout.contains(net.name) && r.stdout.contains("\(net.parameters) parameters"))
        }
        for recipe in Recipes.all {
            let text = recipe.reached.map { "\($0.accuracyText) on \(recipe.dataset)" } ?? "not measured (convnet train --recipe \(recipe.name)"
            #expect(r.stdout.contains(text), "\(recipe.name)")
        }
    }

    @Test("train --recipe sets the recipe's network and options; options given with it override single settings")
    func trainRecipeOverrides() throws {
        let dir = try makeTemporaryFolder()
        let run = dir.appendingPathComponent("run")
        let r = try convnet(["train", "--recipe", "MNIST-best", "--epochs", "2", "--train-limit", "128", "--batch-size", "32",
                             "--label-smoothing", "0", "--out", run.path, "--no-report", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try r.json()
        #expect(j["recipe"] as? String == "mnist-best")
        #expect(j["model"] as? String == "vgg-bn")
        #expect(j["dataset"] as? String == "mnist-sample")
        #expect(j["epochs"] as? Int == 2 && j["batch_size"] as? Int == 32 && j["train_images"] as? Int == 128)
        #expect(j["optimizer"] as? String == "sgd")
        #expect(j["augmentation"] as? String == Recipes.all.first { $0.name == "mnist-best" }?.options.augmentation?.description)
        #expect(r.stderr.contains("recipe mnist-best") || r.stdout.contains("recipe mnist-best"))
        #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent("model.npz").path))

        // --model replaces the recipe's network; another optimizer starts from its own defaults.
        let other = try convnet(["train", "--recipe", "mnist-best", "--model", "fast-bn", "--optimizer", "adamw", "--epochs", "2",
                                 "--train-limit", "64", "--out", dir.appendingPathComponent("run2").path, "--no-report", "--json"])
        #expect(other.status == 0, "\(other.stderr)")
        let k = try other.json()
        #expect(k["model"] as? String == "fast-bn" && k["optimizer"] as? String == "adamw" && k["recipe"] as? String == "mnist-best")
    }

    @Test("bad --recipe, --schedule, --warmup, --decay-scope and --label-smoothing are usage errors (64) naming the option, before any data loads")
    func badScheduleOptions() throws {
        let dir = try makeTemporaryFolder()
        let missing = dir.appendingPathComponent("missing.npz").path
        let cases: [(args: [String], says: String)] = [
            (["--recipe", "fashion-worst"], "fashion-best"),
            (["--schedule", "linear"], "--schedule"),
            (["--warmup", "x"], "--warmup"),
            (["--warmup", "3", "--epochs", "2"], "--warmup"),
            (["--decay-scope", "biases"], "--decay-scope"),
            (["--label-smoothing", "1"], "--label-smoothing"),
            (["--label-smoothing", "-0.1"], "--label-smoothing"),
            (["--schedule", "cosine", "--lr-decay", "0.5"], "--lr-decay"),
        ]
        for c in cases {
            let r = try convnet(["train", "--dataset", missing] + c.args + ["--out", dir.appendingPathComponent("run").path])
            #expect(r.status == 64, "\(c.args): \(r.stderr)")
            #expect(r.stderr.contains(c.says), "\(c.args): \(r.stderr)")
            #expect(!r.stderr.contains("missing.npz"), "\(c.args): refused before the data loads")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("run").path))
        // Label smoothing is for softmax cross-entropy only: the toy net (binary cross-entropy) refuses it.
        let toy = try convnet(["train", "--model", "toy", "--label-smoothing", "0.1", "--epochs", "1", "--out", dir.appendingPathComponent("toy").path])
        #expect(toy.status != 0 && toy.stderr.contains("label smoothing") || toy.stderr.contains("--label-smoothing"), "\(toy.stderr)")
    }

    #if !DEBUG
    @Test("a short recipe on mnist-sample beats the plain recipe over the same 3 epochs (release build)")
    func recipeBeatsPlain() throws {
        let dir = try makeTemporaryFolder()
        func accuracy(_ recipe: String) throws -> Double {
            let r = try convnet(["train", "--recipe", recipe, "--epochs", "3", "--out", dir.appendingPathComponent(recipe).path, "--no-report", "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            return try r.json()["test_accuracy"] as? Double ?? 0
        }
        let best = try accuracy("mnist-best"), plain = try accuracy("plain")
        #expect(best > plain, "mnist-best \(best) vs plain \(plain)")
        #expect(best > 0.95)
    }
    #endif
}
