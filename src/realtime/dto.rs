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
#[serde(tag = "type", deny_unknown_fields)]
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
    #[serde(rename = "ping", deserialize_with = "no_fields")]
    Ping,
}

/// A unit variant of an internally tagged enum would ignore every field beside the tag,
/// `deny_unknown_fields` or not: `ping` takes none, so any other field is refused by name.
fn no_fields<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoFields {}
    NoFields::deserialize(deserializer).map(|NoFields {}| ())
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
    /// On a 429 (a rate limit), the whole seconds to wait before sending again, as
    /// `Retry-After` says over REST; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub retry_after: Option<u64>,
}

/// Property tests in place of fuzzing: cargo-fuzz needs a nightly toolchain, so the chat
/// socket's client frames get arbitrary JSON and text from proptest on stable, parsed as the
/// socket parses them (`extract::parse_json`). Each case count is small enough for CI
/// (`PROPTEST_CASES` overrides them all).
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;
    use crate::error::ApiError;

    use crate::proptest_support::config;

    /// Parses `text` as the socket does; a refusal must become an `error` frame with a 4xx
    /// status, as `report` sends it.
    fn parse(text: &[u8]) -> Result<Option<ClientFrame>, TestCaseError> {
        match crate::extract::parse_json::<ClientFrame>(text) {
            Ok(frame) => Ok(Some(frame)),
            Err(e) => {
                let internal = matches!(e, ApiError::Internal(_));
                let problem = e.problem();
                prop_assert!(
                    !internal,
                    "an internal error for {:?}",
                    String::from_utf8_lossy(text)
                );
                prop_assert!(
                    matches!(problem.status, 400 | 422),
                    "status {} for {:?}",
                    problem.status,
                    String::from_utf8_lossy(text)
                );
                let frame = ErrorFrame {
                    kind: "error",
                    status: problem.status,
                    detail: problem.detail,
                    errors: problem.errors,
                    client_id: None,
                    retry_after: None,
                };
                let out =
                    serde_json::to_value(&frame).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&out["type"], "error");
                prop_assert!(out["detail"].as_str().is_some_and(|d| !d.is_empty()));
                Ok(None)
            }
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        crate::proptest_support::json_value(
            &[
                "message.send",
                "typing",
                "ping",
                "text",
                "image",
                "file",
                "Message.Send",
                "",
            ],
            &[
                "type",
                "chat_id",
                "kind",
                "body",
                "file_id",
                "client_id",
                "extra",
                "",
            ],
        )
    }

    /// A well-formed frame of each type, then with one field broken, dropped or added.
    fn mutated_frame() -> impl Strategy<Value = Value> {
        let valid = prop_oneof![
            (any::<i64>(), ".{0,20}", prop::option::of("[a-z0-9-]{0,12}")).prop_map(|(chat, body, client)| {
                json!({"type": "message.send", "chat_id": chat, "kind": "text", "body": body, "client_id": client})
            }),
            any::<i64>().prop_map(|chat| json!({"type": "typing", "chat_id": chat})),
            Just(json!({"type": "ping"})),
        ];
        let field = prop::sample::select(vec![
            "type",
            "chat_id",
            "kind",
            "body",
            "file_id",
            "client_id",
            "seq",
            "",
        ]);
        (valid, field, json_value(), 0..3u8).prop_map(|(mut frame, field, value, how)| {
            if let Some(object) = frame.as_object_mut() {
                match how {
                    0 => {
                        object.remove(field);
                    }
                    _ => {
                        object.insert(field.to_owned(), value);
                    }
                }
            }
            frame
        })
    }

    proptest! {
        #![proptest_config(config(1000))]

        /// Any text: a client frame or an `error` frame, never a panic.
        #[test]
        fn arbitrary_text_never_panics(
            text in prop_oneof![
                any::<String>(),
                "[ \t\r\n]*\\{[\"a-z_.:,0-9{}\\[\\] -]{0,60}",
            ],
        ) {
            parse(text.as_bytes())?;
        }

        /// Any bytes (invalid UTF-8 too): the same.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            parse(&bytes)?;
        }

        /// Any JSON value: a client frame or an `error` frame; what parses is a known type
        /// with no unknown field.
        #[test]
        fn arbitrary_json_is_parsed_or_refused(value in prop_oneof![json_value(), mutated_frame()]) {
            if let Some(frame) = parse(value.to_string().as_bytes())? {
                let known: &[&str] = match frame {
                    ClientFrame::Send { .. } => &["type", "chat_id", "kind", "body", "file_id", "client_id"],
                    ClientFrame::Typing { .. } => &["type", "chat_id"],
                    ClientFrame::Ping => &["type"],
                };
                let object = value.as_object();
                prop_assert!(object.is_some(), "{value}");
                prop_assert!(
                    object.into_iter().flat_map(|o| o.keys()).all(|k| known.contains(&k.as_str())),
                    "{value} parsed as {frame:?}"
                );
            }
        }
    }

    /// Nesting far past serde_json's recursion limit is refused, not a stack overflow.
    #[test]
    fn deep_nesting_is_refused() {
        for open in ["[", "{\"a\":"] {
            let text = format!("{{\"type\":\"ping\",\"x\":{}", open.repeat(100_000));
            assert!(crate::extract::parse_json::<ClientFrame>(text.as_bytes()).is_err());
        }
    }
}
