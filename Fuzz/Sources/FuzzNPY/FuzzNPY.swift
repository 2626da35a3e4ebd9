import Foundation
import ConvNet

/// `.npy` content: header, dtypes, byte orders, Fortran order, shapes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPY(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard let array = try? NumPyArray.parse(Data(bytes: bytes, count: count), source: "fuzz.npy") else { return 0 }
    precondition(array.count == array.shape.reduce(1, *))
    _ = try? array.integers()
    _ = try? array.string()
    _ = try? array.tensor()
    return 0
}
