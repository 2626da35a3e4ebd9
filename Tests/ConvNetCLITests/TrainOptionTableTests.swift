import ArgumentParser
import ConvNet
import Foundation
import Testing
@testable import ConvNetCLI

/// `convnet train`'s options are one table (`TrainOptionTable`): these tests fail for an option that is
/// declared without an entry, or an entry that is not parsed, checked on resume or shown in the report.
@Suite("The table of convnet train's options")
struct TrainOptionTableTests {
    /// The options that say where and how the command reports, not what is trained.
    static let notSettings: Set<String> = ["--out", "--resume", "--json", "--events", "--help", "--no-nesterov"]
    /// Options an entry's example needs beside it to make a valid run.
    static let context: [String: [String]] = ["--export": ["--model", "mlp"]]

    static func arguments(_ option: TrainOption) -> [String] {
        switch option.form {
        case .value: return [option.flag, option.example] + (context[option.flag] ?? [])
        case .flag: return [option.flag] + (context[option.flag] ?? [])
        }
    }

    @Test("every option in convnet train --help has an entry, and every entry is an option of convnet train")
    func complete() throws {
        let help = TrainCommand.helpMessage(columns: 10_000)
        let regex = try NSRegularExpression(pattern: #"--[a-z][a-z0-9-]*"#)
        let declared = Set(regex.matches(in: help, range: NSRange(help.startIndex..., in: help)).map { String(help[Range($0.range, in: help)!]) })
        let table = Set(TrainOptionTable.all.map(\.flag))
        // Flags that only appear inside other options' help texts.
        let mentioned: Set<String> = ["--model", "--spec"]
        #expect(declared.subtracting(Self.notSettings).subtracting(table).isEmpty, "declared without a table entry: \(declared.subtracting(Self.notSettings).subtracting(table))")
        #expect(table.subtracting(declared).subtracting(mentioned).isEmpty, "in the table but not an option: \(table.subtracting(declared))")
        #expect(table.count == TrainOptionTable.all.count, "a flag is in the table twice")
    }

    @Test("each entry reads its own option and no other, and changes the run from the default")
    func parsedAndApplied() throws {
        let defaults = TrainSetup()
        for option in TrainOptionTable.all {
            let command = try TrainCommand.parse(Self.arguments(option))
            #expect(option.given(command) != nil, "\(option.flag) is not read from the command line")
            for other in TrainOptionTable.all where other.flag != option.flag && Self.context[option.flag].map({ !$0.contains(other.flag) }) ?? true {
                #expect(other.given(command) == nil, "\(other.flag) reads \(option.flag)'s value")
            }
            let setup = try TrainOptionTable.setup(from: command)
            #expect(option.value(setup) != option.value(defaults), "\(option.flag) \(option.example) changes nothing")
            _ = try RunSettings(setup)  // a valid run
        }
    }

    @Test("each entry's value written back as arguments parses to the same value (report, recipes, resume messages)")
    func roundTrip() throws {
        var setups = [TrainSetup()] + Recipes.all.map(TrainSetup.init(recipe:))
        for option in TrainOptionTable.all { setups.append(try TrainOptionTable.setup(from: TrainCommand.parse(Self.arguments(option)))) }
        for setup in setups {
            let again = try TrainOptionTable.setup(from: TrainCommand.parse(TrainOptionTable.arguments(setup)))
            for option in TrainOptionTable.all where option.flag != "--recipe" {
                #expect(option.value(again) == option.value(setup), "\(option.flag): \(TrainOptionTable.arguments(setup))")
            }
        }
    }

    @Test("a resume refuses every option that changes the math when it differs, naming it and both values; it takes the others")
    func resume() throws {
        for option in TrainOptionTable.all {
            // The saved run: the default one, or the one the example needs (--export hw5: an mlp).
            let saved = TrainSetup(try RunSettings(TrainOptionTable.setup(from: TrainCommand.parse(Self.context[option.flag] ?? []))))
            let command = try TrainCommand.parse(["--resume", "runs/x"] + (option.form == .value ? [option.flag, option.example] : [option.flag]))
            switch option.onResume {
            case .mustMatch:
                #expect {
                    _ = try TrainOptionTable.resumed(saved, command: command, directory: "runs/x")
                } throws: { error in
                    let text = "\(error)"
                    return text.contains(option.flag) && text.contains("contradicts the run in runs/x")
                        && text.contains(option.described(saved))
                }
                // The saved value itself is accepted.
                let same = option.arguments(saved)
                if !same.isEmpty, option.flag != "--recipe" {
                    _ = try TrainOptionTable.resumed(saved, command: TrainCommand.parse(["--resume", "runs/x"] + same), directory: "runs/x")
                }
            case .newTotal, .honoured:
                let resumed = try TrainOptionTable.resumed(saved, command: command, directory: "runs/x")
                #expect(option.value(resumed) != option.value(saved), "\(option.flag) is not taken on resume")
                var settings = try RunSettings(TrainOptionTable.setup(from: TrainCommand.parse(Self.context[option.flag] ?? [])))
                settings.take(resumed)
                // The thread count and the memory budget belong to the invocation, not to the saved run.
                if !["--threads", "--memory-budget"].contains(option.flag) {
                    #expect(option.value(TrainSetup(settings)) == option.value(resumed), "\(option.flag) is dropped from the resumed settings")
                }
            }
        }
    }

