import Foundation
@testable import ConvNet

/// IDX images and labels, raw or gzipped (inflated as `FileBytes.readMaybeGzipped` does, with a smaller limit).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var data = Data(bytes: bytes, count: count)
    if Gzip.isGzip(data) {
        guard let inflated = try? Gzip.decompress(data, source: "fuzz.gz", limit: 1 << 24) else { return 0 }
        data = inflated
    }
    if let (dims, values) = try? IDXFile.parse(data, path: "fuzz", expectedRank: 3) {
        precondition(dims.count == 3 && values.count == dims.reduce(1, *))
        _ = ByteImages(shape: [dims[0], 1, dims[1], dims[2]], bytes: values).scaledTensor()
    }
    if let (_, values) = try? IDXFile.parse(data, path: "fuzz", expectedRank: 1) {
        precondition(values.count <= data.count)
    }
    return 0
}
