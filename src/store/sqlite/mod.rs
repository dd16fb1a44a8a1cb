//! The SQLite backend of the store: one writer connection (WAL, group commit), read-only
//! connections beside it for the publication paths, versioned migrations, and the record cache
//! driven by the database's generation counter.
//!
//! Nothing outside this folder writes SQL or names rusqlite; the rest of hallmark sees the
//! traits of [`crate::store`], which a second database implements the same way.
//!
//! This file holds the connections, group commit, the cache hooks and the helpers every family
//! shares (the audit row, unique-violation checks); each record family's trait impls live in a
//! file of its own beside it (authorities, issuance, audit_trail, requests, signing, ...).

mod acme;
mod audit_trail;
mod authorities;
mod console;
#[cfg(feature = "test-hooks")]
mod hooks;
mod issuance;
mod migrations;
mod readers;
mod requests;
mod revocation;
mod signing;
mod states;
mod stations;
mod tokens;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection};

use crate::clock::SharedClock;
use crate::store::cache::{Cache, State as CacheState};
use crate::store::*;

/// A database error, as the store reports it (no backend type crosses the store's edge).
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::ConstraintViolation
            && (f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE))
}

/// The SQLite store.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Writes waiting for the next group commit (see [`SqliteStore::group_write`]).
    queue: Mutex<GroupQueue>,
    /// Read-only connections for the publication paths (OCSP, CRLs).
    readers: readers::Readers,
    /// Records every API request reads (see `store/cache.rs`).
    cache: Cache,
    /// Where records' times come from (the services' clock, when they opened the store).
    clock: SharedClock,
}

/// Tables whose rows are cached (or decide a cached answer).
const CACHED_TABLES: &[&str] = &[
    "tokens",
    "keys",
    "key_policies",
    "cas",
    "publishers",
    "revocations",
];

/// Hooks the writer connection: a committed change to a cached table is a local change for
/// the cache (its epoch advances).
fn watch(writer: &Connection, epoch: std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let touched = Arc::new(AtomicBool::new(false));
    let t = touched.clone();
    writer.update_hook(Some(
        move |_: rusqlite::hooks::Action, _: &str, table: &str, _: i64| {
            if CACHED_TABLES.contains(&table) {
                t.store(true, Ordering::SeqCst);
            }
        },
    ));
    let t = touched.clone();
    writer.commit_hook(Some(move || {
        if t.swap(false, Ordering::SeqCst) {
            epoch.fetch_add(1, Ordering::SeqCst);
        }
        false // never turn a commit into a rollback
    }));
    writer.rollback_hook(Some(move || touched.store(false, Ordering::SeqCst)));
}

fn audit(
    tx: &Connection,
    at: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO audit (at, actor, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![at, actor, action, subject, detail])?;
    Ok(())
}

/// An audit event from a row of `SELECT id, at, actor, action, subject, detail FROM audit`: the
/// trail's own reads and the console's search share it.
pub(super) fn audit_event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEvent> {
    Ok(AuditEvent {
        id: r.get(0)?,
        at: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        subject: r.get(4)?,
        detail: r.get(5)?,
    })
}

/// The database holds secrets' digests, EAB keys and every record: it is readable by its owner
/// only. A new file is created 0600 before SQLite opens it (SQLite gives its `-wal` and `-shm`
/// files the database file's mode); an existing one with group or other bits, and its `-wal`
/// and `-shm`, are narrowed to 0600.
fn private_files(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |what: &Path, e: std::io::Error| StoreError::Io(format!("{}: {e}", what.display()));
    if !path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| io(path, e))?;
        return Ok(());
    }
    for suffix in ["", "-wal", "-shm"] {
        let f = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        let Ok(meta) = std::fs::metadata(&f) else {
            continue;
        };
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| io(&f, e))?;
        }
    }
    Ok(())
}

/// A write for [`SqliteStore::group_write`].
type GroupWork = Box<dyn FnOnce(&Connection) -> Result<i64, StoreError> + Send>;

struct GroupJob {
    work: GroupWork,
    reply: std::sync::mpsc::Sender<GroupReply>,
}

/// What a group-commit caller is woken with: its result, or the lead of the next commit.
enum GroupReply {
    Done(Result<i64, StoreError>),
    Lead,
}

