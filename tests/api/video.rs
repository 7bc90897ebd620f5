//! The camera socket: frames in every accepted form, the analysis, barcodes drawn into real
//! 640×480 JPEG frames and matched to items, bad input, and backpressure.

use base64::Engine;
use image::{DynamicImage, GrayImage, ImageFormat, Luma, RgbImage};
use rxing::{BarcodeFormat, MultiFormatWriter, Writer};
use serde_json::{json, Value};

use crate::common::socket::{Ended, Ws};
use crate::common::TestApp;

const W: u32 = 640;
const H: u32 = 480;

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

fn jpeg(image: DynamicImage) -> Vec<u8> {
    encode(&image, ImageFormat::Jpeg)
}

fn solid(value: u8) -> Vec<u8> {
    jpeg(DynamicImage::ImageLuma8(GrayImage::from_pixel(
        W,
        H,
        Luma([value]),
    )))
}

/// A diagonal gradient, shifted by `shift` pixels: frames that differ everywhere.
fn gradient(shift: u32) -> Vec<u8> {
    let image = RgbImage::from_fn(W, H, |x, y| {
        let v = u8::try_from(((x + y + shift) / 5) % 256).unwrap_or(0);
        image::Rgb([v, v / 2, 255 - v])
    });
    jpeg(DynamicImage::ImageRgb8(image))
}

/// `gradient(0)` with its left quarter painted black.
fn covered_gradient() -> Vec<u8> {
    let mut image = image::load_from_memory(&gradient(0)).unwrap().to_rgb8();
    for (x, _, pixel) in image.enumerate_pixels_mut() {
        if x < W / 4 {
            *pixel = image::Rgb([0, 0, 0]);
        }
    }
    jpeg(DynamicImage::ImageRgb8(image))
}

/// Noise: a frame that compresses badly.
fn noise(width: u32, height: u32) -> Vec<u8> {
    let mut state = 2_654_435_761u32;
    let image = RgbImage::from_fn(width, height, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [a, b, c, _] = state.to_le_bytes();
        image::Rgb([a, b, c])
    });
    jpeg(DynamicImage::ImageRgb8(image))
}

/// A white 640×480 frame with `text` drawn as `format`, `module` pixels per module.
fn code_frame(text: &str, format: BarcodeFormat, module: u32) -> Vec<u8> {
    code_frame_sized(text, format, module, W, H)
}

fn code_frame_sized(
    text: &str,
    format: BarcodeFormat,
    module: u32,
    width: u32,
    height: u32,
) -> Vec<u8> {
    let matrix = MultiFormatWriter
        .encode(text, &format, 0, 0)
        .expect("rxing draws the code");
    let (mw, mh) = (matrix.width(), matrix.height());
    let one_dimensional = format != BarcodeFormat::QR_CODE;
    let (cw, ch) = if one_dimensional {
        (mw * module, 160)
    } else {
        (mw * module, mh * module)
    };
    assert!(
        cw + 40 < width && ch + 40 < height,
        "{cw}×{ch} does not fit"
    );
    let (x0, y0) = ((width - cw) / 2, (height - ch) / 2);
    let image = GrayImage::from_fn(width, height, |x, y| {
        let inside = (x0..x0 + cw).contains(&x) && (y0..y0 + ch).contains(&y);
        let black = inside && {
            let mx = (x - x0) / module;
            let my = if one_dimensional {
                0
            } else {
                (y - y0) / module
            };
            matrix.get(mx, my)
        };
        Luma([if black { 0 } else { 255 }])
    });
    jpeg(DynamicImage::ImageLuma8(image))
}

