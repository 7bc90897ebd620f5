//! SQL for chats, members and messages.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::auth::Role;
use crate::db::schema::{chat_members, chats, messages, users};
use crate::db::{on_backend, DbConnection};
use crate::pagination::{keyset_page, Keyset};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = chats)]
pub struct ChatRow {
    pub id: i64,
    pub kind: String,
    pub title: Option<String>,
    pub created_by: Option<i64>,
    pub created_at: NaiveDateTime,
    pub last_message_id: Option<i64>,
    pub last_activity_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = chat_members)]
pub struct MemberRow {
    pub chat_id: i64,
    pub user_id: i64,
    pub role: String,
    pub joined_at: NaiveDateTime,
    pub last_read_message_id: i64,
    pub muted: bool,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = messages)]
pub struct MessageRow {
    pub id: i64,
    pub chat_id: i64,
    pub author_id: i64,
    pub kind: String,
    pub body: Option<String>,
    pub file_id: Option<i64>,
    pub client_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub edited_at: Option<NaiveDateTime>,
    pub deleted_at: Option<NaiveDateTime>,
}

/// Creates a chat; for a direct chat whose `direct_key` is taken already (two requests
/// raced), returns `None` and creates nothing.
pub fn insert_chat(
    conn: &mut DbConnection,
    kind: &str,
    title: Option<&str>,
    direct_key: Option<&str>,
    created_by: i64,
    at: NaiveDateTime,
) -> QueryResult<Option<i64>> {
    let values = (
        chats::kind.eq(kind),
        chats::title.eq(title),
        chats::direct_key.eq(direct_key),
        chats::created_by.eq(created_by),
        chats::created_at.eq(at),
        chats::last_activity_at.eq(at),
    );
    on_backend!(conn, |c| diesel::insert_into(chats::table)
        .values(values)
        .on_conflict_do_nothing()
        .returning(chats::id)
        .get_result(c)
        .optional())
}

pub fn find_direct(conn: &mut DbConnection, direct_key: &str) -> QueryResult<Option<i64>> {
    chats::table
        .filter(chats::direct_key.eq(direct_key))
        .select(chats::id)
        .first(conn)
        .optional()
}

pub fn find_chat(conn: &mut DbConnection, id: i64) -> QueryResult<ChatRow> {
    chats::table
        .find(id)
        .select(ChatRow::as_select())
        .first(conn)
}

/// Locks the chat's row until the transaction ends (PostgreSQL; SQLite's write lock is
/// already held). Message ids are taken after this lock, so within a chat they commit in
/// id order: a reader that has seen message N never later finds a smaller id appear.
pub fn lock_chat(conn: &mut DbConnection, id: i64) -> QueryResult<()> {
    if let DbConnection::Postgresql(c) = conn {
        chats::table
            .find(id)
            .select(chats::id)
            .for_update()
            .first::<i64>(c)?;
    }
    Ok(())
}

pub fn set_title(conn: &mut DbConnection, id: i64, title: &str) -> QueryResult<usize> {
    diesel::update(chats::table.find(id))
        .set(chats::title.eq(title))
        .execute(conn)
}

pub fn delete_chat(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(messages::table.filter(messages::chat_id.eq(id))).execute(conn)?;
    diesel::delete(chat_members::table.filter(chat_members::chat_id.eq(id))).execute(conn)?;
    diesel::delete(chats::table.find(id)).execute(conn)
}

pub fn touch_chat(
    conn: &mut DbConnection,
    id: i64,
    last_message_id: i64,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(chats::table.find(id))
        .set((
            chats::last_message_id.eq(last_message_id),
            chats::last_activity_at.eq(at),
        ))
        .execute(conn)
}

/// The caller's chats, newest activity first.
pub fn chats_of(
    conn: &mut DbConnection,
    user_id: i64,
    after: Option<Keyset<NaiveDateTime>>,
    limit: i64,
) -> QueryResult<Vec<ChatRow>> {
    let query = chats::table
        .inner_join(chat_members::table)
        .filter(chat_members::user_id.eq(user_id))
        .select(ChatRow::as_select())
        .into_boxed();
    keyset_page!(query, chats::last_activity_at, chats::id, after, true)
        .limit(limit)
        .load(conn)
}

