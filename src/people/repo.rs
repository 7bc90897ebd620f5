use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use super::dto::CustomerSort;
use crate::auth::Role;
use crate::db::schema::{sessions, users};
use crate::db::DbConnection;
use crate::identity::service::UserRow;
use crate::pagination::{keyset_page, Keyset};

/// The order of the customer list, and where its previous page ended in the sort's own key
/// type.
#[derive(Debug, Clone)]
pub enum CustomerOrder {
    Username(Option<Keyset<String>>),
    CreatedAt(Option<Keyset<NaiveDateTime>>),
}

/// A row's sort key, as its cursor carries it.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum CustomerKey {
    Text(String),
    Time(NaiveDateTime),
}

pub fn cursor_of(row: &UserRow, sort: CustomerSort) -> Keyset<CustomerKey> {
    let key = match sort {
        CustomerSort::Username | CustomerSort::UsernameDesc => {
            CustomerKey::Text(row.username.clone().unwrap_or_default().to_lowercase())
        }
        CustomerSort::CreatedAt | CustomerSort::CreatedAtDesc => CustomerKey::Time(row.created_at),
    };
    Keyset { key, id: row.id }
}

pub fn list_customers(
    conn: &mut DbConnection,
    q: Option<&str>,
    order: CustomerOrder,
    desc: bool,
    limit: i64,
) -> QueryResult<Vec<UserRow>> {
    let mut query = users::table
        .filter(users::role.eq(Role::Customer.as_str()))
        .filter(users::deleted_at.is_null())
        .select(UserRow::as_select())
        .into_boxed();
    if let Some(q) = q.filter(|q| !q.trim().is_empty()) {
        let pattern = crate::pagination::contains_pattern(q.trim());
        query = query.filter(
            users::username_key
                .like(pattern.clone())
                .escape('\\')
                .or(users::email_key.like(pattern.clone()).escape('\\'))
                .or(crate::db::lower(users::name).like(pattern).escape('\\')),
        );
    }
    let query = match order {
        CustomerOrder::Username(after) => {
            keyset_page!(query, users::username_key, users::id, after, desc)
        }
        CustomerOrder::CreatedAt(after) => {
            keyset_page!(query, users::created_at, users::id, after, desc)
        }
    };
    query.limit(limit + 1).load(conn)
}

pub fn list_users(
    conn: &mut DbConnection,
    role: Option<Role>,
    after_id: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<UserRow>> {
    let mut query = users::table
        .filter(users::deleted_at.is_null())
        .select(UserRow::as_select())
        .order(users::id.asc())
        .into_boxed();
    if let Some(role) = role {
        query = query.filter(users::role.eq(role.as_str()));
    }
    if let Some(id) = after_id {
        query = query.filter(users::id.gt(id));
    }
    query.limit(limit + 1).load(conn)
}

/// Takes the write lock on every owner row, so two concurrent demotions cannot both see
/// "another owner is left" (PostgreSQL; on SQLite the write transaction holds the lock).
pub fn lock_owners(conn: &mut DbConnection) -> QueryResult<usize> {
    diesel::update(
        users::table
            .filter(users::role.eq(Role::Owner.as_str()))
            .filter(users::deleted_at.is_null()),
    )
    .set(users::updated_at.eq(users::updated_at))
    .execute(conn)
}

pub fn count_owners_except(conn: &mut DbConnection, id: i64) -> QueryResult<i64> {
    users::table
        .filter(users::role.eq(Role::Owner.as_str()))
        .filter(users::deleted_at.is_null())
        .filter(users::id.ne(id))
        .count()
        .get_result(conn)
}

pub fn set_role(conn: &mut DbConnection, id: i64, role: Role) -> QueryResult<usize> {
    diesel::update(users::table.filter(users::id.eq(id)))
        .set((
            users::role.eq(role.as_str()),
            users::updated_at.eq(crate::time::now()),
        ))
        .execute(conn)
}

/// Erases a customer's personal data and ends their sessions; the row stays so that their
/// chat messages keep an author (shown as deleted).
pub fn erase_user(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::user_id.eq(id))).execute(conn)?;
    let now = crate::time::now();
    diesel::update(users::table.filter(users::id.eq(id)))
        .set((
            users::username.eq(None::<String>),
            users::username_key.eq(None::<String>),
            users::email.eq(None::<String>),
            users::email_key.eq(None::<String>),
            users::password_hash.eq(None::<String>),
            users::name.eq(None::<String>),
            users::phone.eq(None::<String>),
            users::bio.eq(None::<String>),
            users::avatar_file_id.eq(None::<i64>),
            users::updated_at.eq(now),
            users::deleted_at.eq(now),
        ))
        .execute(conn)
}

/// Locks a live customer's row (`NotFound` for anyone else).
pub fn lock_customer(conn: &mut DbConnection, id: i64) -> QueryResult<()> {
    let n = diesel::update(
        users::table
            .filter(users::id.eq(id))
            .filter(users::role.eq(Role::Customer.as_str()))
            .filter(users::deleted_at.is_null()),
    )
    .set(users::updated_at.eq(users::updated_at))
    .execute(conn)?;
    if n == 0 {
        return Err(diesel::result::Error::NotFound);
    }
    Ok(())
}

/// Live customer accounts.
pub fn count_customers(conn: &mut DbConnection) -> QueryResult<i64> {
    users::table
        .filter(users::role.eq(Role::Customer.as_str()))
        .filter(users::deleted_at.is_null())
        .count()
        .get_result(conn)
}