    @Test("the report shows every core setting and every setting changed from its default")
    func report() throws {
        for option in TrainOptionTable.all {
            let setup = try TrainOptionTable.setup(from: TrainCommand.parse(Self.arguments(option)))
            let rows = TrainOptionTable.rows(setup)
            #expect(rows.contains { $0.key == option.label && $0.value == option.value(setup) }, "\(option.flag) is missing from the report")
        }
        let plain = TrainOptionTable.rows(TrainSetup(try RunSettings(TrainSetup()), threads: 2)).map(\.key)
        for option in TrainOptionTable.all where option.core && option.flag != "--spec" { #expect(plain.contains(option.label), "\(option.label)") }
    }

    @Test("--recipe: the recipe's settings, then each option given over them; the command line names the recipe and its overrides")
    func recipeOverrides() throws {
        let recipe = try Recipes.recipe(named: "fashion-fast")
        let setup = try TrainOptionTable.setup(from: TrainCommand.parse(["--recipe", "fashion-fast", "--epochs", "2", "--lr", "0.1"]))
        var expected = TrainSetup(recipe: recipe)
        expected.options.epochs = 2
        expected.options.learningRate = 0.1
        #expect(setup == expected)
        #expect(TrainOptionTable.commandLine(setup) == ["--recipe", "fashion-fast", "--epochs", "2", "--lr", "0.1"])
        // Another optimizer than the recipe's starts from its own default rate.
        let adam = try TrainOptionTable.setup(from: TrainCommand.parse(["--recipe", "fashion-fast", "--optimizer", "adam"]))
        #expect(adam.options.learningRate == OptimizerKind.adam.defaultLearningRate && adam.options.weightDecay == 0)
        // The listing's flags alone make the same setup as the recipe.
        for recipe in Recipes.all {
            let explicit = try TrainOptionTable.setup(from: TrainCommand.parse(TrainOptionTable.arguments(TrainSetup(recipe: recipe))))
            let named = TrainSetup(recipe: recipe)
            for option in TrainOptionTable.all where option.flag != "--recipe" {
                #expect(option.value(explicit) == option.value(named), "\(recipe.name): \(option.flag)")
            }
        }
    }

    @Test("values that make no sense are usage errors naming the option, before anything runs")
    func badValues() throws {
        let cases: [(args: [String], says: String)] = [
            (["--clip-norm", "inf"], "--clip-norm"), (["--weight-decay", "inf"], "--weight-decay"), (["--clip", "nan"], "--clip"),
            (["--lr", "inf"], "--lr"), (["--momentum", "nan"], "--momentum"), (["--label-smoothing", "nan"], "--label-smoothing"),
            (["--batch-size", "9223372036854775807"], "--batch-size"), (["--epochs", "0"], "--epochs"),
            (["--model", "nope"], "--model"), (["--dataset", "nope"], "--dataset"), (["--spec", "mynet.txt"], "no such file"),
            (["--recipe", "nope"], "--recipe"), (["--export", "hw5"], "--export hw5"), (["--init", "zeros"], "--init"),
            (["--resume", "a", "--out", "b"], "--out"), (["--warmup", "500"], "--warmup"),
        ]
        for c in cases {
            #expect(throws: (any Error).self, "\(c.args)") { _ = try TrainCommand.parse(c.args) }
            do {
                _ = try TrainCommand.parse(c.args)
            } catch {
                #expect(TrainCommand.exitCode(for: error) == .validationFailure, "\(c.args)")
                #expect(TrainCommand.message(for: error).contains(c.says), "\(c.args): \(TrainCommand.message(for: error))")
            }
        }
    }
}
