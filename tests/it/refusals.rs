//! Bad input is refused with a specific message and a non-zero exit, and nothing is written to
//! the certificates (or requests) table.

use crate::common::*;

const ACME_SUBJ: &str = "/C=US/ST=California/L=San Jose/O=Acme Corp/CN=Acme Corp";

/// How many certificate records and certificate requests the store holds.
fn counts(ca: &TestCa) -> (i64, usize) {
    let store = ca.store();
    let c = store.count_certificates(None).expect("count");
    let r = store
        .list_requests(None, None, None, 100_000)
        .expect("requests")
        .len();
    (c, r)
}

fn refused(
    ca: &TestCa,
    base: (i64, usize),
    profile: &str,
    publisher: &str,
    csr: &std::path::Path,
    expect: &str,
) {
    let out = run(&mut ca.cmd(&[
        "issue",
        "--profile",
        profile,
        "--publisher",
        publisher,
        "--csr",
        &csr.display().to_string(),
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected a refusal ({expect}), got success"
    );
    assert!(err.contains(expect), "expected '{expect}' in: {err}");
    assert!(out.stdout.is_empty(), "no certificate printed on refusal");
    assert_eq!(counts(ca), base, "nothing written after: {expect}");
}

#[test]
fn bad_requests_are_refused_and_nothing_is_stored() {
    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    let dir = ca.dir.path();
    let p256 = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
    let good = make_csr(dir, "good", &p256, ACME_SUBJ, &[]);
    openssl(
        dir,
        &[
            "req", "-in", "good.csr", "-outform", "DER", "-out", "good.der",
        ],
    );
    let der = std::fs::read(dir.join("good.der")).expect("der");
    // init issued the API listener's certificate already.
    let base = counts(&ca);
    let code_signing = |csr: &std::path::Path, expect: &str| {
        refused(&ca, base, "code-signing", "acme", csr, expect)
    };

    // Truncated DER.
    std::fs::write(dir.join("trunc.der"), &der[..der.len() / 2]).expect("write");
    code_signing(&dir.join("trunc.der"), "malformed CSR DER");
    // Garbage PEM.
    std::fs::write(dir.join("garbage.pem"), "-----BEGIN CERTIFICATE REQUEST-----\nthis is not base64 !!!\n-----END CERTIFICATE REQUEST-----\n").expect("write");
    code_signing(&dir.join("garbage.pem"), "cannot read the PEM");
    // A tampered signature (last byte flipped).
    let mut bad = der.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    std::fs::write(dir.join("tampered.der"), &bad).expect("write");
    code_signing(&dir.join("tampered.der"), "signature does not verify");
    // RSA-2048 for code signing.
    let rsa2048 = make_csr(
        dir,
        "rsa2048",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        ACME_SUBJ,
        &[],
    );
    code_signing(&rsa2048, "RSA-2048 is below the minimum of 3072 bits");
    // RSA with exponent 3.
    let e3 = make_csr(
        dir,
        "e3",
        &[
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:3072",
            "-pkeyopt",
            "rsa_keygen_pubexp:3",
        ],
        ACME_SUBJ,
        &[],
    );
    code_signing(&e3, "public exponent must be 65537");
    // A P-192 key.
    let p192 = make_csr(
        dir,
        "p192",
        &[
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:prime192v1",
        ],
        ACME_SUBJ,
        &[],
    );
    code_signing(&p192, "P-192 curve is refused");
    // O=Evil Corp for publisher Acme.
    let evil = make_csr(dir, "evil", &p256, "/C=US/O=Evil Corp/CN=Acme Corp", &[]);
    code_signing(
        &evil,
        "subject attribute O='Evil Corp' contradicts the verified publisher record",
    );
    // An attribute the record does not have.
    let ou = make_csr(dir, "ou", &p256, "/O=Acme Corp/OU=Shipping", &[]);
    code_signing(
        &ou,
        "subject attribute OU='Shipping' is not part of the verified publisher record",
    );
    // basicConstraints CA:TRUE.
    let ca_true = make_csr(
        dir,
        "catrue",
        &p256,
        ACME_SUBJ,
        &["-addext", "basicConstraints=critical,CA:TRUE"],
    );
    code_signing(&ca_true, "basicConstraints CA:TRUE");
    // Unknown profile, unknown publisher.
    refused(
        &ca,
        base,
        "no-such-profile",
        "acme",
        &good,
        "unknown profile 'no-such-profile'",
    );
    refused(
        &ca,
        base,
        "code-signing",
        "evil",
        &good,
        "unknown publisher 'evil'",
    );
    // A device CSR without a serial, and a serial outside the pattern.
    let nodev = make_csr(dir, "nodev", &p256, "/O=Acme Corp", &[]);
    refused(
        &ca,
        base,
        "iot-device",
        "acme",
        &nodev,
        "needs a device serial",
    );
    let baddev = make_csr(dir, "baddev", &p256, "/serialNumber=bad serial", &[]);
    refused(
        &ca,
        base,
        "iot-device",
        "acme",
        &baddev,
        "does not match the pattern",
    );
    // A P-384 key for the P-256-only device profile.
    let dev384 = make_csr(
        dir,
        "dev384",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        "/serialNumber=ACME-1",
        &[],
    );
    refused(
        &ca,
        base,
        "iot-device",
        "acme",
        &dev384,
        "ECDSA P-384 keys are not allowed by profile 'iot-device'",
    );

    // And the good CSR still issues: the refusals changed nothing.
    ca.hm(&[
        "issue",
        "--profile",
        "code-signing",
        "--publisher",
        "acme",
        "--csr",
        &good.display().to_string(),
    ]);
    assert_eq!(counts(&ca), (base.0 + 1, base.1 + 1));
}

/// `publisher add acme --org Acme --country COUNTRY [--state STATE] --profiles PROFILES`.
fn publisher_add<'a>(country: &'a str, state: Option<&'a str>, profiles: &'a str) -> Vec<&'a str> {
    let mut args = vec![
        "publisher",
        "add",
        "acme",
        "--org",
        "Acme",
        "--country",
        country,
    ];
    if let Some(st) = state {
        args.extend(["--state", st]);
    }
    args.extend(["--profiles", profiles]);
    args
}

