//! Decoding images under bounds, shared by uploads and camera frames: the size is read from
//! the header first, so a tiny file claiming 50,000 × 50,000 pixels is refused before any
//! pixel buffer exists, then the image is decoded under `image::Limits`.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// Why an image was not decoded.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Its header says it has more pixels than allowed.
    #[error("{width}×{height} pixels is more than allowed")]
    TooManyPixels { width: u32, height: u32 },
    /// It is not a decodable image of its format.
    #[error("not a decodable image: {0}")]
    Undecodable(image::ImageError),
}

/// The raster format named by the bytes' signature (JPEG, PNG or WebP), whatever a file's
/// name or declared type says.
pub fn format_of(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(ImageFormat::WebP)
    } else {
        None
    }
}

/// How big an image may be, and what decoding it may allocate.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_pixels: u64,
    pub max_alloc: u64,
}

impl Bounds {
    /// Four bytes per allowed pixel plus 64 MiB for the decoder's own buffers.
    pub fn with_slack(max_pixels: u64) -> Self {
        Self {
            max_pixels,
            max_alloc: max_pixels.saturating_mul(4).saturating_add(64 << 20),
        }
    }
}

/// A reader under `bounds`; a side may not exceed `size` (the header's, once it is known;
/// else the pixel budget on its own).
fn reader(
    bytes: &[u8],
    format: Option<ImageFormat>,
    bounds: Bounds,
    size: Option<(u32, u32)>,
) -> Result<ImageReader<Cursor<&[u8]>>, Refused> {
    let mut reader = match format {
        Some(format) => ImageReader::with_format(Cursor::new(bytes), format),
        None => ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| Refused::Undecodable(e.into()))?,
    };
    let side = u32::try_from(bounds.max_pixels).unwrap_or(u32::MAX);
    let (width, height) = size.unwrap_or((side, side));
    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    limits.max_alloc = Some(bounds.max_alloc);
    reader.limits(limits);
    Ok(reader)
}

/// Width and height from the header alone, refused past `bounds.max_pixels`.
pub fn dimensions(
    bytes: &[u8],
    format: Option<ImageFormat>,
    bounds: Bounds,
) -> Result<(u32, u32), Refused> {
    let (width, height) = reader(bytes, format, bounds, None)?
        .into_dimensions()
        .map_err(Refused::Undecodable)?;
    if u64::from(width) * u64::from(height) > bounds.max_pixels {
        return Err(Refused::TooManyPixels { width, height });
    }
    Ok((width, height))
}

/// The whole image (`format` guessed from the bytes when `None`), once its header passed
/// [`dimensions`], no larger than that header said.
pub fn decode(
    bytes: &[u8],
    format: Option<ImageFormat>,
    bounds: Bounds,
) -> Result<DynamicImage, Refused> {
    let size = dimensions(bytes, format, bounds)?;
    reader(bytes, format, bounds, Some(size))?
        .decode()
        .map_err(Refused::Undecodable)
}

/// The whole image under `image::Limits` alone, without the pixel count check of
/// [`decode`]: for bytes that passed it when they were stored.
pub fn decode_within_limits(
    bytes: &[u8],
    format: Option<ImageFormat>,
    bounds: Bounds,
) -> Result<DynamicImage, Refused> {
    reader(bytes, format, bounds, None)?
        .decode()
        .map_err(Refused::Undecodable)
}

/// `image` as a JPEG of this quality (colour or grey as it is; other layouts as RGB).
pub fn jpeg(image: &DynamicImage, quality: u8) -> Result<Vec<u8>, image::ImageError> {
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    match image {
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => {
            image.write_with_encoder(encoder)?
        }
        other => DynamicImage::ImageRgb8(other.to_rgb8()).write_with_encoder(encoder)?,
    }
    Ok(out)
}
