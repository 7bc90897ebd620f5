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

/// Property tests in place of fuzzing: cargo-fuzz needs a nightly toolchain, so sniffing,
/// measuring and thumbnails get arbitrary bytes and mutated PNG, JPEG, WebP and PDF files
/// from proptest on stable. Each case count is small enough for CI (`PROPTEST_CASES`
/// overrides them all); the decoding ones run fewer.
#[cfg(test)]
mod fuzz {
    use std::time::{Duration, Instant};

    use proptest::prelude::*;

    use super::*;

    use crate::proptest_support::config;

    /// The default `STOCKROOM_MAX_IMAGE_PIXELS`.
    const MAX_PIXELS: u64 = 40_000_000;
    const FIELD: &str = "files[0]";

    fn encode(width: u32, height: u32, seed: u64, kind: Kind) -> Vec<u8> {
        let mut state = seed | 1;
        let img = image::RgbaImage::from_fn(width, height, |_, _| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let [r, g, b, a, ..] = state.to_le_bytes();
            image::Rgba([r, g, b, a | 0x80])
        });
        let image = DynamicImage::ImageRgba8(img);
        match kind {
            Kind::Jpeg => images::jpeg(&image, 80).expect("jpeg"),
            Kind::Pdf => {
                format!("%PDF-1.4\n1 0 obj << /Seed {seed} >> endobj\ntrailer << >>\n%%EOF\n")
                    .into_bytes()
            }
            Kind::Png | Kind::Webp => {
                let format = kind.image_format().unwrap_or(ImageFormat::Png);
                let mut out = std::io::Cursor::new(Vec::new());
                image.write_to(&mut out, format).expect("encode");
                out.into_inner()
            }
        }
    }

    fn kind() -> impl Strategy<Value = Kind> {
        prop::sample::select(vec![Kind::Jpeg, Kind::Png, Kind::Webp, Kind::Pdf])
    }

    fn valid_file() -> impl Strategy<Value = (Kind, Vec<u8>)> {
        (1..40u32, 1..40u32, any::<u64>(), kind())
            .prop_map(|(w, h, seed, kind)| (kind, encode(w, h, seed, kind)))
    }

    /// Flipped, inserted and deleted bytes, and a truncation, anywhere past the signature
    /// (so the file still sniffs as its kind, and reaches the decoder).
    fn mutate(mut bytes: Vec<u8>, edits: &[(u8, usize, u8)]) -> Vec<u8> {
        for &(op, at, byte) in edits {
            let at = (12 + at % (bytes.len().saturating_sub(12) + 1)).min(bytes.len());
            match op % 5 {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                2 => {
                    let end = (at + usize::from(byte)).min(bytes.len());
                    bytes.drain(at..end);
                }
                3 => bytes.truncate(at),
                _ => bytes.splice(at..at, [0xFF, byte]).for_each(drop),
            }
        }
        bytes
    }

    /// `measure` as an upload calls it: a size within the limit, or a 422 naming the part,
    /// never a 500 or a panic, and quickly. Then, as a stored file's thumbnail is made from
    /// what passed: a JPEG, or an error, never a panic.
    fn measure_checked(kind: Kind, bytes: &[u8], max_pixels: u64) -> Result<(), TestCaseError> {
        let started = Instant::now();
        let measured = measure(kind, bytes, max_pixels, FIELD);
        prop_assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        match measured {
            Ok((width, height)) => {
                prop_assert!(u64::from(width) * u64::from(height) <= max_pixels);
                let small = thumbnail(kind, bytes, 16, max_pixels);
                if let Ok(jpeg) = small {
                    prop_assert_eq!(sniff(&jpeg), Some(Kind::Jpeg));
                }
            }
            Err(ApiError::Validation { errors, .. }) => {
                prop_assert!(errors.keys().map(String::as_str).eq([FIELD]), "{errors:?}");
            }
            Err(other) => prop_assert!(false, "{kind:?}: {other:?}"),
        }
        Ok(())
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A small valid file of `kind` whose header says it is `width` × `height`.
    fn claiming(kind: Kind, width: u32, height: u32) -> Vec<u8> {
        let mut bytes = encode(8, 8, 3, kind);
        let find = |bytes: &[u8], what: &[u8]| {
            bytes
                .windows(what.len())
                .position(|w| w == what)
                .expect("the header")
        };
        match kind {
            Kind::Png => {
                // Length (4), "IHDR", width, height, …, CRC over type and data.
                let at = find(&bytes, b"IHDR");
                bytes[at + 4..at + 8].copy_from_slice(&width.to_be_bytes());
                bytes[at + 8..at + 12].copy_from_slice(&height.to_be_bytes());
                let crc = crc32(&bytes[at..at + 17]);
                bytes[at + 17..at + 21].copy_from_slice(&crc.to_be_bytes());
            }
            Kind::Jpeg => {
                // FF Cx, length (2), precision (1), height (2), width (2).
                let at = bytes
                    .windows(2)
                    .position(|w| w[0] == 0xFF && matches!(w[1], 0xC0..=0xC2))
                    .expect("a SOF marker");
                let side = |n: u32| u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes();
                bytes[at + 5..at + 7].copy_from_slice(&side(height));
                bytes[at + 7..at + 9].copy_from_slice(&side(width));
            }
            Kind::Webp => {
                // "VP8L", size (4), signature 0x2F, then 14 bits of width - 1 and of height
                // - 1, little-endian, before the alpha and version bits.
                let at = find(&bytes, b"VP8L") + 9;
                let old =
                    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
                let bits = (old & !0x0FFF_FFFF)
                    | ((width.clamp(1, 1 << 14) - 1) & 0x3FFF)
                    | (((height.clamp(1, 1 << 14) - 1) & 0x3FFF) << 14);
                bytes[at..at + 4].copy_from_slice(&bits.to_le_bytes());
            }
            Kind::Pdf => {}
        }
        bytes
    }

    proptest! {
        #![proptest_config(config(1000))]

        /// Any bytes: `sniff` answers from the signature alone, and never panics.
        #[test]
        fn sniff_reads_only_the_signature(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let expected = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
                Some(Kind::Jpeg)
            } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
                Some(Kind::Png)
            } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
                Some(Kind::Webp)
            } else if bytes.starts_with(b"%PDF-") {
                Some(Kind::Pdf)
            } else {
                None
            };
            prop_assert_eq!(sniff(&bytes), expected);
        }

        /// Any bytes behind any image kind's signature: a 422 or a size, never a panic.
        #[test]
        fn arbitrary_bytes_are_measured_or_refused(
            kind in prop::sample::select(vec![Kind::Jpeg, Kind::Png, Kind::Webp]),
            body in prop::collection::vec(any::<u8>(), 0..512),
            with_signature in any::<bool>(),
        ) {
            let mut bytes = match (with_signature, kind) {
                (false, _) => Vec::new(),
                (true, Kind::Jpeg) => vec![0xFF, 0xD8, 0xFF],
                (true, Kind::Png) => b"\x89PNG\r\n\x1a\n".to_vec(),
                (true, _) => b"RIFF\x00\x10\x00\x00WEBPVP8 ".to_vec(),
            };
            bytes.extend_from_slice(&body);
            measure_checked(kind, &bytes, MAX_PIXELS)?;
        }

        /// The non-image kind is never measured or thumbnailed: an error, not a panic.
        #[test]
        fn pdfs_are_never_decoded(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            prop_assert!(measure(Kind::Pdf, &bytes, MAX_PIXELS, FIELD).is_err());
            prop_assert!(thumbnail(Kind::Pdf, &bytes, 64, MAX_PIXELS).is_err());
        }

        /// An uploaded name, whatever it is: a plain file name (no directories, control or
        /// reserved characters, no leading dot), 1 to 255 bytes.
        #[test]
        fn filenames_are_sanitized(raw in prop_oneof![any::<String>(), "[./\\\\ a-z\"<>|*?:\u{0}\n\t\u{202e}é]{0,300}"]) {
            let clean = crate::files::service::sanitize_filename(&raw);
            prop_assert!(!clean.is_empty() && clean.len() <= 255, "{clean:?}");
            prop_assert!(!clean.starts_with('.'), "{clean:?}");
            prop_assert!(
                !clean.chars().any(|c| c.is_control() || "/\\\"<>|*?:".contains(c)),
                "{clean:?}"
            );
        }
    }

    proptest! {
        #![proptest_config(config(200))]

        /// Valid files of every kind sniff as that kind and measure at their size.
        #[test]
        fn valid_files_sniff_and_measure(
            width in 1..40u32,
            height in 1..40u32,
            seed in any::<u64>(),
            kind in kind(),
        ) {
            let bytes = encode(width, height, seed, kind);
            prop_assert_eq!(sniff(&bytes), Some(kind));
            if kind != Kind::Pdf {
                prop_assert_eq!(measure(kind, &bytes, MAX_PIXELS, FIELD).ok(), Some((width, height)));
                let small = thumbnail(kind, &bytes, 16, MAX_PIXELS).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(sniff(&small), Some(Kind::Jpeg));
            }
        }

        /// Valid files, corrupted or truncated past their signature: a 422 or a size, never
        /// a 500 or a panic.
        #[test]
        fn mutated_files_are_measured_or_refused(
            (kind, bytes) in valid_file(),
            edits in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6),
        ) {
            let bytes = mutate(bytes, &edits);
            let _ = sniff(&bytes);
            if kind != Kind::Pdf {
                measure_checked(kind, &bytes, MAX_PIXELS)?;
            }
        }

        /// A header claiming more pixels than allowed is refused with a 422 saying so, from
        /// the header, before any pixel buffer exists (so at once).
        #[test]
        fn over_limit_headers_are_refused(
            kind in prop::sample::select(vec![Kind::Jpeg, Kind::Png, Kind::Webp]),
            width in 1u32..=16_384,
            height in 1u32..=16_384,
        ) {
            let max_pixels = 1_000_000;
            prop_assume!(u64::from(width) * u64::from(height) > max_pixels);
            let bytes = claiming(kind, width, height);
            let started = Instant::now();
            let measured = measure(kind, &bytes, max_pixels, FIELD);
            prop_assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
            match measured {
                Err(ApiError::Validation { errors, .. }) => {
                    let message = errors.get(FIELD).and_then(|m| m.first()).cloned().unwrap_or_default();
                    prop_assert_eq!(
                        message,
                        format!("{width}×{height} is more than the {max_pixels} pixels allowed")
                    );
                }
                other => prop_assert!(false, "{kind:?} {width}×{height}: {other:?}"),
            }
        }
    }
}
