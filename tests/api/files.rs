use actix_web::http::Method;
use serde_json::{json, Value};

use crate::common::{Session, TestApp, TestResponse};

/// A real image of `w`×`h`, encoded as `format`.
pub fn image_bytes(w: u32, h: u32, format: image::ImageFormat) -> Vec<u8> {
    // Noise, so that sizes do not shrink to nothing under compression.
    let mut seed = 0x2545_F491_4F6C_DD1Du64 ^ u64::from(w * 31 + h);
    let img = image::RgbImage::from_fn(w, h, |_, _| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let [a, b, c, ..] = seed.to_le_bytes();
        image::Rgb([a, b, c])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, format)
        .expect("encode");
    out.into_inner()
}

/// A PNG of a few dozen bytes whose header claims 50,000 × 50,000 pixels.
fn decompression_bomb() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        png.extend_from_slice(&body);
        png.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&50_000u32.to_be_bytes());
    ihdr.extend_from_slice(&50_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    png
}

pub fn multipart(parts: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "stockroom-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub async fn upload_to(
    app: &TestApp,
    path: &str,
    s: &Session,
    parts: &[(&str, &str, &[u8])],
) -> TestResponse {
    let (content_type, body) = multipart(parts);
    let req = app
        .request(Method::POST, path)
        .bearer_auth(&s.token)
        .insert_header(("Content-Type", content_type));
    app.send_bytes(req, body).await
}

pub async fn upload(app: &TestApp, s: &Session, parts: &[(&str, &str, &[u8])]) -> TestResponse {
    upload_to(app, "/api/v1/files", s, parts).await
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

#[actix_web::test]
async fn uploads_are_typed_from_their_bytes() {
    let app = TestApp::spawn().await;
    let c = app.customer("uma").await;
    let jpeg = image_bytes(64, 48, image::ImageFormat::Jpeg);
    let png = image_bytes(10, 20, image::ImageFormat::Png);
    let pdf = crate::uploads_streamed::minimal_pdf("report");
    let res = upload(
        &app,
        &c,
        &[
            ("files", "photo.jpeg", &jpeg),
            ("files", "x.jpg", &png),
            ("files", "../../etc/report.pdf", &pdf),
        ],
    )
    .await;
    let files = res.ok(201);
    let files = files.as_array().expect("array");
    assert_eq!(files.len(), 3);
    assert_eq!(files[0]["content_type"], "image/jpeg");
    assert_eq!(
        (files[0]["width"].as_i64(), files[0]["height"].as_i64()),
        (Some(64), Some(48))
    );
    assert_eq!(files[1]["content_type"], "image/png");
    // The name never claims a type its bytes are not.
    assert_eq!(files[1]["filename"], "x.png");
    assert_eq!(files[2]["content_type"], "application/pdf");
    assert_eq!(files[2]["filename"], "report.pdf");
    assert!(files[2].get("width").is_none());
    assert_eq!(files[0]["sha256"].as_str().map(str::len), Some(64));

    let id = files[1]["id"].as_i64().expect("id");
    let got = app
        .get(&format!("/api/v1/files/{id}"), Some(&c.token))
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type").as_deref(), Some("image/png"));
    assert_eq!(got.body, png);
    let etag = got.header("etag").expect("etag");
    assert!(got
        .header("cache-control")
        .unwrap_or_default()
        .contains("max-age"));
    assert!(got
        .header("content-disposition")
        .unwrap_or_default()
        .contains("x.png"));
    let cond = app
        .request(Method::GET, &format!("/api/v1/files/{id}"))
        .bearer_auth(&c.token)
        .insert_header(("If-None-Match", etag.clone()));
    let not_modified = app.send(cond, None).await;
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
}

#[actix_web::test]
async fn bad_uploads_are_refused_whole() {
    let app = TestApp::builder()
        .env("STOCKROOM_MAX_UPLOAD_BYTES", "20000")
        .spawn()
        .await;
    let c = app.customer("vic").await;
    let jpeg = image_bytes(16, 16, image::ImageFormat::Jpeg);
    let text = b"just some text, not an image".to_vec();
    upload(
        &app,
        &c,
        &[("files", "ok.jpg", &jpeg), ("files", "notes.jpeg", &text)],
    )
    .await
    .problem(415);
    let big = image_bytes(400, 400, image::ImageFormat::Png);
    assert!(big.len() > 20000);
    upload(&app, &c, &[("files", "big.png", &big)])
        .await
        .problem(413);
    let eleven: Vec<(&str, &str, &[u8])> = (0..11)
        .map(|_| ("files", "a.jpg", jpeg.as_slice()))
        .collect();
    upload(&app, &c, &eleven).await.problem(413);
    let broken = [&jpeg[..jpeg.len() / 3], &[0u8; 16][..]].concat();
    upload(&app, &c, &[("files", "broken.jpg", &broken)])
        .await
        .problem(422);
    upload(&app, &c, &[("other", "a.jpg", &jpeg)])
        .await
        .problem(422);
    // Nothing from the refused uploads was kept.
    let u = app.post("/api/v1/files", Some(&c.token), json!({})).await;
    u.problem(415);
    let ok = upload(&app, &c, &[("files", "ok.jpg", &jpeg)])
        .await
        .ok(201);
    assert_eq!(ok[0]["id"], 1, "refused uploads left rows behind: {ok}");
}

#[actix_web::test]
async fn a_decompression_bomb_is_refused_without_decoding() {
    let app = TestApp::spawn().await;
    let c = app.customer("bob").await;
    let bomb = decompression_bomb();
    assert!(bomb.len() < 100);
    let before = rss_kib();
    let res = upload(&app, &c, &[("files", "bomb.png", &bomb)]).await;
    let body = res.problem(422);
    assert!(
        body["detail"].as_str().unwrap_or("").contains("pixels"),
        "{body}"
    );
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 200, "memory grew by {grown_mib} MiB");
}

