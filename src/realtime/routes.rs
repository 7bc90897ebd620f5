use actix_web::{get, web, HttpRequest, HttpResponse};

use super::dto::{ServerFrame, SocketQuery};
use super::socket;
use crate::auth::{Action, Principal};
use crate::error::{ApiError, ApiResult};
use crate::events::EventBus;
use crate::extract;
use crate::state::AppState;

/// The user's (or bot's) event socket: every event of their stream, replayed after
/// `since` and then live, as `{"seq","type","data"}` text frames (`ServerFrame`); the client
/// may send `ClientFrame`s. Credentials are checked before the upgrade (401 without them).
/// A client too slow to read is closed with code 4008 and resumes with `since`.
#[utoipa::path(
    operation_id = "chat_socket",
    tag = "realtime",
    params(SocketQuery),
    responses(
        (status = 101, body = ServerFrame, description = "Switching Protocols: the socket carries `ServerFrame`s to the client and `ClientFrame`s from it"),
        (status = 400, description = "Not a WebSocket upgrade request, or a bad `since`"),
        (status = 429, description = "Too many sockets open for this user, or too many socket connects in the last minute from this user or address (`/api/ws/video` counts too)", headers(("Retry-After" = u64))),
        (status = 503, description = "The database is unavailable"),
    )
)]
#[get("/chat")]
pub async fn chat_socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    principal: Principal,
    query: extract::Query<SocketQuery>,
) -> ApiResult<HttpResponse> {
    principal.require(Action::UseChats)?;
    state.throttles.connect(&req, &principal)?;
    let (response, session, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::BadRequest(format!("not a WebSocket upgrade request: {e}")))?;
    let subscription =
        state
            .events
            .subscribe(principal.user_id)
            .ok_or_else(|| ApiError::TooManyRequests {
                detail: format!(
                    "at most {} sockets per user; close one first",
                    state.settings.ws_sockets_per_user
                ),
                retry_after_secs: 5,
            })?;
    // Where the stream starts is fixed now, before the upgrade: events committed from here
    // on are pushed to the subscription above, so "live" loses nothing that happens while
    // the socket starts.
    let user = principal.user_id;
    let since = query.since;
    let resume = state
        .db
        .run(move |conn| EventBus::resume(conn, user, since))
        .await?;
    let max_frame = state.settings.ws_max_frame_bytes;
    let stream = stream
        .max_frame_size(max_frame)
        .aggregate_continuations()
        .max_continuation_size(max_frame);
    actix_web::rt::spawn(socket::run(
        state.into_inner(),
        principal,
        resume,
        subscription,
        session,
        stream,
    ));
    Ok(response)
}
