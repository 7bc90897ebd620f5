//! Uploads are streamed, not held whole: limits apply as the bytes arrive, and a file is a
//! PDF only if it parses as one.

use std::time::Duration;

use diesel::prelude::*;
use serde_json::Value;
use stockroom::db::schema::{file_blobs, files};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{Session, TestApp};
use crate::files::{image_bytes, multipart, upload, upload_to};

/// A minimal valid PDF, written by hand: a catalog, a page tree of one page, and a
/// cross-reference table whose offsets are counted here.
pub fn minimal_pdf(title: &str) -> Vec<u8> {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>".to_owned(),
        format!("<< /Title ({title}) >>"),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (n, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", n + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Info 4 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

/// A PDF made by the lopdf library (with its own object layout and compressed streams).
fn library_pdf() -> Vec<u8> {
    use lopdf::{dictionary, Document, Object, Stream};
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let content = Stream::new(
        dictionary! {},
        b"BT /F1 12 Tf 10 10 Td (hello) Tj ET".to_vec(),
    );
    let content_id = doc.add_object(content);
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page",
        "Parent" => pages_id,
        "Contents" => content_id,
        "MediaBox" => vec![0.into(), 0.into(), 100.into(), 100.into()],
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => vec![page_id.into()],
            "Count" => 1,
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    doc.compress();
    let mut out = Vec::new();
    // Object streams and a cross-reference stream, as PDF 1.5 writers make them.
    doc.save_modern(&mut out).expect("save the PDF");
    out
}

/// The files and blobs stored, all users together.
async fn stored(app: &TestApp) -> (i64, i64) {
    app.state
        .db
        .run(|conn| {
            let f = files::table.count().get_result::<i64>(conn)?;
            let b = file_blobs::table.count().get_result::<i64>(conn)?;
            Ok((f, b))
        })
        .await
        .expect("count")
}

#[actix_web::test]
async fn a_file_is_a_pdf_only_if_it_parses_as_one() {
    let app = TestApp::spawn().await;
    let c = app.customer("paula").await;
    let made = library_pdf();
    let files = upload(
        &app,
        &c,
        &[
            ("files", "hand.pdf", &minimal_pdf("by hand")),
            ("files", "lib.pdf", &made),
        ],
    )
    .await
    .ok(201);
    assert_eq!(files[0]["content_type"], "application/pdf");
    assert_eq!(files[1]["content_type"], "application/pdf");
    let id = files[1]["id"].as_i64().expect("id");
    let got = app
        .get(&format!("/api/v1/files/{id}"), Some(&c.token))
        .await;
    assert_eq!(got.body, made);

    // The signature alone is not enough: a 422 naming the part, like an image that does not
    // decode, and nothing of the upload is stored.
    let garbage = b"%PDF-1.4 garbage".to_vec();
    // Cut short inside its page tree (one cut after its last object would be repaired from its
    // objects, as readers do).
    let truncated = {
        let whole = minimal_pdf("cut short");
        let pages = whole
            .windows(7)
            .position(|w| w == b"2 0 obj")
            .expect("object 2");
        whole[..pages + 12].to_vec()
    };
    let before = stored(&app).await;
    for bad in [&garbage, &truncated] {
        let refused = upload(
            &app,
            &c,
            &[
                ("files", "fine.pdf", &minimal_pdf("fine")),
                ("files", "bad.pdf", bad),
            ],
        )
        .await
        .problem(422);
        let errors = refused["errors"].as_object().expect("field errors");
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["files[1]"], "{refused}");
        assert!(
            errors["files[1]"][0]
                .as_str()
                .unwrap_or("")
                .contains("not a readable PDF"),
            "{refused}"
        );
    }
    assert_eq!(
        stored(&app).await,
        before,
        "a refused upload stored something"
    );
}

#[actix_web::test]
async fn an_upload_past_the_quota_is_refused_and_stores_nothing() {
    let photo = image_bytes(64, 64, image::ImageFormat::Png);
    let quota = photo.len() * 2 + photo.len() / 2;
    let app = TestApp::builder()
        .env("STOCKROOM_UPLOAD_QUOTA_BYTES", &quota.to_string())
        .spawn()
        .await;
    let c = app.customer("quentin").await;
    // Three files where two and a half fit: refused while the third arrives. The
    // compatibility route shares the quota and the refusal.
    for path in ["/api/v1/files", "/api/user/upload-files"] {
        let three = [
            ("files", "a.png", photo.as_slice()),
            ("files", "b.png", photo.as_slice()),
            ("files", "c.png", photo.as_slice()),
        ];
        let refused = upload_to(&app, path, &c, &three).await.problem(413);
        assert!(
            refused["detail"].as_str().unwrap_or("").contains("quota"),
            "{path}: {refused}"
        );
        assert_eq!(stored(&app).await, (0, 0), "{path}");
    }
    // Two fit.
    upload(
        &app,
        &c,
        &[("files", "a.png", &photo), ("files", "b.png", &photo)],
    )
    .await
    .ok(201);
    assert_eq!(stored(&app).await, (2, 1));
}

/// Sends the head of an upload whose body claims `declared` bytes for one PNG part, then only
/// `sent` bytes of that part, and waits for the answer without sending more: the answer
/// must come from what was received, before the body is complete.
async fn answer_to_a_partial_upload(
    app: &TestApp,
    who: &Session,
    declared: usize,
    sent: usize,
) -> (u16, Value) {
    let (content_type, body) = multipart(&[("files", "big.png", &vec![0u8; declared])]);
    // The part starts with a PNG signature, so it is not refused for its type.
    let part_start = body
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the part's head")
        + 4;
    let mut body = body;
    body[part_start..part_start + 8].copy_from_slice(b"\x89PNG\r\n\x1a\n");
    let host = app.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&host).await.expect("connect");
    let head = format!(
        "POST /api/v1/files HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        who.token,
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("send the head");
    stream
        .write_all(&body[..part_start + sent])
        .await
        .expect("send part of the body");
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    // The whole answer: its head says how long its body is.
    loop {
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|n| n.trim().parse().ok())
                .expect("a content-length");
            if answer.len() >= end + 4 + length {
                let status = String::from_utf8_lossy(&answer[..end])
                    .split_whitespace()
                    .nth(1)
                    .and_then(|code| code.parse().ok())
                    .expect("a status line");
                let problem =
                    serde_json::from_slice(&answer[end + 4..end + 4 + length]).expect("JSON");
                return (status, problem);
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
            .await
            .expect("answered before the body was complete")
            .expect("read the answer");
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
}

#[actix_web::test]
async fn limits_are_enforced_as_the_bytes_arrive() {
    let app = TestApp::builder()
        .env("STOCKROOM_UPLOAD_QUOTA_BYTES", &(1024 * 1024).to_string())
        .env("STOCKROOM_MAX_UPLOAD_BYTES", &(4 * 1024 * 1024).to_string())
        .spawn()
        .await;
    let c = app.customer("stella").await;
    // A 3 MiB file fits the per-file limit but not the 1 MiB quota: refused once a little
    // over 1 MiB has arrived, with 2 MiB still unsent.
    let (status, problem) =
        answer_to_a_partial_upload(&app, &c, 3 << 20, (1 << 20) + (64 << 10)).await;
    assert_eq!(status, 413, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap_or("").contains("quota"),
        "{problem}"
    );
    // A file over the per-file limit: refused once the limit is passed.
    let app_size = TestApp::builder()
        .env("STOCKROOM_MAX_UPLOAD_BYTES", &(1024 * 1024).to_string())
        .spawn()
        .await;
    let d = app_size.customer("sam").await;
    let (status, problem) =
        answer_to_a_partial_upload(&app_size, &d, 8 << 20, (1 << 20) + (64 << 10)).await;
    assert_eq!(status, 413, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("limit per file"),
        "{problem}"
    );
    assert_eq!(stored(&app).await, (0, 0));
    assert_eq!(stored(&app_size).await, (0, 0));
    // Nothing was kept or held against them: both still upload.
    let photo = image_bytes(8, 8, image::ImageFormat::Png);
    upload(&app, &c, &[("files", "ok.png", &photo)])
        .await
        .ok(201);
    upload(&app_size, &d, &[("files", "ok.png", &photo)])
        .await
        .ok(201);
}
