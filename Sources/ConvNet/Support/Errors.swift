import Foundation

/// Shape problems: what was given, what was expected, and where.
public enum ShapeError: Error, Equatable, CustomStringConvertible {
    case invalidShape([Int])
    case countMismatch(shape: [Int], expected: Int, got: Int)
    case reshape(from: [Int], to: [Int])
    case mismatch(operation: String, expected: String, got: [Int])
    case layer(name: String, message: String)

    public var description: String {
        switch self {
        case .invalidShape(let s): return "invalid shape \(s): dimensions must be non-negative"
        case .countMismatch(let s, let e, let g):
            return "shape \(formatShape(s)) holds \(e) values, but \(g) were given"
        case .reshape(let from, let to):
            return "cannot reshape \(formatShape(from)) to \(formatShape(to)): element counts differ"
        case .mismatch(let op, let expected, let got):
            return "\(op): expected \(expected), got \(formatShape(got))"
        case .layer(let name, let message): return "layer \(name): \(message)"
        }
    }
}

/// An error's message in plain words: the error's own description, or for the errors that Foundation and
/// the JSON coders raise (whose descriptions show domains, codes, user info and Swift type names) the
/// operating system's reason ("No space left on device") or what is wrong, where the JSON says so.
public func plainDescription(_ error: Error) -> String {
    switch error {
    case let error as DecodingError:
        return plainDescription(error)
    case let error as EncodingError:
        switch error {
        case .invalidValue(let value, let context):
            let place = jsonPath(context.codingPath)
            if let number = value as? Double, !number.isFinite { return "\(place) is \(number), which JSON cannot hold" }
            if let number = value as? Float, !number.isFinite { return "\(place) is \(number), which JSON cannot hold" }
            return "\(place) cannot be written as JSON"
        @unknown default:
            return "a value cannot be written as JSON"
        }
    default:
        break
    }
    if !isFoundationError(error) { return String(describing: error) }
    let ns = error as NSError
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
    if let path = ns.userInfo[NSFilePathErrorKey] as? String {
        switch CocoaError.Code(rawValue: ns.code) {
        case .fileNoSuchFile, .fileReadNoSuchFile: return "\(path): no such file or folder"
        case .fileReadNoPermission, .fileWriteNoPermission: return "\(path): permission denied"
        case .fileWriteOutOfSpace: return "\(path): no space left on the device"
        case .fileWriteFileExists: return "\(path) already exists"
        default: return "\(path): cannot be read or written"
        }
    }
    let text = ns.localizedDescription
    return text.contains("Domain") || text.contains("error ") ? "a file operation failed" : text
}

/// True for errors that Foundation or the JSON coders raised, whose own descriptions are not plain words.
public func isFoundationError(_ error: Error) -> Bool {
    if error is DecodingError || error is EncodingError || error is CocoaError { return true }
    let domain = (error as NSError).domain
    return domain == NSCocoaErrorDomain || domain == NSPOSIXErrorDomain || domain == NSURLErrorDomain
}

private func plainDescription(_ error: DecodingError) -> String {
    switch error {
    case .dataCorrupted(let context):
        return context.codingPath.isEmpty ? "it is not valid JSON" : "\(jsonPath(context.codingPath)) has a value that does not fit"
    case .keyNotFound(let key, let context):
        return "'\(key.stringValue)' is missing at \(jsonPath(context.codingPath))"
    case .typeMismatch(let type, let context):
        return "\(jsonPath(context.codingPath)) is not \(jsonKind(type))"
    case .valueNotFound(let type, let context):
        return "\(jsonPath(context.codingPath)) is empty where \(jsonKind(type)) belongs"
    @unknown default:
        return "it is not the expected JSON"
    }
}

/// `'options.lr'`, or "the top level".
private func jsonPath(_ keys: [any CodingKey]) -> String {
    let names = keys.map { $0.intValue.map(String.init) ?? $0.stringValue }
    return names.isEmpty ? "the top level" : "'\(names.joined(separator: "."))'"
}

/// What a Swift type is called in JSON: "a number", "a JSON object".
private func jsonKind(_ type: Any.Type) -> String {
    switch type {
    case is String.Type, is Substring.Type, is Character.Type: return "text"
    case is Bool.Type: return "true or false"
    case is Int.Type, is Int64.Type, is Int32.Type, is UInt.Type, is UInt64.Type, is UInt32.Type, is UInt8.Type,
         is Double.Type, is Float.Type:
        return "a number"
    default:
        let name = String(describing: type)
        if name.hasPrefix("Array<") || name.hasPrefix("[") { return "a list" }
        if name.hasPrefix("Dictionary<") || name.hasPrefix("Optional<Dictionary") { return "a JSON object" }
        return "a JSON object of the expected form"
    }
}

/// A value that makes no sense for the operation (zero or negative sizes, a NaN loss, a bad label).
public enum ValueError: Error, Equatable, CustomStringConvertible {
    case invalidArgument(String)
    case nonFiniteLoss(loss: String, value: Float)
    case labelOutOfRange(label: Int, classes: Int)

    public var description: String {
        switch self {
        case .invalidArgument(let m): return m
        case .nonFiniteLoss(let loss, let value):
            return "\(loss) is \(value): the network diverged or its input holds NaN/infinity"
        case .labelOutOfRange(let label, let classes):
            return "label \(label) is out of range for \(classes) classes (expected 0...\(classes - 1))"
        }
    }
}
