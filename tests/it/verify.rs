//! `hallmark verify` on every format hallmark signs, against a real server whose certificates
//! name its own public listener for OCSP and CRLs: a good artifact passes, a tampered one
//! fails, and the verdict agrees with the third-party verifier of that format (openssl cms,
//! openssl dgst, openssl ts, osslsigncode, jarsigner, imgtool, pycose). A revoked signer fails,
//! except a signature whose time-stamp predates the revocation's invalidity date; `--offline`
//! says revocation was not checked; `--output json` gives the same checks. Authenticode covers
//! PE32, PE32+, CAB and MSI.

use std::io::{Read, Write};

use crate::common::*;

struct Fx {
    env: SignEnv,
    token: String,
    /// publisher acme, scopes sign and revoke.
    public: String,
}

impl std::ops::Deref for Fx {
    type Target = SignEnv;
    fn deref(&self) -> &SignEnv {
        &self.env
    }
}

impl Fx {
    /// A CA whose certificates name 127.0.0.1:PORT, a server listening there, and keys.
    fn start(keys: &[(&str, &str, &str)]) -> Fx {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let ca = TestCa::new_with(Keys::Soft, &["--listen", &listen]);
        ca.add_acme();
        for (label, alg, profile) in keys {
            ca.create_key("acme", label, alg, &["--profile", profile]);
        }
        let token = ca.token(&[
            "--publisher",
            "acme",
            "--scopes",
            "sign,revoke",
            "--name",
            "ci",
        ]);
        let root = ca.ca_pem("root").display().to_string();
        let server = Server::start_at(&ca, &listen, true, &[]);
        let public = server.public.clone();
        Fx {
            env: SignEnv { server, ca, root },
            token,
            public,
        }
    }

    fn dir(&self) -> &std::path::Path {
        self.ca.dir.path()
    }

