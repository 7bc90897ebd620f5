//! Inventory rules: what an item is, who sees what, and how stock moves.

use std::sync::Arc;

use actix_web::web::Bytes;
use chrono::NaiveDate;
use diesel::OptionalExtension;
use validator::Validate;

use super::alerts;
use super::dto::{
    AdjustReason, Adjustment, AdjustmentOut, BatchOut, CustomerItemOut, ExpiredBatchOut, ItemKind,
    ItemOut, ItemPatch, ItemQuery, ItemSort, ItemView, MovementOut, NewBatch, NewItem,
};
use super::repo::{self, BatchRow, ItemFields, ItemFilter, ItemOrder, ItemRow, MovementRow};
use super::stock::{self, Change, Eligible};
use crate::auth::{Action, Principal};
use crate::coherence::{KeyedMemory, Stamp, Ticket};
use crate::db::DbConnection;
use crate::error::{ApiError, ApiResult, Context};
use crate::events::Outbox;
use crate::pagination::{matches_nothing, Keyset, Page, PageParams};
use crate::state::AppState;
use crate::stock_rules::ExpiryRules;

/// Stock figures of one item from its stocked batches.
#[derive(Debug, Default, Clone, Copy)]
pub struct StockFigures {
    pub available: i64,
    pub expired: i64,
    pub expiring: i64,
    pub next_available_expiry: Option<NaiveDate>,
}

pub fn figures(rules: &ExpiryRules, item: &ItemRow, batches: &[BatchRow]) -> StockFigures {
    let mut f = StockFigures::default();
    for b in batches.iter().filter(|b| b.item_id == item.id) {
        if rules.is_expired(b.expiry_date) {
            f.expired += b.quantity;
            continue;
        }
        f.available += b.quantity;
        if rules.is_expiring(b.expiry_date, item.expiry_warning_days) {
            f.expiring += b.quantity;
        }
        if let Some(d) = b.expiry_date {
            f.next_available_expiry = Some(f.next_available_expiry.map_or(d, |n| n.min(d)));
        }
    }
    f
}

fn kind_of(row: &ItemRow) -> ItemKind {
    ItemKind::parse(&row.kind).unwrap_or(ItemKind::NonPerishable)
}

pub fn batch_out(rules: &ExpiryRules, item: &ItemRow, b: BatchRow) -> BatchOut {
    BatchOut {
        expired: rules.is_expired(b.expiry_date),
        expiring: rules.is_expiring(b.expiry_date, item.expiry_warning_days),
        id: b.id,
        item_id: b.item_id,
        quantity: b.quantity,
        expiry_date: b.expiry_date,
        lot_code: b.lot_code,
        received_at: b.received_at,
    }
}

pub fn staff_view(
    rules: &ExpiryRules,
    item: ItemRow,
    batches: &[BatchRow],
    with_batches: bool,
) -> ItemOut {
    let f = figures(rules, &item, batches);
    let batch_list = with_batches.then(|| {
        batches
            .iter()
            .filter(|b| b.item_id == item.id)
            .cloned()
            .map(|b| batch_out(rules, &item, b))
            .collect()
    });
    ItemOut {
        kind: kind_of(&item),
        low_stock: f.available <= item.min_quantity,
        available_quantity: f.available,
        expired_quantity: f.expired,
        expiring_quantity: f.expiring,
        expiry_date: item.next_expiry,
        batches: batch_list,
        id: item.id,
        name: item.name,
        size: item.size,
        unit: item.unit,
        sku: item.sku,
        barcode: item.barcode,
        description: item.description,
        min_quantity: item.min_quantity,
        target_quantity: item.target_quantity,
        expiry_warning_days: item.expiry_warning_days,
        photo_file_id: item.photo_file_id,
        quantity: item.quantity,
        version: item.version,
        created_at: item.created_at,
        updated_at: item.updated_at,
    }
}

fn customer_view(rules: &ExpiryRules, item: ItemRow, batches: &[BatchRow]) -> CustomerItemOut {
    let f = figures(rules, &item, batches);
    CustomerItemOut {
        kind: kind_of(&item),
        quantity: f.available,
        expiry_date: f.next_available_expiry,
        id: item.id,
        name: item.name,
        size: item.size,
        unit: item.unit,
        barcode: item.barcode,
        description: item.description,
        photo_file_id: item.photo_file_id,
    }
}

