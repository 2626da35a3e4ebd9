import Foundation

/// An export that the ONNX format, or this exporter, cannot express.
public enum ExportError: Error, CustomStringConvertible {
    case unsupportedLayer(name: String, kind: String)
    case unsupportedInput(String)

    public var description: String {
        switch self {
        case .unsupportedLayer(let name, let kind):
            return "cannot export layer \(name) ('\(kind)') to ONNX: only conv, maxpool, avgpool, gap, dense, flatten, relu, "
                + "leakyrelu, sigmoid, tanh, batchnorm, dropout and logsoftmax have an ONNX form here"
        case .unsupportedInput(let message): return "cannot export to ONNX: \(message)"
        }
    }
}

/// Turns a trained network (`model.npz`) into an ONNX model (IR 8, opset 17) that ONNX Runtime runs
/// with the same results.
///
/// The graph's input `image` is N x C x H x W float32 pixel values in [0, 1], N dynamic. Baked into
/// the graph before the network's layers:
/// - with `dataShape` (for example 1x28x28 for a LeNet-5 that takes 32x32), the fitting that
///   `convnet train` applied to the data set's images: 2x2 average pooling, zero padding, gray to RGB;
///   without it the graph takes the network's own input shape;
/// - the input normalisation stored with the weights: (x - mean[c]) * (1 / std[c]).
///
/// Layers map one to one: conv -> Conv (any stride, explicit pads, `same` resolved), maxpool ->
/// MaxPool, avgpool -> AveragePool (no padding, floor), gap -> GlobalAveragePool, dense -> Gemm (transB = 1, after a Flatten
/// when its input is an image), flatten -> Flatten (axis 1), relu, leakyrelu (alpha), sigmoid, tanh,
/// batchnorm -> BatchNormalization with the running statistics (inference form), dropout ->
/// Identity, logsoftmax -> LogSoftmax (axis 1). The output is the network's last layer: `logits`,
/// `log_probabilities` (logsoftmax) or `probability` (sigmoid). `metadata_props` records the model,
/// spec, classes, loss, data set, what was baked in and what the output is. A model's test-time augmentation
/// (`--tta`) is left out of the graph, which runs one pass; `convnet.test_time_augmentation` says so.
public enum ONNXExport {
    /// The ONNX model of `archive`; `dataShape` bakes the input fitting from that image shape.
    public static func model(from archive: ModelArchive, dataShape: [Int]? = nil) throws -> ONNXModel {
        let network = archive.network
        var builder = GraphBuilder(name: archive.modelName.isEmpty ? "convnet" : archive.modelName)
        let inputShape = dataShape ?? network.inputShape
        builder.graph.inputs.append(ONNXValueInfo(
            name: "image", dims: [.named("N")] + inputShape.map { .size($0) },
            docString: "N x \(formatShape(inputShape)) float32 pixel values in [0, 1]"))
        var x = "image"
        var fitting = "none: the graph takes \(formatShape(network.inputShape)) images"
        if let dataShape, dataShape != network.inputShape {
            let transform: InputTransform
            do {
                transform = try InputTransform.choose(from: dataShape, to: network.inputShape)
            } catch {
                throw ExportError.unsupportedInput(
                    "\(formatShape(dataShape)) images cannot be fitted to the network's input \(formatShape(network.inputShape)): \(error)")
            }
            x = builder.fitting(transform, input: x)
            fitting = "baked into the graph: " + transform.description
        }
        let norm = archive.normalization
        var normalization = "none"
        if norm != .identity {
            x = try builder.normalization(norm, inputShape: network.inputShape, input: x)
            normalization = "baked into the graph: (x - mean) / std with mean "
                + norm.mean.map { "\($0)" }.joined(separator: ",") + ", std " + norm.std.map { "\($0)" }.joined(separator: ",")
        }
        var shape = network.inputShape
        for (layer, outputShape) in zip(network.layers, network.outputShapes) {
            x = try builder.layer(layer, inputShape: shape, input: x)
            shape = outputShape
        }
        let outputName: String
        let outputMeaning: String
        switch network.layers.last?.kind {
        case "logsoftmax": (outputName, outputMeaning) = ("log_probabilities", "log-softmax of the class scores")
        case "sigmoid": (outputName, outputMeaning) = ("probability", "probability of class 1 (of 2)")
        default:
            (outputName, outputMeaning) = archive.loss.isBinary && shape == [1]
                ? ("logits", "logit of class 1 (of 2)") : ("logits", "class scores; softmax gives probabilities")
        }
        builder.rename(x, to: outputName)
        builder.graph.outputs.append(ONNXValueInfo(
            name: outputName, dims: [.named("N")] + shape.map { .size($0) }, docString: outputMeaning))
        var model = ONNXModel(graph: builder.graph, metadata: [
            ("convnet.model", archive.modelName),
            ("convnet.spec", network.spec),
            ("convnet.input_shape", formatShape(network.inputShape)),
            ("convnet.classes", archive.classNames.joined(separator: "\n")),
            ("convnet.loss", archive.loss.rawValue),
            ("convnet.dataset", archive.dataset),
            ("convnet.input", "N x \(formatShape(inputShape)) float32 pixel values in [0, 1]"),
            ("convnet.input_fitting", fitting),
            ("convnet.normalization", normalization),
            ("convnet.output", "\(outputName): \(outputMeaning)"),
            ("convnet.test_time_augmentation", archive.testTimeAugmentation.map {
                "left out: the model classifies with --tta \($0) in convnet (the mean of \($0.passes.count) passes' probabilities); this graph runs one pass"
            } ?? "none"),
        ])
        model.docString = "Exported by convnet from a \(archive.modelName) model: \(network.spec)"
        return model
    }

