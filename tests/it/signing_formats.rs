//! Signed formats against their real verifiers, on a real server (TLS on 127.0.0.1):
//! time-stamped CMS (`openssl cms -verify`, `openssl ts -verify`), Authenticode
//! (`osslsigncode verify`), signed jars (`jarsigner -verify -strict`). Each verifier also
//! rejects a tampered artifact. The API's refusals for embedded content and time-stamps record
//! nothing.

use crate::common::*;
use base64::Engine as _;
use serde_json::{json, Value};

struct Fixture {
    env: SignEnv,
    /// acme, scope sign.
    acme: String,
}

impl std::ops::Deref for Fixture {
    type Target = SignEnv;
    fn deref(&self) -> &SignEnv {
        &self.env
    }
}

impl Fixture {
    fn start(keys: Keys) -> Fixture {
        let (env, acme) = SignEnv::start(keys, |ca| {
            for (label, alg) in [
                ("release", "p256"),
                ("release-rsa", "rsa3072"),
                ("gated", "p256"),
            ] {
                ca.create_key("acme", label, alg, &[]);
            }
            let acme = ca.token(&["--publisher", "acme", "--scopes", "sign", "--name", "ci"]);
            // `gated` signs only with one approval, from security-lead.
            ca.hm(&[
                "key",
                "policy",
                "gated",
                "--approvals",
                "1",
                "--approvers",
                "security-lead",
            ]);
            acme
        });
        Fixture { env, acme }
    }

    fn dir(&self) -> &std::path::Path {
        self.ca.dir.path()
    }

