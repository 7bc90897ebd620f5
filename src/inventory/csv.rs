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
    let mut lines = Lines::new(body);
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = lines.first_line(e.position());
                errors
                    .entry(format!("line {line}"))
                    .or_default()
                    .push(e.to_string());
                continue;
            }
        };
        let line = lines.first_line(record.position());
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

/// The line each record starts on, counted as people see lines: `\r\n`, a lone `\r` (old
/// Mac files) and a lone `\n` each end one, in any mix. The CSV reader's own line count
/// (`Position::line`) counts only `\n`, so it keyed every error of a `\r`-only file
/// `line 1`, and its position is where it began looking for the record: before the `\n` of
/// the previous record's `\r\n` and before blank lines, which it then skipped. So lines are
/// counted here from the bytes, onward from the previous record (records come in order), so
/// that a file of many rows is counted once, not once a row.
struct Lines<'a> {
    body: &'a [u8],
    /// Where counting stopped, and how many line ends lie before it.
    at: usize,
    ends: u64,
}

impl<'a> Lines<'a> {
    fn new(body: &'a [u8]) -> Self {
        Self {
            body,
            at: 0,
            ends: 0,
        }
    }

    /// The line of the first byte of the record the reader found at `position`: past the
    /// line ends it skipped before it.
    fn first_line(&mut self, position: Option<&csv::Position>) -> u64 {
        let Some(position) = position else {
            return 0;
        };
        let body = self.body;
        let start = usize::try_from(position.byte()).map_or(body.len(), |b| b.min(body.len()));
        let skipped = body[start..]
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        let first = start + skipped;
        if first < self.at {
            // Never happens (the reader goes forward); counting again is right regardless.
            self.at = 0;
            self.ends = 0;
        }
        // A line ends at each `\n`, and at each `\r` not followed by `\n` (the `\n` of a
        // `\r\n` ends that line): decided byte by byte, so stopping between the two bytes
        // of a `\r\n` counts it exactly once.
        self.ends += (self.at..first)
            .filter(|&i| match body[i] {
                b'\n' => true,
                b'\r' => body.get(i + 1) != Some(&b'\n'),
                _ => false,
            })
            .count() as u64;
        self.at = first;
        self.ends + 1
    }
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

/// Property tests in place of fuzzing: cargo-fuzz needs a nightly toolchain, so the import
/// parser gets arbitrary and structured-but-mutated files from proptest on stable. Each case
/// count is small enough for CI (`PROPTEST_CASES` overrides them all).
#[cfg(test)]
mod fuzz {
    use std::time::{Duration, Instant};

    use proptest::prelude::*;

    use super::*;

    use crate::proptest_support::config;

    /// The line `at` is on, the first being line 1: one more than the line ends before it,
    /// where `\r\n`, a lone `\r` (old Mac files) and a lone `\n` each end a line. Worked out
    /// apart from `first_line`'s incremental count, by rewriting every line end as `\n`.
    fn line_at(body: &[u8], at: usize) -> u64 {
        let text = String::from_utf8_lossy(&body[..at]);
        text.replace("\r\n", "\n")
            .replace('\r', "\n")
            .matches('\n')
            .count() as u64
            + 1
    }

    /// How many lines the file has, the header being line 1 (an empty file still has the
    /// header's line); a record starts at most on the line after the last line end.
    fn line_count(body: &[u8]) -> u64 {
        line_at(body, body.len())
    }

    /// How a file ends its lines. The proptests draw it from two booleans, `crlf` first,
    /// so the stored regression seeds (drawn when there was only `crlf`) still replay as
    /// the same files.
    #[derive(Debug, Clone, Copy)]
    enum Ending {
        Lf,
        CrLf,
        /// Old Mac files: a bare `\r`.
        Cr,
    }

    fn ending(crlf: bool, cr: bool) -> Ending {
        match (crlf, cr) {
            (true, _) => Ending::CrLf,
            (false, true) => Ending::Cr,
            (false, false) => Ending::Lf,
        }
    }

