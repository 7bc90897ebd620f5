//! The one query bot authentication needs: which live bot holds this token? The bots area
//! creates, rotates and deletes bots; the guard only reads them, so plumbing needs no area.

use diesel::prelude::*;

use crate::db::schema::{bots, users};
use crate::db::DbConnection;

/// Every bot token starts with this, so a secret scanner (and the socket's `?access_token=`)
/// can tell it from a person's access token.
pub const TOKEN_PREFIX: &str = "stockroom_bot_";

/// `(bot_id, user_id)` of the live bot whose token hashes to `token_hash`. A rotated token's
/// hash is gone and a deleted bot's account is closed, so either stops at once everywhere.
pub fn active_bot(conn: &mut DbConnection, token_hash: &str) -> QueryResult<Option<(i64, i64)>> {
    bots::table
        .inner_join(users::table)
        .filter(bots::token_hash.eq(token_hash))
        .filter(users::deleted_at.is_null())
        .select((bots::id, bots::user_id))
        .first(conn)
        .optional()
}
