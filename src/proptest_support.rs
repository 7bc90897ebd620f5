//! What the property tests share (they stand in for fuzzing: cargo-fuzz needs a nightly
//! toolchain).

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Value};

/// `cases` per property, times `FUZZ_SCALE` when set, or `PROPTEST_CASES` when that is set
/// (proptest applies it over any configuration). The defaults keep `cargo test` fast; CI's
/// bounded fuzz step (`.ci/run`) raises every count at once with `FUZZ_SCALE`, which keeps
/// each target's share of the time (a case of some parsers costs far more than of others).
///
/// Prints the count, which `cargo test -- --show-output` shows under the test's name: a
/// property that passes ran exactly that many new cases (proptest loops until that many have
/// passed; regression seeds are replayed on top), so CI can report how much each target was
/// fuzzed.
pub fn config(cases: u32) -> Config {
    let scale = std::env::var("FUZZ_SCALE")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases.saturating_mul(scale));
    println!("proptest: {cases} cases");
    Config {
        cases,
        ..Config::default()
    }
}

/// Arbitrary JSON, nested up to 4 deep: scalars of every kind (extreme and integral floats
/// too), text, and the parser's own `words`; objects keyed by its `keys` (the empty string
/// included by the caller if wanted), so that generated documents come near the real ones.
pub fn json_value(
    words: &'static [&'static str],
    keys: &'static [&'static str],
) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(json!(1e300)),
        Just(json!(3.0)),
        ".{0,12}".prop_map(Value::from),
        prop::sample::select(words).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, move |inner| {
        let key = prop::sample::select(keys).prop_map(str::to_owned);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