async fn video(app: &TestApp, token: &str) -> Ws {
    app.try_socket("/api/ws/video", Some(token))
        .await
        .unwrap_or_else(|status| panic!("video socket refused with {status}"))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn decoded_image(answer: &Value) -> DynamicImage {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(answer["image"].as_str().expect("an image"))
        .expect("base64");
    assert!(bytes.starts_with(&[0xFF, 0xD8, 0xFF]), "a JPEG");
    image::load_from_memory(&bytes).expect("a decodable JPEG")
}

#[actix_rt::test]
async fn frames_arrive_in_every_form_and_are_analysed() {
    let app = TestApp::spawn().await;
    let customer = app.customer("carol").await;
    assert_eq!(app.try_socket("/api/ws/video", None).await.err(), Some(401));
    let mut ws = video(&app, &customer.token).await;

    let white = solid(255);
    ws.send_binary(white.clone()).await;
    let first = ws.next().await;
    assert_eq!(first["seq"], 1);
    assert_eq!(
        (first["width"].as_u64(), first["height"].as_u64()),
        (Some(640), Some(480))
    );
    assert!(first["brightness"].as_f64().unwrap() > 250.0, "{first}");
    assert_eq!(first["motion"], 0.0);
    assert_eq!(first["dropped"], 0);
    assert_eq!(first["barcodes"], json!([]));
    assert!(
        first.get("image").is_none(),
        "nothing is re-encoded without an op"
    );
    assert!(first["processing_ms"].as_f64().unwrap() >= 0.0);

    // The same frame as plain base64: nothing moved.
    ws.send_text(b64(&white)).await;
    let second = ws.next().await;
    assert_eq!(second["seq"], 2);
    assert_eq!(second["motion"], 0.0);

    // Black, as a data URL: dark, and everything changed.
    ws.send_text(format!("data:image/jpeg;base64,{}", b64(&solid(0))))
        .await;
    let third = ws.next().await;
    assert_eq!(third["seq"], 3);
    assert!(third["brightness"].as_f64().unwrap() < 5.0, "{third}");
    assert_eq!(third["motion"], 1.0);

    // JSON with a frame; a gradient, then the same with its left quarter covered.
    ws.send(json!({"frame": b64(&gradient(0))})).await;
    let fourth = ws.next().await;
    assert_eq!(fourth["seq"], 4);
    ws.send(json!({"frame": b64(&covered_gradient())})).await;
    let fifth = ws.next().await;
    let motion = fifth["motion"].as_f64().unwrap();
    assert!((0.2..=0.3).contains(&motion), "{fifth}");

    // PNG bytes are frames too.
    let png = encode(
        &DynamicImage::ImageLuma8(GrayImage::from_pixel(320, 200, Luma([128]))),
        ImageFormat::Png,
    );
    ws.send_binary(png).await;
    let sixth = ws.next().await;
    assert_eq!(sixth["seq"], 6);
    assert_eq!(
        (sixth["width"].as_u64(), sixth["height"].as_u64()),
        (Some(320), Some(200))
    );
    assert!((sixth["brightness"].as_f64().unwrap() - 128.0).abs() < 1.0);
}

#[actix_rt::test]
async fn ops_return_the_processed_frame() {
    let app = TestApp::spawn().await;
    let customer = app.customer("carol").await;
    let mut ws = video(&app, &customer.token).await;
    let frame = gradient(0);

    ws.send(json!({"ops": ["grayscale"]})).await;
    ws.send_binary(frame.clone()).await;
    let gray = decoded_image(&ws.next().await);
    assert_eq!((gray.width(), gray.height()), (W, H));
    assert_eq!(gray.color().channel_count(), 1);

    ws.send(json!({"frame": b64(&frame), "ops": ["thumbnail"]}))
        .await;
    let thumb = decoded_image(&ws.next().await);
    assert_eq!((thumb.width(), thumb.height()), (160, 120));
    assert_eq!(thumb.color().channel_count(), 3);

    ws.send(json!({"frame": b64(&frame), "ops": ["edges"]}))
        .await;
    let edges = decoded_image(&ws.next().await);
    assert_eq!((edges.width(), edges.height()), (W, H));

    // The socket's ops still apply to frames without their own.
    ws.send_binary(frame.clone()).await;
    assert!(ws.next().await["image"].is_string());
    ws.send(json!({"ops": []})).await;
    ws.send_binary(frame).await;
    assert!(ws.next().await.get("image").is_none());
}

#[actix_rt::test]
async fn barcodes_are_read_and_matched_to_the_items_the_caller_may_see() {
    let app = TestApp::spawn().await;
    let owner = app.owner("olivia").await;
    let codes = [
        ("4006381333931", BarcodeFormat::EAN_13, "ean_13", 3),
        ("SR-0001-MILK", BarcodeFormat::CODE_128, "code_128", 3),
        (
            "stockroom:item:oat-milk",
            BarcodeFormat::QR_CODE,
            "qr_code",
            8,
        ),
    ];
    let mut items = Vec::new();
    for (n, (text, ..)) in codes.iter().enumerate() {
        let item = app
            .post(
                "/api/v1/items",
                Some(&owner.token),
                json!({"name": format!("thing {n}"), "kind": "non_perishable", "barcode": text, "quantity": 5}),
            )
            .await
            .ok(201);
        items.push(item["id"].as_i64().unwrap());
    }
    let bot = app
        .post(
            "/api/v1/bots",
            Some(&owner.token),
            json!({"name": "camera"}),
        )
        .await
        .ok(201);
    let bot_token = bot["token"].as_str().unwrap().to_owned();

    let mut staff = video(&app, &owner.token).await;
    let mut camera = app
        .try_socket(&format!("/api/ws/video?access_token={bot_token}"), None)
        .await
        .expect("a bot opens the camera socket");
    for ((text, format, name, module), item) in codes.iter().zip(&items) {
        let frame = code_frame(text, *format, *module);
        // Without the op, nothing is read.
        staff.send_binary(frame.clone()).await;
        assert_eq!(staff.next().await["barcodes"], json!([]));

        staff
            .send(json!({"frame": b64(&frame), "ops": ["barcodes"]}))
            .await;
        let answer = staff.next().await;
        let found = answer["barcodes"].as_array().unwrap();
        assert_eq!(found.len(), 1, "{name}: {answer}");
        assert_eq!(found[0]["text"], *text);
        assert_eq!(found[0]["format"], *name);
        assert_eq!(found[0]["item"]["id"], *item, "{answer}");

        camera
            .send(json!({"frame": b64(&frame), "ops": ["barcodes"]}))
            .await;
        let seen = camera.next().await;
        assert_eq!(seen["barcodes"][0]["text"], *text);
        assert!(
            seen["barcodes"][0].get("item").is_none(),
            "bots see no items: {seen}"
        );
    }
    // A full-HD frame is read at half size, its code still found.
    let wide = code_frame_sized("4006381333931", BarcodeFormat::EAN_13, 4, 1920, 1080);
    staff
        .send(json!({"frame": b64(&wide), "ops": ["barcodes"]}))
        .await;
    let answer = staff.next().await;
    assert_eq!(answer["width"], 1920);
    assert_eq!(answer["barcodes"][0]["text"], "4006381333931", "{answer}");
    // A frame without a code reads nothing.
    staff
        .send(json!({"frame": b64(&gradient(0)), "ops": ["barcodes"]}))
        .await;
    assert_eq!(staff.next().await["barcodes"], json!([]));
}

#[actix_rt::test]
async fn bad_frames_get_errors_and_a_client_that_keeps_sending_them_is_closed() {
    let app = TestApp::spawn().await;
    let customer = app.customer("carol").await;
    let mut ws = video(&app, &customer.token).await;
    for bad in [
        Bad::Binary(b"\xFF\xD8\xFFnot really a jpeg".to_vec()),
        Bad::Binary(b"GIF89a".to_vec()),
        Bad::Text("this is not base64!".to_owned()),
        Bad::Text("data:image/jpeg,plain".to_owned()),
        Bad::Text("{\"frame\": ".to_owned()),
        Bad::Text("{}".to_owned()),
        Bad::Text("{\"ops\": [\"sharpen\"]}".to_owned()),
    ] {
        match &bad {
            Bad::Binary(bytes) => ws.send_binary(bytes.clone()).await,
            Bad::Text(text) => ws.send_text(text.clone()).await,
        }
        let error = ws.next().await;
        assert_eq!(error["type"], "error", "{bad:?}: {error}");
        assert!(!error["detail"].as_str().unwrap().is_empty());
    }
    // Still open, and a good frame resets the count.
    ws.send_binary(solid(200)).await;
    let good = ws.next().await;
    assert_eq!(good["width"], 640);
    for _ in 0..10 {
        ws.send_binary(b"garbage".to_vec()).await;
        assert_eq!(ws.next().await["type"], "error");
    }
    ws.send_binary(b"garbage".to_vec()).await;
    let (ended, _) = ws.until_end().await;
    assert_eq!(ended, Ended::Closed(Some(1008)));
}

#[derive(Debug)]
enum Bad {
    Binary(Vec<u8>),
    Text(String),
}

#[actix_rt::test]
async fn frames_over_the_byte_or_pixel_limits_are_refused_without_closing() {
    let app = TestApp::builder()
        .env("STOCKROOM_VIDEO_MAX_FRAME_BYTES", "20000")
        .env("STOCKROOM_VIDEO_MAX_PIXELS", "100000")
        .spawn()
        .await;
    let customer = app.customer("carol").await;
    let mut ws = video(&app, &customer.token).await;
    let big = noise(200, 150);
    assert!(big.len() > 20_000 && big.len() < 60_000, "{}", big.len());
    ws.send_binary(big.clone()).await;
    let error = ws.next().await;
    assert_eq!(error["type"], "error");
    assert!(
        error["detail"].as_str().unwrap().contains("bytes"),
        "{error}"
    );
    ws.send_text(b64(&big)).await;
    assert_eq!(ws.next().await["type"], "error");
    // 640×480 of one grey is small in bytes but over the pixel limit.
    let many_pixels = solid(90);
    assert!(many_pixels.len() < 20_000);
    ws.send_binary(many_pixels).await;
    let error = ws.next().await;
    assert!(
        error["detail"].as_str().unwrap().contains("pixels"),
        "{error}"
    );
    let small = jpeg(DynamicImage::ImageLuma8(GrayImage::from_pixel(
        320,
        240,
        Luma([90]),
    )));
    ws.send_binary(small).await;
    assert_eq!(ws.next().await["width"], 320);
}

#[actix_rt::test]
async fn frames_sent_at_once_drop_the_stale_ones_and_answer_the_newest() {
    let app = TestApp::spawn().await;
    let customer = app.customer("carol").await;
    let mut ws = video(&app, &customer.token).await;
    ws.send(json!({"ops": ["barcodes"]})).await;
    let frames: Vec<Vec<u8>> = (0..5).map(|n| gradient(n * 7)).collect();
    for n in 0..50 {
        ws.send_binary(frames[n % frames.len()].clone()).await;
    }
    let mut answers = Vec::new();
    loop {
        let answer = ws.next().await;
        let seq = answer["seq"].as_u64().unwrap();
        answers.push(answer);
        if seq == 50 {
            break;
        }
    }
    let dropped: u64 = answers.iter().map(|a| a["dropped"].as_u64().unwrap()).sum();
    assert_eq!(
        answers.len() as u64 + dropped,
        50,
        "every frame is answered or counted"
    );
    assert!(dropped > 0, "frames were dropped while one was processed");
    let seqs: Vec<u64> = answers.iter().map(|a| a["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}
