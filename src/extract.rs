//! The project's request extractors. Bodies and query strings are deserialized through
//! `serde_path_to_error`, so a value of the wrong shape is answered with `errors` keyed by
//! the field's path (`kind`, `lines[3].quantity`, `limit`), which frontends put beside the
//! form field. Statuses follow the contract: malformed JSON 400, wrong media type 415, too
//! large 413, well-formed JSON of the wrong shape 422, a query string that cannot be parsed
//! (or breaks a documented limit) 400.

use std::ops::{Deref, DerefMut};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Decompress, Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::middleware::Next;
use actix_web::{mime, web, FromRequest, HttpMessage, HttpRequest, ResponseError};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use validator::Validate;

use crate::error::{ApiError, FieldErrors};

/// The key of errors about the body as a whole (not an object, for instance).
const WHOLE_BODY: &str = "body";

/// The request's media type, lower-cased ("" when absent).
pub fn content_type(req: &HttpRequest) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// The shortest multipart boundary read. actix-multipart 0.7 slices out of range, and so
/// panics, while it skips to the first boundary when the boundary has at most 3 bytes and a
/// line before it is `--`, or with at most 1 byte an empty line (`multipart.rs:301`, fixed
/// in 0.8.0). The panic ends the request's task: the client's connection is dropped with no
/// answer. RFC 2046 allows boundaries of 1 to 70 characters, but clients pick long ones
/// (browsers and curl use 20 or more) so that no part's content contains them; refusing the
/// shorter ones costs nobody anything. This guard can go once actix-multipart is 0.8 or later.
pub const MIN_MULTIPART_BOUNDARY: usize = 4;

/// Middleware: answers a multipart request whose boundary is shorter than
/// `MIN_MULTIPART_BOUNDARY` (empty included) with 400, before any handler reads its body.
pub async fn refuse_short_multipart_boundaries(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if multipart_boundary(req.headers()).is_some_and(|b| b.len() < MIN_MULTIPART_BOUNDARY) {
        let refused = ApiError::BadRequest(format!(
            "the multipart boundary must be at least {MIN_MULTIPART_BOUNDARY} characters long"
        ));
        return Ok(req.into_response(refused.error_response()));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// The boundary of a `multipart/*` request, read as actix-multipart reads it
/// (`Multipart::find_ct_and_boundary`: the first `Content-Type`, parsed by `mime`), so that
/// the guard above judges the very boundary the parser will use.
fn multipart_boundary(headers: &HeaderMap) -> Option<String> {
    let content_type: mime::Mime = headers
        .get(header::CONTENT_TYPE)?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    if content_type.type_() != mime::MULTIPART {
        return None;
    }
    content_type
        .get_param(mime::BOUNDARY)
        .map(|b| b.as_str().to_owned())
}

/// The largest JSON body `Json<T>` reads (`STOCKROOM_MAX_JSON_BYTES`), as app data.
#[derive(Debug, Clone, Copy)]
pub struct JsonConfig {
    pub limit: usize,
}

pub fn json_config(limit: usize) -> JsonConfig {
    JsonConfig { limit }
}

/// Without the app data (a test app, say) the contract's default of 1 MiB applies.
const DEFAULT_JSON_LIMIT: usize = 1 << 20;

/// A JSON object body, deserialized with the failing field's path in its errors.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

fn is_json_media_type(req: &HttpRequest) -> bool {
    match req.mime_type() {
        Ok(Some(mime)) => mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON),
        _ => false,
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<JsonConfig>()
            .map_or(DEFAULT_JSON_LIMIT, |c| c.limit);
        let is_json = is_json_media_type(req);
        let body = Decompress::from_headers(payload.take(), req.headers());
        let declared_length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::UnsupportedMediaType(
                    "the body must be application/json".to_owned(),
                ));
            }
            if let Some(length) = declared_length.filter(|l| *l > limit) {
                return Err(ApiError::PayloadTooLarge(format!(
                    "the body is {length} bytes; at most {limit} are accepted"
                )));
            }
            let bytes = read_to_limit(body, limit).await?;
            parse_json(&bytes).map(Json)
        })
    }
}

async fn read_to_limit(mut body: Decompress<Payload>, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(format!(
                "the body is over the {limit}-byte limit"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Deserializes a JSON object: 400 when it is not JSON, 422 keyed by the field's path when
/// it is JSON of the wrong shape. Every body the API takes is an object; anything else (an
/// array, a string) is refused rather than read field by field in order, as serde would.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        // Still tell malformed JSON (400) from a well-formed non-object (422).
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => ApiError::field(WHOLE_BODY, "must be a JSON object"),
                Err(e) => not_json(&e),
            },
        );
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| not_json(&e))?;
    integral_floats_to_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        shape_error(&path, &message, invalid_body)
    })
}