#[actix_web::test]
async fn identical_bytes_are_stored_once_and_thumbnails_are_cached() {
    let app = TestApp::spawn().await;
    let c = app.customer("dee").await;
    let png = image_bytes(300, 150, image::ImageFormat::Png);
    let a = upload(&app, &c, &[("files", "a.png", &png)]).await.ok(201)[0].clone();
    let b = upload(&app, &c, &[("files", "b.png", &png)]).await.ok(201)[0].clone();
    assert_ne!(a["id"], b["id"]);
    assert_eq!(a["sha256"], b["sha256"]);
    let blobs = app
        .state
        .db
        .run(|conn| {
            use diesel::prelude::*;
            use stockroom::db::schema::file_blobs;
            Ok(file_blobs::table.count().get_result::<i64>(conn)?)
        })
        .await
        .expect("count");
    assert_eq!(blobs, 1);

    let id = a["id"].as_i64().expect("id");
    let thumb = app
        .get(
            &format!("/api/v1/files/{id}/thumbnail?size=100"),
            Some(&c.token),
        )
        .await;
    assert_eq!(thumb.status, 200, "{}", thumb.text());
    assert_eq!(thumb.header("content-type").as_deref(), Some("image/jpeg"));
    let decoded = image::load_from_memory(&thumb.body).expect("a JPEG");
    assert_eq!((decoded.width(), decoded.height()), (100, 50));
    let again = app
        .get(
            &format!("/api/v1/files/{id}/thumbnail?size=100"),
            Some(&c.token),
        )
        .await;
    assert_eq!(again.body, thumb.body);
    app.get(
        &format!("/api/v1/files/{id}/thumbnail?size=513"),
        Some(&c.token),
    )
    .await
    .problem(400);
    let default = app
        .get(&format!("/api/v1/files/{id}/thumbnail"), Some(&c.token))
        .await;
    let decoded = image::load_from_memory(&default.body).expect("a JPEG");
    assert_eq!(decoded.width(), 256);

    // Deleting one upload keeps the shared bytes for the other.
    app.delete(&format!("/api/v1/files/{id}"), Some(&c.token))
        .await
        .ok(204);
    let other = b["id"].as_i64().expect("id");
    assert_eq!(
        app.get(&format!("/api/v1/files/{other}"), Some(&c.token))
            .await
            .body,
        png
    );
    app.get(&format!("/api/v1/files/{id}"), Some(&c.token))
        .await
        .problem(404);
}

#[actix_web::test]
async fn who_may_see_and_delete_a_file() {
    let app = TestApp::spawn().await;
    let owner = app.owner("ozzy").await;
    let worker = app.worker("wynn").await;
    let alice = app.customer("alice").await;
    let bob = app.customer("bob").await;
    let jpeg = image_bytes(8, 8, image::ImageFormat::Jpeg);
    let private = upload(&app, &alice, &[("files", "mine.jpg", &jpeg)])
        .await
        .ok(201)[0]["id"]
        .as_i64()
        .expect("id");
    let path = format!("/api/v1/files/{private}");
    assert_eq!(app.get(&path, Some(&alice.token)).await.status, 200);
    assert_eq!(app.get(&path, Some(&worker.token)).await.status, 200);
    app.get(&path, Some(&bob.token)).await.problem(404);
    app.get(&path, None).await.problem(401);
    app.delete(&path, Some(&bob.token)).await.problem(404);
    app.delete(&path, Some(&worker.token)).await.problem(403);

    // An avatar is visible to everyone signed in; a PDF cannot be one.
    let pdf = crate::uploads_streamed::minimal_pdf("cv");
    let doc = upload(&app, &alice, &[("files", "cv.pdf", &pdf)])
        .await
        .ok(201)[0]["id"]
        .as_i64()
        .expect("id");
    app.patch(
        "/api/v1/me",
        Some(&alice.token),
        json!({"avatar_file_id": doc}),
    )
    .await
    .problem(422);
    let me = app
        .patch(
            "/api/v1/me",
            Some(&alice.token),
            json!({"avatar_file_id": private}),
        )
        .await
        .ok(200);
    assert_eq!(me["avatar_file_id"], private);
    assert_eq!(app.get(&path, Some(&bob.token)).await.status, 200);
    // Bob cannot take a file he cannot see as his own avatar: to him it does not exist.
    app.patch(
        "/api/v1/me",
        Some(&bob.token),
        json!({"avatar_file_id": doc}),
    )
    .await
    .problem(404);

    // An item photo is visible to everyone signed in.
    let photo = upload(&app, &worker, &[("files", "milk.jpg", &jpeg)])
        .await
        .ok(201)[0]["id"]
        .as_i64()
        .expect("id");
    app.get(&format!("/api/v1/files/{photo}"), Some(&bob.token))
        .await
        .problem(404);
    let item = app
        .post(
            "/api/v1/items",
            Some(&worker.token),
            json!({"name": "Milk", "kind": "non_perishable", "photo_file_id": photo}),
        )
        .await
        .ok(201);
    assert_eq!(item["photo_file_id"], photo);
    assert_eq!(
        app.get(&format!("/api/v1/files/{photo}"), Some(&bob.token))
            .await
            .status,
        200
    );
    app.post(
        "/api/v1/items",
        Some(&worker.token),
        json!({"name": "Bad", "kind": "non_perishable", "photo_file_id": doc}),
    )
    .await
    .problem(422);

    // The owner may delete anyone's file; the avatar is cleared.
    app.delete(&path, Some(&owner.token)).await.ok(204);
    let me: Value = app.get("/api/v1/me", Some(&alice.token)).await.ok(200);
    assert_eq!(me["avatar_file_id"], Value::Null);
}

