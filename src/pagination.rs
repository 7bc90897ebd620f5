//! `?limit=&cursor=` lists answered as `{"data":[…],"next_cursor":…}`. Cursors are opaque
//! (URL-safe base64 of JSON) and carry the last row's sort key and id, so pages stay stable
//! while rows are added (keyset pagination, never OFFSET).

use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::error::{ApiError, ApiResult};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

#[derive(Debug, Deserialize, IntoParams, Validate)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1–200 (default 50). Outside that range: 400 naming `limit`.
    #[validate(range(min = 1, max = MAX_LIMIT))]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page (empty: the first page).
    #[validate(length(max = MAX_CURSOR_LEN))]
    #[param(max_length = 1024)]
    pub cursor: Option<String>,
}

/// Cursors this server makes are far shorter; longer ones are refused before decoding.
pub const MAX_CURSOR_LEN: u64 = 1024;

impl PageParams {
    /// The page size; the range was checked when the query string was read.
    pub fn limit(&self) -> ApiResult<i64> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::field("limit", "must be between 1 and 200")),
        }
    }

    /// The decoded cursor; an empty `?cursor=` means the first page, as no cursor does.
    pub fn cursor<C: DeserializeOwned>(&self) -> ApiResult<Option<C>> {
        self.cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(decode_cursor)
            .transpose()
    }
}

/// Where the previous page ended: the last row's sort key and id. Lists are ordered by
/// (key, id), so the next page starts strictly after this pair: nothing is skipped or repeated
/// while rows are added. The key keeps its own type inside the cursor (a number, a date, a
/// time, a text), so a cursor decodes straight into the key the query compares with, and a
/// cursor of another sort is refused as malformed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Keyset<K> {
    pub key: K,
    pub id: i64,
}

/// Narrows a boxed query to the rows after `$after` (an `Option<Keyset<_>>`) in
/// (`$column`, `$id`) order, and orders it that way, descending when `$desc`: the one keyset
/// pagination every list uses. A macro, because the query's type differs per table.
macro_rules! keyset_page {
    ($query:expr, $column:expr, $id:expr, $after:expr, $desc:expr) => {{
        let mut query = $query;
        let desc: bool = $desc;
        if let Some($crate::pagination::Keyset { key, id }) = $after {
            query = if desc {
                query.filter($column.lt(key.clone()).or($column.eq(key).and($id.lt(id))))
            } else {
                query.filter($column.gt(key.clone()).or($column.eq(key).and($id.gt(id))))
            };
        }
        if desc {
            query.order(($column.desc(), $id.desc()))
        } else {
            query.order(($column.asc(), $id.asc()))
        }
    }};
}
pub(crate) use keyset_page;

/// Whether a text filter can match anything stored. Stored text never holds U+0000 (every
/// text field refuses control characters), and PostgreSQL cannot even compare text that does:
/// such a filter is answered with an empty page without asking the database.
pub fn matches_nothing(filter: Option<&str>) -> bool {
    filter.is_some_and(|text| text.contains('\0'))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn empty() -> Self {
        Self {
            data: Vec::new(),
            next_cursor: None,
        }
    }

    /// Builds a page from up to `limit + 1` rows: the extra row only says another page exists.
    pub fn from_rows<R, C: Serialize>(
        mut rows: Vec<R>,
        limit: i64,
        cursor_of: impl Fn(&R) -> C,
        map: impl FnMut(R) -> T,
    ) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(|r| encode_cursor(&cursor_of(r)))
        } else {
            None
        };
        Self {
            data: rows.into_iter().map(map).collect(),
            next_cursor,
        }
    }
}

pub fn encode_cursor<C: Serialize>(cursor: &C) -> String {
    let json = serde_json::to_vec(cursor).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

pub fn decode_cursor<C: DeserializeOwned>(raw: &str) -> ApiResult<C> {
    let bad = || ApiError::BadRequest("the cursor is not valid".to_owned());
    if raw.len() > 1024 {
        return Err(bad());
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

/// `Option<Option<T>>` for PATCH bodies: absent → `None` (leave alone), `null` → `Some(None)`
/// (clear), a value → `Some(Some(v))`. Use with `#[serde(default, deserialize_with = …)]`.
pub fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// A `LIKE` pattern matching `q` anywhere, with `%`, `_` and `\` escaped (use `ESCAPE '\'`).
pub fn contains_pattern(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    out.push('%');
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}
