//! Fan-out inside one process: every open socket has a bounded queue, and events are put on
//! the queues of their recipients without ever waiting. A full queue means its reader is too
//! slow: the socket is told to close (the client resumes with `since`), and nobody else
//! is delayed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, Notify};

/// One stored event's payload, shared by every recipient's queue.
#[derive(Debug)]
pub struct EventBody {
    pub kind: String,
    /// The event's `data`, already JSON.
    pub data: String,
}

/// What a socket is told.
#[derive(Debug, Clone)]
pub enum Push {
    /// The event at position `seq` of the socket's user.
    Event { seq: i64, body: Arc<EventBody> },
    /// A frame that is never stored or replayed (`typing`), as sent.
    Ephemeral(Arc<str>),
    /// Events may have been committed without a push reaching this process (its listener
    /// reconnected): read the stream from the database.
    CatchUp,
}

struct Slot {
    id: u64,
    queue: mpsc::Sender<Push>,
    overflowed: Arc<Notify>,
}

/// The sockets of this process, by user.
pub struct Hub {
    slots: Mutex<HashMap<i64, Vec<Slot>>>,
    next_id: AtomicU64,
    queue_capacity: usize,
    sockets_per_user: usize,
}

/// A socket's registration: its queue, and the signal that it overflowed. Dropping it
/// unregisters the socket.
pub struct Subscription {
    pub user_id: i64,
    pub queue: mpsc::Receiver<Push>,
    pub overflowed: Arc<Notify>,
    id: u64,
    hub: Arc<Hub>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut slots = self.hub.lock();
        if let Some(list) = slots.get_mut(&self.user_id) {
            list.retain(|s| s.id != self.id);
            if list.is_empty() {
                slots.remove(&self.user_id);
            }
        }
    }
}

impl Hub {
    pub fn new(queue_capacity: usize, sockets_per_user: usize) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            queue_capacity: queue_capacity.max(1),
            sockets_per_user,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i64, Vec<Slot>>> {
        // A panic while holding the lock cannot leave the map half-changed (every change is
        // one call on it), so a poisoned lock is still usable.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a socket of `user_id`; `None` when the user already has the most sockets
    /// one process accepts.
    pub fn subscribe(self: &Arc<Self>, user_id: i64) -> Option<Subscription> {
        let mut slots = self.lock();
        let list = slots.entry(user_id).or_default();
        list.retain(|s| !s.queue.is_closed());
        if list.len() >= self.sockets_per_user {
            return None;
        }
        let (queue, receiver) = mpsc::channel(self.queue_capacity);
        let overflowed = Arc::new(Notify::new());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        list.push(Slot {
            id,
            queue,
            overflowed: overflowed.clone(),
        });
        Some(Subscription {
            user_id,
            queue: receiver,
            overflowed,
            id,
            hub: self.clone(),
        })
    }

    /// Puts `push` on every socket of `user_id` without waiting; a socket whose queue is
    /// full is dropped from the hub and told so.
    fn offer(slots: &mut HashMap<i64, Vec<Slot>>, user_id: i64, push: &Push, drop_if_full: bool) {
        let Some(list) = slots.get_mut(&user_id) else {
            return;
        };
        list.retain(|slot| match slot.queue.try_send(push.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) if !drop_if_full => true,
            Err(TrySendError::Full(_)) => {
                slot.overflowed.notify_one();
                false
            }
            Err(TrySendError::Closed(_)) => false,
        });
        if list.is_empty() {
            slots.remove(&user_id);
        }
    }

    /// Delivers one stored event to its recipients' sockets: `(user_id, seq)` pairs.
    pub fn deliver(&self, positions: &[(i64, i64)], body: &Arc<EventBody>) {
        let mut slots = self.lock();
        for (user_id, seq) in positions {
            let push = Push::Event {
                seq: *seq,
                body: body.clone(),
            };
            Self::offer(&mut slots, *user_id, &push, true);
        }
    }

    /// Delivers an ephemeral frame; it is simply skipped for a socket whose queue is full
    /// (ephemeral frames are never owed to anyone).
    pub fn deliver_ephemeral(&self, users: &[i64], frame: &Arc<str>) {
        let mut slots = self.lock();
        let push = Push::Ephemeral(frame.clone());
        for user_id in users {
            Self::offer(&mut slots, *user_id, &push, false);
        }
    }

    /// Tells every socket to read its stream from the database.
    pub fn catch_up_all(&self) {
        let mut slots = self.lock();
        let users: Vec<i64> = slots.keys().copied().collect();
        for user_id in users {
            Self::offer(&mut slots, user_id, &Push::CatchUp, true);
        }
    }

    /// The users with at least one socket here.
    pub fn users(&self) -> Vec<i64> {
        let mut users: Vec<i64> = self.lock().keys().copied().collect();
        users.sort_unstable();
        users
    }
}
