//! What a file is, decided from its bytes; images are measured from their header before
//! anything is decoded, then decoded under `image::Limits`.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

use crate::error::{ApiError, ApiResult, OrInternal};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Jpeg,
    Png,
    Webp,
    Pdf,
}

impl Kind {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
            Self::Pdf => "application/pdf",
        }
    }

    fn image_format(self) -> Option<ImageFormat> {
        match self {
            Self::Jpeg => Some(ImageFormat::Jpeg),
            Self::Png => Some(ImageFormat::Png),
            Self::Webp => Some(ImageFormat::WebP),
            Self::Pdf => None,
        }
    }

    pub fn from_content_type(content_type: &str) -> Option<Self> {
        [Self::Jpeg, Self::Png, Self::Webp, Self::Pdf]
            .into_iter()
            .find(|k| k.content_type() == content_type)
    }
}

/// The kind named by the file's magic bytes, whatever its name or declared type says.
pub fn sniff(bytes: &[u8]) -> Option<Kind> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Kind::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Kind::Png)
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(Kind::Webp)
    } else if bytes.starts_with(b"%PDF-") {
        Some(Kind::Pdf)
    } else {
        None
    }
}

fn limits(max_pixels: u64) -> Limits {
    let mut limits = Limits::default();
    // A side may not exceed the pixel budget on its own, and decoding may not allocate
    // more than four bytes per allowed pixel plus slack.
    let side = u32::try_from(max_pixels).unwrap_or(u32::MAX);
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    limits.max_alloc = Some(max_pixels.saturating_mul(4).saturating_add(64 << 20));
    limits
}

/// Width and height, read from the header only: a tiny file claiming 50,000 × 50,000 pixels
/// is refused here, before any pixel buffer exists. Then the whole image is decoded under
/// limits, so a file that is not really an image is refused too.
pub fn measure(kind: Kind, bytes: &[u8], max_pixels: u64, field: &str) -> ApiResult<(u32, u32)> {
    let Some(format) = kind.image_format() else {
        return Err(ApiError::internal("measure called on a non-image"));
    };
    let not_image = |e: image::ImageError| {
        ApiError::field(
            field,
            format!("is not a decodable {}: {e}", kind.content_type()),
        )
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits(max_pixels));
    let (width, height) = reader.into_dimensions().map_err(not_image)?;
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ApiError::field(
            field,
            format!("{width}×{height} is more than the {max_pixels} pixels allowed"),
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits(max_pixels));
    reader.decode().map_err(not_image)?;
    Ok((width, height))
}

/// A JPEG thumbnail fitting in `size` × `size`, keeping the aspect ratio.
pub fn thumbnail(kind: Kind, bytes: &[u8], size: u32, max_pixels: u64) -> ApiResult<Vec<u8>> {
    let format = kind
        .image_format()
        .ok_or_else(|| ApiError::internal("thumbnail of a non-image"))?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits(max_pixels));
    let image = reader.decode().or_internal()?;
    let small = image.thumbnail(size, size).into_rgb8();
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
    small.write_with_encoder(encoder).or_internal()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_from_bytes_not_names() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some(Kind::Png));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Kind::Jpeg));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Kind::Webp));
        assert_eq!(sniff(b"%PDF-1.7"), Some(Kind::Pdf));
        assert_eq!(sniff(b"hello, I am text"), None);
    }
}
