use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::{Validate, ValidationError};

use crate::files::dto::FileOut;
use crate::validation::{invalid, plain_text};

/// The longest message body, in characters.
pub const MAX_BODY_CHARS: u64 = 4_000;
/// The longest `client_id`.
pub const MAX_CLIENT_ID_CHARS: u64 = 100;
/// Members named when a group is created (more join through `POST /members`).
pub const MAX_INITIAL_MEMBERS: u64 = 1_000;
/// Members a chat may have.
pub const MAX_MEMBERS: i64 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChatKind {
    Direct,
    Group,
}

impl ChatKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Group => "group",
        }
    }

    pub fn parse(s: &str) -> Self {
        if s == "group" {
            Self::Group
        } else {
            Self::Direct
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    Admin,
    Member,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Self {
        if s == "admin" {
            Self::Admin
        } else {
            Self::Member
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Text,
    Image,
    File,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
            Self::File => "file",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "image" => Self::Image,
            "file" => Self::File,
            _ => Self::Text,
        }
    }
}

fn valid_title(value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(invalid("may not be blank"));
    }
    plain_text(value)
}

fn valid_body(value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(invalid("may not be blank"));
    }
    plain_text(value)
}

fn valid_client_id(value: &str) -> Result<(), ValidationError> {
    if value.is_empty() || value.chars().any(char::is_control) {
        return Err(invalid(
            "must be 1 to 100 characters without control characters",
        ));
    }
    Ok(())
}

/// A direct chat names one other person; a group (staff only) has a title and members.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChat {
    pub kind: ChatKind,
    /// Groups only: 1–100 characters.
    #[validate(length(min = 1, max = 100), custom(function = "valid_title"))]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub title: Option<String>,
    /// The other members (user ids; bots by their `user_id`). A direct chat names exactly one.
    #[validate(length(min = 1, max = MAX_INITIAL_MEMBERS))]
    #[schema(min_items = 1, max_items = 1000)]
    pub member_ids: Vec<i64>,
}

/// What a member changes about a chat: its `title` (a group's admin) and whether it is
/// `muted` for them (any member; a muted chat raises no notifications, its events still
/// arrive on the socket).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatPatch {
    #[validate(length(min = 1, max = 100), custom(function = "valid_title"))]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub title: Option<String>,
    pub muted: Option<bool>,
}

/// Who wrote a message or belongs to a chat. An erased account shows only its id and
/// `deleted: true`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Author {
    pub id: i64,
    pub deleted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `owner`, `worker`, `customer` or `bot`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MessageOut {
    pub id: i64,
    pub chat_id: i64,
    pub author: Author,
    pub kind: MessageKind,
    /// `null` once deleted.
    pub body: Option<String>,
    /// The attached file (`image` and `file` messages); `null` once deleted.
    pub file: Option<FileOut>,
    /// The sender's idempotency key, so a client can match the echo of its own send.
    pub client_id: Option<String>,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub edited_at: Option<NaiveDateTime>,
    /// A deleted message stays in the history as a tombstone, without body or file.
    pub deleted: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChatOut {
    pub id: i64,
    pub kind: ChatKind,
    /// Groups only.
    pub title: Option<String>,
    pub created_by: Option<i64>,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
    /// The newest message's time (or the creation time): what `GET /chats` sorts by.
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub last_activity_at: NaiveDateTime,
    pub member_count: i64,
    /// The caller's role in this chat.
    pub my_role: MemberRole,
    /// Direct chats: the other person.
    pub peer: Option<Author>,
    pub last_message: Option<MessageOut>,
    /// Messages by others after the caller's read marker, deleted ones not counted.
    pub unread_count: i64,
    pub last_read_message_id: i64,
    /// Whether the caller muted this chat (no notifications from it).
    pub muted: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberOut {
    pub user: Author,
    pub role: MemberRole,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub joined_at: NaiveDateTime,
    pub last_read_message_id: i64,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    /// A person's id, or a bot's `user_id`.
    pub user_id: i64,
    /// `member` unless given.
    pub role: Option<MemberRole>,
}

/// `text` needs a `body`; `image` and `file` need a `file_id` (the body is then an
/// optional caption).
#[derive(Debug, Clone, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    #[serde(default = "text_kind")]
    pub kind: MessageKind,
    /// 1–4,000 characters.
    #[validate(length(min = 1, max = MAX_BODY_CHARS), custom(function = "valid_body"))]
    #[schema(
        min_length = 1,
        max_length = 4000,
        pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub body: Option<String>,
    pub file_id: Option<i64>,
    /// Makes the send idempotent: the same `client_id` again (by the same author, in the
    /// same chat) returns the first message with 200 instead of storing another.
    #[validate(length(min = 1, max = MAX_CLIENT_ID_CHARS), custom(function = "valid_client_id"))]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$"
    )]
    pub client_id: Option<String>,
}

fn text_kind() -> MessageKind {
    MessageKind::Text
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessagePatch {
    /// 1–4,000 characters.
    #[validate(length(min = 1, max = MAX_BODY_CHARS), custom(function = "valid_body"))]
    #[schema(
        min_length = 1,
        max_length = 4000,
        pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub body: String,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// Only messages older than this message id.
    #[validate(range(min = 0))]
    #[param(minimum = 0)]
    pub before: Option<i64>,
    /// Only messages newer than this message id.
    #[validate(range(min = 0))]
    #[param(minimum = 0)]
    pub after: Option<i64>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadUpTo {
    /// Everything up to this message id counts as read. The marker never moves backwards.
    #[validate(range(min = 0))]
    #[schema(minimum = 0)]
    pub up_to_message_id: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadState {
    pub chat_id: i64,
    pub last_read_message_id: i64,
    pub unread_count: i64,
}

/// `chat.member_added` / `chat.member_removed` event data.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembersChanged {
    pub chat_id: i64,
    pub user_ids: Vec<i64>,
    /// Who added or removed them (themselves when leaving).
    pub by: i64,
    /// `chat.member_removed` only: the whole chat was deleted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub chat_deleted: bool,
}

/// `command` event data: a text message starting with `/`, for the chat's bots.
#[derive(Debug, Serialize, ToSchema)]
pub struct Command {
    pub chat_id: i64,
    pub message_id: i64,
    /// The command's name without the slash (and without an `@bot` suffix): `stock`.
    pub command: String,
    /// The rest of the message, trimmed: `milk`.
    pub args: String,
    pub message: MessageOut,
}

/// Longest command name taken as one (`/` then letters, digits, `_` or `-`).
const MAX_COMMAND_CHARS: usize = 32;

impl Command {
    /// The command a message carries, if its text starts with `/name`.
    pub fn parse(message: &MessageOut) -> Option<Self> {
        if message.kind != MessageKind::Text {
            return None;
        }
        let text = message.body.as_deref()?.trim_start().strip_prefix('/')?;
        let (word, args) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let name = word.split_once('@').map_or(word, |(name, _)| name);
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if name.is_empty() || name.chars().count() > MAX_COMMAND_CHARS || !name.chars().all(valid) {
            return None;
        }
        Some(Self {
            chat_id: message.chat_id,
            message_id: message.id,
            command: name.to_owned(),
            args: args.trim().to_owned(),
            message: message.clone(),
        })
    }
}

/// `read` event data.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadEvent {
    pub chat_id: i64,
    pub user_id: i64,
    pub up_to_message_id: i64,
}

/// `typing` event data.
#[derive(Debug, Serialize, ToSchema)]
pub struct TypingEvent {
    pub chat_id: i64,
    pub user_id: i64,
}