    /// `hallmark sign FORMAT FILE --key KEY ... EXTRA` with the token in the environment.
    fn sign(&self, format: &str, file: &str, key: &str, extra: &[&str]) -> std::process::Output {
        let out = run(&mut self.sign_cmd(&self.acme, format, file, key, &[], extra));
        assert!(
            out.status.success(),
            "hallmark sign {format} {file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// A token of `security-lead`, the approver of key `gated`.
    fn approver(&self) -> String {
        self.ca.token(&[
            "--publisher",
            "acme",
            "--scopes",
            "approve",
            "--name",
            "security-lead",
        ])
    }

    /// `hallmark sign KIND FILE --key gated OPTS --poll 1 --timeout 60`, started in the
    /// background: it waits for the approval.
    fn sign_gated(&self, kind: &str, file: &str, opts: &[&str]) -> std::process::Child {
        let mut opts = opts.to_vec();
        opts.extend(["--poll", "1", "--timeout", "60"]);
        let mut c = self.sign_cmd(&self.acme, kind, file, "gated", &opts, &[]);
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c.spawn().expect("spawn sign")
    }

    fn post(&self, body: &Value) -> (u16, Value) {
        self.call(
            Some("POST"),
            "/api/v1/signatures",
            Some(&self.acme),
            Some(&body.to_string()),
        )
    }

    /// The metadata of the newest signature record.
    fn last_metadata(&self) -> Value {
        let m = self
            .store()
            .list_signatures(None, None, None, 1)
            .expect("signatures")
            .into_iter()
            .next()
            .and_then(|s| s.metadata);
        m.and_then(|m| serde_json::from_str(&m).ok())
            .unwrap_or(Value::Null)
    }
}

/// `openssl ts -verify -token_in` of the time-stamp token TOKEN over DATA, against the root.
fn ts_verify_token(f: &Fixture, token: &str, data: &str) -> (bool, String) {
    tool_run(
        f.dir(),
        "openssl",
        &[
            "ts",
            "-verify",
            "-token_in",
            "-in",
            token,
            "-data",
            data,
            "-CAfile",
            &f.root,
        ],
    )
}

/// `keytool -importcert` of FILE as ALIAS into the PKCS#12 KEYSTORE.
fn import_cert(f: &Fixture, alias: &str, file: &str, keystore: &str) -> (bool, String) {
    tool_run(
        f.dir(),
        "keytool",
        &[
            "-importcert",
            "-noprompt",
            "-alias",
            alias,
            "-file",
            file,
            "-keystore",
            keystore,
            "-storetype",
            "PKCS12",
            "-storepass",
            "changeit",
        ],
    )
}

/// A copy of `file` with the byte at `at` flipped.
fn tampered(file: &str, at: usize) -> String {
    let mut data = std::fs::read(file).expect("read");
    data[at] ^= 0x01;
    let p = format!("{file}.tampered");
    std::fs::write(&p, data).expect("write");
    p
}

/// The signature value and the time-stamp token (unsigned attribute `attr_oid`) of the first
/// SignerInfo of a DER ContentInfo holding SignedData.
fn signature_and_token(p7: &[u8], attr_oid: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    let ci = hallmark::der::read_tlv(p7).expect("ContentInfo");
    let explicit = &der_children(ci.contents)[1];
    let sd = hallmark::der::read_tlv(explicit.contents).expect("SignedData");
    let infos = der_children(sd.contents)
        .into_iter()
        .rfind(|t| t.tag == 0x31)
        .expect("signerInfos");
    let si = hallmark::der::read_tlv(infos.contents).expect("SignerInfo");
    let fields = der_children(si.contents);
    let sig = fields
        .iter()
        .find(|t| t.tag == 0x04)
        .expect("signature")
        .contents
        .to_vec();
    let want = hallmark::issuer::extensions::oid(attr_oid);
    let token = fields.iter().find(|t| t.tag == 0xa1).and_then(|unsigned| {
        der_children(unsigned.contents)
            .into_iter()
            .find_map(|attr| {
                let parts = der_children(attr.contents);
                (parts[0].whole == want.as_slice()).then(|| parts[1].contents.to_vec())
            })
    });
    (sig, token)
}

fn cms_timestamp_verifies_with_openssl(keys: Keys) {
    let f = Fixture::start(keys);
    let file = f.path("app.bin");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
    std::fs::write(&file, data).expect("artifact");
    let bad = tampered(&file, 777);

    for key in ["release", "release-rsa"] {
        let p7s = f.path(&format!("app-{key}.p7s"));
        f.sign("cms", &file, key, &["--timestamp", "--out", &p7s]);
        let (ok, text) = f.cms_verify(&p7s, &file);
        assert!(ok, "openssl cms -verify ({key}): {text}");
        let (ok, text) = f.cms_verify(&p7s, &bad);
        assert!(!ok, "a tampered file verified ({key}): {text}");
        // The token is there, as an unsigned attribute.
        let (ok, dump) = tool_run(
            f.dir(),
            "openssl",
            &["cms", "-cmsout", "-print", "-inform", "DER", "-in", &p7s],
        );
        assert!(ok, "{dump}");
        assert!(
            dump.contains("id-smime-aa-timeStampToken"),
            "no timestamp token ({key}):\n{dump}"
        );
        assert!(dump.contains("unsignedAttrs"), "{dump}");
        // The embedded token is over the SHA-256 of this SignerInfo's signature value:
        // `openssl ts -verify` checks it (and its TSA chain) against hallmark's root.
        let (sig, token) = signature_and_token(
            &std::fs::read(&p7s).expect("p7s"),
            "1.2.840.113549.1.9.16.2.14",
        );
        let sig_file = f.path(&format!("{key}.sigvalue"));
        let token_file = f.path(&format!("{key}.tst"));
        std::fs::write(&sig_file, &sig).expect("sig");
        std::fs::write(&token_file, token.expect("a time-stamp token")).expect("token");
        let (ok, text) = ts_verify_token(&f, &token_file, &sig_file);
        assert!(
            ok && text.contains("Verification: OK"),
            "embedded token ({key}): {text}"
        );
        let meta = f.last_metadata();
        assert_eq!(meta["_hallmark"]["timestamped"], true, "{meta}");
        assert_eq!(meta["artifact"], "app.bin", "{meta}");
    }

    // Raw with --timestamp: the token (over the SHA-256 of the signature value) is written
    // beside the signature, and `openssl ts -verify` checks it against hallmark's root.
    let sig = f.path("app.sig");
    f.sign("raw", &file, "release", &["--timestamp", "--out", &sig]);
    let tst = format!("{sig}.tst");
    let (ok, text) = ts_verify_token(&f, &tst, &sig);
    assert!(ok && text.contains("Verification: OK"), "{text}");
    let bad_sig = tampered(&sig, 10);
    let (ok, text) = ts_verify_token(&f, &tst, &bad_sig);
    assert!(!ok, "a token verified for another signature: {text}");
    assert_eq!(f.recorded(), 3);
}

/// Current CRLs (PEM) of the root, `code-signing-ca` and `timestamping-ca`, in one file: the
/// certificates' CRL distribution points name the configured public URL, not the test
/// server's port, so osslsigncode gets them as files (and checks revocation with them).
fn crls(f: &Fixture) -> String {
    let all = f.path("crls.pem");
    let mut text = String::new();
    for ca in ["root", "code-signing-ca", "timestamping-ca"] {
        let one = f.path(&format!("{ca}.crl.pem"));
        f.ca.hm(&["crl", "--ca", ca, "--out", &one, "--pem"]);
        text.push_str(&std::fs::read_to_string(&one).expect("crl"));
    }
    std::fs::write(&all, text).expect("crls");
    all
}

fn osslsigncode_verify(f: &Fixture, file: &str) -> (bool, String) {
    let crls = crls(f);
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
            "-CRLfile",
            &crls,
            "-TSA-CRLfile",
            &crls,
            "-ignore-cdp",
        ],
    )
}

