import Foundation
import ConvNet

/// PGM/PPM decoding (P2, P3, P5, P6: text and binary, 8 and 16 bits), then fitting to a network input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNM(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard let picture = try? Picture.decode(Data(bytes: bytes, count: count), source: "fuzz.pgm") else { return 0 }
    precondition(picture.pixels.count == picture.width * picture.height * picture.channels)
    _ = try? picture.fitted(to: [3, 32, 32])
    return 0
}
