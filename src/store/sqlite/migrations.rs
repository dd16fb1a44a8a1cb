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
    // ACME (issue 7): EAB keys (made for a publisher; the HMAC key is kept to verify bindings),
    // accounts (a JWK, its RFC 7638 thumbprint, the publisher its EAB key gave it), single-use
    // nonces, orders, their authorizations and challenges. Everything expires.
    r#"
CREATE TABLE acme_eab_keys (
    kid        TEXT PRIMARY KEY,
    publisher  TEXT NOT NULL,
    hmac_key   BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    account_id TEXT
) WITHOUT ROWID;
CREATE TABLE acme_accounts (
    id         TEXT PRIMARY KEY,
    directory  TEXT NOT NULL,
    publisher  TEXT NOT NULL,
    jwk        TEXT NOT NULL,
    thumbprint TEXT NOT NULL UNIQUE,
    status     TEXT NOT NULL CHECK (status IN ('valid', 'deactivated', 'revoked')),
    contact    TEXT NOT NULL DEFAULT '[]',
    eab_kid    TEXT,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE acme_nonces (
    nonce      TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX acme_nonces_by_expiry ON acme_nonces (expires_at);
CREATE TABLE acme_orders (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES acme_accounts (id),
    directory   TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'processing', 'valid', 'invalid')),
    identifiers TEXT NOT NULL,
    not_before  INTEGER,
    not_after   INTEGER,
    expires_at  INTEGER NOT NULL,
    error       TEXT,
    cert_serial TEXT,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX acme_orders_by_account ON acme_orders (account_id);
CREATE TABLE acme_authzs (
    id         TEXT PRIMARY KEY,
    order_id   TEXT NOT NULL REFERENCES acme_orders (id),
    account_id TEXT NOT NULL,
    id_type    TEXT NOT NULL,
    id_value   TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'valid', 'invalid', 'deactivated', 'expired', 'revoked')),
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX acme_authzs_by_order ON acme_authzs (order_id);
CREATE TABLE acme_challenges (
    id           TEXT PRIMARY KEY,
    authz_id     TEXT NOT NULL REFERENCES acme_authzs (id),
    kind         TEXT NOT NULL,
    token        TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),
    validated_at INTEGER,
    error        TEXT
) WITHOUT ROWID;
CREATE INDEX acme_challenges_by_authz ON acme_challenges (authz_id);
"#,
    // Station quotas in O(1): `stations.issued` (unused until now) counts the station's live
    // certificates (status intent or issued), kept exact by triggers on every path that inserts
    // a certificate or changes its status, so a provisioning chunk no longer counts rows; and
    // an intent past the quota is refused by the database itself.
    r#"
UPDATE stations SET issued = (SELECT count(*) FROM certificates c
    WHERE c.station = stations.name AND c.status IN ('intent', 'issued'));
CREATE TRIGGER certificates_station_live_insert AFTER INSERT ON certificates
    WHEN NEW.station IS NOT NULL AND NEW.status IN ('intent', 'issued')
BEGIN
    UPDATE stations SET issued = issued + 1 WHERE name = NEW.station;
END;
CREATE TRIGGER certificates_station_live_update AFTER UPDATE OF status, station ON certificates
    WHEN OLD.station IS NOT NULL OR NEW.station IS NOT NULL
BEGIN
    UPDATE stations SET issued = issued - 1
        WHERE name = OLD.station AND OLD.status IN ('intent', 'issued');
    UPDATE stations SET issued = issued + 1
        WHERE name = NEW.station AND NEW.status IN ('intent', 'issued');
END;
-- The quota holds in the database, whatever path or connection records the intent.
CREATE TRIGGER certificates_station_quota BEFORE INSERT ON certificates
    WHEN NEW.station IS NOT NULL AND NEW.status IN ('intent', 'issued')
        AND (SELECT issued >= quota FROM stations WHERE name = NEW.station)