/// signify (Python) verifies an Authenticode file by Windows' rules — the signed content against
/// the file's hash (PE, MSI), the signer's chain to the given root with the code-signing usage,
/// the counter-signature or RFC 3161 time-stamp — independently of osslsigncode. It prints the
/// result and exits 0 only when it is OK.
const SIGNIFY_VERIFY: &str = r#"
import sys
from signify.authenticode import AuthenticodeFile
from signify.x509 import Certificate, CertificateStore
store = CertificateStore(list(Certificate.from_pems(open(sys.argv[2], "rb").read())), trusted=True)
with open(sys.argv[1], "rb") as f:
    signed = AuthenticodeFile.from_stream(f)
    result, error = signed.explain_verify(trusted_certificate_store=store)
    print(type(signed).__name__, result, error)
    sys.exit(0 if error is None else 1)
"#;

fn signify_verify(f: &Fixture, file: &str) -> (bool, String) {
    let script = f.path("signify_verify.py");
    std::fs::write(&script, SIGNIFY_VERIFY).expect("script");
    tool_run(f.dir(), "python", &[&script, file, &f.root])
}

#[test]
fn authenticode_verifies_with_osslsigncode() {
    let f = Fixture::start(Keys::Soft);
    let exe = f.path("app.exe");
    std::fs::write(&exe, tiny_pe(true)).expect("pe");
    // osslsigncode reads the test image as a PE (and finds no signature in it).
    let (ok, text) = osslsigncode_verify(&f, &exe);
    assert!(!ok && text.contains("No signature found"), "{text}");

    // PE32 (i386) as well as PE32+.
    let exe32 = f.path("app32.exe");
    std::fs::write(&exe32, tiny_pe(false)).expect("pe32");
    let signed32 = f.path("app32-signed.exe");
    f.sign("authenticode", &exe32, "release", &["--out", &signed32]);
    let (ok, text) = osslsigncode_verify(&f, &signed32);
    assert!(
        ok && !text.contains("MISMATCH"),
        "osslsigncode verify (PE32): {text}"
    );
    let (ok, text) = osslsigncode_verify(&f, &tampered(&signed32, 0x200));
    assert!(
        !ok && text.contains("MISMATCH"),
        "a tampered PE32 verified: {text}"
    );

    for key in ["release", "release-rsa"] {
        let signed = f.path(&format!("app-signed-{key}.exe"));
        f.sign("authenticode", &exe, key, &["--out", &signed]);
        let (ok, text) = osslsigncode_verify(&f, &signed);
        assert!(ok, "osslsigncode verify ({key}): {text}");
        assert!(text.contains("Signature verification: ok"), "{text}");
        let (ok, said) = signify_verify(&f, &signed);
        assert!(
            ok && said.contains("SignedPEFile"),
            "signify ({key}): {said}"
        );
        // Digest and PE checksum both match.
        assert!(!text.contains("MISMATCH"), "{text}");
        assert!(
            text.contains("Timestamp Server Signature verification: ok")
                || text.contains("Timestamp verified by"),
            "no verified time-stamp ({key}):\n{text}"
        );
        // A changed byte in the code section breaks the signature.
        let bad = tampered(&signed, 0x200);
        let (ok, text) = osslsigncode_verify(&f, &bad);
        assert!(
            !ok && text.contains("MISMATCH"),
            "a tampered PE verified ({key}): {text}"
        );
        let (ok, text) = signify_verify(&f, &bad);
        assert!(!ok, "signify accepted a tampered PE ({key}): {text}");
        let meta = f.last_metadata();
        assert_eq!(meta["_hallmark"]["timestamped"], true, "{meta}");
        assert_eq!(
            meta["_hallmark"]["content_type"], "1.3.6.1.4.1.311.2.1.4",
            "{meta}"
        );
    }

    // A key that needs an approval: the request waits with its content and time-stamp wish,
    // the approval signs it, and the CLI (polling) writes a file osslsigncode verifies.
    let approver = f.approver();
    let gated = f.path("app-gated.exe");
    let child = f.sign_gated("authenticode", &exe, &["--out", &gated]);
    let store = f.store();
    let mut id = None;
    for _ in 0..100 {
        let pending = store
            .signature_request_ids(hallmark::store::SignatureRequestStatus::Pending)
            .expect("read");
        id = pending.into_iter().find(|&id| {
            store
                .get_signature_request(id)
                .ok()
                .flatten()
                .is_some_and(|r| r.key_label == "gated")
        });
        if id.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let id = id.expect("a pending signature request");
    assert_eq!(f.recorded(), 3, "nothing is signed before the approval");
    let (code, v) = f.call(
        Some("POST"),
        &format!("/api/v1/signatures/requests/{id}/approve"),
        Some(&approver),
        Some("{}"),
    );
    assert_eq!(code, 200, "{v}");
    let out = child.wait_with_output().expect("sign");
    assert!(
        out.status.success(),
        "sign authenticode with approval: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, text) = osslsigncode_verify(&f, &gated);
    assert!(
        ok && text.contains("Timestamp Server Signature verification: ok"),
        "{text}"
    );
    let meta = f.last_metadata();
    assert_eq!(meta["_hallmark"]["timestamped"], true, "{meta}");
    assert_eq!(meta["artifact"], "app.exe", "{meta}");

    // Without a time-stamp it verifies too; an already signed file is refused.
    let plain = f.path("app-plain.exe");
    f.sign(
        "authenticode",
        &exe,
        "release",
        &["--out", &plain, "--no-timestamp"],
    );
    let (ok, text) = osslsigncode_verify(&f, &plain);
    assert!(ok, "{text}");
    let twice = f.path("twice.exe");
    let out = run(&mut f.sign_cmd(
        &f.acme,
        "authenticode",
        &plain,
        "release",
        &["--out", &twice],
        &[],
    ));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already signed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(f.recorded(), 5);
}

#[test]
fn authenticode_cab_and_msi_verify_with_osslsigncode() {
    let f = Fixture::start(Keys::Soft);
    let (cab, msi) = cab_and_msi(f.dir());
    for (file, kind) in [(&cab, "CAB"), (&msi, "MSI")] {
        let (ok, text) = osslsigncode_verify(&f, file);
        assert!(!ok, "unsigned {kind} verified: {text}");
        for key in ["release", "release-rsa"] {
            let signed = format!("{file}.{key}.signed");
            let out = f.sign("authenticode", file, key, &["--out", &signed]);
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(said.contains(&format!("{kind} Authenticode")), "{said}");
            let (ok, text) = osslsigncode_verify(&f, &signed);
            assert!(ok, "osslsigncode verify ({kind}, {key}): {text}");
            assert!(text.contains("Signature verification: ok"), "{text}");
            assert!(!text.contains("MISMATCH"), "{text}");
            assert!(
                text.contains("Timestamp Server Signature verification: ok")
                    || text.contains("Timestamp verified by"),
                "no verified time-stamp ({kind}, {key}):\n{text}"
            );
            // signify reads PE and MSI, not cabinets.
            if kind == "MSI" {
                let (ok, text) = signify_verify(&f, &signed);
                assert!(
                    ok && text.contains("SignedMsiFile"),
                    "signify ({key}): {text}"
                );
            }
            let meta = f.last_metadata();
            assert_eq!(meta["_hallmark"]["timestamped"], true, "{meta}");
            let artifact = std::path::Path::new(file)
                .file_name()
                .and_then(|n| n.to_str());
            assert_eq!(meta["artifact"].as_str(), artifact, "{meta}");
        }
        // A changed byte of the signed content breaks the signature.
        let signed = format!("{file}.release.signed");
        let bad = if kind == "CAB" {
            let data = std::fs::read(&signed).expect("cab");
            let at = data
                .windows(8)
                .position(|w| w == b"hallmark")
                .expect("the stored payload");
            tampered(&signed, at)
        } else {
            tampered_msi(&signed)
        };
        let (ok, text) = osslsigncode_verify(&f, &bad);
        assert!(
            !ok && text.contains("MISMATCH"),
            "a tampered {kind} verified: {text}"
        );
        if kind == "MSI" {
            let (ok, text) = signify_verify(&f, &bad);
            assert!(!ok, "signify accepted a tampered MSI: {text}");
        }
        // A signed file is refused before anything is asked of the server.
        let before = f.recorded();
        let out = run(&mut f.sign_cmd(
            &f.acme,
            "authenticode",
            &signed,
            "release",
            &["--out", &format!("{signed}.twice")],
            &[],
        ));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && said.contains("already signed"),
            "{kind}: {said}"
        );
        assert_eq!(f.recorded(), before);
    }
    // A file that is none of PE, CAB and MSI is refused by name.
    let other = f.path("notes.txt");
    std::fs::write(&other, "not a program").expect("txt");
    let out = run(&mut f.sign_cmd(
        &f.acme,
        "authenticode",
        &other,
        "release",
        &["--out", &f.path("x")],
        &[],
    ));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("PE image"), "{said}");
    assert_eq!(f.recorded(), 4);
}

