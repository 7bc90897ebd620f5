use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

/// Why a notification was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// New messages in a chat (one notification until the chat is read; `count` grows).
    Message,
    /// A customer asked for replenishment (to staff).
    RequestCreated,
    /// The request was fulfilled (to its customer).
    RequestFulfilled,
    /// The request was rejected (to its customer).
    RequestRejected,
    /// The request was cancelled (to its customer).
    RequestCancelled,
    /// A batch entered its item's expiry window (to staff).
    BatchExpiring,
    /// A batch expired (to staff).
    BatchExpired,
    /// An item's available stock fell to or below its reorder level (to staff).
    LowStock,
    /// One of the customer's holdings entered its expiry window.
    HoldingExpiring,
    /// One of the customer's holdings expired.
    HoldingExpired,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::RequestCreated => "request_created",
            Self::RequestFulfilled => "request_fulfilled",
            Self::RequestRejected => "request_rejected",
            Self::RequestCancelled => "request_cancelled",
            Self::BatchExpiring => "batch_expiring",
            Self::BatchExpired => "batch_expired",
            Self::LowStock => "low_stock",
            Self::HoldingExpiring => "holding_expiring",
            Self::HoldingExpired => "holding_expired",
        }
    }

    pub fn parse(s: &str) -> Self {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).unwrap_or(Self::Message)
    }
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubjectType {
    Chat,
    Message,
    Request,
    Item,
    Batch,
    Holding,
}

impl SubjectType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Message => "message",
            Self::Request => "request",
            Self::Item => "item",
            Self::Batch => "batch",
            Self::Holding => "holding",
        }
    }

    pub fn parse(s: &str) -> Self {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).unwrap_or(Self::Chat)
    }
}

/// The thing a notification is about: its id, and the API path that shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Link {
    #[serde(rename = "type")]
    pub kind: SubjectType,
    pub id: i64,
    /// Where the API shows it, e.g. `/api/v1/chats/4/messages` or `/api/v1/items/12`.
    pub path: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotificationOut {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: NotificationKind,
    pub title: String,
    /// A short text (at most a few hundred characters).
    pub body: String,
    pub link: Link,
    /// How many new messages a `message` notification stands for; 1 for every other type.
    pub count: i64,
    pub read: bool,
    #[serde(serialize_with = "crate::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub read_at: Option<NaiveDateTime>,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
    /// When it last changed (a chat notification changes with every new message).
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Default, Deserialize, IntoParams, Validate)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// `true`: only unread ones. Absent or `false`: all.
    pub unread: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadAllOut {
    /// How many notifications this call marked read.
    pub marked_read: i64,
}
