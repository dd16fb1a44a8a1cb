//! The store's contract: what every backend of `hallmark::store` must do, stated against the
//! traits only (no backend type, driver or query language appears here), one function per
//! record family in [`contract`], each taking a `&dyn Store`. The SQLite backend runs them
//! below, one `#[test]` per family so a failure names its family; a second backend (say,
//! PostgreSQL) meets the same contract by adding one `#[test]` per family that opens its store
//! and hands it to `contract::authorities`, `contract::issuance`, ... unchanged. Each function
//! calls every method of both halves of its family and checks real behaviour: round trips of
//! every field written, list order, paging, filters and counts, the refusals (`Conflict`,
//! `NotFound`, `Decided`, `DeviceTaken`, `QuotaExceeded`), the one-winner state moves, and the
//! audit event each change of a record leaves. Every test runs: a backend that does not meet
//! the contract fails here (the four defects this suite found in the SQLite backend were fixed).

use std::sync::Arc;

use hallmark::store::Store;

/// A fresh SQLite store in a temporary directory (kept alive by the caller for the test).
fn sqlite() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = hallmark::store::open(&dir.path().join("db.sqlite")).expect("open the store");
    (dir, store)
}

#[test]
fn sqlite_maintenance() {
    let (_dir, s) = sqlite();
    contract::maintenance(&*s);
}

#[test]
fn sqlite_authorities() {
    let (_dir, s) = sqlite();
    contract::authorities(&*s);
}

#[test]
fn sqlite_issuance() {
    let (_dir, s) = sqlite();
    contract::issuance(&*s);
}

#[test]
fn sqlite_abandon_touches_only_an_intent() {
    let (_dir, s) = sqlite();
    contract::abandon_touches_only_an_intent(&*s);
}

#[test]
fn sqlite_requests() {
    let (_dir, s) = sqlite();
    contract::requests(&*s);
}

#[test]
fn sqlite_finish_request_only_documented_moves() {
    let (_dir, s) = sqlite();
    contract::finish_request_only_documented_moves(&*s);
}

#[test]
fn sqlite_signing() {
    let (_dir, s) = sqlite();
    contract::signing(&*s);
}

#[test]
fn sqlite_revocation() {
    let (_dir, s) = sqlite();
    contract::revocation(&*s);
}

#[test]
fn sqlite_dirty_responses_in_serial_order() {
    let (_dir, s) = sqlite();
    contract::dirty_responses_in_serial_order(&*s);
}

#[test]
fn sqlite_acme() {
    let (_dir, s) = sqlite();
    contract::acme(&*s);
}

#[test]
fn sqlite_finish_unknown_acme_challenge_is_not_found() {
    let (_dir, s) = sqlite();
    contract::finish_unknown_acme_challenge_is_not_found(&*s);
}

#[test]
fn sqlite_factory() {
    let (_dir, s) = sqlite();
    contract::factory(&*s);
}

#[test]
fn sqlite_tokens() {
    let (_dir, s) = sqlite();
    contract::tokens(&*s);
}

#[test]
fn sqlite_sessions() {
    let (_dir, s) = sqlite();
    contract::sessions(&*s);
}

#[test]
fn sqlite_console() {
    let (_dir, s) = sqlite();
    contract::console(&*s);
}

#[test]
fn sqlite_audit() {
    let (_dir, s) = sqlite();
    contract::audit(&*s);
}

/// The contract, one function per record family: hand each a fresh, empty store.
pub mod contract {
    use std::fmt::Debug;

    use hallmark::store::*;

    /// Asserts that `$e` failed with `StoreError::$v`.
    macro_rules! assert_err {
        ($e:expr, $v:ident) => {{
            let r = $e;
            assert!(
                matches!(r, Err(StoreError::$v(..))),
                "{} should fail with {}, got {:?}",
                stringify!($e),
                stringify!($v),
                r
            );
        }};
    }

    /// Field-by-field equality for records that do not implement `PartialEq` (their `Debug`
    /// form lists every field).
    fn same<T: Debug>(got: &T, want: &T, what: &str) {
        assert_eq!(format!("{got:?}"), format!("{want:?}"), "{what}");
    }

    /// Whether the audit trail holds an event `action` about `subject`.
    fn audited(s: &dyn Store, action: &str, subject: &str) -> bool {
        s.audit_events(100_000)
            .expect("audit events")
            .iter()
            .any(|e| e.action == action && e.subject.as_deref() == Some(subject))
    }

    fn assert_audited(s: &dyn Store, actions: &[(&str, &str)]) {
        for (action, subject) in actions {
            assert!(
                audited(s, action, subject),
                "an audit event '{action}' about '{subject}'"
            );
        }
    }

    fn healthy(s: &dyn Store) {
        let problems = s.integrity_check().expect("integrity check");
        assert!(problems.is_empty(), "integrity problems: {problems:?}");
    }

    fn audit_count(s: &dyn Store) -> usize {
        s.audit_events(100_000).expect("audit events").len()
    }

    /// A time the store assigned: between `t0` (taken before the call) and now.
    /// The system's time: these stores record on the system clock.
    fn now() -> i64 {
        use hallmark::clock::Clock;
        hallmark::clock::SystemClock.now()
    }

    fn assigned(t: i64, t0: i64, what: &str) {
        assert!((t0..=now()).contains(&t), "{what}: {t} not in [{t0}, now]");
    }