fn movement_out(m: MovementRow) -> MovementOut {
    MovementOut {
        id: m.id,
        item_id: m.item_id,
        batch_id: m.batch_id,
        delta: m.delta,
        reason: m.reason,
        quantity_after: m.quantity_after,
        actor_id: m.actor_id,
        note: m.note,
        created_at: m.created_at,
    }
}

fn validate_query(query: &ItemQuery) -> ApiResult<()> {
    if query.q.as_ref().is_some_and(|q| q.len() > 200) {
        return Err(ApiError::BadRequest(
            "q must be at most 200 characters".to_owned(),
        ));
    }
    if query.barcode.as_ref().is_some_and(|b| b.len() > 64) {
        return Err(ApiError::BadRequest(
            "barcode must be at most 64 characters".to_owned(),
        ));
    }
    if query
        .expiring_within_days
        .is_some_and(|d| !(0..=3650).contains(&d))
    {
        return Err(ApiError::BadRequest(
            "expiring_within_days must be between 0 and 3650".to_owned(),
        ));
    }
    Ok(())
}

/// A page of `GET /items` as JSON, answered from memory when the same question was answered
/// since the last change to any item (see `crate::coherence`: views are forgotten on every
/// change), else from the database and then remembered.
pub async fn list_json(
    state: &AppState,
    principal: &Principal,
    query: ItemQuery,
    page: PageParams,
) -> ApiResult<Bytes> {
    let Some(memory) = state.item_memory.clone() else {
        return to_json(&list(state, principal, query, page).await?);
    };
    // Everything the answer depends on besides the items: who asks (staff or customer) and
    // the day (expiry flags).
    let question = format!(
        "{}|{}|{query:?}|{page:?}",
        principal.is_staff(),
        crate::time::today()
    );
    let key = {
        use std::hash::{BuildHasher, BuildHasherDefault};
        BuildHasherDefault::<std::hash::DefaultHasher>::default().hash_one(&question)
    };
    if let Some(known) = memory
        .recall_view::<ListedPage>(key, principal.ticket)
        .await
    {
        if known.question == question {
            return Ok(known.body.clone());
        }
    }
    let stamp = memory.stamp();
    let body = to_json(&list(state, principal, query, page).await?)?;
    let weight = (body.len() + question.len() + 96) as u64;
    memory.remember_view(
        key,
        Arc::new(ListedPage {
            question,
            body: body.clone(),
        }),
        weight,
        stamp,
    );
    Ok(body)
}

/// A rendered page of `GET /items` and the question it answers.
struct ListedPage {
    question: String,
    body: Bytes,
}

fn to_json<T: serde::Serialize>(value: &T) -> ApiResult<Bytes> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| ApiError::internal(format!("rendering JSON: {e}")))
}

async fn list(
    state: &AppState,
    principal: &Principal,
    query: ItemQuery,
    page: PageParams,
) -> ApiResult<Page<ItemView>> {
    validate_query(&query)?;
    let limit = page.limit()?;
    let sort = query.sort.unwrap_or(ItemSort::Name);
    let order = item_order(sort, &page)?;
    if matches_nothing(query.q.as_deref()) || matches_nothing(query.barcode.as_deref()) {
        return Ok(Page::empty());
    }
    let rules = ExpiryRules::now(state);
    let staff = principal.is_staff();
    let filter = ItemFilter {
        text: query.q,
        kind: query.kind,
        expired: query.expired,
        expiring_within_days: query.expiring_within_days,
        low_stock: query.low_stock,
        barcode: query.barcode,
        in_stock_only: !staff,
    };
    let memory = state.item_memory.clone();
    let believed = match &memory {
        Some(memory) => memory.believable(principal.ticket).await,
        None => None,
    };
    let stamp = memory.as_ref().map(|m| m.stamp());
    let (rows, batches, loaded) = state
        .db
        .run(move |conn| {
            let rows = repo::list_items(conn, &filter, order, sort.is_desc(), limit, rules.today)?;
            // The batches of items remembered as they are now come from memory; the rest
            // from the database.
            let mut batches = Vec::new();
            let mut missing = Vec::new();
            for row in &rows {
                let known = believed
                    .as_ref()
                    .and_then(|b| b.recall::<Snapshot>(row.id))
                    .and_then(|known| known.unpack());
                match known {
                    Some((known, known_batches)) if describes(&known, row) => {
                        batches.extend(known_batches);
                    }
                    _ => missing.push(row.id),
                }
            }
            let loaded = if missing.is_empty() {
                Vec::new()
            } else {
                repo::stocked_batches_of(conn, &missing)?
            };
            Ok((rows, batches, (missing, loaded)))
        })
        .await?;
    let (missing, loaded) = loaded;
    if let (Some(memory), Some(stamp)) = (&memory, stamp) {
        remember_listed(memory, stamp, &rows, &missing, &loaded);
    }
    let batches = [batches, loaded].concat();
    Ok(Page::from_rows(
        rows,
        limit,
        |r| repo::cursor_of(r, sort),
        |r| {
            if staff {
                ItemView::Staff(Box::new(staff_view(&rules, r, &batches, false)))
            } else {
                ItemView::Customer(customer_view(&rules, r, &batches))
            }
        },
    ))
}