    /// Parses `body`, checking the error contract: every key is `line N` with N a line of
    /// the file, every key carries a message, and nothing takes long.
    fn parse_checked(body: &[u8]) -> Result<(Vec<Row>, FieldErrors), TestCaseError> {
        let started = Instant::now();
        let mut errors = FieldErrors::new();
        let rows = parse_rows(body, &mut errors);
        prop_assert!(
            started.elapsed() < Duration::from_secs(5),
            "parsing {} bytes took {:?}",
            body.len(),
            started.elapsed()
        );
        let lines = line_count(body);
        for (key, messages) in &errors {
            let n = key
                .strip_prefix("line ")
                .and_then(|n| n.parse::<u64>().ok());
            prop_assert!(
                n.is_some_and(|n| (1..=lines).contains(&n)),
                "error key {key:?} is not a line of a {lines}-line file"
            );
            prop_assert!(!messages.is_empty(), "{key} has no message");
        }
        Ok((rows, errors))
    }

    /// A text cell of a valid item: no surrounding whitespace (the import trims cells), and
    /// often starting like a formula or with quotes, which the export neutralises.
    fn text_value() -> impl Strategy<Value = String> {
        let prefix = prop::sample::select(vec![
            "", "", "", "=", "+", "-", "@", "'", "''", "'=", "''@", "'+", "\t", "'\t", "=\t",
        ]);
        let core =
            "[A-Za-z0-9é€\"',;=+@-]([A-Za-z0-9é€ \n\t\"',;=+@-]{0,12}[A-Za-z0-9é€\"',;=+@-])?";
        (prefix, core).prop_map(|(p, c)| format!("{p}{c}"))
    }

    /// A valid SKU: like a text cell, but never starting with whitespace.
    fn sku_value() -> impl Strategy<Value = String> {
        let prefix = prop::sample::select(vec!["", "", "=", "+", "-", "@", "'", "''=", "'"]);
        (prefix, "[A-Za-z0-9=+@'-]{1,12}").prop_map(|(p, c)| format!("{p}{c}"))
    }

    /// A barcode: visible ASCII, formula characters included.
    fn barcode_value() -> impl Strategy<Value = String> {
        let prefix = prop::sample::select(vec!["", "", "=", "+", "-", "@", "'", "'="]);
        (prefix, "[!-~]{1,20}").prop_map(|(p, c)| format!("{p}{c}"))
    }

    /// One row as the export writes it.
    #[derive(Debug, Clone)]
    struct Spec {
        sku: Option<String>,
        name: String,
        perishable: bool,
        size: Option<String>,
        unit: Option<String>,
        barcode: Option<String>,
        description: Option<String>,
        min_quantity: i64,
        target_extra: Option<i64>,
        window: Option<i32>,
        quantity: Option<i64>,
        expiry_date: Option<NaiveDate>,
        lot_code: Option<String>,
    }

    fn spec() -> impl Strategy<Value = Spec> {
        let texts = (
            prop::option::of(sku_value()),
            text_value(),
            prop::option::of(text_value()),
            prop::option::of(text_value()),
            prop::option::of(barcode_value()),
            prop::option::of(text_value()),
            prop::option::of(text_value()),
        );
        let numbers = (
            any::<bool>(),
            0..1_000_000_000i64,
            prop::option::of(0..1_000i64),
            prop::option::of(0..=3650i32),
            prop::option::of(0..=1_000_000_000i64),
            0..20_000u32,
        );
        (texts, numbers).prop_map(
            |(
                (sku, name, size, unit, barcode, description, lot_code),
                (perishable, min_quantity, target_extra, window, quantity, day),
            )| Spec {
                sku,
                name,
                perishable,
                size,
                unit,
                barcode,
                description,
                min_quantity,
                target_extra,
                window,
                quantity,
                // Perishable stock needs its expiry date; others may have one.
                expiry_date: (perishable || day % 2 == 0).then(|| {
                    NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default()
                        + chrono::Days::new(u64::from(day))
                }),
                lot_code,
            },
        )
    }

    impl Spec {
        fn target(&self) -> Option<i64> {
            self.target_extra.map(|extra| self.min_quantity + extra)
        }

        /// The record `export_stream` writes for this row.
        fn record(&self) -> Vec<String> {
            let kind = if self.perishable {
                ItemKind::Perishable
            } else {
                ItemKind::NonPerishable
            };
            vec![
                neutralise(opt(&self.sku)),
                neutralise(self.name.clone()),
                neutralise(kind.as_str().to_owned()),
                neutralise(opt(&self.size)),
                neutralise(opt(&self.unit)),
                neutralise(opt(&self.barcode)),
                neutralise(opt(&self.description)),
                self.min_quantity.to_string(),
                opt(&self.target()),
                opt(&self.window),
                opt(&self.quantity),
                opt(&self.expiry_date),
                neutralise(opt(&self.lot_code)),
            ]
        }
    }

