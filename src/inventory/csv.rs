//! CSV export (streamed, one row per batch) and import (create or update by sku, all rows
//! or none).

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::web::Bytes;
use actix_web::HttpRequest;
use chrono::NaiveDate;
use futures_util::Stream;
use serde::Serialize;
use utoipa::ToSchema;
use validator::Validate;

use super::dto::{AdjustReason, ItemKind, NewItem};
use super::repo::{self, ItemFields};
use super::stock::{self, Change, Eligible};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, FieldErrors};
use crate::state::AppState;

pub const COLUMNS: [&str; 13] = [
    "sku",
    "name",
    "kind",
    "size",
    "unit",
    "barcode",
    "description",
    "min_quantity",
    "target_quantity",
    "expiry_warning_days",
    "quantity",
    "expiry_date",
    "lot_code",
];

const EXPORT_PAGE: i64 = 500;
/// Rows one import may carry. An import is one write transaction (all rows or none), and on
/// SQLite that holds the database's only write lock: at about 0.13 ms a row, 5,000 rows keep
/// it under a second, well inside the busy timeout other writers wait for. Larger catalogues
/// are imported in several files (each is idempotent, so a retried file changes nothing).
pub const MAX_IMPORT_ROWS: usize = 5_000;

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// Characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether `cell`, read past any leading single quotes, would start a formula.
fn starts_formula(cell: &str) -> bool {
    cell.trim_start_matches('\'')
        .starts_with(FORMULA_STARTS.as_slice())
}

/// A text cell as exported: one single quote in front of anything a spreadsheet would run
/// as a formula (`=HYPERLINK(…)` becomes `'=HYPERLINK(…)`), as OWASP recommends. Values
/// that already start with quotes before such a character get one more, so `import` can
/// strip exactly one and give every value back unchanged. Numbers and dates are written
/// as they are: they never start with these characters (stock levels are never negative).
fn neutralise(cell: String) -> String {
    if starts_formula(&cell) {
        format!("'{cell}")
    } else {
        cell
    }
}

/// The inverse of `neutralise`, for a text cell read by `import`.
fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if starts_formula(cell) => rest,
        _ => cell,
    }
}

/// Streams every item, a page at a time, so memory stays flat however large the store is.
pub fn export_stream(state: Arc<AppState>) -> impl Stream<Item = Result<Bytes, ApiError>> {
    futures_util::stream::unfold(Some((0_i64, true)), move |cursor| {
        let state = state.clone();
        async move {
            let (after, first) = cursor?;
            let page = state
                .db
                .run(move |conn| {
                    let rows = repo::items_after(conn, after, EXPORT_PAGE)?;
                    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                    let batches = repo::stocked_batches_of(conn, &ids)?;
                    Ok((rows, batches))
                })
                .await;
            let (rows, batches) = match page {
                Ok(page) => page,
                Err(e) => return Some((Err(e), None)),
            };
            let mut out = csv::Writer::from_writer(Vec::new());
            let mut write = || -> Result<(), csv::Error> {
                if first {
                    out.write_record(COLUMNS)?;
                }
                for item in &rows {
                    let fixed = [
                        neutralise(opt(&item.sku)),
                        neutralise(item.name.clone()),
                        neutralise(item.kind.clone()),
                        neutralise(opt(&item.size)),
                        neutralise(opt(&item.unit)),
                        neutralise(opt(&item.barcode)),
                        neutralise(opt(&item.description)),
                        item.min_quantity.to_string(),
                        opt(&item.target_quantity),
                        opt(&item.expiry_warning_days),
                    ];
                    let mut any = false;
                    for b in batches.iter().filter(|b| b.item_id == item.id) {
                        any = true;
                        let mut record = fixed.to_vec();
                        record.extend([
                            b.quantity.to_string(),
                            opt(&b.expiry_date),
                            neutralise(opt(&b.lot_code)),
                        ]);
                        out.write_record(&record)?;
                    }
                    if !any {
                        let mut record = fixed.to_vec();
                        record.extend([String::new(), String::new(), String::new()]);
                        out.write_record(&record)?;
                    }
                }
                Ok(())
            };
            if let Err(e) = write() {
                return Some((Err(ApiError::internal(e)), None));
            }
            let bytes = match out.into_inner() {
                Ok(b) => Bytes::from(b),
                Err(e) => return Some((Err(ApiError::internal(e)), None)),
            };
            let next = match rows.last() {
                Some(last) if rows.len() as i64 == EXPORT_PAGE => Some((last.id, false)),
                _ => None,
            };
            Some((Ok(bytes), next))
        }
    })
}