/// The list order `sort` names, starting after the page's cursor, decoded into that sort's
/// own key type (a cursor of another sort is 400).
fn item_order(sort: ItemSort, page: &PageParams) -> ApiResult<ItemOrder> {
    Ok(match sort {
        ItemSort::Name | ItemSort::NameDesc => ItemOrder::Name(page.cursor()?),
        ItemSort::Quantity | ItemSort::QuantityDesc => ItemOrder::Quantity(page.cursor()?),
        ItemSort::ExpiryDate | ItemSort::ExpiryDateDesc => ItemOrder::ExpiryDate(page.cursor()?),
        ItemSort::CreatedAt | ItemSort::CreatedAtDesc => ItemOrder::CreatedAt(page.cursor()?),
    })
}

/// An item with its stocked batches, or 404.
async fn load_item(state: &AppState, id: i64) -> ApiResult<(ItemRow, Vec<BatchRow>)> {
    state
        .db
        .run(move |conn| {
            let row = repo::find_item(conn, id).or_not_found(format!("item {id}"))?;
            Ok((row, repo::stocked_batches(conn, id)?))
        })
        .await
}

/// An item and its stocked batches as last read, kept in the process's memory (see
/// `crate::coherence`: the database's triggers announce every change to an item or its
/// batches, so what is remembered is never older than the request).
///
/// Packed into one compact allocation (postcard): as rows, an item took about 600 bytes in
/// half a dozen allocations, and a store's whole catalogue is meant to fit in memory beside
/// thousands of idle sockets. Unpacking costs what cloning the rows did (the same string
/// allocations) plus a few hundred nanoseconds.
struct Snapshot {
    packed: Box<[u8]>,
}

impl Snapshot {
    /// None when the rows cannot be packed (then they are not remembered).
    fn pack(row: &ItemRow, batches: &[BatchRow]) -> Option<Self> {
        match postcard::to_stdvec(&(row, batches)) {
            Ok(packed) => Some(Self {
                packed: packed.into_boxed_slice(),
            }),
            Err(e) => {
                tracing::warn!(error = %e, item = row.id, "an item could not be packed for memory");
                None
            }
        }
    }

    /// The rows as they were packed; None (never expected) when they do not read back.
    fn unpack(&self) -> Option<(ItemRow, Vec<BatchRow>)> {
        postcard::from_bytes(&self.packed)
            .inspect_err(|e| tracing::warn!(error = %e, "a remembered item did not unpack"))
            .ok()
    }

    /// About the bytes it takes, for the memory's budget: the packed bytes, and what the
    /// server's RSS showed besides per item remembered (this value's `Arc`, the memory's
    /// own entry, the allocations' headers).
    fn weight(&self) -> u64 {
        (self.packed.len() + 160) as u64
    }

    /// Keeps `row` and its `batches` for item `row.id`, as the database showed them after
    /// `stamp` was read.
    fn keep(memory: &KeyedMemory, row: &ItemRow, batches: &[BatchRow], stamp: Stamp) {
        if let Some(snapshot) = Self::pack(row, batches) {
            let weight = snapshot.weight();
            memory.remember(row.id, Arc::new(snapshot), weight, stamp);
        }
    }
}

