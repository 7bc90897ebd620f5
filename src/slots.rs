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

/// Turns per key, taken one at a time in arrival order, with a cap on how many may wait for
/// one key. Work that would queue on a database lock for the key anyway (sends to one chat)
/// takes its turn here first, so a hot key holds one pooled connection of this process, not
/// all of them, and the rest of the process keeps its connections.
pub struct Turns<K> {
    keys: Arc<Mutex<HashMap<K, Queue>>>,
    max_waiting: usize,
}

struct Queue {
    turn: Arc<tokio::sync::Mutex<()>>,
    /// The holder and those waiting (also those whose wait was cancelled, until dropped).
    entered: usize,
}

impl<K> Clone for Turns<K> {
    fn clone(&self) -> Self {
        Self {
            keys: self.keys.clone(),
            max_waiting: self.max_waiting,
        }
    }
}

/// Why no turn was given.
#[derive(Debug, PartialEq, Eq)]
pub enum NoTurn {
    /// `max_waiting` were waiting already.
    Crowded,
    /// The wait outlasted its limit.
    TimedOut,
}

/// A turn for one key, held until dropped (also counted while waiting for it).
pub struct Turn<K: Eq + Hash> {
    turns: Turns<K>,
    key: K,
    _held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<K: Eq + Hash + Clone> Turns<K> {
    pub fn new(max_waiting: usize) -> Self {
        Self {
            keys: Arc::default(),
            max_waiting,
        }
    }

    /// How many hold or wait for `key`'s turn now.
    pub fn entered(&self, key: &K) -> usize {
        let keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        keys.get(key).map_or(0, |queue| queue.entered)
    }

    /// Waits (at most `wait`) for `key`'s turn, after everyone who asked before.
    pub async fn take(&self, key: K, wait: std::time::Duration) -> Result<Turn<K>, NoTurn> {
        let queue = {
            let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
            let queue = keys.entry(key.clone()).or_insert_with(|| Queue {
                turn: Arc::default(),
                entered: 0,
            });
            // One holds the turn; the others wait.
            if queue.entered > self.max_waiting {
                return Err(NoTurn::Crowded);
            }
            queue.entered += 1;
            queue.turn.clone()
        };
        // Counted from here: dropping `turn` (also when this future is cancelled) gives the
        // place back.
        let mut turn = Turn {
            turns: self.clone(),
            key,
            _held: None,
        };
        match tokio::time::timeout(wait, queue.lock_owned()).await {
            Ok(held) => {
                turn._held = Some(held);
                Ok(turn)
            }
            Err(_) => Err(NoTurn::TimedOut),
        }
    }
}

impl<K: Eq + Hash> Drop for Turn<K> {
    fn drop(&mut self) {
        // The guard goes first (after this body), which is fine: the count only decides
        // whether the queue is kept and how many may join it.
        let mut keys = self
            .turns
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(queue) = keys.get_mut(&self.key) {
            queue.entered -= 1;
            if queue.entered == 0 {
                keys.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod turn_tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn turns_go_one_at_a_time_in_order_and_the_queue_is_bounded() {
        let turns = Turns::new(2);
        let first = turns.take(1, Duration::from_secs(5)).await.unwrap();
        let other_key = turns.take(2, Duration::from_secs(5)).await;
        assert!(other_key.is_ok(), "another key does not wait");
        let (tx, mut order) = tokio::sync::mpsc::unbounded_channel();
        let mut waiting = Vec::new();
        for n in 0..2 {
            let (queue, tx) = (turns.clone(), tx.clone());
            waiting.push(tokio::spawn(async move {
                let turn = queue.take(1, Duration::from_secs(5)).await.unwrap();
                tx.send(n).unwrap();
                drop(turn);
            }));
            // Each has joined the queue before the next asks.
            while turns.entered(&1) < n + 2 {
                tokio::task::yield_now().await;
            }
        }
        assert_eq!(
            turns.take(1, Duration::from_secs(5)).await.err(),
            Some(NoTurn::Crowded)
        );
        assert_eq!(
            turns.take(3, Duration::from_millis(1)).await.err(),
            None,
            "a free key is taken at once"
        );
        drop(first);
        for w in waiting {
            w.await.unwrap();
        }
        assert_eq!((order.recv().await, order.recv().await), (Some(0), Some(1)));
        drop(other_key);
        assert!(turns.keys.lock().unwrap().is_empty(), "nothing is kept");
    }

    #[tokio::test]
    async fn a_wait_past_its_limit_gives_its_place_back() {
        let turns = Turns::new(4);
        let held = turns.take("chat", Duration::from_secs(1)).await.unwrap();
        assert_eq!(
            turns.take("chat", Duration::from_millis(10)).await.err(),
            Some(NoTurn::TimedOut)
        );
        assert_eq!(turns.entered(&"chat"), 1);
        drop(held);
        assert!(turns.keys.lock().unwrap().is_empty());
    }
}