    /// Sleeps until the store's clock (whole seconds) has moved past `t`.
    fn next_second(t: i64) {
        while now() <= t {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn intent(serial: &str) -> Intent {
        Intent {
            serial: serial.into(),
            ca: "ca-1".into(),
            profile: "tls".into(),
            publisher: Some("acme".into()),
            requester: "ci".into(),
            csr_der: format!("csr of {serial}").into_bytes(),
            subject: format!("CN={serial}"),
            spki_sha256: format!("spki-{serial}"),
            not_before: 1_000,
            not_after: now() + 86_400,
            tbs_der: format!("tbs of {serial}").into_bytes(),
            request_id: None,
            device_serial: None,
            station: None,
            identity: None,
        }
    }

    /// Records and completes a certificate.
    fn issue(s: &dyn Store, i: &Intent) {
        s.record_intent(i).expect("record the intent");
        s.complete_issuance(&i.serial, format!("der of {}", i.serial).as_bytes(), "ci")
            .expect("complete the issuance");
    }

    fn serials(certs: &[CertRecord]) -> Vec<&str> {
        certs.iter().map(|c| c.serial.as_str()).collect()
    }

    // ---------------------------------------------------------------------------------------
    // Maintenance

    pub fn maintenance(s: &dyn Store) {
        assert!(s.schema_version().expect("schema version") > 0);
        healthy(s);
        s.sync_cache().expect("sync the cache on a fresh store");
        // A write, then a sync: reads see the write, and the store stays healthy.
        s.audit("store.checked", "db", None, "ops")
            .expect("an audit event");
        s.sync_cache().expect("sync the cache after a write");
        assert_eq!(
            s.schema_version().expect("schema version"),
            s.schema_version().expect("schema version again"),
            "the schema version is stable"
        );
        healthy(s);
    }

    // ---------------------------------------------------------------------------------------
    // Authorities: CAs and publishers

    fn ca(name: &str, role: CaRole, parent: Option<&str>, cert: bool) -> CaRecord {
        CaRecord {
            name: name.into(),
            role,
            parent: parent.map(Into::into),
            purpose: Some(format!("{name} purpose")),
            key_store: "file".into(),
            key_label: format!("{name}-key"),
            key_algorithm: "ecdsa-p256".into(),
            csr_der: (!cert).then(|| format!("csr of {name}").into_bytes()),
            cert_der: cert.then(|| format!("cert of {name}").into_bytes()),
            serial: cert.then(|| format!("{name}-serial")),
            subject: Some(format!("CN={name}")),
            not_before: cert.then_some(1_000),
            not_after: cert.then_some(2_000),
            created_at: 1_700_000_000,
        }
    }

    pub fn authorities(s: &dyn Store) {
        assert!(s.get_ca("root").expect("get an unknown CA").is_none());
        assert!(s.list_cas().expect("list no CAs").is_empty());

        let root = ca("root", CaRole::Root, None, true);
        let ext = ca("ext-root", CaRole::Root, None, false);
        let issuing_b = ca("b-issuing", CaRole::Issuing, Some("root"), true);
        let issuing_a = ca("a-issuing", CaRole::Issuing, Some("root"), true);
        let ocsp = ca("a-ocsp", CaRole::Ocsp, Some("a-issuing"), true);
        for c in [&ocsp, &issuing_b, &root, &issuing_a, &ext] {
            s.insert_ca(c, "officer").expect("insert a CA");
        }
        for c in [&root, &ext, &issuing_a, &issuing_b, &ocsp] {
            let got = s.get_ca(&c.name).expect("get a CA").expect("the CA");
            same(&got, c, "a CA reads back as written");
        }
        // Roots, then issuing CAs, then responders; by name within a role.
        let names: Vec<String> = s
            .list_cas()
            .expect("list CAs")
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(
            names,
            ["ext-root", "root", "a-issuing", "b-issuing", "a-ocsp"]
        );
        let dup = CaRecord {
            key_label: "other".into(),
            ..root.clone()
        };
        assert_err!(s.insert_ca(&dup, "officer"), Conflict);
        same(
            &s.get_ca("root").expect("get").expect("root"),
            &root,
            "a refused duplicate changes nothing",
        );

        // An external root gets its certificate: the certificate fields and the parent change,
        // the key and the rest stay.
        let signed = CaRecord {
            parent: Some("offline".into()),
            purpose: Some("ignored".into()),
            key_label: "ignored".into(),
            cert_der: Some(b"ext cert".to_vec()),
            serial: Some("ext-serial".into()),
            subject: Some("CN=External Root".into()),
            not_before: Some(10),
            not_after: Some(20),
            ..ext.clone()
        };
        s.set_ca_certificate(&signed, "officer")
            .expect("attach a certificate");
        let want = CaRecord {
            purpose: ext.purpose.clone(),
            key_label: ext.key_label.clone(),
            ..signed.clone()
        };
        same(
            &s.get_ca("ext-root").expect("get").expect("ext-root"),
            &want,
            "the attached certificate (read right after the write)",
        );
        assert_err!(
            s.set_ca_certificate(&ca("nope", CaRole::Root, None, true), "officer"),
            NotFound
        );

        s.renew_ca_certificate(
            "a-issuing",
            b"renewed",
            "renewed-serial",
            "CN=A2",
            30,
            40,
            "officer",
        )
        .expect("renew a CA certificate");
        let renewed = CaRecord {
            cert_der: Some(b"renewed".to_vec()),
            serial: Some("renewed-serial".into()),
            subject: Some("CN=A2".into()),
            not_before: Some(30),
            not_after: Some(40),
            ..issuing_a.clone()
        };
        same(
            &s.get_ca("a-issuing").expect("get").expect("a-issuing"),
            &renewed,
            "the renewed certificate, same key",
        );
        assert_err!(
            s.renew_ca_certificate("nope", b"x", "x", "CN=x", 1, 2, "officer"),
            NotFound
        );

        // Publishers.
        assert!(s.get_publisher("acme").expect("get").is_none());
        let acme = Publisher {
            id: "acme".into(),
            org: "Acme Corp".into(),
            country: "DE".into(),
            state: Some("Berlin".into()),
            locality: None,
            profiles: vec!["code-signing".into(), "tls".into()],
            created_at: 1_700_000_001,
        };
        let beta = Publisher {
            id: "beta".into(),
            org: "Beta".into(),
            country: "FR".into(),
            state: None,
            locality: Some("Paris".into()),
            profiles: vec![],
            created_at: 1_700_000_002,
        };
        s.add_publisher(&beta, "officer").expect("add beta");
        s.add_publisher(&acme, "officer").expect("add acme");
        assert_eq!(s.get_publisher("acme").expect("get"), Some(acme.clone()));
        assert_eq!(s.get_publisher("beta").expect("get"), Some(beta.clone()));
        assert_eq!(
            s.list_publishers().expect("list publishers"),
            vec![acme.clone(), beta.clone()],
            "publishers by id"
        );
        let dup = Publisher {
            org: "Impostor".into(),
            ..acme.clone()
        };
        assert_err!(s.add_publisher(&dup, "officer"), Conflict);
        assert_eq!(s.get_publisher("acme").expect("get"), Some(acme.clone()));

        let profiles = vec!["device".to_string()];
        s.set_publisher_profiles("acme", &profiles, "officer")
            .expect("set profiles");
        assert_eq!(
            s.get_publisher("acme").expect("get"),
            Some(Publisher {
                profiles: profiles.clone(),
                ..acme.clone()
            }),
            "only the profiles change"
        );
        assert_err!(
            s.set_publisher_profiles("nope", &profiles, "officer"),
            NotFound
        );

        assert_audited(
            s,
            &[
                ("ca.created", "root"),
                ("ca.csr_created", "ext-root"),
                ("ca.certificate_imported", "ext-root"),
                ("ca.certificate_renewed", "a-issuing"),
                ("publisher.added", "acme"),
                ("publisher.added", "beta"),
                ("publisher.profiles_changed", "acme"),
            ],
        );
        let last = &s.audit_events(1).expect("audit")[0];
        assert_eq!(
            (last.action.as_str(), last.actor.as_str()),
            ("publisher.profiles_changed", "officer"),
            "the actor is recorded"
        );
        healthy(s);
    }

    // ---------------------------------------------------------------------------------------
    // Issuance: intents, completion, abandonment

    pub fn issuance(s: &dyn Store) {
        let t0 = now();
        assert_eq!(s.count_certificates(None).expect("count"), 0);
        assert!(s.get_certificate("0a").expect("get").is_none());

        let a = intent("0a");
        let request = s.record_intent(&a).expect("record an intent");
        let c = s.get_certificate("0a").expect("get").expect("the intent");
        assert_eq!(c.serial, "0a");
        assert_eq!(c.ca, a.ca);
        assert_eq!(c.profile, a.profile);
        assert_eq!(c.publisher, a.publisher);
        assert_eq!(c.request_id, Some(request));
        assert_eq!(c.subject, a.subject);
        assert_eq!((c.not_before, c.not_after), (a.not_before, a.not_after));
        assert_eq!(c.status, CertStatus::Intent);
        assert_eq!(c.cert_der, None);
        assert_eq!(c.issued_at, None);
        assert_eq!((c.device_serial, c.station), (None, None));
        assigned(c.created_at, t0, "an intent's created_at");
        let of_request: Vec<String> = s
            .certificates_of_request(request)
            .expect("of request")
            .into_iter()
            .map(|c| c.serial)
            .collect();
        assert_eq!(of_request, ["0a"], "the certificate a request produced");
        assert!(s
            .certificates_of_request(request + 1000)
            .expect("of request")
            .is_empty());
        assert_eq!(
            s.intent_tbs("0a").expect("tbs"),
            Some(a.tbs_der.clone()),
            "the to-be-signed bytes are kept"
        );
        // Direct issuance records its request with the intent, already decided: it is not a
        // claimed request that recovery would issue again.
        let r = s.get_request(request).expect("get").expect("the request");
        assert_eq!(r.profile, a.profile);
        assert_eq!(r.publisher, a.publisher);
        assert_eq!(r.requester, a.requester);
        assert_eq!(r.csr_der, a.csr_der);
        assert_eq!(r.status, RequestStatus::Approved);
        assert!(s.claimed_requests().expect("claimed").is_empty());

        // A taken serial: Conflict, and nothing written (no certificate, request or event).
        let (certs, requests, events) = (
            s.count_certificates(None).expect("count"),
            s.list_requests(None, None, None, 1000).expect("list").len(),
            audit_count(s),
        );
        let dup = Intent {
            ca: "ca-2".into(),
            ..intent("0a")
        };
        assert_err!(s.record_intent(&dup), Conflict);
        assert_eq!(s.count_certificates(None).expect("count"), certs);
        assert_eq!(
            s.list_requests(None, None, None, 1000).expect("list").len(),
            requests,
            "no request left by a refused intent"
        );
        assert_eq!(
            audit_count(s),
            events,
            "no audit event for a refused intent"
        );
        assert_eq!(
            s.get_certificate("0a").expect("get").expect("0a").ca,
            "ca-1"
        );

        // A batch: each intent on its own; the refused one leaves the others.
        let b = Intent {
            profile: "code".into(),
            publisher: Some("beta".into()),
            ..intent("0b")
        };
        let c = Intent {
            ca: "ca-2".into(),
            publisher: None,
            ..intent("0c")
        };
        let out = s
            .record_intents(&[b.clone(), dup.clone(), c.clone()])
            .expect("record a batch");
        assert_eq!(out.len(), 3, "one result per intent, in order");
        let rb = *out[0].as_ref().expect("0b recorded");
        assert!(
            matches!(out[1], Err(StoreError::Conflict(_))),
            "{:?}",
            out[1]
        );
        let rc = *out[2].as_ref().expect("0c recorded");
        assert_ne!(rb, rc, "each intent has its own request");
        assert_eq!(
            s.count_certificates(Some(CertStatus::Intent))
                .expect("count"),
            3
        );
        assert_eq!(
            s.get_certificate("0b")
                .expect("get")
                .expect("0b")
                .request_id,
            Some(rb)
        );

        // Leftovers: intents recorded up to `before`, oldest first, at most `limit`.
        let t_batch = now();
        next_second(t_batch);
        let late = Intent {
            ca: "ca-2".into(),
            ..intent("00")
        };
        s.record_intent(&late).expect("record a later intent");
        let left = s.leftover_intents(now() + 1, 10).expect("leftovers");
        assert_eq!(left.len(), 4);
        assert_eq!(
            left.last().expect("the last leftover"),
            &("00".to_string(), "ca-2".to_string(), late.tbs_der.clone()),
            "the newest intent comes last (oldest first, not serial order)"
        );
        assert!(left.contains(&("0a".into(), "ca-1".into(), a.tbs_der.clone())));
        assert_eq!(
            s.leftover_intents(now() + 1, 2).expect("leftovers").len(),
            2
        );
        assert!(s
            .leftover_intents(t0 - 1, 10)
            .expect("leftovers")
            .is_empty());
        let before_late: Vec<String> = s
            .leftover_intents(t_batch, 10)
            .expect("leftovers")
            .into_iter()
            .map(|l| l.0)
            .collect();
        assert!(
            !before_late.contains(&"00".to_string()) && before_late.len() == 3,
            "`before` leaves out later intents: {before_late:?}"
        );

        // Completion.
        let t1 = now();
        s.complete_issuance("0a", b"der 0a", "ci")
            .expect("complete");
        let done = s.get_certificate("0a").expect("get").expect("0a");
        assert_eq!(done.status, CertStatus::Issued);
        assert_eq!(done.cert_der.as_deref(), Some(&b"der 0a"[..]));
        assigned(done.issued_at.expect("issued_at"), t1, "issued_at");
        assert_eq!(
            s.intent_tbs("0a").expect("tbs"),
            None,
            "no longer an intent"
        );
        assert_err!(s.complete_issuance("0a", b"again", "ci"), NotFound);
        assert_err!(s.complete_issuance("zz", b"x", "ci"), NotFound);
        assert_eq!(
            s.get_certificate("0a")
                .expect("get")
                .expect("0a")
                .cert_der
                .as_deref(),
            Some(&b"der 0a"[..]),
            "a second completion changes nothing"
        );

        // Many at once, in one transaction: one unknown serial completes none.
        assert_err!(
            s.complete_issuances(&[("0b", b"der 0b"), ("zz", b"x")], "ci"),
            NotFound
        );
        assert_eq!(
            s.get_certificate("0b").expect("get").expect("0b").status,
            CertStatus::Intent,
            "all or nothing"
        );
        s.complete_issuances(
            &[("0b", b"der 0b"), ("0c", b"der 0c"), ("00", b"der 00")],
            "ci",
        )
        .expect("complete many");
        for serial in ["0b", "0c", "00"] {
            let c = s.get_certificate(serial).expect("get").expect("cert");
            assert_eq!(c.status, CertStatus::Issued);
            assert_eq!(c.cert_der, Some(format!("der {serial}").into_bytes()));
            assert!(c.issued_at.is_some());
        }

        // Abandonment: the certificate never existed.
        s.record_intent(&intent("0d")).expect("record");
        s.abandon_intent("0d", "the key store failed", "ci")
            .expect("abandon");
        assert_eq!(
            s.get_certificate("0d").expect("get").expect("0d").status,
            CertStatus::Abandoned
        );
        assert_eq!(s.intent_tbs("0d").expect("tbs"), None);
        assert_err!(s.complete_issuance("0d", b"late", "ci"), NotFound);
        assert!(s
            .leftover_intents(now() + 1, 10)
            .expect("leftovers")
            .is_empty());

        assert_eq!(s.count_certificates(None).expect("count"), 5);
        assert_eq!(
            s.count_certificates(Some(CertStatus::Issued))
                .expect("count"),
            4
        );
        assert_eq!(
            s.count_certificates(Some(CertStatus::Abandoned))
                .expect("count"),
            1
        );
        assert_eq!(
            s.count_certificates(Some(CertStatus::Intent))
                .expect("count"),
            0
        );

        // Listing: issued certificates only, by serial, filtered, paged after a serial.
        s.record_intent(&intent("0e"))
            .expect("an intent is not listed");
        let list = |f: CertFilter| s.list_certificates(&f).expect("list certificates");
        let all = list(CertFilter {
            limit: 100,
            ..Default::default()
        });
        assert_eq!(serials(&all), ["00", "0a", "0b", "0c"]);
        let listed = &all[1];
        same(
            listed,
            &s.get_certificate("0a").expect("get").expect("0a"),
            "a listed certificate is the stored record",
        );
        let by_publisher = list(CertFilter {
            publisher: Some("acme".into()),
            limit: 100,
            ..Default::default()
        });
        assert_eq!(serials(&by_publisher), ["00", "0a"]);
        let by_profile = list(CertFilter {
            profile: Some("tls".into()),
            limit: 100,
            ..Default::default()
        });
        assert_eq!(serials(&by_profile), ["00", "0a", "0c"]);
        let by_ca = list(CertFilter {
            ca: Some("ca-1".into()),
            limit: 100,
            ..Default::default()
        });
        assert_eq!(serials(&by_ca), ["0a", "0b"]);
        let combined = list(CertFilter {
            ca: Some("ca-2".into()),
            publisher: Some("acme".into()),
            limit: 100,
            ..Default::default()
        });
        assert_eq!(serials(&combined), ["00"]);
        let page1 = list(CertFilter {
            limit: 2,
            ..Default::default()
        });
        assert_eq!(serials(&page1), ["00", "0a"]);
        let page2 = list(CertFilter {
            after: Some("0a".into()),
            limit: 2,
            ..Default::default()
        });
        assert_eq!(serials(&page2), ["0b", "0c"]);
        let page3 = list(CertFilter {
            after: Some("0c".into()),
            limit: 2,
            ..Default::default()
        });
        assert!(page3.is_empty());

        assert_audited(
            s,
            &[
                ("certificate.intent", "0a"),
                ("certificate.intent", "0b"),
                ("certificate.issued", "0a"),
                ("certificate.issued", "0c"),
                ("certificate.abandoned", "0d"),
            ],
        );
        assert!(!audited(s, "certificate.issued", "0d"));
        healthy(s);
    }

    /// `abandon_intent` acts on an intent only: a certificate already issued (its claimed request
    /// not yet finished, as when a recovering server fails to sign an intent another process has
    /// just completed) stays issued, and its request keeps its single certificate slot.
    pub fn abandon_touches_only_an_intent(s: &dyn Store) {
        let id = s
            .insert_pending_request(&new_request("acme", 1), "ci")
            .expect("a pending request");
        assert!(
            s.record_decision(id, "alice", true, None, "alice")
                .expect("approve")
                .claimed
        );
        s.record_intent(&Intent {
            request_id: Some(id),
            ..intent("01")
        })
        .expect("the request's intent");
        s.complete_issuance("01", b"der", "ci").expect("complete");

        let _ = s.abandon_intent("01", "a late failure", "recovery");
        assert_eq!(
            s.get_certificate("01").expect("get").expect("01").status,
            CertStatus::Issued,
            "an issued certificate is never abandoned"
        );
        assert_eq!(
            s.get_request(id)
                .expect("get")
                .expect("request")
                .certificate_serial
                .as_deref(),
            Some("01"),
            "the request still has its certificate"
        );
        assert_err!(
            s.record_intent(&Intent {
                request_id: Some(id),
                ..intent("02")
            }),
            Decided
        );
        assert!(
            !audited(s, "certificate.abandoned", "01"),
            "no abandonment is recorded for an issued certificate"
        );
    }

    // ---------------------------------------------------------------------------------------
    // Requests: M-of-N approvals

    fn new_request(publisher: &str, approvals: i64) -> NewRequest {
        NewRequest {
            profile: "code-signing".into(),
            publisher: publisher.into(),
            requester: "ci".into(),
            csr_der: b"csr".to_vec(),
            device_serial: Some("dev-1".into()),
            cn_name: Some("build".into()),
            approvals_required: approvals,
            expires_at: now() + 3_600,
            identity: Some(r#"{"kind":"oidc","issuer":"github","rule":"github:acme/app","claims":{"ref":"refs/tags/v1"}}"#.into()),
        }
    }

    fn ids(rs: &[RequestRecord]) -> Vec<i64> {
        rs.iter().map(|r| r.id).collect()
    }

    pub fn requests(s: &dyn Store) {
        let t0 = now();
        assert!(s.get_request(1).expect("get").is_none());
        assert!(s.claimed_requests().expect("claimed").is_empty());

        let n1 = new_request("acme", 2);
        let r1 = s.insert_pending_request(&n1, "ci").expect("insert");
        let got = s.get_request(r1).expect("get").expect("r1");
        assert_eq!(got.id, r1);
        assert_eq!(got.profile, n1.profile);
        assert_eq!(got.publisher.as_deref(), Some("acme"));
        assert_eq!(got.requester, n1.requester);
        assert_eq!(got.csr_der, n1.csr_der);
        assert_eq!(got.status, RequestStatus::Pending);
        assigned(got.created_at, t0, "a request's created_at");
        assert_eq!(got.expires_at, Some(n1.expires_at));
        assert_eq!(got.decided_at, None);
        assert_eq!(got.device_serial, n1.device_serial);
        assert_eq!(got.cn_name, n1.cn_name);
        assert_eq!(got.approvals_required, 2);
        assert_eq!(got.certificate_serial, None);
        assert_eq!(
            got.identity, n1.identity,
            "the requester's identity is kept"
        );
        assert!(s.approvals(r1).expect("approvals").is_empty());

        // No certificate for a request still waiting.
        assert_err!(
            s.record_intent(&Intent {
                request_id: Some(r1),
                ..intent("c1")
            }),
            Decided
        );

        // Below the threshold: still pending.
        let d = s
            .record_decision(r1, "alice", true, Some("looks fine"), "alice")
            .expect("approve");
        assert_eq!(
            d,
            Decision {
                approvals: 1,
                claimed: false
            }
        );
        assert_eq!(
            s.get_request(r1).expect("get").expect("r1").status,
            RequestStatus::Pending
        );
        // The same approver again, either way: refused, nothing recorded.
        assert_err!(
            s.record_decision(r1, "alice", true, None, "alice"),
            Conflict
        );
        assert_err!(
            s.record_decision(r1, "alice", false, None, "alice"),
            Conflict
        );
        assert_eq!(
            s.get_request(r1).expect("get").expect("r1").status,
            RequestStatus::Pending
        );
        assert_eq!(s.approvals(r1).expect("approvals").len(), 1);

        // The deciding approval claims it.
        let t1 = now();
        let d = s
            .record_decision(r1, "bob", true, None, "bob")
            .expect("approve");
        assert_eq!(
            d,
            Decision {
                approvals: 2,
                claimed: true
            }
        );
        let claimed = s.get_request(r1).expect("get").expect("r1");
        assert_eq!(claimed.status, RequestStatus::Approved);
        assigned(claimed.decided_at.expect("decided_at"), t1, "decided_at");
        let approvals = s.approvals(r1).expect("approvals");
        assert_eq!(approvals.len(), 2);
        assert_eq!(
            (
                approvals[0].approver.as_str(),
                approvals[0].decision.as_str()
            ),
            ("alice", "approve"),
            "oldest first"
        );
        assert_eq!(approvals[0].comment.as_deref(), Some("looks fine"));
        assigned(approvals[0].created_at, t0, "an approval's time");
        assert_eq!(
            (
                approvals[1].approver.as_str(),
                approvals[1].comment.as_deref()
            ),
            ("bob", None)
        );
        // Stale decisions on a claimed request: Decided, whatever they say; none recorded.
        assert_err!(s.record_decision(r1, "carol", true, None, "carol"), Decided);
        assert_err!(
            s.record_decision(r1, "carol", false, None, "carol"),
            Decided
        );
        assert_eq!(s.approvals(r1).expect("approvals").len(), 2);
        assert!(
            !s.cancel_request(r1, "ci").expect("cancel"),
            "claimed: not cancellable"
        );
        assert_eq!(ids(&s.claimed_requests().expect("claimed")), [r1]);

        // One certificate per request.
        s.record_intent(&Intent {
            request_id: Some(r1),
            ..intent("c1")
        })
        .expect("the request's intent");
        assert_err!(
            s.record_intent(&Intent {
                request_id: Some(r1),
                ..intent("c2")
            }),
            Decided
        );
        assert_eq!(
            s.get_request(r1)
                .expect("get")
                .expect("r1")
                .certificate_serial
                .as_deref(),
            Some("c1")
        );
        s.complete_issuance("c1", b"der", "ci").expect("complete");
        assert!(s
            .finish_request(r1, RequestStatus::Issued, Some("c1"), "bob")
            .expect("finish"));
        let issued = s.get_request(r1).expect("get").expect("r1");
        assert_eq!(issued.status, RequestStatus::Issued);
        assert_eq!(issued.certificate_serial.as_deref(), Some("c1"));
        assert!(s.claimed_requests().expect("claimed").is_empty());
        assert!(!s
            .finish_request(r1, RequestStatus::Denied, None, "policy")
            .expect("finish an issued request"));
        assert_eq!(
            s.get_request(r1).expect("get").expect("r1").status,
            RequestStatus::Issued
        );
        assert_err!(s.record_decision(r1, "carol", true, None, "carol"), Decided);

        // A denial ends the request.
        let r2 = s
            .insert_pending_request(&new_request("acme", 2), "ci")
            .expect("insert");
        let d = s
            .record_decision(r2, "alice", false, Some("no"), "alice")
            .expect("deny");
        assert_eq!(
            d,
            Decision {
                approvals: 0,
                claimed: false
            }
        );
        let denied = s.get_request(r2).expect("get").expect("r2");
        assert_eq!(denied.status, RequestStatus::Denied);
        assert!(denied.decided_at.is_some());
        let approvals = s.approvals(r2).expect("approvals");
        assert_eq!(
            (
                approvals[0].decision.as_str(),
                approvals[0].comment.as_deref()
            ),
            ("deny", Some("no"))
        );
        assert_err!(s.record_decision(r2, "bob", true, None, "bob"), Decided);
        assert!(!s.cancel_request(r2, "ci").expect("cancel a denied request"));
        assert!(!s
            .finish_request(r2, RequestStatus::Expired, None, "hallmark")
            .expect("finish a denied request"));
        assert_eq!(s.approvals(r2).expect("approvals").len(), 1);

        // Cancel: only while pending.
        let r3 = s
            .insert_pending_request(&new_request("acme", 2), "ci")
            .expect("insert");
        s.record_decision(r3, "alice", true, None, "alice")
            .expect("approve");
        assert!(s.cancel_request(r3, "ci").expect("cancel"));
        let cancelled = s.get_request(r3).expect("get").expect("r3");
        assert_eq!(cancelled.status, RequestStatus::Cancelled);
        assert!(cancelled.decided_at.is_some());
        assert!(!s.cancel_request(r3, "ci").expect("cancel twice"));
        assert_err!(s.record_decision(r3, "bob", true, None, "bob"), Decided);

        // Finish a pending one as expired (or denied).
        let r4 = s
            .insert_pending_request(&new_request("acme", 1), "ci")
            .expect("insert");
        assert!(s
            .finish_request(r4, RequestStatus::Expired, None, "hallmark")
            .expect("expire"));
        let expired = s.get_request(r4).expect("get").expect("r4");
        assert_eq!(expired.status, RequestStatus::Expired);
        assert!(expired.decided_at.is_some());
        assert_err!(s.record_decision(r4, "alice", true, None, "alice"), Decided);
        assert!(!s
            .cancel_request(r4, "ci")
            .expect("cancel an expired request"));
        let r5 = s
            .insert_pending_request(&new_request("beta", 1), "ci")
            .expect("insert");
        let r6 = s
            .insert_pending_request(&new_request("beta", 3), "ci")
            .expect("insert");
        assert!(s
            .finish_request(r5, RequestStatus::Denied, None, "officer")
            .expect("deny a pending request"));
        assert_eq!(
            s.get_request(r5).expect("get").expect("r5").status,
            RequestStatus::Denied
        );

        // Unknown requests.
        let unknown = r6 + 1000;
        assert_err!(
            s.record_decision(unknown, "alice", true, None, "alice"),
            NotFound
        );
        assert!(!s.cancel_request(unknown, "ci").expect("cancel unknown"));
        assert!(!s
            .finish_request(unknown, RequestStatus::Expired, None, "hallmark")
            .expect("finish unknown"));
        assert!(s.approvals(unknown).expect("approvals").is_empty());

        // Listing: newest first, filtered by status and publisher, paged below an id.
        let all = s.list_requests(None, None, None, 100).expect("list");
        assert_eq!(ids(&all), [r6, r5, r4, r3, r2, r1]);
        same(
            &all[5],
            &s.get_request(r1).expect("get").expect("r1"),
            "a listed request is the stored record",
        );
        let pending = s
            .list_requests(Some(RequestStatus::Pending), None, None, 100)
            .expect("list");
        assert_eq!(ids(&pending), [r6]);
        let denied = s
            .list_requests(Some(RequestStatus::Denied), None, None, 100)
            .expect("list");
        assert_eq!(ids(&denied), [r5, r2]);
        let acme_denied = s
            .list_requests(Some(RequestStatus::Denied), Some("acme"), None, 100)
            .expect("list");
        assert_eq!(ids(&acme_denied), [r2]);
        let beta = s
            .list_requests(None, Some("beta"), None, 100)
            .expect("list");
        assert_eq!(ids(&beta), [r6, r5]);
        assert_eq!(
            ids(&s.list_requests(None, None, None, 2).expect("list")),
            [r6, r5]
        );
        assert_eq!(
            ids(&s.list_requests(None, None, Some(r5), 2).expect("list")),
            [r4, r3]
        );
        assert_eq!(
            ids(&s.list_requests(None, None, Some(r3), 2).expect("list")),
            [r2, r1]
        );
        assert!(s
            .list_requests(None, None, Some(r1), 2)
            .expect("list")
            .is_empty());

        // Many approvers at once on a 2-of-N request: exactly one claims it.
        let r7 = s
            .insert_pending_request(&new_request("acme", 2), "ci")
            .expect("insert");
        let results: Vec<Result<Decision, StoreError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    scope.spawn(move || {
                        let who = format!("approver-{i}");
                        s.record_decision(r7, &who, true, None, &who)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("an approver thread"))
                .collect()
        });
        let claims = results
            .iter()
            .filter(|r| matches!(r, Ok(Decision { claimed: true, .. })))
            .count();
        assert_eq!(claims, 1, "exactly one approval claims: {results:?}");
        assert!(
            results.iter().all(|r| matches!(
                r,
                Ok(Decision {
                    approvals: 1,
                    claimed: false
                }) | Ok(Decision {
                    approvals: 2,
                    claimed: true
                }) | Err(StoreError::Decided(_))
            )),
            "{results:?}"
        );
        assert_eq!(s.approvals(r7).expect("approvals").len(), 2);
        assert_eq!(ids(&s.claimed_requests().expect("claimed")), [r7]);

        assert_audited(
            s,
            &[
                ("request.pending", &r1.to_string()),
                ("request.approved", &r1.to_string()),
                ("request.issued", &r1.to_string()),
                ("request.denied", &r2.to_string()),
                ("request.cancelled", &r3.to_string()),
                ("request.expired", &r4.to_string()),
                ("request.denied", &r5.to_string()),
            ],
        );
        healthy(s);
    }

    /// `finish_request` ends a pending request as expired or denied, a claimed one as issued or
    /// denied, and nothing else (it never claims, un-claims or issues past the approvals).
    pub fn finish_request_only_documented_moves(s: &dyn Store) {
        let pending = s
            .insert_pending_request(&new_request("acme", 2), "ci")
            .expect("insert");
        for to in [
            RequestStatus::Issued,
            RequestStatus::Approved,
            RequestStatus::Pending,
        ] {
            assert!(
                !s.finish_request(pending, to, Some("x"), "ci")
                    .expect("finish"),
                "a pending request is not finished as {to}"
            );
            assert_eq!(
                s.get_request(pending)
                    .expect("get")
                    .expect("request")
                    .status,
                RequestStatus::Pending
            );
        }
        let claimed = s
            .insert_pending_request(&new_request("acme", 1), "ci")
            .expect("insert");
        s.record_decision(claimed, "alice", true, None, "alice")
            .expect("claim");
        for to in [
            RequestStatus::Expired,
            RequestStatus::Pending,
            RequestStatus::Cancelled,
        ] {
            assert!(
                !s.finish_request(claimed, to, None, "ci").expect("finish"),
                "a claimed request is not finished as {to}"
            );
            assert_eq!(
                s.get_request(claimed)
                    .expect("get")
                    .expect("request")
                    .status,
                RequestStatus::Approved
            );
        }
    }

    // ---------------------------------------------------------------------------------------
    // Signing: keys, policies, signature requests, signatures

    fn key(label: &str, publisher: &str) -> KeyRecord {
        KeyRecord {
            label: label.into(),
            publisher: publisher.into(),
            key_store: "pkcs11".into(),
            algorithm: "rsa-3072".into(),
            uri: format!("pkcs11:object={label}"),
            csr_der: format!("csr of {label}").into_bytes(),
            cert_serial: None,
            cert_der: None,
            created_at: 1_700_000_000,
        }
    }

    fn signature(id: i64, key: &str, n: u8) -> SignatureRecord {
        SignatureRecord {
            id,
            key_label: key.into(),
            digest_algorithm: "sha256".into(),
            digest: format!("{n:02x}").repeat(32),
            format: "raw".into(),
            requester: "ci".into(),
            approvers: n.is_multiple_of(2).then(|| "alice,bob".into()),
            metadata: Some(format!("{{\"build\":{n}}}")),
            created_at: 1_700_000_000 + i64::from(n),
            identity: (!n.is_multiple_of(2))
                .then(|| format!("{{\"kind\":\"oidc\",\"rule\":\"r{n}\"}}")),
        }
    }

    fn signature_request(key: &str, approvals: i64) -> SignatureRequestRecord {
        SignatureRequestRecord {
            id: 0,
            key_label: key.into(),
            publisher: "acme".into(),
            requester: "ci".into(),
            digest_algorithm: "sha384".into(),
            digest: "ab".repeat(48),
            format: "cms".into(),
            metadata: Some("{\"release\":\"1.0\"}".into()),
            status: SignatureRequestStatus::Pending,
            approvals_required: approvals,
            created_at: 0,
            expires_at: now() + 3_600,
            decided_at: None,
            signature_id: None,
            signature: None,
            timestamp_token: None,
            identity: Some(r#"{"kind":"oidc","issuer":"github","rule":"github:acme/app","claims":{"ref":"refs/tags/v1"}}"#.into()),
        }
    }

    /// Publishers IDS (code signing, Germany).
    fn add_publishers(s: &dyn Store, ids: &[&str]) {
        for p in ids {
            s.add_publisher(
                &Publisher {
                    id: (*p).into(),
                    org: (*p).into(),
                    country: "DE".into(),
                    state: None,
                    locality: None,
                    profiles: vec!["code-signing".into()],
                    created_at: 1,
                },
                "officer",
            )
            .expect("a publisher");
        }
    }

    fn signature_ids(list: &[SignatureRecord]) -> Vec<i64> {
        list.iter().map(|s| s.id).collect()
    }

    pub fn signing(s: &dyn Store) {
        let t0 = now();
        add_publishers(s, &["acme", "beta"]);

        // Keys.
        assert!(s.get_key("k1").expect("get").is_none());
        let (k1, k0, k2) = (key("k1", "acme"), key("k0", "acme"), key("k2", "beta"));
        for k in [&k1, &k2, &k0] {
            s.insert_key(k, "officer").expect("insert a key");
        }
        same(
            &s.get_key("k1").expect("get").expect("k1"),
            &k1,
            "a key reads back",
        );
        let labels = |p: Option<&str>| -> Vec<String> {
            s.list_keys(p)
                .expect("list keys")
                .into_iter()
                .map(|k| k.label)
                .collect()
        };
        assert_eq!(labels(None), ["k0", "k1", "k2"], "keys by label");
        assert_eq!(labels(Some("acme")), ["k0", "k1"]);
        assert_eq!(labels(Some("beta")), ["k2"]);
        assert!(labels(Some("nobody")).is_empty());
        assert_err!(s.insert_key(&key("k1", "beta"), "officer"), Conflict);
        assert_eq!(s.get_key("k1").expect("get").expect("k1").publisher, "acme");

        s.set_key_certificate("k1", "k1-serial", b"k1 cert", "officer")
            .expect("attach a certificate");
        same(
            &s.get_key("k1").expect("get").expect("k1"),
            &KeyRecord {
                cert_serial: Some("k1-serial".into()),
                cert_der: Some(b"k1 cert".to_vec()),
                ..k1.clone()
            },
            "the key's certificate (read right after the write)",
        );
        assert_err!(
            s.set_key_certificate("nope", "x", b"x", "officer"),
            NotFound
        );

        // Policies: set replaces; updated_at is the store's time.
        assert_eq!(s.get_key_policy("k1").expect("get"), None);
        let policy = KeyPolicyRecord {
            key_label: "k1".into(),
            formats: Some("raw,cms".into()),
            digests: Some("sha256".into()),
            signers: Some("ci".into()),
            approvals_required: 2,
            approvers: Some("alice,bob,carol".into()),
            rate_per_minute: Some(60),
            updated_at: 0,
        };
        s.set_key_policy(&policy, "officer").expect("set a policy");
        let got = s.get_key_policy("k1").expect("get").expect("policy");
        assigned(got.updated_at, t0, "a policy's updated_at");
        assert_eq!(
            got,
            KeyPolicyRecord {
                updated_at: got.updated_at,
                ..policy.clone()
            }
        );
        let open = KeyPolicyRecord {
            key_label: "k1".into(),
            ..Default::default()
        };
        s.set_key_policy(&open, "officer")
            .expect("replace the policy");
        let got = s.get_key_policy("k1").expect("get").expect("policy");
        assert_eq!(
            got,
            KeyPolicyRecord {
                updated_at: got.updated_at,
                ..open.clone()
            },
            "replaced whole, read right after the write"
        );
        assert_eq!(s.get_key_policy("k2").expect("get"), None);

        // Signatures, and signature requests sharing their ids.
        assert_eq!(s.count_signatures().expect("count"), 0);
        assert!(s.get_signature(1).expect("get").is_none());
        let a = s
            .insert_signature(&signature(0, "k1", 1), "ci")
            .expect("sign");
        assert!(a > 0, "an id is assigned");
        assert_eq!(
            s.get_signature(a).expect("get"),
            Some(SignatureRecord {
                id: a,
                ..signature(0, "k1", 1)
            })
        );
        let sr = signature_request("k1", 2);
        let r1 = s.insert_signature_request(&sr, "ci").expect("a request");
        assert!(
            r1 > a,
            "a request takes the next number of the shared sequence"
        );
        let b = s
            .insert_signature(&signature(0, "k2", 2), "ci")
            .expect("sign");
        assert!(
            b > r1,
            "a request's number is not given to a later signature"
        );
        assert!(s.get_signature(r1).expect("get").is_none());

        let got = s.get_signature_request(r1).expect("get").expect("r1");
        assert_eq!(got.id, r1);
        assert_eq!(
            got.identity, sr.identity,
            "the requester's identity is kept"
        );
        assert_eq!(got.key_label, sr.key_label);
        assert_eq!(got.publisher, sr.publisher);
        assert_eq!(got.requester, sr.requester);
        assert_eq!(got.digest_algorithm, sr.digest_algorithm);
        assert_eq!(got.digest, sr.digest);
        assert_eq!(got.format, sr.format);
        assert_eq!(got.metadata, sr.metadata);
        assert_eq!(got.status, SignatureRequestStatus::Pending);
        assert_eq!(got.approvals_required, 2);
        assigned(got.created_at, t0, "a signature request's created_at");
        assert_eq!(got.expires_at, sr.expires_at);
        assert_eq!(got.decided_at, None);
        assert_eq!(got.signature_id, None);
        assert_eq!(got.signature, None);
        assert_eq!(got.timestamp_token, None);
        assert!(s.signature_approvals(r1).expect("approvals").is_empty());

        // M-of-N on a signature request.
        let d = s
            .record_signature_decision(r1, "alice", true, Some("ok"), "alice")
            .expect("approve");
        assert_eq!(
            d,
            Decision {
                approvals: 1,
                claimed: false
            }
        );
        assert_eq!(
            s.get_signature_request(r1)
                .expect("get")
                .expect("r1")
                .status,
            SignatureRequestStatus::Pending
        );
        assert_err!(
            s.record_signature_decision(r1, "alice", true, None, "alice"),
            Conflict
        );
        assert_err!(
            s.record_signature_decision(r1, "alice", false, None, "alice"),
            Conflict
        );
        let d = s
            .record_signature_decision(r1, "bob", true, None, "bob")
            .expect("approve");
        assert_eq!(
            d,
            Decision {
                approvals: 2,
                claimed: true
            }
        );
        assert_eq!(
            s.get_signature_request(r1)
                .expect("get")
                .expect("r1")
                .status,
            SignatureRequestStatus::Signing
        );
        // Stale decisions once claimed: `Decided`, as for certificate requests (one workflow).
        assert_err!(
            s.record_signature_decision(r1, "carol", true, None, "carol"),
            Decided
        );
        assert_err!(
            s.record_signature_decision(r1, "carol", false, None, "carol"),
            Decided
        );
        let approvals = s.signature_approvals(r1).expect("approvals");
        assert_eq!(
            approvals
                .iter()
                .map(|a| (
                    a.approver.as_str(),
                    a.decision.as_str(),
                    a.comment.as_deref()
                ))
                .collect::<Vec<_>>(),
            [("alice", "approve", Some("ok")), ("bob", "approve", None)],
            "oldest first, stale ones not recorded"
        );
        assert_eq!(
            s.signature_request_ids(SignatureRequestStatus::Signing)
                .expect("ids"),
            [r1]
        );

        // Finishing: only from the state the caller names.
        assert!(!s
            .finish_signature_request(
                r1,
                SignatureRequestStatus::Pending,
                SignatureRequestStatus::Signed,
                None,
                "bob"
            )
            .expect("finish from the wrong state"));
        let sid = s
            .insert_signature(
                &SignatureRecord {
                    approvers: Some("alice,bob".into()),
                    ..signature(r1, "k1", 3)
                },
                "bob",
            )
            .expect("the request's signature");
        assert_eq!(sid, r1, "the signature takes its request's number");
        let t1 = now();
        assert!(s
            .finish_signature_request(
                r1,
                SignatureRequestStatus::Signing,
                SignatureRequestStatus::Signed,
                Some(SignedRequest {
                    signature_id: sid,
                    signature: b"the signature",
                    timestamp_token: Some(b"the token"),
                }),
                "bob"
            )
            .expect("finish"));
        let signed = s.get_signature_request(r1).expect("get").expect("r1");
        assert_eq!(signed.status, SignatureRequestStatus::Signed);
        assigned(signed.decided_at.expect("decided_at"), t1, "decided_at");
        assert_eq!(signed.signature_id, Some(sid));
        assert_eq!(signed.signature.as_deref(), Some(&b"the signature"[..]));
        assert_eq!(signed.timestamp_token.as_deref(), Some(&b"the token"[..]));
        assert!(!s
            .finish_signature_request(
                r1,
                SignatureRequestStatus::Signing,
                SignatureRequestStatus::Failed,
                None,
                "bob"
            )
            .expect("finish twice"));
        assert_eq!(
            s.get_signature_request(r1)
                .expect("get")
                .expect("r1")
                .status,
            SignatureRequestStatus::Signed
        );
        // A number some signature already holds is not taken twice.
        let c = s
            .insert_signature(&signature(b, "k2", 4), "ci")
            .expect("sign");
        assert!(c > b && c != r1, "a fresh id for a taken one");

        // A denial ends a signature request.
        let r2 = s.insert_signature_request(&sr, "ci").expect("a request");
        let d = s
            .record_signature_decision(r2, "alice", false, Some("no"), "alice")
            .expect("deny");
        assert_eq!(
            d,
            Decision {
                approvals: 0,
                claimed: false
            }
        );
        let denied = s.get_signature_request(r2).expect("get").expect("r2");
        assert_eq!(denied.status, SignatureRequestStatus::Denied);
        assert!(denied.decided_at.is_some());
        assert_err!(
            s.record_signature_decision(r2, "bob", true, None, "bob"),
            Decided
        );
        // Cancel a pending one; others wait.
        let r3 = s.insert_signature_request(&sr, "ci").expect("a request");
        let r4 = s.insert_signature_request(&sr, "ci").expect("a request");
        let r5 = s.insert_signature_request(&sr, "ci").expect("a request");
        assert!(r3 < r4 && r4 < r5);
        assert!(s
            .finish_signature_request(
                r3,
                SignatureRequestStatus::Pending,
                SignatureRequestStatus::Cancelled,
                None,
                "ci"
            )
            .expect("cancel"));
        assert_eq!(
            s.get_signature_request(r3)
                .expect("get")
                .expect("r3")
                .signature_id,
            None
        );
        assert_eq!(
            s.signature_request_ids(SignatureRequestStatus::Pending)
                .expect("ids"),
            [r4, r5],
            "oldest first"
        );
        assert_eq!(
            s.signature_request_ids(SignatureRequestStatus::Cancelled)
                .expect("ids"),
            [r3]
        );
        assert_eq!(
            s.signature_request_ids(SignatureRequestStatus::Denied)
                .expect("ids"),
            [r2]
        );
        assert!(s
            .signature_request_ids(SignatureRequestStatus::Failed)
            .expect("ids")
            .is_empty());
        // Unknown ones.
        let unknown = c + 1000;
        assert!(s.get_signature_request(unknown).expect("get").is_none());
        assert_err!(
            s.record_signature_decision(unknown, "alice", true, None, "alice"),
            NotFound
        );
        assert!(!s
            .finish_signature_request(
                unknown,
                SignatureRequestStatus::Pending,
                SignatureRequestStatus::Expired,
                None,
                "hallmark"
            )
            .expect("finish unknown"));
        assert!(s
            .signature_approvals(unknown)
            .expect("approvals")
            .is_empty());

        // Listing: newest first, by key and/or by the key's publisher, below an id.
        assert_eq!(s.count_signatures().expect("count"), 4);
        let all = s.list_signatures(None, None, None, 100).expect("list");
        assert_eq!(signature_ids(&all), [c, b, r1, a]);
        assert_eq!(
            all[2],
            SignatureRecord {
                id: r1,
                approvers: Some("alice,bob".into()),
                ..signature(0, "k1", 3)
            },
            "a listed signature is the stored record"
        );
        assert_eq!(
            signature_ids(
                &s.list_signatures(Some("k1"), None, None, 100)
                    .expect("list")
            ),
            [r1, a]
        );
        assert_eq!(
            signature_ids(
                &s.list_signatures(None, Some("beta"), None, 100)
                    .expect("list")
            ),
            [c, b]
        );
        assert_eq!(
            signature_ids(
                &s.list_signatures(Some("k1"), Some("beta"), None, 100)
                    .expect("list")
            ),
            Vec::<i64>::new()
        );
        assert_eq!(
            signature_ids(&s.list_signatures(None, None, None, 2).expect("list")),
            [c, b]
        );
        assert_eq!(
            signature_ids(&s.list_signatures(None, None, Some(b), 2).expect("list")),
            [r1, a]
        );
        assert!(s
            .list_signatures(None, None, Some(a), 2)
            .expect("list")
            .is_empty());

        assert_audited(
            s,
            &[
                ("key.created", "k1"),
                ("key.certificate_attached", "k1"),
                ("key.policy", "k1"),
                ("signature.created", &a.to_string()),
                ("signature.created", &r1.to_string()),
                ("signature.pending", &r1.to_string()),
                ("signature.approved", &r1.to_string()),
                ("signature.signed", &r1.to_string()),
                ("signature.denied", &r2.to_string()),
                ("signature.cancelled", &r3.to_string()),
            ],
        );
        healthy(s);
    }

    // ---------------------------------------------------------------------------------------
    // Revocation and publication

    fn new_revocation(serial: &str, reason: u8, shard: Option<u32>) -> NewRevocation {
        NewRevocation {
            serial: serial.into(),
            reason,
            invalidity_date: None,
            crl_shard: shard,
        }
    }

    fn revoked(s: &dyn Store, r: &NewRevocation) -> RevocationRecord {
        match s.revoke(r, "officer").expect("revoke") {
            RevokeOutcome::Revoked(rec) => rec,
            other => panic!("a first revocation of {}: {other:?}", r.serial),
        }
    }

    fn revision(s: &dyn Store, ca: &str) -> Option<i64> {
        s.publication_revisions()
            .expect("revisions")
            .into_iter()
            .find(|(c, _)| c == ca)
            .map(|(_, r)| r)
    }

    fn dirty(s: &dyn Store) -> Vec<String> {
        s.dirty_responses(100)
            .expect("dirty responses")
            .into_iter()
            .map(|d| d.serial)
            .collect()
    }

    fn presigned(serial: &str, ca: &str, revoked: Option<(u8, i64)>, t: i64) -> Presigned {
        Presigned {
            serial: serial.into(),
            ca: ca.into(),
            revoked,
            this_update: t,
            next_update: t + 3_600,
            body: format!("response for {serial}").into_bytes(),
        }
    }

    pub fn revocation(s: &dyn Store) {
        let t0 = now();
        for serial in ["c1", "c2", "c3", "c4", "c5"] {
            issue(s, &intent(serial));
        }
        issue(
            s,
            &Intent {
                ca: "ca-2".into(),
                ..intent("d1")
            },
        );
        issue(
            s,
            &Intent {
                not_after: t0 - 10,
                ..intent("e1")
            },
        );
        s.record_intent(&intent("i1")).expect("an intent");

        // Standing of certificates.
        assert_eq!(s.certificate_standing("zz").expect("standing"), None);
        assert_eq!(s.certificate_standing_cached("zz").expect("standing"), None);
        let intent_standing = CertStanding {
            ca: "ca-1".into(),
            status: CertStatus::Intent,
            revoked: None,
        };
        assert_eq!(
            s.certificate_standing("i1").expect("standing"),
            Some(intent_standing.clone())
        );
        assert_eq!(
            s.certificate_standing_cached("i1").expect("standing"),
            Some(intent_standing)
        );
        let good = CertStanding {
            ca: "ca-1".into(),
            status: CertStatus::Issued,
            revoked: None,
        };
        assert_eq!(
            s.certificate_standing("c4").expect("standing"),
            Some(good.clone())
        );
        assert_eq!(
            s.certificate_standing_cached("c4").expect("standing"),
            Some(good.clone())
        );
        assert_eq!(
            s.certificate_standing_cached("c4").expect("standing again"),
            Some(good)
        );

        // Pre-signed responses for good certificates.
        let cands = |after: &str, stale_before: i64, limit: usize| -> Vec<PresignCandidate> {
            s.presign_candidates("ca-1", stale_before, after, limit)
                .expect("candidates")
        };
        let all: Vec<String> = cands("", now(), 100)
            .into_iter()
            .map(|c| c.serial)
            .collect();
        assert_eq!(
            all,
            ["c1", "c2", "c3", "c4", "c5"],
            "issued, unexpired certificates of the CA, by serial"
        );
        let page: Vec<_> = cands("c2", now(), 2);
        assert_eq!(
            page.iter().map(|c| c.serial.as_str()).collect::<Vec<_>>(),
            ["c3", "c4"]
        );
        assert!(page.iter().all(|c| c.ca == "ca-1" && c.revoked.is_none()));
        assert_eq!(s.count_presigned(None).expect("count"), 0);
        let t = now();
        let mut c5 = presigned("c5", "ca-1", None, t);
        c5.next_update = t + 100;
        assert_eq!(
            s.store_presigned(&[presigned("c4", "ca-1", None, t), c5.clone()])
                .expect("store"),
            2
        );
        assert_eq!(s.count_presigned(None).expect("count"), 2);
        assert_eq!(s.count_presigned(Some("ca-1")).expect("count"), 2);
        assert_eq!(s.count_presigned(Some("ca-2")).expect("count"), 0);
        let got = s
            .presigned_response("c4", "ca-1")
            .expect("fetch")
            .expect("c4's response");
        assert_eq!(
            (got.this_update, got.next_update, got.body),
            (t, t + 3_600, b"response for c4".to_vec())
        );
        assert!(s.presigned_response("c4", "ca-2").expect("fetch").is_none());
        assert!(s.presigned_response("c1", "ca-1").expect("fetch").is_none());
        let fresh: Vec<String> = cands("", t, 100).into_iter().map(|c| c.serial).collect();
        assert_eq!(
            fresh,
            ["c1", "c2", "c3"],
            "fresh responses are not candidates"
        );
        let stale: Vec<String> = cands("", t + 1, 100)
            .into_iter()
            .map(|c| c.serial)
            .collect();
        assert_eq!(stale, ["c1", "c2", "c3", "c4", "c5"], "stale ones are");

        // Revocation refusals.
        assert!(s.publication_revisions().expect("revisions").is_empty());
        assert_err!(
            s.revoke(&new_revocation("zz", 0, None), "officer"),
            NotFound
        );
        assert_err!(
            s.revoke(&new_revocation("i1", 0, None), "officer"),
            NotFound
        );
        assert!(s.get_revocation("c1").expect("get").is_none());

        // A revocation.
        let t1 = now();
        let rec = revoked(s, &new_revocation("c1", 4, Some(1)));
        assert_eq!(rec.serial, "c1");
        assert_eq!(rec.ca, "ca-1", "the CA is the certificate's");
        assert_eq!(rec.reason, 4);
        assigned(rec.revoked_at, t1, "revoked_at");
        assert_eq!(rec.invalidity_date, None);
        assert_eq!(rec.actor, "officer");
        assert_eq!(rec.crl_shard, Some(1));
        assert_eq!(s.get_revocation("c1").expect("get"), Some(rec.clone()));
        let rev1 = revision(s, "ca-1").expect("a revision for ca-1");
        assert_eq!(revision(s, "ca-2"), None);

        // Twice: Conflict, unless the move is to keyCompromise.
        assert_err!(
            s.revoke(&new_revocation("c1", 4, Some(1)), "officer"),
            Conflict
        );
        assert_err!(
            s.revoke(&new_revocation("c1", 5, Some(1)), "officer"),
            Conflict
        );
        assert_eq!(
            revision(s, "ca-1"),
            Some(rev1),
            "a refusal publishes nothing"
        );
        let compromise = NewRevocation {
            invalidity_date: Some(t1 - 3_600),
            ..new_revocation("c1", 1, Some(7))
        };
        let outcome = s
            .revoke(&compromise, "officer-2")
            .expect("to keyCompromise");
        let want = RevocationRecord {
            reason: 1,
            invalidity_date: Some(t1 - 3_600),
            actor: "officer-2".into(),
            ..rec.clone()
        };
        assert_eq!(
            outcome,
            RevokeOutcome::ReasonChanged {
                previous: 4,
                record: want.clone()
            },
            "the revocation time and partition stay"
        );
        let stored = s.get_revocation("c1").expect("get").expect("c1");
        assert_eq!(
            (
                stored.reason,
                stored.revoked_at,
                stored.invalidity_date,
                stored.crl_shard
            ),
            (1, rec.revoked_at, Some(t1 - 3_600), Some(1))
        );
        let rev2 = revision(s, "ca-1").expect("revision");
        assert!(rev2 > rev1, "a reason change moves the revision");
        assert_err!(s.revoke(&compromise, "officer"), Conflict);
        assert_eq!(revision(s, "ca-1"), Some(rev2));

        revoked(s, &new_revocation("c2", 1, Some(2)));
        revoked(s, &new_revocation("c3", 0, None));
        revoked(s, &new_revocation("d1", 3, Some(1)));
        let rev3 = revision(s, "ca-1").expect("revision");
        assert!(rev3 > rev2);
        let revisions = s.publication_revisions().expect("revisions");
        assert_eq!(
            revisions
                .iter()
                .map(|(c, _)| c.as_str())
                .collect::<Vec<_>>(),
            ["ca-1", "ca-2"],
            "one revision per CA, by name"
        );

        // Counting and streaming a CRL's entries.
        assert_eq!(s.count_revocations("ca-1", None).expect("count"), 3);
        assert_eq!(s.count_revocations("ca-1", Some(1)).expect("count"), 1);
        assert_eq!(s.count_revocations("ca-1", Some(2)).expect("count"), 1);
        assert_eq!(s.count_revocations("ca-1", Some(9)).expect("count"), 0);
        assert_eq!(s.count_revocations("ca-2", None).expect("count"), 1);
        assert_eq!(s.count_revocations("nope", None).expect("count"), 0);
        let mut entries = Vec::new();
        s.for_each_revocation("ca-1", None, &mut |e| {
            entries.push((
                e.serial.to_string(),
                e.revoked_at,
                e.reason,
                e.invalidity_date,
            ));
            true
        })
        .expect("stream");
        entries.sort();
        let want: Vec<_> = ["c1", "c2", "c3"]
            .iter()
            .map(|serial| {
                let r = s.get_revocation(serial).expect("get").expect("revoked");
                (r.serial, r.revoked_at, r.reason, r.invalidity_date)
            })
            .collect();
        assert_eq!(entries, want, "every entry, as recorded");
        let mut calls = 0;
        s.for_each_revocation("ca-1", None, &mut |_| {
            calls += 1;
            false
        })
        .expect("stream and stop");
        assert_eq!(calls, 1, "false stops the scan");
        let mut shard2 = Vec::new();
        s.for_each_revocation("ca-1", Some(2), &mut |e| {
            shard2.push(e.serial.to_string());
            true
        })
        .expect("stream a partition");
        assert_eq!(shard2, ["c2"]);
        let mut none = 0;
        s.for_each_revocation("nope", None, &mut |_| {
            none += 1;
            true
        })
        .expect("stream nothing");
        assert_eq!(none, 0);

        // Standing after revocation, through the cache too.
        let revoked_c4 = revoked(s, &new_revocation("c4", 9, None));
        let want = CertStanding {
            ca: "ca-1".into(),
            status: CertStatus::Issued,
            revoked: Some((9, revoked_c4.revoked_at)),
        };
        assert_eq!(
            s.certificate_standing("c4").expect("standing"),
            Some(want.clone())
        );
        assert_eq!(
            s.certificate_standing_cached("c4").expect("standing"),
            Some(want),
            "a revocation is seen at once through the cache"
        );

        // A revocation drops the pre-signed response and queues the certificate.
        assert!(s.presigned_response("c4", "ca-1").expect("fetch").is_none());
        assert_eq!(s.count_presigned(None).expect("count"), 1);
        let queued = s.dirty_responses(100).expect("dirty");
        let c4 = queued
            .iter()
            .find(|d| d.serial == "c4")
            .expect("c4 is queued");
        assert_eq!(c4.ca, "ca-1");
        assert_eq!(c4.revoked, Some((9, revoked_c4.revoked_at)));
        let mut queued_serials = dirty(s);
        queued_serials.sort();
        assert_eq!(queued_serials, ["c1", "c2", "c3", "c4", "d1"]);
        assert_eq!(
            s.dirty_responses(2).expect("dirty").len(),
            2,
            "at most `limit`"
        );
        let revoked_cands = cands("c3", now(), 1);
        assert_eq!(revoked_cands[0].serial, "c4");
        assert_eq!(revoked_cands[0].revoked, Some((9, revoked_c4.revoked_at)));

        // A response signed for a state that changed is skipped and stays queued.
        let t2 = now();
        assert_eq!(
            s.store_presigned(&[presigned("c4", "ca-1", None, t2)])
                .expect("store"),
            0
        );
        assert!(s.presigned_response("c4", "ca-1").expect("fetch").is_none());
        assert!(dirty(s).contains(&"c4".to_string()));
        assert_eq!(
            s.store_presigned(&[presigned(
                "c4",
                "ca-1",
                Some((9, revoked_c4.revoked_at)),
                t2
            )])
            .expect("store"),
            1
        );
        assert!(s.presigned_response("c4", "ca-1").expect("fetch").is_some());
        assert!(
            !dirty(s).contains(&"c4".to_string()),
            "stored: no longer queued"
        );
        // Mixed batch: the stale one is skipped, the right one stored.
        let c1 = s.get_revocation("c1").expect("get").expect("c1");
        assert_eq!(
            s.store_presigned(&[
                presigned("c1", "ca-1", Some((4, c1.revoked_at)), t2),
                presigned("c2", "ca-1", None, t2),
                presigned("c1", "ca-1", Some((1, c1.revoked_at)), t2),
            ])
            .expect("store"),
            1
        );
        let mut left = dirty(s);
        left.sort();
        assert_eq!(left, ["c2", "c3", "d1"]);
        s.forget_dirty(&["c2".to_string(), "d1".to_string(), "zz".to_string()])
            .expect("forget");
        assert_eq!(dirty(s), ["c3"]);

        // Purging responses past their nextUpdate.
        assert_eq!(s.count_presigned(None).expect("count"), 3);
        assert_eq!(s.purge_expired_responses(t - 1).expect("purge nothing"), 0);
        assert_eq!(
            s.purge_expired_responses(t + 100).expect("purge"),
            1,
            "c5's"
        );
        assert!(s.presigned_response("c5", "ca-1").expect("fetch").is_none());
        assert_eq!(s.count_presigned(None).expect("count"), 2);

        // CRL numbers only grow, per CA.
        assert_eq!(s.crl_number("ca-1").expect("crl number"), None);
        let n1 = s.next_crl_number("ca-1", t, "crl").expect("next");
        let n2 = s.next_crl_number("ca-1", t, "crl").expect("next");
        let n3 = s.next_crl_number("ca-1", t + 60, "crl").expect("next");
        assert!(n1 < n2 && n2 < n3, "{n1} < {n2} < {n3}");
        assert_eq!(s.crl_number("ca-1").expect("crl number"), Some(n3));
        let m1 = s.next_crl_number("ca-2", t, "crl").expect("next");
        assert_eq!(s.crl_number("ca-2").expect("crl number"), Some(m1));
        assert_eq!(
            s.crl_number("ca-1").expect("crl number"),
            Some(n3),
            "per CA"
        );
        let n4 = s.next_crl_number("ca-1", t, "crl").expect("next");
        assert!(n4 > n3);
        assert_eq!(s.crl_number("nope").expect("crl number"), None);

        assert_audited(
            s,
            &[
                ("certificate.revoked", "c1"),
                ("certificate.revocation_updated", "c1"),
                ("certificate.revoked", "d1"),
                ("crl.issued", "ca-1"),
                ("crl.issued", "ca-2"),
            ],
        );
        healthy(s);
    }

    /// `dirty_responses` answers in serial order, so a limited batch is the same whichever
    /// order the invalidations were queued in.
    pub fn dirty_responses_in_serial_order(s: &dyn Store) {
        for serial in ["ff", "80", "01"] {
            issue(s, &intent(serial));
            revoked(s, &new_revocation(serial, 0, None));
        }
        assert_eq!(
            s.dirty_responses(1)
                .expect("dirty")
                .into_iter()
                .map(|d| d.serial)
                .collect::<Vec<_>>(),
            ["01"],
            "the lowest serial comes first"
        );
        assert_eq!(dirty(s), ["01", "80", "ff"]);
    }

    // ---------------------------------------------------------------------------------------
    // ACME

    fn eab(kid: &str, created_at: i64) -> EabKey {
        EabKey {
            kid: kid.into(),
            publisher: "acme".into(),
            hmac_key: format!("hmac key of {kid}").into_bytes(),
            created_at,
            revoked_at: None,
            account_id: None,
        }
    }

    fn account(id: &str, eab_kid: Option<&str>) -> AcmeAccount {
        AcmeAccount {
            id: id.into(),
            directory: "tls".into(),
            publisher: "acme".into(),
            jwk: format!("{{\"kty\":\"EC\",\"x\":\"{id}\"}}"),
            thumbprint: format!("thumb-{id}"),
            status: AcmeAccountStatus::Valid,
            contact: "[\"mailto:ops@example.com\"]".into(),
            eab_kid: eab_kid.map(Into::into),
            created_at: 1_700_000_000,
        }
    }

    fn order(id: &str, account: &str, created_at: i64) -> AcmeOrder {
        AcmeOrder {
            id: id.into(),
            account_id: account.into(),
            directory: "tls".into(),
            status: AcmeOrderStatus::Pending,
            identifiers: format!("[{{\"type\":\"dns\",\"value\":\"{id}.example\"}}]"),
            not_before: Some(1_000),
            not_after: Some(2_000),
            expires_at: now() + 3_600,
            error: None,
            cert_serial: None,
            created_at,
        }
    }

    fn authz(id: &str, order: &AcmeOrder, value: &str) -> AcmeAuthz {
        AcmeAuthz {
            id: id.into(),
            order_id: order.id.clone(),
            account_id: order.account_id.clone(),
            id_type: "dns".into(),
            id_value: value.into(),
            status: AcmeAuthzStatus::Pending,
            expires_at: now() + 3_600,
        }
    }

    fn challenge(authz: &str, kind: &str) -> AcmeChallenge {
        AcmeChallenge {
            id: format!("{authz}-{kind}"),
            authz_id: authz.into(),
            kind: kind.into(),
            token: format!("token-{authz}-{kind}"),
            status: AcmeChallengeStatus::Pending,
            validated_at: None,
            error: None,
        }
    }

    fn order_status(s: &dyn Store, id: &str) -> AcmeOrder {
        s.get_acme_order(id).expect("get order").expect("the order")
    }

    fn authz_status(s: &dyn Store, id: &str) -> String {
        s.get_acme_authz(id)
            .expect("get authz")
            .expect("the authz")
            .status
            .to_string()
    }

    /// An order with one authorization and one http-01 challenge, inserted.
    fn simple_order(s: &dyn Store, id: &str, account: &str, created_at: i64) -> (String, String) {
        let o = order(id, account, created_at);
        let az = authz(&format!("{id}-az"), &o, &format!("{id}.example"));
        let ch = challenge(&az.id, "http-01");
        let ids = (az.id.clone(), ch.id.clone());
        s.insert_acme_order(&o, &[(az, vec![ch])], "acme")
            .expect("insert an order");
        ids
    }

    pub fn acme(s: &dyn Store) {
        // EAB keys.
        assert!(s.get_eab_key("kid-1").expect("get").is_none());
        let (k1, k2, k0) = (eab("kid-1", 100), eab("kid-2", 100), eab("kid-0", 200));
        for k in [&k0, &k2, &k1] {
            s.insert_eab_key(k, "officer").expect("insert an EAB key");
        }
        same(
            &s.get_eab_key("kid-1").expect("get").expect("kid-1"),
            &k1,
            "an EAB key reads back",
        );
        let kids: Vec<String> = s
            .list_eab_keys()
            .expect("list")
            .into_iter()
            .map(|k| k.kid)
            .collect();
        assert_eq!(kids, ["kid-1", "kid-2", "kid-0"], "by creation, then kid");
        assert_err!(
            s.insert_eab_key(
                &EabKey {
                    publisher: "beta".into(),
                    ..k1.clone()
                },
                "officer"
            ),
            Conflict
        );
        let mut clear = s.eab_keys_in_clear().expect("in clear");
        clear.sort();
        assert_eq!(
            clear,
            vec![
                ("kid-0".to_string(), k0.hmac_key.clone()),
                ("kid-1".to_string(), k1.hmac_key.clone()),
                ("kid-2".to_string(), k2.hmac_key.clone()),
            ]
        );
        // Sealing replaces the stored key only if it is still the one read.
        let mut sealed = b"hms1".to_vec();
        sealed.extend_from_slice(&[7u8; 60]);
        s.replace_eab_hmac("kid-1", b"not the stored key", &sealed)
            .expect("replace a changed key");
        assert_eq!(
            s.get_eab_key("kid-1")
                .expect("get")
                .expect("kid-1")
                .hmac_key,
            k1.hmac_key
        );
        s.replace_eab_hmac("kid-1", &k1.hmac_key, &sealed)
            .expect("seal");
        assert_eq!(
            s.get_eab_key("kid-1")
                .expect("get")
                .expect("kid-1")
                .hmac_key,
            sealed
        );
        let clear: Vec<String> = s
            .eab_keys_in_clear()
            .expect("in clear")
            .into_iter()
            .map(|k| k.0)
            .collect();
        assert!(!clear.contains(&"kid-1".to_string()) && clear.len() == 2);

        let t0 = now();
        s.revoke_eab_key("kid-2", "officer").expect("revoke");
        assigned(
            s.get_eab_key("kid-2")
                .expect("get")
                .expect("kid-2")
                .revoked_at
                .expect("revoked_at"),
            t0,
            "an EAB key's revoked_at",
        );
        assert_err!(s.revoke_eab_key("kid-2", "officer"), NotFound);
        assert_err!(s.revoke_eab_key("nope", "officer"), NotFound);

        // Nonces: single use, unexpired.
        s.insert_acme_nonce("n-1", now() + 60).expect("nonce");
        s.insert_acme_nonce("A-sweeps", now() + 60).expect("nonce");
        s.insert_acme_nonce("n-old", now() - 1)
            .expect("expired nonce");
        assert!(s.take_acme_nonce("n-1").expect("take"));
        assert!(
            !s.take_acme_nonce("n-1").expect("take again"),
            "a nonce is used once"
        );
        assert!(!s.take_acme_nonce("n-old").expect("take expired"));
        assert!(!s.take_acme_nonce("n-old").expect("take expired again"));
        assert!(!s.take_acme_nonce("never").expect("take unknown"));
        assert!(s.take_acme_nonce("A-sweeps").expect("take"));

        // Accounts; an EAB key binds one account.
        assert!(s.get_acme_account("acct-1").expect("get").is_none());
        let a1 = account("acct-1", Some("kid-1"));
        s.insert_acme_account(&a1, "acme").expect("an account");
        same(
            &s.get_acme_account("acct-1").expect("get").expect("acct-1"),
            &a1,
            "an account reads back",
        );
        same(
            &s.find_acme_account_by_thumbprint(&a1.thumbprint)
                .expect("find")
                .expect("by thumbprint"),
            &a1,
            "found by thumbprint",
        );
        assert!(s
            .find_acme_account_by_thumbprint("nope")
            .expect("find")
            .is_none());
        assert_eq!(
            s.get_eab_key("kid-1")
                .expect("get")
                .expect("kid-1")
                .account_id
                .as_deref(),
            Some("acct-1")
        );
        assert_err!(
            s.insert_acme_account(&account("acct-x", Some("kid-1")), "acme"),
            Conflict
        );
        assert!(s.get_acme_account("acct-x").expect("get").is_none());
        assert_err!(
            s.insert_acme_account(&account("acct-y", Some("kid-2")), "acme"),
            Conflict
        );
        assert!(
            s.get_acme_account("acct-y").expect("get").is_none(),
            "a revoked key binds none"
        );
        // A key another account holds: refused, and the EAB key stays unbound.
        let twin = AcmeAccount {
            thumbprint: a1.thumbprint.clone(),
            ..account("acct-3", Some("kid-0"))
        };
        assert_err!(s.insert_acme_account(&twin, "acme"), Conflict);
        assert_eq!(
            s.get_eab_key("kid-0")
                .expect("get")
                .expect("kid-0")
                .account_id,
            None,
            "nothing of a refused account is written"
        );
        let a2 = account("acct-2", None);
        s.insert_acme_account(&a2, "acme")
            .expect("an account without EAB");

        s.update_acme_account("acct-1", Some("[\"mailto:new@example.com\"]"), None, "acme")
            .expect("update contact");
        let got = s.get_acme_account("acct-1").expect("get").expect("acct-1");
        assert_eq!(got.contact, "[\"mailto:new@example.com\"]");
        assert_eq!(got.status.as_str(), "valid");

        // Key change.
        s.change_acme_account_key(
            "acct-1",
            "{\"kty\":\"EC\",\"x\":\"new\"}",
            "thumb-new",
            "acme",
        )
        .expect("key change");
        let got = s.get_acme_account("acct-1").expect("get").expect("acct-1");
        assert_eq!(
            (got.jwk.as_str(), got.thumbprint.as_str()),
            ("{\"kty\":\"EC\",\"x\":\"new\"}", "thumb-new")
        );
        assert!(s
            .find_acme_account_by_thumbprint(&a1.thumbprint)
            .expect("find")
            .is_none());
        assert_eq!(
            s.find_acme_account_by_thumbprint("thumb-new")
                .expect("find")
                .expect("by the new key")
                .id,
            "acct-1"
        );
        assert_err!(
            s.change_acme_account_key("acct-1", "{}", &a2.thumbprint, "acme"),
            Conflict
        );
        assert_eq!(
            s.get_acme_account("acct-1")
                .expect("get")
                .expect("acct-1")
                .thumbprint,
            "thumb-new"
        );

        // An order with two authorizations, two challenges each.
        let o1 = order("o1", "acct-1", 10);
        let az_b = authz("az-b", &o1, "b.example");
        let az_a = authz("az-a", &o1, "a.example");
        let (ch_b_http, ch_b_dns) = (challenge("az-b", "http-01"), challenge("az-b", "dns-01"));
        let (ch_a_tls, ch_a_http) = (
            challenge("az-a", "tls-alpn-01"),
            challenge("az-a", "http-01"),
        );
        s.insert_acme_order(
            &o1,
            &[
                (az_b.clone(), vec![ch_b_http.clone(), ch_b_dns.clone()]),
                (az_a.clone(), vec![ch_a_tls.clone(), ch_a_http.clone()]),
            ],
            "acme",
        )
        .expect("insert an order");
        same(&order_status(s, "o1"), &o1, "an order reads back");
        same(
            &s.get_acme_authz("az-a").expect("get").expect("az-a"),
            &az_a,
            "an authz reads back",
        );
        let authzs = s.acme_authzs_of_order("o1").expect("authzs");
        assert_eq!(authzs.len(), 2);
        same(&authzs[0], &az_a, "by identifier: a.example first");
        same(&authzs[1], &az_b, "then b.example");
        let chs = s.acme_challenges_of_authz("az-a").expect("challenges");
        assert_eq!(chs.len(), 2);
        same(&chs[0], &ch_a_http, "by kind: http-01 first");
        same(&chs[1], &ch_a_tls, "then tls-alpn-01");
        same(
            &s.get_acme_challenge(&ch_b_dns.id)
                .expect("get")
                .expect("challenge"),
            &ch_b_dns,
            "a challenge reads back",
        );
        assert!(s.get_acme_order("nope").expect("get").is_none());
        assert!(s.get_acme_authz("nope").expect("get").is_none());
        assert!(s.get_acme_challenge("nope").expect("get").is_none());
        assert!(s.acme_authzs_of_order("nope").expect("authzs").is_empty());
        assert!(s
            .acme_challenges_of_authz("nope")
            .expect("challenges")
            .is_empty());
        assert_eq!(s.list_acme_orders("acct-1").expect("orders"), ["o1"]);
        assert!(!s
            .acme_account_authorized_for("acct-1", "dns", "a.example")
            .expect("authorized"));

        // Not ready: no finalization.
        assert!(!s
            .start_acme_finalize("o1", "acme")
            .expect("finalize a pending order"));
        // A challenge starts once.
        assert!(s
            .start_acme_challenge(&ch_a_http.id, "acme")
            .expect("start"));
        assert!(!s
            .start_acme_challenge(&ch_a_http.id, "acme")
            .expect("start twice"));
        assert!(!s
            .start_acme_challenge("nope", "acme")
            .expect("start unknown"));
        assert_eq!(
            s.get_acme_challenge(&ch_a_http.id)
                .expect("get")
                .expect("challenge")
                .status
                .as_str(),
            "processing"
        );
        let t1 = now();
        s.finish_acme_challenge(&ch_a_http.id, None, "acme")
            .expect("valid");
        let ch = s
            .get_acme_challenge(&ch_a_http.id)
            .expect("get")
            .expect("challenge");
        assert_eq!(ch.status.as_str(), "valid");
        assigned(ch.validated_at.expect("validated_at"), t1, "validated_at");
        assert_eq!(ch.error, None);
        assert_eq!(authz_status(s, "az-a"), "valid");
        assert_eq!(
            order_status(s, "o1").status.as_str(),
            "pending",
            "one authorization is still pending"
        );
        assert!(s
            .acme_account_authorized_for("acct-1", "dns", "a.example")
            .expect("authorized"));
        assert!(!s
            .acme_account_authorized_for("acct-1", "dns", "b.example")
            .expect("authorized"));
        assert!(!s
            .acme_account_authorized_for("acct-2", "dns", "a.example")
            .expect("authorized"));
        assert!(!s
            .acme_account_authorized_for("acct-1", "ip", "a.example")
            .expect("authorized"));
        assert!(
            !s.start_acme_challenge(&ch_a_tls.id, "acme").expect("start"),
            "the authorization is no longer pending"
        );
        assert!(s.start_acme_challenge(&ch_b_dns.id, "acme").expect("start"));
        s.finish_acme_challenge(&ch_b_dns.id, None, "acme")
            .expect("valid");
        assert_eq!(
            order_status(s, "o1").status.as_str(),
            "ready",
            "every authorization is valid"
        );
        // Finalization starts once.
        assert!(s.start_acme_finalize("o1", "acme").expect("finalize"));
        assert!(!s.start_acme_finalize("o1", "acme").expect("finalize twice"));
        assert!(!s
            .start_acme_finalize("nope", "acme")
            .expect("finalize unknown"));
        assert_eq!(order_status(s, "o1").status.as_str(), "processing");
        assert_eq!(s.list_acme_orders("acct-1").expect("orders"), ["o1"]);
        s.finish_acme_order("o1", Ok("serial-1"), "acme")
            .expect("valid");
        let done = order_status(s, "o1");
        assert_eq!(
            (done.status.as_str(), done.cert_serial.as_deref()),
            ("valid", Some("serial-1"))
        );
        same(
            &s.acme_order_of_certificate("serial-1")
                .expect("order of")
                .expect("o1"),
            &done,
            "the order that produced the certificate",
        );
        assert!(s
            .acme_order_of_certificate("nope")
            .expect("order of")
            .is_none());
        assert!(
            s.list_acme_orders("acct-1").expect("orders").is_empty(),
            "only open orders"
        );

        // A failed challenge makes its authorization and order invalid.
        let (az, ch) = simple_order(s, "o2", "acct-1", 20);
        assert!(s.start_acme_challenge(&ch, "acme").expect("start"));
        let problem = "{\"type\":\"urn:ietf:params:acme:error:connection\"}";
        s.finish_acme_challenge(&ch, Some(problem), "acme")
            .expect("invalid");
        let failed = s.get_acme_challenge(&ch).expect("get").expect("challenge");
        assert_eq!(
            (failed.status.as_str(), failed.error.as_deref()),
            ("invalid", Some(problem))
        );
        assert_eq!(authz_status(s, &az), "invalid");
        let o2 = order_status(s, "o2");
        assert_eq!(
            (o2.status.as_str(), o2.error.as_deref()),
            ("invalid", Some(problem))
        );

        // Finalization that fails.
        let (_, ch) = simple_order(s, "o3", "acct-1", 30);
        assert!(s.start_acme_challenge(&ch, "acme").expect("start"));
        s.finish_acme_challenge(&ch, None, "acme").expect("valid");
        assert!(s.start_acme_finalize("o3", "acme").expect("finalize"));
        let bad_csr = "{\"type\":\"urn:ietf:params:acme:error:badCSR\"}";
        s.finish_acme_order("o3", Err(bad_csr), "acme")
            .expect("invalid");
        let o3 = order_status(s, "o3");
        assert_eq!(
            (
                o3.status.as_str(),
                o3.error.as_deref(),
                o3.cert_serial.as_deref()
            ),
            ("invalid", Some(bad_csr), None)
        );

        // Deactivating an authorization ends its pending order.
        let (az, ch) = simple_order(s, "o4", "acct-1", 40);
        s.deactivate_acme_authz(&az, "acme").expect("deactivate");
        assert_eq!(authz_status(s, &az), "deactivated");
        assert_eq!(order_status(s, "o4").status.as_str(), "invalid");
        assert!(!s.start_acme_challenge(&ch, "acme").expect("start"));

        // Time runs out: expired orders and authorizations, and no authorization from them.
        let mut o5 = order("o5", "acct-1", 50);
        o5.expires_at = now() - 1;
        let mut az5 = authz("o5-az", &o5, "expired.example");
        az5.status = AcmeAuthzStatus::Valid;
        az5.expires_at = now() - 1;
        s.insert_acme_order(&o5, &[(az5, vec![])], "acme")
            .expect("insert");
        assert!(
            !s.acme_account_authorized_for("acct-1", "dns", "expired.example")
                .expect("authorized"),
            "an expired authorization authorizes nothing"
        );
        assert_eq!(order_status(s, "o5").status.as_str(), "invalid");
        assert_eq!(authz_status(s, "o5-az"), "expired");

        // Open orders, oldest first.
        simple_order(s, "o7", "acct-1", 70);
        simple_order(s, "o6", "acct-1", 60);
        assert_eq!(s.list_acme_orders("acct-1").expect("orders"), ["o6", "o7"]);

        // Deactivating an account deactivates its authorizations.
        let (az8, ch8) = simple_order(s, "o8", "acct-2", 80);
        assert!(s.start_acme_challenge(&ch8, "acme").expect("start"));
        s.finish_acme_challenge(&ch8, None, "acme").expect("valid");
        assert!(s
            .acme_account_authorized_for("acct-2", "dns", "o8.example")
            .expect("authorized"));
        s.update_acme_account("acct-2", None, Some(AcmeAccountStatus::Deactivated), "acme")
            .expect("deactivate");
        let got = s.get_acme_account("acct-2").expect("get").expect("acct-2");
        assert_eq!(
            (got.status.as_str(), got.contact.as_str()),
            ("deactivated", a2.contact.as_str())
        );
        assert_eq!(authz_status(s, &az8), "deactivated");
        assert!(!s
            .acme_account_authorized_for("acct-2", "dns", "o8.example")
            .expect("authorized"));

        assert_audited(
            s,
            &[
                ("acme.eab.create", "kid-1"),
                ("acme.eab.revoke", "kid-2"),
                ("acme.account.create", "acct-1"),
                ("acme.account.update", "acct-1"),
                ("acme.account.key-change", "acct-1"),
                ("acme.account.status", "acct-2"),
                ("acme.order.create", "o1"),
                ("acme.challenge.start", &ch_a_http.id),
                ("acme.challenge.valid", &ch_a_http.id),
                ("acme.challenge.invalid", "o2-az-http-01"),
                ("acme.order.finalize", "o1"),
                ("acme.order.valid", "o1"),
                ("acme.order.invalid", "o3"),
                ("acme.authz.deactivate", "o4-az"),
            ],
        );
        assert!(!audited(s, "acme.account.create", "acct-x"));
        healthy(s);
    }

    /// Finishing a challenge that does not exist is `NotFound`, like every other update of a
    /// missing record, and changes nothing.
    pub fn finish_unknown_acme_challenge_is_not_found(s: &dyn Store) {
        let events = audit_count(s);
        assert_err!(s.finish_acme_challenge("nope", None, "acme"), NotFound);
        assert_err!(
            s.finish_acme_challenge("nope", Some("{}"), "acme"),
            NotFound
        );
        assert_eq!(audit_count(s), events);
    }

    // ---------------------------------------------------------------------------------------
    // Factory: stations and device certificates

    fn station(name: &str, quota: i64) -> StationRecord {
        StationRecord {
            name: name.into(),
            publisher: "acme".into(),
            profile: "device".into(),
            serial_pattern: "^D[0-9]+$".into(),
            quota,
            cert_serial: Some(format!("{name}-cert")),
            disabled: false,
            reprovision: quota < 10,
            created_at: 1_700_000_000,
        }
    }

    fn device_intent(serial: &str, device: &str, station: Option<&str>) -> Intent {
        Intent {
            profile: "device".into(),
            device_serial: Some(device.into()),
            station: station.map(Into::into),
            ..intent(serial)
        }
    }

    pub fn factory(s: &dyn Store) {
        assert!(s.get_station("st-a").expect("get").is_none());
        let (a, b) = (station("st-a", 2), station("st-b", 10));
        s.insert_station(&b, "officer").expect("insert a station");
        s.insert_station(&a, "officer").expect("insert a station");
        same(
            &s.get_station("st-a").expect("get").expect("st-a"),
            &a,
            "a station reads back",
        );
        let names: Vec<String> = s
            .list_stations()
            .expect("list")
            .into_iter()
            .map(|st| st.name)
            .collect();
        assert_eq!(names, ["st-a", "st-b"], "by name");
        same(
            &s.station_by_certificate("st-b-cert")
                .expect("by certificate")
                .expect("st-b"),
            &b,
            "the station a certificate identifies",
        );
        assert!(s
            .station_by_certificate("nope")
            .expect("by certificate")
            .is_none());
        assert_err!(s.insert_station(&station("st-a", 99), "officer"), Conflict);
        assert_eq!(s.get_station("st-a").expect("get").expect("st-a").quota, 2);
        assert_eq!(s.station_issued_count("st-a").expect("count"), 0);

        // A device's live certificate.
        assert!(s
            .device_certificate("device", "D1")
            .expect("lookup")
            .is_none());
        let i1 = device_intent("s1", "D1", Some("st-a"));
        s.record_intent(&i1).expect("a device intent");
        let of_station = s.certificates_of_station("st-a").expect("of station");
        assert_eq!(of_station.len(), 1, "a station's certificates");
        assert_eq!(
            (
                of_station[0].serial.as_str(),
                of_station[0].device_serial.as_deref(),
                of_station[0].station.as_deref()
            ),
            ("s1", Some("D1"), Some("st-a"))
        );
        assert!(s
            .certificates_of_station("st-b")
            .expect("of station")
            .is_empty());
        assert_eq!(
            s.station_issued_count("st-a").expect("count"),
            1,
            "an intent counts"
        );
        let live = s
            .device_certificate("device", "D1")
            .expect("lookup")
            .expect("the intent is live");
        same(
            &live,
            &DeviceCertificate {
                serial: "s1".into(),
                spki_sha256: i1.spki_sha256.clone(),
                status: "intent".into(),
                cert_der: None,
                ca: i1.ca.clone(),
            },
            "a device's intent",
        );
        s.complete_issuance("s1", b"der s1", "station")
            .expect("complete");
        let live = s
            .device_certificate("device", "D1")
            .expect("lookup")
            .expect("live");
        assert_eq!(
            (live.status.as_str(), live.cert_der.as_deref()),
            ("issued", Some(&b"der s1"[..]))
        );
        assert_eq!(s.station_issued_count("st-a").expect("count"), 1);

        // One live certificate per device and profile.
        let certs = s.count_certificates(None).expect("count");
        assert_err!(
            s.record_intent(&device_intent("s2", "D1", Some("st-b"))),
            DeviceTaken
        );
        assert_err!(
            s.record_intent(&device_intent("s2", "D1", None)),
            DeviceTaken
        );
        assert_eq!(
            s.count_certificates(None).expect("count"),
            certs,
            "nothing written"
        );
        assert_eq!(s.station_issued_count("st-b").expect("count"), 0);
        s.record_intent(&Intent {
            profile: "device-2".into(),
            ..device_intent("s2", "D1", None)
        })
        .expect("another profile is another slot");

        // The quota.
        s.record_intent(&device_intent("s3", "D2", Some("st-a")))
            .expect("the second of two");
        assert_eq!(s.station_issued_count("st-a").expect("count"), 2);
        let certs = s.count_certificates(None).expect("count");
        assert_err!(
            s.record_intent(&device_intent("s4", "D3", Some("st-a"))),
            QuotaExceeded
        );
        assert_eq!(
            s.count_certificates(None).expect("count"),
            certs,
            "nothing written"
        );
        assert!(s
            .device_certificate("device", "D3")
            .expect("lookup")
            .is_none());
        // An abandoned intent frees its slot of the quota and its device.
        s.abandon_intent("s3", "signing failed", "station")
            .expect("abandon");
        assert_eq!(s.station_issued_count("st-a").expect("count"), 1);
        assert!(s
            .device_certificate("device", "D2")
            .expect("lookup")
            .is_none());

        // Batches: a result per intent.
        let out = s
            .record_intents(&[
                device_intent("b1", "D10", Some("st-b")),
                device_intent("b2", "D1", Some("st-b")),
                device_intent("b3", "D11", Some("st-b")),
                device_intent("b4", "D10", Some("st-b")),
            ])
            .expect("a batch");
        assert!(out[0].is_ok(), "{:?}", out[0]);
        assert!(
            matches!(out[1], Err(StoreError::DeviceTaken(_))),
            "{:?}",
            out[1]
        );
        assert!(out[2].is_ok(), "{:?}", out[2]);
        assert!(
            matches!(out[3], Err(StoreError::DeviceTaken(_))),
            "the same device twice in a batch: {:?}",
            out[3]
        );
        assert_eq!(s.station_issued_count("st-b").expect("count"), 2);
        let out = s
            .record_intents(&[
                device_intent("q1", "D20", Some("st-a")),
                device_intent("q2", "D21", Some("st-a")),
            ])
            .expect("a batch past the quota");
        assert!(out[0].is_ok(), "{:?}", out[0]);
        assert!(
            matches!(out[1], Err(StoreError::QuotaExceeded(_))),
            "{:?}",
            out[1]
        );
        assert!(s.get_certificate("q2").expect("get").is_none());
        assert_eq!(s.station_issued_count("st-a").expect("count"), 2);

        // Many lookups at once, answered in the order asked.
        let found = s
            .device_certificates("device", &["D10", "nope", "D1", "D2"])
            .expect("lookups");
        assert_eq!(
            found
                .iter()
                .map(|d| d.as_ref().map(|d| d.serial.as_str()))
                .collect::<Vec<_>>(),
            [Some("b1"), None, Some("s1"), None]
        );
        assert!(s
            .device_certificates("device", &[])
            .expect("no lookups")
            .is_empty());

        // Releasing a device for a new certificate (reprovisioning).
        s.release_device("s1", "officer").expect("release");
        assert!(s
            .device_certificate("device", "D1")
            .expect("lookup")
            .is_none());
        let old = s
            .get_certificate("s1")
            .expect("get")
            .expect("s1 keeps its record");
        assert_eq!(old.status, CertStatus::Issued);
        assert_eq!(
            s.station_issued_count("st-a").expect("count"),
            2,
            "the old certificate still counts against the quota"
        );
        s.record_intent(&device_intent("s5", "D1", Some("st-b")))
            .expect("a new certificate for the device");
        assert_eq!(
            s.device_certificate("device", "D1")
                .expect("lookup")
                .expect("live")
                .serial,
            "s5"
        );
        assert_err!(s.release_device("s1", "officer"), NotFound);
        s.record_intent(&intent("plain"))
            .expect("a certificate of no device");
        assert_err!(s.release_device("plain", "officer"), NotFound);
        assert_err!(s.release_device("nope", "officer"), NotFound);

        // Disabling.
        assert!(s.disable_station("st-a", "officer").expect("disable"));
        assert!(s.get_station("st-a").expect("get").expect("st-a").disabled);
        assert!(!s.disable_station("st-a", "officer").expect("disable twice"));
        assert!(!s.get_station("st-b").expect("get").expect("st-b").disabled);
        assert_err!(s.disable_station("nope", "officer"), NotFound);

        assert_audited(
            s,
            &[
                ("station.added", "st-a"),
                ("station.added", "st-b"),
                ("device.superseded", "D1"),
                ("station.disabled", "st-a"),
            ],
        );
        let disabled_events = s
            .audit_events(100_000)
            .expect("audit")
            .iter()
            .filter(|e| e.action == "station.disabled")
            .count();
        assert_eq!(disabled_events, 1, "disabling twice records one event");
        healthy(s);
    }

    // ---------------------------------------------------------------------------------------
    // Tokens

    fn token(id: &str, created_at: i64) -> TokenRecord {
        TokenRecord {
            id: id.into(),
            name: format!("{id} name"),
            hash: format!("hash of {id}"),
            publisher: Some("acme".into()),
            officer: false,
            scopes: "issue,sign".into(),
            expires_at: Some(2_000_000_000),
            revoked_at: None,
            created_at,
        }
    }

    pub fn tokens(s: &dyn Store) {
        assert!(s.get_token("t1").expect("get").is_none());
        assert!(s.list_tokens().expect("list").is_empty());
        let t1 = token("t1", 200);
        let t0 = TokenRecord {
            publisher: None,
            officer: true,
            scopes: "*".into(),
            expires_at: None,
            ..token("t0", 300)
        };
        let t2 = token("t2", 200);
        for t in [&t0, &t2, &t1] {
            s.insert_token(t, "officer").expect("insert a token");
        }
        same(
            &s.get_token("t1").expect("get").expect("t1"),
            &t1,
            "a token reads back",
        );
        same(
            &s.get_token("t0").expect("get").expect("t0"),
            &t0,
            "an officer token reads back",
        );
        let ids: Vec<String> = s
            .list_tokens()
            .expect("list")
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(ids, ["t1", "t2", "t0"], "by creation, then id");
        assert_err!(
            s.insert_token(
                &TokenRecord {
                    name: "other".into(),
                    ..t1.clone()
                },
                "officer"
            ),
            Conflict
        );
        assert_err!(
            s.insert_token(
                &TokenRecord {
                    hash: t1.hash.clone(),
                    ..token("t3", 1)
                },
                "officer"
            ),
            Conflict
        );
        assert!(s.get_token("t3").expect("get").is_none());
        assert_eq!(s.get_token("t1").expect("get").expect("t1").name, t1.name);

        s.revoke_token("t1", 1_800_000_000, "officer")
            .expect("revoke");
        assert_eq!(
            s.get_token("t1").expect("get").expect("t1").revoked_at,
            Some(1_800_000_000),
            "a revocation is seen at once (through any cache)"
        );
        assert_err!(s.revoke_token("t1", 1_900_000_000, "officer"), Conflict);
        assert_eq!(
            s.get_token("t1").expect("get").expect("t1").revoked_at,
            Some(1_800_000_000),
            "the first revocation stands"
        );
        assert_err!(s.revoke_token("nope", 1, "officer"), NotFound);
        assert_eq!(
            s.get_token("t2").expect("get").expect("t2").revoked_at,
            None
        );

        assert_audited(
            s,
            &[
                ("token.created", "t1"),
                ("token.created", "t0"),
                ("token.revoked", "t1"),
            ],
        );
        assert!(!audited(s, "token.created", "t3"));
        healthy(s);
    }

    /// Console sessions: a round trip, touches that only move forward, ends that are audited
    /// when an actor is named (and idempotent), expired sessions dropped at the next sign-in.
    pub fn sessions(s: &dyn Store) {
        s.insert_token(&token("t1", 200), "officer").expect("token");
        assert!(s.get_session("h1").expect("get").is_none());
        let s1 = SessionRecord {
            id_hash: "h1".into(),
            token_id: "t1".into(),
            created_at: 1_000,
            last_seen: 1_000,
            expires_at: 5_000,
            person: None,
        };
        s.insert_session(&s1, "token:t1").expect("insert");
        assert_eq!(s.get_session("h1").expect("get"), Some(s1.clone()));
        assert_err!(s.insert_session(&s1, "token:t1"), Conflict);
        s.touch_session("h1", 2_000).expect("touch");
        s.touch_session("h1", 1_500).expect("an older touch");
        assert_eq!(
            s.get_session("h1").expect("get").expect("h1").last_seen,
            2_000,
            "the last use only moves forward"
        );
        // A sign-in after h1's end drops it.
        let s2 = SessionRecord {
            id_hash: "h2".into(),
            created_at: 6_000,
            last_seen: 6_000,
            expires_at: 9_000,
            ..s1.clone()
        };
        s.insert_session(&s2, "token:t1").expect("insert");
        assert!(s.get_session("h1").expect("get").is_none());
        // A person's session keeps who they are.
        let s3 = SessionRecord {
            id_hash: "h3".into(),
            person: Some("alice@example.com".into()),
            ..s2.clone()
        };
        s.insert_session(&s3, "person:alice@example.com")
            .expect("insert");
        assert_eq!(s.get_session("h3").expect("get"), Some(s3));
        s.end_session("h3", None).expect("end");
        s.end_session("h2", Some("token:t1")).expect("end");
        assert!(s.get_session("h2").expect("get").is_none());
        s.end_session("h2", Some("token:t1"))
            .expect("ending twice is no error");
        s.end_session("nope", None).expect("an unknown one too");
        assert_audited(s, &[("session.created", "t1"), ("session.ended", "t1")]);
        healthy(s);
    }

    /// The console's reads: a page of requests (pending ones newest first with cursors, counts,
    /// decided ones, every listed request's decisions), searches of signatures, the audit trail
    /// and certificates (by validity, publisher, paging; those ending soon), activity counts of
    /// a key and a station.
    pub fn console(s: &dyn Store) {
        add_publishers(s, &["acme", "beta"]);
        s.insert_key(&key("k1", "acme"), "officer").expect("key");
        s.insert_key(&key("k2", "beta"), "officer").expect("key");
        let mut ids = Vec::new();
        for (key, publisher) in [
            ("k1", "acme"),
            ("k1", "acme"),
            ("k2", "beta"),
            ("k1", "acme"),
        ] {
            let r = SignatureRequestRecord {
                publisher: publisher.into(),
                ..signature_request(key, 1)
            };
            ids.push(s.insert_signature_request(&r, "ci").expect("request"));
        }
        // The first is denied (decided), with its decision.
        s.record_signature_decision(ids[0], "alice", false, Some("no"), "alice")
            .expect("deny");
        let q = RequestsQuery {
            publisher: Some("acme"),
            pending: 1,
            decided: 10,
            ..Default::default()
        };
        let page = s.requests_page(&q).expect("page");
        assert_eq!(page.pending_signatures, 2, "acme's pending ones");
        assert_eq!(
            page.signatures.iter().map(|r| r.id).collect::<Vec<_>>(),
            [ids[3]],
            "newest first, one a page"
        );
        let next = s
            .requests_page(&RequestsQuery {
                signatures_before: Some(ids[3]),
                ..q
            })
            .expect("page");
        assert_eq!(
            next.signatures.iter().map(|r| r.id).collect::<Vec<_>>(),
            [ids[1]],
            "the next page skips beta's"
        );
        assert_eq!(
            page.decided_signatures
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>(),
            [ids[0]]
        );
        let d = &page.signature_approvals[&ids[0]];
        assert_eq!(
            (d[0].approver.as_str(), d[0].comment.as_deref()),
            ("alice", Some("no"))
        );
        let all = s
            .requests_page(&RequestsQuery {
                publisher: None,
                pending: 10,
                decided: 10,
                ..Default::default()
            })
            .expect("page");
        assert_eq!(all.pending_signatures, 3);
        assert_eq!(all.pending_certificates, 0);

        // Signatures: by key, publisher, digest prefix, text, time; newest first.
        let a = s
            .insert_signature(&signature(0, "k1", 1), "ci")
            .expect("sign");
        let b = s
            .insert_signature(&signature(0, "k1", 2), "ci")
            .expect("sign");
        let c = s
            .insert_signature(&signature(0, "k2", 3), "ci")
            .expect("sign");
        let found = |q: SignatureSearch| {
            signature_ids(
                &s.search_signatures(&SignatureSearch { limit: 10, ..q })
                    .expect("search"),
            )
        };
        assert_eq!(found(SignatureSearch::default()), [c, b, a]);
        assert_eq!(
            found(SignatureSearch {
                publisher: Some("acme".into()),
                ..Default::default()
            }),
            [b, a]
        );
        assert_eq!(
            found(SignatureSearch {
                digest: Some("0202".into()),
                ..Default::default()
            }),
            [b]
        );
        assert_eq!(
            found(SignatureSearch {
                text: Some("\"build\":3".into()),
                ..Default::default()
            }),
            [c]
        );
        assert_eq!(
            found(SignatureSearch {
                text: Some("%".into()),
                ..Default::default()
            }),
            Vec::<i64>::new(),
            "wildcards are literal"
        );
        assert_eq!(
            found(SignatureSearch {
                from: Some(1_700_000_002),
                ..Default::default()
            }),
            [c, b]
        );
        assert_eq!(
            found(SignatureSearch {
                before: Some(c),
                ..Default::default()
            }),
            [b, a]
        );
        let act = s.signature_activity("k1", 0, 86_400).expect("activity");
        assert_eq!(act.last, Some(1_700_000_002));
        assert_eq!(act.counts.iter().map(|(_, n)| n).sum::<i64>(), 2);

        // The audit trail: by actor text, action (exact or `prefix.`), object, newest first.
        let ev = |q: AuditSearch| {
            s.search_audit(&AuditSearch { limit: 100, ..q })
                .expect("search")
                .into_iter()
                .map(|e| (e.action, e.subject.unwrap_or_default()))
                .collect::<Vec<_>>()
        };
        let keys = ev(AuditSearch {
            action: Some("key.".into()),
            ..Default::default()
        });
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(keys.iter().all(|(a, _)| a.starts_with("key.")));
        assert_eq!(
            ev(AuditSearch {
                action: Some("key.created".into()),
                subject: Some("k2".into()),
                ..Default::default()
            }),
            [("key.created".to_string(), "k2".to_string())]
        );
        assert!(ev(AuditSearch {
            actor: Some("alice".into()),
            ..Default::default()
        })
        .iter()
        .any(|(a, _)| a == "signature.denied"));
        assert!(ev(AuditSearch {
            to: Some(0),
            ..Default::default()
        })
        .is_empty());
        // Certificates: by validity at a time, publisher, paging; those ending soon, soonest
        // first and unrevoked; a station's certificates per hour.
        let now = now();
        let mut ending = intent("e1");
        ending.not_after = now + 5 * 86_400;
        let mut later = intent("e2");
        later.not_after = now + 20 * 86_400;
        let mut gone = intent("e3");
        gone.not_after = now - 10;
        let mut far = intent("e4");
        far.not_after = now + 400 * 86_400;
        let mut other = intent("e5");
        other.publisher = Some("beta".into());
        other.not_after = now + 2 * 86_400;
        let mut revoked = intent("e6");
        revoked.not_after = now + 3 * 86_400;
        let mut device = intent("e7");
        device.not_after = now + 86_400;
        device.station = Some("line-1".into());
        for i in [&ending, &later, &gone, &far, &other, &revoked, &device] {
            issue(s, i);
        }
        s.revoke(&new_revocation("e6", 1, None), "officer")
            .expect("revoke");
        let certs = |q: CertSearch| {
            s.search_certificates(&CertSearch {
                at: now,
                limit: 10,
                ..q
            })
            .expect("search")
            .into_iter()
            .map(|c| c.serial)
            .collect::<Vec<_>>()
        };
        assert_eq!(
            certs(CertSearch::default()),
            ["e1", "e2", "e3", "e4", "e5", "e6", "e7"]
        );
        assert_eq!(
            certs(CertSearch {
                validity: Some(Validity::Revoked),
                ..Default::default()
            }),
            ["e6"]
        );
        assert_eq!(
            certs(CertSearch {
                validity: Some(Validity::Expired),
                ..Default::default()
            }),
            ["e3"]
        );
        assert_eq!(
            certs(CertSearch {
                validity: Some(Validity::Valid),
                publisher: Some("acme".into()),
                after: Some("e1".into()),
                ..Default::default()
            }),
            ["e2", "e4", "e7"]
        );
        let soon: Vec<String> = s
            .certificates_ending(now, now + 30 * 86_400, Some("acme"), 10)
            .expect("ending")
            .into_iter()
            .map(|c| c.serial)
            .collect();
        assert_eq!(
            soon,
            ["e1", "e2"],
            "soonest first: not beta's, the revoked, the device's, the ended or the far one"
        );
        let line = s.station_activity("line-1", 0, 3600).expect("activity");
        assert_eq!(line.counts.iter().map(|(_, n)| n).sum::<i64>(), 1);
        assert!(line.last.is_some());
        healthy(s);
    }

    // ---------------------------------------------------------------------------------------
    // Audit

    pub fn audit(s: &dyn Store) {
        assert!(s.audit_events(10).expect("no events").is_empty());
        let t0 = now();
        s.audit("backup.made", "db", Some("to /backups/1"), "ops")
            .expect("an event");
        s.audit("backup.verified", "db-2", None, "ops-2")
            .expect("an event");
        s.add_publisher(
            &Publisher {
                id: "acme".into(),
                org: "Acme".into(),
                country: "DE".into(),
                state: None,
                locality: None,
                profiles: vec![],
                created_at: 1,
            },
            "officer",
        )
        .expect("a write with its own event");

        let events = s.audit_events(10).expect("events");
        assert_eq!(events.len(), 3);
        assert_eq!(
            events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["publisher.added", "backup.verified", "backup.made"],
            "newest first"
        );
        assert!(events[0].id > events[1].id && events[1].id > events[2].id);
        let made = &events[2];
        assert_eq!(
            (
                made.actor.as_str(),
                made.subject.as_deref(),
                made.detail.as_deref()
            ),
            ("ops", Some("db"), Some("to /backups/1"))
        );
        assigned(made.at, t0, "an event's time");
        let verified = &events[1];
        assert_eq!(
            (
                verified.actor.as_str(),
                verified.subject.as_deref(),
                verified.detail.as_deref()
            ),
            ("ops-2", Some("db-2"), None)
        );
        assert_eq!(events[0].actor, "officer");
        assert_eq!(events[0].subject.as_deref(), Some("acme"));

        let newest = s.audit_events(1).expect("events");
        assert_eq!(newest.len(), 1, "at most `limit`");
        assert_eq!(newest[0].id, events[0].id);
        assert_eq!(s.audit_events(2).expect("events").len(), 2);
        assert!(s.audit_events(0).expect("events").is_empty());
        healthy(s);
    }
}
