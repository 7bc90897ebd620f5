use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use crate::validation::{invalid, plain_text};

/// Longest webhook URL accepted.
pub const MAX_URL_CHARS: u64 = 2_048;

fn valid_name(value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(invalid("may not be blank"));
    }
    if value.contains(['\n', '\t']) {
        return Err(invalid("must be one line"));
    }
    plain_text(value)
}

/// A new bot. Its webhook is optional: a bot without one reads its events over
/// `/api/ws/chat` with its token.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBot {
    #[validate(length(min = 1, max = 64), custom(function = "valid_name"))]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    #[validate(length(max = 500), custom(function = "plain_text"))]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// `http://` or `https://`; loopback and private addresses only when the server allows
    /// them (`STOCKROOM_WEBHOOK_ALLOW_PRIVATE`).
    #[validate(length(min = 1, max = MAX_URL_CHARS))]
    #[schema(min_length = 1, max_length = 2048, pattern = "^https?://")]
    pub webhook_url: Option<String>,
}

/// What the owner changes about a bot; absent fields stay. Setting `webhook_url` (even to
/// the same URL) re-enables a webhook that a 410 Gone disabled; `null` removes it.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BotPatch {
    #[validate(length(min = 1, max = 64), custom(function = "valid_name"))]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "crate::pagination::double_option")]
    #[validate(length(max = 500), custom(function = "plain_text"))]
    #[schema(max_length = 500)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::pagination::double_option")]
    #[validate(length(min = 1, max = MAX_URL_CHARS))]
    #[schema(min_length = 1, max_length = 2048, pattern = "^https?://")]
    pub webhook_url: Option<Option<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    /// No webhook: the bot reads its events over the socket.
    None,
    /// Events are POSTed to `webhook_url`.
    Active,
    /// The receiver answered 410 Gone; nothing is sent (events wait) until the URL is set again.
    Disabled,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BotOut {
    pub id: i64,
    /// The bot's account: what chats take as a member id, and the author id of its messages.
    pub user_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_status: WebhookStatus,
    /// Why the webhook was disabled, when it was.
    pub webhook_disabled_reason: Option<String>,
    #[serde(serialize_with = "crate::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub webhook_disabled_at: Option<NaiveDateTime>,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: NaiveDateTime,
}

/// A new bot with its secrets, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedBot {
    pub bot: BotOut,
    /// Send as `Authorization: Bot <token>`. Only its hash is stored.
    pub token: String,
    /// `whsec_<base64>`: verifies the webhook signatures (any Standard Webhooks library takes
    /// it as it is).
    pub signing_secret: String,
}

/// A rotated token; the previous one stopped working.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenOut {
    pub token: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt or its next retry.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up: retries ran out, or the receiver answered 410 Gone.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// One event sent (or to send) to a bot's webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    /// Also the `webhook-id` and `X-Stockroom-Delivery` header: the same on every attempt.
    pub id: i64,
    /// `message.created`, `command`, `chat.member_added`, …
    pub event_type: String,
    /// The event's position in the bot's stream; deliveries go out in this order.
    pub seq: i64,
    pub status: DeliveryStatus,
    pub attempts: i32,
    /// The HTTP status of the last attempt (none when it got no answer).
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    #[serde(serialize_with = "crate::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_attempt_at: Option<NaiveDateTime>,
    /// When the next attempt is due (pending deliveries only).
    #[serde(serialize_with = "crate::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<NaiveDateTime>,
    #[serde(serialize_with = "crate::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<NaiveDateTime>,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
}
