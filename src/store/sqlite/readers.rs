//! Read-only connections beside the writer, for the paths that must not wait on it (OCSP, CRLs).
//!
//! The database runs in WAL mode, where readers see the last committed state and never block the
//! writer or wait for it. The writer is one `Mutex<Connection>`; these are separate connections,
//! kept in small pools: a pool's lock is held only to take or return one, never for a query.
//!
//! Two kinds: plain connections for scans and counts (CRLs), read through SQLite's small page
//! cache; and *mapped* ones for point lookups on the hot path (OCSP), which map the file so a
//! lookup among millions of rows reads its pages without a syscall. A scan never uses a mapped
//! connection: every page it touched would count as resident memory.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// How many idle read connections of each kind are kept.
const MAX_IDLE: usize = 16;
/// How much of the database file a mapped connection maps.
const MMAP_BYTES: i64 = 1 << 30;

pub(crate) struct Readers {
    path: Option<PathBuf>,
    plain: Mutex<Vec<Connection>>,
    mapped: Mutex<Vec<Connection>>,
}

impl Readers {
    /// Readers for the database file behind `writer` (none for an in-memory database).
    pub(crate) fn for_writer(writer: &Connection) -> Readers {
        Readers {
            path: writer.path().filter(|p| !p.is_empty()).map(PathBuf::from),
            plain: Mutex::new(Vec::new()),
            mapped: Mutex::new(Vec::new()),
        }
    }

    /// A plain read connection, or `None` when the database has no file (then use the writer).
    pub(crate) fn get(&self) -> Result<Option<ReadConn<'_>>, StoreError> {
        self.take(false)
    }

    /// A mapped read connection for point lookups.
    pub(crate) fn get_mapped(&self) -> Result<Option<ReadConn<'_>>, StoreError> {
        self.take(true)
    }

    fn take(&self, mapped: bool) -> Result<Option<ReadConn<'_>>, StoreError> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let pool = if mapped { &self.mapped } else { &self.plain };
        let pooled = pool.lock().map_err(|_| StoreError::Poisoned)?.pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(std::time::Duration::from_secs(10))?;
                c.set_prepared_statement_cache_capacity(32);
                if mapped {
                    c.pragma_update(None, "mmap_size", MMAP_BYTES)?;
                }
                c
            }
        };
        Ok(Some(ReadConn {
            pool,
            conn: Some(conn),
        }))
    }
}

/// A pooled read connection; goes back to its pool when dropped.
pub(crate) struct ReadConn<'a> {
    pool: &'a Mutex<Vec<Connection>>,
    conn: Option<Connection>,
}

impl Deref for ReadConn<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("present until drop")
    }
}

impl Drop for ReadConn<'_> {
    fn drop(&mut self) {
        if let (Some(c), Ok(mut idle)) = (self.conn.take(), self.pool.lock()) {
            if idle.len() < MAX_IDLE {
                idle.push(c);
            }
        }
    }
}
