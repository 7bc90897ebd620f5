//! SQL for items, batches and the ledger. Each function takes a connection, so it works
//! inside or outside a transaction.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};
use serde::{Deserialize, Serialize};

use super::dto::{ItemKind, ItemSort};
use crate::db::schema::{batches, items, stock_movements, stock_totals};
use crate::db::{coalesce_int, date_add_days};
use crate::db::{on_backend, DbConnection};
use crate::pagination::{keyset_page, Keyset};
use crate::stock_rules::{low_stock_sql, ExpiryRules};

/// Sorts after any real expiry date (the `expiry_sort` of items without dated stock).
pub fn no_expiry() -> NaiveDate {
    NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX)
}

/// Serde: only for packing into the item memory (`inventory::service::Snapshot`); never
/// shown to clients as it is.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, Deserialize)]
#[diesel(table_name = items)]
pub struct ItemRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub size: Option<String>,
    pub unit: Option<String>,
    pub sku: Option<String>,
    pub barcode: Option<String>,
    pub description: Option<String>,
    pub min_quantity: i64,
    pub target_quantity: Option<i64>,
    pub expiry_warning_days: Option<i32>,
    pub photo_file_id: Option<i64>,
    pub quantity: i64,
    pub next_expiry: Option<NaiveDate>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, Deserialize)]
#[diesel(table_name = batches)]
pub struct BatchRow {
    pub id: i64,
    pub item_id: i64,
    pub quantity: i64,
    pub expiry_date: Option<NaiveDate>,
    pub lot_code: Option<String>,
    pub received_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = stock_movements)]
pub struct MovementRow {
    pub id: i64,
    pub item_id: i64,
    pub batch_id: Option<i64>,
    pub delta: i64,
    pub reason: String,
    pub quantity_after: i64,
    pub actor_id: Option<i64>,
    pub note: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Insertable, AsChangeset, Default)]
#[diesel(table_name = items)]
pub struct ItemFields {
    pub name: Option<String>,
    pub name_key: Option<String>,
    pub kind: Option<String>,
    pub size: Option<Option<String>>,
    pub unit: Option<Option<String>>,
    pub sku: Option<Option<String>>,
    pub barcode: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub min_quantity: Option<i64>,
    pub target_quantity: Option<Option<i64>>,
    pub expiry_warning_days: Option<Option<i32>>,
    pub photo_file_id: Option<Option<i64>>,
}

pub fn insert_item(
    conn: &mut DbConnection,
    fields: &ItemFields,
    created_by: Option<i64>,
) -> QueryResult<i64> {
    let now = crate::time::now();
    diesel::insert_into(items::table)
        .values((
            fields,
            items::created_by.eq(created_by),
            items::created_at.eq(now),
            items::updated_at.eq(now),
        ))
        .returning(items::id)
        .get_result(conn)
}

/// Applies `fields` and bumps the version, only if the version is still `expected` (when
/// given). Returns the number of rows changed (0: missing or stale).
pub fn update_item(
    conn: &mut DbConnection,
    id: i64,
    fields: &ItemFields,
    expected_version: Option<i64>,
) -> QueryResult<usize> {
    let now = crate::time::now();
    let target = items::table.filter(items::id.eq(id)).into_boxed();
    let target = match expected_version {
        Some(v) => target.filter(items::version.eq(v)),
        None => target,
    };
    let ids: Vec<i64> = target.select(items::id).load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    let mut query = diesel::update(items::table.filter(items::id.eq(id))).into_boxed();
    if let Some(v) = expected_version {
        query = query.filter(items::version.eq(v));
    }
    query
        .set((
            fields,
            items::version.eq(items::version + 1),
            items::updated_at.eq(now),
        ))
        .execute(conn)
}

