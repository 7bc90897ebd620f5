//! Who may see a file, and how uploads, downloads, thumbnails and deletes behave.

use actix_multipart::{Multipart, MultipartError};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::dto::FileOut;
use super::inspect::{self, Kind};
use super::repo::{self, FileRow, NewFile};
use crate::auth::{Principal, Role};
use crate::db::DbConnection;
use crate::error::{ApiError, ApiResult, Context};
use crate::state::AppState;

pub const THUMBNAIL_DEFAULT: u32 = 256;
pub const THUMBNAIL_MAX: u32 = 512;
pub const THUMBNAIL_MIN: u32 = 16;

/// One uploaded part, as received.
pub struct Upload {
    pub filename: String,
    pub bytes: Vec<u8>,
}

pub fn file_out(f: FileRow) -> FileOut {
    FileOut {
        url: format!("/api/v1/files/{}", f.id),
        id: f.id,
        filename: f.filename,
        content_type: f.content_type,
        size: f.size,
        sha256: f.sha256,
        width: f.width,
        height: f.height,
        uploader_id: f.uploader_id,
        created_at: f.created_at,
    }
}

/// Bidirectional-text controls: in a file name they make `invoice\u{202E}gpj.exe` display as
/// `invoiceexe.jpg`.
const BIDI_CONTROLS: [char; 12] = [
    '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}',
    '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
];

/// No directories, no control or bidirectional-control characters, at most 255 bytes; never
/// empty.
pub fn sanitize_filename(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let mut clean: String = base
        .chars()
        .filter(|c| {
            !c.is_control()
                && !BIDI_CONTROLS.contains(c)
                && !matches!(c, '"' | '<' | '>' | '|' | '*' | '?' | ':')
        })
        .collect();
    clean = clean.trim().trim_start_matches('.').to_owned();
    while clean.len() > 255 {
        clean.pop();
    }
    if clean.is_empty() {
        "file".to_owned()
    } else {
        clean
    }
}

/// `name` with an extension that says what the bytes are: kept when it already does, another
/// accepted type's extension replaced (`x.jpg` holding a PNG is stored as `x.png`), anything
/// else kept with the right one appended (`invoice.exe` holding a PDF is `invoice.exe.pdf`),
/// so that no stored name claims a type its content is not.
fn with_extension_of(name: String, kind: Kind) -> String {
    let accepted = |kind: Kind| -> &'static [&'static str] {
        match kind {
            Kind::Jpeg => &["jpg", "jpeg"],
            Kind::Png => &["png"],
            Kind::Webp => &["webp"],
            Kind::Pdf => &["pdf"],
        }
    };
    let right = accepted(kind);
    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, Some(ext.to_ascii_lowercase())),
        _ => (name.as_str(), None),
    };
    let stem = match extension {
        Some(ext) if right.contains(&ext.as_str()) => return name,
        Some(ext)
            if [Kind::Jpeg, Kind::Png, Kind::Webp, Kind::Pdf]
                .into_iter()
                .any(|other| accepted(other).contains(&ext.as_str())) =>
        {
            stem
        }
        _ => name.as_str(),
    };
    let mut stem = stem.to_owned();
    while stem.len() + 1 + right[0].len() > 255 {
        stem.pop();
    }
    format!("{stem}.{}", right[0])
}

/// Who may see a file: its uploader, staff, the members of the chats it was posted in, and
/// everyone signed in for item photos and avatars. Anyone else is told it does not exist.
fn visible(conn: &mut DbConnection, principal: &Principal, id: i64) -> ApiResult<FileRow> {
    let file = repo::find_file(conn, id).or_not_found(format!("file {id}"))?;
    if file.uploader_id == Some(principal.user_id) || principal.is_staff() {
        return Ok(file);
    }
    if principal.role != Role::Bot && repo::is_public_picture(conn, id)? {
        return Ok(file);
    }
    if repo::is_posted_to(conn, id, principal.user_id)? {
        return Ok(file);
    }
    Err(ApiError::not_found(format!("file {id}")))
}

/// The file if `principal` may see it, else 404; inside the caller's transaction.
pub fn visible_file(conn: &mut DbConnection, principal: &Principal, id: i64) -> ApiResult<FileOut> {
    visible(conn, principal, id).map(file_out)
}

/// The files with these ids (for showing what a message carries).
pub fn files_by_id(conn: &mut DbConnection, ids: &[i64]) -> ApiResult<Vec<FileOut>> {
    Ok(repo::find_files(conn, ids)?
        .into_iter()
        .map(file_out)
        .collect())
}