/// Jobs waiting for the next group commit, and whether some caller is leading.
#[derive(Default)]
struct GroupQueue {
    jobs: Vec<GroupJob>,
    leading: bool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        private_files(path)?;
        let conn = Connection::open(path)?;
        Self::setup(conn)
    }

    /// Opens an existing database; fails if the file does not exist.
    pub fn open_existing(path: &Path) -> Result<SqliteStore, StoreError> {
        if !path.exists() {
            return Err(StoreError::NotFound(format!("database {}", path.display())));
        }
        Self::open(path)
    }

    fn setup(mut conn: Connection) -> Result<SqliteStore, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Statement and savepoint journals in memory, not in temporary files.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // The writer's page cache holds the hot index pages of a large batch (serials are random,
        // so their index inserts land all over); 64 MiB keeps a 200,000-device batch's indexes
        // in memory, and the server stays near 100 MiB resident over a million devices.
        conn.pragma_update(None, "cache_size", -65536)?;
        // Checkpoint the WAL every ~16 MiB instead of every 4 MiB: a page rewritten many times
        // by consecutive batches (a growing B-tree's right edge) is copied back once.
        conn.pragma_update(None, "wal_autocheckpoint", 4000)?;
        // Off while migrations run (the bundled SQLite turns them on by default), so a migration
        // may rebuild a table that others refer to; on again below.
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let target = migrations::MIGRATIONS.len() as i64;
        if version > target {
            return Err(StoreError::Schema(format!(
                "database schema version {version} is newer than this hallmark ({target})"
            )));
        }
        for (i, sql) in migrations::MIGRATIONS
            .iter()
            .enumerate()
            .skip(version as usize)
        {
            // The references are checked before a migration commits.
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute_batch(sql)?;
            let dangling: i64 =
                tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                    r.get(0)
                })?;
            if dangling > 0 {
                return Err(StoreError::Schema(format!(
                    "migration {} would leave {dangling} dangling reference(s); nothing was changed",
                    i + 1
                )));
            }
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let cache = Cache::default();
        watch(&conn, cache.epoch());
        Ok(SqliteStore {
            readers: readers::Readers::for_writer(&conn),
            queue: Mutex::new(GroupQueue::default()),
            conn: Mutex::new(conn),
            cache,
            clock: crate::clock::system(),
        })
    }

    /// The store on `clock`: every time it records (created, decided, audit) is the clock's.
    pub fn with_clock(mut self, clock: SharedClock) -> SqliteStore {
        self.clock = clock;
        self
    }

    /// Now, on the store's clock.
    fn now(&self) -> i64 {
        self.clock.now()
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }

    fn generation(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            Ok(c.prepare_cached("SELECT n FROM generation WHERE id = 1")?
                .query_row([], |r| r.get(0))?)
        })
    }

    /// A record through the cache (see `cache.rs`): `load` runs on a miss.
    pub(crate) fn cached<T: Clone>(
        &self,
        pick: impl Fn(&mut CacheState) -> &mut HashMap<String, Option<T>>,
        key: &str,
        load: impl FnOnce() -> Result<Option<T>, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        self.cache.get(pick, key, || self.generation(), load)
    }

    /// Runs `work` inside the next group commit and waits until that commit is durable.
    ///
    /// Writers queue their work. One of them at a time leads: it takes every queued job, runs
    /// them in one transaction, each inside its own savepoint (a failing job rolls back alone),
    /// commits once, and hands each caller its result; if more jobs queued meanwhile, it hands
    /// the lead to the first of their callers. Under concurrency one fsync serves many callers
    /// and a caller wakes once, with its answer or with the lead; alone, a caller commits its
    /// own job at once.
    fn group_write(&self, work: GroupWork) -> Result<i64, StoreError> {
        let (reply, result) = std::sync::mpsc::channel();
        let lead = {
            let mut q = self.queue.lock().map_err(|_| StoreError::Poisoned)?;
            q.jobs.push(GroupJob { work, reply });
            !std::mem::replace(&mut q.leading, true)
        };
        if lead {
            self.lead_group_commit();
        }
        loop {
            match result.recv() {
                Ok(GroupReply::Done(r)) => return r,
                Ok(GroupReply::Lead) => self.lead_group_commit(),
                Err(_) => {
                    return Err(StoreError::WriteFailed(
                        "the group commit dropped this write".into(),
                    ))
                }
            }
        }
    }

    /// One round of the group commit's leader: commits the queued jobs, answers them, then
    /// passes the lead on (or gives it up when nothing is queued).
    fn lead_group_commit(&self) {
        /// Passes the lead on when the round ends, also if a job panicked: a lead never lost
        /// is what keeps later writers from waiting for ever.
        struct PassLead<'a>(&'a Mutex<GroupQueue>);
        impl Drop for PassLead<'_> {
            fn drop(&mut self) {
                let Ok(mut q) = self.0.lock() else { return };
                // The first waiting caller leads next; a send fails only if that caller is
                // gone, then its job is dropped and the next one is tried.
                while let Some(next) = q.jobs.first() {
                    if next.reply.send(GroupReply::Lead).is_ok() {
                        return;
                    }
                    q.jobs.remove(0);
                }
                q.leading = false;
            }
        }
        let _pass = PassLead(&self.queue);
        let jobs = match self.queue.lock() {
            Ok(mut q) => std::mem::take(&mut q.jobs),
            // A poisoned queue: every caller's channel is dropped with it and they see an error.
            Err(_) => return,
        };
        self.commit_group(jobs);
    }

    /// Runs `jobs` in one transaction and answers each caller once it is committed.
    fn commit_group(&self, jobs: Vec<GroupJob>) {
        let fail_all = |jobs: Vec<GroupJob>, e: StoreError| {
            let why = e.to_string();
            for job in jobs {
                let _ = job
                    .reply
                    .send(GroupReply::Done(Err(StoreError::WriteFailed(why.clone()))));
            }
        };
        let mut conn = match self.conn() {
            Ok(c) => c,
            Err(e) => return fail_all(jobs, e),
        };
        let mut tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        {
            Ok(t) => t,
            Err(e) => return fail_all(jobs, e.into()),
        };
        let mut outcomes = Vec::with_capacity(jobs.len());
        for job in jobs {
            let r = (|| {
                let sp = tx.savepoint()?;
                let r = (job.work)(&sp)?;
                sp.commit()?;
                Ok(r)
            })();
            outcomes.push((job.reply, r));
        }
        match tx.commit() {
            Ok(()) => {
                for (reply, r) in outcomes {
                    let _ = reply.send(GroupReply::Done(r));
                }
            }
            Err(e) => {
                for (reply, _) in outcomes {
                    let _ = reply.send(GroupReply::Done(Err(StoreError::WriteFailed(
                        e.to_string(),
                    ))));
                }
            }
        }
    }
}

