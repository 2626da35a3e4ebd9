/// A protocol-buffers encoder for the wire types the ONNX messages use: varints (wire type 0),
/// length-delimited fields (2: strings, bytes, nested messages) and 32-bit fixed fields (5: floats).
/// Fields are written in the order the caller gives; repeated integers are written unpacked, which
/// every proto2 and proto3 reader accepts.
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    private mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    private mutating func key(_ field: Int, wireType: UInt64) {
        varint(UInt64(field) << 3 | wireType)
    }

    /// An int32/int64/enum field. Negative values take ten bytes (two's complement), as protobuf's int64.
    mutating func int(_ field: Int, _ value: Int) {
        key(field, wireType: 0)
        varint(UInt64(bitPattern: Int64(value)))
    }

    /// A float field (fixed32, little-endian).
    mutating func float(_ field: Int, _ value: Float) {
        key(field, wireType: 5)
        let bits = value.bitPattern
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: bits >> UInt32(shift))) }
    }

    mutating func string(_ field: Int, _ value: String) {
        data(field, Array(value.utf8))
    }

    mutating func data(_ field: Int, _ value: [UInt8]) {
        key(field, wireType: 2)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    /// A nested message, encoded by `body` into its own buffer and written length-prefixed.
    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        body(&inner)
        data(field, inner.bytes)
    }
}
