//! Counts of what is open per key (a client address, a user), each held as a slot that
//! gives itself back when dropped, so no path can forget to.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

/// Open slots per key, shared by every worker of the process, with a cap per key.
pub struct Slots<K> {
    open: Arc<Mutex<HashMap<K, usize>>>,
    cap: usize,
}

impl<K> Clone for Slots<K> {
    fn clone(&self) -> Self {
        Self {
            open: self.open.clone(),
            cap: self.cap,
        }
    }
}

/// One open thing of `key`; its count goes down when this is dropped.
pub struct Slot<K: Eq + Hash> {
    slots: Slots<K>,
    key: K,
}

impl<K: Eq + Hash + Clone> Slots<K> {
    pub fn new(cap: usize) -> Self {
        Self {
            open: Arc::default(),
            cap,
        }
    }

    /// Counts one more for `key` whatever the cap, and says whether `key` is now over it
    /// (a connection already accepted is counted, then refused).
    pub fn enter(&self, key: K) -> (Slot<K>, bool) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key.clone()).or_insert(0);
        *count += 1;
        let over_cap = *count > self.cap;
        drop(open);
        (
            Slot {
                slots: self.clone(),
                key,
            },
            over_cap,
        )
    }

    /// How many slots `key` holds now.
    pub fn held(&self, key: &K) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(key).copied().unwrap_or(0)
    }

    /// A slot for `key`, or `None` when it holds `cap` already (nothing is counted then).
    pub fn take(&self, key: K) -> Option<Slot<K>> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key.clone()).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        drop(open);
        Some(Slot {
            slots: self.clone(),
            key,
        })
    }
}

impl<K: Eq + Hash> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut open = self
            .slots
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}
