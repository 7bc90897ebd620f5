//! One camera socket: frames in, one analysis out per processed frame.
//!
//! At most one frame is processed at a time, on the bounded video pool. A frame arriving
//! meanwhile waits in a single slot; a newer one replaces it (the older is dropped and
//! counted). So the answer to a frame is never more than one frame behind however fast the
//! camera sends, and memory per socket is two frames.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};
use base64::Engine;

use super::analysis::{self, Grid, Render};
use super::dto::{BarcodeOut, FrameAnalysis, Op, VideoClientFrame, VideoError};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::inventory::service as inventory;
use crate::state::AppState;

/// Bad frames in a row after which the socket is closed (1008, policy violation).
pub const MAX_BAD_IN_A_ROW: u32 = 10;

type Ops = BTreeSet<Op>;

/// Standard base64, with or without padding (both are common from cameras and browsers).
const FRAME_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// A frame waiting to be processed.
struct Frame {
    seq: u64,
    bytes: Vec<u8>,
    ops: Ops,
}

/// What the pool hands back for a frame.
struct Processed {
    seq: u64,
    ops: Ops,
    result: Result<Output, String>,
}

struct Output {
    width: u32,
    height: u32,
    brightness: f64,
    motion: f64,
    grid: Grid,
    codes: Vec<analysis::Code>,
    image: Option<String>,
    /// Decoding and analysis, measured on the pool.
    took: Duration,
}

type Running = Pin<Box<dyn Future<Output = Result<Processed, ApiError>>>>;

struct Socket {
    state: Arc<AppState>,
    principal: Principal,
    session: Session,
    /// The socket's ops (frames without their own use these).
    ops: Ops,
    /// Frames received so far.
    seq: u64,
    waiting: Option<Frame>,
    dropped: u64,
    previous: Option<Arc<Grid>>,
    bad_in_a_row: u32,
    last_heard: Instant,
}

enum End {
    Gone,
    Close(CloseCode, String),
}

/// Serves the socket until it ends, then closes it.
pub async fn run(
    state: Arc<AppState>,
    principal: Principal,
    session: Session,
    mut stream: AggregatedMessageStream,
) {
    let mut socket = Socket {
        state,
        principal,
        session,
        ops: Ops::new(),
        seq: 0,
        waiting: None,
        dropped: 0,
        previous: None,
        bad_in_a_row: 0,
        last_heard: Instant::now(),
    };
    let end = socket.serve(&mut stream).await;
    if let End::Close(code, description) = end {
        let reason = CloseReason {
            code,
            description: Some(description),
        };
        let grace = socket.state.settings.ws_ping_interval;
        let _ = tokio::time::timeout(grace, socket.session.close(Some(reason))).await;
    }
}

impl Socket {
    async fn serve(&mut self, stream: &mut AggregatedMessageStream) -> End {
        let interval = self.state.settings.ws_ping_interval;
        let mut heartbeat = tokio::time::interval(interval);
        heartbeat.tick().await;
        let mut running: Option<Running> = None;
        loop {
            if running.is_none() {
                if let Some(frame) = self.waiting.take() {
                    running = Some(self.start(frame));
                }
            }
            let step = tokio::select! {
                done = async { running.as_mut().expect("guarded").await }, if running.is_some() => {
                    running = None;
                    self.finish(done).await
                }
                message = stream.recv() => self.on_message(message).await,
                _ = heartbeat.tick() => self.on_heartbeat(interval).await,
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Hands `frame` to the pool.
    fn start(&mut self, frame: Frame) -> Running {
        let state = self.state.clone();
        let previous = self.previous.clone();
        let max_pixels = state.settings.video_max_pixels;
        Box::pin(async move {
            let Frame { seq, bytes, ops } = frame;
            let job_ops = ops.clone();
            let result = state
                .video
                .run(move || process(&bytes, &job_ops, previous.as_deref(), max_pixels))
                .await?;
            Ok(Processed { seq, ops, result })
        })
    }

    /// Answers a processed frame.
    async fn finish(&mut self, done: Result<Processed, ApiError>) -> Result<(), End> {
        let done = match done {
            Ok(done) => done,
            // The pool's queue is full: the frame is dropped like one a newer replaced.
            Err(ApiError::TooManyRequests { .. }) => {
                self.dropped += 1;
                return Ok(());
            }
            Err(e) => return Err(End::Close(CloseCode::Error, e.to_string())),
        };
        let output = match done.result {
            Ok(output) => output,
            Err(detail) => return self.bad(detail, Some(done.seq)).await,
        };
        self.bad_in_a_row = 0;
        self.previous = Some(Arc::new(output.grid));
        let mut barcodes = Vec::with_capacity(output.codes.len());
        for code in output.codes {
            let item = if done.ops.contains(&Op::Barcodes) {
                inventory::by_barcode(&self.state, &self.principal, code.text.clone())
                    .await
                    .unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "looking up a barcode failed");
                        None
                    })
            } else {
                None
            };
            barcodes.push(BarcodeOut {
                format: code.format,
                text: code.text,
                item,
            });
        }
        let answer = FrameAnalysis {
            seq: done.seq,
            width: output.width,
            height: output.height,
            brightness: round2(output.brightness),
            motion: round2(output.motion * 100.0) / 100.0,
            processing_ms: round2(output.took.as_secs_f64() * 1000.0),
            dropped: std::mem::take(&mut self.dropped),
            barcodes,
            image: output.image,
        };
        self.send(&answer).await
    }

