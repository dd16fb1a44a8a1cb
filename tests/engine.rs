//! The library API directly: two-phase records, audit trail, batch issuance, concurrency.

mod common;

use std::sync::Arc;

use common::*;
use hallmark::engine::Hallmark;
use hallmark::policy::IssueRequest;
use hallmark::store::CertStatus;

fn csr(ca: &TestCa, name: &str) -> Vec<u8> {
    let p = make_csr(
        ca.dir.path(),
        name,
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/O=Acme Corp",
        &[],
    );
    std::fs::read(p).expect("csr")
}

fn request(csr: Vec<u8>) -> IssueRequest {
    IssueRequest {
        profile: "code-signing".into(),
        publisher: "acme".into(),
        csr,
        requester: "test".into(),
        device_serial: None,
        name: None,
    }
}

#[test]
fn issuance_is_recorded_before_it_is_returned() {
    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    let hm = ca.open();
    // init issued one certificate already: the API listener's.
    let base = hm
        .store
        .count_certificates(Some(CertStatus::Issued))
        .expect("count");
    let issued = hm.issuance.issue(&request(csr(&ca, "a"))).expect("issue");
    let rec = hm
        .store
        .get_certificate(&issued.serial)
        .expect("get")
        .expect("recorded");
    assert_eq!(rec.status, hallmark::store::CertStatus::Issued);
    assert_eq!(rec.cert_der.as_deref(), Some(issued.cert_der.as_slice()));
    assert!(rec.request_id.is_some());
    let actions: Vec<String> = hm
        .store
        .audit_events(100)
        .expect("audit")
        .into_iter()
        .rev()
        .map(|e| e.action)
        .collect();
    let i = actions
        .iter()
        .position(|a| a == "certificate.intent")
        .expect("intent audited");
    let j = actions
        .iter()
        .position(|a| a == "certificate.issued")
        .expect("issued audited");
    assert!(i < j, "intent before issue: {actions:?}");
    assert!(actions.contains(&"publisher.added".to_string()));
    assert!(actions.contains(&"ca.created".to_string()));
    assert_eq!(issued.chain.len(), 1);
    let checks = hm.doctor();
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    // The shipped tls-server profile has no dns_suffix: doctor says what its ACME directory
    // issues for.
    let acme = checks
        .iter()
        .find(|c| c.name == "ACME /acme/tls-server/")
        .expect("an ACME check");
    assert!(
        acme.detail.contains("any DNS name") && acme.detail.contains("dns_suffix"),
        "{acme:?}"
    );

    // Batch issuance: one bad request does not stop the others, records match answers.
    let mut reqs: Vec<IssueRequest> = (0..20)
        .map(|i| request(csr(&ca, &format!("b{i}"))))
        .collect();
    reqs[7].csr = b"garbage".to_vec();
    let results = hm.issuance.issue_batch(&reqs);
    assert_eq!(results.len(), 20);
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(c) => {
                assert_ne!(i, 7);
                let rec = hm
                    .store
                    .get_certificate(&c.serial)
                    .expect("get")
                    .expect("recorded");
                assert_eq!(rec.cert_der.as_deref(), Some(c.cert_der.as_slice()));
            }
            Err(e) => {
                assert_eq!(i, 7);
                assert_eq!(e.kind(), "bad-csr");
            }
        }
    }
    assert_eq!(
        hm.store
            .count_certificates(Some(CertStatus::Issued))
            .expect("count"),
        base + 20
    );
}

