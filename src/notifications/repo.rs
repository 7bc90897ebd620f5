//! The SQL of notifications.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::notifications;
use crate::db::{on_backend, DbConnection};

/// Rows per statement when one cause notifies many users.
const CHUNK: usize = 1_000;

const MESSAGE: &str = "message";
const CHAT: &str = "chat";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = notifications)]
pub struct NotificationRow {
    pub id: i64,
    pub user_id: i64,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub subject_type: String,
    pub subject_id: i64,
    pub path: String,
    pub count: i64,
    pub read_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = notifications)]
pub struct NewNotificationRow<'a> {
    pub user_id: i64,
    pub kind: &'a str,
    pub cause: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub subject_type: &'a str,
    pub subject_id: i64,
    pub path: &'a str,
    pub last_message_id: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Inserts the rows whose `(user_id, cause)` is new and returns just those: a row that
/// exists already (or is being inserted by a concurrent transaction, which this one then
/// waits for) is skipped.
pub fn insert_new(
    conn: &mut DbConnection,
    rows: &[NewNotificationRow<'_>],
) -> QueryResult<Vec<NotificationRow>> {
    let mut inserted = Vec::new();
    for chunk in rows.chunks(CHUNK) {
        let rows: Vec<NotificationRow> =
            on_backend!(conn, |c| diesel::insert_into(notifications::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .returning(NotificationRow::as_returning())
                .get_results(c))?;
        inserted.extend(rows);
    }
    Ok(inserted)
}

/// Adds one message to the open (unread) message notification of `chat_id` of each of
/// `users` that has one, and returns those users.
pub fn add_to_open_chat(
    conn: &mut DbConnection,
    users: &[i64],
    chat_id: i64,
    message_id: i64,
    text: (&str, &str),
    at: NaiveDateTime,
) -> QueryResult<Vec<i64>> {
    let mut updated = Vec::new();
    for chunk in users.chunks(CHUNK) {
        let open = notifications::table
            .filter(notifications::user_id.eq_any(chunk))
            .filter(notifications::subject_type.eq(CHAT))
            .filter(notifications::subject_id.eq(chat_id))
            .filter(notifications::read_at.is_null())
            .filter(notifications::kind.eq(MESSAGE));
        updated.extend(
            diesel::update(open)
                .set((
                    notifications::count.eq(notifications::count + 1),
                    notifications::title.eq(text.0),
                    notifications::body.eq(text.1),
                    notifications::last_message_id.eq(message_id),
                    notifications::updated_at.eq(at),
                ))
                .returning(notifications::user_id)
                .get_results::<i64>(conn)?,
        );
    }
    Ok(updated)
}

/// A page of a user's notifications, newest first, before id `before`.
pub fn list(
    conn: &mut DbConnection,
    user_id: i64,
    unread_only: bool,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<NotificationRow>> {
    let mut q = notifications::table
        .filter(notifications::user_id.eq(user_id))
        .select(NotificationRow::as_select())
        .order(notifications::id.desc())
        .limit(limit + 1)
        .into_boxed();
    if unread_only {
        q = q.filter(notifications::read_at.is_null());
    }
    if let Some(before) = before {
        q = q.filter(notifications::id.lt(before));
    }
    q.load(conn)
}

/// Marks one of the user's notifications read (keeping the first read time) and returns it;
/// `None` when the user has no such notification.
pub fn mark_read(
    conn: &mut DbConnection,
    user_id: i64,
    id: i64,
    at: NaiveDateTime,
) -> QueryResult<Option<NotificationRow>> {
    let mine = notifications::table
        .filter(notifications::id.eq(id))
        .filter(notifications::user_id.eq(user_id));
    diesel::update(mine.filter(notifications::read_at.is_null()))
        .set(notifications::read_at.eq(at))
        .execute(conn)?;
    mine.select(NotificationRow::as_select())
        .first(conn)
        .optional()
}

pub fn mark_all_read(
    conn: &mut DbConnection,
    user_id: i64,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        notifications::table
            .filter(notifications::user_id.eq(user_id))
            .filter(notifications::read_at.is_null()),
    )
    .set(notifications::read_at.eq(at))
    .execute(conn)
}

/// Marks read the user's open message notification of a chat when it stands for no message
/// after `up_to`.
pub fn read_chat(
    conn: &mut DbConnection,
    user_id: i64,
    chat_id: i64,
    up_to: i64,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        notifications::table
            .filter(notifications::user_id.eq(user_id))
            .filter(notifications::subject_type.eq(CHAT))
            .filter(notifications::subject_id.eq(chat_id))
            .filter(notifications::read_at.is_null())
            .filter(notifications::last_message_id.le(up_to)),
    )
    .set(notifications::read_at.eq(at))
    .execute(conn)
}

/// Deletes the notifications about something: everyone's (a deleted chat), or one user's
/// (who left it).
pub fn delete_about(
    conn: &mut DbConnection,
    subject_type: &str,
    id: i64,
    user_id: Option<i64>,
) -> QueryResult<usize> {
    let mut about = diesel::delete(notifications::table)
        .filter(notifications::subject_type.eq(subject_type))
        .filter(notifications::subject_id.eq(id))
        .into_boxed();
    if let Some(user_id) = user_id {
        about = about.filter(notifications::user_id.eq(user_id));
    }
    about.execute(conn)
}

pub fn unread_count(conn: &mut DbConnection, user_id: i64) -> QueryResult<i64> {
    notifications::table
        .filter(notifications::user_id.eq(user_id))
        .filter(notifications::read_at.is_null())
        .count()
        .get_result(conn)
}
