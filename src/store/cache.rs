//! A cache of the small records every API request reads — tokens, publisher keys, key policies,
//! CA records, certificate standings — so that a signature costs one read of a counter at most,
//! not half a dozen lookups. It works over any backend that reports two things:
//!
//! - a *generation*: a counter the database moves on every change to those records, by any
//!   process (`hallmark token revoke` from the command line, say); SQLite keeps it with
//!   triggers. The cache is emptied when it moves. Every API request reads it once, when its
//!   token is checked ([`Cache::sync`]), so a change committed by another process before the
//!   request began is always seen; lookups outside a request read it again at most every
//!   [`RECHECK`];
//! - a *local change* (it advances [`Cache::epoch`]) when this process's own write to one of
//!   those records commits (SQLite: the writer's update and commit hooks), which empties the
//!   cache before the next lookup; a value loaded while that happened is not kept.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::{CaRecord, CertStanding, KeyPolicyRecord, KeyRecord, StoreError, TokenRecord};

/// How long a reading of the generation counter is trusted by lookups outside an API request.
pub(crate) const RECHECK: Duration = Duration::from_millis(250);

#[derive(Default)]
pub(crate) struct Cache {
    /// Advanced when this process's writer commits a change to a cached table.
    epoch: Arc<AtomicU64>,
    state: Mutex<State>,
}

#[derive(Default)]
pub(crate) struct State {
    epoch: u64,
    generation: Option<i64>,
    checked: Option<Instant>,
    pub(crate) tokens: HashMap<String, Option<TokenRecord>>,
    pub(crate) keys: HashMap<String, Option<KeyRecord>>,
    pub(crate) policies: HashMap<String, Option<KeyPolicyRecord>>,
    pub(crate) cas: HashMap<String, Option<CaRecord>>,
    pub(crate) standings: HashMap<String, Option<CertStanding>>,
}

impl State {
    fn clear(&mut self) {
        self.tokens.clear();
        self.keys.clear();
        self.policies.clear();
        self.cas.clear();
        self.standings.clear();
    }
}

impl Cache {
    /// The local-change counter: a backend advances it when its own write to a cached record
    /// commits (from a commit hook, which may outlive a borrow of the cache), and the cache is
    /// emptied before the next lookup.
    pub(crate) fn epoch(&self) -> Arc<AtomicU64> {
        self.epoch.clone()
    }

    /// Reads the generation counter now and empties the cache if it moved.
    pub(crate) fn sync(
        &self,
        generation: impl FnOnce() -> Result<i64, StoreError>,
    ) -> Result<(), StoreError> {
        let g = generation()?;
        let epoch = self.epoch.load(Ordering::SeqCst);
        let mut st = self.state.lock().map_err(|_| StoreError::Poisoned)?;
        if st.generation != Some(g) || st.epoch != epoch {
            st.clear();
            st.generation = Some(g);
            st.epoch = epoch;
        }
        st.checked = Some(Instant::now());
        Ok(())
    }

    /// Looks `key` up in the map `pick` chooses, loading it with `load` on a miss. `generation`
    /// reads the database's counter (called at most every [`RECHECK`]).
    pub(crate) fn get<T: Clone>(
        &self,
        pick: impl Fn(&mut State) -> &mut HashMap<String, Option<T>>,
        key: &str,
        generation: impl FnOnce() -> Result<i64, StoreError>,
        load: impl FnOnce() -> Result<Option<T>, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let epoch = self.epoch.load(Ordering::SeqCst);
        let due = {
            let mut st = self.state.lock().map_err(|_| StoreError::Poisoned)?;
            if st.epoch != epoch {
                st.clear();
                st.epoch = epoch;
            }
            let due = st.checked.is_none_or(|t| t.elapsed() >= RECHECK);
            if !due {
                if let Some(v) = pick(&mut st).get(key) {
                    return Ok(v.clone());
                }
            }
            due
        };
        if due {
            let g = generation()?;
            let mut st = self.state.lock().map_err(|_| StoreError::Poisoned)?;
            if st.generation != Some(g) {
                st.clear();
                st.generation = Some(g);
            }
            st.checked = Some(Instant::now());
            if let Some(v) = pick(&mut st).get(key) {
                return Ok(v.clone());
            }
        }
        let value = load()?;
        let mut st = self.state.lock().map_err(|_| StoreError::Poisoned)?;
        // Keep it only when nothing changed while it was loaded.
        if self.epoch.load(Ordering::SeqCst) == epoch && st.epoch == epoch {
            pick(&mut st).insert(key.to_string(), value.clone());
        }
        Ok(value)
    }
}