    /// Writes `archive` as an ONNX file through `AtomicFile` (a temporary file, fsync, then a rename).
    public static func write(_ archive: ModelArchive, to url: URL, dataShape: [Int]? = nil) throws {
        let data = try model(from: archive, dataShape: dataShape).serialized()
        try AtomicFile.write(data, to: url)
    }
}

/// Appends nodes and initializers, naming each value after the layer that makes it.
private struct GraphBuilder {
    var graph: ONNXGraph

    init(name: String) { graph = ONNXGraph(name: name) }

    mutating func node(_ op: String, _ name: String, _ inputs: [String], _ attributes: [ONNXAttribute] = []) -> String {
        graph.nodes.append(ONNXNode(op, name: name, inputs: inputs, outputs: [name], attributes: attributes))
        return name
    }

    mutating func constant(_ name: String, _ tensor: Tensor) -> String {
        graph.initializers.append(ONNXTensor(name: name, dims: tensor.shape, floats: tensor.scalars))
        return name
    }

    mutating func constant(_ name: String, dims: [Int], _ values: [Float]) -> String {
        graph.initializers.append(ONNXTensor(name: name, dims: dims, floats: values))
        return name
    }

    /// Gives the value `old` (the last node's output) the graph output's name.
    mutating func rename(_ old: String, to new: String) {
        if old == "image" {  // a network with no nodes cannot be built; keep the graph valid anyway
            _ = node("Identity", new, [old])
            return
        }
        for i in graph.nodes.indices {
            graph.nodes[i].outputs = graph.nodes[i].outputs.map { $0 == old ? new : $0 }
            graph.nodes[i].inputs = graph.nodes[i].inputs.map { $0 == old ? new : $0 }
        }
    }

    mutating func fitting(_ transform: InputTransform, input: String) -> String {
        var x = input
        for (i, step) in transform.steps.enumerated() {
            let name = "fit\(i + 1)"
            switch step {
            case .downsample2x2:
                x = node("AveragePool", name, [x], [.ints("kernel_shape", [2, 2]), .ints("strides", [2, 2])])
            case .pad(let t, let l, let b, let r):
                graph.initializers.append(ONNXTensor(name: "\(name).pads", dims: [8], int64s: [0, 0, Int64(t), Int64(l), 0, 0, Int64(b), Int64(r)]))
                x = node("Pad", name, [x, "\(name).pads"])
            case .grayscaleToRGB:
                x = node("Concat", name, [x, x, x], [.int("axis", 1)])
            }
        }
        if transform.output.count == 1 { x = node("Flatten", "fit_flatten", [x], [.int("axis", 1)]) }
        return x
    }

