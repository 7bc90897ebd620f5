//! Counts, each one query over an index, never loading a table.

use chrono::NaiveDate;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::auth::Role;
use crate::customer_inventory::dto::HoldingQuery;
use crate::customer_inventory::repo::count_holdings;
use crate::db::schema::{batches, items, replenishment_requests as requests, users};
use crate::db::{coalesce_int, date_add_days, DbConnection};
use crate::inventory::repo::low_stock_sql;
use crate::inventory::service::ExpiryRules;

pub struct StaffCounts {
    pub items: i64,
    pub units: i64,
    pub expired_batches: i64,
    pub expiring_soon: i64,
    pub low_stock: i64,
    pub pending_requests: i64,
    pub customers: i64,
}

pub fn staff_counts(conn: &mut DbConnection, rules: &ExpiryRules) -> QueryResult<StaffCounts> {
    let today: NaiveDate = rules.today;
    let window = coalesce_int(items::expiry_warning_days, rules.default_window);
    // The widest window in use bounds the range of batches to look at (an index lookup).
    let widest: Option<i32> = items::table
        .select(diesel::dsl::max(items::expiry_warning_days))
        .first(conn)?;
    let horizon =
        today + chrono::Duration::days(i64::from(widest.unwrap_or(0).max(rules.default_window)));
    Ok(StaffCounts {
        items: items::table.count().get_result(conn)?,
        units: items::table
            .select(sql::<BigInt>(
                "CAST(COALESCE(SUM(items.quantity), 0) AS BIGINT)",
            ))
            .get_result(conn)?,
        expired_batches: batches::table
            .filter(batches::quantity.gt(0))
            .filter(batches::expiry_date.lt(today))
            .count()
            .get_result(conn)?,
        expiring_soon: batches::table
            .inner_join(items::table)
            .filter(batches::quantity.gt(0))
            .filter(batches::expiry_date.ge(today))
            .filter(batches::expiry_date.le(horizon))
            .filter(batches::expiry_date.le(date_add_days(today, window).nullable()))
            .count()
            .get_result(conn)?,
        low_stock: items::table
            .filter(low_stock_sql(today))
            .count()
            .get_result(conn)?,
        pending_requests: requests::table
            .filter(requests::status.eq("pending"))
            .count()
            .get_result(conn)?,
        customers: users::table
            .filter(users::role.eq(Role::Customer.as_str()))
            .filter(users::deleted_at.is_null())
            .count()
            .get_result(conn)?,
    })
}

pub struct CustomerCounts {
    pub holdings: i64,
    pub expired: i64,
    pub expiring_soon: i64,
    pub needs_replenishment: i64,
    pub open_requests: i64,
}

pub fn customer_counts(
    conn: &mut DbConnection,
    customer_id: i64,
    rules: &ExpiryRules,
) -> QueryResult<CustomerCounts> {
    let count = |conn: &mut DbConnection, filter: HoldingQuery| {
        count_holdings(conn, customer_id, &filter, rules)
    };
    let window = rules.default_window;
    Ok(CustomerCounts {
        holdings: count(conn, HoldingQuery::default())?,
        expired: count(
            conn,
            HoldingQuery {
                expired: Some(true),
                ..Default::default()
            },
        )?,
        expiring_soon: count(
            conn,
            HoldingQuery {
                expiring_within_days: Some(window),
                ..Default::default()
            },
        )?,
        needs_replenishment: count(
            conn,
            HoldingQuery {
                needs_replenishment: Some(true),
                ..Default::default()
            },
        )?,
        open_requests: requests::table
            .filter(requests::customer_id.eq(customer_id))
            .filter(requests::status.eq("pending"))
            .count()
            .get_result(conn)?,
    })
}
