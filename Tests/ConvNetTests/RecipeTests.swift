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
            // The settings as the exact flags (those not at their defaults): two-conv is the default network.
            #expect(r.stdout.contains("--dataset \(recipe.dataset)"), "\(recipe.name)")
            #expect(recipe.model == "two-conv" || r.stdout.contains("--model \(recipe.model) --dataset \(recipe.dataset)"), "\(recipe.name)")
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

    /// The parameters of a run's model.npz, by name.
    static func weights(_ run: URL) throws -> [String: [Float]] {
        let archive = try ModelArchive.read(from: run.appendingPathComponent("model.npz"))
        return Dictionary(uniqueKeysWithValues: archive.network.parameters.map { ($0.name, $0.value.scalars) })
    }

    @Test("--recipe, and --recipe with overrides, train the same weights as the recipe's flags from convnet recipes typed out")
    func recipeEqualsItsFlags() throws {
        let dir = try makeTemporaryFolder()
        let listing = try convnet(["recipes", "--json"])
        #expect(listing.status == 0, "\(listing.stderr)")
        let objects = try listing.stdout.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        let flags = try #require(objects.first { $0["name"] as? String == "mnist-best" }?["arguments"] as? [String])
        // 3 steps: 96 images in batches of 32, one epoch (no warm-up: it must be shorter than the run).
        let size = ["--train-limit", "96", "--batch-size", "32", "--epochs", "1", "--warmup", "0", "--no-report"]
        for overrides in [[], ["--lr", "0.1", "--seed", "2"]] {
            let a = dir.appendingPathComponent("recipe\(overrides.count)"), b = dir.appendingPathComponent("flags\(overrides.count)")
            let named = try convnet(["train", "--recipe", "mnist-best"] + size + overrides + ["--out", a.path])
            let typed = try convnet(["train"] + flags + size + overrides + ["--out", b.path])
            #expect(named.status == 0 && typed.status == 0, "\(named.stderr) \(typed.stderr)")
            let wa = try Self.weights(a), wb = try Self.weights(b)
            #expect(!wa.isEmpty && wa == wb, "overrides \(overrides): the recipe and its flags train different weights")
            // model.npz names the recipe and each override.
            let meta = try ModelArchive.read(from: a.appendingPathComponent("model.npz")).training
            #expect(meta.hasPrefix("--recipe mnist-best") && meta.contains("--train-limit 96") && overrides.allSatisfy(meta.contains), "\(meta)")
        }
    }

    @Test("--resume takes --no-report (and --epochs as the new total) and refuses an option that changes the math, naming both values")
    func resumeHonoursAndRefuses() throws {
        let dir = try makeTemporaryFolder()
        let run = dir.appendingPathComponent("run")
        let first = try convnet(["train", "--model", "tiny-cnn", "--epochs", "1", "--train-limit", "128", "--clip", "1", "--out", run.path])
        #expect(first.status == 0, "\(first.stderr)")
        let report = run.appendingPathComponent("report.html")
        #expect(FileManager.default.fileExists(atPath: report.path))
        try FileManager.default.removeItem(at: report)
        let resumed = try convnet(["train", "--resume", run.path, "--epochs", "2", "--no-report", "--threads", "1"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("after 2 epochs"))
        #expect(!FileManager.default.fileExists(atPath: report.path), "--no-report on resume still wrote the report")
        let clip = try convnet(["train", "--resume", run.path, "--epochs", "3", "--clip", "2"])
        #expect(clip.status == 64 && clip.stderr.contains("--clip 2.0 contradicts") && clip.stderr.contains("--clip 1.0"), "\(clip.stderr)")
        let fewer = try convnet(["train", "--resume", run.path, "--epochs", "1"])
        #expect(fewer.status == 64 && fewer.stderr.contains("--epochs 3 or more"), "\(fewer.stderr)")
    }

    @Test("a loss that explodes (--lr 100) stops the run, saying what to try")
    func explodingLoss() throws {
        let dir = try makeTemporaryFolder()
        let r = try convnet(["train", "--model", "tiny-cnn", "--epochs", "3", "--train-limit", "640", "--lr", "100", "--out", dir.appendingPathComponent("run").path])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("training diverged") && r.stderr.contains("smaller --lr"), "\(r.stderr)")
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