    mutating func normalization(_ norm: Normalization, inputShape: [Int], input: String) throws -> String {
        let channels = norm.mean.count
        let dims: [Int]
        if channels == 1 {
            dims = [1]
        } else if inputShape.count == 3, inputShape[0] == channels {
            dims = [1, channels, 1, 1]
        } else {
            throw ExportError.unsupportedInput(
                "the stored normalisation has \(channels) channels, the network's input is \(formatShape(inputShape))")
        }
        // The same arithmetic as `Normalization.apply`: subtract the mean, multiply by 1 / std.
        let mean = constant("norm_mean", dims: dims, norm.mean)
        let scale = constant("norm_inv_std", dims: dims, norm.std.map { 1 / $0 })
        let centred = node("Sub", "normalize_sub", [input, mean])
        return node("Mul", "normalize", [centred, scale])
    }

    mutating func layer(_ layer: any Layer, inputShape: [Int], input x: String) throws -> String {
        let name = layer.name
        switch layer {
        case let conv as Conv2D:
            let g = conv.geometry!
            let w = constant("\(name).weight", conv.weight.value), b = constant("\(name).bias", conv.bias.value)
            return node("Conv", name, [x, w, b], [
                .ints("kernel_shape", [g.kernelHeight, g.kernelWidth]), .ints("strides", [g.strideH, g.strideW]),
                .ints("pads", [g.padTop, g.padLeft, g.padBottom, g.padRight]), .ints("dilations", [1, 1]), .int("group", 1),
            ])
        case let dense as Dense:
            var input = x
            if inputShape.count != 1 { input = node("Flatten", "\(name)_flatten", [x], [.int("axis", 1)]) }
            let w = constant("\(name).weight", dense.weight.value), b = constant("\(name).bias", dense.bias.value)
            return node("Gemm", name, [input, w, b], [.float("alpha", 1), .float("beta", 1), .int("transB", 1)])
        case is Flatten:
            return node("Flatten", name, [x], [.int("axis", 1)])
        case let pool as MaxPool2D:
            return node("MaxPool", name, [x], [
                .ints("kernel_shape", [pool.kernel.height, pool.kernel.width]),
                .ints("strides", [pool.stride.height, pool.stride.width]), .int("ceil_mode", 0),
            ])
        case let pool as AvgPool2D:
            return node("AveragePool", name, [x], [
                .ints("kernel_shape", [pool.kernel.height, pool.kernel.width]),
                .ints("strides", [pool.stride.height, pool.stride.width]), .int("ceil_mode", 0),
            ])
        case is GlobalAvgPool:
            return node("GlobalAveragePool", name, [x])
        case is ReLU:
            return node("Relu", name, [x])
        case let leaky as LeakyReLU:
            return node("LeakyRelu", name, [x], [.float("alpha", leaky.slope)])
        case is Sigmoid:
            return node("Sigmoid", name, [x])
        case is Tanh:
            return node("Tanh", name, [x])
        case is LogSoftmax:
            return node("LogSoftmax", name, [x], [.int("axis", 1)])
        case let bn as BatchNorm:
            let scale = constant("\(name).weight", bn.weight.value), bias = constant("\(name).bias", bn.bias.value)
            let mean = constant("\(name).running_mean", bn.runningMean.value)
            let variance = constant("\(name).running_var", bn.runningVariance.value)
            return node("BatchNormalization", name, [x, scale, bias, mean, variance], [.float("epsilon", bn.epsilon)])
        case is Dropout:
            return node("Identity", name, [x])
        default:
            throw ExportError.unsupportedLayer(name: name, kind: layer.kind)
        }
    }
}
