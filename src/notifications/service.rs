//! Raising, listing and reading notifications. Raising happens inside the caller's
//! transaction, with the caller's [`Outbox`]: a notification and its `notification.created`
//! event exist exactly when the change that caused them does.

use super::dto::{
    Link, NotificationKind, NotificationOut, NotificationQuery, ReadAllOut, SubjectType,
};
use super::repo::{self, NewNotificationRow, NotificationRow};
use crate::auth::{Action, Principal};
use crate::db::DbConnection;
use crate::error::{ApiError, ApiResult};
use crate::events::Outbox;
use crate::identity::service as identity;
use crate::pagination::{Page, PageParams};
use crate::state::AppState;

pub const NOTIFICATION_CREATED: &str = "notification.created";

/// Longest body kept, in characters (a message preview is cut to fit).
const MAX_BODY_CHARS: usize = 200;

/// One cause to notify about.
pub struct Notice {
    pub kind: NotificationKind,
    /// What raised it, unique per recipient: the same cause never notifies anyone twice
    /// (`"batch:12:expired"`, `"request:7:created"`).
    pub cause: String,
    pub title: String,
    pub body: String,
    pub link: Link,
}

impl Link {
    pub fn new(kind: SubjectType, id: i64, path: impl Into<String>) -> Self {
        Self {
            kind,
            id,
            path: path.into(),
        }
    }
}

/// `text` cut to the body's length, with an ellipsis when it was cut.
pub fn preview(text: &str) -> String {
    let mut chars = text.chars();
    let cut: String = chars.by_ref().take(MAX_BODY_CHARS - 1).collect();
    if chars.next().is_some() {
        format!("{cut}…")
    } else {
        cut
    }
}

fn out(row: NotificationRow) -> NotificationOut {
    NotificationOut {
        id: row.id,
        kind: NotificationKind::parse(&row.kind),
        title: row.title,
        body: row.body,
        link: Link {
            kind: SubjectType::parse(&row.subject_type),
            id: row.subject_id,
            path: row.path,
        },
        count: row.count,
        read: row.read_at.is_some(),
        read_at: row.read_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// Notifies each of `recipients` of `notice` unless that cause notified them already, and
/// records `notification.created` in the stream of each one notified now. Returns how many
/// were notified.
pub fn notify(
    conn: &mut DbConnection,
    outbox: &mut Outbox,
    recipients: &[i64],
    notice: &Notice,
) -> ApiResult<usize> {
    insert(conn, outbox, recipients, notice, None)
}

/// [`notify`] to every live owner and worker.
pub fn notify_staff(
    conn: &mut DbConnection,
    outbox: &mut Outbox,
    notice: &Notice,
) -> ApiResult<usize> {
    let staff = identity::staff_ids(conn)?;
    notify(conn, outbox, &staff, notice)
}

fn insert(
    conn: &mut DbConnection,
    outbox: &mut Outbox,
    recipients: &[i64],
    notice: &Notice,
    last_message_id: Option<i64>,
) -> ApiResult<usize> {
    if recipients.is_empty() {
        return Ok(0);
    }
    let now = crate::time::now();
    let body = preview(&notice.body);
    let rows: Vec<NewNotificationRow<'_>> = recipients
        .iter()
        .map(|&user_id| NewNotificationRow {
            user_id,
            kind: notice.kind.as_str(),
            cause: &notice.cause,
            title: &notice.title,
            body: &body,
            subject_type: notice.link.kind.as_str(),
            subject_id: notice.link.id,
            path: &notice.link.path,
            last_message_id,
            created_at: now,
            updated_at: now,
        })
        .collect();
    let created = repo::insert_new(conn, &rows)?;
    let count = created.len();
    for row in created {
        let user = row.user_id;
        outbox.record(conn, [user], NOTIFICATION_CREATED, &out(row))?;
    }
    Ok(count)
}

/// A message was posted in a chat: each of `recipients` (members who have not muted it,
/// not the author) gets one notification per chat until they read it; a further message
/// adds to the open one (its `count`) instead of raising another.
pub fn message_posted(
    conn: &mut DbConnection,
    outbox: &mut Outbox,
    recipients: &[i64],
    message_id: i64,
    notice: &Notice,
) -> ApiResult<()> {
    let chat_id = notice.link.id;
    let body = preview(&notice.body);
    let now = crate::time::now();
    let mut added = repo::add_to_open_chat(
        conn,
        recipients,
        chat_id,
        message_id,
        (&notice.title, &body),
        now,
    )?;
    added.sort_unstable();
    let fresh: Vec<i64> = recipients
        .iter()
        .copied()
        .filter(|user| added.binary_search(user).is_err())
        .collect();
    insert(conn, outbox, &fresh, notice, Some(message_id))?;
    Ok(())
}

/// `user_id` read a chat up to `up_to`: its message notification is read once it stands
/// for nothing newer.
pub fn chat_read(conn: &mut DbConnection, user_id: i64, chat_id: i64, up_to: i64) -> ApiResult<()> {
    repo::read_chat(conn, user_id, chat_id, up_to, crate::time::now())?;
    Ok(())
}

/// A chat was deleted: what was about it goes too.
pub fn chat_deleted(conn: &mut DbConnection, chat_id: i64) -> ApiResult<()> {
    repo::delete_about(conn, SubjectType::Chat.as_str(), chat_id, None)?;
    Ok(())
}

/// `user_id` left a chat: their notifications about it go.
pub fn chat_left(conn: &mut DbConnection, user_id: i64, chat_id: i64) -> ApiResult<()> {
    repo::delete_about(conn, SubjectType::Chat.as_str(), chat_id, Some(user_id))?;
    Ok(())
}

/// Unread notifications of `user_id` (the dashboard).
pub fn unread_count(conn: &mut DbConnection, user_id: i64) -> ApiResult<i64> {
    Ok(repo::unread_count(conn, user_id)?)
}

pub async fn list(
    state: &AppState,
    principal: &Principal,
    query: NotificationQuery,
    page: PageParams,
) -> ApiResult<Page<NotificationOut>> {
    principal.require(Action::UsePersonalApi)?;
    let limit = page.limit()?;
    let before = page.cursor::<i64>()?;
    let me = principal.user_id;
    let unread_only = query.unread.unwrap_or(false);
    let rows = state
        .db
        .run(move |conn| Ok(repo::list(conn, me, unread_only, before, limit)?))
        .await?;
    Ok(Page::from_rows(rows, limit, |r| r.id, out))
}

pub async fn mark_read(
    state: &AppState,
    principal: &Principal,
    id: i64,
) -> ApiResult<NotificationOut> {
    principal.require(Action::UsePersonalApi)?;
    let me = principal.user_id;
    let row = state
        .db
        .transaction(move |conn| Ok(repo::mark_read(conn, me, id, crate::time::now())?))
        .await?;
    row.map(out)
        .ok_or_else(|| ApiError::not_found(format!("notification {id}")))
}

pub async fn mark_all_read(state: &AppState, principal: &Principal) -> ApiResult<ReadAllOut> {
    principal.require(Action::UsePersonalApi)?;
    let me = principal.user_id;
    let marked = state
        .db
        .transaction(move |conn| Ok(repo::mark_all_read(conn, me, crate::time::now())?))
        .await?;
    Ok(ReadAllOut {
        marked_read: i64::try_from(marked).unwrap_or(i64::MAX),
    })
}
