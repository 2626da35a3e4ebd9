// swift-tools-version:6.0
// libFuzzer targets for every file parser of ConvNet, one executable per parser. Not part of the main
// package's build: build with `Fuzz/fuzz.sh build` (see Fuzz/README.md).
import Foundation
import PackageDescription

// A path dependency's identity is its folder's name, which differs between clones and worktrees.
let parent = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let parsers = ["IDX", "CIFAR", "NPY", "NPZ", "Model", "PNG", "PNM", "Spec", "CSV", "Budget"]

let package = Package(
    name: "ConvNetFuzz",
    dependencies: [.package(path: "..")],
    targets: parsers.map { name in
        .executableTarget(
            name: "Fuzz\(name)",
            dependencies: [.product(name: "ConvNet", package: parent)],
            path: "Sources/Fuzz\(name)")
    },
    swiftLanguageModes: [.v6]
)