    async fn on_message(
        &mut self,
        message: Option<Result<AggregatedMessage, actix_ws::ProtocolError>>,
    ) -> Result<(), End> {
        self.last_heard = Instant::now();
        let text = match message {
            None => return Err(End::Gone),
            Some(Err(actix_ws::ProtocolError::Overflow)) => {
                return Err(End::Close(
                    CloseCode::Size,
                    "the message is far larger than any accepted frame".to_owned(),
                ))
            }
            Some(Err(e)) => return Err(End::Close(CloseCode::Protocol, e.to_string())),
            Some(Ok(AggregatedMessage::Close(_))) => {
                return Err(End::Close(CloseCode::Normal, String::new()))
            }
            Some(Ok(AggregatedMessage::Ping(bytes))) => {
                return self.session.pong(&bytes).await.map_err(|_| End::Gone)
            }
            Some(Ok(AggregatedMessage::Pong(_))) => return Ok(()),
            Some(Ok(AggregatedMessage::Binary(bytes))) => {
                let ops = self.ops.clone();
                return self.receive(Ok(bytes.to_vec()), ops).await;
            }
            Some(Ok(AggregatedMessage::Text(text))) => text,
        };
        let text = text.trim();
        if text.starts_with('{') {
            let parsed: VideoClientFrame = match serde_json::from_str(text) {
                Ok(parsed) => parsed,
                Err(e) => return self.bad(format!("malformed JSON: {e}"), None).await,
            };
            let ops = parsed.ops.map(|ops| ops.into_iter().collect::<Ops>());
            match (parsed.frame, ops) {
                (None, Some(ops)) => {
                    self.ops = ops;
                    Ok(())
                }
                (None, None) => {
                    self.bad("send \"frame\", \"ops\" or both".to_owned(), None)
                        .await
                }
                (Some(frame), ops) => {
                    let ops = ops.unwrap_or_else(|| self.ops.clone());
                    let bytes = self.decode_base64(&frame);
                    self.receive(bytes, ops).await
                }
            }
        } else {
            let ops = self.ops.clone();
            let bytes = self.decode_base64(text);
            self.receive(bytes, ops).await
        }
    }

    /// The bytes of a base64 frame, plain or as a `data:` URL, within the size limit.
    fn decode_base64(&self, text: &str) -> Result<Vec<u8>, String> {
        decode_base64_frame(text, self.state.settings.video_max_frame_bytes)
    }

    /// A frame arrived (or failed to arrive intact): number it, then queue it.
    async fn receive(&mut self, bytes: Result<Vec<u8>, String>, ops: Ops) -> Result<(), End> {
        self.seq += 1;
        let seq = self.seq;
        let bytes = match bytes {
            Ok(bytes) => bytes,
            Err(detail) => return self.bad(detail, Some(seq)).await,
        };
        let max = self.state.settings.video_max_frame_bytes;
        if bytes.len() > max {
            return self
                .bad(format!("the frame is over {max} bytes"), Some(seq))
                .await;
        }
        if !analysis::is_frame(&bytes) {
            return self
                .bad("not a JPEG or PNG image".to_owned(), Some(seq))
                .await;
        }
        if self.waiting.replace(Frame { seq, bytes, ops }).is_some() {
            self.dropped += 1;
        }
        Ok(())
    }

    /// Tells the client what was wrong; a client that keeps sending garbage is closed.
    async fn bad(&mut self, detail: String, seq: Option<u64>) -> Result<(), End> {
        self.bad_in_a_row += 1;
        if self.bad_in_a_row > MAX_BAD_IN_A_ROW {
            return Err(End::Close(
                CloseCode::Policy,
                format!("{MAX_BAD_IN_A_ROW} bad frames in a row"),
            ));
        }
        let error = VideoError {
            kind: "error",
            detail,
            seq,
        };
        self.send(&error).await
    }

