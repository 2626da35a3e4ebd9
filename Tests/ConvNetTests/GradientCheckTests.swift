import Testing
@testable import ConvNet

@Suite("Gradient checks")
struct GradientCheckTests {
    @Test("every standard case passes", arguments: GradientCheckSuite.cases.map(\.name))
    func standardCase(name: String) throws {
        let c = GradientCheckSuite.cases.first { $0.name == name }!
        let results = try GradientCheckSuite.run(c)
        for r in results {
            #expect(r.passed, "\(r.layer) \(r.quantity): relative error \(r.maxRelativeError)")
        }
        #expect(results.count >= 2)
    }
}