impl Maintenance for SqliteStore {
    fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()?
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn()?;
        let mut problems = Vec::new();
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        for row in stmt.query_map([], |r| r.get::<_, String>(0))? {
            let row = row?;
            if row != "ok" {
                problems.push(row);
            }
        }
        let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
        for row in stmt.query_map([], |r| r.get::<_, String>(0))? {
            problems.push(format!("foreign key violation in table {}", row?));
        }
        let intents: i64 = conn.query_row(
            "SELECT count(*) FROM certificates WHERE status = 'intent' AND created_at < ?1",
            params![self.now() - 300],
            |r| r.get(0),
        )?;
        if intents > 0 {
            problems.push(format!(
                "{intents} certificate intent(s) older than 5 minutes were never completed (a stop between record and sign): start `hallmark serve`, which finishes them before it answers requests"
            ));
        }
        // The factory's two rules, checked on the records themselves (the index and triggers
        // that keep them are the backend's; this says whether they held).
        let doubled: i64 = conn.query_row(
            "SELECT count(*) FROM (SELECT 1 FROM certificates WHERE device_serial IS NOT NULL AND status IN ('intent', 'issued') GROUP BY profile, device_serial HAVING count(*) > 1)",
            [],
            |r| r.get(0),
        )?;
        if doubled > 0 {
            problems.push(format!(
                "{doubled} device(s) hold more than one live certificate of a profile"
            ));
        }
        let mut stmt = conn.prepare(
            "SELECT s.name, s.issued, (SELECT count(*) FROM certificates c WHERE c.station = s.name AND c.status IN ('intent', 'issued')) AS live FROM stations s WHERE s.issued != live",
        )?;
        for row in stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })? {
            let (name, counted, live) = row?;
            problems.push(format!(
                "station '{name}' counts {counted} live certificate(s) but holds {live}"
            ));
        }
        Ok(problems)
    }

    fn sync_cache(&self) -> Result<(), StoreError> {
        self.cache.sync(|| self.generation())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An intent with placeholder contents and the given serial.
    fn test_intent(serial: &str) -> Intent {
        Intent {
            serial: serial.into(),
            ca: "x".into(),
            profile: "p".into(),
            publisher: None,
            requester: "t".into(),
            csr_der: vec![1],
            subject: "CN=x".into(),
            spki_sha256: "00".into(),
            not_before: 0,
            not_after: 1,
            tbs_der: vec![2],
            request_id: None,
            device_serial: None,
            station: None,
            identity: None,
        }
    }

    #[test]
    fn migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(
            s.schema_version().unwrap(),
            migrations::MIGRATIONS.len() as i64
        );
        drop(s);
        let s = SqliteStore::open_existing(&path).unwrap();
        assert!(s.integrity_check().unwrap().is_empty());
    }

    /// A database of the previous schema, with requests (one a certificate points to) and a
    /// signature request, is migrated without losing a row or a reference, and the rebuilt
    /// tables take the `cancelled` state.
    #[test]
    fn the_cancelled_state_migration_keeps_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let before = migrations::MIGRATIONS.len() - 1;
        {
            let mut c = rusqlite::Connection::open(&path).unwrap();
            for sql in &migrations::MIGRATIONS[..before] {
                let tx = c.transaction().unwrap();
                tx.execute_batch(sql).unwrap();
                tx.commit().unwrap();
            }
            c.pragma_update(None, "user_version", before as i64)
                .unwrap();
            c.execute_batch(
                "INSERT INTO requests (id, profile, publisher, requester, csr_der, status, created_at, approvals_required, certificate_serial)
                     VALUES (7, 'code-signing', 'acme', 'ci', x'00', 'issued', 1, 1, 'aa'), (8, 'code-signing', 'acme', 'ci', x'00', 'pending', 2, 2, NULL);
                 INSERT INTO certificates (serial, ca, profile, publisher, request_id, subject, spki_sha256, not_before, not_after, status, tbs_der, created_at)
                     VALUES ('aa', 'code-signing-ca', 'code-signing', 'acme', 7, 'CN=x', 'ff', 1, 2, 'issued', x'00', 1);
                 INSERT INTO signature_requests (id, key_label, publisher, requester, digest_algorithm, digest, format, status, approvals_required, created_at, expires_at)
                     VALUES (5, 'k', 'acme', 'ci', 'sha256', 'ab', 'raw', 'pending', 1, 1, 9999999999);",
            )
            .unwrap();
        }
        let s = SqliteStore::open_existing(&path).unwrap();
        assert_eq!(
            s.schema_version().unwrap(),
            migrations::MIGRATIONS.len() as i64
        );
        assert_eq!(
            s.get_request(7).unwrap().unwrap().status,
            RequestStatus::Issued
        );
        assert_eq!(
            s.get_certificate("aa").unwrap().unwrap().request_id,
            Some(7)
        );
        assert!(s.cancel_request(8, "test").unwrap());
        assert_eq!(
            s.get_request(8).unwrap().unwrap().status,
            RequestStatus::Cancelled
        );
        assert!(!s.cancel_request(7, "test").unwrap(), "only a pending one");
        assert!(s
            .finish_signature_request(
                5,
                SignatureRequestStatus::Pending,
                SignatureRequestStatus::Cancelled,
                None,
                "test"
            )
            .unwrap());
        assert!(s.integrity_check().unwrap().is_empty());
        let fk: i64 = s
            .conn()
            .unwrap()
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(fk, 0);
        // New requests continue the id sequence.
        let id = s
            .insert_pending_request(
                &NewRequest {
                    profile: "code-signing".into(),
                    publisher: "acme".into(),
                    requester: "ci".into(),
                    csr_der: vec![0],
                    device_serial: None,
                    cn_name: None,
                    approvals_required: 1,
                    expires_at: 9_999_999_999,
                    identity: None,
                },
                "test",
            )
            .unwrap();
        assert_eq!(id, 9);
    }

    #[test]
    fn signature_requests_and_signatures_share_one_id_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
        let sig = |id: i64| SignatureRecord {
            id,
            key_label: "k".into(),
            digest_algorithm: "sha256".into(),
            digest: "00".repeat(32),
            format: "raw".into(),
            requester: "ci".into(),
            approvers: None,
            metadata: None,
            created_at: 0,
            identity: None,
        };
        let request = SignatureRequestRecord {
            id: 0,
            key_label: "k".into(),
            publisher: "acme".into(),
            requester: "ci".into(),
            digest_algorithm: "sha256".into(),
            digest: "00".repeat(32),
            format: "raw".into(),
            metadata: None,
            status: SignatureRequestStatus::Pending,
            approvals_required: 1,
            created_at: 0,
            expires_at: i64::MAX,
            decided_at: None,
            signature_id: None,
            signature: None,
            timestamp_token: None,
            identity: None,
        };
        // A request reserves the next number even before any signature exists.
        let r1 = s.insert_signature_request(&request, "t").unwrap();
        let a = s.insert_signature(&sig(0), "t").unwrap();
        let r2 = s.insert_signature_request(&request, "t").unwrap();
        let b = s.insert_signature(&sig(0), "t").unwrap();
        assert_eq!((r1, a, r2, b), (1, 2, 3, 4));
        // The signature a request ends in takes the request's number.
        assert_eq!(s.insert_signature(&sig(r2), "t").unwrap(), r2);
        assert_eq!(s.insert_signature(&sig(r1), "t").unwrap(), r1);
        // A number a signature already holds (a request from before ids were shared) is not
        // taken twice: the signature gets the next one.
        assert_eq!(s.insert_signature(&sig(b), "t").unwrap(), 5);
        assert_eq!(s.count_signatures().unwrap(), 5);

        // A database from before ids were shared, with request numbers above the signatures':
        // once migrated, new signatures start above every request number. (Rewound to that
        // version: the columns later migrations add are taken out again.)
        let path = dir.path().join("old.sqlite");
        drop(SqliteStore::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO signature_requests (id, key_label, publisher, requester, digest_algorithm, digest, format, status, approvals_required, created_at, expires_at)
                 VALUES (40, 'k', 'acme', 'ci', 'sha256', '00', 'raw', 'pending', 1, 0, 0);
             INSERT INTO signatures (key_label, digest_algorithm, digest, format, requester, created_at)
                 VALUES ('k', 'sha256', '00', 'raw', 'ci', 0);
             UPDATE sqlite_sequence SET seq = 1 WHERE name = 'signatures';
             ALTER TABLE signatures DROP COLUMN identity;
             DROP TABLE openpgp_keys;
             DROP TABLE webhook_cursors;
             DROP TABLE expiry_notices;
             DROP INDEX certificates_by_not_after;
             DROP TABLE ui_sessions;
             DROP INDEX signatures_by_key;
             DROP INDEX signature_requests_pending;
             DROP INDEX requests_pending;
             DROP INDEX signature_requests_ended;
             DROP INDEX requests_decided;
             PRAGMA user_version = {};",
            migrations::MIGRATIONS
                .iter()
                .position(|m| m.contains("UPDATE sqlite_sequence"))
                .unwrap()
        ))
        .unwrap();
        drop(conn);
        let s = SqliteStore::open_existing(&path).unwrap();
        assert_eq!(s.insert_signature(&sig(0), "t").unwrap(), 41);
    }

    #[test]
    fn group_commit_answers_every_writer_once_under_load() {
        // 24 threads x 40 writes: the lead passes between callers many times; every write
        // gets its own row id, and every row is there afterwards.
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(SqliteStore::open(&dir.path().join("db.sqlite")).unwrap());
        let threads: Vec<_> = (0..24)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    (0..40)
                        .map(|i| {
                            let rec = SignatureRecord {
                                id: 0,
                                key_label: "k".into(),
                                digest_algorithm: "sha256".into(),
                                digest: format!("{t:04x}{i:04x}"),
                                format: "raw".into(),
                                requester: "t".into(),
                                approvers: None,
                                metadata: None,
                                created_at: 0,
                                identity: None,
                            };
                            s.insert_signature(&rec, "test").unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut ids: Vec<i64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 24 * 40);
        assert_eq!(s.count_signatures().unwrap(), 24 * 40);
    }

    #[test]
    fn group_commit_isolates_a_failing_write() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(SqliteStore::open(&dir.path().join("db.sqlite")).unwrap());
        let intent = test_intent;
        s.record_intent(&intent("dup")).unwrap();
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let s = s.clone();
                let serial = if i == 7 {
                    "dup".to_string()
                } else {
                    format!("s{i}")
                };
                std::thread::spawn(move || (i, s.record_intent(&intent(&serial))))
            })
            .collect();
        for t in threads {
            let (i, r) = t.join().unwrap();
            if i == 7 {
                assert!(matches!(r, Err(StoreError::Conflict(_))));
            } else {
                r.unwrap();
            }
        }
        assert_eq!(s.count_certificates(Some(CertStatus::Intent)).unwrap(), 16);
        // Nothing of the failed write remains: 16 requests, not 17.
        let n: i64 = s
            .conn()
            .unwrap()
            .query_row("SELECT count(*) FROM requests", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 16);
    }

    #[test]
    fn duplicate_serial_is_a_conflict_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
        let i = test_intent("01");
        s.record_intent(&i).unwrap();
        assert!(matches!(s.record_intent(&i), Err(StoreError::Conflict(_))));
        assert_eq!(s.count_certificates(None).unwrap(), 1);
        let audits = s.audit_events(10).unwrap();
        assert_eq!(audits.len(), 1);
    }

    #[test]
    fn an_approved_request_takes_one_certificate_and_a_decided_one_no_decision() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
        let id = s
            .insert_pending_request(
                &NewRequest {
                    profile: "p".into(),
                    publisher: "acme".into(),
                    requester: "ci".into(),
                    csr_der: vec![1],
                    device_serial: None,
                    cn_name: None,
                    approvals_required: 2,
                    expires_at: s.now() + 60,
                    identity: None,
                },
                "ci",
            )
            .unwrap();
        let for_request = |serial: &str| Intent {
            request_id: Some(id),
            ..test_intent(serial)
        };
        // Pending: no certificate may be recorded for it yet.
        assert!(matches!(
            s.record_intent(&for_request("01")),
            Err(StoreError::Decided(_))
        ));
        let d = s.record_decision(id, "a", true, None, "a").unwrap();
        assert_eq!((d.approvals, d.claimed), (1, false));
        let d = s.record_decision(id, "b", true, None, "b").unwrap();
        assert_eq!((d.approvals, d.claimed), (2, true));
        assert_eq!(
            s.get_request(id).unwrap().unwrap().status,
            RequestStatus::Approved
        );
        // Claimed: later decisions are refused, whatever they say.
        for (who, approve) in [("c", true), ("c", false)] {
            assert!(matches!(
                s.record_decision(id, who, approve, None, who),
                Err(StoreError::Decided(_))
            ));
        }
        assert_eq!(s.claimed_requests().unwrap().len(), 1);
        // One certificate slot: a second intent is refused, an abandoned one frees it.
        s.record_intent(&for_request("02")).unwrap();
        assert!(matches!(
            s.record_intent(&for_request("03")),
            Err(StoreError::Decided(_))
        ));
        s.abandon_intent("02", "test", "t").unwrap();
        s.record_intent(&for_request("04")).unwrap();
        s.complete_issuance("04", b"cert", "t").unwrap();
        assert!(s
            .finish_request(id, RequestStatus::Issued, None, "t")
            .unwrap());
        let r = s.get_request(id).unwrap().unwrap();
        assert_eq!(
            (r.status.as_str(), r.certificate_serial.as_deref()),
            ("issued", Some("04"))
        );
        assert!(s.claimed_requests().unwrap().is_empty());
        assert!(!s
            .finish_request(id, RequestStatus::Denied, None, "t")
            .unwrap());
    }
}
