//! How actix's own extractor errors are answered: problem+json with the contract's status.

use actix_web::error::{JsonPayloadError, QueryPayloadError, UrlencodedError};
use actix_web::{web, HttpRequest};

use crate::error::ApiError;

/// The request's media type, lower-cased ("" when absent).
pub fn content_type(req: &HttpRequest) -> String {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req: &HttpRequest| json_error(err).into())
}

/// A JSON body that may be left out entirely (then `T::default()`), for actions whose body
/// only carries optional extras. Malformed JSON is still 400.
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            data_error(&e.to_string())
        } else {
            ApiError::BadRequest(format!("the body is not valid JSON: {e}"))
        }
    })
}

fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::OverflowKnownLength { length, limit } => ApiError::PayloadTooLarge(
            format!("the body is {length} bytes; at most {limit} are accepted"),
        ),
        JsonPayloadError::Overflow { limit } => {
            ApiError::PayloadTooLarge(format!("the body is over the {limit}-byte limit"))
        }
        JsonPayloadError::ContentType => {
            ApiError::UnsupportedMediaType("the body must be application/json".to_owned())
        }
        JsonPayloadError::Deserialize(e) if e.is_data() => data_error(&e.to_string()),
        JsonPayloadError::Deserialize(e) => {
            ApiError::BadRequest(format!("the body is not valid JSON: {e}"))
        }
        other => ApiError::BadRequest(format!("the body could not be read: {other}")),
    }
}

/// A well-formed body of the wrong shape: 422 naming the field when serde says which.
fn data_error(message: &str) -> ApiError {
    let field = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| {
            let rest = message.split(prefix).nth(1)?;
            rest.split('`').next()
        })
        .unwrap_or("body");
    let text = message.split(" at line ").next().unwrap_or(message);
    ApiError::field(field, text)
}

pub fn form_config(limit: usize) -> web::FormConfig {
    web::FormConfig::default()
        .limit(limit)
        .error_handler(|err, _req: &HttpRequest| {
            match err {
                UrlencodedError::Overflow { size, limit } => ApiError::PayloadTooLarge(format!(
                    "the form is {size} bytes; at most {limit} are accepted"
                )),
                UrlencodedError::ContentType => ApiError::UnsupportedMediaType(
                    "the body must be application/x-www-form-urlencoded".to_owned(),
                ),
                other => ApiError::BadRequest(format!("the form could not be read: {other}")),
            }
            .into()
        })
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req: &HttpRequest| {
        let QueryPayloadError::Deserialize(e) = err else {
            return ApiError::BadRequest("the query string is malformed".to_owned()).into();
        };
        ApiError::BadRequest(format!("the query string is invalid: {e}")).into()
    })
}

/// A path value of the wrong type (`/items/abc`) names nothing that exists: 404.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, req: &HttpRequest| {
        ApiError::NotFound(format!("{} was not found ({err})", req.path())).into()
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