/// By primary key, so without `LIMIT`: SQLite re-prepares a statement whose `LIMIT` is a
/// bound parameter every time it is bound (it plans with the value), which diesel's
/// `.first()` does. Hot lookups by key use `get_result` and keep their prepared statement.
/// "The batch holds stock": `batches.quantity > 0`, written into the SQL as a literal rather
/// than bound as `quantity > $1`. Both engines decide from this term whether the partial index
/// `batches_stocked_expiry` applies: PostgreSQL's planner cannot prove that a bound parameter
/// satisfies the index's predicate, and SQLite, which can, then re-prepares the statement on
/// every bind (the bound value decided the plan), parsing it again on every request. Unlike
/// diesel's `sql()` literal, this type keeps the statement in diesel's prepared-statement
/// cache, and it is accepted only where `batches` is in the query.
#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId)]
struct Stocked;

fn stocked() -> Stocked {
    Stocked
}

impl Expression for Stocked {
    type SqlType = Bool;
}

impl<DB: diesel::backend::Backend> diesel::query_builder::QueryFragment<DB> for Stocked {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        out.push_sql("batches.quantity > 0");
        Ok(())
    }
}

impl<QS> AppearsOnTable<QS> for Stocked where batches::quantity: AppearsOnTable<QS> {}

impl<QS> SelectableExpression<QS> for Stocked where batches::quantity: SelectableExpression<QS> {}

impl<GB> diesel::expression::ValidGrouping<GB> for Stocked {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

/// Runs on the concrete connection (as do the other reads on `GET /items/{id}`): through the
/// multi-connection enum, diesel writes the statement's SQL text out again on every execution
/// even when the prepared statement is cached, and that showed in profiles of the hot path.
pub fn find_item(conn: &mut DbConnection, id: i64) -> QueryResult<ItemRow> {
    on_backend!(conn, |c| items::table
        .filter(items::id.eq(id))
        .select(ItemRow::as_select())
        .get_result(c))
}

pub fn find_item_by_sku(conn: &mut DbConnection, sku: &str) -> QueryResult<Option<ItemRow>> {
    items::table
        .filter(items::sku.eq(sku))
        .select(ItemRow::as_select())
        .first(conn)
        .optional()
}

/// The id of the item holding `column = value`, for friendly duplicate errors.
pub fn item_with_sku(conn: &mut DbConnection, sku: &str) -> QueryResult<Option<i64>> {
    items::table
        .filter(items::sku.eq(sku))
        .select(items::id)
        .first(conn)
        .optional()
}

pub fn item_with_barcode(conn: &mut DbConnection, barcode: &str) -> QueryResult<Option<i64>> {
    items::table
        .filter(items::barcode.eq(barcode))
        .select(items::id)
        .first(conn)
        .optional()
}

pub fn delete_item(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(items::table.filter(items::id.eq(id))).execute(conn)
}

/// Shifts the item's stock total by `delta` unless that would make it negative. As the
/// first statement of a stock transaction it takes the item's row lock on PostgreSQL (SQLite's
/// write transactions already hold the database's write lock), so concurrent changes to one
/// item queue up and none is lost.
/// Returns false when the item is missing or the stock is short.
pub fn shift_total(conn: &mut DbConnection, item_id: i64, delta: i64) -> QueryResult<bool> {
    diesel::update(
        items::table
            .filter(items::id.eq(item_id))
            .filter((items::quantity + delta).ge(0)),
    )
    .set(items::quantity.eq(items::quantity + delta))
    .execute(conn)
    .map(|n| n == 1)
}

pub fn item_exists(conn: &mut DbConnection, id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(items::table.filter(items::id.eq(id)))).get_result(conn)
}

pub fn item_total(conn: &mut DbConnection, id: i64) -> QueryResult<i64> {
    items::table
        .filter(items::id.eq(id))
        .select(items::quantity)
        .first(conn)
}

/// Batches holding stock, earliest expiry first, undated last (FEFO order).
pub fn stocked_batches(conn: &mut DbConnection, item_id: i64) -> QueryResult<Vec<BatchRow>> {
    on_backend!(conn, |c| batches::table
        .filter(batches::item_id.eq(item_id))
        .filter(stocked())
        .order((
            batches::expiry_date.is_null().asc(),
            batches::expiry_date.asc(),
            batches::id.asc(),
        ))
        .select(BatchRow::as_select())
        .load(c))
}

