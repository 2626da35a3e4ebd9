import ArgumentParser
import ConvNet
import Foundation

struct GradCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gradcheck",
        abstract: "Check every layer's and loss's backward pass against central differences.")

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @Option(parsing: .unconditional, help: "Finite-difference step.")
    var epsilon: Float = 1e-2

    @Option(parsing: .unconditional, help: "Largest relative error that passes.")
    var tolerance: Double = 1e-2

    func validate() throws {
        if !(epsilon.isFinite && epsilon > 0) { throw ValidationError("--epsilon must be a positive number, got \(epsilon)") }
        if !(tolerance.isFinite && tolerance > 0) { throw ValidationError("--tolerance must be a positive number, got \(tolerance)") }
    }

    func run() throws {
        let checker = GradientChecker(epsilon: epsilon, tolerance: tolerance)
        let results = try GradientCheckSuite.runAll(checker: checker)
        let passed = results.allSatisfy(\.passed)
        if json {
            struct Report: Encodable { var passed: Bool; var checks: [GradientCheckResult] }
            print(try Terminal.json(Report(passed: passed, checks: results)))
        } else {
            let width = results.map(\.layer.count).max() ?? 5
            print("layer".padding(toLength: width, withPad: " ", startingAt: 0) + "  quantity    max rel error  result")
            for r in results {
                let name = r.layer.padding(toLength: width, withPad: " ", startingAt: 0)
                let quantity = r.quantity.padding(toLength: 10, withPad: " ", startingAt: 0)
                print("\(name)  \(quantity)  \(String(format: "%13.2e", r.maxRelativeError))  \(r.passed ? "pass" : "FAIL")")
            }
            let failed = results.filter { !$0.passed }.count
            print(failed == 0 ? "all \(results.count) checks passed" : "\(failed) of \(results.count) checks FAILED")
        }
        if !passed { throw ExitCode(1) }
    }
}