#[test]
fn jar_verifies_with_jarsigner() {
    let f = Fixture::start(Keys::Soft);
    let src = f.ca.path("jar-src");
    std::fs::create_dir_all(src.join("com/acme/app")).expect("mkdir");
    std::fs::write(
        src.join("com/acme/app/Main.class"),
        vec![0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 61],
    )
    .expect("class");
    std::fs::write(
        src.join("com/acme/app/config.properties"),
        "name=app\n".repeat(50),
    )
    .expect("props");
    // A long entry name: its manifest line wraps at 72 bytes.
    let long = format!("com/acme/app/{}.txt", "very-long-resource-name".repeat(4));
    std::fs::write(src.join(&long), "hello").expect("long");
    let jar = f.path("app.jar");
    let (ok, text) = tool_run(
        f.dir(),
        "jar",
        &[
            "--create",
            "--file",
            &jar,
            "-C",
            &src.display().to_string(),
            ".",
        ],
    );
    assert!(ok, "jar: {text}");

    let trust = f.path("trust.p12");
    // A truststore with the root only, for the check without -strict.
    let root_only = f.path("root-only.p12");
    let (ok, text) = import_cert(&f, "hallmark-root", &f.root, &root_only);
    assert!(ok, "keytool: {text}");
    let (ok, text) = import_cert(&f, "hallmark-root", &f.root, &trust);
    assert!(ok, "keytool: {text}");
    // With -keystore, `jarsigner -strict` also wants a certificate of the signer's own path
    // in that keystore (else "not signed by alias in this keystore", aliasNotInStore): the
    // code-signing CA that issues publisher keys is that certificate. The root stays the
    // only trust anchor the path is validated against.
    let issuing = f.ca.ca_pem("code-signing-ca").display().to_string();
    let (ok, text) = import_cert(&f, "hallmark-code-signing-ca", &issuing, &trust);
    assert!(ok, "keytool: {text}");
    let verify = |file: &str| {
        tool_run(
            f.dir(),
            "jarsigner",
            &[
                "-verify",
                "-strict",
                "-verbose",
                "-certs",
                "-keystore",
                &trust,
                "-storetype",
                "PKCS12",
                "-storepass",
                "changeit",
                file,
            ],
        )
    };

    for (key, block) in [("release", "SIGNER.EC"), ("release-rsa", "SIGNER.RSA")] {
        let signed = f.path(&format!("app-signed-{key}.jar"));
        f.sign("jar", &jar, key, &["--out", &signed]);
        let (ok, text) = verify(&signed);
        assert!(
            ok && text.contains("jar verified."),
            "jarsigner ({key}): {text}"
        );
        assert!(
            text.contains("Timestamped by") || text.contains("timestamped by"),
            "no time-stamp reported ({key}):\n{text}"
        );
        assert!(!text.contains("unsigned entries"), "{text}");
        // hallmark's META-INF entries carry no POSIX attributes (jarsigner warns of them).
        assert!(!text.contains("POSIX file permission"), "{text}");
        // Against the root alone (no -strict), the chain and time-stamp verify too.
        let (ok, text) = tool_run(
            f.dir(),
            "jarsigner",
            &[
                "-verify",
                "-verbose",
                "-certs",
                "-keystore",
                &root_only,
                "-storetype",
                "PKCS12",
                "-storepass",
                "changeit",
                &signed,
            ],
        );
        assert!(
            ok && text.contains("jar verified.") && !text.contains("certificate chain is invalid"),
            "jarsigner, root only ({key}): {text}"
        );
        // The entries come in the order JarInputStream needs.
        let (ok, list) = tool_run(f.dir(), "jar", &["--list", "--file", &signed]);
        assert!(ok, "{list}");
        let names: Vec<&str> = list.lines().collect();
        let at = |n: &str| names.iter().position(|x| *x == n);
        assert!(
            at("META-INF/MANIFEST.MF") < at("META-INF/SIGNER.SF")
                && at("META-INF/SIGNER.SF") < at(&format!("META-INF/{block}"))
                && at(&format!("META-INF/{block}")) < at("com/acme/app/Main.class"),
            "{list}"
        );

        // A changed entry is caught: rebuild the jar with one entry's content changed.
        let bad_dir = f.ca.path(&format!("bad-{key}"));
        std::fs::create_dir_all(&bad_dir).expect("mkdir");
        let (ok, text) = tool_run(&bad_dir, "jar", &["--extract", "--file", &signed]);
        assert!(ok, "{text}");
        std::fs::write(
            bad_dir.join("com/acme/app/config.properties"),
            "name=evil\n",
        )
        .expect("tamper");
        let bad = f.path(&format!("app-bad-{key}.jar"));
        let (ok, text) = tool_run(
            f.dir(),
            "jar",
            &[
                "--create",
                "--file",
                &bad,
                "--manifest",
                &bad_dir.join("META-INF/MANIFEST.MF").display().to_string(),
                "-C",
                &bad_dir.display().to_string(),
                ".",
            ],
        );
        assert!(ok, "{text}");
        let (ok, text) = verify(&bad);
        assert!(
            !ok && text.contains("digest error for com/acme/app/config.properties"),
            "a tampered jar verified ({key}): {text}"
        );
    }
    assert_eq!(f.recorded(), 2);
}

