//! Read-only connections beside the writer, for the paths that must not wait on it (OCSP, CRLs).
//!
//! The database runs in WAL mode, where readers see the last committed state and never block the
//! writer or wait for it. The writer is one `Mutex<Connection>`; these are separate connections,
//! kept in a small pool: the pool's lock is held only to take or return one, never for a query.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// How many idle read connections are kept.
const MAX_IDLE: usize = 16;

pub(crate) struct Readers {
    path: Option<PathBuf>,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    /// Readers for the database file behind `writer` (none for an in-memory database).
    pub(crate) fn for_writer(writer: &Connection) -> Readers {
        Readers {
            path: writer.path().filter(|p| !p.is_empty()).map(PathBuf::from),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// A read connection, or `None` when the database has no file (then use the writer).
    pub(crate) fn get(&self) -> Result<Option<ReadConn<'_>>, StoreError> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let pooled = self.idle.lock().map_err(|_| StoreError::Poisoned)?.pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(std::time::Duration::from_secs(10))?;
                c.set_prepared_statement_cache_capacity(32);
                // Map the file: a lookup among millions of rows reads pages without a syscall.
                c.pragma_update(None, "mmap_size", 1i64 << 30)?;
                c
            }
        };
        Ok(Some(ReadConn {
            pool: self,
            conn: Some(conn),
        }))
    }
}

/// A pooled read connection; goes back to the pool when dropped.
pub(crate) struct ReadConn<'a> {
    pool: &'a Readers,
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
        if let (Some(c), Ok(mut idle)) = (self.conn.take(), self.pool.idle.lock()) {
            if idle.len() < MAX_IDLE {
                idle.push(c);
            }
        }
    }
}
