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
    /// Only on validation failures (422) and duplicates (409): field name → messages.
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
    RequestTimeout(String),
    #[error("{0}")]
    Conflict(String),
    /// A value that must be unique is already used (409 naming the field).
    #[error("{detail}")]
    Taken { detail: String, errors: FieldErrors },
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
    /// Something that is our fault. Its cause and where it happened are logged, never sent.
    #[error("internal error: {0}")]
    Internal(Box<InternalError>),
}

/// The cause of a 500 and the place in our code where it surfaced.
#[derive(Debug, thiserror::Error)]
#[error("{cause} (at {location})")]
pub struct InternalError {
    #[source]
    pub cause: Box<dyn std::error::Error + Send + Sync>,
    pub location: &'static std::panic::Location<'static>,
}

impl InternalError {
    /// The cause and every error beneath it, outermost first.
    fn chain(&self) -> String {
        let mut text = self.cause.to_string();
        let mut next = self.cause.source();
        while let Some(inner) = next {
            text.push_str(": ");
            text.push_str(&inner.to_string());
            next = inner.source();
        }
        text
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::NotFound(format!("{what} was not found"))
    }

    /// A 500 whose cause is `cause`, logged with the caller's location.
    #[track_caller]
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(Box::new(InternalError {
            cause: cause.into(),
            location: std::panic::Location::caller(),
        }))
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

    /// 409: the value of `field` (a name from the contract, e.g. `sku`) is already used.
    pub fn taken(field: &'static str) -> Self {
        let message = UNIQUE_FIELDS
            .iter()
            .find(|u| u.field == field)
            .map_or("is already taken", |u| u.message);
        let mut errors = FieldErrors::new();
        errors.insert(field.to_owned(), vec![message.to_owned()]);
        Self::Taken {
            detail: format!("{field} {message}"),
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
                Self::Validation { errors, .. }
                | Self::Taken { errors, .. }
                | Self::BadParameters { errors, .. } => Some(errors.clone()),
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
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Conflict(_) | Self::Taken { .. } => StatusCode::CONFLICT,
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
            tracing::error!(error = %inner.chain(), location = %inner.location, "internal error");
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
    // The `?` that converts is where the error surfaced: that is the location logged.
    #[track_caller]
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => Self::NotFound("the resource was not found".to_owned()),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                match taken_field(info.as_ref()) {
                    Some(field) => Self::taken(field),
                    None => {
                        // A constraint missing from UNIQUE_FIELDS: say nothing of the schema.
                        tracing::warn!(error = info.message(), "unmapped unique violation");
                        Self::Conflict("it already exists".to_owned())
                    }
                }
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
            other => Self::internal(other),
        }
    }
}

/// A unique column clients can collide with, and how the contract names it.
struct UniqueField {
    table: &'static str,
    column: &'static str,
    field: &'static str,
    message: &'static str,
}

/// Every unique column a request can hit. A violation is answered in these words, the
/// same on both backends, never with the database's constraint name.
const UNIQUE_FIELDS: [UniqueField; 4] = [
    UniqueField {
        table: "items",
        column: "sku",
        field: "sku",
        message: "is already used by another item",
    },
    UniqueField {
        table: "items",
        column: "barcode",
        field: "barcode",
        message: "is already used by another item",
    },
    UniqueField {
        table: "users",
        column: "username_key",
        field: "username",
        message: "is already taken",
    },
    UniqueField {
        table: "users",
        column: "email_key",
        field: "email",
        message: "is already registered",
    },
];

/// The contract's field behind a unique violation: PostgreSQL names the constraint
/// `<table>_<column>_key`; SQLite's message says `UNIQUE constraint failed: <table>.<column>`.
fn taken_field(info: &dyn diesel::result::DatabaseErrorInformation) -> Option<&'static str> {
    UNIQUE_FIELDS
        .iter()
        .find(|u| {
            let constraint = format!("{}_{}_key", u.table, u.column);
            let qualified = format!("{}.{}", u.table, u.column);
            info.constraint_name() == Some(constraint.as_str())
                || info
                    .message()
                    .strip_prefix("UNIQUE constraint failed: ")
                    .is_some_and(|columns| columns.split(", ").any(|c| c == qualified))
        })
        .map(|u| u.field)
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
    #[track_caller]
    fn or_not_found(self, what: impl std::fmt::Display) -> ApiResult<T> {
        match self {
            Ok(value) => Ok(value),
            Err(diesel::result::Error::NotFound) => Err(ApiError::not_found(what)),
            Err(other) => Err(ApiError::from(other)),
        }
    }
}

/// Turns an error that is our fault into a 500 that logs it with the caller's location.
pub trait OrInternal<T> {
    fn or_internal(self) -> ApiResult<T>;
}

impl<T, E: Into<Box<dyn std::error::Error + Send + Sync>>> OrInternal<T> for Result<T, E> {
    #[track_caller]
    fn or_internal(self) -> ApiResult<T> {
        match self {
            Ok(value) => Ok(value),
            Err(cause) => Err(ApiError::internal(cause)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error};

    /// A database error as each backend reports it.
    struct Reported {
        message: &'static str,
        constraint: Option<&'static str>,
    }

    impl DatabaseErrorInformation for Reported {
        fn message(&self) -> &str {
            self.message
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            self.constraint
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn unique_violation(message: &'static str, constraint: Option<&'static str>) -> ApiError {
        Error::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new(Reported {
                message,
                constraint,
            }),
        )
        .into()
    }

    #[test]
    fn unique_violations_name_the_field_alike_on_both_backends() {
        let postgres = unique_violation(
            "duplicate key value violates unique constraint \"items_sku_key\"",
            Some("items_sku_key"),
        );
        let sqlite = unique_violation("UNIQUE constraint failed: items.sku", None);
        for err in [&postgres, &sqlite] {
            let problem = err.problem();
            assert_eq!(problem.status, 409);
            assert_eq!(problem.detail, "sku is already used by another item");
            assert!(problem
                .errors
                .as_ref()
                .is_some_and(|e| e.contains_key("sku")));
        }
        let email = unique_violation(
            "duplicate key value violates unique constraint \"users_email_key_key\"",
            Some("users_email_key_key"),
        );
        assert_eq!(email.problem().detail, "email is already registered");
        let username = unique_violation("UNIQUE constraint failed: users.username_key", None);
        assert_eq!(username.problem().detail, "username is already taken");
        let unknown = unique_violation(
            "duplicate key value violates unique constraint \"sessions_pkey\"",
            Some("sessions_pkey"),
        );
        assert_eq!(unknown.problem().detail, "it already exists");
    }
}