/// `key create --publisher acme --label LABEL --algorithm ALG`.
fn key_create<'a>(label: &'a str, alg: &'a str) -> [&'a str; 8] {
    [
        "key",
        "create",
        "--publisher",
        "acme",
        "--label",
        label,
        "--algorithm",
        alg,
    ]
}

#[test]
fn publisher_and_cli_input_is_validated() {
    let ca = TestCa::new(Keys::Soft);
    let bad = |args: &[&str], expect: &str| {
        let out = run(&mut ca.cmd(args));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(err.contains(expect), "expected '{expect}' in: {err}");
    };
    bad(
        &publisher_add("usa", Some("CA"), "code-signing"),
        "two-letter",
    );
    bad(
        &publisher_add("US", None, "code-signing"),
        "--state or --locality",
    );
    bad(
        &publisher_add("US", Some("CA"), "nope"),
        "unknown profile 'nope'",
    );
    ca.add_acme();
    bad(
        &publisher_add("US", Some("CA"), "code-signing"),
        "already exists",
    );
    bad(&key_create("../evil", "p256"), "invalid key label");
    bad(&key_create("x", "dsa"), "unknown key algorithm");
    bad(&["cert", "show", "00ff"], "no certificate with serial");
    bad(&["ca", "cert", "nope"], "no CA named 'nope'");
    // The publisher record was not changed by the failed second add.
    assert!(ca.hm(&["publisher", "show", "acme"]).contains("San Jose"));
    // Profiles can change later; unknown profiles and unknown publishers are refused.
    bad(
        &["publisher", "update", "acme", "--profiles", "nope"],
        "unknown profile 'nope'",
    );
    bad(
        &["publisher", "update", "ghost", "--profiles", "code-signing"],
        "publisher 'ghost' was not found",
    );
    ca.hm(&["publisher", "update", "acme", "--profiles", "code-signing"]);
    let shown = ca.hm(&["publisher", "show", "acme"]);
    assert!(shown.contains("profiles: code-signing\n"), "{shown}");
    assert!(shown.contains("San Jose"), "the identity is unchanged");
    assert!(ca.hm(&["audit"]).contains("publisher.profiles_changed"));

    // No config at all.
    let out = run(std::process::Command::new(hallmark_bin())
        .args(["ca", "list"])
        .env_remove("HALLMARK_CONFIG"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HALLMARK_CONFIG"));
    // init never overwrites a CA.
    let out = run(std::process::Command::new(hallmark_bin()).args([
        "init",
        "--dir",
        &ca.dir.path().join("ca").display().to_string(),
        "--passphrase-env",
        "X",
    ]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("never overwrites"));
    // HALLMARK_CONFIG replaces --config.
    let out = ok(std::process::Command::new(hallmark_bin())
        .args(["ca", "list"])
        .env("HALLMARK_CONFIG", ca.config())
        .envs(ca.env().iter().map(|(k, v)| (k.as_str(), v.as_str()))));
    assert!(out.contains("code-signing-ca"));
}

/// `hallmark` (hallmark's own certificates are recorded under that publisher id) and the
/// names beside it are refused at `publisher add`; a clash left from before is reported by
/// `doctor` and its tokens are refused, so it can never reach the CA's own certificates.
#[test]
fn the_internal_publisher_id_is_reserved() {
    let ca = TestCa::new(Keys::Soft);
    for id in ["hallmark", "hallmark-ops"] {
        let out = run(&mut ca.cmd(&[
            "publisher",
            "add",
            id,
            "--org",
            "Evil",
            "--country",
            "US",
            "--state",
            "CA",
            "--profiles",
            "code-signing",
        ]));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{id} was accepted");
        assert!(err.contains("is reserved"), "{err}");
    }
    assert!(ca.hm(&["doctor"]).contains("ok"));
    // A database from before the id was reserved, with an ordinary publisher named `hallmark`.
    // (The store records what it is given; the reservation is the CLI's and the API's.)
    ca.store()
        .add_publisher(
            &hallmark::store::Publisher {
                id: "hallmark".into(),
                org: "Evil".into(),
                country: "US".into(),
                state: Some("CA".into()),
                locality: None,
                profiles: vec!["code-signing".into()],
                created_at: 0,
            },
            "test",
        )
        .expect("old publisher");
    let secret = ca.token(&[
        "--publisher",
        "hallmark",
        "--name",
        "evil",
        "--scopes",
        "revoke",
    ]);
    let hm = ca.open();
    let e = hm
        .tokens
        .authenticate(Some(&secret), None)
        .expect_err("a token of the reserved publisher");
    assert_eq!(e.kind(), "unauthorized");
    assert!(e.to_string().contains("reserved"), "{e}");
    let out = run(&mut ca.cmd(&["doctor"]));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("publisher hallmark") && text.contains("reserved"),
        "{text}"
    );
}

#[test]
fn profile_check_names_file_field_and_problem() {
    let dir = tempfile::tempdir().expect("tmp");
    let check = |name: &str, text: &str, expect: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        let out = run(std::process::Command::new(hallmark_bin()).args([
            "profile",
            "check",
            &p.display().to_string(),
        ]));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} should be refused");
        assert!(
            err.contains(name) && err.contains(expect),
            "expected file and '{expect}' in: {err}"
        );
    };
    let base = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ca-profiles/code-signing.toml"),
    )
    .expect("profile");
    check(
        "code-signing.toml",
        &base.replace("validity_days = 365", "validity_days = 500"),
        "validity_days",
    );
    check(
        "code-signing.toml",
        &base.replace("[key]", "[key]\ncolour = \"red\""),
        "unknown field `colour`",
    );
    check(
        "code-signing.toml",
        &base.replace("\"codeSigning\"", "\"codeSigning\", \"serverAuth\""),
        "extended_key_usage",
    );
    check(
        "code-signing.toml",
        &base.replace("rsa_min_bits = 3072", "rsa_min_bits = 2048"),
        "key.rsa_min_bits",
    );
    check("other-name.toml", &base, "does not match the file name");
    let ts = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ca-profiles/timestamping.toml"),
    )
    .expect("profile");
    check(
        "timestamping.toml",
        &ts.replace(
            "extended_key_usage_critical = true",
            "extended_key_usage_critical = false",
        ),
        "critical",
    );
    // Every shipped profile passes.
    for entry in
        std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ca-profiles"))
            .expect("dir")
    {
        let p = entry.expect("entry").path();
        if p.extension().is_some_and(|e| e == "toml") {
            ok(std::process::Command::new(hallmark_bin()).args([
                "profile",
                "check",
                &p.display().to_string(),
            ]));
        }
    }
}