BEGIN
    SELECT RAISE(ABORT, 'hallmark: station quota exceeded');
END;
CREATE TRIGGER certificates_station_live_delete AFTER DELETE ON certificates
    WHEN OLD.station IS NOT NULL AND OLD.status IN ('intent', 'issued')
BEGIN
    UPDATE stations SET issued = issued - 1 WHERE name = OLD.station;
END;
"#,
    // The records API requests read are cached in the server (store/cache.rs); this counter,
    // bumped by any change to them from any process, tells the cache to start over.
    r#"
CREATE TABLE generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO generation (id, n) VALUES (1, 0);
CREATE TRIGGER generation_tokens_insert AFTER INSERT ON tokens BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER generation_tokens_update AFTER UPDATE ON tokens BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER generation_tokens_delete AFTER DELETE ON tokens BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER generation_keys_insert AFTER INSERT ON keys BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER generation_keys_update AFTER UPDATE ON keys BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER generation_keys_delete AFTER DELETE ON keys BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER generation_key_policies_insert AFTER INSERT ON key_policies BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER generation_key_policies_update AFTER UPDATE ON key_policies BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER generation_key_policies_delete AFTER DELETE ON key_policies BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER generation_cas_insert AFTER INSERT ON cas BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER generation_cas_update AFTER UPDATE ON cas BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER generation_cas_delete AFTER DELETE ON cas BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER generation_publishers_insert AFTER INSERT ON publishers BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER generation_publishers_update AFTER UPDATE ON publishers BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER generation_publishers_delete AFTER DELETE ON publishers BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER generation_revocations_insert AFTER INSERT ON revocations BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER generation_revocations_update AFTER UPDATE ON revocations BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER generation_revocations_delete AFTER DELETE ON revocations BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
"#,
    // A time-stamped signature that waited for approvals keeps its RFC 3161 token with the
    // request, so the requester fetches it with the signature (raw signatures carry it beside,
    // not inside, the signature).
    r#"
ALTER TABLE signature_requests ADD COLUMN timestamp_token BLOB;
"#,
    // Signatures and signature requests share one id sequence from now on (a request takes
    // the next signature id, and the signature it ends in gets that id), so
    // `GET /api/v1/signatures/{id}` names either. Future signatures start above every request
    // id given so far, so they never take an older request's number.
    r#"
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'signatures', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'signatures');
UPDATE sqlite_sequence
    SET seq = max(seq, (SELECT coalesce(max(id), 0) FROM signature_requests))
    WHERE name = 'signatures';
"#,
    // Intents a stop left are found at start without reading the whole certificates table:
    // the index holds only the few rows between record and sign.
    r#"
CREATE INDEX IF NOT EXISTS certificates_intents ON certificates (created_at) WHERE status = 'intent';
"#,
    // A request waiting for approvals can be cancelled by its requester or an officer (the CLI
    // does it when interrupted): the `cancelled` state. SQLite cannot change a CHECK in place,
    // so both tables are rebuilt with the same columns, rows and indexes (foreign keys are off
    // while migrations run, and checked before each commits).
    r#"
CREATE TABLE requests_new (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    profile            TEXT NOT NULL,
    publisher          TEXT,
    requester          TEXT NOT NULL,
    csr_der            BLOB NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'issued', 'cancelled')),
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER,
    decided_at         INTEGER,
    device_serial      TEXT,
    cn_name            TEXT,
    approvals_required INTEGER NOT NULL DEFAULT 0,
    certificate_serial TEXT
);
INSERT INTO requests_new (id, profile, publisher, requester, csr_der, status, created_at, expires_at, decided_at, device_serial, cn_name, approvals_required, certificate_serial)
    SELECT id, profile, publisher, requester, csr_der, status, created_at, expires_at, decided_at, device_serial, cn_name, approvals_required, certificate_serial FROM requests;
