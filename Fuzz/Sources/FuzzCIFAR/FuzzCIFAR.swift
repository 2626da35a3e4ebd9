import Foundation
@testable import ConvNet

/// CIFAR-10 binary batches, and the `.tar.gz` they come in (inflate, tar, then each batch).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCIFAR(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: bytes, count: count)
    var batches: [Data] = [data]
    if Gzip.isGzip(data) {
        guard let tar = try? Gzip.decompress(data, source: "fuzz.tar.gz", limit: 1 << 24),
              let files = try? TarArchive.files(in: tar, source: "fuzz.tar.gz") else { return 0 }
        batches = files.filter { $0.path.hasSuffix(".bin") }.map(\.content)
    }
    for batch in batches {
        var images: [UInt8] = [], labels: [Int] = []
        if (try? CIFAR10File.parse(batch, source: "fuzz.bin", appendingTo: &images, labels: &labels)) != nil {
            precondition(images.count == labels.count * 3072 && labels.allSatisfy { (0..<10).contains($0) })
        }
    }
    return 0
}
