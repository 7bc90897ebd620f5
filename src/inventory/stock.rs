//! The one way stock changes: inside a transaction that starts by locking the item
//! (`repo::shift_total`), touching batches earliest-expiry-first, and writing one ledger row
//! per batch touched, so the ledger always sums to the stock.

use chrono::NaiveDate;

use super::repo::{self, BatchRow, MovementRow, NewMovement};
use crate::db::DbConnection;
use crate::error::{ApiError, ApiResult};

/// Who changed stock and why, for the ledger.
pub struct Change<'a> {
    pub item_id: i64,
    pub reason: &'a str,
    pub actor_id: Option<i64>,
    pub note: Option<&'a str>,
}

/// Which batches a removal may take from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Eligible {
    /// Every stocked batch (stock adjustments, disposal).
    All,
    /// Only batches not expired on `today` (what is handed out to customers).
    Unexpired(NaiveDate),
}

fn missing_or_short(conn: &mut DbConnection, item_id: i64, amount: i64) -> ApiError {
    match repo::item_exists(conn, item_id) {
        Ok(false) => ApiError::not_found(format!("item {item_id}")),
        Ok(true) => ApiError::Conflict(format!(
            "insufficient stock: removing {amount} would make item {item_id} negative"
        )),
        Err(e) => e.into(),
    }
}

/// Adds `amount` units to a batch (a new one when `batch` is None).
pub fn add(
    conn: &mut DbConnection,
    change: &Change<'_>,
    amount: i64,
    batch: Option<i64>,
    new_batch: (Option<NaiveDate>, Option<&str>),
) -> ApiResult<(i64, MovementRow)> {
    if !repo::shift_total(conn, change.item_id, amount)? {
        return Err(missing_or_short(conn, change.item_id, -amount));
    }
    let batch_id = match batch {
        Some(id) => {
            repo::find_batch(conn, change.item_id, id)
                .map_err(|_| ApiError::field("batch_id", "no such batch for this item"))?;
            repo::shift_batch(conn, id, amount)?;
            id
        }
        None => repo::insert_batch(conn, change.item_id, amount, new_batch.0, new_batch.1)?,
    };
    let total = repo::item_total(conn, change.item_id)?;
    let movement = repo::insert_movement(
        conn,
        &NewMovement {
            item_id: change.item_id,
            batch_id: Some(batch_id),
            delta: amount,
            reason: change.reason,
            quantity_after: total,
            actor_id: change.actor_id,
            note: change.note,
        },
    )?;
    repo::refresh_next_expiry(conn, change.item_id)?;
    Ok((batch_id, movement))
}

/// What a removal took from one batch.
#[derive(Debug, Clone)]
pub struct Taken {
    pub batch: BatchRow,
    pub amount: i64,
}

/// Removes `amount` units: from `batch` when given, else earliest expiry first across
/// eligible batches. Refuses with 409 (changing nothing, once the caller's transaction
/// rolls back) when there is not enough.
pub fn remove(
    conn: &mut DbConnection,
    change: &Change<'_>,
    amount: i64,
    batch: Option<i64>,
    eligible: Eligible,
) -> ApiResult<(Vec<Taken>, Vec<MovementRow>)> {
    if !repo::shift_total(conn, change.item_id, -amount)? {
        return Err(missing_or_short(conn, change.item_id, amount));
    }
    let candidates: Vec<BatchRow> = match batch {
        Some(id) => vec![repo::find_batch(conn, change.item_id, id)
            .map_err(|_| ApiError::field("batch_id", "no such batch for this item"))?],
        None => repo::stocked_batches(conn, change.item_id)?
            .into_iter()
            .filter(|b| match eligible {
                Eligible::All => true,
                Eligible::Unexpired(today) => b.expiry_date.is_none_or(|d| d >= today),
            })
            .collect(),
    };
    let on_hand: i64 = candidates.iter().map(|b| b.quantity).sum();
    if on_hand < amount {
        return Err(ApiError::Conflict(match (batch, eligible) {
            (Some(id), _) => format!("insufficient stock: batch {id} holds {on_hand}"),
            (None, Eligible::Unexpired(_)) => {
                format!("insufficient stock: {on_hand} unexpired units available, {amount} needed")
            }
            (None, Eligible::All) => format!("insufficient stock: {on_hand} units on hand"),
        }));
    }
    // The total already dropped by `amount`; walk it back up to write each row's balance.
    let mut running = repo::item_total(conn, change.item_id)? + amount;
    let mut remaining = amount;
    let mut taken = Vec::new();
    let mut movements = Vec::new();
    for b in candidates {
        if remaining == 0 {
            break;
        }
        let take = remaining.min(b.quantity);
        if take == 0 {
            continue;
        }
        if !repo::shift_batch(conn, b.id, -take)? {
            return Err(ApiError::Conflict(
                "stock changed meanwhile; retry".to_owned(),
            ));
        }
        running -= take;
        remaining -= take;
        movements.push(repo::insert_movement(
            conn,
            &NewMovement {
                item_id: change.item_id,
                batch_id: Some(b.id),
                delta: -take,
                reason: change.reason,
                quantity_after: running,
                actor_id: change.actor_id,
                note: change.note,
            },
        )?);
        taken.push(Taken {
            batch: b,
            amount: take,
        });
    }
    repo::refresh_next_expiry(conn, change.item_id)?;
    Ok((taken, movements))
}
