use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::chat::dto::MessageKind;
use crate::error::FieldErrors;

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SocketQuery {
    /// The last `seq` this client processed: every later event is replayed, in order, before
    /// the live ones. Without it, only live events arrive.
    #[validate(range(min = 0))]
    #[param(minimum = 0)]
    pub since: Option<i64>,
    /// The access token, for clients that cannot set headers (browsers).
    #[validate(length(max = 4096))]
    #[param(max_length = 4096)]
    pub access_token: Option<String>,
}

/// What a client may send, as JSON text frames.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type")]
pub enum ClientFrame {
    /// Sends a message, with the rules (and `client_id` idempotency) of
    /// `POST /api/v1/chats/{id}/messages`. The message comes back as `message.created`.
    #[serde(rename = "message.send")]
    Send {
        chat_id: i64,
        #[serde(default)]
        kind: Option<MessageKind>,
        #[serde(default)]
        body: Option<String>,
        #[serde(default)]
        file_id: Option<i64>,
        #[serde(default)]
        client_id: Option<String>,
    },
    /// Tells the chat's other members that this user is typing (never stored).
    #[serde(rename = "typing")]
    Typing { chat_id: i64 },
    /// Answered with `{"type":"pong"}`.
    #[serde(rename = "ping")]
    Ping,
}

/// What the server sends, as JSON text frames. Stored events carry `seq`; `typing`, `pong`,
/// `resync` and `error` do not.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerFrame {
    /// The event's position in the user's own stream (stored events only).
    pub seq: Option<i64>,
    /// `message.created`, `message.updated`, `message.deleted`, `chat.member_added`,
    /// `chat.member_removed`, `read`, `notification.created` (stored); `typing`, `pong`,
    /// `resync`, `error` (not stored).
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = Object)]
    pub data: Option<serde_json::Value>,
}

/// An `error` frame: a client frame that could not be carried out. The socket stays open.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorFrame {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The HTTP status the same request would have had over REST.
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub errors: Option<FieldErrors>,
    /// The `client_id` of the `message.send` that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}
