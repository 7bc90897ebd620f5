//! What a file is, decided from its bytes; images are measured from their header before
//! anything is decoded, then decoded under `image::Limits`.

use image::{DynamicImage, ImageFormat};

use crate::error::{ApiError, ApiResult, OrInternal};
use crate::images::{self, Bounds, Refused};

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
    match images::format_of(bytes) {
        Some(ImageFormat::Jpeg) => Some(Kind::Jpeg),
        Some(ImageFormat::Png) => Some(Kind::Png),
        Some(ImageFormat::WebP) => Some(Kind::Webp),
        _ if bytes.starts_with(b"%PDF-") => Some(Kind::Pdf),
        _ => None,
    }
}

/// Width and height, read from the header only: a tiny file claiming 50,000 × 50,000 pixels
/// is refused here, before any pixel buffer exists. Then the whole image is decoded under
/// limits, so a file that is not really an image is refused too.
pub fn measure(kind: Kind, bytes: &[u8], max_pixels: u64, field: &str) -> ApiResult<(u32, u32)> {
    let Some(format) = kind.image_format() else {
        return Err(ApiError::internal("measure called on a non-image"));
    };
    match images::decode(bytes, Some(format), Bounds::with_slack(max_pixels)) {
        Ok(image) => Ok((image.width(), image.height())),
        Err(Refused::TooManyPixels { width, height }) => Err(ApiError::field(
            field,
            format!("{width}×{height} is more than the {max_pixels} pixels allowed"),
        )),
        Err(Refused::Undecodable(e)) => Err(ApiError::field(
            field,
            format!("is not a decodable {}: {e}", kind.content_type()),
        )),
    }
}

/// A JPEG thumbnail fitting in `size` × `size`, keeping the aspect ratio.
pub fn thumbnail(kind: Kind, bytes: &[u8], size: u32, max_pixels: u64) -> ApiResult<Vec<u8>> {
    let format = kind
        .image_format()
        .ok_or_else(|| ApiError::internal("thumbnail of a non-image"))?;
    let image = images::decode_within_limits(bytes, Some(format), Bounds::with_slack(max_pixels))
        .or_internal()?;
    let small = DynamicImage::ImageRgb8(image.thumbnail(size, size).into_rgb8());
    images::jpeg(&small, 85).or_internal()
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
