import Foundation
import ConvNet

/// `.npz` content: the ZIP container (directory, ZIP64, stored and deflated entries, CRCs) and its arrays.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPZ(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard let arrays = try? NumPyArchive.parse(Data(bytes: bytes, count: count), source: "fuzz.npz") else { return 0 }
    // What was read writes back and reads again to the same arrays.
    guard let again = try? NumPyArchive.parse(NumPyArchive.archiveData(arrays, compressed: true), source: "again.npz") else {
        preconditionFailure("an archive that was read does not read back after writing")
    }
    precondition(again.count == arrays.count)
    return 0
}