/// Whether `known` (remembered) is the item as `row` (read just now) shows it: a change that
/// memory has not yet heard of moves its quantity, next expiry or version.
fn describes(known: &ItemRow, row: &ItemRow) -> bool {
    known.version == row.version
        && known.quantity == row.quantity
        && known.next_expiry == row.next_expiry
        && known.updated_at == row.updated_at
}

/// Keeps the listed items that were loaded from the database (`missing`, with their batches
/// `loaded`), so the next page or `GET /items/{id}` finds them.
fn remember_listed(
    memory: &KeyedMemory,
    stamp: Stamp,
    rows: &[ItemRow],
    missing: &[i64],
    loaded: &[BatchRow],
) {
    for row in rows.iter().filter(|r| missing.contains(&r.id)) {
        let batches: Vec<BatchRow> = loaded
            .iter()
            .filter(|b| b.item_id == row.id)
            .cloned()
            .collect();
        Snapshot::keep(memory, row, &batches, stamp);
    }
}

/// [`load_item`], answered from memory when it may be: for `GET /items/{id}`, the hot path
/// of every client. `ticket` is the request's (see `Principal::ticket`).
async fn recall_item(
    state: &AppState,
    id: i64,
    ticket: Option<Ticket>,
) -> ApiResult<(ItemRow, Vec<BatchRow>)> {
    let Some(memory) = &state.item_memory else {
        return load_item(state, id).await;
    };
    let known = memory.recall::<Snapshot>(id, ticket).await;
    if let Some(rows) = known.and_then(|known| known.unpack()) {
        return Ok(rows);
    }
    let stamp = memory.stamp();
    let (row, batches) = load_item(state, id).await?;
    Snapshot::keep(memory, &row, &batches, stamp);
    Ok((row, batches))
}

/// One item and its batches (staff), as of now (read from the database: callers have just
/// changed it).
pub async fn staff_item(state: &AppState, id: i64) -> ApiResult<ItemOut> {
    let rules = ExpiryRules::now(state);
    let (row, batches) = load_item(state, id).await?;
    Ok(staff_view(&rules, row, &batches, true))
}

pub async fn get(state: &AppState, principal: &Principal, id: i64) -> ApiResult<ItemView> {
    let rules = ExpiryRules::now(state);
    let (row, batches) = recall_item(state, id, principal.ticket).await?;
    if principal.is_staff() {
        return Ok(ItemView::Staff(Box::new(staff_view(
            &rules, row, &batches, true,
        ))));
    }
    let view = customer_view(&rules, row, &batches);
    // Customers see only what is in stock and not expired.
    if view.quantity == 0 {
        return Err(ApiError::not_found(format!("item {id}")));
    }
    Ok(ItemView::Customer(view))
}

