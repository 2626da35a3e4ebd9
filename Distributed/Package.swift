// swift-tools-version:6.0
import Foundation
import PackageDescription

// convnet-mpi: data-parallel training over MPI (Open MPI; Debian: libopenmpi-dev openmpi-bin). A package of
// its own so that the main package's build and tests never need MPI. It depends on the main package by
// path; SwiftPM names a path dependency after its folder, which is whatever the checkout is called.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let main = root.lastPathComponent.lowercased()

let package = Package(
    name: "ConvNetDistributed",
    products: [
        .executable(name: "convnet-mpi", targets: ["convnet-mpi"]),
    ],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MPI's C API; shim.h turns the handle macros Swift cannot import into functions.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .target(
            name: "ConvNetMPI",
            dependencies: [
                "CMPI",
                .product(name: "ConvNet", package: main),
                .product(name: "ConvNetCLI", package: main),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "convnet-mpi", dependencies: ["ConvNetMPI"]),
        .testTarget(
            name: "ConvNetMPITests",
            dependencies: [
                "ConvNetMPI",
                .product(name: "ConvNet", package: main),
                .product(name: "ConvNetCLI", package: main),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