pub fn require_csv(req: &HttpRequest) -> ApiResult<()> {
    let content_type = crate::extract::content_type(req);
    if ["text/csv", "application/csv", "text/plain"]
        .iter()
        .any(|t| content_type.starts_with(t))
    {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(
            "send the file as text/csv".to_owned(),
        ))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportSummary {
    /// Data rows read.
    pub rows: usize,
    pub created: usize,
    pub updated: usize,
    /// Batches created or corrected to the file's quantity.
    pub batches: usize,
}

/// One data row, parsed.
struct Row {
    line: u64,
    item: NewItem,
    quantity: Option<i64>,
}

fn parse_rows(body: &[u8], errors: &mut FieldErrors) -> Vec<Row> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(body);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            errors.insert("line 1".to_owned(), vec![format!("unreadable header: {e}")]);
            return Vec::new();
        }
    };
    let mut index = HashMap::new();
    for (i, name) in headers.iter().enumerate() {
        let name = name.trim_start_matches('\u{feff}').to_ascii_lowercase();
        if !COLUMNS.contains(&name.as_str()) {
            errors.entry("line 1".to_owned()).or_default().push(format!(
                "unknown column {name:?}; expected {}",
                COLUMNS.join(",")
            ));
        }
        index.insert(name, i);
    }
    for required in ["name", "kind"] {
        if !index.contains_key(required) {
            errors
                .entry("line 1".to_owned())
                .or_default()
                .push(format!("missing column {required:?}"));
        }
    }
    if !errors.is_empty() {
        return Vec::new();
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors
                    .entry(format!("line {line}"))
                    .or_default()
                    .push(e.to_string());
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if rows.len() >= MAX_IMPORT_ROWS {
            errors
                .entry(format!("line {line}"))
                .or_default()
                .push(format!("at most {MAX_IMPORT_ROWS} rows per import"));
            break;
        }
        if record.iter().all(str::is_empty) {
            continue;
        }
        let mut messages = Vec::new();
        let text = |col: &str| {
            index
                .get(col)
                .and_then(|&i| record.get(i))
                .map(restore)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let mut number = |col: &str| -> Option<i64> {
            let raw = text(col)?;
            match raw.parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    messages.push(format!("{col}: {raw:?} is not a whole number"));
                    None
                }
            }
        };
        let min_quantity = number("min_quantity").unwrap_or(0);
        let target_quantity = number("target_quantity");
        let window = number("expiry_warning_days");
        let quantity = number("quantity");
        let kind = match text("kind").as_deref().map(ItemKind::parse) {
            Some(Some(k)) => k,
            _ => {
                messages.push("kind: must be perishable or non_perishable".to_owned());
                ItemKind::NonPerishable
            }
        };
        let expiry_date = text("expiry_date").and_then(|d| match d.parse::<NaiveDate>() {
            Ok(d) => Some(d),
            Err(_) => {
                messages.push(format!("expiry_date: {d:?} is not a YYYY-MM-DD date"));
                None
            }
        });
        let item = NewItem {
            name: text("name").unwrap_or_default(),
            kind,
            size: text("size"),
            unit: text("unit"),
            sku: text("sku"),
            barcode: text("barcode"),
            description: text("description"),
            min_quantity,
            target_quantity,
            expiry_warning_days: window.map(|w| i32::try_from(w).unwrap_or(-1)),
            photo_file_id: None,
            quantity,
            expiry_date,
            lot_code: text("lot_code"),
        };
        if let Err(e) = item.validate() {
            if let ApiError::Validation { errors: fields, .. } = ApiError::from(e) {
                for (field, list) in fields {
                    for m in list {
                        messages.push(format!("{field}: {m}"));
                    }
                }
            }
        }
        if item.target_quantity.is_some_and(|t| t < item.min_quantity) {
            messages.push("target_quantity: must be at least min_quantity".to_owned());
        }
        if kind == ItemKind::Perishable && quantity.unwrap_or(0) > 0 && item.expiry_date.is_none() {
            messages.push("expiry_date: is required for perishable stock".to_owned());
        }
        if messages.is_empty() {
            rows.push(Row {
                line,
                item,
                quantity,
            });
        } else {
            errors
                .entry(format!("line {line}"))
                .or_default()
                .extend(messages);
        }
    }
    rows
}

fn same_item(a: &NewItem, b: &NewItem) -> bool {
    a.name == b.name
        && a.kind == b.kind
        && a.size == b.size
        && a.unit == b.unit
        && a.barcode == b.barcode
        && a.description == b.description
        && a.min_quantity == b.min_quantity
        && a.target_quantity == b.target_quantity
        && a.expiry_warning_days == b.expiry_warning_days
}

fn fields_of(item: &NewItem) -> ItemFields {
    ItemFields {
        name_key: Some(item.name.to_lowercase()),
        name: Some(item.name.clone()),
        kind: Some(item.kind.as_str().to_owned()),
        size: Some(item.size.clone()),
        unit: Some(item.unit.clone()),
        sku: Some(item.sku.clone()),
        barcode: Some(item.barcode.clone()),
        description: Some(item.description.clone()),
        min_quantity: Some(item.min_quantity),
        target_quantity: Some(item.target_quantity),
        expiry_warning_days: Some(item.expiry_warning_days),
        photo_file_id: None,
    }
}

