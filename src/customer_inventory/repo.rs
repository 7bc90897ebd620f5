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
) -> QueryResult<i64> {
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
            .map(|_| id),
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
            .returning(holdings::id)
            .get_result(conn),
    }
}

// Expiry alerts (see `super::alerts`).

/// What the alerts need of a holding, with its item's expiry window.
#[derive(Debug, Clone, Queryable)]
pub struct HoldingAlertRow {
    pub id: i64,
    pub customer_id: i64,
    pub item_name: String,
    pub quantity: i64,
    pub expiry_date: Option<NaiveDate>,
    pub alert_stage: i32,
    pub alert_on: NaiveDate,
    pub window: Option<i32>,
}

type AlertColumns = (
    holdings::id,
    holdings::customer_id,
    holdings::item_name,
    holdings::quantity,
    holdings::expiry_date,
    holdings::alert_stage,
    holdings::alert_on,
    diesel::helper_types::Nullable<items::expiry_warning_days>,
);

fn alert_columns() -> AlertColumns {
    (
        holdings::id,
        holdings::customer_id,
        holdings::item_name,
        holdings::quantity,
        holdings::expiry_date,
        holdings::alert_stage,
        holdings::alert_on,
        items::expiry_warning_days.nullable(),
    )
}

pub fn holding_alert_state(
    conn: &mut DbConnection,
    id: i64,
) -> QueryResult<Option<HoldingAlertRow>> {
    holdings::table
        .left_join(items::table)
        .filter(holdings::id.eq(id))
        .select(alert_columns())
        .first(conn)
        .optional()
}

/// Up to `limit` holdings whose alert day has come by `today`, oldest due first. On
/// PostgreSQL the rows are locked, skipping those another transaction holds (a concurrent
/// scan takes the next ones instead of waiting, or sending the same alert).
pub fn due_holdings(
    conn: &mut DbConnection,
    today: NaiveDate,
    limit: i64,
) -> QueryResult<Vec<HoldingAlertRow>> {
    let due: Vec<i64> = match conn {
        DbConnection::Postgresql(c) => {
            use diesel::sql_types::{BigInt, Date};
            #[derive(QueryableByName)]
            struct Due {
                #[diesel(sql_type = BigInt)]
                id: i64,
            }
            diesel::sql_query(
                "SELECT id FROM holdings WHERE alert_stage < 2 AND alert_on <= $1 \
                 ORDER BY alert_on, id LIMIT $2 FOR UPDATE SKIP LOCKED",
            )
            .bind::<Date, _>(today)
            .bind::<BigInt, _>(limit)
            .load::<Due>(c)?
            .into_iter()
            .map(|d| d.id)
            .collect()
        }
        DbConnection::Sqlite(c) => holdings::table
            .filter(holdings::alert_stage.lt(crate::stock_rules::ALERT_DONE))
            .filter(holdings::alert_on.le(today))
            .order((holdings::alert_on, holdings::id))
            .select(holdings::id)
            .limit(limit)
            .load(c)?,
    };
    holdings::table
        .left_join(items::table)
        .filter(holdings::id.eq_any(&due))
        .order(holdings::id)
        .select(alert_columns())
        .load(conn)
}

pub fn set_holding_alert(
    conn: &mut DbConnection,
    id: i64,
    stage: i32,
    due: NaiveDate,
) -> QueryResult<usize> {
    diesel::update(holdings::table.find(id))
        .set((holdings::alert_stage.eq(stage), holdings::alert_on.eq(due)))
        .execute(conn)
}

/// Makes every pending holding alert due again (the default window changed).
pub fn reschedule_holding_alerts(conn: &mut DbConnection) -> QueryResult<usize> {
    diesel::update(holdings::table.filter(holdings::alert_stage.lt(crate::stock_rules::ALERT_DONE)))
        .set(holdings::alert_on.eq(NaiveDate::default()))
        .execute(conn)
}
