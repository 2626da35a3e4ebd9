import Foundation

/// An n-dimensional NumPy array in C (row-major) order, as read from or written to `.npy` / `.npz`.
public struct NumPyArray: Sendable, Equatable {
    public enum DType: String, Sendable, CaseIterable {
        case float32 = "<f4", float64 = "<f8", uint8 = "|u1", int64 = "<i8"
        public var byteSize: Int {
            switch self {
            case .float32: return 4
            case .float64, .int64: return 8
            case .uint8: return 1
            }
        }
    }

    public enum Storage: Sendable, Equatable {
        case float32([Float]), float64([Double]), uint8([UInt8]), int64([Int64])
        var count: Int {
            switch self {
            case .float32(let v): return v.count
            case .float64(let v): return v.count
            case .uint8(let v): return v.count
            case .int64(let v): return v.count
            }
        }
    }

    public let shape: [Int]
    public let storage: Storage
    public var dtype: DType {
        switch storage {
        case .float32: return .float32
        case .float64: return .float64
        case .uint8: return .uint8
        case .int64: return .int64
        }
    }
    public var count: Int { storage.count }

    public init(shape: [Int], storage: Storage) throws {
        let count = shape.reduce(1, *)
        guard shape.allSatisfy({ $0 >= 0 }), count == storage.count else {
            throw ShapeError.countMismatch(shape: shape, expected: count, got: storage.count)
        }
        self.shape = shape
        self.storage = storage
    }

    public init(shape: [Int], float32 values: [Float]) throws { try self.init(shape: shape, storage: .float32(values)) }
    public init(shape: [Int], float64 values: [Double]) throws { try self.init(shape: shape, storage: .float64(values)) }
    public init(shape: [Int], uint8 values: [UInt8]) throws { try self.init(shape: shape, storage: .uint8(values)) }
    public init(shape: [Int], int64 values: [Int64]) throws { try self.init(shape: shape, storage: .int64(values)) }

    /// A float32 array with the tensor's shape and values.
    public init(tensor: Tensor) {
        shape = tensor.shape
        storage = .float32(tensor.scalars)
    }

    /// Integer labels (or any integers) as a 1-D int64 array.
    public init(labels: [Int]) {
        shape = [labels.count]
        storage = .int64(labels.map { Int64($0) })
    }

    /// A UTF-8 string (a network spec, a JSON document) as a 1-D uint8 array.
    public init(string: String) {
        let bytes = Array(string.utf8)
        shape = [bytes.count]
        storage = .uint8(bytes)
    }

    /// The values converted to Float32, in C order.
    public func floats() -> [Float] {
        switch storage {
        case .float32(let v): return v
        case .float64(let v): return v.map { Float($0) }
        case .uint8(let v): return v.map { Float($0) }
        case .int64(let v): return v.map { Float($0) }
        }
    }

    /// The values as Float32 under the array's shape.
    public func tensor() throws -> Tensor {
        try Tensor(shape: shape, scalars: floats())
    }

    /// The values as integers; throws when a float value is not a whole number.
    public func integers() throws -> [Int] {
        switch storage {
        case .uint8(let v): return v.map { Int($0) }
        case .int64(let v): return v.map { Int($0) }
        case .float32(let v):
            return try v.map { x in
                guard let i = Int(exactly: x) else { throw ValueError.invalidArgument("value \(x) is not an integer") }
                return i
            }
        case .float64(let v):
            return try v.map { x in
                guard let i = Int(exactly: x) else { throw ValueError.invalidArgument("value \(x) is not an integer") }
                return i
            }
        }
    }

    /// The UTF-8 string stored by `init(string:)`.
    public func string() throws -> String {
        guard case .uint8(let bytes) = storage else {
            throw ValueError.invalidArgument("a string is stored as a uint8 array, this array is \(dtype)")
        }
        guard let s = String(bytes: bytes, encoding: .utf8) else {
            throw ValueError.invalidArgument("the uint8 array is not valid UTF-8")
        }
        return s
    }

