// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "ConvNet",
    products: [
        .library(name: "ConvNet", targets: ["ConvNet"]),
        .executable(name: "convnet", targets: ["convnet"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
    ],
    targets: [
        // Hot loops in C: AVX2/FMA kernels selected at run time, portable fallbacks elsewhere.
        .target(name: "CKernels"),
        .target(
            name: "ConvNet",
            dependencies: [
                "CKernels",
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ]
        ),
        .executableTarget(
            name: "convnet",
            dependencies: [
                "ConvNet",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "ConvNetTests", dependencies: ["ConvNet"]),
    ],
    swiftLanguageModes: [.v6]
)