/// Stocked batches of several items (for a page of items).
pub fn stocked_batches_of(conn: &mut DbConnection, item_ids: &[i64]) -> QueryResult<Vec<BatchRow>> {
    on_backend!(conn, |c| batches::table
        .filter(batches::item_id.eq_any(item_ids))
        .filter(stocked())
        .order((
            batches::expiry_date.is_null().asc(),
            batches::expiry_date.asc(),
            batches::id.asc(),
        ))
        .select(BatchRow::as_select())
        .load(c))
}

pub fn find_batch(conn: &mut DbConnection, item_id: i64, batch_id: i64) -> QueryResult<BatchRow> {
    batches::table
        .filter(batches::id.eq(batch_id))
        .filter(batches::item_id.eq(item_id))
        .select(BatchRow::as_select())
        .first(conn)
}

pub fn insert_batch(
    conn: &mut DbConnection,
    item_id: i64,
    quantity: i64,
    expiry_date: Option<NaiveDate>,
    lot_code: Option<&str>,
) -> QueryResult<i64> {
    diesel::insert_into(batches::table)
        .values((
            batches::item_id.eq(item_id),
            batches::quantity.eq(quantity),
            batches::expiry_date.eq(expiry_date),
            batches::lot_code.eq(lot_code),
            batches::received_at.eq(crate::time::now()),
        ))
        .returning(batches::id)
        .get_result(conn)
}

/// Adds `delta` to a batch unless it would go negative; false when it would.
pub fn shift_batch(conn: &mut DbConnection, batch_id: i64, delta: i64) -> QueryResult<bool> {
    diesel::update(
        batches::table
            .filter(batches::id.eq(batch_id))
            .filter((batches::quantity + delta).ge(0)),
    )
    .set(batches::quantity.eq(batches::quantity + delta))
    .execute(conn)
    .map(|n| n == 1)
}

/// Recomputes the item's earliest stocked expiry after its batches changed.
pub fn refresh_next_expiry(conn: &mut DbConnection, item_id: i64) -> QueryResult<()> {
    let next: Option<NaiveDate> = batches::table
        .filter(batches::item_id.eq(item_id))
        .filter(stocked())
        .filter(batches::expiry_date.is_not_null())
        .order(batches::expiry_date.asc())
        .select(batches::expiry_date)
        .first::<Option<NaiveDate>>(conn)
        .optional()?
        .flatten();
    diesel::update(items::table.filter(items::id.eq(item_id)))
        .set((
            items::next_expiry.eq(next),
            items::expiry_sort.eq(next.unwrap_or_else(no_expiry)),
        ))
        .execute(conn)
        .map(|_| ())
}

pub struct NewMovement<'a> {
    pub item_id: i64,
    pub batch_id: Option<i64>,
    pub delta: i64,
    pub reason: &'a str,
    pub quantity_after: i64,
    pub actor_id: Option<i64>,
    pub note: Option<&'a str>,
}

pub fn insert_movement(conn: &mut DbConnection, m: &NewMovement<'_>) -> QueryResult<MovementRow> {
    let id: i64 = diesel::insert_into(stock_movements::table)
        .values((
            stock_movements::item_id.eq(m.item_id),
            stock_movements::batch_id.eq(m.batch_id),
            stock_movements::delta.eq(m.delta),
            stock_movements::reason.eq(m.reason),
            stock_movements::quantity_after.eq(m.quantity_after),
            stock_movements::actor_id.eq(m.actor_id),
            stock_movements::note.eq(m.note),
            stock_movements::created_at.eq(crate::time::now()),
        ))
        .returning(stock_movements::id)
        .get_result(conn)?;
    stock_movements::table
        .filter(stock_movements::id.eq(id))
        .select(MovementRow::as_select())
        .first(conn)
}

