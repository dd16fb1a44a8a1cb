//! A listener's connection slots. A listener holds at most `cap` connections; when it is full,
//! a new connection is still admitted and the connection that has made the least progress
//! makes room: one that has had no request answered, open the longest (a slow client trickling
//! a body), before any that has been served. So slow clients holding every slot delay a fresh
//! client (a health check) by nothing, where refusing the newcomer would lock it out for as
//! long as the slow ones hold on.
//!
//! The cap also keeps the process inside its descriptor limit ([`descriptor_budget`]): a
//! server out of descriptors can neither accept a connection nor open a key file.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Descriptors kept for everything but client connections: database files and their journals,
/// key files read when a CRL is signed, HSM sessions, log files, outbound connections.
pub const RESERVED_DESCRIPTORS: u64 = 96;

struct Entry {
    answered: Arc<AtomicU64>,
    evict: Arc<Notify>,
    closed: Arc<Notify>,
}

/// The connections one listener holds.
pub struct Slots {
    cap: usize,
    /// By admission order (ids grow), so the first match is the oldest.
    open: Mutex<(u64, BTreeMap<u64, Entry>)>,
}

/// A connection's place in its listener, given up when dropped.
pub struct Slot {
    id: u64,
    slots: Arc<Slots>,
    /// Requests answered on this connection so far.
    pub answered: Arc<AtomicU64>,
    /// Notified when the connection must close to make room for a newer one.
    pub evicted: Arc<Notify>,
    closed: Arc<Notify>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut g) = self.slots.open.lock() {
            g.1.remove(&self.id);
        }
        self.closed.notify_one();
    }
}

/// A connection told to make room; [`Evicted::closed`] returns once it has (its socket too).
pub struct Evicted(Arc<Notify>);

impl Evicted {
    pub async fn closed(self) {
        self.0.notified().await
    }
}

impl Slots {
    pub fn new(cap: usize) -> Arc<Slots> {
        Arc::new(Slots {
            cap: cap.max(1),
            open: Mutex::new((0, BTreeMap::new())),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().map(|g| g.1.len()).unwrap_or(0)
    }

    /// Admits a new connection; when the listener is full, the connection with the least
    /// progress is told to close: the caller waits for it ([`Evicted::closed`]) before it
    /// accepts more, so the descriptors in use stay within the budget.
    pub fn admit(self: &Arc<Self>) -> (Slot, Option<Evicted>) {
        let answered = Arc::new(AtomicU64::new(0));
        let evict = Arc::new(Notify::new());
        let closed = Arc::new(Notify::new());
        let mut made_room = None;
        let id = match self.open.lock() {
            Ok(mut g) => {
                if g.1.len() >= self.cap {
                    let victim =
                        g.1.iter()
                            .find(|(_, e)| e.answered.load(Ordering::Relaxed) == 0)
                            .or_else(|| g.1.iter().next())
                            .map(|(id, _)| *id);
                    if let Some(e) = victim.and_then(|v| g.1.remove(&v)) {
                        // A permit is stored if the connection is not waiting yet.
                        e.evict.notify_one();
                        made_room = Some(Evicted(e.closed));
                    }
                }
                g.0 += 1;
                let id = g.0;
                g.1.insert(
                    id,
                    Entry {
                        answered: answered.clone(),
                        evict: evict.clone(),
                        closed: closed.clone(),
                    },
                );
                id
            }
            Err(_) => 0,
        };
        (
            Slot {
                id,
                slots: self.clone(),
                answered,
                evicted: evict,
                closed,
            },
            made_room,
        )
    }
}

/// Raises the soft descriptor limit to the hard one (as far as the system lets a process) and
/// returns (the limit now, connections each of `listeners` may hold within it): what is left
/// after [`RESERVED_DESCRIPTORS`], shared equally, and never more than `configured`.
pub fn descriptor_budget(configured: usize, listeners: usize) -> (Option<u64>, usize) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => limit = raised,
            Err(e) => tracing::warn!("cannot raise the descriptor limit to the hard limit: {e}"),
        }
    }
    let Some(n) = limit.current else {
        return (None, configured);
    };
    let per_listener = n.saturating_sub(RESERVED_DESCRIPTORS) / listeners.max(1) as u64;
    let per_listener = usize::try_from(per_listener)
        .unwrap_or(usize::MAX)
        .clamp(8, configured.max(8));
    (Some(n), per_listener.min(configured))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_listener_closes_the_oldest_unserved_connection() {
        let slots = Slots::new(3);
        let ids = |s: &Slots| -> Vec<u64> { s.open.lock().unwrap().1.keys().copied().collect() };
        let (a, _) = slots.admit();
        let (_b, _) = slots.admit();
        let (_c, made_room) = slots.admit();
        assert!(made_room.is_none());
        // `a` has been served: `b` (2), the oldest that has not, makes room for `d` (4).
        a.answered.fetch_add(1, Ordering::Relaxed);
        let (d, made_room) = slots.admit();
        assert!(made_room.is_some());
        assert_eq!(ids(&slots), vec![1, 3, 4]);
        // Then `c` (3) for `e`, then `d` (4) for `f`.
        let (e, _) = slots.admit();
        let (f, _) = slots.admit();
        assert_eq!(ids(&slots), vec![1, 5, 6]);
        // Once every one has been served, the oldest goes: `a`.
        for s in [&d, &e, &f] {
            s.answered.fetch_add(1, Ordering::Relaxed);
        }
        let (_g, _) = slots.admit();
        assert_eq!(ids(&slots), vec![5, 6, 7]);
        // A connection that ends gives its slot up.
        drop(e);
        assert_eq!(ids(&slots), vec![6, 7]);
    }

    #[test]
    fn the_budget_keeps_descriptors_for_the_rest() {
        let (limit, per) = descriptor_budget(4096, 2);
        if let Some(n) = limit {
            assert!(per as u64 * 2 + RESERVED_DESCRIPTORS <= n.max(RESERVED_DESCRIPTORS + 16));
        }
        assert!((8..=4096).contains(&per));
    }
}
