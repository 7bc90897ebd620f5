//! Stock rules that several areas share: when a batch is expired or expiring, and when an
//! item's available (unexpired) stock is low. Inventory, customer holdings, replenishment and
//! the dashboard all answer these questions; they are written down once, here.

use chrono::NaiveDate;
use diesel::backend::Backend;
use diesel::expression::{is_aggregate, ValidGrouping};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{Bool, Date, HasSqlType};

use crate::db::schema::items;
use crate::state::AppState;

/// What the store's clock and settings say about expiry.
#[derive(Clone, Copy)]
pub struct ExpiryRules {
    pub today: NaiveDate,
    pub default_window: i32,
}

impl ExpiryRules {
    pub fn now(state: &AppState) -> Self {
        Self::on(state, crate::time::today())
    }

    /// The rules as they stand on `today` (the scan looks at a given day).
    pub fn on(state: &AppState, today: NaiveDate) -> Self {
        Self {
            today,
            default_window: state.settings.expiry_warning_days,
        }
    }

    pub fn is_expired(&self, date: Option<NaiveDate>) -> bool {
        date.is_some_and(|d| d < self.today)
    }

    /// Within the window and not yet expired.
    pub fn is_expiring(&self, date: Option<NaiveDate>, window: Option<i32>) -> bool {
        let window = i64::from(window.unwrap_or(self.default_window));
        date.is_some_and(|d| d >= self.today && d <= self.today + chrono::Duration::days(window))
    }
}

/// SQL for "available stock (unexpired) is at or below the reorder level", as of `today`.
pub fn low_stock_sql(today: NaiveDate) -> LowStock {
    LowStock { today }
}

/// The expression [`low_stock_sql`] builds: a type of its own rather than a boxed `sql()`
/// literal so that it serves either concrete backend as well as the multi-connection one
/// (the item list runs on the concrete connection; see `inventory::repo::find_item`).
#[derive(Debug, Clone, Copy)]
pub struct LowStock {
    today: NaiveDate,
}

impl Expression for LowStock {
    type SqlType = Bool;
}

impl<DB> QueryFragment<DB> for LowStock
where
    DB: Backend + HasSqlType<Date>,
    NaiveDate: ToSql<Date, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        // Stock at or below the level is low whatever expired; only items whose earliest
        // stocked batch has expired need the (indexed) sum of their expired batches, so a
        // scan over many items stays cheap. SUM is cast so both backends return BIGINT
        // (PostgreSQL's is NUMERIC). `expiry_sort` is never NULL, so the AND short-circuits
        // (NULL AND x needs x).
        out.push_sql("(items.quantity <= items.min_quantity OR (items.expiry_sort < ");
        out.push_bind_param::<Date, _>(&self.today)?;
        out.push_sql(
            " AND items.quantity - COALESCE((SELECT CAST(SUM(b.quantity) AS BIGINT) \
             FROM batches b WHERE b.item_id = items.id AND b.expiry_date < ",
        );
        out.push_bind_param::<Date, _>(&self.today)?;
        out.push_sql("), 0) <= items.min_quantity))");
        Ok(())
    }
}

