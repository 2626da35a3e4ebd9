import Foundation
@testable import ConvNet

/// The bundled sample's CSV reader (784 pixels then the label per line), gzipped or not.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSV(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var data = Data(bytes: bytes, count: count)
    if Gzip.isGzip(data) {
        guard let inflated = try? Gzip.decompress(data, source: "fuzz.csv.gz", limit: 1 << 24) else { return 0 }
        data = inflated
    }
    // A 2x2 "image" per line keeps lines short enough for the fuzzer to build valid ones.
    for side in [2, 28] {
        if let (images, labels) = try? DigitsCSV.parse(data, source: "fuzz.csv", side: side, classes: 10) {
            precondition(images.bytes.count == labels.count * side * side && labels.allSatisfy { (0..<10).contains($0) })
        }
    }
    return 0
}