    // MARK: .npy

    /// Reads a `.npy` file.
    public static func read(from url: URL) throws -> NumPyArray {
        try parse(FileBytes.read(url), source: url.path, name: url.deletingPathExtension().lastPathComponent)
    }

    /// Writes a `.npy` file atomically.
    public func write(to url: URL) throws {
        try FileBytes.writeAtomically(npyData(), to: url)
    }

    /// The `.npy` file content (format version 1.0, little-endian, C order).
    public func npyData() -> Data {
        let shapeText: String
        switch shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(shape[0]),)"
        default: shapeText = "(" + shape.map(String.init).joined(separator: ", ") + ")"
        }
        var header = "{'descr': '\(dtype.rawValue)', 'fortran_order': False, 'shape': \(shapeText), }"
        // magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        let length = UInt16(header.utf8.count)
        data.append(UInt8(length & 0xFF)); data.append(UInt8(length >> 8))
        data.append(contentsOf: Array(header.utf8))
        switch storage {
        case .float32(let v): v.withUnsafeBytes { data.append(contentsOf: $0) }
        case .float64(let v): v.withUnsafeBytes { data.append(contentsOf: $0) }
        case .uint8(let v): data.append(contentsOf: v)
        case .int64(let v): v.withUnsafeBytes { data.append(contentsOf: $0) }
        }
        return data
    }

    /// Parses `.npy` content. `source` and `name` only label errors.
    public static func parse(_ data: Data, source: String, name: String = "array") throws -> NumPyArray {
        let bytes = [UInt8](data.prefix(12))
        guard bytes.count >= 10 else {
            throw DataError.truncated(path: source, expectedBytes: 10, actualBytes: data.count)
        }
        guard bytes[0..<6] == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] else {
            let found = bytes[0..<6].map { String(format: "%02x", $0) }.joined()
            throw DataError.badMagic(path: source, expected: "\\x93NUMPY", found: "0x" + found)
        }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8; headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw DataError.truncated(path: source, expectedBytes: 12, actualBytes: data.count) }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24; headerStart = 12
        default:
            throw DataError.malformed(path: source, problem: "array '\(name)': unsupported .npy format version \(major)")
        }
        guard data.count >= headerStart + headerLength else {
            throw DataError.truncated(path: source, expectedBytes: headerStart + headerLength, actualBytes: data.count)
        }
        let base = data.startIndex
        let headerData = data[(base + headerStart)..<(base + headerStart + headerLength)]
        guard let header = String(data: headerData, encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw DataError.malformed(path: source, problem: "array '\(name)': unreadable .npy header")
        }
        let (descr, fortran, shape) = try parseHeader(header, source: source, name: name)
        let count = try checkedCount(shape, source: source, name: name)
        let payloadStart = base + headerStart + headerLength

        // Byte order and kind.
        guard descr.count >= 3 else { throw DataError.unsupportedDType(path: source, array: name, dtype: descr) }
        let order = descr.first!
        let kindSize = String(descr.dropFirst())
        let bigEndian = order == ">"
        guard order == "<" || order == "|" || order == "=" || bigEndian else {
            throw DataError.unsupportedDType(path: source, array: name, dtype: descr)
        }
        let itemSize: Int
        switch kindSize {
        case "f4", "i4": itemSize = 4
        case "f8", "i8": itemSize = 8
        case "u1": itemSize = 1
        default: throw DataError.unsupportedDType(path: source, array: name, dtype: descr)
        }
        let needed = count * itemSize  // count <= 2^48 (checkedCount), itemSize <= 8: no overflow
        guard data.count - (headerStart + headerLength) >= needed else {
            throw DataError.truncated(path: source, expectedBytes: headerStart + headerLength + needed, actualBytes: data.count)
        }
        let payload = data[payloadStart..<(payloadStart + needed)]

        func load<T: FixedWidthInteger>(_ type: T.Type) -> [T] {
            [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                payload.withUnsafeBytes { raw in
                    for i in 0..<count {
                        let v = raw.loadUnaligned(fromByteOffset: i &* MemoryLayout<T>.size, as: T.self)
                        buffer[i] = bigEndian ? T(bigEndian: v) : T(littleEndian: v)
                    }
                }
                initialized = count
            }
        }
        var storage: Storage
        switch kindSize {
        case "f4": storage = .float32(load(UInt32.self).map { Float(bitPattern: $0) })
        case "f8": storage = .float64(load(UInt64.self).map { Double(bitPattern: $0) })
        case "i8": storage = .int64(load(UInt64.self).map { Int64(bitPattern: $0) })
        case "i4": storage = .int64(load(UInt32.self).map { Int64(Int32(bitPattern: $0)) })
        default: storage = .uint8([UInt8](payload))
        }
        if fortran && shape.count > 1 { storage = fortranToC(storage, shape: shape) }
        return try NumPyArray(shape: shape, storage: storage)
    }

    /// The largest element count a shape may describe, ignoring zero dimensions: 2^48, so that any product of
    /// some of its dimensions (a sample's size, a batch's) fits in an Int.
    public static let maximumElements = 1 << 48

    /// The number of elements of `shape`, or an error when it is absurd (every product of its dimensions is
    /// checked, zero dimensions included, so that no later arithmetic on the shape can overflow).
    static func checkedCount(_ shape: [Int], source: String, name: String) throws -> Int {
        guard shape.count <= 32 else {
            throw DataError.malformed(path: source, problem: "array '\(name)' has \(shape.count) dimensions, at most 32 are allowed")
        }
        var bound = 1, count = 1
        for d in shape {
            let (b, overflow) = bound.multipliedReportingOverflow(by: Swift.max(d, 1))
            guard d >= 0, !overflow, b <= maximumElements else {
                throw DataError.malformed(
                    path: source, problem: "array '\(name)' has shape \(formatShape(shape)), too large (more than 2^48 elements)")
            }
            bound = b
            count *= d
        }
        return count
    }

    /// Parses `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
    static func parseHeader(_ header: String, source: String, name: String) throws -> (String, Bool, [Int]) {
        func bad(_ what: String) -> DataError {
            .malformed(path: source, problem: "array '\(name)': malformed .npy header (\(what)): \(header.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        func value(after key: String) throws -> Substring {
            guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else { throw bad("no \(key)") }
            let rest = header[keyRange.upperBound...].drop { $0 == " " || $0 == ":" }
            return rest
        }
        let descrRest = try value(after: "descr")
        guard let quote = descrRest.first, quote == "'" || quote == "\"",
              let end = descrRest.dropFirst().firstIndex(of: quote) else { throw bad("descr") }
        let descr = String(descrRest[descrRest.index(after: descrRest.startIndex)..<end])
        let fortranRest = try value(after: "fortran_order")
        let fortran: Bool
        if fortranRest.hasPrefix("True") { fortran = true } else if fortranRest.hasPrefix("False") { fortran = false } else { throw bad("fortran_order") }
        let shapeRest = try value(after: "shape")
        guard shapeRest.first == "(", let close = shapeRest.firstIndex(of: ")") else { throw bad("shape") }
        let inner = shapeRest[shapeRest.index(after: shapeRest.startIndex)..<close]
        var shape: [Int] = []
        for part in inner.split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "L", with: "")
            if t.isEmpty { continue }
            guard let n = Int(t), n >= 0 else { throw bad("shape") }
            shape.append(n)
        }
        return (descr, fortran, shape)
    }

    /// Fortran order holds the C-order array of the reversed shape: transpose it back.
    static func fortranToC(_ storage: Storage, shape: [Int]) -> Storage {
        func transpose<T>(_ src: [T]) -> [T] {
            let rank = shape.count
            let count = src.count
            if count == 0 { return src }
            // Fortran strides: stride[0] = 1, stride[k] = stride[k-1] * shape[k-1].
            var fstride = [Int](repeating: 1, count: rank)
            for k in 1..<rank { fstride[k] = fstride[k - 1] &* shape[k - 1] }
            var out = [T]()
            out.reserveCapacity(count)
            var index = [Int](repeating: 0, count: rank)
            var offset = 0
            for _ in 0..<count {
                out.append(src[offset])
                var k = rank - 1
                while k >= 0 {
                    index[k] &+= 1
                    offset &+= fstride[k]
                    if index[k] < shape[k] { break }
                    offset &-= fstride[k] &* shape[k]
                    index[k] = 0
                    k -= 1
                }
            }
            return out
        }
        switch storage {
        case .float32(let v): return .float32(transpose(v))
        case .float64(let v): return .float64(transpose(v))
        case .uint8(let v): return .uint8(transpose(v))
        case .int64(let v): return .int64(transpose(v))
        }
    }
}

