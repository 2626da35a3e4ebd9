// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "ConvNet",
    products: [
        .library(name: "ConvNet", targets: ["ConvNet"]),
        .executable(name: "convnet", targets: ["convnet"]),
        // The CLI's commands as a library, so that `Distributed/`'s convnet-mpi runs the same `train`.
        .library(name: "ConvNetCLI", targets: ["ConvNetCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Hot loops in C: AVX2/FMA kernels selected at run time, portable fallbacks elsewhere.
        .target(name: "CKernels"),
        // System zlib for gzip (IDX .gz files, the bundled sample, CIFAR-10's .tar.gz), .npz deflate, PNG. Debian: zlib1g-dev.
        .systemLibrary(name: "CGzip", providers: [.apt(["zlib1g-dev"])]),
        .target(
            name: "ConvNet",
            dependencies: [
                "CKernels",
                "CGzip",
            ],
            resources: [.copy("Data/Resources/mnist_5k.csv.gz")]
        ),
        .target(
            name: "ConvNetCLI",
            dependencies: [
                "ConvNet",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/convnet"
        ),
        .executableTarget(name: "convnet", dependencies: ["ConvNetCLI"], path: "Sources/ConvNetMain"),
        .testTarget(name: "ConvNetTests", dependencies: ["ConvNet"], resources: [.copy("Fixtures")]),
        // The CLI's option table and settings (ConvNetCLI's internals).
        .testTarget(name: "ConvNetCLITests", dependencies: ["ConvNetCLI"]),
        // Only the public API (no @testable import), as a package depending on ConvNet sees it.
        .testTarget(name: "ConvNetAPITests", dependencies: ["ConvNet"]),
    ],
    swiftLanguageModes: [.v6]
)