/// No static id (the date is a value, not a type): statements holding it are cached by
/// their SQL text instead, as diesel does for every dynamic query.
impl QueryId for LowStock {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<QS> AppearsOnTable<QS> for LowStock where items::quantity: AppearsOnTable<QS> {}

impl<QS> SelectableExpression<QS> for LowStock where items::quantity: SelectableExpression<QS> {}

impl<GB> ValidGrouping<GB> for LowStock {
    type IsAggregate = is_aggregate::Never;
}

/// "Low now", as stored in `items.low_from`.
pub const LOW_ALREADY: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");

/// The first day an item counts as low if its stock stays as it is: [`LOW_ALREADY`] when
/// its stock is at or below `min_quantity` now, else the day after the batch whose expiry
/// brings what is left to that level, or `None` when no expiry ever does. `batches` are
/// (expiry date, quantity) pairs. The rule is [`low_stock_sql`]'s, moved ahead of time so
/// that counting low items is one index range (see the `stock_totals` migration).
pub fn low_from(
    min_quantity: i64,
    batches: impl IntoIterator<Item = (Option<NaiveDate>, i64)>,
) -> Option<NaiveDate> {
    let mut dated: Vec<(NaiveDate, i64)> = Vec::new();
    let mut left = 0i64;
    for (expiry, quantity) in batches {
        left += quantity;
        if let Some(day) = expiry {
            dated.push((day, quantity));
        }
    }
    if left <= min_quantity {
        return Some(LOW_ALREADY);
    }
    dated.sort_unstable();
    for (day, quantity) in dated {
        left -= quantity;
        if left <= min_quantity {
            return Some(day.succ_opt().unwrap_or(day));
        }
    }
    None
}

/// Where a dated thing (a batch, a holding) stands with its expiry alerts: `stage` 0 =
/// nothing sent, 1 = "expiring" sent, 2 = done; `due` = the day it must be looked at again.
/// Stored with the row, so a scan reads only the rows whose day has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertSchedule {
    pub stage: i32,
    pub due: NaiveDate,
}

/// Which expiry alert to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryAlert {
    Expiring,
    Expired,
}

pub const ALERT_NONE_SENT: i32 = 0;
pub const ALERT_EXPIRING_SENT: i32 = 1;
pub const ALERT_DONE: i32 = 2;

impl ExpiryRules {
    /// The next schedule of a row holding `quantity` units that expire on `expiry`, and the
    /// alert to send now, if any. An empty row sends nothing and keeps its stage, so stock
    /// that arrives later is still announced; a row first seen expired sends only
    /// "expired".
    pub fn next_alert(
        &self,
        expiry: Option<NaiveDate>,
        window: Option<i32>,
        quantity: i64,
        current: AlertSchedule,
    ) -> (AlertSchedule, Option<ExpiryAlert>) {
        let Some(expiry) = expiry else {
            return (
                AlertSchedule {
                    stage: ALERT_DONE,
                    due: current.due,
                },
                None,
            );
        };
        let window = chrono::Duration::days(i64::from(window.unwrap_or(self.default_window)));
        let stocked = quantity > 0;
        if expiry < self.today {
            // Expired is final: an empty row has nothing worth announcing, ever.
            let alert = (stocked && current.stage < ALERT_DONE).then_some(ExpiryAlert::Expired);
            return (
                AlertSchedule {
                    stage: ALERT_DONE,
                    due: current.due,
                },
                alert,
            );
        }
        // Looked at again the day it expires.
        let expired_on = expiry + chrono::Duration::days(1);
        if expiry - window <= self.today {
            if !stocked {
                return (
                    AlertSchedule {
                        stage: current.stage,
                        due: expired_on,
                    },
                    None,
                );
            }
            let alert = (current.stage == ALERT_NONE_SENT).then_some(ExpiryAlert::Expiring);
            return (
                AlertSchedule {
                    stage: current.stage.max(ALERT_EXPIRING_SENT),
                    due: expired_on,
                },
                alert,
            );
        }
        (
            AlertSchedule {
                stage: current.stage,
                due: expiry - window,
            },
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(2026, 12, d)
    }

    #[test]
    fn an_item_is_low_from_the_day_after_the_expiry_that_brings_it_to_its_level() {
        assert_eq!(
            low_from(5, [(day(9), 5)]),
            Some(LOW_ALREADY),
            "at the level now"
        );
        assert_eq!(low_from(0, []), Some(LOW_ALREADY), "nothing at all");
        assert_eq!(low_from(4, [(None, 5)]), None, "nothing expires");
        // 10 in stock, level 4: the batch of 3 expiring on the 5th leaves 7, the one of 3
        // on the 9th leaves 4.
        let batches = [(day(9), 3), (None, 4), (day(5), 3)];
        assert_eq!(low_from(4, batches), day(10));
        assert_eq!(low_from(7, batches), day(6));
        assert_eq!(low_from(3, batches), None);
    }
}
