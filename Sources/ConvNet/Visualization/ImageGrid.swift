import Foundation

/// One image of an `ImageGrid` with its caption.
public struct ImageTile: Sendable {
    public var image: Tensor
    public var caption: String
    public var secondCaption: String?
    /// Draws a coloured frame (for example on a wrong prediction).
    public var highlight: Bool

    public init(image: Tensor, caption: String, secondCaption: String? = nil, highlight: Bool = false) {
        self.image = image
        self.caption = caption
        self.secondCaption = secondCaption
        self.highlight = highlight
    }
}

/// Images in a grid, each embedded as a PNG data URI inside SVG (the file needs no network), drawn
/// with sharp pixels.
public struct ImageGrid: Sendable {
    public var title: String
    public var subtitle: String?
    public var tiles: [ImageTile]
    public var columns: Int
    /// Displayed size of each image's longer side, in pixels.
    public var tileSize: Double = 84
    public var scaling: PixelScaling = .perImage
    /// Labels down the left, one per row (for example "input image 1").
    public var rowLabels: [String]?

    public init(title: String, tiles: [ImageTile], columns: Int = 8) {
        self.title = title
        self.tiles = tiles
        self.columns = max(1, columns)
    }

    public func svg() throws -> String {
        let captionLines = tiles.contains { $0.secondCaption != nil } ? 2.0 : (tiles.contains { !$0.caption.isEmpty } ? 1.0 : 0)
        let cellW = tileSize + 12, cellH = tileSize + 8 + captionLines * 14 + 6
        let rowLabelWidth = rowLabels.map { 14 + Double($0.map(\.count).max() ?? 0) * 6.5 } ?? 0
        let titleHeight = subtitle == nil ? 30.0 : 46
        let rows = (tiles.count + columns - 1) / columns
        let usedColumns = min(columns, max(tiles.count, 1))
        let width = max(10 + rowLabelWidth + Double(usedColumns) * cellW + 6, max(Double(title.count) * 8.5, Double(subtitle?.count ?? 0) * 6.2) + 20)
        let height = titleHeight + Double(max(rows, 1)) * cellH + 6
        var out = SVG.open(width: width, height: height, title: title, className: "chart image-grid")
        out += SVG.text(title, x: 10, y: 20, size: 14, weight: "600", extra: "class=\"chart-title\"")
        if let subtitle { out += SVG.text(subtitle, x: 10, y: 37, size: 11, fill: "#555555") }
        if let rowLabels {
            for (r, label) in rowLabels.enumerated() where r < rows {
                out += SVG.text(label, x: 10, y: titleHeight + Double(r) * cellH + tileSize / 2 + 4, size: 11, fill: "#444444")
            }
        }
        for (i, tile) in tiles.enumerated() {
            let raster = try RasterImage(tensor: tile.image, scaling: scaling)
            let scale = tileSize / Double(max(raster.width, raster.height))
            let w = Double(raster.width) * scale, h = Double(raster.height) * scale
            let x0 = 10 + rowLabelWidth + Double(i % columns) * cellW + 6 + (tileSize - w) / 2
            let y0 = titleHeight + Double(i / columns) * cellH + (tileSize - h) / 2
            out += "<image class=\"tile\" x=\"\(SVG.coordinate(x0))\" y=\"\(SVG.coordinate(y0))\" width=\"\(SVG.coordinate(w))\" height=\"\(SVG.coordinate(h))\" preserveAspectRatio=\"none\" image-rendering=\"optimizeSpeed\" style=\"image-rendering:pixelated\" href=\"\(raster.dataURI)\"><title>\(SVG.escape(tile.caption + (tile.secondCaption.map { " — " + $0 } ?? "")))</title></image>"
            out += "<rect x=\"\(SVG.coordinate(x0 - 0.5))\" y=\"\(SVG.coordinate(y0 - 0.5))\" width=\"\(SVG.coordinate(w + 1))\" height=\"\(SVG.coordinate(h + 1))\" fill=\"none\" stroke=\"\(tile.highlight ? Palette.vermillion : "#999999")\" stroke-width=\"\(tile.highlight ? 2.5 : 1)\"/>"
            let cx = 10 + rowLabelWidth + Double(i % columns) * cellW + 6 + tileSize / 2
            let cy = titleHeight + Double(i / columns) * cellH + tileSize + 16
            if !tile.caption.isEmpty {
                out += SVG.text(clip(tile.caption, tileSize), x: cx, y: cy, size: 11, anchor: "middle", fill: "#222222")
            }
            if let second = tile.secondCaption {
                out += SVG.text(clip(second, tileSize), x: cx, y: cy + 14, size: 11, anchor: "middle", fill: tile.highlight ? Palette.vermillion : "#555555")
            }
        }
        out += "</svg>"
        return out
    }

    private func clip(_ s: String, _ width: Double) -> String {
        let maxChars = max(4, Int((width + 12) / 5.8))
        return s.count <= maxChars ? s : String(s.prefix(maxChars - 1)) + "…"
    }
}