/// A secret given where a variable name belongs is never printed back; an EAB key for a
/// publisher that may use no ACME directory's profile is refused at once (not at finalize),
/// and a printed key is pasteable (never starts with '-').
#[test]
fn secrets_are_not_echoed_and_eab_keys_fit_a_directory() {
    let ca = TestCa::new(Keys::Soft);
    ca.add_globex(); // code-signing only
    ca.add_acme(); // tls-server among its profiles
    std::fs::write(ca.path("f.bin"), b"data").expect("file");
    let file = ca.path("f.bin").display().to_string();
    let token = "hmk_0123456789ab_TopSecretValue";
    let out = run(&mut ca.cmd(&[
        "sign",
        "cms",
        &file,
        "--key",
        "release",
        "--server",
        "http://127.0.0.1:9",
        "--token-env",
        token,
    ]));
    let text = text_of(&out);
    assert!(!out.status.success());
    assert!(
        !text.contains("TopSecretValue"),
        "the token was printed: {text}"
    );
    assert!(text.contains("looks like a token"), "{text}");

    let out = run(&mut ca.cmd(&["acme", "eab", "create", "--publisher", "globex"]));
    let text = text_of(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("/acme/tls-server/"), "{text}");
    assert!(text.contains("publisher update globex"), "{text}");
    let keys = ca.store().list_eab_keys().expect("read").len();
    assert_eq!(keys, 0, "a refused EAB key was stored");

    let out = ca.hm(&["acme", "eab", "create", "--publisher", "acme"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("certbot: "))
        .unwrap_or_else(|| panic!("no certbot line in {out}"));
    assert!(
        line.contains("--eab-kid=eab_") && line.contains("--eab-hmac-key="),
        "{line}"
    );
}

/// With a CA's config, `profile check` also refuses a profile whose issuer is not one of its
/// CAs (naming the CAs there), and passes the CA's own profiles.
#[test]
fn profile_check_with_a_config_knows_the_issuers() {
    let ca = TestCa::new(Keys::Soft);
    let base = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ca-profiles/code-signing.toml"),
    )
    .expect("profile");
    assert!(base.contains("issuer = \"code-signing-ca\""));
    let dir = ca.path("profiles");
    std::fs::create_dir_all(&dir).expect("dir");
    let f = dir.join("code-signing.toml");
    std::fs::write(
        &f,
        base.replace("issuer = \"code-signing-ca\"", "issuer = \"no-such-ca\""),
    )
    .expect("write");
    let out = run(&mut ca.cmd(&["profile", "check", &f.display().to_string()]));
    let err = text_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("'no-such-ca' is not a CA") && err.contains("code-signing-ca"),
        "{err}"
    );
    let out = ca.hm(&["profile", "check"]);
    assert!(out.contains("code-signing.toml: ok"), "{out}");
    // The Matter DAC profile's PAI is made on demand: valid, but not said to be ok.
    assert!(
        out.contains("matter-dac.toml: valid, not usable yet") && out.contains("'matter-pai'"),
        "{out}"
    );
    assert!(!out.contains("matter-dac.toml: ok"), "{out}");
}

