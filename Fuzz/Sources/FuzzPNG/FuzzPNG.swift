import Foundation
import ConvNet

/// PNG decoding (chunks and their CRCs, IHDR, palettes, bounded inflate, row filters), then fitting the
/// picture to a network input as `convnet predict` does.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard let picture = try? Picture.decode(Data(bytes: bytes, count: count), source: "fuzz.png") else { return 0 }
    precondition(picture.pixels.count == picture.width * picture.height * picture.channels)
    _ = try? picture.fitted(to: [1, 28, 28])
    return 0
}
