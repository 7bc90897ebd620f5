use validator::Validate;

use super::alerts;
use super::dto::{HoldingOut, HoldingPatch, HoldingQuery};
use super::repo::{self, HoldingFilter, HoldingRow};
use crate::db::DbConnection;
use crate::error::{ApiError, ApiResult, Context};
use crate::events::Outbox;
use crate::pagination::{Page, PageParams};
use crate::state::AppState;
use crate::stock_rules::ExpiryRules;

impl From<&HoldingQuery> for HoldingFilter {
    fn from(query: &HoldingQuery) -> Self {
        Self {
            expired: query.expired,
            expiring_within_days: query.expiring_within_days,
            needs_replenishment: query.needs_replenishment,
        }
    }
}

pub fn holding_out(rules: &ExpiryRules, row: HoldingRow, window: Option<i32>) -> HoldingOut {
    let expired = rules.is_expired(row.expiry_date);
    let expiring = rules.is_expiring(row.expiry_date, window);
    HoldingOut {
        needs_replenishment: expired || expiring || row.quantity <= row.min_quantity,
        expired,
        expiring,
        id: row.id,
        customer_id: row.customer_id,
        item_id: row.item_id,
        name: row.item_name,
        quantity: row.quantity,
        expiry_date: row.expiry_date,
        min_quantity: row.min_quantity,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

pub async fn list(
    state: &AppState,
    customer_id: i64,
    filter: HoldingQuery,
    page: PageParams,
) -> ApiResult<Page<HoldingOut>> {
    if filter
        .expiring_within_days
        .is_some_and(|d| !(0..=3650).contains(&d))
    {
        return Err(ApiError::BadRequest(
            "expiring_within_days must be between 0 and 3650".to_owned(),
        ));
    }
    let limit = page.limit()?;
    let after = page.cursor::<i64>()?;
    let rules = ExpiryRules::now(state);
    let filter = HoldingFilter::from(&filter);
    let rows = state
        .db
        .run(move |conn| {
            Ok(repo::holdings_of(
                conn,
                customer_id,
                &filter,
                &rules,
                after,
                limit + 1,
            )?)
        })
        .await?;
    Ok(Page::from_rows(
        rows,
        limit,
        |(h, _)| h.id,
        |(h, w)| holding_out(&rules, h, w),
    ))
}

/// Staff reading a customer's holdings: 404 unless `customer_id` is a live customer.
pub async fn list_for_staff(
    state: &AppState,
    customer_id: i64,
    filter: HoldingQuery,
    page: PageParams,
) -> ApiResult<Page<HoldingOut>> {
    crate::identity::service::live_customer(state, customer_id).await?;
    list(state, customer_id, filter, page).await
}

pub async fn update(
    state: &AppState,
    customer_id: i64,
    id: i64,
    patch: HoldingPatch,
) -> ApiResult<HoldingOut> {
    patch.validate()?;
    let rules = ExpiryRules::now(state);
    let (row, window) = state
        .db
        .run(move |conn| {
            let changed =
                repo::update_holding(conn, customer_id, id, patch.quantity, patch.min_quantity)?;
            let found =
                repo::find_holding(conn, customer_id, id).or_not_found(format!("holding {id}"))?;
            match patch.quantity {
                // Unchanged although the holding is the customer's: the quantity would rise.
                Some(wanted) if changed == 0 => Err(ApiError::field(
                    "quantity",
                    format!(
                        "can only be lowered (consumed): it is {} and cannot become {wanted}; \
                         stock reaches a holding through a replenishment request",
                        found.0.quantity
                    ),
                )),
                _ => Ok(found),
            }
        })
        .await?;
    Ok(holding_out(&rules, row, window))
}

pub async fn delete(state: &AppState, customer_id: i64, id: i64) -> ApiResult<()> {
    let n = state
        .db
        .run(move |conn| Ok(repo::delete_holding(conn, customer_id, id)?))
        .await?;
    if n == 0 {
        return Err(ApiError::not_found(format!("holding {id}")));
    }
    Ok(())
}

// Holding work other areas compose into their own transactions or summaries.

/// How many holdings a customer has, and how many of them need attention.
pub struct HoldingCounts {
    pub holdings: i64,
    pub expired: i64,
    pub expiring_soon: i64,
    pub needs_replenishment: i64,
}

pub fn counts(
    conn: &mut DbConnection,
    customer_id: i64,
    rules: &ExpiryRules,
) -> ApiResult<HoldingCounts> {
    let mut count = |filter: HoldingFilter| repo::count_holdings(conn, customer_id, &filter, rules);
    Ok(HoldingCounts {
        holdings: count(HoldingFilter::default())?,
        expired: count(HoldingFilter {
            expired: Some(true),
            ..Default::default()
        })?,
        expiring_soon: count(HoldingFilter {
            expiring_within_days: Some(rules.default_window),
            ..Default::default()
        })?,
        needs_replenishment: count(HoldingFilter {
            needs_replenishment: Some(true),
            ..Default::default()
        })?,
    })
}

/// Stock handed to a customer: `quantity` units of an item, from a batch expiring on
/// `expiry_date`.
pub struct Delivery<'a> {
    pub customer_id: i64,
    pub item_id: i64,
    pub item_name: &'a str,
    pub quantity: i64,
    pub expiry_date: Option<chrono::NaiveDate>,
}

/// Adds a delivery to the customer's holdings, and checks that holding's expiry alerts.
pub fn receive(
    conn: &mut DbConnection,
    outbox: &mut Outbox,
    rules: &ExpiryRules,
    delivery: &Delivery<'_>,
) -> ApiResult<()> {
    let id = repo::receive(
        conn,
        delivery.customer_id,
        delivery.item_id,
        delivery.item_name,
        delivery.quantity,
        delivery.expiry_date,
    )?;
    if let Some(holding) = repo::holding_alert_state(conn, id)? {
        alerts::check_holding(conn, outbox, rules, &holding)?;
    }
    Ok(())
}

/// Runs the holdings' expiry-alert scan for `today` until nothing due is left that it can
/// take; returns how many holdings it checked.
pub async fn scan_alerts(state: &AppState, today: chrono::NaiveDate) -> ApiResult<usize> {
    let rules = ExpiryRules::on(state, today);
    state
        .events
        .drain(&state.db, move |conn, outbox| {
            alerts::scan_chunk(conn, outbox, &rules)
        })
        .await
}

/// Makes every pending holding alert due at the next scan (the default window changed).
pub async fn reschedule_alerts(state: &AppState) -> ApiResult<()> {
    state
        .db
        .transaction(|conn| {
            repo::reschedule_holding_alerts(conn)?;
            Ok(())
        })
        .await
}

/// Forgets every holding of a customer whose account is being erased.
pub fn delete_all_of(conn: &mut DbConnection, customer_id: i64) -> ApiResult<()> {
    repo::delete_holdings_of(conn, customer_id)?;
    Ok(())
}
