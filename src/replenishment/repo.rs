use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::dto::RequestStatus;
use crate::db::schema::replenishment_requests as requests;
use crate::db::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = requests)]
pub struct RequestRow {
    pub id: i64,
    pub customer_id: i64,
    pub item_id: Option<i64>,
    pub item_name: String,
    pub quantity: i64,
    pub note: Option<String>,
    pub status: String,
    pub decision_reason: Option<String>,
    pub decided_by: Option<i64>,
    pub decided_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn insert_request(
    conn: &mut DbConnection,
    customer_id: i64,
    item_id: i64,
    item_name: &str,
    quantity: i64,
    note: Option<&str>,
) -> QueryResult<i64> {
    let now = crate::time::now();
    diesel::insert_into(requests::table)
        .values((
            requests::customer_id.eq(customer_id),
            requests::item_id.eq(item_id),
            requests::item_name.eq(item_name),
            requests::quantity.eq(quantity),
            requests::note.eq(note),
            requests::status.eq(RequestStatus::Pending.as_str()),
            requests::created_at.eq(now),
            requests::updated_at.eq(now),
        ))
        .returning(requests::id)
        .get_result(conn)
}

pub fn find_request(conn: &mut DbConnection, id: i64) -> QueryResult<RequestRow> {
    requests::table
        .filter(requests::id.eq(id))
        .select(RequestRow::as_select())
        .first(conn)
}

/// Pending requests, all of them or one customer's.
pub fn count_pending(conn: &mut DbConnection, customer_id: Option<i64>) -> QueryResult<i64> {
    let mut query = requests::table
        .filter(requests::status.eq(RequestStatus::Pending.as_str()))
        .into_boxed();
    if let Some(customer_id) = customer_id {
        query = query.filter(requests::customer_id.eq(customer_id));
    }
    query.count().get_result(conn)
}

/// Moves a pending request to `to`. As the first statement of a transaction it also locks
/// the request, so two staff deciding it at once cannot both succeed. `customer` restricts
/// it to the requesting customer. Returns false when no pending request matched.
pub fn decide(
    conn: &mut DbConnection,
    id: i64,
    to: RequestStatus,
    by: i64,
    reason: Option<&str>,
    customer: Option<i64>,
) -> QueryResult<bool> {
    let now = crate::time::now();
    let mut target = diesel::update(requests::table)
        .filter(requests::id.eq(id))
        .filter(requests::status.eq(RequestStatus::Pending.as_str()))
        .into_boxed();
    if let Some(c) = customer {
        target = target.filter(requests::customer_id.eq(c));
    }
    target
        .set((
            requests::status.eq(to.as_str()),
            requests::decided_by.eq(by),
            requests::decided_at.eq(now),
            requests::decision_reason.eq(reason),
            requests::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|n| n == 1)
}

pub fn list_requests(
    conn: &mut DbConnection,
    customer: Option<i64>,
    status: Option<RequestStatus>,
    before_id: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<RequestRow>> {
    let mut query = requests::table
        .select(RequestRow::as_select())
        .order(requests::id.desc())
        .into_boxed();
    if let Some(c) = customer {
        query = query.filter(requests::customer_id.eq(c));
    }
    if let Some(s) = status {
        query = query.filter(requests::status.eq(s.as_str()));
    }
    if let Some(id) = before_id {
        query = query.filter(requests::id.lt(id));
    }
    query.limit(limit + 1).load(conn)
}

/// Cancels every pending request of a customer (when the account is erased).
pub fn cancel_pending_of(conn: &mut DbConnection, customer_id: i64) -> QueryResult<usize> {
    let now = crate::time::now();
    diesel::update(
        requests::table
            .filter(requests::customer_id.eq(customer_id))
            .filter(requests::status.eq(RequestStatus::Pending.as_str())),
    )
    .set((
        requests::status.eq(RequestStatus::Cancelled.as_str()),
        requests::updated_at.eq(now),
    ))
    .execute(conn)
}

/// Units promised to pending requests, per item.
pub fn promised(conn: &mut DbConnection, item_ids: &[i64]) -> QueryResult<Vec<(i64, i64)>> {
    requests::table
        .filter(requests::item_id.eq_any(item_ids))
        .filter(requests::status.eq(RequestStatus::Pending.as_str()))
        .group_by(requests::item_id)
        .select((
            requests::item_id.assume_not_null(),
            sql::<BigInt>("CAST(SUM(replenishment_requests.quantity) AS BIGINT)"),
        ))
        .load(conn)
}