/// Errors that say what to do: an unknown profile names the loaded ones, the nearest and the
/// restart; a token revoked twice says when; a SoftHSM2 token not found names SOFTHSM2_CONF.
#[test]
fn errors_say_what_to_do() {
    let ca = TestCa::new(Keys::SoftHsm);
    ca.add_acme();
    let csr = make_csr(
        &ca.path(""),
        "a",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        ACME_SUBJ,
        &[],
    );
    let out = run(&mut ca.cmd(&[
        "issue",
        "--profile",
        "code-signin",
        "--publisher",
        "acme",
        "--csr",
        &csr.display().to_string(),
    ]));
    let text = text_of(&out);
    assert!(!out.status.success());
    assert!(
        text.contains("unknown profile 'code-signin'")
            && text.contains("did you mean 'code-signing'?")
            && text.contains("firmware-signing")
            && text.contains("restart"),
        "{text}"
    );

    let token = ca.token(&["--publisher", "acme"]);
    let id = token.split('_').nth(1).expect("id");
    ca.hm(&["token", "revoke", id]);
    let out = run(&mut ca.cmd(&["token", "revoke", id]));
    let text = text_of(&out);
    assert!(!out.status.success());
    assert!(text.contains("already revoked at"), "{text}");

    let out = run(ca.cmd(&["ca", "list"]).env_remove("SOFTHSM2_CONF"));
    let out = if out.status.success() {
        // Listing reads the database only; signing needs the token.
        run(ca
            .cmd(&[
                "key",
                "create",
                "--publisher",
                "acme",
                "--label",
                "k",
                "--algorithm",
                "p256",
            ])
            .env_remove("SOFTHSM2_CONF"))
    } else {
        out
    };
    let text = text_of(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("SOFTHSM2_CONF is not set"), "{text}");
}
