//! Who may see a file, and how uploads, downloads, thumbnails and deletes behave.

use std::io::{Read, Seek, SeekFrom, Write};

use actix_multipart::MultipartError;
use actix_web::web;
use sha2::{Digest, Sha256};
use tempfile::SpooledTempFile;

pub use super::body::UploadBody;
use super::dto::FileOut;
use super::inspect::{self, Kind};
use super::repo::{self, FileRow, NewFile};
use crate::auth::{Principal, Role};
use crate::db::DbConnection;
use crate::error::{ApiError, ApiResult, Context, OrInternal};
use crate::state::AppState;

pub const THUMBNAIL_DEFAULT: u32 = 256;
pub const THUMBNAIL_MAX: u32 = 512;
pub const THUMBNAIL_MIN: u32 = 16;

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

/// Bytes of a part gathered on the async worker before they are handed to a blocking thread
/// to be hashed and written: large enough that the hop is rare, small enough not to matter.
const FLUSH_BYTES: usize = 256 * 1024;

/// A part's bytes stay in memory up to this size, then move to an anonymous temporary file.
const SPOOL_IN_MEMORY: usize = 64 * 1024;

/// Enough of a part's first bytes to tell its type (the longest signature is WebP's 12).
const SNIFF_BYTES: usize = 16;

/// A part being received: its bytes so far in a spooled temporary file, hashed as they go.
///
/// The file is `tempfile`'s anonymous one, in the system's temporary directory (`TMPDIR`):
/// unlinked as it is created, so it is gone once the handle is dropped, on every path (a
/// refusal, an error, a client that disconnects, which drops the request's future) and even
/// if the process is killed.
struct Spool {
    file: SpooledTempFile,
    hasher: Sha256,
    size: u64,
}