#[test]
fn content_and_timestamp_refusals_record_nothing() {
    let f = Fixture::start(Keys::Soft);
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    // An SpcIndirectDataContent (for some PE digest) and its Authenticode digest.
    let content = hallmark::formats::authenticode::spc_indirect_data(
        hallmark::keys::HashAlg::Sha256,
        &[0x5a; 32],
    );
    let inner = content[2..].to_vec();
    assert_eq!(usize::from(content[1]), inner.len());
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&inner))
    };
    let body = |digest: &str, ct: &str, content: &str, format: &str| {
        json!({"key": "release", "digest": digest, "digest_algorithm": "sha256",
               "format": format, "content_type": ct, "content": content})
    };
    let spc = "1.3.6.1.4.1.311.2.1.4";
    let refused = |b: Value, status: u16, kind: &str, says: &str| {
        let (code, v) = f.post(&b);
        assert_eq!(code, status, "{v}");
        assert_eq!(
            v["type"].as_str().unwrap_or(""),
            format!("urn:hallmark:problem:{kind}"),
            "{v}"
        );
        assert!(v["detail"].as_str().unwrap_or("").contains(says), "{v}");
    };

    // Time-stamp asked for while no TSA is set up (its certificate file is moved away
    // before the server first needs it).
    let tsa = f.dir().join("ca/tsa.pem");
    let away = f.dir().join("ca/tsa.pem.away");
    std::fs::rename(&tsa, &away).expect("move tsa.pem");
    refused(
        json!({"key": "release", "digest": "ab".repeat(32), "digest_algorithm": "sha256",
               "format": "cms", "timestamp": true}),
        409,
        "conflict",
        "time-stamp authority",
    );
    std::fs::rename(&away, &tsa).expect("restore tsa.pem");

    // The content's digest is not the request's.
    refused(
        body(&"ab".repeat(32), spc, &b64(&content), "cms"),
        400,
        "bad-request",
        "content digest mismatch",
    );
    // The digest of the whole DER (with the outer tag) is not Authenticode's rule either.
    let whole = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&content))
    };
    refused(
        body(&whole, spc, &b64(&content), "cms"),
        400,
        "bad-request",
        "content digest mismatch",
    );
    // Too large.
    let big_inner = vec![0x04, 0x82, 0x50, 0x00]
        .into_iter()
        .chain(std::iter::repeat_n(0u8, 0x5000))
        .collect::<Vec<u8>>();
    let mut big = vec![0x30, 0x82, 0x50, 0x04];
    big.extend_from_slice(&big_inner);
    let big_digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&big_inner))
    };
    refused(
        body(&big_digest, spc, &b64(&big), "cms"),
        400,
        "bad-request",
        "larger than 16384 bytes",
    );
    // Unknown content type; content with raw; half a content; not base64; not one SEQUENCE.
    refused(
        body(&digest, "1.2.840.113549.1.7.1", &b64(&content), "cms"),
        400,
        "bad-request",
        "is not offered",
    );
    refused(
        body(&digest, spc, &b64(&content), "raw"),
        400,
        "bad-request",
        "CMS only",
    );
    refused(
        json!({"key": "release", "digest": digest, "digest_algorithm": "sha256",
               "format": "cms", "content_type": spc}),
        400,
        "bad-request",
        "come together",
    );
    refused(
        body(&digest, spc, "%%%", "cms"),
        400,
        "bad-request",
        "base64",
    );
    refused(
        body(
            &digest,
            spc,
            &b64(&[content.clone(), vec![0x05, 0x00]].concat()),
            "cms",
        ),
        400,
        "bad-request",
        "exactly one DER SEQUENCE",
    );
    // A SEQUENCE that is not an SpcIndirectDataContent.
    let not_spc = [0x30, 0x05, 0x06, 0x03, 0x2b, 0x06, 0x01];
    let not_spc_digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&not_spc[2..]))
    };
    refused(
        body(&not_spc_digest, spc, &b64(&not_spc), "cms"),
        400,
        "bad-request",
        "not an SpcIndirectDataContent",
    );
    // hallmark's own metadata key cannot be forged.
    refused(
        json!({"key": "release", "digest": "ab".repeat(32), "digest_algorithm": "sha256",
               "format": "cms", "metadata": {"_hallmark": {"timestamped": true}}}),
        400,
        "bad-request",
        "reserved",
    );
    assert_eq!(f.recorded(), 0);

    // The same content with its right digest is signed, embedded, and time-stamped; the raw
    // format answers with the token beside the signature.
    let (code, v) = f.post(&body(&digest, spc, &b64(&content), "cms"));
    assert_eq!(code, 201, "{v}");
    let p7 = base64::engine::general_purpose::STANDARD
        .decode(v["signature"].as_str().unwrap_or(""))
        .expect("base64");
    assert!(
        p7.windows(content.len()).any(|w| w == content.as_slice()),
        "the content is embedded"
    );
    assert!(v.get("timestamp_token").is_none(), "{v}");
    let (code, v) = f.post(&json!({"key": "release", "digest": "ab".repeat(32),
        "digest_algorithm": "sha256", "format": "raw", "timestamp": true}));
    assert_eq!(code, 201, "{v}");
    assert!(
        v["timestamp_token"].as_str().is_some_and(|t| t.len() > 100),
        "{v}"
    );
    assert_eq!(f.recorded(), 2);
}