    fn sign(&self, kind: &str, file: &str, key: &str, extra: &[&str]) {
        let out = run(&mut self.sign_cmd(&self.token, kind, file, key, &[], extra));
        assert!(
            out.status.success(),
            "hallmark sign {kind} {file} {extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `hallmark verify ARGS --ca ROOT`: (exit 0, stdout + stderr).
    fn verify(&self, args: &[&str]) -> (bool, String) {
        let mut a = vec!["verify"];
        a.extend_from_slice(args);
        a.extend(["--ca", &self.root]);
        let out = run(&mut self.ca.cmd(&a));
        (out.status.success(), text_of(&out))
    }

    fn write(&self, name: &str, data: &[u8]) -> String {
        let p = self.path(name);
        std::fs::write(&p, data).expect("write");
        p
    }

    /// Revokes KEY's certificate over the API with INVALIDITY (Unix seconds) as its
    /// invalidity date.
    fn revoke(&self, key: &str, invalidity: i64) {
        let (cert, _) = self.cert_and_public_key(key);
        let serial = openssl(self.dir(), &["x509", "-in", &cert, "-noout", "-serial"]);
        let serial = serial
            .trim()
            .trim_start_matches("serial=")
            .to_ascii_lowercase();
        let body = serde_json::json!({
            "reason": "keyCompromise",
            "invalidity_date": rfc3339(invalidity),
        });
        let (code, v) = self.call(
            Some("POST"),
            &format!("/api/v1/certificates/{serial}/revoke"),
            Some(&self.token),
            Some(&body.to_string()),
        );
        assert_eq!(code, 200, "revoke {key}: {v}");
        // OCSP answers at once; the CRL (which carries the invalidity date) follows.
        let crl = self.path("published.crl");
        let start = std::time::Instant::now();
        loop {
            let (code, body, _) = curl(&format!("{}/crl/code-signing-ca.crl", self.public), &[]);
            assert_eq!(code, 200);
            std::fs::write(&crl, body).expect("crl");
            let text = openssl(
                self.dir(),
                &["crl", "-inform", "DER", "-in", &crl, "-noout", "-text"],
            );
            if text
                .to_ascii_lowercase()
                .contains(&format!("serial number: {serial}"))
            {
                break;
            }
            assert!(
                start.elapsed().as_secs() < 20,
                "the CRL never listed {serial}:\n{text}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// A copy of FILE with the byte at AT flipped.
fn flipped(file: &str, at: usize) -> String {
    let mut data = std::fs::read(file).expect("read");
    data[at] ^= 0x01;
    let p = format!("{file}.flipped-{at}");
    std::fs::write(&p, data).expect("write");
    p
}

/// The line of CHECK in a text report.
fn line<'a>(report: &'a str, check: &str) -> &'a str {
    report
        .lines()
        .find(|l| {
            l.get(5..)
                .is_some_and(|r| r.starts_with(&format!("{check} ")))
        })
        .unwrap_or_else(|| panic!("no {check} line in:\n{report}"))
}

/// Exit 0 and every line ok (a missing time-stamp is allowed: not every format has one).
fn assert_all_ok(report: &str, ok: bool) {
    assert!(ok, "verify failed:\n{report}");
    for l in report.lines().filter(|l| !l.is_empty()) {
        assert!(
            l.starts_with("ok   ") || l.starts_with("skip timestamp  none"),
            "not ok: {l}\n{report}"
        );
    }
}

#[test]
fn every_format_good_tampered_and_agreeing_with_its_verifier() {
    let f = Fx::start(&[
        ("release", "p256", "code-signing"),
        ("release-rsa", "rsa3072", "code-signing"),
        ("fw", "p256", "firmware-signing"),
    ]);
    let data: Vec<u8> = (0..50_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
    let app = f.write("app.bin", &data);
    let bad_app = flipped(&app, 1234);

    // Detached CMS, time-stamped: every check passes, OCSP included.
    for key in ["release", "release-rsa"] {
        let p7s = f.path(&format!("app-{key}.p7s"));
        f.sign("cms", &app, key, &["--timestamp", "--out", &p7s]);
        let (ok, r) = f.verify(&[&app, "--signature", &p7s]);
        assert_all_ok(&r, ok);
        for check in [
            "format",
            "signature",
            "timestamp",
            "chain",
            "validity",
            "usage",
            "revocation",
        ] {
            line(&r, check);
        }
        assert!(line(&r, "revocation").contains("OCSP"), "{r}");
        assert!(line(&r, "chain").contains("Root CA"), "{r}");
        let (tool_ok, said) = f.cms_verify(&p7s, &app);
        assert!(tool_ok, "openssl cms: {said}");
        // The changed file: hallmark and openssl both refuse.
        let (ok, r) = f.verify(&[&bad_app, "--signature", &p7s]);
        assert!(!ok && line(&r, "signature").starts_with("FAIL"), "{r}");
        assert!(r.contains("the content was changed"), "{r}");
        let (tool_ok, said) = f.cms_verify(&p7s, &bad_app);
        assert!(!tool_ok, "openssl cms accepted a changed file: {said}");
    }

    // --output json: the same checks, and "valid".
    let p7s = f.path("app-release.p7s");
    let out = run(&mut f.ca.cmd(&[
        "--output",
        "json",
        "verify",
        &app,
        "--signature",
        &p7s,
        "--ca",
        &f.root,
    ]));
    assert!(out.status.success(), "{}", text_of(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["format"], "cms", "{v}");
    let checks: Vec<&str> = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["check"].as_str().unwrap_or(""))
        .collect();
    assert!(
        checks.contains(&"revocation") && checks.contains(&"timestamp"),
        "{v}"
    );
    assert!(
        v["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .all(|c| c["outcome"] == "pass"),
        "{v}"
    );

    // --offline: revocation not checked, and said so; still exit 0.
    let (ok, r) = f.verify(&[&app, "--signature", &p7s, "--offline"]);
    assert!(ok, "{r}");
    assert!(
        line(&r, "revocation").starts_with("skip") && r.contains("--offline"),
        "{r}"
    );

    // Without a trusted root: refused with what to do.
    let out = run(f
        .ca
        .cmd(&["verify", &app, "--signature", &p7s])
        .env("XDG_CONFIG_HOME", f.path("empty-xdg")));
    assert!(
        !out.status.success() && text_of(&out).contains("--ca"),
        "{}",
        text_of(&out)
    );
    // Against another root: the chain fails.
    let other = TestCa::new(Keys::Soft);
    let other_root = other.ca_pem("root").display().to_string();
    let out = run(&mut f
        .ca
        .cmd(&["verify", &app, "--signature", &p7s, "--ca", &other_root]));
    let r = text_of(&out);
    assert!(
        !out.status.success() && line(&r, "chain").starts_with("FAIL"),
        "{r}"
    );

    // Raw, with its time-stamp token beside it (SIG.tst): --cert checks everything, --key
    // the signature only; openssl dgst agrees.
    let sig = f.path("app.sig");
    f.sign("raw", &app, "release", &["--timestamp", "--out", &sig]);
    let (cert, pubkey) = f.cert_and_public_key("release");
    let (ok, r) = f.verify(&[&app, "--signature", &sig, "--cert", &cert]);
    assert_all_ok(&r, ok);
    assert!(line(&r, "timestamp").starts_with("ok"), "{r}");
    let (ok, r) = f.verify(&[&app, "--signature", &sig, "--key", &pubkey]);
    assert!(ok && line(&r, "chain").starts_with("skip"), "{r}");
    let dgst = |file: &str| {
        tool_run(
            f.dir(),
            "openssl",
            &[
                "dgst",
                "-sha256",
                "-verify",
                &pubkey,
                "-signature",
                &sig,
                file,
            ],
        )
    };
    assert!(dgst(&app).0);
    let (ok, r) = f.verify(&[&bad_app, "--signature", &sig, "--cert", &cert]);
    assert!(!ok && line(&r, "signature").starts_with("FAIL"), "{r}");
    assert!(!dgst(&bad_app).0);

    // The RFC 3161 token alone (it stamps the signature): openssl ts agrees.
    let tst = format!("{sig}.tst");
    let (ok, r) = f.verify(&[&sig, "--signature", &tst]);
    assert_all_ok(&r, ok);
    assert!(line(&r, "usage").contains("timeStamping"), "{r}");
    let tsa_chain = f.ca.ca_pem("timestamping-ca").display().to_string();
    let ts = |data: &str| {
        tool_run(
            f.dir(),
            "openssl",
            &[
                "ts",
                "-verify",
                "-token_in",
                "-in",
                &tst,
                "-data",
                data,
                "-CAfile",
                &f.root,
                "-untrusted",
                &tsa_chain,
            ],
        )
    };
    assert!(ts(&sig).0, "{}", ts(&sig).1);
    let (ok, r) = f.verify(&[&app, "--signature", &tst]);
    assert!(!ok && r.contains("imprint does not match"), "{r}");
    assert!(!ts(&app).0);

    // Authenticode PE32+ and PE32: osslsigncode agrees on good and changed files.
    let ossl = |file: &str| {
        tool_run(
            f.dir(),
            "osslsigncode",
            &[
                "verify",
                "-in",
                file,
                "-CAfile",
                &f.root,
                "-TSA-CAfile",
                &f.root,
            ],
        )
    };
    for (name, plus) in [("app.exe", true), ("app32.exe", false)] {
        let exe = f.write(name, &tiny_pe(plus));
        let signed = f.path(&format!("signed-{name}"));
        f.sign("authenticode", &exe, "release", &["--out", &signed]);
        let (ok, r) = f.verify(&[&signed]);
        assert_all_ok(&r, ok);
        assert!(
            line(&r, "format").contains(if plus { "PE32+" } else { "PE32 " }),
            "{r}"
        );
        assert!(line(&r, "timestamp").starts_with("ok"), "{r}");
        let (tool_ok, said) = ossl(&signed);
        assert!(tool_ok, "osslsigncode: {said}");
        let bad = flipped(&signed, 0x200);
        let (ok, r) = f.verify(&[&bad]);
        assert!(!ok && r.contains("the file was changed"), "{r}");
        assert!(!ossl(&bad).0);
    }
    // CAB and MSI: osslsigncode agrees too.
    let (cab, msi) = cab_and_msi(f.dir());
    for (file, kind) in [(&cab, "CAB"), (&msi, "MSI")] {
        let signed = format!("{file}.signed");
        f.sign("authenticode", file, "release", &["--out", &signed]);
        let (ok, r) = f.verify(&[&signed]);
        assert_all_ok(&r, ok);
        assert!(line(&r, "format").contains(kind), "{r}");
        let (tool_ok, said) = ossl(&signed);
        assert!(tool_ok, "osslsigncode ({kind}): {said}");
        let bad = if kind == "MSI" {
            tampered_msi(&signed)
        } else {
            flipped(&signed, 200)
        };
        let (ok, r) = f.verify(&[&bad]);
        assert!(!ok && r.contains("the file was changed"), "{r}");
        assert!(!ossl(&bad).0);
    }

    // An unsigned PE is refused clearly.
    let (ok, r) = f.verify(&[&f.path("app.exe")]);
    assert!(!ok && r.contains("not signed"), "{r}");

    // A jar: jarsigner agrees on good, changed and added entries.
    let props = "name=app\n".repeat(40);
    let jar = make_jar(
        f.dir(),
        "app.jar",
        &[
            (
                "com/acme/Main.class",
                &[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 61],
            ),
            ("com/acme/app.properties", props.as_bytes()),
        ],
    );
    let signed_jar = f.path("app-signed.jar");
    f.sign("jar", &jar, "release", &["--out", &signed_jar]);
    let (ok, r) = f.verify(&[&signed_jar]);
    assert_all_ok(&r, ok);
    let jarsigner = |file: &str| {
        let (ok, said) = tool_run(f.dir(), "jarsigner", &["-verify", file]);
        (
            ok && said.contains("jar verified.") && !said.contains("unsigned entries"),
            said,
        )
    };
    assert!(jarsigner(&signed_jar).0, "{}", jarsigner(&signed_jar).1);
    let changed = rezip(
        &signed_jar,
        &f.path("changed.jar"),
        "com/acme/app.properties",
        Some(b"name=evil\n"),
    );
    let (ok, r) = f.verify(&[&changed]);
    assert!(
        !ok && r.contains("com/acme/app.properties does not match"),
        "{r}"
    );
    assert!(!jarsigner(&changed).0);
    let added = rezip(
        &signed_jar,
        &f.path("added.jar"),
        "com/acme/Evil.class",
        None,
    );
    let (ok, r) = f.verify(&[&added]);
    assert!(!ok && r.contains("not in the manifest"), "{r}");
    assert!(!jarsigner(&added).0);

    // MCUboot with the firmware key's certificate: imgtool agrees.
    let fw_bin = f.write("fw.bin", &data[..20_000]);
    let image = f.path("fw-signed.bin");
    f.sign(
        "mcuboot",
        &fw_bin,
        "fw",
        &[
            "--version",
            "1.2.3",
            "--header-size",
            "0x200",
            "--pad-header",
            "--out",
            &image,
        ],
    );
    let (fw_cert, fw_pub) = f.cert_and_public_key("fw");
    let (ok, r) = f.verify(&[&image, "--cert", &fw_cert]);
    assert_all_ok(&r, ok);
    let imgtool = |file: &str| tool_run(f.dir(), "imgtool", &["verify", "-k", &fw_pub, file]);
    assert!(imgtool(&image).0, "{}", imgtool(&image).1);
    let bad_image = flipped(&image, 0x300);
    let (ok, r) = f.verify(&[&bad_image, "--cert", &fw_cert]);
    assert!(!ok && r.contains("the image was changed"), "{r}");
    assert!(!imgtool(&bad_image).0);
    // With another key's certificate: the key hash differs.
    let (ok, r) = f.verify(&[&image, "--cert", &cert]);
    assert!(!ok && r.contains("key hash"), "{r}");

    // COSE_Sign1 with x5chain: pycose agrees.
    let cose = f.path("fw.cose");
    f.sign("cose", &fw_bin, "fw", &["--out", &cose]);
    let (ok, r) = f.verify(&[&fw_bin, "--signature", &cose]);
    assert_all_ok(&r, ok);
    assert!(line(&r, "format").contains("COSE_Sign1"), "{r}");
    let script = f.write("pycose_verify.py", PYCOSE.as_bytes());
    let pycose = |payload: &str| tool_run(f.dir(), "python", &[&script, &cose, payload, &fw_cert]);
    assert!(pycose(&fw_bin).0, "{}", pycose(&fw_bin).1);
    let bad_fw = flipped(&fw_bin, 100);
    let (ok, r) = f.verify(&[&bad_fw, "--signature", &cose]);
    assert!(!ok && line(&r, "signature").starts_with("FAIL"), "{r}");
    assert!(!pycose(&bad_fw).0);

    // Something that is no signature at all.
    let junk = f.write("junk.bin", b"hello");
    let (ok, r) = f.verify(&[&junk]);
    assert!(!ok && r.contains("--signature"), "{r}");
    let (ok, r) = f.verify(&[&app, "--signature", &junk]);
    assert!(!ok && r.contains("--cert"), "{r}");
}

/// Verifies a detached COSE_Sign1 over a payload with the certificate's key; exit 0 when it
/// verifies.
const PYCOSE: &str = r#"
import sys
from cryptography import x509
from pycose.messages import Sign1Message
from pycose.keys import EC2Key
from pycose.keys.curves import P256
msg = Sign1Message.decode(open(sys.argv[1], "rb").read())
n = x509.load_pem_x509_certificate(open(sys.argv[3], "rb").read()).public_key().public_numbers()
msg.key = EC2Key(crv=P256, x=n.x.to_bytes(32, "big"), y=n.y.to_bytes(32, "big"))
msg.payload = open(sys.argv[2], "rb").read()
ok = msg.verify_signature()
print("VERIFIED" if ok else "FAILED")
sys.exit(0 if ok else 1)
"#;

/// A copy of the jar SRC at DST with entry NAME replaced by CONTENT (or, with None, a new entry
/// NAME added).
fn rezip(src: &str, dst: &str, name: &str, content: Option<&[u8]>) -> String {
    let mut a = zip::ZipArchive::new(std::fs::File::open(src).expect("open")).expect("zip");
    let mut w = zip::ZipWriter::new(std::fs::File::create(dst).expect("create"));
    let opts = zip::write::SimpleFileOptions::default();
    for i in 0..a.len() {
        let mut e = a.by_index(i).expect("entry");
        let n = e.name().expect("name").to_string();
        let mut buf = Vec::new();
        e.read_to_end(&mut buf).expect("read");
        if n == name {
            if let Some(c) = content {
                buf = c.to_vec();
            }
        }
        w.start_file(n, opts).expect("start");
        w.write_all(&buf).expect("write");
    }
    if content.is_none() {
        w.start_file(name, opts).expect("start");
        w.write_all(&[0xca, 0xfe, 0xba, 0xbe]).expect("write");
    }
    w.finish().expect("finish");
    dst.to_string()
}

#[test]
fn revoked_signers_fail_unless_time_stamped_before_the_invalidity_date() {
    let f = Fx::start(&[
        ("gone", "p256", "code-signing"),
        ("old", "p256", "code-signing"),
        ("fine", "p256", "code-signing"),
    ]);
    let app = f.write("app.bin", b"release 1.0\n");
    let gone_ts = f.path("gone-ts.p7s");
    let gone_plain = f.path("gone-plain.p7s");
    let old_ts = f.path("old-ts.p7s");
    f.sign("cms", &app, "gone", &["--timestamp", "--out", &gone_ts]);
    f.sign("cms", &app, "gone", &["--out", &gone_plain]);
    f.sign("cms", &app, "old", &["--timestamp", "--out", &old_ts]);
    // The other formats, signed by `gone` before it is revoked: Authenticode and jars are
    // time-stamped by default, raw with --timestamp, COSE never.
    let exe = f.write("app.exe", &tiny_pe(true));
    let gone_exe = f.path("gone.exe");
    f.sign("authenticode", &exe, "gone", &["--out", &gone_exe]);
    let old_exe = f.path("old.exe");
    f.sign("authenticode", &exe, "old", &["--out", &old_exe]);
    let jar = make_jar(
        f.dir(),
        "app.jar",
        &[("Main.class", &[0xca, 0xfe, 0xba, 0xbe])],
    );
    let gone_jar = f.path("gone.jar");
    f.sign("jar", &jar, "gone", &["--out", &gone_jar]);
    let gone_sig = f.path("gone.sig");
    f.sign("raw", &app, "gone", &["--timestamp", "--out", &gone_sig]);
    let gone_cose = f.path("gone.cose");
    f.sign("cose", &app, "gone", &["--out", &gone_cose]);
    let gone_img = f.path("gone.img");
    f.sign(
        "mcuboot",
        &app,
        "gone",
        &[
            "--version",
            "1.0.0",
            "--header-size",
            "0x200",
            "--pad-header",
            "--out",
            &gone_img,
        ],
    );
    let (cab, msi) = cab_and_msi(f.dir());
    let gone_cab = f.path("gone.cab");
    f.sign("authenticode", &cab, "gone", &["--out", &gone_cab]);
    let old_msi = f.path("old.msi");
    f.sign("authenticode", &msi, "old", &["--out", &old_msi]);
    let (gone_cert, _) = f.cert_and_public_key("gone");
    for p in [&gone_ts, &gone_plain, &old_ts] {
        let (ok, r) = f.verify(&[&app, "--signature", p]);
        assert!(ok && !r.contains("FAIL"), "{r}");
    }
    // Time-stamps have one-second resolution: the invalidity date lies after them.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    f.revoke("gone", now());
    // `old` went bad an hour before it signed.
    f.revoke("old", now() - 3600);

    // Signed and time-stamped before the key went bad: still valid, and the line says why.
    let (ok, r) = f.verify(&[&app, "--signature", &gone_ts]);
    assert!(ok, "{r}");
    let rev = line(&r, "revocation");
    assert!(
        rev.starts_with("ok") && rev.contains("revoked") && rev.contains("predates"),
        "{r}"
    );
    assert!(rev.contains("OCSP"), "{r}");

    // No time-stamp: nothing shows it is older than the compromise.
    let (ok, r) = f.verify(&[&app, "--signature", &gone_plain]);
    assert!(!ok && line(&r, "revocation").starts_with("FAIL"), "{r}");
    assert!(r.contains("no time-stamp"), "{r}");
    // --offline cannot know: it says so and passes.
    let (ok, r) = f.verify(&[&app, "--signature", &gone_plain, "--offline"]);
    assert!(ok && line(&r, "revocation").starts_with("skip"), "{r}");

    // The same rule in every format: time-stamped before, valid; not time-stamped, revoked.
    for args in [
        vec![gone_exe.as_str()],
        vec![gone_cab.as_str()],
        vec![gone_jar.as_str()],
        vec![app.as_str(), "--signature", &gone_sig, "--cert", &gone_cert],
    ] {
        let (ok, r) = f.verify(&args);
        let rev = line(&r, "revocation");
        assert!(
            ok && rev.starts_with("ok") && rev.contains("predates"),
            "{args:?}: {r}"
        );
    }
    let (ok, r) = f.verify(&[&app, "--signature", &gone_cose]);
    assert!(!ok && line(&r, "revocation").starts_with("FAIL"), "{r}");
    let (ok, r) = f.verify(&[&gone_img, "--cert", &gone_cert]);
    assert!(!ok && line(&r, "revocation").starts_with("FAIL"), "{r}");
    for old in [&old_exe, &old_msi] {
        let (ok, r) = f.verify(&[old]);
        assert!(!ok && r.contains("does not predate"), "{r}");
    }

    // Time-stamped after the invalidity date: fails.
    let (ok, r) = f.verify(&[&app, "--signature", &old_ts]);
    assert!(!ok && line(&r, "revocation").starts_with("FAIL"), "{r}");
    assert!(r.contains("does not predate"), "{r}");

    // openssl cms with the published CRL agrees on the untime-stamped signature (it knows no
    // time-stamps, so the code-signing rule is hallmark's own).
    let (code, crl, _) = curl(&format!("{}/crl/code-signing-ca.crl", f.public), &[]);
    assert_eq!(code, 200);
    let crl_der = f.write("cs.crl", &crl);
    let crl_pem = f.path("cs.crl.pem");
    openssl(
        f.dir(),
        &["crl", "-inform", "DER", "-in", &crl_der, "-out", &crl_pem],
    );
    let root_crl = f.path("root.crl.pem");
    f.ca.hm(&["crl", "--ca", "root", "--out", &root_crl, "--pem"]);
    // openssl reads CRLs from the -CAfile too.
    let root_and_crls = f.path("root-and-crls.pem");
    std::fs::write(
        &root_and_crls,
        [
            std::fs::read(&f.root).expect("root"),
            std::fs::read(&crl_pem).expect("crl"),
            std::fs::read(&root_crl).expect("crl"),
        ]
        .concat(),
    )
    .expect("crls");
    let cms_crl = |p7s: &str| {
        tool_run(
            f.dir(),
            "openssl",
            &[
                "cms",
                "-verify",
                "-binary",
                "-inform",
                "DER",
                "-in",
                p7s,
                "-content",
                &app,
                "-CAfile",
                &root_and_crls,
                "-crl_check",
                "-purpose",
                "any",
                "-out",
                "/dev/null",
            ],
        )
    };
    let (tool_ok, said) = cms_crl(&gone_plain);
    assert!(
        !tool_ok && said.contains("revoked"),
        "openssl cms -crl_check: {said}"
    );
    // And it accepts a signer that is not revoked, with the same CRLs.
    let fine = f.path("fine.p7s");
    f.sign("cms", &app, "fine", &["--out", &fine]);
    let (tool_ok, said) = cms_crl(&fine);
    assert!(tool_ok, "openssl cms -crl_check: {said}");
    let (ok, r) = f.verify(&[&app, "--signature", &fine]);
    assert!(ok && line(&r, "revocation").starts_with("ok"), "{r}");

    // The time-stamp authority's own certificate revoked (from the CA's command line): a token
    // alone no longer verifies; the CMS signature it stamped before stays valid (its
    // revocation line says when the TSA was revoked).
    let tsa_pem = f.dir().join("ca/tsa.pem").display().to_string();
    let tsa_serial = openssl(f.dir(), &["x509", "-in", &tsa_pem, "-noout", "-serial"]);
    let tsa_serial = tsa_serial
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase();
    f.ca.hm(&["revoke", &tsa_serial, "--reason", "keyCompromise"]);
    let gone_tst = format!("{gone_sig}.tst");
    let (ok, r) = f.verify(&[&gone_sig, "--signature", &gone_tst]);
    assert!(!ok && line(&r, "revocation").starts_with("FAIL"), "{r}");
    assert!(
        line(&r, "revocation").contains("Time-Stamping Authority: revoked"),
        "{r}"
    );
    let (ok, r) = f.verify(&[&app, "--signature", &gone_ts]);
    assert!(
        ok && line(&r, "revocation").contains("Time-Stamping Authority: revoked"),
        "{r}"
    );
}
