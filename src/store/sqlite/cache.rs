//! A cache of the small records every API request reads — tokens, publisher keys, key policies,
//! CA records, certificate standings — so that a signature costs one read of a counter at most,
//! not half a dozen lookups (each of which, right after a commit, starts a read transaction that
//! drops the connection's page cache).
//!
//! Why it stays correct: a `generation` counter in the database is bumped by triggers on every
//! change to those tables, by any process (`hallmark token revoke` from the command line, say);
//! the cache is emptied when the counter moves. Every API request reads the counter once, when
//! its token is checked ([`Cache::sync`]), so a change committed by another process before the
//! request began is always seen; lookups outside a request read it again at most every
//! [`RECHECK`]. A change made through this process's own writer is seen at once: the writer
//! connection's update and commit hooks advance the epoch, which empties the cache before the
//! next lookup, and a value loaded while the epoch moved is not kept.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::store::{CaRecord, CertStanding, KeyPolicyRecord, KeyRecord, StoreError, TokenRecord};

/// How long a reading of the generation counter is trusted by lookups outside an API request.
pub(crate) const RECHECK: Duration = Duration::from_millis(250);

/// Tables whose rows are cached (or decide a cached answer).
const CACHED_TABLES: &[&str] = &[
    "tokens",
    "keys",
    "key_policies",
    "cas",
    "publishers",
    "revocations",
];

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
    /// Hooks the writer connection: a committed change to a cached table advances the epoch.
    pub(crate) fn watch(&self, writer: &Connection) {
        let touched = Arc::new(AtomicBool::new(false));
        let t = touched.clone();
        writer.update_hook(Some(
            move |_: rusqlite::hooks::Action, _: &str, table: &str, _: i64| {
                if CACHED_TABLES.contains(&table) {
                    t.store(true, Ordering::SeqCst);
                }
            },
        ));
        let (t, epoch) = (touched.clone(), self.epoch.clone());
        writer.commit_hook(Some(move || {
            if t.swap(false, Ordering::SeqCst) {
                epoch.fetch_add(1, Ordering::SeqCst);
            }
            false // never turn a commit into a rollback
        }));
        writer.rollback_hook(Some(move || touched.store(false, Ordering::SeqCst)));
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
