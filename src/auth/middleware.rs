//! The middleware that guards protected scopes: it authenticates the caller (person or bot)
//! and puts the `Principal` into the request, or answers 401 with `WWW-Authenticate`.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage};

use std::sync::Arc;

use super::principal::Principal;
use super::session_cache::SessionCache;
use super::tokens::TokenKeys;
use super::Role;
use crate::coherence::{ChangeFeed, Ticket};
use crate::db::Db;
use crate::error::{ApiError, ApiResult};

/// What the guard needs to check credentials, registered as app data of its own so that
/// authentication depends on nothing but plumbing.
#[derive(Clone)]
pub struct Authenticator {
    pub tokens: Arc<TokenKeys>,
    pub db: Db,
    /// Live sessions this process remembers (see its module for how revocation stays
    /// immediate).
    pub sessions: Arc<SessionCache>,
    /// How this process hears of changes (the fence requests wait on, on PostgreSQL).
    pub feed: Arc<ChangeFeed>,
}

enum Credentials {
    Bearer(String),
    /// `Bot <token>`.
    Bot(String),
}

fn credentials(req: &ServiceRequest) -> ApiResult<Credentials> {
    if let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| {
            ApiError::Unauthorized("the Authorization header is malformed".to_owned())
        })?;
        let (scheme, token) = value.split_once(' ').ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".to_owned())
        })?;
        let token = token.trim().to_owned();
        return match scheme.to_ascii_lowercase().as_str() {
            "bearer" => Ok(Credentials::Bearer(token)),
            "bot" => Ok(Credentials::Bot(token)),
            _ => Err(ApiError::Unauthorized(format!(
                "unsupported authorization scheme {scheme:?}"
            ))),
        };
    }
    // Browsers cannot set headers on a WebSocket upgrade.
    if req.path().starts_with("/api/ws/") {
        let query =
            web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
                .map_err(|_| ApiError::Unauthorized("the query string is malformed".to_owned()))?;
        if let Some(token) = query.get("access_token") {
            return Ok(if token.starts_with(super::bots::TOKEN_PREFIX) {
                Credentials::Bot(token.clone())
            } else {
                Credentials::Bearer(token.clone())
            });
        }
    }
    Err(ApiError::Unauthorized(
        "credentials are required".to_owned(),
    ))
}

/// The role behind a live session, or `None` when it has ended: from memory when this
/// process may believe it, else from the database (then remembered). Logout, password
/// changes, role changes and erasure take effect at once on every process sharing the
/// database either way (see `super::session_cache`).
pub async fn live_role(
    auth: &Authenticator,
    session_id: i64,
    user_id: i64,
    ticket: Option<Ticket>,
) -> ApiResult<Option<Role>> {
    if let Some(role) = auth
        .sessions
        .lookup(session_id, user_id, crate::time::now(), ticket)
        .await
    {
        return Ok(Some(role));
    }
    let stamp = auth.sessions.stamp();
    let Some((role, expires_at)) = auth
        .db
        .run(move |conn| Ok(super::sessions::live_session(conn, session_id, user_id)?))
        .await?
    else {
        return Ok(None);
    };
    auth.sessions
        .remember(session_id, user_id, role, expires_at, stamp);
    Ok(Some(role))
}

/// Verifies the credentials of `req`.
pub async fn authenticate(auth: &Authenticator, req: &ServiceRequest) -> ApiResult<Principal> {
    // Taken first: what memory answers for this request must include every change
    // committed before it arrived.
    let ticket = auth.feed.ticket();
    match credentials(req)? {
        Credentials::Bearer(token) => {
            let (user_id, claims) = auth.tokens.verify(&token)?;
            let session_id = claims.sid;
            let role = live_role(auth, session_id, user_id, ticket)
                .await?
                .ok_or_else(|| ApiError::Unauthorized("the session has ended".to_owned()))?;
            Ok(Principal {
                user_id,
                role,
                session_id: Some(session_id),
                bot_id: None,
                ticket,
            })
        }
        Credentials::Bot(token) => {
            let hash = super::tokens::hash_secret(&token);
            let (bot_id, user_id) = auth
                .db
                .run(move |conn| Ok(super::bots::active_bot(conn, &hash)?))
                .await?
                .ok_or_else(|| ApiError::Unauthorized("the bot token is not valid".to_owned()))?;
            Ok(Principal {
                user_id,
                role: super::policy::Role::Bot,
                session_id: None,
                bot_id: Some(bot_id),
                ticket,
            })
        }
    }
}

pub async fn require_auth(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(auth) = req.app_data::<web::Data<Authenticator>>().cloned() else {
        let err = ApiError::internal("the authenticator is not registered");
        return Ok(req.error_response(err).map_into_right_body());
    };
    match authenticate(&auth, &req).await {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            Ok(next.call(req).await?.map_into_left_body())
        }
        // Answered here, as a response, so the outer layers add the request id and log it.
        Err(err) => Ok(req.error_response(err).map_into_right_body()),
    }
}
