//! Versioned schema migrations, applied in order inside one transaction each.
//!
//! The version lives in `PRAGMA user_version`. A migration is never edited once released: add a
//! new one. Version 1 already holds the tables later features fill (revocations, signatures,
//! approvals, stations, tokens) so that each feature adds behaviour, not a schema scramble.

pub const MIGRATIONS: &[&str] = &[
    // 1: the core schema.
    r#"
CREATE TABLE cas (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('root', 'issuing', 'ocsp')),
    parent        TEXT,
    purpose       TEXT,
    key_store     TEXT NOT NULL,
    key_label     TEXT NOT NULL,
    key_algorithm TEXT NOT NULL,
    csr_der       BLOB,
    cert_der      BLOB,
    serial        TEXT,
    subject       TEXT,
    not_before    INTEGER,
    not_after     INTEGER,
    created_at    INTEGER NOT NULL
);
CREATE TABLE publishers (
    id         TEXT PRIMARY KEY,
    org        TEXT NOT NULL,
    country    TEXT NOT NULL,
    state      TEXT,
    locality   TEXT,
    profiles   TEXT NOT NULL,
    disabled   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE requests (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    profile    TEXT NOT NULL,
    publisher  TEXT,
    requester  TEXT NOT NULL,
    csr_der    BLOB NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'issued')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    decided_at INTEGER
);
CREATE TABLE certificates (
    serial       TEXT PRIMARY KEY,
    ca           TEXT NOT NULL,
    profile      TEXT NOT NULL,
    publisher    TEXT,
    request_id   INTEGER REFERENCES requests(id),
    subject      TEXT NOT NULL,
    spki_sha256  TEXT NOT NULL,
    not_before   INTEGER NOT NULL,
    not_after    INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('intent', 'issued', 'abandoned')),
    tbs_der      BLOB NOT NULL,
    cert_der     BLOB,
    created_at   INTEGER NOT NULL,
    issued_at    INTEGER
);
CREATE INDEX certificates_by_publisher ON certificates (publisher, serial);
CREATE INDEX certificates_by_ca ON certificates (ca, serial);
CREATE TABLE revocations (
    serial          TEXT PRIMARY KEY REFERENCES certificates(serial),
    reason          INTEGER NOT NULL,
    revoked_at      INTEGER NOT NULL,
    invalidity_date INTEGER,
    actor           TEXT NOT NULL
);
CREATE TABLE crl_state (
    ca          TEXT PRIMARY KEY,
    number      INTEGER NOT NULL,
    this_update INTEGER NOT NULL
);
CREATE TABLE keys (
    label       TEXT PRIMARY KEY,
    publisher   TEXT NOT NULL REFERENCES publishers(id),
    key_store   TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    uri         TEXT NOT NULL,
    csr_der     BLOB NOT NULL,
    cert_serial TEXT,
    cert_der    BLOB,
    created_at  INTEGER NOT NULL
);
CREATE TABLE signatures (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    key_label        TEXT NOT NULL,
    digest_algorithm TEXT NOT NULL,
    digest           TEXT NOT NULL,
    format           TEXT NOT NULL,
    requester        TEXT NOT NULL,
    approvers        TEXT,
    metadata         TEXT,
    created_at       INTEGER NOT NULL
);
CREATE TABLE approvals (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    request_kind TEXT NOT NULL,
    request_id   INTEGER NOT NULL,
    approver     TEXT NOT NULL,
    decision     TEXT NOT NULL CHECK (decision IN ('approve', 'deny')),
    comment      TEXT,
    created_at   INTEGER NOT NULL,
    UNIQUE (request_kind, request_id, approver)
);
CREATE TABLE stations (
    name           TEXT PRIMARY KEY,
    profile        TEXT NOT NULL,
    serial_pattern TEXT NOT NULL,
    quota          INTEGER NOT NULL,
    issued         INTEGER NOT NULL DEFAULT 0,
    cert_serial    TEXT,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);
CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    publisher  TEXT,
    officer    INTEGER NOT NULL DEFAULT 0,
    scopes     TEXT NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT,
    detail  TEXT
);
"#,
    // The API (issue 3): token identities, and what a pending request needs to issue later.
    r#"
ALTER TABLE tokens ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN device_serial TEXT;
ALTER TABLE requests ADD COLUMN cn_name TEXT;
ALTER TABLE requests ADD COLUMN approvals_required INTEGER NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN certificate_serial TEXT;
CREATE INDEX requests_by_status ON requests (status, publisher);
"#,
    // Revocation publication (issue 4): which CRL holds a revocation, the revision the server
    // watches to republish, and pre-signed OCSP responses with the queue of invalidated ones.
    r#"
ALTER TABLE revocations ADD COLUMN ca TEXT NOT NULL DEFAULT '';
ALTER TABLE revocations ADD COLUMN crl_shard INTEGER;
UPDATE revocations SET ca = COALESCE((SELECT c.ca FROM certificates c WHERE c.serial = revocations.serial), '');
CREATE INDEX revocations_by_ca ON revocations (ca, crl_shard);
CREATE TABLE publication (
    ca       TEXT PRIMARY KEY,
    revision INTEGER NOT NULL
);
CREATE TABLE ocsp_responses (
    serial      TEXT PRIMARY KEY,
    ca          TEXT NOT NULL,
    this_update INTEGER NOT NULL,
    next_update INTEGER NOT NULL,
    body        BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE ocsp_dirty (
    serial TEXT PRIMARY KEY,
    ca     TEXT NOT NULL
) WITHOUT ROWID;
"#,
    // The factory line (issue 6): stations belong to a publisher and may have the right to
    // reprovision; every certificate records the device it is for and the station that asked,
    // and a device never holds two live certificates (a partial unique index).
    r#"
ALTER TABLE stations ADD COLUMN publisher TEXT NOT NULL DEFAULT '';
ALTER TABLE stations ADD COLUMN reprovision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE certificates ADD COLUMN device_serial TEXT;
ALTER TABLE certificates ADD COLUMN station TEXT;
CREATE UNIQUE INDEX certificates_one_per_device ON certificates (profile, device_serial)
    WHERE device_serial IS NOT NULL AND status IN ('intent', 'issued');
CREATE INDEX certificates_by_station ON certificates (station) WHERE station IS NOT NULL;
"#,
    // Signing policy (issue 5): a key's policy (formats, digests, signers, M-of-N approvals, a
    // rate), and signature requests that wait for approvals with the digest they will sign.
    r#"
CREATE TABLE key_policies (
    key_label          TEXT PRIMARY KEY,
    formats            TEXT,
    digests            TEXT,
    signers            TEXT,
    approvals_required INTEGER NOT NULL DEFAULT 0,
    approvers          TEXT,
    rate_per_minute    INTEGER,
    updated_at         INTEGER NOT NULL
);
CREATE TABLE signature_requests (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    key_label          TEXT NOT NULL,
    publisher          TEXT NOT NULL,
    requester          TEXT NOT NULL,
    digest_algorithm   TEXT NOT NULL,
    digest             TEXT NOT NULL,
    format             TEXT NOT NULL,
    metadata           TEXT,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'signing', 'signed', 'denied', 'expired', 'failed')),
    approvals_required INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    decided_at         INTEGER,
    signature_id       INTEGER,
    signature          BLOB
);
CREATE INDEX signature_requests_by_status ON signature_requests (status, publisher);
"#,
];
