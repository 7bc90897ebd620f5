//! The one query authentication needs: is this login session still live? Identity creates
//! and ends sessions; the guard only reads them, so plumbing needs no area module.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::policy::Role;
use crate::db::schema::{sessions, users};
use crate::db::DbConnection;

/// The role of the user behind a session that is still live (not revoked, not expired,
/// user not erased), and when the session expires — the check behind an authenticated
/// request that the [`super::session_cache::SessionCache`] cannot answer.
pub fn live_session(
    conn: &mut DbConnection,
    session_id: i64,
    user_id: i64,
) -> QueryResult<Option<(Role, NaiveDateTime)>> {
    let found: Option<(String, NaiveDateTime)> = sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(session_id))
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(crate::time::now()))
        .filter(users::deleted_at.is_null())
        .select((users::role, sessions::expires_at))
        // By key: no `LIMIT`, which SQLite would re-prepare on every call (see
        // `inventory::repo::find_item`).
        .get_result(conn)
        .optional()?;
    Ok(found.and_then(|(role, expires_at)| Some((role.parse().ok()?, expires_at))))
}