pub fn movements(
    conn: &mut DbConnection,
    item_id: i64,
    before_id: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<MovementRow>> {
    let mut query = stock_movements::table
        .filter(stock_movements::item_id.eq(item_id))
        .select(MovementRow::as_select())
        .order(stock_movements::id.desc())
        .into_boxed();
    if let Some(id) = before_id {
        query = query.filter(stock_movements::id.lt(id));
    }
    query.limit(limit + 1).load(conn)
}

/// Where the previous page of expired batches ended.
pub fn expired_batches(
    conn: &mut DbConnection,
    today: NaiveDate,
    after: Option<Keyset<NaiveDate>>,
    limit: i64,
) -> QueryResult<Vec<(BatchRow, String)>> {
    let query = batches::table
        .inner_join(items::table)
        .filter(stocked())
        .filter(batches::expiry_date.lt(today))
        .select((BatchRow::as_select(), items::name))
        .into_boxed();
    let query = keyset_page!(query, batches::expiry_date, batches::id, after, false);
    query.limit(limit + 1).load(conn)
}

/// Which items a list selects.
#[derive(Debug, Default, Clone)]
pub struct ItemFilter {
    /// Case-insensitive text anywhere in name, sku, barcode or description.
    pub text: Option<String>,
    pub kind: Option<ItemKind>,
    /// Items whose earliest stocked batch has (`true`) or has not (`false`) expired.
    pub expired: Option<bool>,
    /// Items with stock expiring within this many days.
    pub expiring_within_days: Option<i32>,
    /// Items whose available stock is (`true`) or is not (`false`) at or below the level.
    pub low_stock: Option<bool>,
    pub barcode: Option<String>,
    /// Only items with unexpired stock (what customers may see).
    pub in_stock_only: bool,
}

/// The order of an item list, and where its previous page ended in the sort's own key type.
#[derive(Debug, Clone)]
pub enum ItemOrder {
    Name(Option<Keyset<String>>),
    Quantity(Option<Keyset<i64>>),
    ExpiryDate(Option<Keyset<NaiveDate>>),
    CreatedAt(Option<Keyset<NaiveDateTime>>),
}

/// A row's sort key, as its cursor carries it.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ItemKey {
    Text(String),
    Number(i64),
    Date(NaiveDate),
    Time(NaiveDateTime),
}

/// Where a page ending at `row` ended, in `sort` order.
pub fn cursor_of(row: &ItemRow, sort: ItemSort) -> Keyset<ItemKey> {
    let key = match sort {
        ItemSort::Name | ItemSort::NameDesc => ItemKey::Text(row.name.to_lowercase()),
        ItemSort::Quantity | ItemSort::QuantityDesc => ItemKey::Number(row.quantity),
        ItemSort::ExpiryDate | ItemSort::ExpiryDateDesc => {
            ItemKey::Date(row.next_expiry.unwrap_or_else(no_expiry))
        }
        ItemSort::CreatedAt | ItemSort::CreatedAtDesc => ItemKey::Time(row.created_at),
    };
    Keyset { key, id: row.id }
}

/// One page of items matching `filter`, keyset-paginated on (sort key, id).
pub fn list_items(
    conn: &mut DbConnection,
    filter: &ItemFilter,
    order: ItemOrder,
    desc: bool,
    limit: i64,
    today: NaiveDate,
) -> QueryResult<Vec<ItemRow>> {
    // On the concrete connection, as `find_item` (one copy of the query per backend).
    on_backend!(conn, |c| {
        let mut q = items::table.select(ItemRow::as_select()).into_boxed();
        if filter.in_stock_only {
            q = q.filter(
                items::id.eq_any(
                    batches::table
                        .filter(stocked())
                        .filter(
                            batches::expiry_date
                                .is_null()
                                .or(batches::expiry_date.ge(today)),
                        )
                        .select(batches::item_id),
                ),
            );
        }
        if let Some(text) = filter
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let pattern = crate::pagination::contains_pattern(text);
            q = q.filter(
                items::name_key
                    .like(pattern.clone())
                    .escape('\\')
                    .or(crate::db::lower(items::sku)
                        .like(pattern.clone())
                        .escape('\\'))
                    .or(crate::db::lower(items::barcode)
                        .like(pattern.clone())
                        .escape('\\'))
                    .or(crate::db::lower(items::description)
                        .like(pattern)
                        .escape('\\')),
            );
        }
        if let Some(kind) = filter.kind {
            q = q.filter(items::kind.eq(kind.as_str()));
        }
        if let Some(barcode) = &filter.barcode {
            q = q.filter(items::barcode.eq(barcode.clone()));
        }
        match filter.expired {
            Some(true) => q = q.filter(items::next_expiry.lt(today)),
            Some(false) => {
                q = q.filter(
                    items::next_expiry
                        .is_null()
                        .or(items::next_expiry.ge(today)),
                )
            }
            None => {}
        }
        if let Some(days) = filter.expiring_within_days {
            let until = today + chrono::Duration::days(i64::from(days));
            q = q.filter(
                items::id.eq_any(
                    batches::table
                        .filter(stocked())
                        .filter(batches::expiry_date.ge(today))
                        .filter(batches::expiry_date.le(until))
                        .select(batches::item_id),
                ),
            );
        }
        match filter.low_stock {
            Some(true) => q = q.filter(low_stock_sql(today)),
            Some(false) => q = q.filter(diesel::dsl::not(low_stock_sql(today))),
            None => {}
        }
        let q = match order {
            ItemOrder::Name(after) => keyset_page!(q, items::name_key, items::id, after, desc),
            ItemOrder::Quantity(after) => keyset_page!(q, items::quantity, items::id, after, desc),
            ItemOrder::ExpiryDate(after) => {
                keyset_page!(q, items::expiry_sort, items::id, after, desc)
            }
            ItemOrder::CreatedAt(after) => {
                keyset_page!(q, items::created_at, items::id, after, desc)
            }
        };
        q.limit(limit + 1).load(c)
    })
}