/// JSON has one number type: `3.0` is the integer 3 to JSON Schema (and so to the document
/// and the clients generated from it), while serde refuses it for an `i64` field. Numbers
/// with no fractional part that fit an `i64` are made integers before deserializing.
fn integral_floats_to_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64() {
                // The bounds are exact powers of two, so the comparison is exact.
                if f.fract() == 0.0 && f >= -(2f64.powi(63)) && f < 2f64.powi(63) {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

fn not_json(e: &serde_json::Error) -> ApiError {
    ApiError::BadRequest(format!("the body is not valid JSON: {e}"))
}

/// One field error keyed by its path. serde reports a missing or duplicate field at the
/// object that lacks or has it, so the field's name is appended to that path. An unknown
/// field fails while its key is read, and `serde_path_to_error` already ends the path with
/// that key (`role`, `lines[0].foo`), so it is not appended twice.
fn shape_error(path: &str, message: &str, build: fn(String, FieldErrors) -> ApiError) -> ApiError {
    let parent = if path == "." { "" } else { path };
    let named = ["missing field `", "unknown field `", "duplicate field `"]
        .iter()
        .find_map(|prefix| message.split(prefix).nth(1)?.split('`').next());
    let unknown = message.starts_with("unknown field `");
    let key = match named {
        Some(field) if unknown && (parent == field || parent.ends_with(&format!(".{field}"))) => {
            parent.to_owned()
        }
        Some(field) if parent.is_empty() => field.to_owned(),
        Some(field) => format!("{parent}.{field}"),
        None if parent.is_empty() => WHOLE_BODY.to_owned(),
        None => parent.to_owned(),
    };
    let mut errors = FieldErrors::new();
    errors.insert(key.clone(), vec![message.to_owned()]);
    build(format!("{key}: {message}"), errors)
}

/// A JSON body that may be left out entirely (then `T::default()`), for actions whose body
/// only carries optional extras. Otherwise as `Json<T>`.
pub fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    // `null` is what a client sends for "no body" as often as nothing at all.
    if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" {
        return Ok(T::default());
    }
    parse_json(body)
}

/// An `application/x-www-form-urlencoded` body, with errors keyed by the field's name.
pub fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(bytes));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        shape_error(&path, &e.into_inner().to_string(), invalid_body)
    })
}

/// Query-string parameters, deserialized and then checked against their documented limits
/// (`#[validate]` on the parameter struct). Either failure is 400 with `errors` keyed by
/// the parameter's name.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + Validate> Query<T> {
    pub fn from_query(query: &str) -> Result<Self, ApiError> {
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        let value: T = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            shape_error(&path, &e.into_inner().to_string(), bad_parameters)
        })?;
        value.validate().map_err(|e| match ApiError::from(e) {
            ApiError::Validation { detail, errors } => bad_parameters(detail, errors),
            other => other,
        })?;
        Ok(Self(value))
    }
}

fn invalid_body(detail: String, errors: FieldErrors) -> ApiError {
    ApiError::Validation { detail, errors }
}

fn bad_parameters(detail: String, errors: FieldErrors) -> ApiError {
    ApiError::BadParameters { detail, errors }
}

impl<T: DeserializeOwned + Validate> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Self::from_query(req.query_string()))
    }
}

/// A path value of the wrong type (`/items/abc`) names nothing that exists: 404. When the
/// path is a fixed route taken by a template of another method (`PATCH /items/export.csv`
/// reaching `PATCH /items/{id}`), it is the method that is wrong: 405 with `Allow`.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, req: &HttpRequest| {
        let allowed = req
            .app_data::<web::Data<crate::state::AppState>>()
            .and_then(|state| state.routes.allowed(req.path()));
        match allowed {
            Some(methods) if !methods.contains(req.method()) => ApiError::MethodNotAllowed(
                format!("{} is not allowed on {}", req.method(), req.path()),
                methods.iter().map(ToString::to_string).collect(),
            ),
            _ => ApiError::NotFound(format!("{} was not found ({err})", req.path())),
        }
        .into()
    })
}

/// Reads a whole body of at most `limit` bytes (413 above it), for routes whose limit is not
/// the JSON one.
pub async fn read_limited(payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(ApiError::BadRequest(format!(
            "the body could not be read: {e}"
        ))),
        Err(_) => Err(ApiError::PayloadTooLarge(format!(
            "the body is over the {limit}-byte limit"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    #[serde(deny_unknown_fields)]
    struct Line {
        quantity: i64,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    #[serde(deny_unknown_fields)]
    struct Order {
        lines: Vec<Line>,
    }

    fn keys(err: ApiError) -> Vec<String> {
        match err {
            ApiError::Validation { errors, .. } | ApiError::BadParameters { errors, .. } => {
                errors.into_keys().collect()
            }
            other => panic!("not a field error: {other:?}"),
        }
    }

    #[test]
    fn nested_paths_name_the_field() {
        let err =
            parse_json::<Order>(br#"{"lines":[{"quantity":1},{"quantity":"x"}]}"#).unwrap_err();
        assert_eq!(keys(err), ["lines[1].quantity"]);
        let err = parse_json::<Order>(br#"{"lines":[{}]}"#).unwrap_err();
        assert_eq!(keys(err), ["lines[0].quantity"]);
        let order = parse_json::<Order>(br#"{"lines":[{"quantity":3.0}]}"#).expect("3.0 is 3");
        assert_eq!(order.lines[0].quantity, 3);
        let err = parse_json::<Order>(br#"{"lines":[{"quantity":3.5}]}"#).unwrap_err();
        assert_eq!(keys(err), ["lines[0].quantity"]);
        // Unknown fields are keyed by their own path, at the top and nested.
        let err = parse_json::<Order>(br#"{"lines":[],"owner_id":1}"#).unwrap_err();
        assert_eq!(keys(err), ["owner_id"]);
        let err = parse_json::<Order>(br#"{"lines":[{"quantity":1},{"quantity":1,"foo":2}]}"#)
            .unwrap_err();
        assert_eq!(keys(err), ["lines[1].foo"]);
        let err = parse_form::<Line>(b"quantity=1&role=owner").unwrap_err();
        assert_eq!(keys(err), ["role"]);
        let err = parse_json::<Order>(br#"[]"#).unwrap_err();
        assert_eq!(keys(err), ["body"]);
        assert!(matches!(
            parse_json::<Order>(br#"{"lines":"#),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_json::<Order>(br#"{"lines":[]} x"#),
            Err(ApiError::BadRequest(_))
        ));
    }
}
