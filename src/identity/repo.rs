//! SQL for users, sessions and refresh tokens. Every function takes a connection, so it
//! works inside or outside a transaction.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::auth::Role;
use crate::db::schema::{refresh_tokens, sessions, users};
use crate::db::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: i64,
    pub username: Option<String>,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub role: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub bio: Option<String>,
    pub avatar_file_id: Option<i64>,
    pub created_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
}

impl UserRow {
    pub fn role(&self) -> Role {
        self.role.parse().unwrap_or(Role::Customer)
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub username_key: &'a str,
    pub email: Option<&'a str>,
    pub email_key: Option<&'a str>,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub name: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A bot's account: no username, email or password (it cannot log in), its name shown as
/// the author of its messages.
#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewBotUser<'a> {
    pub role: &'a str,
    pub name: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn insert_bot_user(conn: &mut DbConnection, user: &NewBotUser<'_>) -> QueryResult<i64> {
    diesel::insert_into(users::table)
        .values(user)
        .returning(users::id)
        .get_result(conn)
}

pub fn rename_user(conn: &mut DbConnection, id: i64, name: &str) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((
            users::name.eq(name),
            users::updated_at.eq(crate::time::now()),
        ))
        .execute(conn)
}

/// Closes an account: it can no longer authenticate; what it wrote stays, shown as deleted.
pub fn close_account(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    let now = crate::time::now();
    diesel::update(users::table.find(id))
        .set((users::updated_at.eq(now), users::deleted_at.eq(now)))
        .execute(conn)
}

pub fn insert_user(conn: &mut DbConnection, user: &NewUser<'_>) -> QueryResult<i64> {
    diesel::insert_into(users::table)
        .values(user)
        .returning(users::id)
        .get_result(conn)
}

/// Users by id, erased ones included (authors of old messages).
pub fn users_by_id(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<Vec<UserRow>> {
    users::table
        .filter(users::id.eq_any(ids))
        .select(UserRow::as_select())
        .load(conn)
}

/// A live (not erased) user by id.
pub fn find_user(conn: &mut DbConnection, id: i64) -> QueryResult<UserRow> {
    users::table
        .filter(users::id.eq(id))
        .filter(users::deleted_at.is_null())
        .select(UserRow::as_select())
        // By key: no `LIMIT`, which SQLite would re-prepare on every call (see
        // `inventory::repo::find_item`).
        .get_result(conn)
}

/// A live user whose username or email matches `key` (already lower-cased).
pub fn find_user_by_login(conn: &mut DbConnection, key: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::username_key.eq(key).or(users::email_key.eq(key)))
        .filter(users::deleted_at.is_null())
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn username_taken(conn: &mut DbConnection, key: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        users::table.filter(users::username_key.eq(key)),
    ))
    .get_result(conn)
}

pub fn email_taken(conn: &mut DbConnection, key: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        users::table.filter(users::email_key.eq(key)),
    ))
    .get_result(conn)
}

pub fn any_owner(conn: &mut DbConnection) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        users::table
            .filter(users::role.eq(Role::Owner.as_str()))
            .filter(users::deleted_at.is_null()),
    ))
    .get_result(conn)
}

/// The ids of every live owner and worker.
pub fn staff_ids(conn: &mut DbConnection) -> QueryResult<Vec<i64>> {
    users::table
        .filter(users::role.eq_any([Role::Owner.as_str(), Role::Worker.as_str()]))
        .filter(users::deleted_at.is_null())
        .select(users::id)
        .order(users::id)
        .load(conn)
}

#[derive(AsChangeset, Default)]
#[diesel(table_name = users)]
pub struct ProfileChanges {
    pub name: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub bio: Option<Option<String>>,
    pub avatar_file_id: Option<Option<i64>>,
    pub updated_at: Option<NaiveDateTime>,
}

pub fn update_profile(
    conn: &mut DbConnection,
    id: i64,
    changes: &ProfileChanges,
) -> QueryResult<usize> {
    diesel::update(users::table.filter(users::id.eq(id)))
        .set(changes)
        .execute(conn)
}

pub fn set_password_hash(conn: &mut DbConnection, id: i64, hash: &str) -> QueryResult<usize> {
    diesel::update(users::table.filter(users::id.eq(id)))
        .set((
            users::password_hash.eq(hash),
            users::updated_at.eq(crate::time::now()),
        ))
        .execute(conn)
}

pub fn create_session(
    conn: &mut DbConnection,
    user_id: i64,
    expires_at: NaiveDateTime,
    user_agent: Option<&str>,
    address: Option<&str>,
) -> QueryResult<i64> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::user_id.eq(user_id),
            sessions::created_at.eq(crate::time::now()),
            sessions::expires_at.eq(expires_at),
            sessions::user_agent.eq(user_agent),
            sessions::address.eq(address),
        ))
        .returning(sessions::id)
        .get_result(conn)
}

pub fn insert_refresh_token(
    conn: &mut DbConnection,
    session_id: i64,
    hash: &str,
) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::session_id.eq(session_id),
            refresh_tokens::token_hash.eq(hash),
            refresh_tokens::created_at.eq(crate::time::now()),
        ))
        .execute(conn)
        .map(|_| ())
}

pub struct RefreshTokenRow {
    pub token_id: i64,
    pub session_id: i64,
    pub spent: bool,
    pub user_id: i64,
    pub session_live: bool,
}

pub fn find_refresh_token(
    conn: &mut DbConnection,
    hash: &str,
) -> QueryResult<Option<RefreshTokenRow>> {
    /// token id, session id, spent at, user id, session revoked at, session expires at
    type Row = (
        i64,
        i64,
        Option<NaiveDateTime>,
        i64,
        Option<NaiveDateTime>,
        NaiveDateTime,
    );
    let row: Option<Row> = refresh_tokens::table
        .inner_join(sessions::table)
        .filter(refresh_tokens::token_hash.eq(hash))
        .select((
            refresh_tokens::id,
            refresh_tokens::session_id,
            refresh_tokens::spent_at,
            sessions::user_id,
            sessions::revoked_at,
            sessions::expires_at,
        ))
        .first(conn)
        .optional()?;
    let now = crate::time::now();
    Ok(row.map(
        |(token_id, session_id, spent_at, user_id, revoked_at, expires_at)| RefreshTokenRow {
            token_id,
            session_id,
            spent: spent_at.is_some(),
            user_id,
            session_live: revoked_at.is_none() && expires_at > now,
        },
    ))
}

/// Marks a refresh token spent; false when another request spent it first.
pub fn spend_refresh_token(conn: &mut DbConnection, token_id: i64) -> QueryResult<bool> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::id.eq(token_id))
            .filter(refresh_tokens::spent_at.is_null()),
    )
    .set(refresh_tokens::spent_at.eq(crate::time::now()))
    .execute(conn)
    .map(|n| n == 1)
}

pub fn revoke_session(conn: &mut DbConnection, session_id: i64) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::id.eq(session_id))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(crate::time::now()))
    .execute(conn)
}

/// Revokes every live session of `user_id` except `keep`.
pub fn revoke_sessions_of(
    conn: &mut DbConnection,
    user_id: i64,
    keep: Option<i64>,
) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::id.ne(keep.unwrap_or(-1)))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(crate::time::now()))
    .execute(conn)
}
