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
        let data = match text.strip_prefix("data:") {
            Some(url) => match url.split_once(";base64,") {
                Some((_, data)) => data,
                None => return Err("a data URL must be base64 (`;base64,`)".to_owned()),
            },
            None => text,
        };
        let max = self.state.settings.video_max_frame_bytes;
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
