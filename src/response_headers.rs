//! Headers every answer gets for the browsers and caches between Stockroom and its users.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::Error;

/// Swagger UI loads only its own scripts and styles from the binary and calls only this
/// server; its React views set inline styles, and its icons are `data:` images. Nothing may
/// frame it (a framed page that holds a token could be clickjacked).
const DOCS_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Outer middleware:
/// - API answers carry tokens (login, refresh, bot tokens) and private data, so no browser
///   or shared cache may keep them: `Cache-Control: no-store`, unless the handler chose a
///   policy of its own (stored files, which never change under one id, are `private`).
/// - `X-Content-Type-Options: nosniff` everywhere, so a browser never reads JSON as a page.
/// - `/docs/`: a content security policy and frame protection.
pub async fn add(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let docs = req.path().starts_with("/docs");
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    let mut default = |name: HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    default(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if docs {
        default(header::CONTENT_SECURITY_POLICY, DOCS_POLICY);
        default(header::X_FRAME_OPTIONS, "DENY");
        default(header::REFERRER_POLICY, "no-referrer");
    } else {
        default(header::CACHE_CONTROL, "no-store");
    }
    Ok(res)
}
