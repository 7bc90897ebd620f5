//! One error type for every handler, rendered as RFC 9457 `application/problem+json`.

use std::collections::BTreeMap;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// Field name → messages, as the contract's `errors` member.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// The body of every error answer.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem; `about:blank` means "see the status".
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    pub kind: String,
    #[schema(example = "Not Found")]
    pub title: String,
    #[schema(example = 404)]
    pub status: u16,
    #[schema(example = "item 7 was not found")]
    pub detail: String,
    /// Only on validation failures: field name → messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<FieldErrors>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// A query string that cannot be parsed or breaks a documented limit: 400, with
    /// `errors` keyed by the parameter's name so a client can show it.
    #[error("{detail}")]
    BadParameters { detail: String, errors: FieldErrors },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String, Vec<String>),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{detail}")]
    Validation { detail: String, errors: FieldErrors },
    #[error("{detail}")]
    TooManyRequests {
        detail: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    Unavailable(String),
    /// Something that is our fault. The inner text is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::NotFound(format!("{what} was not found"))
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    /// A validation failure on one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut errors = FieldErrors::new();
        errors.insert(field.to_owned(), vec![message.clone()]);
        Self::Validation {
            detail: format!("{field}: {message}"),
            errors,
        }
    }

    pub fn validation(errors: FieldErrors) -> Self {
        let detail = if errors.is_empty() {
            "the request is invalid".to_owned()
        } else {
            let fields: Vec<_> = errors.keys().map(String::as_str).collect();
            format!("invalid fields: {}", fields.join(", "))
        };
        Self::Validation { detail, errors }
    }

    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        let detail = match self {
            // Never leak internals; the request id in the log ties it back.
            Self::Internal(_) => "an unexpected error occurred; it has been logged".to_owned(),
            other => other.to_string(),
        };
        Problem {
            kind: "about:blank".to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            errors: match self {
                Self::Validation { errors, .. } | Self::BadParameters { errors, .. } => {
                    Some(errors.clone())
                }
                _ => None,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::BadParameters { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(..) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(inner) = self {
            tracing::error!(error = %inner, "internal error");
        }
        let mut res = problem_response(&self.problem());
        let headers = res.headers_mut();
        match self {
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::MethodNotAllowed(_, allow) => {
                if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
                    headers.insert(header::ALLOW, v);
                }
            }
            Self::TooManyRequests {
                retry_after_secs, ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        res
    }
}

pub fn problem_response(problem: &Problem) -> HttpResponse {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .content_type(PROBLEM_JSON)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(serde_json::to_string(problem).unwrap_or_default())
}

impl From<validator::ValidationErrors> for ApiError {
    fn from(e: validator::ValidationErrors) -> Self {
        let mut errors = FieldErrors::new();
        collect_validation_errors(&e, "", &mut errors);
        Self::validation(errors)
    }
}

fn collect_validation_errors(e: &validator::ValidationErrors, prefix: &str, out: &mut FieldErrors) {
    use validator::ValidationErrorsKind;
    for (field, kind) in e.errors() {
        let name = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                let messages = out.entry(name).or_default();
                for err in list {
                    messages.push(
                        err.message
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or_else(|| describe_validation_code(err)),
                    );
                }
            }
            ValidationErrorsKind::Struct(inner) => collect_validation_errors(inner, &name, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    collect_validation_errors(inner, &format!("{name}[{index}]"), out);
                }
            }
        }
    }
}

fn describe_validation_code(err: &validator::ValidationError) -> String {
    let param = |k: &str| err.params.get(k).map(|v| v.to_string());
    match err.code.as_ref() {
        "length" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be {min} to {max} characters long"),
            (Some(min), None) => format!("must be at least {min} characters long"),
            (None, Some(max)) => format!("must be at most {max} characters long"),
            _ => "has the wrong length".to_owned(),
        },
        "range" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be between {min} and {max}"),
            (Some(min), None) => format!("must be at least {min}"),
            (None, Some(max)) => format!("must be at most {max}"),
            _ => "is out of range".to_owned(),
        },
        "email" => "must be a valid email address".to_owned(),
        "url" => "must be a valid URL".to_owned(),
        other => format!("is invalid ({other})"),
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => Self::NotFound("the resource was not found".to_owned()),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                Self::Conflict(format!("already exists ({})", info.message()))
            }
            Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                Self::Conflict("it is still referenced by other records".to_owned())
            }
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => {
                Self::Unavailable("the database connection was lost".to_owned())
            }
            Error::DatabaseError(_, info) if is_busy(info.message()) => {
                Self::Unavailable("the database is busy; retry shortly".to_owned())
            }
            other => Self::Internal(format!("database: {other}")),
        }
    }
}

fn is_busy(message: &str) -> bool {
    message.contains("database is locked") || message.contains("database is busy")
}

impl From<r2d2::Error> for ApiError {
    fn from(e: r2d2::Error) -> Self {
        tracing::warn!(error = %e, "database pool could not hand out a connection");
        Self::Unavailable("the database is unavailable".to_owned())
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        Self::Unavailable("the server is shutting down".to_owned())
    }
}

/// Adds context to an error on its way out (in the spirit of Lemmy's `with_lemmy_type`).
pub trait Context<T> {
    /// Turns "not found" into a 404 naming what was looked for.
    fn or_not_found(self, what: impl std::fmt::Display) -> ApiResult<T>;
}

impl<T> Context<T> for Result<T, diesel::result::Error> {
    fn or_not_found(self, what: impl std::fmt::Display) -> ApiResult<T> {
        match self {
            Err(diesel::result::Error::NotFound) => Err(ApiError::not_found(what)),
            other => other.map_err(ApiError::from),
        }
    }
}
