//! What the property tests share (they stand in for fuzzing: cargo-fuzz needs a nightly
//! toolchain).

use proptest::test_runner::Config;

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
