//! Staff alerts about stock: a batch entering its expiry window, a batch expiring, an item
//! whose available stock falls to or below its reorder level. An item is checked at once in
//! every transaction that changes its stock or levels (the item row is locked there), and by
//! the periodic scan for what the calendar changes; either way each cause notifies each
//! staff member once (`notifications` enforces it with a unique key).

use super::repo::{self, BatchAlertRow, ItemAlertRow};
use crate::db::DbConnection;
use crate::error::ApiResult;
use crate::events::Outbox;
use crate::identity::service as identity;
use crate::notifications::dto::{Link, NotificationKind, SubjectType};
use crate::notifications::service::{self as notifications, Notice};
use crate::stock_rules::{AlertSchedule, ExpiryAlert, ExpiryRules, ALERT_DONE};

/// Who hears of stock: the staff, read once per transaction and only when needed.
#[derive(Default)]
struct Staff(Option<Vec<i64>>);

impl Staff {
    fn ids(&mut self, conn: &mut DbConnection) -> ApiResult<Vec<i64>> {
        if self.0.is_none() {
            self.0 = Some(identity::staff_ids(conn)?);
        }
        Ok(self.0.clone().unwrap_or_default())
    }
}

fn item_path(id: i64) -> String {
    format!("/api/v1/items/{id}")
}

fn units(item: &ItemAlertRow, quantity: i64) -> String {
    match &item.unit {
        Some(unit) => format!("{quantity} {unit}"),
        None => format!("{quantity} units"),
    }
}

fn batch_notice(item: &ItemAlertRow, batch: &BatchAlertRow, alert: ExpiryAlert) -> Notice {
    let lot = batch
        .lot_code
        .as_ref()
        .map(|l| format!(" (lot {l})"))
        .unwrap_or_default();
    let date = batch.expiry_date.map(|d| d.to_string()).unwrap_or_default();
    let what = units(item, batch.quantity);
    let (kind, cause, title, body) = match alert {
        ExpiryAlert::Expiring => (
            NotificationKind::BatchExpiring,
            format!("batch:{}:expiring", batch.id),
            format!("Expiring soon: {}", item.name),
            format!("{what} of {}{lot} expire on {date}.", item.name),
        ),
        ExpiryAlert::Expired => (
            NotificationKind::BatchExpired,
            format!("batch:{}:expired", batch.id),
            format!("Expired: {}", item.name),
            format!("{what} of {}{lot} expired on {date}.", item.name),
        ),
    };
    Notice {
        kind,
        cause,
        title,
        body,
        link: Link::new(SubjectType::Batch, batch.id, item_path(item.id)),
    }
}

/// Checks one item: its batches' expiry alerts and its low-stock state. Call it with the
/// item row locked, as every stock change has.
pub fn check(
    conn: &mut DbConnection,
    outbox: &mut Outbox,
    rules: &ExpiryRules,
    item_id: i64,
) -> ApiResult<()> {
    check_item(conn, outbox, rules, &mut Staff::default(), item_id)
}

/// [`check`], with the staff list shared by the items of one scan chunk.
fn check_item(
    conn: &mut DbConnection,
    outbox: &mut Outbox,
    rules: &ExpiryRules,
    staff: &mut Staff,
    item_id: i64,
) -> ApiResult<()> {
    let Some(item) = repo::item_alert_state(conn, item_id)? else {
        return Ok(());
    };
    let batches = repo::alert_batches(conn, item_id)?;
    for batch in batches.iter().filter(|b| b.alert_stage < ALERT_DONE) {
        let current = AlertSchedule {
            stage: batch.alert_stage,
            due: batch.alert_on,
        };
        let (next, alert) = rules.next_alert(
            batch.expiry_date,
            item.expiry_warning_days,
            batch.quantity,
            current,
        );
        if next != current {
            repo::set_batch_alert(conn, batch.id, next.stage, next.due)?;
        }
        if let Some(alert) = alert {
            let notice = batch_notice(&item, batch, alert);
            let staff = staff.ids(conn)?;
            notifications::notify(conn, outbox, &staff, &notice)?;
        }
    }
    let available: i64 = batches
        .iter()
        .filter(|b| !rules.is_expired(b.expiry_date))
        .map(|b| b.quantity)
        .sum();
    let low = available <= item.min_quantity;
    let mut spells = item.low_stock_spells;
    if low && !item.low_stock_alerted {
        // A new low spell: a new cause, even if an earlier spell was notified.
        spells += 1;
        let notice = Notice {
            kind: NotificationKind::LowStock,
            cause: format!("item:{}:low:{spells}", item.id),
            title: format!("Low stock: {}", item.name),
            body: format!(
                "{} available, reorder level {}.",
                units(&item, available),
                item.min_quantity
            ),
            link: Link::new(SubjectType::Item, item.id, item_path(item.id)),
        };
        let staff = staff.ids(conn)?;
        notifications::notify(conn, outbox, &staff, &notice)?;
    }
    let low_from = crate::stock_rules::low_from(
        item.min_quantity,
        batches.iter().map(|b| (b.expiry_date, b.quantity)),
    );
    if low != item.low_stock_alerted
        || spells != item.low_stock_spells
        || low_from != item.low_from
        || item.alert_due
    {
        repo::set_low_stock(conn, item.id, low, spells, low_from)?;
    }
    Ok(())
}

/// Items checked per scan transaction: short enough (tens of milliseconds) that a writer
/// waiting behind a scan for SQLite's lock, or for an item's row on PostgreSQL, waits little.
const SCAN_CHUNK: i64 = 50;

/// One chunk of the scan: the due items no other transaction holds, checked. Returns how
/// many were checked (0: nothing left that this scan can take).
pub fn scan_chunk(
    conn: &mut DbConnection,
    outbox: &mut Outbox,
    rules: &ExpiryRules,
) -> ApiResult<usize> {
    let due = repo::due_items(conn, rules.today, SCAN_CHUNK)?;
    if due.is_empty() {
        return Ok(0);
    }
    let free = repo::lock_free_items(conn, &due)?;
    let mut staff = Staff::default();
    for id in &free {
        check_item(conn, outbox, rules, &mut staff, *id)?;
    }
    Ok(free.len())
}
