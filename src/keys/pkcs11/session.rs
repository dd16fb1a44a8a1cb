//! A token's shared state: the anchor session that keeps the login alive and the small pool of
//! sessions that operations borrow (a cryptoki `Session` is `Send` but not `Sync`).

use std::fmt;
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard, RwLockReadGuard, RwLockWriteGuard};

use cryptoki::error::Error as CkError;
use cryptoki::session::Session;
use cryptoki::slot::Slot;

use super::module::{ck, session_is_broken, Module};
use crate::keys::KeyError;

/// How many idle sessions a token keeps in its pool (beyond the anchor session).
pub(super) const POOL_IDLE_MAX: usize = 8;

// ---------------------------------------------------------------------------------------------
// Token: the shared state behind a store and its keys.

pub(super) struct Token {
    pub(super) module: Arc<Module>,
    pub(super) slot: Slot,
    pub(super) label: String,
    /// Never used for operations: it exists so the login outlives idle periods in the pool.
    pub(super) anchor: Mutex<Session>,
    pub(super) pool: Mutex<Vec<Session>>,
}

impl Token {
    fn pool(&self) -> MutexGuard<'_, Vec<Session>> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A logged-in session for one operation that only reads or signs; it goes back to the pool
    /// when dropped.
    pub(super) fn session(&self) -> Result<PooledSession<'_>, KeyError> {
        let guard = Guard::Shared {
            _held: self.module.shared(),
        };
        self.session_with(guard)
    }

    /// A session for an operation that creates or destroys objects (see [`Module::objects`]).
    pub(super) fn session_exclusive(&self) -> Result<PooledSession<'_>, KeyError> {
        let guard = Guard::Exclusive {
            _held: self.module.exclusive(),
        };
        self.session_with(guard)
    }

    fn session_with<'a>(&'a self, guard: Guard<'a>) -> Result<PooledSession<'a>, KeyError> {
        let pooled = self.pool().pop();
        let session = match pooled {
            Some(s) => s,
            None => self.module.ctx.open_rw_session(self.slot).map_err(|e| {
                ck(
                    format_args!("opening a session on token '{}'", self.label),
                    e,
                )
            })?,
        };
        Ok(PooledSession {
            token: self,
            session: Some(session),
            broken: false,
            _guard: guard,
        })
    }

    pub(super) fn err(&self, what: impl fmt::Display, e: CkError) -> KeyError {
        ck(format_args!("{what} (token '{}')", self.label), e)
    }
}

/// Which side of [`Module::objects`] an operation holds.
pub(super) enum Guard<'a> {
    Shared { _held: RwLockReadGuard<'a, ()> },
    Exclusive { _held: RwLockWriteGuard<'a, ()> },
}

pub(super) struct PooledSession<'a> {
    token: &'a Token,
    session: Option<Session>,
    broken: bool,
    /// Released after the session is back in the pool (fields drop after `Drop::drop`).
    _guard: Guard<'a>,
}

impl PooledSession<'_> {
    pub(super) fn get(&self) -> &Session {
        // `session` is only taken in `drop`.
        self.session.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// Records a failed call: a session the token no longer knows is discarded, not pooled.
    pub(super) fn check<T>(&mut self, r: Result<T, CkError>) -> Result<T, CkError> {
        if let Err(e) = &r {
            if session_is_broken(e) {
                self.broken = true;
            }
        }
        r
    }
}

impl Drop for PooledSession<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            if !self.broken {
                let mut pool = self.token.pool();
                if pool.len() < POOL_IDLE_MAX {
                    pool.push(s);
                    return;
                }
            }
            // Closed here, outside the pool lock; the anchor session keeps the login alive.
            drop(s);
        }
    }
}
