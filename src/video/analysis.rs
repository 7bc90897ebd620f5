//! What is computed from one frame, off the async workers: decoding to the luma plane,
//! brightness, motion against the previous frame, barcodes, and the processed images the
//! ops ask for.
//!
//! Everything starts from the luma (Y) plane. JPEG frames are decoded straight to it
//! (zune-jpeg skips the colour conversion and chroma upsampling), which is most of why a
//! frame costs about a millisecond; only `thumbnail` decodes the colours. The pixel count is
//! checked from the header before any pixel is decoded.

use std::collections::HashSet;
use std::io::Cursor;

use crate::images::{self, Bounds, Refused};
use image::{DynamicImage, GrayImage, ImageFormat};
use rxing::multi::{GenericMultipleBarcodeReader, MultipleBarcodeReader};
use rxing::{
    common::HybridBinarizer, BarcodeFormat, BinaryBitmap, DecodeHints, Luma8LuminanceSource,
    MultiUseMultiFormatReader,
};

/// Cells of the grid motion is measured on (each the mean of its block of pixels).
const GRID_W: usize = 64;
const GRID_H: usize = 48;
/// A cell whose mean luma moved by more than this counts as changed (JPEG noise stays below).
const MOTION_THRESHOLD: i16 = 12;
/// The longest side of a `thumbnail`.
const THUMBNAIL_SIDE: u32 = 160;
const JPEG_QUALITY: u8 = 80;

/// Whether the bytes are a frame's format (JPEG or PNG), from their signature.
pub fn is_frame(bytes: &[u8]) -> bool {
    matches!(
        images::format_of(bytes),
        Some(ImageFormat::Jpeg | ImageFormat::Png)
    )
}

/// A frame's luma plane.
pub struct Luma {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

fn too_big(width: u64, height: u64, max_pixels: u64) -> Option<String> {
    (width * height > max_pixels).then(|| {
        format!("the frame has {width}×{height} pixels; at most {max_pixels} are accepted")
    })
}

/// Decodes `bytes` (JPEG or PNG) to its luma plane, refusing frames over `max_pixels`
/// before decoding them.
pub fn decode_luma(bytes: &[u8], max_pixels: u64) -> Result<Luma, String> {
    match images::format_of(bytes) {
        Some(ImageFormat::Jpeg) => {
            use zune_jpeg::zune_core::colorspace::ColorSpace;
            use zune_jpeg::zune_core::options::DecoderOptions;
            let options = DecoderOptions::default()
                .jpeg_set_out_colorspace(ColorSpace::Luma)
                .set_max_width(1 << 16)
                .set_max_height(1 << 16);
            let mut decoder = zune_jpeg::JpegDecoder::new_with_options(Cursor::new(bytes), options);
            let bad = |e: zune_jpeg::errors::DecodeErrors| format!("not a decodable JPEG: {e}");
            decoder.decode_headers().map_err(bad)?;
            let info = decoder.info().ok_or("not a decodable JPEG")?;
            let (width, height) = (u32::from(info.width), u32::from(info.height));
            if let Some(e) = too_big(u64::from(width), u64::from(height), max_pixels) {
                return Err(e);
            }
            let pixels = decoder.decode().map_err(bad)?;
            if pixels.len() != width as usize * height as usize {
                return Err("not a decodable JPEG: unexpected output".to_owned());
            }
            Ok(Luma {
                width,
                height,
                pixels,
            })
        }
        Some(ImageFormat::Png) => {
            let image = decode_color(bytes, max_pixels)?;
            let gray = image.to_luma8();
            Ok(Luma {
                width: gray.width(),
                height: gray.height(),
                pixels: gray.into_raw(),
            })
        }
        _ => Err("not a JPEG or PNG image".to_owned()),
    }
}

/// Decodes `bytes` in colour, under `image::Limits` (for `thumbnail`, and PNG frames).
pub fn decode_color(bytes: &[u8], max_pixels: u64) -> Result<DynamicImage, String> {
    // Room for the decoded pixels (up to 4 bytes each) and the decoder's own buffers.
    let bounds = Bounds {
        max_pixels,
        max_alloc: max_pixels.saturating_mul(8).max(1 << 20),
    };
    images::decode(bytes, None, bounds).map_err(|e| match e {
        Refused::TooManyPixels { width, height } => {
            too_big(u64::from(width), u64::from(height), max_pixels).unwrap_or_default()
        }
        Refused::Undecodable(e) => format!("not a decodable image: {e}"),
    })
}

/// A coarse copy of a frame (block means), what motion is measured on, and its mean luma.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    width: u32,
    height: u32,
    cells: Vec<u8>,
    /// Mean luma of the whole frame, 0–255.
    pub brightness: f64,
}

