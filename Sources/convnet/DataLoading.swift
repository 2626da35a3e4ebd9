import ArgumentParser
import ConvNet
import Foundation

/// Training, validation and test sets, preprocessed for the network.
struct PreparedData {
    var train: Dataset
    var validation: Dataset?
    var test: Dataset
}

/// Loads a data set by name and fits it to the network's input shape.
func loadTrainingData(
    _ name: String, dataDirectory: String?, networkInput: [Int]?, validation: Double, seed: UInt64
) throws -> PreparedData {
    switch name {
    case "toy-squares":
        return PreparedData(train: try ToySquares.make(count: 2000, seed: seed &+ 101), validation: nil,
                            test: try ToySquares.make(count: 1000, seed: seed &+ 202))
    default:
        throw ValidationError("unknown data set '\(name)'")
    }
}
