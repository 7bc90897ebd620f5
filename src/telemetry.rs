//! Logging, request ids, and the last line of defence that turns any error answer
//! (including actix's own) into problem+json.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use tracing::Instrument;

use crate::config::LogFormat;
use crate::error::{problem_response, Problem, PROBLEM_JSON};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served, kept in request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    // actix-web-prom warns on every request to a regex route (Swagger UI's `/docs/{_:.*}`)
    // that it cannot expand the pattern; it still records the metric, so that line is noise.
    // lopdf logs a line per broken object while an uploaded PDF is checked: a crafted file
    // could write hundreds of thousands (the upload is refused with 422 either way).
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,actix_server=warn,r2d2=warn,actix_web_prom=error,lopdf=off")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // A second init (tests start many servers in one process) is harmless.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// A client-sent id is kept when it is short, visible ASCII; otherwise a new one is made.
fn request_id_from(req: &ServiceRequest) -> String {
    req.headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Outermost middleware: request id, one log line per request, problem+json for every error.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let id = request_id_from(&req);
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = req.path().to_owned();
    // Logs written while handling the request carry its id through this span.
    let span = tracing::info_span!("request", request_id = %id);
    // Inner layers answer errors as responses (so they get ids and logs here); an `Err`
    // that still escapes is rendered by actix from its own `ResponseError`.
    let response = match next.call(req).instrument(span.clone()).await {
        Ok(res) => res.map_into_boxed_body(),
        Err(err) => {
            span.in_scope(|| tracing::warn!(error = %err, "request failed before a response"));
            return Err(err);
        }
    };
    let mut response = into_problem(response);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    // The access line carries its own fields (not only the span's) so that every log
    // format shows the request id at top level.
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(request_id = %id, %method, %path, status, elapsed_ms, "request failed");
    } else {
        tracing::info!(request_id = %id, %method, %path, status, elapsed_ms, "request");
    }
    Ok(response)
}

/// Rewrites an error answer that is not problem+json yet (actix's own 404/405/413…).
fn into_problem(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON));
    if is_problem {
        return res;
    }
    let detail = match (status.is_server_error(), res.response().error()) {
        (false, Some(err)) => err.to_string(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let problem = Problem {
        kind: "about:blank".to_owned(),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail,
        errors: None,
    };
    // Keep every header the inner layers set (Allow, WWW-Authenticate, CORS…) but the body's own.
    let (req, old) = res.into_parts();
    let mut new = problem_response(&problem);
    for (name, value) in old.headers() {
        if ![
            header::CONTENT_TYPE,
            header::CONTENT_LENGTH,
            header::CACHE_CONTROL,
        ]
        .contains(name)
        {
            new.headers_mut().append(name.clone(), value.clone());
        }
    }
    ServiceResponse::new(req, new)
}
