// swift-tools-version:6.0
// A check for refactors of the engine: `swift run -c release --package-path Benchmarks/ZooDigest` prints, for every
// zoo network, kernel level and thread count, a digest of the weights after 3 training steps and of one inference
// pass's logits. Run it before and after a change (from two checkouts) and diff the outputs: a refactor that keeps
// the arithmetic prints the same lines.
import PackageDescription

let package = Package(
    name: "ZooDigest",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "ConvNet", path: "../..")],
    targets: [
        .executableTarget(name: "zoo-digest", dependencies: [.product(name: "ConvNet", package: "ConvNet")])
    ]
)