per_key_store!(cms_timestamp_verifies_with_openssl);

/// A raw, time-stamped signature on a key that needs an approval: the request waits with its
/// time-stamp wish, the approval signs and stamps it, and the CLI (polling) writes the signature
/// and its token (`.tst`) — the token verifies over the signature with `openssl ts -verify`, the
/// signature over the file with `openssl dgst -verify`.
#[test]
fn raw_time_stamp_after_approval_comes_with_the_signature() {
    let f = Fixture::start(Keys::Soft);
    let file = f.path("fw.bin");
    std::fs::write(&file, b"firmware to release\n".repeat(1000)).expect("file");
    let approver = f.approver();
    let sig = f.path("fw.sig");
    let child = f.sign_gated("raw", &file, &["--out", &sig, "--timestamp"]);
    let id = f.pending_request();
    assert_eq!(f.recorded(), 0, "nothing is signed before the approval");
    let out = f.approve(id, &approver);
    assert!(out.status.success(), "approve: {}", text_of(&out));
    let out = child.wait_with_output().expect("sign");
    assert!(
        out.status.success(),
        "sign raw with approval: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = format!("{sig}.tst");
    let (ok, text) = ts_verify_token(&f, &token, &sig);
    assert!(ok && text.contains("Verification: OK"), "{text}");
    let (_, pubkey) = f.cert_and_public_key("gated");
    let (ok, text) = tool_run(
        f.dir(),
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            &pubkey,
            "-signature",
            &sig,
            &file,
        ],
    );
    assert!(ok, "{text}");
    // The request shows the token too, and a token over another signature does not verify.
    let (code, v) = f.call(
        None,
        &format!("/api/v1/signatures/requests/{id}"),
        Some(&f.acme),
        None,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "signed", "{v}");
    assert!(v["timestamp_token"].as_str().is_some(), "{v}");
    let other = tampered(&sig, 8);
    let (ok, text) = ts_verify_token(&f, &token, &other);
    assert!(!ok, "a token verified over another signature: {text}");
    assert_eq!(f.recorded(), 1);
}
