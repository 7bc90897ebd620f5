//! The counts behind the dashboard, asked of each area's service in one database trip.

use crate::chat::service as chat;
use crate::customer_inventory::service as holdings;
use crate::db::DbConnection;
use crate::error::ApiResult;
use crate::inventory::service::{self as inventory, StockCounts};
use crate::notifications::service as notifications;
use crate::people::service as people;
use crate::replenishment::service as replenishment;
use crate::stock_rules::ExpiryRules;

pub struct StaffCounts {
    pub stock: StockCounts,
    pub pending_requests: i64,
    pub customers: i64,
}

pub fn staff_counts(conn: &mut DbConnection, rules: &ExpiryRules) -> ApiResult<StaffCounts> {
    Ok(StaffCounts {
        stock: inventory::stock_counts(conn, rules)?,
        pending_requests: replenishment::count_pending(conn, None)?,
        customers: people::count_customers(conn)?,
    })
}

pub struct CustomerCounts {
    pub holdings: holdings::HoldingCounts,
    pub open_requests: i64,
}

pub fn customer_counts(
    conn: &mut DbConnection,
    customer_id: i64,
    rules: &ExpiryRules,
) -> ApiResult<CustomerCounts> {
    Ok(CustomerCounts {
        holdings: holdings::counts(conn, customer_id, rules)?,
        open_requests: replenishment::count_pending(conn, Some(customer_id))?,
    })
}

/// What the user has not read: messages by others over all their chats, and notifications.
pub fn unread(conn: &mut DbConnection, user_id: i64) -> ApiResult<(i64, i64)> {
    Ok((
        chat::unread_total(conn, user_id)?,
        notifications::unread_count(conn, user_id)?,
    ))
}
