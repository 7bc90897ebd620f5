use actix_web::http::header::{self, HeaderValue};
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};

use super::dto::{FileBytes, FileOut, ThumbnailQuery, UploadForm};
use super::repo::FileRow;
use super::service;
use crate::auth::{Action, Principal};
use crate::error::ApiResult;
use crate::extract;
use crate::state::AppState;

/// Upload one or more files (parts named `files`). JPEG, PNG, WebP and PDF, typed from their
/// bytes; images must decode within the pixel limit and PDFs must parse. All parts are stored,
/// or none.
#[utoipa::path(
    operation_id = "upload_files",
    tag = "files",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = Vec<FileOut>),
        (status = 413, description = "A file over the size limit, more than 10 files, or more than the uploader's storage quota has room for (refused as the bytes arrive)"),
        (status = 415, description = "Not JPEG, PNG, WebP or PDF"),
        (status = 422, description = "An image that does not decode or has too many pixels, or a PDF that does not parse"),
        (status = 429, description = "Too many uploads from this user in the last minute, or too many at once (both upload routes count)", headers(("Retry-After" = u64))),
    )
)]
#[post("/files")]
pub async fn upload(
    state: web::Data<AppState>,
    principal: Principal,
    payload: super::body::UploadBody,
) -> ApiResult<HttpResponse> {
    principal.require(Action::UploadFiles)?;
    // Held until the upload is stored or refused; checked before the body is read.
    let _in_flight = state.throttles.upload(&principal)?;
    let stored = service::upload_form(&state, &principal, payload).await?;
    Ok(HttpResponse::Created().json(stored))
}

fn etag_of(file: &FileRow) -> String {
    format!("\"{}\"", file.sha256)
}

/// `If-None-Match` naming the file's tag (or `*`).
fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t.trim_start_matches("W/") == etag
            })
        })
}

fn content_disposition(file: &FileRow) -> HeaderValue {
    let inline = file.content_type.starts_with("image/");
    let ascii: String = file
        .filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .filter(|c| *c != '"' && *c != '\\')
        .collect();
    let encoded: String = file
        .filename
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    HeaderValue::from_str(&format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

fn file_response(file: &FileRow, etag: &str, content_type: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type.to_owned())
        .insert_header((header::ETAG, etag.to_owned()))
        // Content under one id never changes; only the people allowed may cache it.
        .insert_header((
            header::CACHE_CONTROL,
            "private, max-age=31536000, immutable",
        ))
        .insert_header((header::CONTENT_DISPOSITION, content_disposition(file)))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Content-Security-Policy", "sandbox; default-src 'none'"))
        .body(body)
}

fn not_modified_response(etag: &str) -> HttpResponse {
    HttpResponse::NotModified()
        .insert_header((header::ETAG, etag.to_owned()))
        .insert_header((
            header::CACHE_CONTROL,
            "private, max-age=31536000, immutable",
        ))
        .finish()
}

/// The file's bytes, for whoever may see it (its uploader, staff, and everyone signed in for
/// item photos and avatars); `If-None-Match` answers 304.
#[utoipa::path(
    operation_id = "download_file",
    tag = "files",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "The bytes, with Content-Type (decided from the bytes at upload), ETag and Cache-Control",
         content(
            (FileBytes = "image/jpeg"),
            (FileBytes = "image/png"),
            (FileBytes = "image/webp"),
            (FileBytes = "application/pdf"),
         )),
        (status = 304, description = "Not modified"),
        (status = 404),
    )
)]
#[get("/files/{id}")]
pub async fn download(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let meta = service::metadata(&state, &principal, id).await?;
    let etag = etag_of(&meta);
    if not_modified(&req, &etag) {
        return Ok(not_modified_response(&etag));
    }
    let (file, bytes) = service::download(&state, &principal, id).await?;
    Ok(file_response(&file, &etag, &file.content_type, bytes))
}

/// A JPEG thumbnail of an image, at most `size` pixels on its longest side.
#[utoipa::path(
    operation_id = "get_file_thumbnail",
    tag = "files",
    params(("id" = i64, Path), ThumbnailQuery),
    responses(
        (status = 200, description = "JPEG", content_type = "image/jpeg"),
        (status = 304, description = "Not modified"),
        (status = 400, description = "size out of range"),
        (status = 404),
        (status = 415, description = "The file is not an image"),
    )
)]
#[get("/files/{id}/thumbnail")]
pub async fn thumbnail(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<i64>,
    query: extract::Query<ThumbnailQuery>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let size = query.size.unwrap_or(service::THUMBNAIL_DEFAULT);
    let meta = service::metadata(&state, &principal, id).await?;
    let etag = format!("\"{}-{size}\"", meta.sha256);
    if not_modified(&req, &etag) {
        return Ok(not_modified_response(&etag));
    }
    let (file, bytes) = service::thumbnail(&state, &principal, id, Some(size)).await?;
    Ok(file_response(&file, &etag, "image/jpeg", bytes))
}

/// Delete a file (its uploader or the owner).
#[utoipa::path(
    tag = "files",
    params(("id" = i64, Path)),
    responses(
        (status = 204),
        (status = 403, description = "Only its uploader or the owner may delete it"),
        (status = 404),
    )
)]
#[delete("/files/{id}")]
pub async fn delete_file(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    service::delete(&state, &principal, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