impl Spool {
    fn new() -> Self {
        Self {
            file: SpooledTempFile::new(SPOOL_IN_MEMORY),
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// Hashes and writes `bytes` on a blocking thread (file writes and hashing megabytes
    /// never run on an async worker), handing the spool and the emptied buffer back.
    async fn write(mut self, mut bytes: Vec<u8>) -> ApiResult<(Self, Vec<u8>)> {
        web::block(move || {
            self.hasher.update(&bytes);
            self.file.write_all(&bytes)?;
            self.size += bytes.len() as u64;
            bytes.clear();
            Ok::<_, std::io::Error>((self, bytes))
        })
        .await?
        .or_internal()
    }
}

/// One uploaded part, received whole into a spooled temporary file.
struct Upload {
    filename: String,
    kind: Kind,
    file: SpooledTempFile,
    size: u64,
    sha256: String,
}

impl Upload {
    /// The part's bytes, read back from its file (on a blocking thread).
    fn read_all(&mut self) -> std::io::Result<Vec<u8>> {
        let mut bytes = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        self.file.seek(SeekFrom::Start(0))?;
        self.file.read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

/// What limits an upload while it is received.
struct Limits {
    /// Per file.
    max_bytes: usize,
    max_files: usize,
    quota: i64,
    /// What the uploader already stores, read before the body.
    used: i64,
}

struct Checked {
    filename: String,
    kind: Kind,
    sha256: String,
    size: i64,
    dimensions: Option<(u32, u32)>,
    file: Upload,
}

/// Reads a `multipart/form-data` body (parts named `files`) within the upload limits, and
/// stores every file or none. Each part is typed from its bytes (415 for anything but JPEG,
/// PNG, WebP or PDF), images must decode within the pixel limit and PDFs must parse (422),
/// before anything is written.
///
/// Memory: the body is never held whole. Parts are streamed into spooled temporary files
/// (hashed as they arrive), and refused (413) as soon as a file passes the per-file limit, the
/// request passes the file count, or the bytes received would take the uploader past their
/// quota: before the rest is read. Checking and storing then take one file's bytes into
/// memory at a time (see [`crate::blobs::BlobStore::put_from`]).
pub async fn upload_form(
    state: &AppState,
    principal: &Principal,
    payload: UploadBody,
) -> ApiResult<Vec<FileOut>> {
    let settings = &state.settings;
    let uploader = principal.user_id;
    // Read once before the body, so an upload that cannot fit is cut off as it arrives; the
    // check under the uploader's lock when storing is still the one that decides.
    let used = state
        .db
        .run(move |conn| Ok(repo::stored_bytes(conn, uploader)?))
        .await?;
    let limits = Limits {
        max_bytes: settings.max_upload_bytes,
        max_files: settings.max_files_per_upload,
        quota: settings.upload_quota_bytes,
        used,
    };
    let parts = read_uploads(payload, &limits).await?;
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

fn unsupported(filename: &str) -> ApiError {
    ApiError::UnsupportedMediaType(format!(
        "{}: only JPEG, PNG, WebP and PDF files are accepted (the type is read from the bytes)",
        sanitize_filename(filename)
    ))
}

fn over_quota(incoming: i64, used: i64, quota: i64) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "these files ({incoming} bytes) would take your stored files past your quota of \
         {quota} bytes ({used} used): delete some first"
    ))
}

/// Streams the parts named `files` into spooled temporary files, at most `max_files` of them
/// and `max_bytes` each, and no more bytes in all than the uploader's quota has room for (413
/// for each, as soon as it is passed); a part whose first bytes are no accepted type is
/// refused (415) there too. Other parts are read past and dropped.
async fn read_uploads(mut payload: UploadBody, limits: &Limits) -> ApiResult<Vec<Upload>> {
    let max_bytes = limits.max_bytes;
    let room = limits.quota.saturating_sub(limits.used);
    let mut uploads: Vec<Upload> = Vec::new();
    let mut received: i64 = 0;
    while let Some(field) = payload.next_part().await? {
        let mut field = field.map_err(multipart_error)?;
        if field.name() != Some("files") {
            while let Some(chunk) = payload.next_chunk(&mut field).await? {
                chunk.map_err(multipart_error)?;
            }
            continue;
        }
        let filename = field
            .content_disposition()
            .and_then(|d| d.get_filename())
            .unwrap_or("file")
            .to_owned();
        if uploads.len() == limits.max_files {
            return Err(ApiError::PayloadTooLarge(format!(
                "at most {} files per upload",
                limits.max_files
            )));
        }
        let mut spool = Spool::new();
        let mut pending: Vec<u8> = Vec::with_capacity(FLUSH_BYTES);
        let mut head: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
        let mut kind = None;
        let mut size = 0usize;
        while let Some(chunk) = payload.next_chunk(&mut field).await? {
            let chunk = chunk.map_err(multipart_error)?;
            size += chunk.len();
            if size > max_bytes {
                return Err(ApiError::PayloadTooLarge(format!(
                    "{} is over the {max_bytes}-byte limit per file",
                    sanitize_filename(&filename)
                )));
            }
            received = received.saturating_add(i64::try_from(chunk.len()).unwrap_or(i64::MAX));
            if received > room {
                return Err(over_quota(received, limits.used, limits.quota));
            }
            if kind.is_none() {
                let wanted = SNIFF_BYTES - head.len();
                head.extend_from_slice(&chunk[..wanted.min(chunk.len())]);
                if head.len() == SNIFF_BYTES {
                    kind = Some(inspect::sniff(&head).ok_or_else(|| unsupported(&filename))?);
                }
            }
            pending.extend_from_slice(&chunk);
            if pending.len() >= FLUSH_BYTES {
                (spool, pending) = spool.write(pending).await?;
            }
        }
        let kind = match kind {
            Some(kind) => kind,
            // Shorter than the sniffing window.
            None => inspect::sniff(&head).ok_or_else(|| unsupported(&filename))?,
        };
        if !pending.is_empty() {
            (spool, _) = spool.write(pending).await?;
        }
        uploads.push(Upload {
            filename,
            kind,
            file: spool.file,
            size: spool.size,
            sha256: hex::encode(spool.hasher.finalize()),
        });
    }
    Ok(uploads)
}

/// Checks every received part (images decoded under the pixel limit, PDFs parsed), one file
/// in memory at a time, then stores them all in one transaction, or none.
async fn upload(
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
                .map(|(n, mut part)| {
                    let field = format!("files[{n}]");
                    let kind = part.kind;
                    let filename = with_extension_of(sanitize_filename(&part.filename), kind);
                    let bytes = part.read_all().or_internal()?;
                    let dimensions = match kind {
                        Kind::Pdf => {
                            inspect::check_pdf(&bytes, &field)?;
                            None
                        }
                        _ => Some(inspect::measure(kind, &bytes, max_pixels, &field)?),
                    };
                    drop(bytes);
                    Ok(Checked {
                        sha256: part.sha256.clone(),
                        size: i64::try_from(part.size).unwrap_or(i64::MAX),
                        filename,
                        kind,
                        dimensions,
                        file: part,
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
                return Err(over_quota(incoming, used, quota));
            }
            checked
                .into_iter()
                .map(|mut c| {
                    c.file.file.seek(SeekFrom::Start(0)).or_internal()?;
                    blobs.put_from(conn, &c.sha256, &mut c.file.file)?;
                    // The temporary file goes as soon as its bytes are stored.
                    drop(c.file);
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