/// Every batch of an item, empty ones too (for matching CSV rows to lots).
pub fn all_batches(conn: &mut DbConnection, item_id: i64) -> QueryResult<Vec<BatchRow>> {
    batches::table
        .filter(batches::item_id.eq(item_id))
        .order(batches::id.asc())
        .select(BatchRow::as_select())
        .load(conn)
}

/// Items in id order after `after_id` (for the export).
pub fn items_after(
    conn: &mut DbConnection,
    after_id: i64,
    limit: i64,
) -> QueryResult<Vec<ItemRow>> {
    items::table
        .filter(items::id.gt(after_id))
        .order(items::id.asc())
        .limit(limit)
        .select(ItemRow::as_select())
        .load(conn)
}

/// Items that may need restocking: available stock at or below the reorder level, or a
/// stocked batch expired or within the item's window. Name order, after `after`.
pub fn restock_candidates(
    conn: &mut DbConnection,
    rules: &ExpiryRules,
    after: Option<Keyset<String>>,
    limit: i64,
) -> QueryResult<Vec<ItemRow>> {
    let today = rules.today;
    let window = coalesce_int(items::expiry_warning_days, rules.default_window);
    let query = items::table
        .filter(
            low_stock_sql(today).or(items::next_expiry
                .is_not_null()
                .and(items::next_expiry.le(date_add_days(today, window).nullable()))
                .assume_not_null()),
        )
        .select(ItemRow::as_select())
        .into_boxed();
    let query = keyset_page!(query, items::name_key, items::id, after, false);
    query.limit(limit + 1).load(conn)
}

/// Store-wide stock counts, each one query over an index, never loading a table.
pub struct StockCounts {
    pub items: i64,
    pub units: i64,
    pub expired_batches: i64,
    pub expiring_soon: i64,
    pub low_stock: i64,
}

pub fn stock_counts(conn: &mut DbConnection, rules: &ExpiryRules) -> QueryResult<StockCounts> {
    let today: NaiveDate = rules.today;
    let window = coalesce_int(items::expiry_warning_days, rules.default_window);
    // The widest window in use bounds the range of batches to look at (an index lookup).
    let widest: Option<i32> = items::table
        .select(diesel::dsl::max(items::expiry_warning_days))
        .first(conn)?;
    let horizon =
        today + chrono::Duration::days(i64::from(widest.unwrap_or(0).max(rules.default_window)));
    let (items_total, units) = stock_totals(conn)?;
    Ok(StockCounts {
        items: items_total,
        units,
        expired_batches: batches::table
            .filter(stocked())
            .filter(batches::expiry_date.lt(today))
            .count()
            .get_result(conn)?,
        expiring_soon: batches::table
            .inner_join(items::table)
            .filter(stocked())
            .filter(batches::expiry_date.ge(today))
            .filter(batches::expiry_date.le(horizon))
            .filter(batches::expiry_date.le(date_add_days(today, window).nullable()))
            .count()
            .get_result(conn)?,
        low_stock: low_stock_count(conn, today)?,
    })
}