/// For `avatar_file_id` / `photo_file_id`: the file must be an image the caller may see;
/// otherwise 422 naming `field`.
pub async fn require_visible_image(
    state: &AppState,
    principal: &Principal,
    file_id: i64,
    field: &'static str,
) -> ApiResult<()> {
    let who = principal.clone();
    let found = state
        .db
        .run(move |conn| match visible(conn, &who, file_id) {
            Ok(f) => Ok(Some(f)),
            Err(ApiError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        })
        .await?;
    match found {
        // Like any other id that names nothing the caller may see: 404.
        None => Err(ApiError::not_found(format!("file {file_id} ({field})"))),
        Some(f) if !f.content_type.starts_with("image/") => {
            Err(ApiError::field(field, "must be an image"))
        }
        Some(_) => Ok(()),
    }
}

struct Checked {
    filename: String,
    kind: Kind,
    sha256: String,
    size: i64,
    dimensions: Option<(u32, u32)>,
    bytes: Vec<u8>,
}

/// Stores every part or none: each is typed from its bytes (415 for anything but JPEG, PNG,
/// WebP or PDF) and images must decode within the pixel limit (422), before anything is
/// written.
/// Reads a `multipart/form-data` body (parts named `files`) within the upload limits, and
/// stores every file or none.
pub async fn upload_form(
    state: &AppState,
    principal: &Principal,
    payload: Multipart,
) -> ApiResult<Vec<FileOut>> {
    let settings = &state.settings;
    let parts = read_uploads(
        payload,
        settings.max_upload_bytes,
        settings.max_files_per_upload,
    )
    .await?;
    upload(state, principal, parts).await
}

fn multipart_error(e: MultipartError) -> ApiError {
    match e {
        MultipartError::ContentTypeMissing
        | MultipartError::ContentTypeParse
        | MultipartError::ContentTypeIncompatible => ApiError::UnsupportedMediaType(
            "send multipart/form-data with parts named `files`".to_owned(),
        ),
        other => ApiError::BadRequest(format!("the multipart body is malformed: {other}")),
    }
}

/// Reads the parts named `files`, each into a buffer of at most `max_bytes` (413 past it),
/// and at most `max_files` of them (413 past that). Other parts are skipped.
async fn read_uploads(
    mut payload: Multipart,
    max_bytes: usize,
    max_files: usize,
) -> ApiResult<Vec<Upload>> {
    let mut uploads = Vec::new();
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(multipart_error)?;
        let is_file = field.name() == Some("files");
        let filename = field
            .content_disposition()
            .and_then(|d| d.get_filename())
            .unwrap_or("file")
            .to_owned();
        if is_file && uploads.len() == max_files {
            return Err(ApiError::PayloadTooLarge(format!(
                "at most {max_files} files per upload"
            )));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(multipart_error)?;
            if !is_file {
                continue;
            }
            if bytes.len() + chunk.len() > max_bytes {
                return Err(ApiError::PayloadTooLarge(format!(
                    "{filename} is over the {max_bytes}-byte limit per file"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if is_file {
            uploads.push(Upload { filename, bytes });
        }
    }
    Ok(uploads)
}

pub async fn upload(
    state: &AppState,
    principal: &Principal,
    parts: Vec<Upload>,
) -> ApiResult<Vec<FileOut>> {
    if parts.is_empty() {
        return Err(ApiError::field(
            "files",
            "send one or more parts named `files`",
        ));
    }
    let max_pixels = state.settings.max_image_pixels;
    let checked = state
        .images
        .run(move || -> ApiResult<Vec<Checked>> {
            parts
                .into_iter()
                .enumerate()
                .map(|(n, part)| {
                    let filename = sanitize_filename(&part.filename);
                    let kind = inspect::sniff(&part.bytes).ok_or_else(|| {
                        ApiError::UnsupportedMediaType(format!(
                            "{filename}: only JPEG, PNG, WebP and PDF files are accepted \
                             (the type is read from the bytes)"
                        ))
                    })?;
                    let filename = with_extension_of(filename, kind);
                    let dimensions = match kind {
                        Kind::Pdf => None,
                        _ => Some(inspect::measure(
                            kind,
                            &part.bytes,
                            max_pixels,
                            &format!("files[{n}]"),
                        )?),
                    };
                    Ok(Checked {
                        sha256: hex::encode(Sha256::digest(&part.bytes)),
                        size: i64::try_from(part.bytes.len()).unwrap_or(i64::MAX),
                        filename,
                        kind,
                        dimensions,
                        bytes: part.bytes,
                    })
                })
                .collect()
        })
        .await??;
    let uploader = principal.user_id;
    let blobs = state.blobs.clone();
    let quota = state.settings.upload_quota_bytes;
    let rows = state
        .db
        .transaction(move |conn| {
            // Checked under the uploader's lock, so concurrent uploads cannot each see room
            // that only one of them fits in.
            repo::lock_uploader(conn, uploader)?;
            let used = repo::stored_bytes(conn, uploader)?;
            let incoming: i64 = checked.iter().map(|c| c.size).sum();
            if used.saturating_add(incoming) > quota {
                return Err(ApiError::PayloadTooLarge(format!(
                    "these files ({incoming} bytes) would take your stored files past your \
                     quota of {quota} bytes ({used} used): delete some first"
                )));
            }
            checked
                .into_iter()
                .map(|c| {
                    blobs.put(conn, &c.sha256, &c.bytes)?;
                    let (width, height) = match c.dimensions {
                        Some((w, h)) => (i32::try_from(w).ok(), i32::try_from(h).ok()),
                        None => (None, None),
                    };
                    Ok(repo::insert_file(
                        conn,
                        &NewFile {
                            sha256: &c.sha256,
                            filename: &c.filename,
                            content_type: c.kind.content_type(),
                            size: c.size,
                            width,
                            height,
                            uploader_id: uploader,
                        },
                    )?)
                })
                .collect::<ApiResult<Vec<FileRow>>>()
        })
        .await?;
    Ok(rows.into_iter().map(file_out).collect())
}

/// The file and its bytes, if the caller may see it.
pub async fn download(
    state: &AppState,
    principal: &Principal,
    id: i64,
) -> ApiResult<(FileRow, Vec<u8>)> {
    let who = principal.clone();
    let blobs = state.blobs.clone();
    state
        .db
        .run(move |conn| {
            let file = visible(conn, &who, id)?;
            let bytes = blobs
                .get(conn, &file.sha256)?
                .ok_or_else(|| ApiError::internal(format!("blob of file {id} is missing")))?;
            Ok((file, bytes))
        })
        .await
}

/// Metadata only, if the caller may see it (for conditional requests).
pub async fn metadata(state: &AppState, principal: &Principal, id: i64) -> ApiResult<FileRow> {
    let who = principal.clone();
    state.db.run(move |conn| visible(conn, &who, id)).await
}

/// A JPEG thumbnail of an image, made once per content and size, then served from cache.
pub async fn thumbnail(
    state: &AppState,
    principal: &Principal,
    id: i64,
    size: Option<u32>,
) -> ApiResult<(FileRow, Vec<u8>)> {
    let size = size.unwrap_or(THUMBNAIL_DEFAULT);
    if !(THUMBNAIL_MIN..=THUMBNAIL_MAX).contains(&size) {
        return Err(ApiError::BadRequest(format!(
            "size must be between {THUMBNAIL_MIN} and {THUMBNAIL_MAX}"
        )));
    }
    let side = i32::try_from(size).unwrap_or(THUMBNAIL_DEFAULT as i32);
    let file = metadata(state, principal, id).await?;
    let kind = Kind::from_content_type(&file.content_type)
        .filter(|k| *k != Kind::Pdf)
        .ok_or_else(|| {
            ApiError::UnsupportedMediaType(format!("{} has no thumbnail", file.content_type))
        })?;
    let sha = file.sha256.clone();
    let cached = state
        .db
        .run(move |conn| Ok(repo::thumbnail(conn, &sha, side)?))
        .await?;
    if let Some(bytes) = cached {
        return Ok((file, bytes));
    }
    let (_, original) = download(state, principal, id).await?;
    let max_pixels = state.settings.max_image_pixels;
    let made = state
        .images
        .run(move || inspect::thumbnail(kind, &original, size, max_pixels))
        .await??;
    let (sha, data) = (file.sha256.clone(), made.clone());
    state
        .db
        .run(move |conn| Ok(repo::store_thumbnail(conn, &sha, side, &data)?))
        .await?;
    Ok((file, made))
}

/// The uploader or the owner deletes a file; bytes go when no other upload shares them.
pub async fn delete(state: &AppState, principal: &Principal, id: i64) -> ApiResult<()> {
    let who = principal.clone();
    let blobs = state.blobs.clone();
    state
        .db
        .transaction(move |conn| {
            let file = visible(conn, &who, id)?;
            if file.uploader_id != Some(who.user_id) && who.role != Role::Owner {
                return Err(ApiError::Forbidden(
                    "only the uploader or the owner may delete a file".to_owned(),
                ));
            }
            repo::delete_file(conn, id)?;
            if !repo::sha_in_use(conn, &file.sha256)? {
                repo::delete_thumbnails(conn, &file.sha256)?;
                blobs.delete(conn, &file.sha256)?;
            }
            Ok(())
        })
        .await
}