/// One pass over the luma plane: the block means and the overall mean. Which cell a column
/// falls in is worked out once per frame, not per pixel.
pub fn grid(luma: &Luma) -> Grid {
    let (w, h) = (luma.width as usize, luma.height as usize);
    let (gw, gh) = (GRID_W.min(w.max(1)), GRID_H.min(h.max(1)));
    let column_cell: Vec<usize> = (0..w).map(|x| x * gw / w).collect();
    let mut sums = vec![0u32; gw * gh];
    let mut counts = vec![0u32; gw * gh];
    for (y, row) in luma.pixels.chunks_exact(w.max(1)).take(h).enumerate() {
        let base = (y * gh / h) * gw;
        let (row_sums, row_counts) = (&mut sums[base..base + gw], &mut counts[base..base + gw]);
        for (&p, &cell) in row.iter().zip(&column_cell) {
            row_sums[cell] += u32::from(p);
            row_counts[cell] += 1;
        }
    }
    let total: u64 = sums.iter().map(|&s| u64::from(s)).sum();
    let brightness = if luma.pixels.is_empty() {
        0.0
    } else {
        total as f64 / luma.pixels.len() as f64
    };
    let cells = sums
        .iter()
        .zip(&counts)
        .map(|(s, c)| u8::try_from(s / (*c).max(1)).unwrap_or(u8::MAX))
        .collect();
    Grid {
        width: luma.width,
        height: luma.height,
        cells,
        brightness,
    }
}

/// The share (0–1) of the frame that changed since `previous`: 0 for the first frame and for
/// an identical one, 1 when the size changed.
pub fn motion(previous: Option<&Grid>, current: &Grid) -> f64 {
    let Some(previous) = previous else {
        return 0.0;
    };
    if (previous.width, previous.height) != (current.width, current.height) {
        return 1.0;
    }
    let changed = previous
        .cells
        .iter()
        .zip(&current.cells)
        .filter(|(a, b)| (i16::from(**a) - i16::from(**b)).abs() > MOTION_THRESHOLD)
        .count();
    changed as f64 / current.cells.len().max(1) as f64
}

/// One code read in a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    pub format: &'static str,
    pub text: String,
}

/// The formats looked for: retail and logistics linear codes, and QR.
fn formats() -> HashSet<BarcodeFormat> {
    [
        BarcodeFormat::EAN_13,
        BarcodeFormat::EAN_8,
        BarcodeFormat::UPC_A,
        BarcodeFormat::UPC_E,
        BarcodeFormat::CODE_128,
        BarcodeFormat::CODE_39,
        BarcodeFormat::QR_CODE,
    ]
    .into_iter()
    .collect()
}

fn format_name(format: &BarcodeFormat) -> &'static str {
    match format {
        BarcodeFormat::EAN_13 => "ean_13",
        BarcodeFormat::EAN_8 => "ean_8",
        BarcodeFormat::UPC_A => "upc_a",
        BarcodeFormat::UPC_E => "upc_e",
        BarcodeFormat::CODE_128 => "code_128",
        BarcodeFormat::CODE_39 => "code_39",
        BarcodeFormat::QR_CODE => "qr_code",
        _ => "other",
    }
}

/// Every code rxing reads in the luma plane. Only the formats above are tried, and not
/// "harder" (rxing's helpers turn that on, which rotates and rescans every frame): a
/// frame with no code costs one pass, like a frame with one.
pub fn barcodes(luma: &Luma) -> Vec<Code> {
    let (pixels, width, height) = if luma.width > HALVE_ABOVE {
        halve(luma)
    } else {
        (luma.pixels.clone(), luma.width, luma.height)
    };
    let Ok(source) = Luma8LuminanceSource::new(pixels, width, height) else {
        return Vec::new();
    };
    let mut bitmap = BinaryBitmap::new(HybridBinarizer::new(source));
    let hints = DecodeHints {
        PossibleFormats: Some(formats()),
        TryHarder: Some(false),
        ..DecodeHints::default()
    };
    let mut reader = GenericMultipleBarcodeReader::new(MultiUseMultiFormatReader::default());
    let found = reader
        .decode_multiple_with_hints(&mut bitmap, &hints)
        .unwrap_or_default();
    let mut codes: Vec<Code> = found
        .iter()
        .map(|r| Code {
            format: format_name(r.getBarcodeFormat()),
            text: r.getText().to_owned(),
        })
        .collect();
    codes.sort_by(|a, b| (a.format, &a.text).cmp(&(b.format, &b.text)));
    codes.dedup();
    codes
}

/// Frames wider than this are read for codes at half size: a code that fills enough of a
/// wider frame to be read keeps two pixels per module or more at half of it, and reading a
/// quarter of the pixels takes about a quarter of the time.
const HALVE_ABOVE: u32 = 1280;

