//! Benchmark of the camera socket (not a test): frames per second and latency for 640×480
//! JPEG frames, one socket, each frame sent when the previous answer arrived (the rate a
//! camera gets when it sends as fast as the server answers).
//!
//! ```sh
//! cargo run --release -- serve &     # with an owner (STOCKROOM_OWNER_* or --demo)
//! cargo run --release --example video_bench -- --url http://127.0.0.1:8080 --login owner --password '…'
//! ```
//!
//! Scenarios: no op; `barcodes` on a frame without a code; `barcodes` on a frame with an
//! EAN-13; `thumbnail`. The frame is a textured scene (a gradient with noise, about 60 KB, as
//! a camera's JPEG would be), the code drawn into it.

use std::time::{Duration, Instant};

use awc::ws::{Frame, Message};
use clap::Parser;
use futures::{SinkExt, StreamExt};
use image::{DynamicImage, RgbImage};
use rxing::{BarcodeFormat, MultiFormatWriter, Writer};
use serde_json::{json, Value};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long)]
    login: String,
    #[arg(long)]
    password: String,
    /// How long each scenario runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

const W: u32 = 640;
const H: u32 = 480;

fn scene() -> RgbImage {
    let mut state = 0x9E37_79B9u32;
    RgbImage::from_fn(W, H, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let grain = i32::from(state.to_le_bytes()[0] % 24) - 12;
        let base = i32::try_from((x + 2 * y) % 512 / 2).unwrap_or(0);
        let v = |shift: i32| u8::try_from((base + shift + grain).clamp(0, 255)).unwrap_or(0);
        image::Rgb([v(0), v(30), v(-30)])
    })
}

fn jpeg(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80);
    DynamicImage::ImageRgb8(image.clone())
        .write_with_encoder(encoder)
        .expect("encode");
    out
}

fn with_ean13(mut image: RgbImage) -> RgbImage {
    let matrix = MultiFormatWriter
        .encode("4006381333931", &BarcodeFormat::EAN_13, 0, 0)
        .expect("draw EAN-13");
    let module = 3;
    let (cw, ch) = (matrix.width() * module, 140);
    let (x0, y0) = ((W - cw) / 2, (H - ch) / 2);
    // A white label with the bars, as on a package.
    for y in y0 - 20..y0 + ch + 20 {
        for x in x0 - 30..x0 + cw + 30 {
            let inside = (x0..x0 + cw).contains(&x) && (y0..y0 + ch).contains(&y);
            let black = inside && matrix.get((x - x0) / module, 0);
            let v = if black { 10 } else { 245 };
            image.put_pixel(x, y, image::Rgb([v, v, v]));
        }
    }
    image
}

struct Stats {
    frames: usize,
    seconds: f64,
    latencies: Vec<Duration>,
    processing: Vec<f64>,
    dropped: u64,
    codes: usize,
}

async fn run(
    url: &str,
    token: &str,
    frame: &[u8],
    ops: &[&str],
    seconds: u64,
) -> Result<Stats, String> {
    let ws_url = format!("{}/api/ws/video", url.replacen("http", "ws", 1));
    let (_, mut socket) = awc::Client::new()
        .ws(ws_url)
        .bearer_auth(token)
        .max_frame_size(16 << 20)
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    socket
        .send(Message::Text(json!({"ops": ops}).to_string().into()))
        .await
        .map_err(|e| e.to_string())?;
    let mut stats = Stats {
        frames: 0,
        seconds: 0.0,
        latencies: Vec::new(),
        processing: Vec::new(),
        dropped: 0,
        codes: 0,
    };
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    while Instant::now() < until {
        let sent = Instant::now();
        socket
            .send(Message::Binary(frame.to_vec().into()))
            .await
            .map_err(|e| e.to_string())?;
        let answer: Value = loop {
            match socket.next().await {
                Some(Ok(Frame::Text(text))) => {
                    break serde_json::from_slice(&text).map_err(|e| e.to_string())?
                }
                Some(Ok(Frame::Ping(p))) => {
                    let _ = socket.send(Message::Pong(p)).await;
                }
                Some(Ok(_)) => {}
                other => return Err(format!("the socket ended: {other:?}")),
            }
        };
        if answer["type"] == "error" {
            return Err(format!("error frame: {answer}"));
        }
        stats.latencies.push(sent.elapsed());
        stats
            .processing
            .push(answer["processing_ms"].as_f64().unwrap_or_default());
        stats.dropped += answer["dropped"].as_u64().unwrap_or_default();
        stats.codes += answer["barcodes"].as_array().map_or(0, Vec::len);
        stats.frames += 1;
    }
    stats.seconds = started.elapsed().as_secs_f64();
    Ok(stats)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(at).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[actix_rt::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let login: Value = awc::Client::new()
        .post(format!("{}/api/v1/auth/login", args.url))
        .send_json(&json!({"login": args.login, "password": args.password}))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let token = login["access_token"]
        .as_str()
        .ok_or(format!("login failed: {login}"))?
        .to_owned();
    let plain = jpeg(&scene());
    let coded = jpeg(&with_ean13(scene()));
    println!(
        "640×480 JPEG frames ({} bytes plain, {} with the code), one socket, {} s each\n",
        plain.len(),
        coded.len(),
        args.seconds
    );
    println!("| scenario | frames/s | p50 ms | p99 ms | max ms | server processing p50 ms | codes read per frame |");
    println!("|---|---|---|---|---|---|---|");
    for (name, frame, ops) in [
        ("no op", &plain, vec![]),
        ("`barcodes`, no code in view", &plain, vec!["barcodes"]),
        ("`barcodes`, an EAN-13 in view", &coded, vec!["barcodes"]),
        ("`thumbnail`", &plain, vec!["thumbnail"]),
    ] {
        let mut stats = run(&args.url, &token, frame, &ops, args.seconds).await?;
        stats.latencies.sort_unstable();
        stats.processing.sort_by(f64::total_cmp);
        let processing = stats.processing[stats.processing.len() / 2];
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} | {:.2} | {processing:.2} | {:.2} |",
            stats.frames as f64 / stats.seconds,
            percentile(&stats.latencies, 0.5),
            percentile(&stats.latencies, 0.99),
            percentile(&stats.latencies, 1.0),
            stats.codes as f64 / stats.frames.max(1) as f64,
        );
        assert_eq!(stats.dropped, 0, "one frame at a time drops nothing");
    }
    Ok(())
}
