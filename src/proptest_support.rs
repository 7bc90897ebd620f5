//! What the property tests share (they stand in for fuzzing: cargo-fuzz needs a nightly
//! toolchain).

use proptest::test_runner::Config;

/// `cases` per property, or `PROPTEST_CASES` when set (CI keeps the defaults small enough for
/// its time budget; a longer local run raises them all at once).
pub fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        ..Config::default()
    }
}
