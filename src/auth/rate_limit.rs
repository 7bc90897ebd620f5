//! Counting failures per key in a fixed window (login failures per account-and-address and
//! per address, registrations per address). Memory is bounded: expired windows are swept
//! and the table never holds more than `MAX_KEYS` keys.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_KEYS: usize = 100_000;

pub struct WindowLimiter {
    limit: u32,
    window: Duration,
    entries: Mutex<HashMap<String, (Instant, u32)>>,
}

impl WindowLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds to wait)` when `key` has used up its window.
    pub fn blocked(&self, key: &str) -> Option<u64> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (start, count) = entries.get(key)?;
        let elapsed = start.elapsed();
        if elapsed >= self.window || *count < self.limit {
            return None;
        }
        Some((self.window - elapsed).as_secs().max(1))
    }

    /// Counts one event for `key`.
    pub fn record(&self, key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_KEYS {
            let window = self.window;
            entries.retain(|_, (start, _)| start.elapsed() < window);
            if entries.len() >= MAX_KEYS {
                // Under a flood of distinct keys, forget the lot rather than grow.
                entries.clear();
            }
        }
        let now = Instant::now();
        let entry = entries.entry(key.to_owned()).or_insert((now, 0));
        if entry.0.elapsed() >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    pub fn reset(&self, key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_and_resets() {
        let limiter = WindowLimiter::new(2, Duration::from_secs(60));
        assert!(limiter.blocked("a").is_none());
        limiter.record("a");
        limiter.record("a");
        assert!(limiter.blocked("a").is_some());
        assert!(limiter.blocked("b").is_none());
        limiter.reset("a");
        assert!(limiter.blocked("a").is_none());
    }
}
