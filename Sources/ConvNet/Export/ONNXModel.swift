import Foundation

/// The subset of ONNX's messages (onnx/onnx.proto) that an exported network needs, with their
/// protobuf encoding. Field numbers are those of onnx.proto; `ONNXTests` reads the bytes back with
/// the `onnx` Python package when it is installed.
public struct ONNXModel: Sendable {
    /// IR version 8 with opset 17: ONNX 1.12's pairing, loaded by ONNX Runtime 1.12 and later.
    public static let irVersion = 8
    public static let opsetVersion = 17

    public var graph: ONNXGraph
    /// `metadata_props`: free-form key/value strings.
    public var metadata: [(key: String, value: String)]
    public var producerName = "convnet"
    public var docString = ""

    public init(graph: ONNXGraph, metadata: [(key: String, value: String)]) {
        self.graph = graph
        self.metadata = metadata
    }

    /// The ModelProto's bytes.
    public func serialized() -> Data {
        var w = ProtobufWriter()
        w.int(1, Self.irVersion)                      // ir_version
        w.string(2, producerName)                     // producer_name
        if !docString.isEmpty { w.string(6, docString) }  // doc_string
        w.message(7) { graph.encode(into: &$0) }      // graph
        w.message(8) { opset in                       // opset_import: the default domain ""
            opset.int(2, Self.opsetVersion)
        }
        for entry in metadata {                       // metadata_props (StringStringEntryProto)
            w.message(14) { e in
                e.string(1, entry.key)
                e.string(2, entry.value)
            }
        }
        return Data(w.bytes)
    }
}

public struct ONNXGraph: Sendable {
    public var name: String
    public var nodes: [ONNXNode] = []
    public var initializers: [ONNXTensor] = []
    public var inputs: [ONNXValueInfo] = []
    public var outputs: [ONNXValueInfo] = []

    public init(name: String) { self.name = name }

    func encode(into w: inout ProtobufWriter) {
        for node in nodes { w.message(1) { node.encode(into: &$0) } }
        w.string(2, name)
        for tensor in initializers { w.message(5) { tensor.encode(into: &$0) } }
        for value in inputs { w.message(11) { value.encode(into: &$0) } }
        for value in outputs { w.message(12) { value.encode(into: &$0) } }
    }
}

public struct ONNXNode: Sendable {
    public var opType: String
    public var name: String
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [ONNXAttribute]

    public init(_ opType: String, name: String, inputs: [String], outputs: [String], attributes: [ONNXAttribute] = []) {
        self.opType = opType
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }

    func encode(into w: inout ProtobufWriter) {
        for i in inputs { w.string(1, i) }
        for o in outputs { w.string(2, o) }
        w.string(3, name)
        w.string(4, opType)
        for a in attributes { w.message(5) { a.encode(into: &$0) } }
    }
}

public enum ONNXAttribute: Sendable {
    case float(String, Float)
    case int(String, Int)
    case ints(String, [Int])

    public var name: String {
        switch self {
        case .float(let n, _), .int(let n, _), .ints(let n, _): return n
        }
    }

    func encode(into w: inout ProtobufWriter) {
        w.string(1, name)
        switch self {
        case .float(_, let v):
            w.float(2, v)
            w.int(20, 1)  // AttributeType.FLOAT
        case .int(_, let v):
            w.int(3, v)
            w.int(20, 2)  // INT
        case .ints(_, let vs):
            for v in vs { w.int(8, v) }
            w.int(20, 7)  // INTS
        }
    }
}

/// An initializer: float32 or int64 values stored as little-endian `raw_data`.
public struct ONNXTensor: Sendable {
    public enum Values: Sendable {
        case float([Float])
        case int64([Int64])
    }
    public var name: String
    public var dims: [Int]
    public var values: Values

    public init(name: String, dims: [Int], floats: [Float]) {
        precondition(dims.reduce(1, *) == floats.count, "\(name): \(floats.count) values for dims \(dims)")
        self.name = name
        self.dims = dims
        self.values = .float(floats)
    }

    public init(name: String, dims: [Int], int64s: [Int64]) {
        precondition(dims.reduce(1, *) == int64s.count, "\(name): \(int64s.count) values for dims \(dims)")
        self.name = name
        self.dims = dims
        self.values = .int64(int64s)
    }

    func encode(into w: inout ProtobufWriter) {
        for d in dims { w.int(1, d) }
        var raw: [UInt8] = []
        switch values {
        case .float(let fs):
            w.int(2, 1)  // DataType.FLOAT
            raw.reserveCapacity(fs.count * 4)
            for f in fs { withUnsafeBytes(of: f.bitPattern.littleEndian) { raw.append(contentsOf: $0) } }
        case .int64(let xs):
            w.int(2, 7)  // DataType.INT64
            raw.reserveCapacity(xs.count * 8)
            for x in xs { withUnsafeBytes(of: x.littleEndian) { raw.append(contentsOf: $0) } }
        }
        w.string(8, name)
        w.data(9, raw)
    }
}

/// A graph input or output: a float32 tensor whose dimensions are sizes or named (dynamic) ones.
public struct ONNXValueInfo: Sendable {
    public enum Dimension: Sendable, Equatable {
        case size(Int)
        case named(String)
    }
    public var name: String
    public var dims: [Dimension]
    public var docString: String

    public init(name: String, dims: [Dimension], docString: String = "") {
        self.name = name
        self.dims = dims
        self.docString = docString
    }

    func encode(into w: inout ProtobufWriter) {
        w.string(1, name)
        w.message(2) { type in               // TypeProto
            type.message(1) { tensor in      // tensor_type
                tensor.int(1, 1)             // elem_type FLOAT
                tensor.message(2) { shape in // TensorShapeProto
                    for d in dims {
                        shape.message(1) { dim in
                            switch d {
                            case .size(let n): dim.int(1, n)
                            case .named(let s): dim.string(2, s)
                            }
                        }
                    }
                }
            }
        }
        if !docString.isEmpty { w.string(3, docString) }
    }
}