/// NumPy `.npz` archives: a ZIP of `.npy` files, stored or deflate-compressed.
public enum NumPyArchive {
    /// All arrays by name (the `.npy` suffix dropped).
    public static func read(from url: URL) throws -> [String: NumPyArray] {
        Dictionary(try readOrdered(from: url).map { ($0.name, $0.array) }, uniquingKeysWith: { a, _ in a })
    }

    /// All arrays in the archive's order (the order they were written in).
    public static func readOrdered(from url: URL) throws -> [(name: String, array: NumPyArray)] {
        try parse(FileBytes.read(url), source: url.path)
    }

    /// Parses `.npz` content held in memory. `source` only labels errors.
    public static func parse(_ data: Data, source: String) throws -> [(name: String, array: NumPyArray)] {
        let zip = try ZipReader(data: data, source: source)
        var result: [(name: String, array: NumPyArray)] = []
        for entry in zip.entries where !entry.isDirectory {
            let name = arrayName(entry.name)
            // `a` and `a.npy` name the same array.
            guard !result.contains(where: { $0.name == name }) else {
                throw DataError.malformed(path: source, problem: "it holds the array '\(name)' twice")
            }
            result.append((name, try NumPyArray.parse(zip.content(of: entry), source: source, name: name)))
        }
        return result
    }