pub fn insert_members(
    conn: &mut DbConnection,
    chat_id: i64,
    members: &[(i64, &str)],
    at: NaiveDateTime,
) -> QueryResult<()> {
    let rows: Vec<_> = members
        .iter()
        .map(|(user_id, role)| {
            (
                chat_members::chat_id.eq(chat_id),
                chat_members::user_id.eq(*user_id),
                chat_members::role.eq(*role),
                chat_members::joined_at.eq(at),
            )
        })
        .collect();
    for chunk in rows.chunks(500) {
        on_backend!(conn, |c| diesel::insert_into(chat_members::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

pub fn member(
    conn: &mut DbConnection,
    chat_id: i64,
    user_id: i64,
) -> QueryResult<Option<MemberRow>> {
    chat_members::table
        .find((chat_id, user_id))
        .select(MemberRow::as_select())
        .first(conn)
        .optional()
}

/// The caller's memberships among `chat_ids`.
pub fn memberships(
    conn: &mut DbConnection,
    user_id: i64,
    chat_ids: &[i64],
) -> QueryResult<Vec<MemberRow>> {
    chat_members::table
        .filter(chat_members::user_id.eq(user_id))
        .filter(chat_members::chat_id.eq_any(chat_ids))
        .select(MemberRow::as_select())
        .load(conn)
}

/// Ids of the members whose accounts are live: who receives the chat's events.
pub fn member_ids(conn: &mut DbConnection, chat_id: i64) -> QueryResult<Vec<i64>> {
    chat_members::table
        .inner_join(users::table)
        .filter(chat_members::chat_id.eq(chat_id))
        .filter(users::deleted_at.is_null())
        .select(chat_members::user_id)
        .load(conn)
}

/// A live member, as a new message sees them.
pub struct Listener {
    pub user_id: i64,
    /// Whether a new message notifies them: not when they muted the chat, and never bots
    /// (they hear of messages through their event stream and webhook alone).
    pub notified: bool,
    pub bot: bool,
}

/// The chat's live members, as a new message sees them.
pub fn listeners(conn: &mut DbConnection, chat_id: i64) -> QueryResult<Vec<Listener>> {
    let rows: Vec<(i64, bool, String)> = chat_members::table
        .inner_join(users::table)
        .filter(chat_members::chat_id.eq(chat_id))
        .filter(users::deleted_at.is_null())
        .select((chat_members::user_id, chat_members::muted, users::role))
        .order(chat_members::user_id)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(user_id, muted, role)| {
            let bot = role == Role::Bot.as_str();
            Listener {
                user_id,
                notified: !muted && !bot,
                bot,
            }
        })
        .collect())
}

/// The chats `user_id` is a member of.
pub fn chats_with_member(conn: &mut DbConnection, user_id: i64) -> QueryResult<Vec<i64>> {
    chat_members::table
        .filter(chat_members::user_id.eq(user_id))
        .select(chat_members::chat_id)
        .order(chat_members::chat_id)
        .load(conn)
}

pub fn set_muted(
    conn: &mut DbConnection,
    chat_id: i64,
    user_id: i64,
    muted: bool,
) -> QueryResult<usize> {
    diesel::update(chat_members::table.find((chat_id, user_id)))
        .set(chat_members::muted.eq(muted))
        .execute(conn)
}

/// Roles (as stored) of the chat's live members.
pub fn member_roles(conn: &mut DbConnection, chat_id: i64) -> QueryResult<Vec<(i64, String)>> {
    chat_members::table
        .inner_join(users::table)
        .filter(chat_members::chat_id.eq(chat_id))
        .filter(users::deleted_at.is_null())
        .select((chat_members::user_id, users::role))
        .load(conn)
}

pub fn members_page(
    conn: &mut DbConnection,
    chat_id: i64,
    after_user: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<MemberRow>> {
    let mut query = chat_members::table
        .filter(chat_members::chat_id.eq(chat_id))
        .select(MemberRow::as_select())
        .order(chat_members::user_id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after_user {
        query = query.filter(chat_members::user_id.gt(after));
    }
    query.load(conn)
}

pub fn count_members(conn: &mut DbConnection, chat_ids: &[i64]) -> QueryResult<Vec<(i64, i64)>> {
    chat_members::table
        .filter(chat_members::chat_id.eq_any(chat_ids))
        .group_by(chat_members::chat_id)
        .select((chat_members::chat_id, diesel::dsl::count_star()))
        .load(conn)
}

/// The other member of each direct chat in `chat_ids`.
pub fn peers(
    conn: &mut DbConnection,
    chat_ids: &[i64],
    user_id: i64,
) -> QueryResult<Vec<(i64, i64)>> {
    chat_members::table
        .inner_join(chats::table)
        .filter(chat_members::chat_id.eq_any(chat_ids))
        .filter(chats::kind.eq("direct"))
        .filter(chat_members::user_id.ne(user_id))
        .select((chat_members::chat_id, chat_members::user_id))
        .load(conn)
}

pub fn remove_member(conn: &mut DbConnection, chat_id: i64, user_id: i64) -> QueryResult<usize> {
    diesel::delete(chat_members::table.find((chat_id, user_id))).execute(conn)
}

/// Makes the longest-standing member an admin (when the last admin left).
pub fn promote_eldest(conn: &mut DbConnection, chat_id: i64) -> QueryResult<()> {
    let eldest: Option<i64> = chat_members::table
        .filter(chat_members::chat_id.eq(chat_id))
        .order((chat_members::joined_at.asc(), chat_members::user_id.asc()))
        .select(chat_members::user_id)
        .first(conn)
        .optional()?;
    if let Some(user_id) = eldest {
        diesel::update(chat_members::table.find((chat_id, user_id)))
            .set(chat_members::role.eq("admin"))
            .execute(conn)?;
    }
    Ok(())
}

pub fn count_admins(conn: &mut DbConnection, chat_id: i64) -> QueryResult<i64> {
    chat_members::table
        .filter(chat_members::chat_id.eq(chat_id))
        .filter(chat_members::role.eq("admin"))
        .count()
        .get_result(conn)
}

/// Moves the read marker forward to `up_to` (never backwards). Returns the marker after.
pub fn advance_read(
    conn: &mut DbConnection,
    chat_id: i64,
    user_id: i64,
    up_to: i64,
) -> QueryResult<usize> {
    diesel::update(
        chat_members::table
            .find((chat_id, user_id))
            .filter(chat_members::last_read_message_id.lt(up_to)),
    )
    .set(chat_members::last_read_message_id.eq(up_to))
    .execute(conn)
}

pub struct NewMessageRow<'a> {
    pub chat_id: i64,
    pub author_id: i64,
    pub kind: &'a str,
    pub body: Option<&'a str>,
    pub file_id: Option<i64>,
    pub client_id: Option<&'a str>,
    pub at: NaiveDateTime,
}

pub fn insert_message(conn: &mut DbConnection, m: &NewMessageRow<'_>) -> QueryResult<MessageRow> {
    let id: i64 = diesel::insert_into(messages::table)
        .values((
            messages::chat_id.eq(m.chat_id),
            messages::author_id.eq(m.author_id),
            messages::kind.eq(m.kind),
            messages::body.eq(m.body),
            messages::file_id.eq(m.file_id),
            messages::client_id.eq(m.client_id),
            messages::created_at.eq(m.at),
        ))
        .returning(messages::id)
        .get_result(conn)?;
    message_by_id(conn, id)
}

fn message_by_id(conn: &mut DbConnection, id: i64) -> QueryResult<MessageRow> {
    messages::table
        .find(id)
        .select(MessageRow::as_select())
        .first(conn)
}

pub fn find_by_client_id(
    conn: &mut DbConnection,
    chat_id: i64,
    author_id: i64,
    client_id: &str,
) -> QueryResult<Option<MessageRow>> {
    messages::table
        .filter(messages::chat_id.eq(chat_id))
        .filter(messages::author_id.eq(author_id))
        .filter(messages::client_id.eq(client_id))
        .select(MessageRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_message(
    conn: &mut DbConnection,
    chat_id: i64,
    id: i64,
) -> QueryResult<Option<MessageRow>> {
    messages::table
        .filter(messages::chat_id.eq(chat_id))
        .filter(messages::id.eq(id))
        .select(MessageRow::as_select())
        .first(conn)
        .optional()
}

pub fn messages_by_id(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<Vec<MessageRow>> {
    messages::table
        .filter(messages::id.eq_any(ids))
        .select(MessageRow::as_select())
        .load(conn)
}

pub fn edit_message(
    conn: &mut DbConnection,
    id: i64,
    body: &str,
    at: NaiveDateTime,
) -> QueryResult<MessageRow> {
    diesel::update(messages::table.find(id))
        .set((messages::body.eq(body), messages::edited_at.eq(at)))
        .execute(conn)?;
    message_by_id(conn, id)
}

/// Keeps the message as a tombstone: no body, no file.
pub fn tombstone(conn: &mut DbConnection, id: i64, at: NaiveDateTime) -> QueryResult<MessageRow> {
    diesel::update(messages::table.find(id))
        .set((
            messages::body.eq(None::<String>),
            messages::file_id.eq(None::<i64>),
            messages::deleted_at.eq(at),
        ))
        .execute(conn)?;
    message_by_id(conn, id)
}

/// A page of the chat's history, newest first, strictly between `after` and `before`.
pub fn history(
    conn: &mut DbConnection,
    chat_id: i64,
    before: Option<i64>,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<MessageRow>> {
    let mut query = messages::table
        .filter(messages::chat_id.eq(chat_id))
        .select(MessageRow::as_select())
        .order(messages::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(messages::id.lt(before));
    }
    if let Some(after) = after {
        query = query.filter(messages::id.gt(after));
    }
    query.load(conn)
}

/// Unread messages of `user_id`, per chat (only chats with some).
pub fn unread_counts(
    conn: &mut DbConnection,
    user_id: i64,
    chat_ids: Option<&[i64]>,
) -> QueryResult<Vec<(i64, i64)>> {
    let mut query = messages::table
        .inner_join(
            chat_members::table.on(chat_members::chat_id
                .eq(messages::chat_id)
                .and(chat_members::user_id.eq(user_id))),
        )
        .filter(messages::id.gt(chat_members::last_read_message_id))
        .filter(messages::author_id.ne(user_id))
        .filter(messages::deleted_at.is_null())
        .group_by(messages::chat_id)
        .select((messages::chat_id, diesel::dsl::count_star()))
        .into_boxed();
    if let Some(ids) = chat_ids {
        query = query.filter(messages::chat_id.eq_any(ids));
    }
    query.load(conn)
}
