//! Times are stored as UTC `Timestamp` (microseconds, the finest both backends keep) and
//! sent as RFC 3339 with a `Z`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Timelike, Utc};
use serde::Serializer;

/// Now, in UTC, truncated to microseconds so what is written reads back identically.
pub fn now() -> NaiveDateTime {
    let now = Utc::now().naive_utc();
    now.with_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

pub fn rfc3339(t: &NaiveDateTime) -> String {
    DateTime::<Utc>::from_naive_utc_and_offset(*t, Utc).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `#[serde(serialize_with = "crate::time::serialize")]` for `NaiveDateTime` fields.
pub fn serialize<S: Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(t))
}

pub fn serialize_opt<S: Serializer>(t: &Option<NaiveDateTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&rfc3339(t)),
        None => s.serialize_none(),
    }
}