/// The item with this exact barcode, as `GET /items/{id}` would show it to `principal`;
/// `None` when there is none or the caller may not see it (bots, or a customer and an item
/// out of stock).
pub async fn by_barcode(
    state: &AppState,
    principal: &Principal,
    barcode: String,
) -> ApiResult<Option<ItemView>> {
    if principal.require(Action::BrowseItems).is_err() {
        return Ok(None);
    }
    let Some(id) = state
        .db
        .run(move |conn| Ok(repo::item_with_barcode(conn, &barcode)?))
        .await?
    else {
        return Ok(None);
    };
    match get(state, principal, id).await {
        Ok(view) => Ok(Some(view)),
        Err(ApiError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn check_levels(min: i64, target: Option<i64>) -> ApiResult<()> {
    if target.is_some_and(|t| t < min) {
        return Err(ApiError::field(
            "target_quantity",
            "must be at least min_quantity",
        ));
    }
    Ok(())
}

/// 409 naming the field when another item already has this sku or barcode (the unique
/// indexes decide races, answered in the same words by `ApiError::from`).
fn check_unique(
    conn: &mut crate::db::DbConnection,
    sku: Option<&str>,
    barcode: Option<&str>,
    except: Option<i64>,
) -> ApiResult<()> {
    if let Some(sku) = sku {
        if repo::item_with_sku(conn, sku)?.is_some_and(|id| Some(id) != except) {
            return Err(ApiError::taken("sku"));
        }
    }
    if let Some(barcode) = barcode {
        if repo::item_with_barcode(conn, barcode)?.is_some_and(|id| Some(id) != except) {
            return Err(ApiError::taken("barcode"));
        }
    }
    Ok(())
}

pub async fn create(state: &AppState, principal: &Principal, new: NewItem) -> ApiResult<ItemOut> {
    new.validate()?;
    check_levels(new.min_quantity, new.target_quantity)?;
    let quantity = new.quantity.unwrap_or(0);
    if new.kind == ItemKind::Perishable && quantity > 0 && new.expiry_date.is_none() {
        return Err(ApiError::field(
            "expiry_date",
            "is required for a perishable item's first batch",
        ));
    }
    if let Some(file_id) = new.photo_file_id {
        crate::files::service::require_visible_image(state, principal, file_id, "photo_file_id")
            .await?;
    }
    let actor = principal.user_id;
    let rules = ExpiryRules::now(state);
    let id = state
        .events
        .transaction(&state.db, move |conn, outbox| {
            check_unique(conn, new.sku.as_deref(), new.barcode.as_deref(), None)?;
            let fields = ItemFields {
                name_key: Some(new.name.trim().to_lowercase()),
                name: Some(new.name.trim().to_owned()),
                kind: Some(new.kind.as_str().to_owned()),
                size: Some(new.size),
                unit: Some(new.unit),
                sku: Some(new.sku),
                barcode: Some(new.barcode),
                description: Some(new.description),
                min_quantity: Some(new.min_quantity),
                target_quantity: Some(new.target_quantity),
                expiry_warning_days: Some(new.expiry_warning_days),
                photo_file_id: Some(new.photo_file_id),
            };
            let id = repo::insert_item(conn, &fields, Some(actor))?;
            if quantity > 0 {
                stock::add(
                    conn,
                    &Change {
                        item_id: id,
                        reason: AdjustReason::Restock.as_str(),
                        actor_id: Some(actor),
                        note: Some("initial stock"),
                    },
                    quantity,
                    None,
                    (new.expiry_date, new.lot_code.as_deref()),
                )?;
            }
            alerts::check(conn, outbox, &rules, id)?;
            Ok(id)
        })
        .await?;
    staff_item(state, id).await
}

/// `If-Match`: `None` (absent or `*`) or the version it names. A tag that names no version
/// can never match, so it is kept as an impossible version.
pub fn parse_if_match(header: Option<&str>) -> Option<i64> {
    let raw = header?.trim();
    if raw == "*" {
        return None;
    }
    let tag = raw.trim_start_matches("W/").trim_matches('"');
    Some(tag.parse().unwrap_or(-1))
}

pub async fn update(
    state: &AppState,
    principal: &Principal,
    id: i64,
    patch: ItemPatch,
    if_match: Option<i64>,
) -> ApiResult<ItemOut> {
    patch.validate()?;
    if let Some(Some(file_id)) = patch.photo_file_id {
        crate::files::service::require_visible_image(state, principal, file_id, "photo_file_id")
            .await?;
    }
    let rules = ExpiryRules::now(state);
    state
        .events
        .transaction(&state.db, move |conn, outbox| {
            let current = repo::find_item(conn, id).or_not_found(format!("item {id}"))?;
            if if_match.is_some_and(|v| v != current.version) {
                return Err(ApiError::PreconditionFailed(
                    "the item changed since you read it (ETag mismatch); reload and retry"
                        .to_owned(),
                ));
            }
            let min = patch.min_quantity.unwrap_or(current.min_quantity);
            let target = patch.target_quantity.unwrap_or(current.target_quantity);
            check_levels(min, target)?;
            let sku = patch.sku.clone().flatten();
            let barcode = patch.barcode.clone().flatten();
            check_unique(conn, sku.as_deref(), barcode.as_deref(), Some(id))?;
            let fields = ItemFields {
                name_key: patch.name.as_ref().map(|n| n.trim().to_lowercase()),
                name: patch.name.map(|n| n.trim().to_owned()),
                kind: patch.kind.map(|k| k.as_str().to_owned()),
                size: patch.size,
                unit: patch.unit,
                sku: patch.sku,
                barcode: patch.barcode,
                description: patch.description,
                min_quantity: patch.min_quantity,
                target_quantity: patch.target_quantity,
                expiry_warning_days: patch.expiry_warning_days,
                photo_file_id: patch.photo_file_id,
            };
            // The version check repeats in the UPDATE itself, so a concurrent edit between
            // the read above and here still answers 412.
            if repo::update_item(conn, id, &fields, Some(current.version))? == 0 {
                return Err(ApiError::PreconditionFailed(
                    "the item changed meanwhile; reload and retry".to_owned(),
                ));
            }
            // A new reorder level or expiry window may start (or end) an alert.
            alerts::check(conn, outbox, &rules, id)?;
            Ok(())
        })
        .await?;
    staff_item(state, id).await
}

pub async fn delete(state: &AppState, id: i64) -> ApiResult<()> {
    let deleted = state
        .db
        .run(move |conn| Ok(repo::delete_item(conn, id)?))
        .await?;
    if deleted == 0 {
        return Err(ApiError::not_found(format!("item {id}")));
    }
    Ok(())
}

pub async fn add_batch(
    state: &AppState,
    principal: &Principal,
    item_id: i64,
    batch: NewBatch,
) -> ApiResult<BatchOut> {
    batch.validate()?;
    let actor = principal.user_id;
    let rules = ExpiryRules::now(state);
    let (item, row) = state
        .events
        .transaction(&state.db, move |conn, outbox| {
            let item = repo::find_item(conn, item_id).or_not_found(format!("item {item_id}"))?;
            if kind_of(&item) == ItemKind::Perishable && batch.expiry_date.is_none() {
                return Err(ApiError::field(
                    "expiry_date",
                    "is required for a perishable item",
                ));
            }
            let (batch_id, _) = stock::add(
                conn,
                &Change {
                    item_id,
                    reason: AdjustReason::Restock.as_str(),
                    actor_id: Some(actor),
                    note: None,
                },
                batch.quantity,
                None,
                (batch.expiry_date, batch.lot_code.as_deref()),
            )?;
            alerts::check(conn, outbox, &rules, item_id)?;
            Ok((item, repo::find_batch(conn, item_id, batch_id)?))
        })
        .await?;
    Ok(batch_out(&rules, &item, row))
}

pub async fn adjust(
    state: &AppState,
    principal: &Principal,
    item_id: i64,
    adj: Adjustment,
) -> ApiResult<AdjustmentOut> {
    adj.validate()?;
    match (adj.delta, adj.reason) {
        (0, _) => return Err(ApiError::field("delta", "must not be 0")),
        (d, AdjustReason::Restock) if d < 0 => {
            return Err(ApiError::field("delta", "a restock must be positive"))
        }
        (d, AdjustReason::Consume | AdjustReason::Waste | AdjustReason::Expired) if d > 0 => {
            return Err(ApiError::field(
                "delta",
                "consume, waste and expired remove stock: the delta must be negative",
            ))
        }
        _ => {}
    }
    let actor = principal.user_id;
    let rules = ExpiryRules::now(state);
    let movements = state
        .events
        .transaction(&state.db, move |conn, outbox| {
            let change = Change {
                item_id,
                reason: adj.reason.as_str(),
                actor_id: Some(actor),
                note: adj.note.as_deref(),
            };
            let movements = if adj.delta < 0 {
                stock::remove(conn, &change, -adj.delta, adj.batch_id, Eligible::All)?.1
            } else {
                vec![restock(conn, &change, adj.delta, adj.batch_id)?]
            };
            alerts::check(conn, outbox, &rules, item_id)?;
            Ok(movements)
        })
        .await?;
    Ok(AdjustmentOut {
        item: staff_item(state, item_id).await?,
        movements: movements.into_iter().map(movement_out).collect(),
    })
}

/// Adds `amount` units by adjustment: to `batch_id`, else (undated stock only) to the newest
/// undated batch or a new one.
fn restock(
    conn: &mut DbConnection,
    change: &Change<'_>,
    amount: i64,
    batch_id: Option<i64>,
) -> ApiResult<MovementRow> {
    let item_id = change.item_id;
    let item = repo::find_item(conn, item_id).or_not_found(format!("item {item_id}"))?;
    let batch = match batch_id {
        Some(id) => Some(id),
        None if kind_of(&item) == ItemKind::Perishable => return Err(ApiError::field(
            "batch_id",
            "adding to a perishable item needs a batch_id (or POST /batches with an expiry date)",
        )),
        // Undated stock goes to the newest undated batch, or a new one.
        None => repo::stocked_batches(conn, item_id)?
            .into_iter()
            .rev()
            .find(|b| b.expiry_date.is_none())
            .map(|b| b.id),
    };
    let (_, movement) = stock::add(conn, change, amount, batch, (None, None))?;
    Ok(movement)
}

pub async fn movements(
    state: &AppState,
    item_id: i64,
    page: PageParams,
) -> ApiResult<Page<MovementOut>> {
    let limit = page.limit()?;
    let before = page.cursor::<i64>()?;
    let rows = state
        .db
        .run(move |conn| {
            if !repo::item_exists(conn, item_id)? {
                return Err(ApiError::not_found(format!("item {item_id}")));
            }
            Ok(repo::movements(conn, item_id, before, limit)?)
        })
        .await?;
    Ok(Page::from_rows(rows, limit, |m| m.id, movement_out))
}

pub async fn expired(state: &AppState, page: PageParams) -> ApiResult<Page<ExpiredBatchOut>> {
    let limit = page.limit()?;
    let after = page.cursor::<Keyset<NaiveDate>>()?;
    let today = crate::time::today();
    let rows = state
        .db
        .run(move |conn| Ok(repo::expired_batches(conn, today, after, limit)?))
        .await?;
    Ok(Page::from_rows(
        rows,
        limit,
        |(b, _)| Keyset {
            key: b.expiry_date.unwrap_or(today),
            id: b.id,
        },
        |(b, name)| ExpiredBatchOut {
            batch_id: b.id,
            item_id: b.item_id,
            name,
            expiry_date: b.expiry_date.unwrap_or(today),
            quantity: b.quantity,
            lot_code: b.lot_code,
        },
    ))
}

// Stock work other areas compose into their own transactions. Each takes the caller's
// connection, so the caller's transaction covers it.

/// The name of item `id`, or `None` when there is no such item.
pub fn item_name(conn: &mut DbConnection, id: i64) -> ApiResult<Option<String>> {
    Ok(repo::find_item(conn, id).optional()?.map(|item| item.name))
}

/// One unit of stock handed out: how many, and the expiry date of the batch they came from.
pub struct HandedOut {
    pub amount: i64,
    pub expiry_date: Option<NaiveDate>,
}

/// Hands `quantity` units of an item out to a customer: earliest expiry first, never expired
/// stock, one ledger row per batch. 404 for a missing item, 409 when stock is short.
pub fn hand_out(
    conn: &mut DbConnection,
    outbox: &mut Outbox,
    rules: &ExpiryRules,
    item_id: i64,
    quantity: i64,
    actor_id: i64,
    note: &str,
) -> ApiResult<Vec<HandedOut>> {
    let change = Change {
        item_id,
        reason: "fulfilment",
        actor_id: Some(actor_id),
        note: Some(note),
    };
    let (taken, _) = stock::remove(
        conn,
        &change,
        quantity,
        None,
        Eligible::Unexpired(rules.today),
    )?;
    alerts::check(conn, outbox, rules, item_id)?;
    Ok(taken
        .into_iter()
        .map(|t| HandedOut {
            amount: t.amount,
            expiry_date: t.batch.expiry_date,
        })
        .collect())
}

/// An item that may need restocking, as staff see it, with its stock figures.
pub struct RestockCandidate {
    pub item: ItemOut,
    pub figures: StockFigures,
    pub cursor: Keyset<String>,
}

/// Items whose available stock is at or below the reorder level, or with a stocked batch
/// expired or within the item's window: name order, after `after`, at most `limit + 1`.
pub fn restock_candidates(
    conn: &mut DbConnection,
    rules: &ExpiryRules,
    after: Option<Keyset<String>>,
    limit: i64,
) -> ApiResult<Vec<RestockCandidate>> {
    let rows = repo::restock_candidates(conn, rules, after, limit)?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let batches = repo::stocked_batches_of(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|row| RestockCandidate {
            figures: figures(rules, &row, &batches),
            cursor: Keyset {
                key: row.name.to_lowercase(),
                id: row.id,
            },
            item: staff_view(rules, row, &batches, false),
        })
        .collect())
}

pub use super::repo::StockCounts;

/// Store-wide stock counts for the staff dashboard.
pub fn stock_counts(conn: &mut DbConnection, rules: &ExpiryRules) -> ApiResult<StockCounts> {
    Ok(repo::stock_counts(conn, rules)?)
}

/// Folds the stock deltas written since the last fold into the totals the dashboard reads.
pub async fn fold_stock_totals(state: &AppState) -> ApiResult<()> {
    state
        .db
        .run(|conn| Ok(repo::fold_stock_totals(conn).map(drop)?))
        .await
}

/// Runs the stock-alert scan for `today` until nothing due is left that it can take, and
/// returns how many items it checked. Each chunk is a transaction of its own.
pub async fn scan_alerts(state: &AppState, today: NaiveDate) -> ApiResult<usize> {
    let rules = ExpiryRules::on(state, today);
    state
        .events
        .drain(&state.db, move |conn, outbox| {
            alerts::scan_chunk(conn, outbox, &rules)
        })
        .await
}

/// Whether the default expiry window differs from the one the pending alerts were scheduled
/// with (always true the first time).
pub async fn alert_window_changed(state: &AppState) -> ApiResult<bool> {
    let window = state.settings.expiry_warning_days;
    let stored = state.db.run(|conn| Ok(repo::alert_window(conn)?)).await?;
    Ok(stored != Some(window))
}

/// Makes every pending batch alert due at the next scan and records the window now in use.
pub async fn reschedule_alerts(state: &AppState) -> ApiResult<()> {
    let window = state.settings.expiry_warning_days;
    state
        .db
        .transaction(move |conn| {
            repo::reschedule_batch_alerts(conn)?;
            repo::set_alert_window(conn, window)?;
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, NaiveDateTime};

    use super::{BatchRow, ItemRow, Snapshot};

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").expect("a timestamp")
    }

    /// What memory answers must be exactly what the database said: every field, optional
    /// ones present and absent, timestamps to the nanosecond, text that is not ASCII.
    #[test]
    fn a_packed_item_unpacks_to_the_same_rows() {
        let full = ItemRow {
            id: 42,
            name: "Café crème — 1 l".to_owned(),
            kind: "perishable".to_owned(),
            size: Some("1".to_owned()),
            unit: Some("l".to_owned()),
            sku: Some("SKU-42".to_owned()),
            barcode: Some("4006381333931".to_owned()),
            description: Some("x".repeat(2000)),
            min_quantity: -3,
            target_quantity: Some(i64::MAX),
            expiry_warning_days: Some(i32::MIN),
            photo_file_id: Some(7),
            quantity: 12,
            next_expiry: NaiveDate::from_ymd_opt(2027, 2, 28),
            version: 9,
            created_at: at("2026-12-04 18:00:00.123456789"),
            updated_at: at("2026-12-04 18:00:01"),
        };
        let bare = ItemRow {
            size: None,
            unit: None,
            sku: None,
            barcode: None,
            description: None,
            target_quantity: None,
            expiry_warning_days: None,
            photo_file_id: None,
            next_expiry: None,
            ..full.clone()
        };
        let batches = [
            BatchRow {
                id: 1,
                item_id: 42,
                quantity: 5,
                expiry_date: NaiveDate::from_ymd_opt(2027, 2, 28),
                lot_code: Some("L-1".to_owned()),
                received_at: at("2026-12-01 08:30:00.5"),
            },
            BatchRow {
                id: 2,
                item_id: 42,
                quantity: 7,
                expiry_date: None,
                lot_code: None,
                received_at: at("2026-12-02 09:00:00"),
            },
        ];
        for (row, batches) in [(&full, &batches[..]), (&bare, &[][..])] {
            let packed = Snapshot::pack(row, batches).expect("packs");
            let (row_back, batches_back) = packed.unpack().expect("unpacks");
            assert_eq!(format!("{row_back:?}"), format!("{row:?}"));
            assert_eq!(format!("{batches_back:?}"), format!("{batches:?}"));
        }
        // The point of packing: far less than the ~600 bytes the rows took.
        let typical = Snapshot::pack(&bare, &batches[..1]).expect("packs");
        assert!(typical.weight() < 320, "{} bytes", typical.weight());
    }
}