DROP TABLE requests;
ALTER TABLE requests_new RENAME TO requests;
CREATE INDEX requests_by_status ON requests (status, publisher);
CREATE TABLE signature_requests_new (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    key_label          TEXT NOT NULL,
    publisher          TEXT NOT NULL,
    requester          TEXT NOT NULL,
    digest_algorithm   TEXT NOT NULL,
    digest             TEXT NOT NULL,
    format             TEXT NOT NULL,
    metadata           TEXT,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'signing', 'signed', 'denied', 'expired', 'failed', 'cancelled')),
    approvals_required INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    decided_at         INTEGER,
    signature_id       INTEGER,
    signature          BLOB,
    timestamp_token    BLOB
);
INSERT INTO signature_requests_new (id, key_label, publisher, requester, digest_algorithm, digest, format, metadata, status, approvals_required, created_at, expires_at, decided_at, signature_id, signature, timestamp_token)
    SELECT id, key_label, publisher, requester, digest_algorithm, digest, format, metadata, status, approvals_required, created_at, expires_at, decided_at, signature_id, signature, timestamp_token FROM signature_requests;
DROP TABLE signature_requests;
ALTER TABLE signature_requests_new RENAME TO signature_requests;
CREATE INDEX signature_requests_by_status ON signature_requests (status, publisher);
"#,
    // A CI job that authenticates with an OIDC token is recorded with what it asks for: its
    // identity (issuer, subject, the rule that admitted it, the run's claims) as JSON.
    r#"
ALTER TABLE requests ADD COLUMN identity TEXT;
ALTER TABLE signature_requests ADD COLUMN identity TEXT;
ALTER TABLE signatures ADD COLUMN identity TEXT;
"#,
    // A key's OpenPGP certificate (issue 18): the key store's key as an OpenPGP primary key with
    // its user ID, made once by `hallmark key openpgp` and handed to clients that build packets.
    r#"
CREATE TABLE openpgp_keys (
    key_label   TEXT PRIMARY KEY REFERENCES keys(label),
    fingerprint TEXT NOT NULL UNIQUE,
    user_id     TEXT NOT NULL,
    certificate BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
"#,
    // Webhooks (issue 19): the audit trail is their outbox; a cursor per webhook says what was
    // delivered, and how its next delivery is backing off.
    r#"
CREATE TABLE webhook_cursors (
    name       TEXT PRIMARY KEY,
    last_id    INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
-- Certificates whose coming end was announced (certificate.expiring), once each; the index
-- finds the next ones to end among all but the factory line's devices.
CREATE TABLE expiry_notices (
    serial     TEXT PRIMARY KEY,
    not_after  INTEGER NOT NULL,
    noticed_at INTEGER NOT NULL
);
CREATE INDEX certificates_by_not_after ON certificates (not_after) WHERE station IS NULL;
"#,
    // The web console's sign-ins (issue 19): the SHA-256 of the cookie's opaque id (never the
    // id), the token it was made with (checked again on every request) and its clocks.
    r#"
CREATE TABLE ui_sessions (
    id_hash    TEXT PRIMARY KEY,
    token_id   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX ui_sessions_by_token ON ui_sessions (token_id);
-- A key's signatures by time (the console's Keys page counts them per day).
CREATE INDEX signatures_by_key ON signatures (key_label, created_at);
-- The pending requests, newest first, however many ended ones there are; and the ended ones,
-- however many are pending.
CREATE INDEX signature_requests_pending ON signature_requests (id) WHERE status = 'pending';
CREATE INDEX requests_pending ON requests (id) WHERE status = 'pending';
CREATE INDEX signature_requests_ended ON signature_requests (id) WHERE status != 'pending';
CREATE INDEX requests_decided ON requests (id) WHERE status != 'pending' AND approvals_required > 0;
"#,
    // A person signed in through the console's identity provider: named on every event their
    // session causes, beside the token whose rights they use.
    r#"
ALTER TABLE ui_sessions ADD COLUMN person TEXT;
"#,
];