    async fn send<T: serde::Serialize>(&mut self, frame: &T) -> Result<(), End> {
        let text = serde_json::to_string(frame)
            .map_err(|e| End::Close(CloseCode::Error, e.to_string()))?;
        self.session.text(text).await.map_err(|_| End::Gone)
    }

    async fn on_heartbeat(&mut self, interval: Duration) -> Result<(), End> {
        if self.last_heard.elapsed() > interval * 2 {
            return Err(End::Close(
                CloseCode::Away,
                "no answer to pings: the connection is presumed dead".to_owned(),
            ));
        }
        self.session.ping(b"").await.map_err(|_| End::Gone)
    }
}

/// The bytes of a base64 frame, plain or as a `data:` URL, refused early when the text is
/// far over `max` bytes (`receive` checks the decoded length).
fn decode_base64_frame(text: &str, max: usize) -> Result<Vec<u8>, String> {
    let data = match text.strip_prefix("data:") {
        Some(url) => match url.split_once(";base64,") {
            Some((_, data)) => data,
            None => return Err("a data URL must be base64 (`;base64,`)".to_owned()),
        },
        None => text,
    };
    if data.len() / 4 * 3 > max {
        return Err(format!("the frame is over {max} bytes"));
    }
    // Line-wrapped base64 is accepted; most frames have no whitespace and are not copied.
    let decoded = if data.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        FRAME_BASE64.decode(compact)
    } else {
        FRAME_BASE64.decode(data)
    };
    decoded.map_err(|e| format!("malformed base64: {e}"))
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Decodes and analyses one frame (on the pool).
fn process(
    bytes: &[u8],
    ops: &Ops,
    previous: Option<&Grid>,
    max_pixels: u64,
) -> Result<Output, String> {
    let started = Instant::now();
    let luma = analysis::decode_luma(bytes, max_pixels)?;
    let grid = analysis::grid(&luma);
    let render = Render {
        grayscale: ops.contains(&Op::Grayscale),
        thumbnail: ops.contains(&Op::Thumbnail),
        edges: ops.contains(&Op::Edges),
    };
    let codes = if ops.contains(&Op::Barcodes) {
        analysis::barcodes(&luma)
    } else {
        Vec::new()
    };
    let image = analysis::render(bytes, &luma, render, max_pixels)?;
    Ok(Output {
        width: luma.width,
        height: luma.height,
        brightness: grid.brightness,
        motion: analysis::motion(previous, &grid),
        image,
        grid,
        codes,
        took: started.elapsed(),
    })
}