    /// The names of the arrays, in order, without reading them.
    public static func names(in url: URL) throws -> [String] {
        try ZipReader(data: FileBytes.read(url), source: url.path).entries.filter { !$0.isDirectory }.map { arrayName($0.name) }
    }

    /// One array by name; `DataError.missingArray` lists the names there are.
    public static func read(_ name: String, from url: URL) throws -> NumPyArray {
        let zip = try ZipReader(data: FileBytes.read(url), source: url.path)
        guard let entry = zip.entries.first(where: { $0.name == name + ".npy" }) ?? zip.entries.first(where: { $0.name == name }) else {
            throw DataError.missingArray(path: url.path, name: name, available: zip.entries.filter { !$0.isDirectory }.map { arrayName($0.name) })
        }
        return try NumPyArray.parse(zip.content(of: entry), source: url.path, name: name)
    }

    private static func arrayName(_ path: String) -> String { path.hasSuffix(".npy") ? String(path.dropLast(4)) : path }

    /// Writes the arrays in order into a new archive, crash-safely (see `FileBytes.writeAtomically`).
    public static func write(_ arrays: [(name: String, array: NumPyArray)], to url: URL, compressed: Bool) throws {
        try FileBytes.writeAtomically(archiveData(arrays, compressed: compressed), to: url)
    }

    /// The `.npz` content of the arrays, in order.
    public static func archiveData(_ arrays: [(name: String, array: NumPyArray)], compressed: Bool) throws -> Data {
        var zip = ZipWriter()
        for (name, array) in arrays { try zip.add(name: name + ".npy", content: array.npyData(), compressed: compressed) }
        return zip.finish()
    }
}
