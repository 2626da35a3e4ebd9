import Foundation

/// Small helpers shared by the chart renderers: escaping, number formatting and colours.
public enum SVG {
    /// Escapes text for XML/HTML element content and attribute values.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for ch in text {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(ch)
            }
        }
        return out
    }

    /// A coordinate with at most two decimals and no trailing zeros.
    public static func coordinate(_ v: Double) -> String {
        guard v.isFinite else { return "0" }
        let rounded = (v * 100).rounded() / 100
        if rounded == rounded.rounded() && abs(rounded) < 1e15 { return String(Int(rounded)) }
        var s = String(format: "%.2f", rounded)
        while s.hasSuffix("0") { s.removeLast() }
        return s
    }

    /// The standalone-file prolog for an `<svg>` fragment.
    public static func document(_ svg: String) -> String {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + svg + "\n"
    }

    /// Font stack used by every chart (no web fonts: the files must work offline).
    static let fontFamily = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', Arial, sans-serif"

    /// Opening tag of a chart with an accessible title.
    static func open(width: Double, height: Double, title: String, className: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"\(className)\" width=\"\(coordinate(width))\" height=\"\(coordinate(height))\" "
            + "viewBox=\"0 0 \(coordinate(width)) \(coordinate(height))\" role=\"img\" aria-label=\"\(escape(title))\" "
            + "font-family=\"\(escape(fontFamily))\">"
            + "<title>\(escape(title))</title>"
            + "<rect x=\"0\" y=\"0\" width=\"\(coordinate(width))\" height=\"\(coordinate(height))\" fill=\"#ffffff\"/>"
    }

    static func text(
        _ content: String, x: Double, y: Double, size: Double = 12, anchor: String = "start", weight: String? = nil,
        fill: String = "#222222", rotate: Double? = nil, baseline: String? = nil, extra: String = ""
    ) -> String {
        var attrs = "x=\"\(coordinate(x))\" y=\"\(coordinate(y))\" font-size=\"\(coordinate(size))\" fill=\"\(fill)\""
        if anchor != "start" { attrs += " text-anchor=\"\(anchor)\"" }
        if let weight { attrs += " font-weight=\"\(weight)\"" }
        if let baseline { attrs += " dominant-baseline=\"\(baseline)\"" }
        if let rotate { attrs += " transform=\"rotate(\(coordinate(rotate)) \(coordinate(x)) \(coordinate(y)))\"" }
        if !extra.isEmpty { attrs += " " + extra }
        return "<text \(attrs)>\(escape(content))</text>"
    }
}

/// An sRGB colour.
public struct RGBColor: Sendable, Equatable {
    public var red: Double, green: Double, blue: Double

    public init(red: Double, green: Double, blue: Double) {
        self.red = red
        self.green = green
        self.blue = blue
    }

    /// From `#RRGGBB`.
    public init(hex: String) {
        let digits = hex.hasPrefix("#") ? String(hex.dropFirst()) : hex
        let v = UInt32(digits, radix: 16) ?? 0
        self.init(red: Double((v >> 16) & 0xFF) / 255, green: Double((v >> 8) & 0xFF) / 255, blue: Double(v & 0xFF) / 255)
    }

    public var hex: String {
        func byte(_ c: Double) -> Int { Int((min(max(c, 0), 1) * 255).rounded()) }
        return String(format: "#%02x%02x%02x", byte(red), byte(green), byte(blue))
    }

    /// Linear interpolation towards `other` (t in [0, 1]).
    public func mixed(with other: RGBColor, _ t: Double) -> RGBColor {
        let t = min(max(t, 0), 1)
        return RGBColor(
            red: red + (other.red - red) * t, green: green + (other.green - green) * t, blue: blue + (other.blue - blue) * t)
    }

    /// Relative luminance (WCAG), to choose black or white text on a fill.
    public var luminance: Double {
        func lin(_ c: Double) -> Double { c <= 0.03928 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4) }
        return 0.2126 * lin(red) + 0.7152 * lin(green) + 0.0722 * lin(blue)
    }

    /// Black or white, whichever reads better on this colour.
    public var textColor: String { luminance > 0.22 ? "#111111" : "#ffffff" }

    public static let white = RGBColor(red: 1, green: 1, blue: 1)
}

/// The Okabe-Ito palette: eight colours that stay distinct for the common colour-vision deficiencies.
public enum Palette {
    public static let black = "#000000"
    public static let orange = "#E69F00"
    public static let skyBlue = "#56B4E9"
    public static let bluishGreen = "#009E73"
    public static let yellow = "#F0E442"
    public static let blue = "#0072B2"
    public static let vermillion = "#D55E00"
    public static let reddishPurple = "#CC79A7"

    /// Series colours in order (yellow last: it is weak on white).
    public static let series = [blue, orange, bluishGreen, vermillion, reddishPurple, skyBlue, black, yellow]

    public static func color(_ index: Int) -> String { series[((index % series.count) + series.count) % series.count] }
}

/// A short deterministic identifier (FNV-1a) for element ids derived from content.
func stableID(_ text: String) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in text.utf8 {
        h ^= UInt64(b)
        h = h &* 0x100_0000_01b3
    }
    return String(h, radix: 36)
}