    /// The CSV bytes of `records` (header first), and where each record starts.
    fn write(records: &[Vec<String>], ending: Ending) -> (Vec<u8>, Vec<usize>) {
        let terminator = match ending {
            Ending::Lf => csv::Terminator::Any(b'\n'),
            Ending::CrLf => csv::Terminator::CRLF,
            Ending::Cr => csv::Terminator::Any(b'\r'),
        };
        let mut out = csv::WriterBuilder::new()
            .terminator(terminator)
            .from_writer(Vec::new());
        out.write_record(COLUMNS).expect("header");
        out.flush().expect("flush");
        let mut starts = Vec::new();
        for record in records {
            starts.push(out.get_ref().len());
            out.write_record(record).expect("record");
            out.flush().expect("flush");
        }
        (out.into_inner().expect("csv bytes"), starts)
    }

    /// Small, structure-breaking edits: flipped and inserted bytes (quotes, separators, line
    /// ends, a BOM, invalid UTF-8), deleted ranges and a truncation.
    fn mutate(mut bytes: Vec<u8>, edits: &[(u8, usize, u8)]) -> Vec<u8> {
        const NASTY: [&[u8]; 10] = [
            b"\"",
            b",",
            b"\n",
            b"\r",
            b"\r\n",
            "\u{feff}".as_bytes(),
            b"\xff\xfe",
            b"\xc3",
            b"\"\"\"",
            b"=cmd|' /C calc'!A0",
        ];
        for &(op, at, byte) in edits {
            let at = if bytes.is_empty() {
                0
            } else {
                at % (bytes.len() + 1)
            };
            match op % 5 {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => {
                    let piece = NASTY[usize::from(byte) % NASTY.len()];
                    bytes.splice(at..at, piece.iter().copied());
                }
                2 => {
                    let end = (at + usize::from(byte % 16)).min(bytes.len());
                    bytes.drain(at..end);
                }
                3 => bytes.truncate(at),
                _ => bytes.insert(at, byte),
            }
        }
        bytes
    }

    proptest! {
        #![proptest_config(config(1000))]

        /// Any bytes at all: no panic, and errors keyed by lines of the file.
        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..2048)) {
            parse_checked(&body)?;
        }

