use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::inventory::dto::ItemView;

/// What a frame may ask for besides the analysis.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// The frame in grey, as base64 JPEG in `image`.
    Grayscale,
    /// The frame scaled to fit 160×160, as base64 JPEG in `image`.
    Thumbnail,
    /// Edge strength (Sobel), as base64 JPEG in `image`.
    Edges,
    /// Read barcodes and QR codes (costs far more than the rest).
    Barcodes,
}

/// A JSON text frame: a frame with its own ops, or (without `frame`) the socket's ops from
/// now on. A binary frame (JPEG or PNG bytes) or a text frame holding base64 (plain or a
/// `data:image/jpeg;base64,` URL) is a frame with the socket's ops.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VideoClientFrame {
    /// The image, base64 (plain or a data URL).
    pub frame: Option<String>,
    pub ops: Option<Vec<Op>>,
}

/// A code read in a frame.
#[derive(Debug, Serialize, ToSchema)]
pub struct BarcodeOut {
    /// `ean_13`, `ean_8`, `upc_a`, `upc_e`, `code_128`, `code_39` or `qr_code`.
    pub format: &'static str,
    pub text: String,
    /// The item with this barcode, as `GET /api/v1/items/{id}` shows it to the caller; absent
    /// when there is none or the caller may not see it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<ItemView>,
}

/// The analysis of one frame.
#[derive(Debug, Serialize, ToSchema)]
pub struct FrameAnalysis {
    /// The frame's number among those this socket received (from 1): dropped frames leave gaps.
    pub seq: u64,
    pub width: u32,
    pub height: u32,
    /// Mean luma, 0–255.
    pub brightness: f64,
    /// Share of the frame (0–1) that changed since this socket's previous frame.
    pub motion: f64,
    /// Decoding and analysis time on the server.
    pub processing_ms: f64,
    /// Frames dropped since the previous answer (a newer one replaced them while this socket
    /// was busy).
    pub dropped: u64,
    /// Codes read in the frame; `[]` unless `barcodes` is among the ops.
    pub barcodes: Vec<BarcodeOut>,
    /// The processed frame as base64 JPEG, when `grayscale`, `thumbnail` or `edges` asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// A frame or message that could not be handled; the socket stays open.
#[derive(Debug, Serialize, ToSchema)]
pub struct VideoError {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub detail: String,
    /// The frame it concerns, when it was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}
