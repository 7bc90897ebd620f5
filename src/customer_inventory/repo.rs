use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::{holdings, items};
use crate::db::{coalesce_int, date_add_days, DbConnection};
use crate::stock_rules::ExpiryRules;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = holdings)]
pub struct HoldingRow {
    pub id: i64,
    pub customer_id: i64,
    pub item_id: Option<i64>,
    pub item_name: String,
    pub quantity: i64,
    pub expiry_date: Option<NaiveDate>,
    pub min_quantity: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Which of a customer's holdings to select.
#[derive(Debug, Default, Clone, Copy)]
pub struct HoldingFilter {
    /// Only expired (`true`) or only unexpired (`false`) holdings.
    pub expired: Option<bool>,
    /// Only holdings expiring within this many days (not yet expired).
    pub expiring_within_days: Option<i32>,
    /// Only holdings that are (`true`) or are not (`false`) low, expired or expiring.
    pub needs_replenishment: Option<bool>,
}

type Filtered = diesel::dsl::IntoBoxed<
    'static,
    diesel::dsl::LeftJoin<holdings::table, items::table>,
    crate::db::MultiBackend,
>;

/// A customer's holdings matching `filter` (joined with their item for its expiry window),
/// as a query to select from or count.
pub fn filtered(customer_id: i64, filter: &HoldingFilter, rules: &ExpiryRules) -> Filtered {
    let today = rules.today;
    let mut query = holdings::table
        .left_join(items::table)
        .into_boxed()
        .filter(holdings::customer_id.eq(customer_id));
    match filter.expired {
        Some(true) => query = query.filter(holdings::expiry_date.lt(today)),
        Some(false) => {
            query = query.filter(
                holdings::expiry_date
                    .is_null()
                    .or(holdings::expiry_date.ge(today)),
            )
        }
        None => {}
    }
    if let Some(days) = filter.expiring_within_days {
        let until = today + chrono::Duration::days(i64::from(days));
        query = query.filter(
            holdings::expiry_date
                .ge(today)
                .and(holdings::expiry_date.le(until)),
        );
    }
    if let Some(needs) = filter.needs_replenishment {
        // Low (at or below the own level), expired, or within the item's window.
        let window = coalesce_int(items::expiry_warning_days.nullable(), rules.default_window);
        let needed =
            holdings::quantity
                .le(holdings::min_quantity)
                .nullable()
                .or(holdings::expiry_date
                    .is_not_null()
                    .and(holdings::expiry_date.le(date_add_days(today, window).nullable())));
        query = if needs {
            query.filter(needed.assume_not_null())
        } else {
            query.filter(diesel::dsl::not(needed.assume_not_null()))
        };
    }
    query
}

/// A page of the customer's holdings matching `filter`, with their item's expiry window,
/// in id order after `after`.
pub fn holdings_of(
    conn: &mut DbConnection,
    customer_id: i64,
    filter: &HoldingFilter,
    rules: &ExpiryRules,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<(HoldingRow, Option<i32>)>> {
    let mut query = filtered(customer_id, filter, rules)
        .select((
            HoldingRow::as_select(),
            items::expiry_warning_days.nullable(),
        ))
        .order(holdings::id.asc())
        .limit(limit);
    if let Some(id) = after {
        query = query.filter(holdings::id.gt(id));
    }
    query.load::<(HoldingRow, Option<i32>)>(conn)
}

pub fn count_holdings(
    conn: &mut DbConnection,
    customer_id: i64,
    filter: &HoldingFilter,
    rules: &ExpiryRules,
) -> QueryResult<i64> {
    filtered(customer_id, filter, rules)
        .count()
        .get_result(conn)
}

pub fn find_holding(
    conn: &mut DbConnection,
    customer_id: i64,
    id: i64,
) -> QueryResult<(HoldingRow, Option<i32>)> {
    holdings::table
        .left_join(items::table)
        .filter(holdings::id.eq(id))
        .filter(holdings::customer_id.eq(customer_id))
        .select((
            HoldingRow::as_select(),
            items::expiry_warning_days.nullable(),
        ))
        .first::<(HoldingRow, Option<i32>)>(conn)
}

/// Sets the holding's quantity and/or reorder level. The quantity may only go down (stock
/// reaches a holding only through fulfilment): when it would rise, nothing changes and 0
/// rows are reported, as for a holding that is not the customer's. Checked in the statement
/// itself, so a concurrent fulfilment cannot slip between a check and the write.
pub fn update_holding(
    conn: &mut DbConnection,
    customer_id: i64,
    id: i64,
    quantity: Option<i64>,
    min_quantity: Option<i64>,
) -> QueryResult<usize> {
    let target = holdings::table
        .filter(holdings::id.eq(id))
        .filter(holdings::customer_id.eq(customer_id))
        // Without a new quantity this holds for every row.
        .filter(holdings::quantity.ge(quantity.unwrap_or(i64::MIN)));
    let now = crate::time::now();
    match (quantity, min_quantity) {
        (Some(q), Some(m)) => diesel::update(target)
            .set((
                holdings::quantity.eq(q),
                holdings::min_quantity.eq(m),
                holdings::updated_at.eq(now),
            ))
            .execute(conn),
        (Some(q), None) => diesel::update(target)
            .set((holdings::quantity.eq(q), holdings::updated_at.eq(now)))
            .execute(conn),
        (None, Some(m)) => diesel::update(target)
            .set((holdings::min_quantity.eq(m), holdings::updated_at.eq(now)))
            .execute(conn),
        (None, None) => diesel::update(target)
            .set(holdings::updated_at.eq(now))
            .execute(conn),
    }
}

pub fn delete_holding(conn: &mut DbConnection, customer_id: i64, id: i64) -> QueryResult<usize> {
    diesel::delete(
        holdings::table
            .filter(holdings::id.eq(id))
            .filter(holdings::customer_id.eq(customer_id)),
    )
    .execute(conn)
}

pub fn delete_holdings_of(conn: &mut DbConnection, customer_id: i64) -> QueryResult<usize> {
    diesel::delete(holdings::table.filter(holdings::customer_id.eq(customer_id))).execute(conn)
}

/// Adds `quantity` to the customer's holding of this item and expiry date, creating it.
pub fn receive(
    conn: &mut DbConnection,
    customer_id: i64,
    item_id: i64,
    item_name: &str,
    quantity: i64,
    expiry_date: Option<NaiveDate>,
) -> QueryResult<()> {
    let now = crate::time::now();
    let existing: Option<i64> = holdings::table
        .filter(holdings::customer_id.eq(customer_id))
        .filter(holdings::item_id.eq(item_id))
        .filter(match expiry_date {
            Some(d) => Box::new(holdings::expiry_date.eq(d))
                as Box<
                    dyn BoxableExpression<
                        holdings::table,
                        crate::db::MultiBackend,
                        SqlType = diesel::sql_types::Nullable<diesel::sql_types::Bool>,
                    >,
                >,
            None => Box::new(holdings::expiry_date.is_null().nullable()),
        })
        .select(holdings::id)
        .first(conn)
        .optional()?;
    match existing {
        Some(id) => diesel::update(holdings::table.filter(holdings::id.eq(id)))
            .set((
                holdings::quantity.eq(holdings::quantity + quantity),
                holdings::updated_at.eq(now),
            ))
            .execute(conn)
            .map(|_| ()),
        None => diesel::insert_into(holdings::table)
            .values((
                holdings::customer_id.eq(customer_id),
                holdings::item_id.eq(item_id),
                holdings::item_name.eq(item_name),
                holdings::quantity.eq(quantity),
                holdings::expiry_date.eq(expiry_date),
                holdings::created_at.eq(now),
                holdings::updated_at.eq(now),
            ))
            .execute(conn)
            .map(|_| ()),
    }
}
