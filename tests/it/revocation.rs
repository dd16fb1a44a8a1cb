//! Revocation published and checked by clients we did not write: `openssl ocsp` (POST, with and
//! without nonce), the RFC 5019 GET form through curl, `openssl verify -crl_check`, `openssl crl
//! -verify`, pkilint's CRL and OCSP linters. The main scenario runs per key store.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;
use x509_parser::prelude::*;

const ACME_SUBJ: &str = "/C=US/ST=California/L=San Jose/O=Acme Corp/CN=Acme Corp";

/// An issued code-signing certificate: file names (in the CA's temp dir) and serial.
struct Leaf {
    pem: String,
    serial: String,
    der: Vec<u8>,
}

fn issue(ca: &TestCa, tag: &str) -> Leaf {
    let csr = ca.path("acme.csr");
    if !csr.exists() {
        make_csr(
            ca.dir.path(),
            "acme",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            ACME_SUBJ,
            &[],
        );
    }
    let out = ca.path(&format!("{tag}.bundle.pem"));
    ca.hm(&[
        "issue",
        "--profile",
        "code-signing",
        "--publisher",
        "acme",
        "--csr",
        &csr.display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    let blocks = pem_blocks(&std::fs::read_to_string(&out).expect("bundle"));
    let pem = format!("{tag}.pem");
    std::fs::write(ca.path(&pem), &blocks[0]).expect("leaf");
    std::fs::write(ca.path("ica.pem"), &blocks[1]).expect("ica");
    let der = ::pem::parse(&blocks[0]).expect("pem").into_contents();
    let (_, c) = X509Certificate::from_der(&der).expect("leaf parses");
    Leaf {
        pem,
        serial: hex::encode(c.raw_serial()),
        der,
    }
}

/// Runs openssl in the CA dir; returns stdout and stderr together, and whether it succeeded.
fn openssl_any(ca: &TestCa, args: &[&str]) -> (bool, String) {
    let out = run(std::process::Command::new(tool("openssl"))
        .current_dir(ca.dir.path())
        .args(args));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `openssl ocsp` against the server, verifying with the root; returns its output.
fn ocsp_query(ca: &TestCa, server: &Server, target: &[&str], extra: &[&str]) -> String {
    let url = format!("{}/ocsp", server.public);
    let root = ca.ca_pem("root").display().to_string();
    let mut args = vec!["ocsp", "-issuer", "ica.pem", "-url", &url, "-CAfile", &root];
    args.extend_from_slice(target);
    args.extend_from_slice(extra);
    let (ok, text) = openssl_any(ca, &args);
    assert!(ok, "openssl ocsp {args:?}: {text}");
    assert!(text.contains("Response verify OK"), "{text}");
    text
}

fn revoked_serials(der: &[u8]) -> Vec<String> {
    let (_, crl) = CertificateRevocationList::from_der(der).expect("CRL parses");
    crl.iter_revoked_certificates()
        .map(|r| hex::encode(r.raw_serial()))
        .collect()
}

/// Fetches a CRL until it lists `serial` (the server republishes within seconds).
fn crl_listing(url: &str, serial: &str) -> Vec<u8> {
    let start = Instant::now();
    loop {
        let (code, der, ctype) = curl(url, &[]);
        assert_eq!(code, 200, "GET {url}");
        assert_eq!(ctype, "application/pkix-crl");
        if revoked_serials(&der).iter().any(|s| s == serial) {
            return der;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{url} never listed {serial}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn write_pem_crl(ca: &TestCa, name: &str, der: &[u8]) -> String {
    std::fs::write(
        ca.path(name),
        ::pem::encode(&::pem::Pem::new("X509 CRL", der.to_vec())),
    )
    .expect("write CRL");
    name.to_string()
}

fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

fn lint_clean(ca: &TestCa, lint: &str, args: &[&str]) {
    let (code, text) = pkilint(ca.dir.path(), lint, args);
    assert!(
        code == 0 && text.trim().is_empty(),
        "{lint} {args:?} (exit {code}):\n{text}"
    );
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn ocsp_and_crl_with_real_clients(keys: Keys) {
    let ca = TestCa::new(keys);
    ca.add_acme();
    let bad = issue(&ca, "bad");
    let good = issue(&ca, "good");
    let later = issue(&ca, "later");
    let server = Server::start(&ca, false);
    let base = server.public.clone();
    let root = ca.ca_pem("root").display().to_string();

    // Good, with a nonce (live) and without (pre-signed or signed on the spot).
    let t = ocsp_query(&ca, &server, &["-cert", &bad.pem], &[]);
    assert!(t.contains(&format!("{}: good", bad.pem)), "{t}");
    let t = ocsp_query(&ca, &server, &["-cert", &bad.pem], &["-no_nonce"]);
    assert!(t.contains(&format!("{}: good", bad.pem)), "{t}");

    // Revoke; from the commit on, OCSP says revoked, with the reason, both ways.
    let out = ca.hm(&[
        "revoke",
        &bad.serial,
        "--reason",
        "keyCompromise",
        "--invalidity-date",
        "2026-01-01T00:00:00Z",
    ]);
    assert!(out.contains("keyCompromise"), "{out}");
    for extra in [&["-no_nonce"][..], &[][..]] {
        let t = ocsp_query(&ca, &server, &["-cert", &bad.pem], extra);
        assert!(!t.contains("nonce"), "the nonce is echoed: {t}");
        assert!(t.contains(&format!("{}: revoked", bad.pem)), "{t}");
        assert!(t.contains("Reason: keyCompromise"), "{t}");
    }
    let t = ocsp_query(&ca, &server, &["-cert", &good.pem], &["-no_nonce"]);
    assert!(t.contains(&format!("{}: good", good.pem)), "{t}");

    // A serial this CA never issued is unknown, never good.
    let made_up = "0x5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
    for extra in [&["-no_nonce"][..], &[][..]] {
        let t = ocsp_query(&ca, &server, &["-serial", made_up], extra);
        assert!(t.contains(&format!("{made_up}: unknown")), "{t}");
    }

    // Revoking twice is a conflict; moving to keyCompromise is the one change allowed.
    let again = run(&mut ca.cmd(&["revoke", &bad.serial, "--reason", "superseded"]));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("conflict"));
    ca.hm(&["revoke", &later.serial, "--reason", "superseded"]);
    let moved = ca.hm(&["revoke", &later.serial, "--reason", "keyCompromise"]);
    assert!(
        moved.contains("reason changed from superseded to keyCompromise"),
        "{moved}"
    );
    let never = run(&mut ca.cmd(&["revoke", "0badc0de", "--reason", "superseded"]));
    assert!(String::from_utf8_lossy(&never.stderr).contains("not-found"));
    let hold = run(&mut ca.cmd(&["revoke", &good.serial, "--reason", "certificateHold"]));
    assert!(!hold.status.success());

    // The CRL at the URL in the certificate's CRL DP, reissued by the server.
    let (_, leaf) = X509Certificate::from_der(&bad.der).expect("leaf");
    let dp_url = format!("{base}/crl/code-signing-ca.crl");
    let crl_dp = leaf
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(p) => Some(format!("{p:?}")),
            _ => None,
        })
        .expect("CRL DP");
    assert!(crl_dp.contains("/crl/code-signing-ca.crl"), "{crl_dp}");
    let der = crl_listing(&dp_url, &later.serial);
    let listed = revoked_serials(&der);
    assert!(listed.contains(&bad.serial) && !listed.contains(&good.serial));
    let headers_file = ca.path("crl.headers");
    let (code, _, _) = curl(&dp_url, &["-D", &headers_file.display().to_string()]);
    assert_eq!(code, 200);
    let headers = std::fs::read_to_string(&headers_file).expect("headers");
    let etag = header(&headers, "etag").expect("ETag").to_string();
    assert!(header(&headers, "last-modified").is_some_and(|v| v.ends_with("GMT")));
    assert!(header(&headers, "cache-control").is_some_and(|v| v.contains("max-age=")));
    let (code, body, _) = curl(&dp_url, &["-H", &format!("If-None-Match: {etag}")]);
    assert_eq!((code, body.len()), (304, 0));

    let crl = write_pem_crl(&ca, "cs.crl", &der);
    let (ok, text) = openssl_any(
        &ca,
        &["crl", "-in", &crl, "-CAfile", "ica.pem", "-noout", "-text"],
    );
    assert!(ok && text.contains("verify OK"), "{text}");
    assert!(
        text.contains("CRL Number") && text.contains("Key Compromise"),
        "{text}"
    );
    assert!(text.contains("Invalidity Date"), "{text}");
    let verify = |leaf: &str| {
        openssl_any(
            &ca,
            &[
                "verify",
                "-crl_check",
                "-CRLfile",
                &crl,
                "-CAfile",
                &root,
                "-untrusted",
                "ica.pem",
                "-purpose",
                "any",
                leaf,
            ],
        )
    };
    let (ok, text) = verify(&bad.pem);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    let (ok, text) = verify(&good.pem);
    assert!(ok && text.contains(": OK"), "{text}");
    lint_clean(
        &ca,
        "lint_crl",
        &["lint", "-t", "CRL", "-p", "PKIX", "-s", "WARNING", &crl],
    );

    // The root publishes a CRL for CA certificates: the whole chain checks with both.
    let (code, root_der, _) = curl(&format!("{base}/crl/root.crl"), &[]);
    assert_eq!(code, 200);
    let root_crl = write_pem_crl(&ca, "root.crl", &root_der);
    lint_clean(
        &ca,
        "lint_crl",
        &[
            "lint", "-t", "CRL", "-p", "PKIX", "-s", "WARNING", &root_crl,
        ],
    );
    let both = ca.path("both.crl");
    std::fs::write(
        &both,
        std::fs::read_to_string(ca.path(&crl)).unwrap()
            + &std::fs::read_to_string(ca.path(&root_crl)).unwrap(),
    )
    .unwrap();
    let (ok, text) = openssl_any(
        &ca,
        &[
            "verify",
            "-crl_check_all",
            "-CRLfile",
            "both.crl",
            "-CAfile",
            &root,
            "-untrusted",
            "ica.pem",
            "-purpose",
            "any",
            &good.pem,
        ],
    );
    assert!(ok && text.contains(": OK"), "{text}");

    // `hallmark crl` writes the same CRL offline, with a larger number.
    let offline = ca.path("offline.crl");
    ca.hm(&[
        "crl",
        "--ca",
        "code-signing-ca",
        "--out",
        &offline.display().to_string(),
    ]);
    let offline_der = std::fs::read(&offline).expect("offline CRL");
    let mut a = revoked_serials(&offline_der);
    let mut b = revoked_serials(&der);
    a.sort();
    b.sort();
    assert_eq!(a, b);
    let number = |der: &[u8]| {
        let (_, c) = CertificateRevocationList::from_der(der).expect("CRL");
        c.crl_number().expect("number").clone()
    };
    assert!(number(&offline_der) > number(&der));

    // pkilint on OCSP answers: revoked (pre-signed), good with a nonce, unknown.
    for (name, target, extra) in [
        (
            "revoked.ocsp",
            vec!["-cert", bad.pem.as_str()],
            vec!["-no_nonce"],
        ),
        ("good.ocsp", vec!["-cert", good.pem.as_str()], vec![]),
        ("unknown.ocsp", vec!["-serial", made_up], vec![]),
    ] {
        let mut e = extra.clone();
        e.extend(["-respout", name]);
        ocsp_query(&ca, &server, &target, &e);
        lint_clean(&ca, "lint_ocsp_response", &["lint", "-s", "WARNING", name]);
    }

    // RFC 5019 GET through curl, parsed by `openssl ocsp -respin`, with cache headers.
    let get_req = ocsp_request(
        &ca,
        &["-issuer", "ica.pem", "-cert", &bad.pem, "-no_nonce"],
        "get.req",
    );
    let b64 = base64_encode(&get_req);
    let headers_file = ca.path("ocsp.headers");
    let (code, body, ctype) = curl(
        &format!("{base}/ocsp/{}", percent_encode(&b64)),
        &["-D", &headers_file.display().to_string()],
    );
    assert_eq!((code, ctype.as_str()), (200, "application/ocsp-response"));
    std::fs::write(ca.path("get.resp"), &body).unwrap();
    let (ok, text) = openssl_any(
        &ca,
        &[
            "ocsp",
            "-respin",
            "get.resp",
            "-CAfile",
            &root,
            "-issuer",
            "ica.pem",
            "-cert",
            &bad.pem,
            "-no_nonce",
        ],
    );
    assert!(ok && text.contains("Response verify OK"), "{text}");
    assert!(text.contains(&format!("{}: revoked", bad.pem)), "{text}");
    let headers = std::fs::read_to_string(&headers_file).unwrap();
    let cc = header(&headers, "cache-control").expect("Cache-Control");
    assert!(cc.contains("max-age=") && cc.contains("public"), "{cc}");
    for h in ["last-modified", "expires", "etag"] {
        assert!(header(&headers, h).is_some(), "{h} missing:\n{headers}");
    }
    // The unescaped form (base64 with raw '/' and '+') works too.
    let (code, body, _) = curl(&format!("{base}/ocsp/{b64}"), &[]);
    assert_eq!(code, 200);
    assert!(body.len() > 100, "a successful answer");
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[test]
fn ocsp_and_crl_with_real_clients_soft() {
    ocsp_and_crl_with_real_clients(Keys::Soft);
}

#[test]
fn ocsp_and_crl_with_real_clients_softhsm() {
    ocsp_and_crl_with_real_clients(Keys::SoftHsm);
}

/// `openssl ocsp ARGS... -reqout REQOUT` in the CA's temp dir; the request it wrote.
fn ocsp_request(ca: &TestCa, args: &[&str], reqout: &str) -> Vec<u8> {
    let mut a = vec!["ocsp"];
    a.extend_from_slice(args);
    a.extend(["-reqout", reqout]);
    openssl(ca.dir.path(), &a);
    std::fs::read(ca.path(reqout)).unwrap()
}

/// The OCSP error status of an answer, through openssl.
fn ocsp_error_of(ca: &TestCa, body: &[u8], name: &str) -> String {
    std::fs::write(ca.path(name), body).unwrap();
    let (_, text) = openssl_any(ca, &["ocsp", "-respin", name, "-resp_text", "-noverify"]);
    text
}

fn post(url: &str, ca: &TestCa, body: &[u8], name: &str) -> (u16, Vec<u8>) {
    let f = ca.path(name);
    std::fs::write(&f, body).unwrap();
    let (code, resp, _) = curl(
        url,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/ocsp-request",
            "--data-binary",
            &format!("@{}", f.display()),
        ],
    );
    (code, resp)
}

#[test]
fn bad_ocsp_requests_get_ocsp_errors_and_the_server_keeps_serving() {
    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    let leaf = issue(&ca, "leaf");
    let other = issue(&ca, "other");
    let server = Server::start(&ca, false);
    let url = format!("{}/ocsp", server.public);
    let good_req = ocsp_request(
        &ca,
        &["-issuer", "ica.pem", "-cert", &leaf.pem, "-no_nonce"],
        "ok.req",
    );

    let mut oversized = vec![0x30, 0x82, 0x30, 0x00];
    oversized.resize(4 + 0x3000, 0x04);
    let cases: [(&str, Vec<u8>); 4] = [
        ("garbage", b"this is not an OCSP request".to_vec()),
        ("empty", vec![]),
        ("truncated", good_req[..good_req.len() - 3].to_vec()),
        ("oversized", oversized),
    ];
    for (name, body) in cases {
        let (code, resp) = post(&url, &ca, &body, name);
        assert_eq!(code, 200, "{name}");
        let text = ocsp_error_of(&ca, &resp, &format!("{name}.resp"));
        assert!(text.contains("malformedrequest"), "{name}: {text}");
    }
    // Beyond the listener's own limit: still an OCSP answer (malformedRequest), and the server
    // goes on.
    let (code, resp) = post(&url, &ca, &vec![0u8; 40 * 1024], "huge");
    assert_eq!(code, 200);
    let text = ocsp_error_of(&ca, &resp, "huge.resp");
    assert!(text.contains("malformedrequest"), "huge: {text}");

    // Another CA's issuer: unauthorized. So is a request mixing issuers.
    openssl(
        ca.dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "other.key",
            "-subj",
            "/CN=Somebody Else CA",
            "-days",
            "2",
            "-out",
            "other-ca.pem",
        ],
    );
    let foreign_req = ocsp_request(
        &ca,
        &["-issuer", "other-ca.pem", "-serial", "0x01"],
        "foreign.req",
    );
    let (code, resp) = post(&url, &ca, &foreign_req, "foreign");
    assert_eq!(code, 200);
    assert!(ocsp_error_of(&ca, &resp, "foreign.resp").contains("unauthorized"));
    let mixed_req = ocsp_request(
        &ca,
        &[
            "-issuer",
            "ica.pem",
            "-cert",
            &leaf.pem,
            "-issuer",
            "other-ca.pem",
            "-serial",
            "0x01",
        ],
        "mixed.req",
    );
    let (_, resp) = post(&url, &ca, &mixed_req, "mixed");
    assert!(ocsp_error_of(&ca, &resp, "mixed.resp").contains("unauthorized"));

    // GET with a request that is not base64, or no request at all.
    for path in ["/ocsp/!!!not-base64!!!", "/ocsp/", "/ocsp/AAAA"] {
        let (code, resp, _) = curl(&format!("{}{path}", server.public), &[]);
        assert_eq!(code, 200, "{path}");
        assert!(
            ocsp_error_of(&ca, &resp, "get.resp").contains("malformedrequest"),
            "{path}"
        );
    }

    // Still serving: several certificates in one request, each with its own status.
    ca.hm(&["revoke", &other.serial, "--reason", "superseded"]);
    let t = ocsp_query(
        &ca,
        &server,
        &["-cert", &leaf.pem, "-cert", &other.pem],
        &[],
    );
    assert!(t.contains(&format!("{}: good", leaf.pem)), "{t}");
    assert!(
        t.contains(&format!("{}: revoked", other.pem)) && t.contains("Reason: superseded"),
        "{t}"
    );
    let (code, body, _) = curl(&format!("{}/crl/nope.crl", server.public), &[]);
    assert_eq!(code, 404, "{}", String::from_utf8_lossy(&body));
}

/// The CRL partition a certificate's CRL DP names.
fn dp_of(der: &[u8]) -> String {
    let (_, c) = X509Certificate::from_der(der).expect("cert");
    for e in c.extensions() {
        if let ParsedExtension::CRLDistributionPoints(points) = e.parsed_extension() {
            for p in points.iter() {
                if let Some(DistributionPointName::FullName(names)) = &p.distribution_point {
                    for n in names {
                        if let GeneralName::URI(u) = n {
                            return u.to_string();
                        }
                    }
                }
            }
        }
    }
    panic!("no CRL DP");
}

#[test]
fn three_shard_partitioned_crl() {
    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    let config = std::fs::read_to_string(ca.config()).unwrap();
    assert!(config.contains("shards = 1"));
    std::fs::write(ca.config(), config.replace("shards = 1", "shards = 3")).unwrap();
    let leaves: Vec<Leaf> = (0..12).map(|i| issue(&ca, &format!("l{i}"))).collect();
    let public = {
        let cfg = std::fs::read_to_string(ca.config()).unwrap();
        cfg.lines()
            .find_map(|l| l.strip_prefix("public_url = "))
            .expect("public_url")
            .trim_matches('"')
            .to_string()
    };
    let mut revoked = Vec::new();
    for (i, l) in leaves.iter().enumerate() {
        if i % 3 != 2 {
            ca.hm(&["revoke", &l.serial, "--reason", "cessationOfOperation"]);
            revoked.push(l);
        }
    }
    let root = ca.ca_pem("root").display().to_string();
    for k in 0..3u32 {
        let url = format!("{public}/crl/code-signing-ca/shard-{k}.crl");
        let name = format!("shard-{k}.crl");
        ca.hm(&[
            "crl",
            "--ca",
            "code-signing-ca",
            "--shard",
            &k.to_string(),
            "--pem",
            "--out",
            &ca.path(&name).display().to_string(),
        ]);
        let pem_text = std::fs::read_to_string(ca.path(&name)).unwrap();
        let der = ::pem::parse(pem_text).unwrap().into_contents();
        let mut listed = revoked_serials(&der);
        listed.sort();
        let mut expected: Vec<String> = revoked
            .iter()
            .filter(|l| dp_of(&l.der) == url)
            .map(|l| l.serial.clone())
            .collect();
        expected.sort();
        assert_eq!(
            listed, expected,
            "shard {k} holds exactly its revoked certificates"
        );
        // Each shard verifies and names itself in a critical issuingDistributionPoint.
        let (ok, text) = openssl_any(
            &ca,
            &["crl", "-in", &name, "-CAfile", "ica.pem", "-noout", "-text"],
        );
        assert!(ok && text.contains("verify OK"), "{text}");
        assert!(
            text.contains("Issuing Distribution Point: critical") && text.contains(&url),
            "{text}"
        );
        lint_clean(
            &ca,
            "lint_crl",
            &["lint", "-t", "CRL", "-p", "PKIX", "-s", "WARNING", &name],
        );
        // openssl checks a certificate of this shard against it (revoked, or OK).
        for l in leaves.iter().filter(|l| dp_of(&l.der) == url) {
            let (ok, text) = openssl_any(
                &ca,
                &[
                    "verify",
                    "-crl_check",
                    "-CRLfile",
                    &name,
                    "-CAfile",
                    &root,
                    "-untrusted",
                    "ica.pem",
                    "-purpose",
                    "any",
                    &l.pem,
                ],
            );
            if expected.contains(&l.serial) {
                assert!(!ok && text.contains("certificate revoked"), "{text}");
            } else {
                assert!(ok, "{text}");
            }
        }
    }
    // The full CRL stays published with every revocation.
    let full = ca.path("full.crl");
    ca.hm(&[
        "crl",
        "--ca",
        "code-signing-ca",
        "--out",
        &full.display().to_string(),
    ]);
    assert_eq!(
        revoked_serials(&std::fs::read(full).unwrap()).len(),
        revoked.len()
    );
    let (code, _, _) = {
        let server = Server::start(&ca, false);
        let r = curl(
            &format!("{}/crl/code-signing-ca/shard-2.crl", server.public),
            &[],
        );
        let (missing, _, _) = curl(
            &format!("{}/crl/code-signing-ca/shard-7.crl", server.public),
            &[],
        );
        assert_eq!(missing, 404);
        r
    };
    assert_eq!(code, 200);
}

/// Holds the database's write lock for `hold` from another process's view (a writer that does
/// not finish); returns once it is held.
fn write_lock_for(db: &Path, hold: Duration) -> std::thread::JoinHandle<()> {
    let store = hallmark::store::hooks::open_with_hooks(db).expect("open");
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let locked = move || {
            let _ = tx.send(());
        };
        store.hold_write_lock(hold, &locked).expect("lock");
    });
    rx.recv().expect("locked");
    h
}

#[test]
fn ocsp_and_crls_do_not_wait_on_writers() {
    use hallmark::issuer::ocsp::{build_request, cert_id, CertIdHash, ResponseStatus};
    use hallmark::revocation::RevocationReason;

    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    let good = issue(&ca, "good");
    let bad = issue(&ca, "bad");
    let hm = std::sync::Arc::new(ca.open());
    hm.revocation
        .revoke(&bad.serial, RevocationReason::Superseded, None, "test")
        .unwrap();
    hm.revocation
        .publish_crls("code-signing-ca", "test")
        .unwrap();
    assert!(hm.revocation.presign_ocsp().unwrap() >= 2);
    assert!(hm.store.count_presigned(None).unwrap() >= 2);

    let ica = ::pem::parse(std::fs::read_to_string(ca.path("ica.pem")).unwrap())
        .unwrap()
        .into_contents();
    let (_, ic) = X509Certificate::from_der(&ica).unwrap();
    let id = |serial: &str| {
        cert_id(
            CertIdHash::Sha1,
            &CertIdHash::Sha1.digest(ic.subject().as_raw()),
            &CertIdHash::Sha1.digest(&ic.public_key().subject_public_key.data),
            &hex::decode(serial).unwrap(),
        )
    };
    let status_of = |der: &[u8]| {
        use der::Decode;
        let r = x509_ocsp::OcspResponse::from_der(der).expect("response");
        let basic = x509_ocsp::BasicOcspResponse::from_der(
            r.response_bytes.expect("bytes").response.as_bytes(),
        )
        .expect("basic");
        format!("{:?}", basic.tbs_response_data.responses[0].cert_status)
    };

    // A writer holds the database; another thread waits for it *holding the store's writer
    // mutex*, as a busy issuance would. OCSP (pre-signed and live) and CRLs still answer at once.
    let db = ca.path("ca/hallmark.db");
    let lock = write_lock_for(&db, Duration::from_secs(3));
    let blocked = {
        let hm = hm.clone();
        std::thread::spawn(move || hm.store.audit("test.blocked", "x", None, "test"))
    };
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    let a = hm
        .revocation
        .ocsp(&build_request(&[id(&good.serial)], None));
    let b = hm
        .revocation
        .ocsp(&build_request(&[id(&bad.serial)], Some(&[7; 16])));
    let c = hm
        .revocation
        .published_crl("code-signing-ca", None)
        .expect("CRL");
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_millis(1500),
        "reads waited {elapsed:?}"
    );
    assert_eq!(
        (a.status, b.status),
        (ResponseStatus::Successful, ResponseStatus::Successful)
    );
    assert!(status_of(&a.der).contains("Good"), "{}", status_of(&a.der));
    assert!(
        status_of(&b.der).contains("Revoked"),
        "{}",
        status_of(&b.der)
    );
    assert!(revoked_serials(&c.der).contains(&bad.serial));
    lock.join().unwrap();
    blocked.join().unwrap().expect("the writer finished");
}

