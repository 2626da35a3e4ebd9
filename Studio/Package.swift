// swift-tools-version:6.0
import PackageDescription

// `convnet studio`'s web server, kept out of the main package so that the library `ConvNet` and the
// default `swift build` stay free of the HTTP stack. Build: `swift build -c release --package-path Studio`.
let package = Package(
    name: "ConvNetStudio",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "convnet-studio", targets: ["convnet-studio"]),
    ],
    dependencies: [
        .package(name: "ConvNet", path: ".."),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.14.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
    ],
    targets: [
        .target(
            name: "StudioServer",
            dependencies: [
                .product(name: "ConvNet", package: "ConvNet"),
                .product(name: "ConvNetCLI", package: "ConvNet"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Resources/site")]
        ),
        .executableTarget(
            name: "convnet-studio",
            dependencies: [
                "StudioServer",
                .product(name: "ConvNetCLI", package: "ConvNet"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "StudioTests", dependencies: ["StudioServer"]),
    ],
    swiftLanguageModes: [.v6]
)