        /// Text that looks like CSV (separators, quotes, line ends, header names).
        #[test]
        fn csv_like_text_never_panics(
            header in prop::sample::subsequence(COLUMNS.to_vec(), 0..=COLUMNS.len()),
            body in "([a-z0-9_ =+@'-]{0,6}(,|\"|\r|\n|\r\n|\u{feff}|\t)){0,60}",
        ) {
            let text = format!("{}\n{body}", header.join(","));
            parse_checked(text.as_bytes())?;
        }
    }

    proptest! {
        #![proptest_config(config(300))]

        /// An exported file of valid items reads back as the same items: formulas are
        /// neutralised on the way out and restored on the way in, quotes and line breaks in
        /// cells survive, and LF, CRLF or CR line ends all work.
        #[test]
        fn exported_items_round_trip(
            specs in prop::collection::vec(spec(), 1..8),
            crlf in any::<bool>(),
            cr in any::<bool>(),
        ) {
            let records: Vec<Vec<String>> = specs.iter().map(Spec::record).collect();
            let (body, starts) = write(&records, ending(crlf, cr));
            let (rows, errors) = parse_checked(&body)?;
            prop_assert!(errors.is_empty(), "{errors:?}\n{}", String::from_utf8_lossy(&body));
            prop_assert_eq!(rows.len(), specs.len());
            for ((row, spec), start) in rows.iter().zip(&specs).zip(&starts) {
                prop_assert_eq!(row.line, line_at(&body, *start));
                let item = &row.item;
                prop_assert_eq!(&item.sku, &spec.sku);
                prop_assert_eq!(&item.name, &spec.name);
                prop_assert_eq!(item.kind == ItemKind::Perishable, spec.perishable);
                prop_assert_eq!(&item.size, &spec.size);
                prop_assert_eq!(&item.unit, &spec.unit);
                prop_assert_eq!(&item.barcode, &spec.barcode);
                prop_assert_eq!(&item.description, &spec.description);
                prop_assert_eq!(item.min_quantity, spec.min_quantity);
                prop_assert_eq!(item.target_quantity, spec.target());
                prop_assert_eq!(item.expiry_warning_days, spec.window);
                prop_assert_eq!(row.quantity, spec.quantity);
                prop_assert_eq!(item.expiry_date, spec.expiry_date);
                prop_assert_eq!(&item.lot_code, &spec.lot_code);
            }
        }

        /// One bad cell among valid rows is reported on exactly that row's line (its first
        /// line, when earlier cells span several), and nothing else is.
        #[test]
        fn a_bad_row_is_reported_on_its_own_line(
            specs in prop::collection::vec(spec(), 1..6),
            bad_at in any::<prop::sample::Index>(),
            defect in 0..4usize,
            crlf in any::<bool>(),
            cr in any::<bool>(),
        ) {
            let mut records: Vec<Vec<String>> = specs.iter().map(Spec::record).collect();
            let k = bad_at.index(records.len());
            let (column, value) = [
                (2, "frozen"),       // kind
                (7, "a dozen"),      // min_quantity
                (11, "31/12/2026"),  // expiry_date
                (1, ""),             // name (required)
            ][defect];
            records[k][column] = value.to_owned();
            let (body, starts) = write(&records, ending(crlf, cr));
            let (_, errors) = parse_checked(&body)?;
            let expected = format!("line {}", line_at(&body, starts[k]));
            let keys: Vec<&String> = errors.keys().collect();
            prop_assert_eq!(keys, vec![&expected], "{:?}", errors);
        }

        /// A valid export, then broken in a few places: no panic, errors keyed by lines.
        #[test]
        fn mutated_exports_never_panic(
            specs in prop::collection::vec(spec(), 0..5),
            edits in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..8),
            crlf in any::<bool>(),
            cr in any::<bool>(),
        ) {
            let records: Vec<Vec<String>> = specs.iter().map(Spec::record).collect();
            let (body, _) = write(&records, ending(crlf, cr));
            parse_checked(&mutate(body, &edits))?;
        }
    }

    /// Found by `exported_items_round_trip`: with `\r\n` line ends (what the export and
    /// spreadsheets write) every error named the line before its row.
    #[test]
    fn crlf_files_key_errors_by_their_own_line() {
        let body = b"name,kind\r\nmilk,frozen\r\n\"two\nlines\",non_perishable\r\nx,bad\r\n";
        let mut errors = FieldErrors::new();
        parse_rows(body, &mut errors);
        let keys: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(keys, ["line 2", "line 5"]);
    }

    /// Old Mac files end lines with a bare `\r`, which the CSV reader's own line count
    /// ignores: every error was keyed `line 1`.
    #[test]
    fn cr_only_files_key_errors_by_their_own_line() {
        let body = b"name,kind\rmilk,frozen\r\"tea\",non_perishable\rsoap,non_perishable\rx,bad\r";
        let mut errors = FieldErrors::new();
        parse_rows(body, &mut errors);
        let keys: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(keys, ["line 2", "line 5"]);
    }

    /// Found with it: blank lines before a row were not counted in its line.
    #[test]
    fn blank_lines_are_counted_in_error_lines() {
        for body in [
            &b"name,kind\n\nmilk,frozen\n\n\nx,bad\n"[..],
            &b"name,kind\r\n\r\nmilk,frozen\r\n\r\n\r\nx,bad"[..],
            &b"name,kind\r\rmilk,frozen\r\r\rx,bad\r"[..],
            // Mixed endings, as files edited on several systems have.
            &b"name,kind\r\n\rmilk,frozen\n\r\r\nx,bad"[..],
        ] {
            let mut errors = FieldErrors::new();
            parse_rows(body, &mut errors);
            let keys: Vec<&str> = errors.keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                ["line 3", "line 6"],
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// More rows than one import takes: refused on the first line past the limit.
    #[test]
    fn too_many_rows_are_refused_on_the_first_line_past_the_limit() {
        let mut body = b"name,kind\n".to_vec();
        for n in 0..=MAX_IMPORT_ROWS {
            body.extend_from_slice(format!("item {n},non_perishable\n").as_bytes());
        }
        let mut errors = FieldErrors::new();
        parse_rows(&body, &mut errors);
        let expected = format!("line {}", MAX_IMPORT_ROWS + 2);
        let keys: Vec<&String> = errors.keys().collect();
        assert_eq!(keys, vec![&expected]);
    }
}