#[test]
fn responder_certificate_is_renewed_before_it_expires() {
    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    let leaf = issue(&ca, "leaf");
    let hm = ca.open();
    assert!(
        hm.revocation.renew_responders("test").unwrap().is_empty(),
        "fresh responders stay"
    );
    let old = hm.store.get_ca("code-signing-ca-ocsp").unwrap().unwrap();
    // Pretend the responder certificate ends tomorrow.
    ca.store()
        .set_ca_not_after("code-signing-ca-ocsp", hm.clock.now() + 86_400)
        .expect("not after");
    assert_eq!(
        hm.revocation.renew_responders("test").unwrap(),
        vec!["code-signing-ca-ocsp".to_string()]
    );
    let new = hm.store.get_ca("code-signing-ca-ocsp").unwrap().unwrap();
    assert_ne!(new.serial, old.serial);
    assert!(new.not_after.unwrap() > hm.clock.now() + 80 * 86_400);
    assert!(hm
        .store
        .audit_events(20)
        .unwrap()
        .iter()
        .any(|e| e.action == "ca.certificate_renewed"
            && e.subject.as_deref() == Some("code-signing-ca-ocsp")));
    // The server's answers now carry the new certificate, and openssl accepts them.
    let server = Server::start(&ca, false);
    let t = ocsp_query(&ca, &server, &["-cert", &leaf.pem], &["-resp_text"]);
    let new_serial = new.serial.unwrap().to_uppercase();
    let shown = t.to_uppercase().replace(':', "");
    assert!(
        shown.contains(&new_serial),
        "the renewed responder certificate is served:\n{t}"
    );
    assert!(t.contains(&format!("{}: good", leaf.pem)), "{t}");
}