/// The luma plane at half width and height (each pixel the mean of a 2×2 block).
fn halve(luma: &Luma) -> (Vec<u8>, u32, u32) {
    let (w, h) = (luma.width as usize, luma.height as usize);
    let (hw, hh) = (w / 2, h / 2);
    let p = &luma.pixels;
    let mut out = Vec::with_capacity(hw * hh);
    for y in 0..hh {
        let (top, bottom) = (&p[2 * y * w..], &p[(2 * y + 1) * w..]);
        for x in 0..hw {
            let sum = u16::from(top[2 * x])
                + u16::from(top[2 * x + 1])
                + u16::from(bottom[2 * x])
                + u16::from(bottom[2 * x + 1]);
            out.push(u8::try_from(sum / 4).unwrap_or(u8::MAX));
        }
    }
    let size = |n: usize| u32::try_from(n).unwrap_or(0);
    (out, size(hw), size(hh))
}

/// Which processed image a frame asked for. They compose: `thumbnail` scales first, then
/// `grayscale` or `edges` work on what is left.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Render {
    pub grayscale: bool,
    pub thumbnail: bool,
    pub edges: bool,
}

impl Render {
    pub fn any(self) -> bool {
        self.grayscale || self.thumbnail || self.edges
    }
}

/// The processed frame as base64 JPEG, or `None` when no op asked for one (nothing is
/// re-encoded then).
pub fn render(
    bytes: &[u8],
    luma: &Luma,
    ops: Render,
    max_pixels: u64,
) -> Result<Option<String>, String> {
    if !ops.any() {
        return Ok(None);
    }
    let mut image = if ops.thumbnail {
        decode_color(bytes, max_pixels)?.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE)
    } else {
        let gray = GrayImage::from_raw(luma.width, luma.height, luma.pixels.clone())
            .ok_or("the frame has no pixels")?;
        DynamicImage::ImageLuma8(gray)
    };
    if ops.grayscale || ops.edges {
        image = DynamicImage::ImageLuma8(image.to_luma8());
    }
    if ops.edges {
        image = DynamicImage::ImageLuma8(sobel(&image.to_luma8()));
    }
    jpeg_base64(&image).map(Some)
}

/// A JPEG of `image`, base64.
fn jpeg_base64(image: &DynamicImage) -> Result<String, String> {
    use base64::Engine;
    let out = images::jpeg(image, JPEG_QUALITY)
        .map_err(|e| format!("encoding the processed frame failed: {e}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(out))
}

/// Edge strength: the Sobel gradient's magnitude (|gx| + |gy|, scaled to 0–255).
fn sobel(gray: &GrayImage) -> GrayImage {
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    let p = gray.as_raw();
    let mut out = vec![0u8; w * h];
    if w >= 3 && h >= 3 {
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                let at = |dx: usize, dy: usize| i32::from(p[(y + dy - 1) * w + (x + dx - 1)]);
                let gx = at(2, 0) + 2 * at(2, 1) + at(2, 2) - at(0, 0) - 2 * at(0, 1) - at(0, 2);
                let gy = at(0, 2) + 2 * at(1, 2) + at(2, 2) - at(0, 0) - 2 * at(1, 0) - at(2, 0);
                let magnitude = (gx.abs() + gy.abs()) / 4;
                out[y * w + x] = u8::try_from(magnitude.min(255)).unwrap_or(u8::MAX);
            }
        }
    }
    GrayImage::from_raw(gray.width(), gray.height(), out).unwrap_or_else(|| gray.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(width: u32, height: u32, f: impl Fn(u32, u32) -> u8) -> Luma {
        let pixels = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect();
        Luma {
            width,
            height,
            pixels,
        }
    }

    #[test]
    fn brightness_and_motion_come_from_one_grid() {
        let white = grid(&plane(640, 480, |_, _| 255));
        let black = grid(&plane(640, 480, |_, _| 0));
        assert_eq!(white.brightness, 255.0);
        assert_eq!(motion(None, &white), 0.0);
        assert_eq!(motion(Some(&white), &white), 0.0);
        assert_eq!(motion(Some(&white), &black), 1.0);
        let half = grid(&plane(640, 480, |x, _| if x < 320 { 0 } else { 255 }));
        assert!((motion(Some(&white), &half) - 0.5).abs() < 0.01);
        assert!((half.brightness - 127.5).abs() < 0.01);
        // Odd sizes and a different size.
        let odd = grid(&plane(7, 5, |_, _| 9));
        assert_eq!(odd.brightness, 9.0);
        assert_eq!(motion(Some(&white), &odd), 1.0);
    }

    #[test]
    fn halving_averages_two_by_two_blocks() {
        let luma = plane(4, 2, |x, y| u8::try_from(x * 10 + y * 2).unwrap());
        let (pixels, w, h) = halve(&luma);
        assert_eq!((w, h), (2, 1));
        assert_eq!(pixels, vec![6, 26]);
    }
}