/// Items and units in stock: the folded totals plus the deltas not folded yet (one
/// statement, so one snapshot on either backend).
fn stock_totals(conn: &mut DbConnection) -> QueryResult<(i64, i64)> {
    stock_totals::table
        .select((
            sql::<BigInt>(
                "stock_totals.items + (SELECT CAST(COALESCE(SUM(d.items), 0) AS BIGINT) \
                 FROM stock_total_deltas d)",
            ),
            sql::<BigInt>(
                "stock_totals.units + (SELECT CAST(COALESCE(SUM(d.units), 0) AS BIGINT) \
                 FROM stock_total_deltas d)",
            ),
        ))
        .first(conn)
}

/// Items low on `today`: a range of `items_low_from` for the items checked since their last
/// change, and the rule itself for the few marked to be checked (a CSV import marks its
/// items; the scan it wakes checks them).
fn low_stock_count(conn: &mut DbConnection, today: NaiveDate) -> QueryResult<i64> {
    let checked: i64 = items::table
        .filter(items::low_from.le(today))
        .filter(items::alert_due.eq(false))
        .count()
        .get_result(conn)?;
    // Literal, so PostgreSQL's planner matches the partial index `items_alert_due`.
    let unchecked: i64 = items::table
        .filter(sql::<Bool>("items.alert_due"))
        .filter(low_stock_sql(today))
        .count()
        .get_result(conn)?;
    Ok(checked + unchecked)
}

/// Folds the stock deltas written since the last fold into the totals row, in one statement
/// (PostgreSQL; on SQLite the triggers update the row itself and there is nothing to fold).
pub fn fold_stock_totals(conn: &mut DbConnection) -> QueryResult<usize> {
    if conn.backend() != crate::config::Backend::Postgres {
        return Ok(0);
    }
    diesel::sql_query(
        "WITH folded AS (DELETE FROM stock_total_deltas RETURNING items, units), \
              sums AS (SELECT COUNT(*) AS n, COALESCE(SUM(items), 0) AS items, \
                              COALESCE(SUM(units), 0) AS units FROM folded) \
         UPDATE stock_totals SET items = stock_totals.items + sums.items, \
                                 units = stock_totals.units + sums.units \
         FROM sums WHERE stock_totals.id = 1 AND sums.n > 0",
    )
    .execute(conn)
}

// Expiry and low-stock alerts (see `super::alerts`).

/// What the alerts need of an item.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = items)]
pub struct ItemAlertRow {
    pub id: i64,
    pub name: String,
    pub unit: Option<String>,
    pub min_quantity: i64,
    pub expiry_warning_days: Option<i32>,
    pub low_stock_alerted: bool,
    pub low_stock_spells: i64,
    pub alert_due: bool,
    pub low_from: Option<NaiveDate>,
}

/// What the alerts need of a batch.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = batches)]
pub struct BatchAlertRow {
    pub id: i64,
    pub quantity: i64,
    pub expiry_date: Option<NaiveDate>,
    pub lot_code: Option<String>,
    pub alert_stage: i32,
    pub alert_on: NaiveDate,
}

pub fn item_alert_state(conn: &mut DbConnection, id: i64) -> QueryResult<Option<ItemAlertRow>> {
    items::table
        .find(id)
        .select(ItemAlertRow::as_select())
        .first(conn)
        .optional()
}

/// The item's batches that hold stock or still have an alert to send.
pub fn alert_batches(conn: &mut DbConnection, item_id: i64) -> QueryResult<Vec<BatchAlertRow>> {
    batches::table
        .filter(batches::item_id.eq(item_id))
        .filter(
            batches::quantity
                .gt(0)
                .or(batches::alert_stage.lt(crate::stock_rules::ALERT_DONE)),
        )
        .order(batches::id)
        .select(BatchAlertRow::as_select())
        .load(conn)
}