/// Property tests in place of fuzzing: cargo-fuzz needs a nightly toolchain, so the frame
/// path (JSON text frames, base64, decoding and analysis) gets arbitrary and mutated input
/// from proptest on stable. Each case count is small enough for CI (`PROPTEST_CASES`
/// overrides them all); the decoding ones run fewer.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    use crate::proptest_support::config;

    /// The default pixel limit (`STOCKROOM_VIDEO_MAX_PIXELS`), and a small one.
    const MAX_PIXELS: u64 = 8_294_400;
    const MAX_FRAME_BYTES: usize = 2 << 20;

    fn image(width: u32, height: u32, seed: u64, format: image::ImageFormat) -> Vec<u8> {
        let mut state = seed | 1;
        let img = image::RgbImage::from_fn(width, height, |x, y| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Smooth with some noise, like a camera.
            let base = u8::try_from((x * 7 + y * 3) % 256).unwrap_or(0);
            let [n, ..] = state.to_le_bytes();
            image::Rgb([base, base.wrapping_add(n % 16), 255 - base])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut out, format)
            .expect("encode");
        out.into_inner()
    }

    fn frame_image() -> impl Strategy<Value = Vec<u8>> {
        (1..48u32, 1..48u32, any::<u64>(), any::<bool>()).prop_map(|(w, h, seed, png)| {
            let format = if png {
                image::ImageFormat::Png
            } else {
                image::ImageFormat::Jpeg
            };
            image(w, h, seed, format)
        })
    }

    fn ops() -> impl Strategy<Value = Ops> {
        prop::collection::btree_set(
            prop::sample::select(vec![Op::Grayscale, Op::Thumbnail, Op::Edges, Op::Barcodes]),
            0..=4,
        )
    }

    /// Flipped, inserted and deleted bytes, and a truncation, anywhere past the signature.
    fn mutate(mut bytes: Vec<u8>, edits: &[(u8, usize, u8)]) -> Vec<u8> {
        for &(op, at, byte) in edits {
            let at = 3 + at % (bytes.len().saturating_sub(3) + 1);
            let at = at.min(bytes.len());
            match op % 5 {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                2 => {
                    let end = (at + usize::from(byte)).min(bytes.len());
                    bytes.drain(at..end);
                }
                3 => bytes.truncate(at),
                // A marker byte: JPEG segments start with 0xFF.
                _ => bytes.insert(at, 0xFF),
            }
        }
        bytes
    }

    /// Processes `bytes` as the pool does and checks the answer: an error, or an analysis
    /// that is consistent with itself, never a panic; and quickly.
    fn process_checked(bytes: &[u8], ops: &Ops, max_pixels: u64) -> Result<(), TestCaseError> {
        let started = Instant::now();
        let result = process(bytes, ops, None, max_pixels);
        prop_assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        match result {
            Ok(out) => {
                prop_assert!(u64::from(out.width) * u64::from(out.height) <= max_pixels);
                prop_assert!((0.0..=255.0).contains(&out.brightness));
                prop_assert_eq!(out.motion, 0.0);
                let wants_image = ops.contains(&Op::Grayscale)
                    || ops.contains(&Op::Thumbnail)
                    || ops.contains(&Op::Edges);
                prop_assert_eq!(out.image.is_some(), wants_image);
            }
            Err(detail) => prop_assert!(!detail.is_empty()),
        }
        Ok(())
    }

    /// A JPEG whose frame header (SOF) claims `width` × `height`.
    fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
        let mut jpeg = image(16, 16, 7, image::ImageFormat::Jpeg);
        let sof = jpeg
            .windows(2)
            .position(|w| w[0] == 0xFF && matches!(w[1], 0xC0..=0xC2))
            .expect("a SOF marker");
        // FF Cx, length (2), precision (1), height (2), width (2).
        jpeg[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
        jpeg
    }

    /// A PNG of a few dozen bytes whose header (IHDR, with a valid CRC) claims
    /// `width` × `height`.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut chunk = |kind: &[u8], data: &[u8]| {
            png.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
            let mut body = kind.to_vec();
            body.extend_from_slice(data);
            png.extend_from_slice(&body);
            png.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
        };
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        chunk(b"IHDR", &ihdr);
        chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
        chunk(b"IEND", &[]);
        png
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        crate::proptest_support::json_value(
            &["grayscale", "thumbnail", "edges", "barcodes", "Edges", ""],
            &["frame", "ops", "type", "seq", "x", "FRAME"],
        )
    }

    proptest! {
        #![proptest_config(config(1000))]

        /// Any JSON text frame: parsed or refused, never a panic; what parses has only the
        /// two known fields, and its error would be an `error` frame.
        #[test]
        fn json_text_frames_parse_or_are_refused(value in json_value(), raw in "\\{.{0,40}") {
            for text in [value.to_string(), raw] {
                // As the socket reads text frames: JSON only when it starts with `{`.
                if !text.trim().starts_with('{') {
                    continue;
                }
                match serde_json::from_str::<VideoClientFrame>(&text) {
                    Ok(frame) => {
                        let object = serde_json::from_str::<serde_json::Value>(&text)
                            .ok()
                            .and_then(|v| v.as_object().cloned());
                        let known = object.is_some_and(|o| o.keys().all(|k| k == "frame" || k == "ops"));
                        prop_assert!(known, "{text}");
                        if let Some(frame) = frame.frame {
                            let _ = decode_base64_frame(&frame, MAX_FRAME_BYTES);
                        }
                    }
                    Err(e) => {
                        let error = VideoError { kind: "error", detail: format!("malformed JSON: {e}"), seq: None };
                        let out = serde_json::to_value(&error).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert_eq!(&out["type"], "error");
                    }
                }
            }
        }

        /// Any text as a base64 frame: bytes or an error, never a panic, and never much more
        /// than the limit (`receive` then checks the exact length).
        #[test]
        fn arbitrary_text_as_base64_never_panics(
            text in prop_oneof![
                any::<String>(),
                "(data:[a-z/]{0,10}(;base64,)?)?[A-Za-z0-9+/= \r\n\t-]{0,200}",
            ],
            max in 1usize..256,
        ) {
            if let Ok(bytes) = decode_base64_frame(&text, max) {
                prop_assert!(bytes.len() <= max + 2, "{} bytes from {text:?}", bytes.len());
            }
        }

        /// Bytes come back from base64 however they are wrapped: padded or not, line-broken,
        /// plain or as a data URL.
        #[test]
        fn base64_frames_round_trip(
            bytes in prop::collection::vec(any::<u8>(), 0..300),
            padded in any::<bool>(),
            wrap in prop::option::of(1usize..80),
            data_url in any::<bool>(),
        ) {
            let mut text = base64::engine::general_purpose::STANDARD.encode(&bytes);
            if !padded {
                text = text.trim_end_matches('=').to_owned();
            }
            if let Some(width) = wrap {
                let chars: Vec<char> = text.chars().collect();
                text = chars.chunks(width).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("\r\n");
            }
            if data_url {
                text = format!("data:image/jpeg;base64,{text}");
            }
            prop_assert_eq!(decode_base64_frame(&text, MAX_FRAME_BYTES), Ok(bytes));
        }

        /// Any bytes, bare or behind a JPEG or PNG signature: an error, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(
            body in prop::collection::vec(any::<u8>(), 0..1024),
            signature in 0..3usize,
            ops in ops(),
        ) {
            let mut bytes = [&b""[..], &[0xFF, 0xD8, 0xFF], b"\x89PNG\r\n\x1a\n"][signature].to_vec();
            bytes.extend_from_slice(&body);
            process_checked(&bytes, &ops, MAX_PIXELS)?;
        }

        /// Arbitrary luma planes (any size, including 1 × n): the grid, motion and code
        /// reading never panic and stay in range.
        #[test]
        fn arbitrary_planes_are_analysed(
            width in 1u32..64,
            height in 1u32..64,
            seed in any::<u64>(),
            read_codes in any::<bool>(),
        ) {
            let mut state = seed | 1;
            let pixels = (0..width * height)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state.to_le_bytes()[0]
                })
                .collect();
            let luma = analysis::Luma { width, height, pixels };
            let grid = analysis::grid(&luma);
            prop_assert!((0.0..=255.0).contains(&grid.brightness));
            let previous = analysis::grid(&analysis::Luma { width, height, pixels: vec![128; (width * height) as usize] });
            let motion = analysis::motion(Some(&previous), &grid);
            prop_assert!((0.0..=1.0).contains(&motion));
            if read_codes {
                let _ = analysis::barcodes(&luma);
            }
        }
    }

    proptest! {
        #![proptest_config(config(200))]

        /// Valid frames, corrupted and truncated: an error or a consistent analysis, never a
        /// panic, whatever the ops.
        #[test]
        fn corrupted_frames_never_panic(
            bytes in frame_image(),
            edits in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6),
            ops in ops(),
        ) {
            process_checked(&mutate(bytes, &edits), &ops, MAX_PIXELS)?;
        }

        /// Truncated anywhere: never a panic.
        #[test]
        fn truncated_frames_never_panic(bytes in frame_image(), keep in any::<prop::sample::Index>(), ops in ops()) {
            let keep = keep.index(bytes.len());
            process_checked(&bytes[..keep], &ops, MAX_PIXELS)?;
        }

        /// Intact frames are analysed, at their size.
        #[test]
        fn valid_frames_are_analysed(bytes in frame_image(), ops in ops()) {
            let out = process(&bytes, &ops, None, MAX_PIXELS).map_err(TestCaseError::fail)?;
            let decoded = image::load_from_memory(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!((out.width, out.height), (decoded.width(), decoded.height()));
        }

        /// A header claiming more pixels than allowed is refused from the header, before
        /// any pixel buffer exists (the refusal names the size, and comes at once).
        #[test]
        fn oversized_headers_are_refused_before_decoding(
            width in 1u32..=1_000_000,
            height in 1u32..=1_000_000,
            png in any::<bool>(),
            ops in ops(),
        ) {
            // Sides within the limit on their own (a side past it is refused by the
            // decoder's own limits), their product over it.
            let max_pixels = 1_000_000;
            let (width, height) = if png {
                (width, height)
            } else {
                (width.min(u32::from(u16::MAX)), height.min(u32::from(u16::MAX)))
            };
            prop_assume!(u64::from(width) * u64::from(height) > max_pixels);
            let bytes = if png {
                png_claiming(width, height)
            } else {
                let side = |n: u32| u16::try_from(n).unwrap_or(u16::MAX);
                jpeg_claiming(side(width), side(height))
            };
            let started = Instant::now();
            let result = process(&bytes, &ops, None, max_pixels);
            prop_assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
            match result {
                Err(detail) => prop_assert!(detail.starts_with("the frame has"), "{detail}"),
                Ok(_) => prop_assert!(false, "a {width}×{height} header was decoded"),
            }
        }
    }
}
