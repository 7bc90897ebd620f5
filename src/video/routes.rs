use actix_web::{get, web, HttpRequest, HttpResponse};

use super::dto::FrameAnalysis;
use super::socket;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The camera socket: JPEG or PNG frames in (binary, base64 text, or JSON
/// `VideoClientFrame`), one `FrameAnalysis` out per processed frame, or
/// `{"type":"error","detail","seq"?}` for a bad one (the socket stays open; 10 bad frames in
/// a row close it with 1008). Frames arriving while one is processed replace each other;
/// `dropped` counts them. Credentials are checked before the upgrade (401 without them).
#[utoipa::path(
    operation_id = "video_socket",
    tag = "realtime",
    responses(
        (status = 101, body = FrameAnalysis, description = "Switching Protocols: the socket carries `FrameAnalysis` (or `VideoError`) frames to the client and frames (`VideoClientFrame`, base64 text, or binary image bytes) from it"),
        (status = 400, description = "Not a WebSocket upgrade request"),
        (status = 429, description = "Too many camera sockets open for this user, or too many socket connects in the last minute from this user or address (`/api/ws/chat` counts too)", headers(("Retry-After" = u64))),
    )
)]
#[get("/video")]
pub async fn video_socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    principal: Principal,
) -> ApiResult<HttpResponse> {
    state.throttles.connect(&req, &principal)?;
    let slot =
        state
            .video_sockets
            .take(principal.user_id)
            .ok_or_else(|| ApiError::TooManyRequests {
                detail: format!(
                    "at most {} camera sockets per user; close one first",
                    state.settings.ws_sockets_per_user
                ),
                retry_after_secs: 5,
            })?;
    let (response, session, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::BadRequest(format!("not a WebSocket upgrade request: {e}")))?;
    // Room for twice the base64 of the largest accepted frame, so a frame somewhat over the
    // limit gets an error frame; anything beyond is closed (1009) rather than buffered.
    let max_message = state.settings.video_max_frame_bytes.div_ceil(3) * 8 + (64 << 10);
    let stream = stream
        .max_frame_size(max_message)
        .aggregate_continuations()
        .max_continuation_size(max_message);
    actix_web::rt::spawn(async move {
        socket::run(state.into_inner(), principal, session, stream).await;
        drop(slot);
    });
    Ok(response)
}