pub fn set_batch_alert(
    conn: &mut DbConnection,
    id: i64,
    stage: i32,
    due: NaiveDate,
) -> QueryResult<usize> {
    diesel::update(batches::table.find(id))
        .set((batches::alert_stage.eq(stage), batches::alert_on.eq(due)))
        .execute(conn)
}

/// Stores the item's low-stock state and clears its "check me" mark.
pub fn set_low_stock(
    conn: &mut DbConnection,
    id: i64,
    alerted: bool,
    spells: i64,
    low_from: Option<NaiveDate>,
) -> QueryResult<usize> {
    diesel::update(items::table.find(id))
        .set((
            items::low_stock_alerted.eq(alerted),
            items::low_stock_spells.eq(spells),
            items::low_from.eq(low_from),
            items::alert_due.eq(false),
        ))
        .execute(conn)
}

/// Marks items to be checked by the next scan.
pub fn mark_alert_due(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<usize> {
    let mut marked = 0;
    for chunk in ids.chunks(1_000) {
        marked += diesel::update(items::table.filter(items::id.eq_any(chunk)))
            .set(items::alert_due.eq(true))
            .execute(conn)?;
    }
    Ok(marked)
}

/// Up to `limit` items with something to check on `today`: marked items, and items with a
/// batch whose alert day has come. Both read only their partial index's due rows.
pub fn due_items(conn: &mut DbConnection, today: NaiveDate, limit: i64) -> QueryResult<Vec<i64>> {
    let mut ids: Vec<i64> = items::table
        .filter(items::alert_due.eq(true))
        .select(items::id)
        .order(items::id)
        .limit(limit)
        .load(conn)?;
    ids.extend(
        batches::table
            .filter(batches::alert_stage.lt(crate::stock_rules::ALERT_DONE))
            .filter(batches::alert_on.le(today))
            .select(batches::item_id)
            .order(batches::alert_on)
            .limit(limit)
            .load::<i64>(conn)?,
    );
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// Locks those of `ids` that no other transaction holds, in id order, and returns them. On
/// PostgreSQL a scan thus skips an item whose stock is changing right now (that change
/// checks the item itself) instead of waiting for it, and two scans split the work. SQLite
/// runs one writer at a time, so every id is free.
pub fn lock_free_items(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<Vec<i64>> {
    use diesel::sql_types::{Array, BigInt};
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    match conn {
        DbConnection::Postgresql(c) => Ok(diesel::sql_query(
            "SELECT id FROM items WHERE id = ANY($1) ORDER BY id FOR UPDATE SKIP LOCKED",
        )
        .bind::<Array<BigInt>, _>(ids)
        .load::<Locked>(c)?
        .into_iter()
        .map(|l| l.id)
        .collect()),
        DbConnection::Sqlite(c) => items::table
            .filter(items::id.eq_any(ids))
            .select(items::id)
            .order(items::id)
            .load(c),
    }
}

/// Makes every pending batch alert due again (the default window changed).
pub fn reschedule_batch_alerts(conn: &mut DbConnection) -> QueryResult<usize> {
    diesel::update(batches::table.filter(batches::alert_stage.lt(crate::stock_rules::ALERT_DONE)))
        .set(batches::alert_on.eq(NaiveDate::default()))
        .execute(conn)
}

/// The default expiry window the pending alerts were scheduled with.
pub fn alert_window(conn: &mut DbConnection) -> QueryResult<Option<i32>> {
    use crate::db::schema::alert_settings;
    alert_settings::table
        .find(1)
        .select(alert_settings::default_window)
        .first(conn)
        .optional()
}

pub fn set_alert_window(conn: &mut DbConnection, window: i32) -> QueryResult<usize> {
    use crate::db::schema::alert_settings;
    let updated = diesel::update(alert_settings::table.find(1))
        .set(alert_settings::default_window.eq(window))
        .execute(conn)?;
    if updated > 0 {
        return Ok(updated);
    }
    diesel::insert_into(alert_settings::table)
        .values((
            alert_settings::id.eq(1),
            alert_settings::default_window.eq(window),
        ))
        .execute(conn)
}