#[test]
fn concurrent_issuance_gives_unique_recorded_serials() {
    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    let hm = Arc::new(ca.open());
    let base = hm
        .store
        .count_certificates(Some(CertStatus::Issued))
        .expect("count");
    let csrs: Vec<Vec<u8>> = (0..4).map(|i| csr(&ca, &format!("c{i}"))).collect();
    let threads: Vec<_> = csrs
        .into_iter()
        .map(|c| {
            let hm = hm.clone();
            std::thread::spawn(move || {
                (0..25)
                    .map(|_| hm.issuance.issue(&request(c.clone())).map(|i| i.serial))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut serials = std::collections::HashSet::new();
    for t in threads {
        for r in t.join().expect("thread") {
            assert!(serials.insert(r.expect("issue")), "duplicate serial");
        }
    }
    assert_eq!(serials.len(), 100);
    assert_eq!(
        hm.store
            .count_certificates(Some(CertStatus::Issued))
            .expect("count"),
        base + 100
    );
}

fn device_line(serial: &str) -> String {
    use base64::Engine;
    let csr = device_csr(serial);
    serde_json::json!({
        "device_serial": serial,
        "csr": base64::engine::general_purpose::STANDARD.encode(csr),
    })
    .to_string()
}

/// The quota is the database's: two streams of one station racing for the last places get
/// exactly the quota between them, and the counter the quota reads stays equal to the rows.
#[test]
fn a_station_quota_holds_across_concurrent_streams() {
    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    let out = ca.path("stations").display().to_string();
    ca.hm(&[
        "station",
        "add",
        "q-line",
        "--profile",
        "iot-device",
        "--serial-pattern",
        "^Q-[0-9]{4}$",
        "--quota",
        "700",
        "--out-dir",
        &out,
    ]);
    let hm = Arc::new(ca.open());
    let station = hm
        .store
        .get_station("q-line")
        .expect("read")
        .expect("station");
    // Two streams of 600 devices each, in chunks of 100 (several chunks in flight each).
    let streams: Vec<Vec<Vec<String>>> = (0..2)
        .map(|s| {
            (0..6)
                .map(|c| {
                    (0..100)
                        .map(|i| device_line(&format!("Q-{}{}{:02}", s, c, i)))
                        .collect()
                })
                .collect()
        })
        .collect();
    let handles: Vec<_> = streams
        .into_iter()
        .map(|chunks| {
            let (hm, station) = (hm.clone(), station.clone());
            std::thread::spawn(move || {
                let mut chunks = chunks.into_iter();
                let mut answers = Vec::new();
                hm.provisioning.provision_stream(
                    &station,
                    |_| match chunks.next() {
                        Some(c) => hallmark::provision::Lines::Chunk(c),
                        None => hallmark::provision::Lines::End,
                    },
                    |a| {
                        answers.extend(a);
                        true
                    },
                );
                answers
            })
        })
        .collect();
    let mut issued = 0;
    let mut over = 0;
    for h in handles {
        let answers = h.join().expect("stream");
        assert_eq!(answers.len(), 600);
        for a in answers {
            match a {
                hallmark::provision::ProvisionAnswer::Issued { .. } => issued += 1,
                hallmark::provision::ProvisionAnswer::Refused { kind, .. } => {
                    assert_eq!(kind, "quota-exceeded");
                    over += 1;
                }
            }
        }
    }
    assert_eq!((issued, over), (700, 500));
    assert_eq!(hm.store.station_issued_count("q-line").expect("count"), 700);
}

/// The record cache (store/cache.rs) never lets a revoked token in: a revocation through this
/// process's store, or by another process (a second `Hallmark` on the same database, as
/// `hallmark token revoke` is), is seen by the next request.
#[test]
fn cached_tokens_follow_revocations_from_this_and_other_processes() {
    use hallmark::policy::auth::Scope;
    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    let server = ca.open();
    let cli = ca.open();
    let bearer = |t: &str| Some(t.to_string());
    let make = |name: &str| {
        let (rec, secret) = server
            .tokens
            .create_token(
                Some("acme"),
                Some(name),
                &[Scope::Sign],
                false,
                None,
                "test",
            )
            .expect("token");
        (rec.id, secret)
    };

    // Revoked by another process: refused by the next request.
    let (id, secret) = make("other-process");
    assert!(server
        .tokens
        .authenticate(bearer(&secret).as_deref(), None)
        .is_ok());
    assert!(server
        .tokens
        .authenticate(bearer(&secret).as_deref(), None)
        .is_ok()); // cached
    cli.store.revoke_token(&id, 1, "test").expect("revoke");
    let e = server
        .tokens
        .authenticate(bearer(&secret).as_deref(), None)
        .expect_err("revoked elsewhere");
    assert_eq!(e.kind(), "unauthorized");

    // Revoked through this process's own store: refused at once.
    let (id, secret) = make("this-process");
    assert!(server
        .tokens
        .authenticate(bearer(&secret).as_deref(), None)
        .is_ok());
    server.store.revoke_token(&id, 1, "test").expect("revoke");
    let e = server
        .tokens
        .authenticate(bearer(&secret).as_deref(), None)
        .expect_err("revoked here");
    assert_eq!(e.kind(), "unauthorized");
}

/// A signature request that a stop left claimed (`signing`: quorum reached, never finished) is
/// signed when the server starts again, and only once.
#[test]
fn a_claimed_signature_request_is_finished_at_start() {
    use hallmark::policy::auth::Scope;
    use hallmark::signing::{SignRequest, SignSubmitted};
    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    ca.hm(&[
        "key",
        "create",
        "--publisher",
        "acme",
        "--label",
        "fw",
        "--algorithm",
        "p256",
    ]);
    ca.hm(&[
        "key",
        "policy",
        "fw",
        "--approvals",
        "1",
        "--approvers",
        "alice,bob",
    ]);
    let hm = ca.open();
    let (_, secret) = hm
        .tokens
        .create_token(
            Some("acme"),
            Some("ci"),
            &[Scope::Sign],
            false,
            None,
            "test",
        )
        .expect("token");
    let cred = hm
        .tokens
        .authenticate(Some(&secret), None)
        .expect("credential");
    let req = SignRequest {
        key: "fw".into(),
        digest: "ab".repeat(32),
        digest_algorithm: "sha256".into(),
        format: "raw".into(),
        metadata: None,
        timestamp: false,
        content_type: None,
        content: None,
        openpgp_trailer: None,
    };
    let id = match hm
        .signing
        .submit_signature(&req, &cred, true)
        .expect("submit")
    {
        SignSubmitted::Pending(r) => r.id,
        SignSubmitted::Signed(_) => panic!("the policy asks for an approval"),
    };
    let signatures = hm
        .store
        .list_signatures(Some("fw"), None, None, 10)
        .expect("list")
        .len();
    // The claim an approval makes, then a stop before the signature is made.
    ca.store()
        .force_signature_request_status(id, hallmark::store::SignatureRequestStatus::Signing)
        .expect("claim");
    drop(hm);

    let hm = ca.open();
    assert_eq!(hm.signing.recover_signature_requests().expect("recover"), 1);
    let r = hm
        .store
        .get_signature_request(id)
        .expect("read")
        .expect("request");
    assert_eq!(r.status, hallmark::store::SignatureRequestStatus::Signed);
    assert!(r.signature.is_some_and(|s| !s.is_empty()));
    assert_eq!(
        hm.store
            .list_signatures(Some("fw"), None, None, 10)
            .expect("list")
            .len(),
        signatures + 1
    );
    // Nothing is left to finish: a second start signs nothing again.
    assert_eq!(hm.signing.recover_signature_requests().expect("recover"), 0);
}

/// A certificate request whose last approval claimed it, then a stop before it issued: the
/// next start issues it (policy runs again) and ends it `issued`, once.
#[test]
fn a_claimed_certificate_request_is_issued_at_start() {
    use hallmark::policy::auth::Scope;
    use hallmark::requests::Submitted;
    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    std::fs::write(
        ca.dir.path().join("ca/ca-profiles/release-signing.toml"),
        RELEASE_PROFILE,
    )
    .expect("profile");
    let hm = ca.open();
    hm.set_publisher_profiles(
        "acme",
        &["code-signing".into(), "release-signing".into()],
        "test",
    )
    .expect("profiles");
    let (_, secret) = hm
        .tokens
        .create_token(
            Some("acme"),
            Some("ci"),
            &[Scope::Issue],
            false,
            None,
            "test",
        )
        .expect("token");
    let cred = hm
        .tokens
        .authenticate(Some(&secret), None)
        .expect("credential");
    let req = IssueRequest {
        profile: "release-signing".into(),
        ..request(csr(&ca, "claimed"))
    };
    let id = match hm.requests.submit(req, &cred).expect("submit") {
        Submitted::Pending(r) => r.id,
        Submitted::Issued(_) => panic!("the profile asks for approvals"),
    };
    // Both approvals recorded, the second claiming the request; then the process stops.
    for who in ["release-manager", "security-lead"] {
        hm.store
            .record_decision(id, who, true, None, who)
            .expect("decision");
    }
    let issued = hm
        .store
        .count_certificates(Some(CertStatus::Issued))
        .expect("count");
    drop(hm);

    let hm = ca.open();
    let r = hm.recover().expect("recover");
    assert_eq!(r.requests, 1, "{r}");
    let rec = hm.store.get_request(id).expect("read").expect("request");
    assert_eq!(rec.status, hallmark::store::RequestStatus::Issued);
    let serial = rec.certificate_serial.expect("serial");
    let cert = hm
        .store
        .get_certificate(&serial)
        .expect("read")
        .expect("cert");
    assert_eq!(
        (cert.status.as_str(), cert.request_id),
        ("issued", Some(id))
    );
    assert_eq!(
        hm.store
            .count_certificates(Some(CertStatus::Issued))
            .expect("count"),
        issued + 1
    );
    // Nothing is left: a second start issues nothing.
    assert!(hm.recover().expect("recover").is_empty());
}

/// `sign_threads` on a PKCS#11 key store (for a network HSM that signs in parallel): a batch
/// asks the token for that many signatures at once — here 8, more than the cores — and every
/// certificate is still issued once and recorded as answered. Out-of-range values are refused.
#[test]
fn a_batch_signs_with_as_many_token_sessions_as_configured() {
    let ca = TestCa::new(Keys::SoftHsm);
    ca.add_acme();
    let original = std::fs::read_to_string(ca.config()).expect("config");
    assert!(original.contains("token_label = "), "{original}");
    let with = |n: &str| {
        original.replacen(
            "token_label = ",
            &format!("sign_threads = {n}\ntoken_label = "),
            1,
        )
    };
    std::fs::write(ca.config(), with("0")).expect("write");
    let err = Hallmark::open(&ca.config())
        .err()
        .expect("sign_threads = 0 is refused");
    assert!(
        err.to_string().contains("sign_threads must be 1 to 256"),
        "{err}"
    );
    std::fs::write(ca.config(), with("8")).expect("write");
    let hm = ca.open();
    let base = hm
        .store
        .count_certificates(Some(CertStatus::Issued))
        .expect("count");
    let one = csr(&ca, "threads");
    let reqs: Vec<IssueRequest> = (0..300).map(|_| request(one.clone())).collect();
    let results = hm.issuance.issue_batch(&reqs);
    let mut serials = std::collections::HashSet::new();
    for r in &results {
        let c = r.as_ref().expect("issued");
        assert!(
            serials.insert(c.serial.clone()),
            "serial {} twice",
            c.serial
        );
        let rec = hm
            .store
            .get_certificate(&c.serial)
            .expect("get")
            .expect("recorded");
        assert_eq!(rec.cert_der.as_deref(), Some(c.cert_der.as_slice()));
    }
    assert_eq!(serials.len(), 300);
    assert_eq!(
        hm.store
            .count_certificates(Some(CertStatus::Issued))
            .expect("count"),
        base + 300
    );
}

/// A revoked OCSP responder certificate is replaced at once (a new certificate for the
/// responder), so no response is signed under the revoked one.
#[test]
fn a_revoked_responder_certificate_is_renewed_at_once() {
    use hallmark::revocation::RevocationReason;
    use hallmark::store::CaRole;
    let ca = TestCa::new(Keys::Soft);
    let hm = ca.open();
    let responder = hm
        .store
        .list_cas()
        .expect("cas")
        .into_iter()
        .find(|c| c.role == CaRole::Ocsp)
        .expect("a responder");
    let old = responder.serial.clone().expect("serial");
    hm.revocation
        .revoke(&old, RevocationReason::Superseded, None, "test")
        .expect("revoke");
    let now = hm
        .store
        .list_cas()
        .expect("cas")
        .into_iter()
        .find(|c| c.name == responder.name)
        .expect("responder");
    let new = now.serial.expect("serial");
    assert_ne!(new, old, "a new responder certificate");
    assert!(hm.store.get_revocation(&new).expect("read").is_none());
}

/// The database and its `-wal`/`-shm` files are the owner's only (0600), the CA directory that
/// `init` made is 0700, and a database left readable by others is narrowed when it is opened.
#[test]
fn the_database_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let dir = ca.dir.path().join("ca");
    let db = dir.join("hallmark.db");
    let hm = ca.open();
    hm.store.count_certificates(None).expect("read");
    assert_eq!(mode(&dir), 0o700, "CA directory");
    for suffix in ["", "-wal", "-shm"] {
        let f = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    drop(hm);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let hm = ca.open();
    hm.store.count_certificates(None).expect("read");
    assert_eq!(mode(&db), 0o600, "narrowed at open");
}

/// Secrets at rest: a sealed value opens only for its own record and with this CA's key store;
/// an EAB key an older hallmark stored in clear is sealed by `seal_clear_secrets` (run at
/// `serve` start) and still opens to the same key.
#[test]
fn eab_keys_are_sealed_at_rest() {
    eab_keys_sealed(Keys::Soft);
    // With SoftHSM through the command line (its own process: SoftHSM's config is per process,
    // and another test of this binary opens a token in-process): the key store makes the
    // sealing key and its signature repeats, so each new EAB key is stored sealed.
    let ca = TestCa::new(Keys::SoftHsm);
    ca.add_acme();
    for _ in 0..2 {
        let out = ca.hm(&["acme", "eab", "create", "--publisher", "acme"]);
        let kid = out
            .lines()
            .find_map(|l| l.strip_prefix("kid:"))
            .map(|k| k.trim().to_string())
            .expect("kid");
        let stored = ca
            .store()
            .get_eab_key(&kid)
            .expect("read")
            .expect("stored")
            .hmac_key;
        assert!(hallmark::engine::sealing::is_sealed(&stored), "{out}");
    }
}

fn eab_keys_sealed(keys: Keys) {
    let ca = TestCa::new(keys);
    ca.add_acme();
    let hm = ca.open();
    let secret = [7u8; 32];
    let sealed = hm.seal("eab_a", &secret).expect("seal");
    assert!(hallmark::engine::sealing::is_sealed(&sealed));
    assert!(!sealed.windows(32).any(|w| w == secret));
    assert_eq!(
        hm.unseal("eab_a", &sealed).expect("open").as_slice(),
        &secret
    );
    assert!(
        hm.unseal("eab_b", &sealed).is_err(),
        "moved to another record"
    );
    // Another process of the same CA derives the same key.
    drop(hm);
    let hm = ca.open();
    assert_eq!(
        hm.unseal("eab_a", &sealed).expect("open").as_slice(),
        &secret
    );
    // A key stored in clear (before sealing) is sealed, and opens to the same key.
    let old = hallmark::acme::eab::new_key("acme", hm.clock.now());
    let clear = old.record.hmac_key.clone();
    hm.store
        .insert_eab_key(&old.record, "test")
        .expect("insert");
    assert_eq!(hm.seal_clear_secrets().expect("seal"), 1);
    let stored = hm
        .store
        .get_eab_key(&old.record.kid)
        .expect("read")
        .expect("key");
    assert!(hallmark::engine::sealing::is_sealed(&stored.hmac_key));
    assert_eq!(
        hm.unseal(&old.record.kid, &stored.hmac_key)
            .expect("open")
            .as_slice(),
        clear.as_slice()
    );
    assert_eq!(hm.seal_clear_secrets().expect("seal"), 0);
}

/// Time is injected: on a clock set a year ahead of the system's, a certificate starts then
/// and its records and audit events carry that time; a token that expires in a day works until
/// the clock is moved past its expiry.
#[test]
fn services_and_the_store_take_time_from_the_injected_clock() {
    use hallmark::clock::{Clock, ManualClock, SystemClock};
    use hallmark::policy::auth::Scope;

    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    for (k, v) in ca.env() {
        std::env::set_var(k, v);
    }
    let start = SystemClock.now() + 365 * 86_400;
    let clock = Arc::new(ManualClock::at(start));
    let config = hallmark::config::Config::load(&ca.config()).expect("config");
    let hm = Hallmark::with_clock(config, clock.clone()).expect("open on the clock");

    let issued = hm
        .issuance
        .issue(&request(csr(&ca, "clocked")))
        .expect("issue");
    let (_, _, not_before, _) = hallmark::issuer::cert_summary(&issued.cert_der).expect("parse");
    assert!(
        not_before <= start && not_before > start - 86_400,
        "notBefore {not_before} is not the clock's {start} (less the profile's backdating)"
    );
    let rec = hm
        .store
        .get_certificate(&issued.serial)
        .expect("get")
        .expect("recorded");
    assert_eq!(rec.created_at, start, "the record's time is the clock's");
    assert_eq!(rec.issued_at, Some(start));
    let newest = hm.store.audit_events(1).expect("audit");
    assert_eq!(newest[0].at, start, "{:?}", newest[0]);

    let (_, secret) = hm
        .tokens
        .create_token(
            Some("acme"),
            Some("clocked"),
            &[Scope::Sign],
            false,
            Some(86_400),
            "test",
        )
        .expect("token");
    hm.tokens
        .authenticate(Some(&secret), None)
        .expect("a token within its day");
    clock.advance(86_400);
    let e = hm
        .tokens
        .authenticate(Some(&secret), None)
        .expect_err("expired on the clock");
    assert!(e.to_string().contains("expired"), "{e}");
}

/// A service stands on its parts alone: issuance and tokens built from a store, a keyring, the
/// profiles and a manual clock — no engine value — issue at the clock's time and expire a
/// token when the clock moves, as they do inside the engine.
#[test]
fn a_service_is_built_from_only_what_it_uses() {
    use hallmark::clock::{Clock, ManualClock, SystemClock};
    use hallmark::issuance::Issuance;
    use hallmark::keyring::Keyring;
    use hallmark::policy::auth::Scope;
    use hallmark::requests::Tokens;

    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    for (k, v) in ca.env() {
        std::env::set_var(k, v);
    }
    let start = SystemClock.now() + 30 * 86_400;
    let clock = Arc::new(ManualClock::at(start));
    let config = hallmark::config::Config::load(&ca.config()).expect("config");
    let store =
        hallmark::store::open_existing(&config.database_path(), clock.clone()).expect("store");
    let profiles =
        Arc::new(hallmark::profile::Profiles::load_dir(&config.profiles_dir()).expect("profiles"));
    let keyring = Arc::new(Keyring::new(
        store.clone(),
        config.key_stores.clone(),
        config.base_dir.clone(),
    ));
    let urls = hallmark::issuer::Urls {
        public_base: config.server.public_url.clone(),
        crl_shards: config.crl.shards,
    };
    let issuance = Issuance::new(
        store.clone(),
        keyring,
        profiles,
        clock.clone(),
        Default::default(),
        urls,
        &config,
    );
    let issued = issuance
        .issue(&request(csr(&ca, "standalone")))
        .expect("issue without the engine");
    let rec = store
        .get_certificate(&issued.serial)
        .expect("get")
        .expect("recorded");
    assert_eq!(rec.issued_at, Some(start), "recorded at the clock's time");
    assert_eq!(rec.status, CertStatus::Issued);

    let tokens = Tokens::new(store.clone(), clock.clone());
    let (_, secret) = tokens
        .create_token(Some("acme"), None, &[Scope::Sign], false, Some(60), "test")
        .expect("token");
    tokens
        .authenticate(Some(&secret), None)
        .expect("a token within its minute");
    clock.advance(61);
    let e = tokens
        .authenticate(Some(&secret), None)
        .expect_err("expired on the clock");
    assert!(e.to_string().contains("expired"), "{e}");
}