/// Imports a CSV file in one transaction. Rows are grouped into items by sku (a row without
/// sku is an item of its own). A row's quantity is the stock of the batch with the same
/// expiry date and lot code: created when missing, corrected when different; so importing
/// the same file twice changes nothing.
pub async fn import(
    state: &AppState,
    principal: &Principal,
    body: &[u8],
) -> ApiResult<ImportSummary> {
    let mut errors = FieldErrors::new();
    let rows = parse_rows(body, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    if rows.is_empty() {
        return Err(ApiError::field("line 2", "the file has no data rows"));
    }
    let row_count = rows.len();
    // Group by sku, keeping file order.
    let mut groups: Vec<Vec<Row>> = Vec::new();
    let mut by_sku: HashMap<String, usize> = HashMap::new();
    for row in rows {
        match row.item.sku.clone() {
            Some(sku) => match by_sku.get(&sku) {
                Some(&g) => groups[g].push(row),
                None => {
                    by_sku.insert(sku, groups.len());
                    groups.push(vec![row]);
                }
            },
            None => groups.push(vec![row]),
        }
    }
    let actor = principal.user_id;
    let summary = state
        .db
        .transaction(move |conn| {
            let mut errors = FieldErrors::new();
            let mut summary = ImportSummary {
                rows: row_count,
                created: 0,
                updated: 0,
                batches: 0,
            };
            let mut barcodes: HashMap<String, u64> = HashMap::new();
            let mut touched = Vec::new();
            for group in &groups {
                let first = &group[0];
                let mut line_error = |line: u64, message: String| {
                    errors
                        .entry(format!("line {line}"))
                        .or_default()
                        .push(message);
                };
                for row in &group[1..] {
                    if !same_item(&first.item, &row.item) {
                        line_error(
                            row.line,
                            format!(
                                "item columns differ from line {} with the same sku",
                                first.line
                            ),
                        );
                    }
                }
                if let Some(code) = &first.item.barcode {
                    if let Some(other) = barcodes.insert(code.clone(), first.line) {
                        line_error(
                            first.line,
                            format!("barcode {code:?} is also on line {other}"),
                        );
                        continue;
                    }
                }
                let existing = match &first.item.sku {
                    Some(sku) => repo::find_item_by_sku(conn, sku)?,
                    None => None,
                };
                if let Some(code) = &first.item.barcode {
                    let holder = repo::item_with_barcode(conn, code)?;
                    if holder.is_some() && holder != existing.as_ref().map(|e| e.id) {
                        line_error(
                            first.line,
                            format!("barcode {code:?} belongs to another item"),
                        );
                        continue;
                    }
                }
                let item_id = match &existing {
                    Some(item) => {
                        repo::update_item(conn, item.id, &fields_of(&first.item), None)?;
                        summary.updated += 1;
                        item.id
                    }
                    None => {
                        summary.created += 1;
                        repo::insert_item(conn, &fields_of(&first.item), Some(actor))?
                    }
                };
                touched.push(item_id);
                let mut known = repo::all_batches(conn, item_id)?;
                for row in group {
                    let Some(quantity) = row.quantity else {
                        continue;
                    };
                    let change = Change {
                        item_id,
                        reason: AdjustReason::Correction.as_str(),
                        actor_id: Some(actor),
                        note: Some("CSV import"),
                    };
                    let matching = known.iter().find(|b| {
                        b.expiry_date == row.item.expiry_date && b.lot_code == row.item.lot_code
                    });
                    match matching {
                        Some(b) if b.quantity == quantity => {}
                        Some(b) if b.quantity < quantity => {
                            stock::add(
                                conn,
                                &change,
                                quantity - b.quantity,
                                Some(b.id),
                                (None, None),
                            )?;
                            summary.batches += 1;
                        }
                        Some(b) => {
                            stock::remove(
                                conn,
                                &change,
                                b.quantity - quantity,
                                Some(b.id),
                                Eligible::All,
                            )?;
                            summary.batches += 1;
                        }
                        None if quantity > 0 => {
                            let restock = Change {
                                reason: AdjustReason::Restock.as_str(),
                                ..change
                            };
                            stock::add(
                                conn,
                                &restock,
                                quantity,
                                None,
                                (row.item.expiry_date, row.item.lot_code.as_deref()),
                            )?;
                            summary.batches += 1;
                            known = repo::all_batches(conn, item_id)?;
                        }
                        None => {}
                    }
                }
            }
            if errors.is_empty() {
                // Checking thousands of items here would hold the write lock for long; the
                // scan, woken once this commits, checks them a chunk at a time.
                repo::mark_alert_due(conn, &touched)?;
                Ok(summary)
            } else {
                Err(ApiError::validation(errors))
            }
        })
        .await?;
    state.alert_scan.notify_one();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_every_value_comes_back() {
        for (value, exported) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'=x", "''=x"),
            ("'quoted", "'quoted"),
            ("'", "'"),
            ("plain", "plain"),
            ("", ""),
        ] {
            assert_eq!(neutralise(value.to_owned()), exported, "{value:?}");
            assert_eq!(restore(exported), value, "{exported:?}");
        }
    }
}
