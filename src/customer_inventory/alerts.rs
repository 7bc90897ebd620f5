//! A customer's alerts about their own holdings: one entering its expiry window, one
//! expired. Checked at once when a holding receives stock, and by the periodic scan for
//! what the calendar changes; each notifies its customer once.

use super::repo::{self, HoldingAlertRow};
use crate::db::DbConnection;
use crate::error::ApiResult;
use crate::events::Outbox;
use crate::notifications::dto::{Link, NotificationKind, SubjectType};
use crate::notifications::service::{self as notifications, Notice};
use crate::stock_rules::{AlertSchedule, ExpiryAlert, ExpiryRules, ALERT_DONE};

fn holding_notice(holding: &HoldingAlertRow, alert: ExpiryAlert) -> Notice {
    let date = holding
        .expiry_date
        .map(|d| d.to_string())
        .unwrap_or_default();
    let (kind, cause, title, body) = match alert {
        ExpiryAlert::Expiring => (
            NotificationKind::HoldingExpiring,
            format!("holding:{}:expiring", holding.id),
            format!("Expiring soon: {}", holding.item_name),
            format!(
                "{} × {} expire on {date}.",
                holding.quantity, holding.item_name
            ),
        ),
        ExpiryAlert::Expired => (
            NotificationKind::HoldingExpired,
            format!("holding:{}:expired", holding.id),
            format!("Expired: {}", holding.item_name),
            format!(
                "{} × {} expired on {date}.",
                holding.quantity, holding.item_name
            ),
        ),
    };
    Notice {
        kind,
        cause,
        title,
        body,
        link: Link::new(SubjectType::Holding, holding.id, "/api/v1/me/inventory"),
    }
}

/// Checks one holding's expiry alerts.
pub fn check_holding(
    conn: &mut DbConnection,
    outbox: &mut Outbox,
    rules: &ExpiryRules,
    holding: &HoldingAlertRow,
) -> ApiResult<()> {
    if holding.alert_stage >= ALERT_DONE {
        return Ok(());
    }
    let current = AlertSchedule {
        stage: holding.alert_stage,
        due: holding.alert_on,
    };
    let (next, alert) = rules.next_alert(
        holding.expiry_date,
        holding.window,
        holding.quantity,
        current,
    );
    if next != current {
        repo::set_holding_alert(conn, holding.id, next.stage, next.due)?;
    }
    if let Some(alert) = alert {
        let notice = holding_notice(holding, alert);
        notifications::notify(conn, outbox, &[holding.customer_id], &notice)?;
    }
    Ok(())
}

/// Holdings checked per scan transaction (see the items' scan).
const SCAN_CHUNK: i64 = 100;

/// One chunk of the scan; returns how many holdings were checked (0: none left to take).
pub fn scan_chunk(
    conn: &mut DbConnection,
    outbox: &mut Outbox,
    rules: &ExpiryRules,
) -> ApiResult<usize> {
    let due = repo::due_holdings(conn, rules.today, SCAN_CHUNK)?;
    for holding in &due {
        check_holding(conn, outbox, rules, holding)?;
    }
    Ok(due.len())
}