#[actix_web::test]
async fn the_compatibility_upload_route_answers_like_before() {
    let app = TestApp::spawn().await;
    let c = app.customer("leg").await;
    let jpeg = image_bytes(8, 8, image::ImageFormat::Jpeg);
    let res = upload_to(
        &app,
        "/api/user/upload-files",
        &c,
        &[("files", "a.jpg", &jpeg), ("files", "b.jpg", &jpeg)],
    )
    .await
    .ok(200);
    assert_eq!(res, json!({"message": "2 file(s) uploaded successfully"}));
    let text = b"plain".to_vec();
    upload_to(
        &app,
        "/api/user/upload-files",
        &c,
        &[("files", "a.jpg", &text)],
    )
    .await
    .problem(415);
}

#[actix_web::test]
async fn stored_names_never_lie_about_their_type_or_hide_it() {
    let app = TestApp::spawn().await;
    let c = app.customer("nina").await;
    let png = image_bytes(8, 8, image::ImageFormat::Png);
    let pdf = crate::uploads_streamed::minimal_pdf("cv");
    let res = upload(
        &app,
        &c,
        &[
            // Displayed as "invoiceexe.png" by a bidi-aware viewer, were the override kept.
            ("files", "invoice\u{202E}gnp.exe", &png),
            ("files", "scan.PNG", &png),
            ("files", "contract.exe", &pdf),
            ("files", "notes", &pdf),
        ],
    )
    .await;
    let names: Vec<String> = res
        .ok(201)
        .as_array()
        .expect("array")
        .iter()
        .map(|f| f["filename"].as_str().expect("filename").to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "invoicegnp.exe.png",
            "scan.PNG",
            "contract.exe.pdf",
            "notes.pdf"
        ]
    );
}

#[actix_web::test]
async fn a_user_cannot_store_more_than_their_quota() {
    let photo = image_bytes(32, 32, image::ImageFormat::Png);
    let size = photo.len();
    // Room for two copies and a half.
    let quota = (size * 5 / 2).max(1024);
    assert!(quota < size * 3, "the photo is too small for this test");
    let app = TestApp::builder()
        .env("STOCKROOM_UPLOAD_QUOTA_BYTES", &quota.to_string())
        .spawn()
        .await;
    let c = app.customer("quinn").await;
    let first = upload(&app, &c, &[("files", "a.png", &photo)])
        .await
        .ok(201)[0]["id"]
        .as_i64()
        .expect("id");
    // Two more would not fit: refused whole, nothing of it stored.
    let refused = upload(
        &app,
        &c,
        &[("files", "b.png", &photo), ("files", "c.png", &photo)],
    )
    .await
    .problem(413);
    assert!(
        refused["detail"].as_str().unwrap_or("").contains("quota"),
        "{refused}"
    );
    // Every file counts, identical bytes too.
    upload(&app, &c, &[("files", "b.png", &photo)])
        .await
        .ok(201);
    upload(&app, &c, &[("files", "c.png", &photo)])
        .await
        .problem(413);
    // Another user's quota is their own.
    let other = app.customer("rosa").await;
    upload(&app, &other, &[("files", "a.png", &photo)])
        .await
        .ok(201);
    // Deleting frees room.
    app.delete(&format!("/api/v1/files/{first}"), Some(&c.token))
        .await
        .ok(204);
    upload(&app, &c, &[("files", "c.png", &photo)])
        .await
        .ok(201);
}
