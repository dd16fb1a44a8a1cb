//! hallmark-pkcs11 driven by real tools against a real server (SoftHSM2 keys): OpenSC's
//! pkcs11-tool lists the slot, objects and mechanisms and signs (ECDSA P-256, RSA-PSS, RSA
//! PKCS#1 v1.5); openssl signs through libp11's engine; osslsigncode signs a PE through the
//! engine and verifies it. Every signature verifies with openssl against the key's certificate
//! and is recorded with the tool that asked. Refusals sign and record nothing.

mod common;

use common::*;

/// `target/debug/libhallmark_pkcs11.so`, built by `make test` (`cargo build -p hallmark-pkcs11`).
fn module_path() -> String {
    let p = hallmark_bin()
        .parent()
        .expect("target dir")
        .join("libhallmark_pkcs11.so");
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo build -p hallmark-pkcs11` (make test does)",
        p.display()
    );
    p.display().to_string()
}

const ENGINE: &str = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so";

struct Env {
    sign: SignEnv,
    module: String,
    config: String,
    token: String,
}

impl Env {
    /// Keys `release` (P-256) and `release-rsa` (RSA-3072) of acme, globex's `tool`, a sign
    /// token of acme's, and the module's config naming all three (and one that does not exist).
    fn start() -> Env {
        let (sign, ()) = SignEnv::start(Keys::SoftHsm, |ca| {
            ca.add_globex();
            ca.create_key("acme", "release", "p256", &[]);
            ca.create_key("acme", "release-rsa", "rsa3072", &[]);
            ca.create_key("globex", "tool", "p256", &[]);
        });
        let token = sign
            .ca
            .token(&["--publisher", "acme", "--scopes", "sign", "--name", "ci"]);
        let config = sign.path("hallmark-pkcs11.toml");
        std::fs::write(
            &config,
            format!(
                "server = \"{}\"\nca = \"{}\"\ntoken_env = \"HALLMARK_TOKEN\"\nkeys = [\"release\", \"release-rsa\", \"tool\", \"nonexistent\"]\npoll_secs = 1\n\n[metadata]\nteam = \"release-eng\"\n",
                sign.api(),
                sign.root
            ),
        )
        .expect("config");
        Env {
            module: module_path(),
            config,
            token,
            sign,
        }
    }

    /// A tool run with the module's environment.
    fn tool(&self, name: &str, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(tool(name));
        c.args(args)
            .current_dir(self.sign.ca.dir.path())
            .env("HALLMARK_PKCS11_CONFIG", &self.config)
            .env("HALLMARK_TOKEN", &self.token)
            .env(
                "HALLMARK_PKCS11_LOG",
                std::env::var("HALLMARK_PKCS11_LOG").unwrap_or(self.sign.path("pkcs11.log")),
            )
            .env("HALLMARK_META_BUILD", "1234")
            .env("XDG_CONFIG_HOME", self.sign.path("xdg"));
        c
    }

    fn p11(&self, args: &[&str]) -> (bool, String) {
        let mut a = vec!["--module", self.module.as_str()];
        a.extend_from_slice(args);
        let out = run(&mut self.tool("pkcs11-tool", &a));
        (out.status.success(), text_of(&out))
    }

    /// `osslsigncode sign` through libp11's engine with key `release` (its certificate and the
    /// code-signing CA as `-certs`), EXTRA before `-in EXE -out OUT`.
    fn osslsigncode_sign(&self, exe: &str, out: &str, extra: &[&str]) -> std::process::Command {
        let (cert, _) = self.sign.cert_and_public_key("release");
        let chain = self.sign.path("chain.pem");
        let mut pems = std::fs::read_to_string(&cert).expect("cert");
        pems.push_str(&self.sign.ca.hm(&["ca", "cert", "code-signing-ca"]));
        std::fs::write(&chain, pems).expect("chain");
        let mut args = vec![
            "sign",
            "-pkcs11engine",
            ENGINE,
            "-pkcs11module",
            &self.module,
            "-key",
            "pkcs11:object=release;type=private",
            "-certs",
            &chain,
            "-h",
            "sha256",
        ];
        args.extend_from_slice(extra);
        args.extend(["-in", exe, "-out", out]);
        self.tool("osslsigncode", &args)
    }

    fn openssl_conf(&self) -> String {
        let conf = self.sign.path("openssl-pkcs11.cnf");
        std::fs::write(
            &conf,
            format!(
                "openssl_conf = openssl_init\n[openssl_init]\nengines = engine_section\n[engine_section]\npkcs11 = pkcs11_section\n[pkcs11_section]\nengine_id = pkcs11\ndynamic_path = {ENGINE}\nMODULE_PATH = {}\ninit = 0\n",
                self.module
            ),
        )
        .expect("openssl conf");
        conf
    }
}

/// `osslsigncode verify` against hallmark's root, with the CAs' CRLs.
fn osslsigncode_verify(env: &Env, signed: &str) -> (bool, String) {
    let crls = env.sign.path("crls.pem");
    let mut text = String::new();
    for ca in ["root", "code-signing-ca", "timestamping-ca"] {
        let one = env.sign.path(&format!("{ca}.crl.pem"));
        env.sign.ca.hm(&["crl", "--ca", ca, "--out", &one, "--pem"]);
        text.push_str(&std::fs::read_to_string(&one).expect("crl"));
    }
    std::fs::write(&crls, text).expect("crls");
    tool_run(
        env.sign.ca.dir.path(),
        "osslsigncode",
        &[
            "verify",
            "-in",
            signed,
            "-CAfile",
            &env.sign.root,
            "-CRLfile",
            &crls,
            "-TSA-CAfile",
            &env.sign.root,
            "-TSA-CRLfile",
            &crls,
            "-ignore-cdp",
        ],
    )
}

fn file(env: &Env, name: &str, data: &[u8]) -> String {
    let p = env.sign.path(name);
    std::fs::write(&p, data).expect("write");
    p
}

#[test]
fn pkcs11_tool_lists_and_signs_and_openssl_verifies() {
    let env = Env::start();
    let (ok, out) = env.p11(&["--list-slots"]);
    assert!(ok && out.contains("hallmark"), "{out}");
    let (ok, out) = env.p11(&["--list-mechanisms"]);
    assert!(ok, "{out}");
    for m in ["ECDSA-SHA256", "RSA-PKCS-PSS", "SHA256-RSA-PKCS", "ECDSA"] {
        assert!(out.contains(m), "{m} missing:\n{out}");
    }
    let (ok, out) = env.p11(&["--list-objects"]);
    assert!(ok, "{out}");
    // acme's keys with their certificates; globex's key and a missing one are not there.
    for want in [
        "Private Key Object; EC",
        "Private Key Object; RSA",
        "Certificate Object",
        "label:      release",
        "label:      release-rsa",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
    assert!(!out.contains("label:      tool"), "{out}");
    assert!(!out.contains("nonexistent"), "{out}");

    // The certificates and public keys, as files for openssl.
    let (cert, pubkey) = env.sign.cert_and_public_key("release");
    let (_, rsa_pub) = env.sign.cert_and_public_key("release-rsa");
    assert!(std::path::Path::new(&cert).exists());
    let data = file(&env, "data.bin", &b"artifact bytes\n".repeat(1000));
    let digest = file(
        &env,
        "digest.bin",
        aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &b"artifact bytes\n".repeat(1000),
        )
        .as_ref(),
    );
    let before = env.sign.recorded();

    // ECDSA over the caller's digest, and ECDSA-SHA256 hashing here.
    for (mech, input) in [("ECDSA", &digest), ("ECDSA-SHA256", &data)] {
        let sig = env.sign.path(&format!("{mech}.sig"));
        let (ok, out) = env.p11(&[
            "--sign",
            "--mechanism",
            mech,
            "--id",
            &hex::encode("release"),
            "--signature-format",
            "openssl",
            "-i",
            input,
            "-o",
            &sig,
        ]);
        assert!(ok, "{mech}: {out}");
        let (ok, out) = tool_run(
            env.sign.ca.dir.path(),
            "openssl",
            &[
                "pkeyutl", "-verify", "-pubin", "-inkey", &pubkey, "-in", &digest, "-sigfile", &sig,
            ],
        );
        assert!(
            ok && out.contains("Signature Verified Successfully"),
            "{mech}: {out}"
        );
    }
    // RSA-PSS (SHA-256, MGF1-SHA256, 32-byte salt) and PKCS#1 v1.5, hashing here.
    for (mech, opts) in [
        (
            "SHA256-RSA-PKCS-PSS",
            vec![
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:32",
            ],
        ),
        ("SHA256-RSA-PKCS", vec![]),
    ] {
        let sig = env.sign.path(&format!("{mech}.sig"));
        let (ok, out) = env.p11(&[
            "--sign",
            "--mechanism",
            mech,
            "--id",
            &hex::encode("release-rsa"),
            "-i",
            &data,
            "-o",
            &sig,
        ]);
        assert!(ok, "{mech}: {out}");
        let mut args = vec!["dgst", "-sha256", "-verify", &rsa_pub, "-signature", &sig];
        args.extend(opts.iter().copied());
        args.push(&data);
        let (ok, out) = tool_run(env.sign.ca.dir.path(), "openssl", &args);
        assert!(ok && out.contains("Verified OK"), "{mech}: {out}");
    }
    assert_eq!(env.sign.recorded(), before + 4);

    // Each signature records the tool that asked.
    let listed = env.sign.ca.hm(&["signature", "list", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_str(&listed).expect("json");
    let first = &v["items"][0];
    let m = &first["metadata"];
    assert_eq!(m["via"], "pkcs11", "{v}");
    assert_eq!(m["tool"], "pkcs11-tool", "{v}");
    assert_eq!(m["team"], "release-eng", "{v}");
    assert_eq!(m["build"], "1234", "{v}");
    assert!(m["host"].is_string(), "{v}");
    assert_eq!(first["requester"], "ci", "{v}");

    // Refusals: SHA-1 (a 20-byte digest), another publisher's key, a wrong token.
    let sha1 = file(&env, "sha1.bin", &[7u8; 20]);
    let (ok, out) = env.p11(&[
        "--sign",
        "--mechanism",
        "ECDSA",
        "--id",
        &hex::encode("release"),
        "-i",
        &sha1,
        "-o",
        &env.sign.path("x.sig"),
    ]);
    assert!(!ok, "{out}");
    let (ok, out) = env.p11(&[
        "--sign",
        "--mechanism",
        "ECDSA",
        "--id",
        &hex::encode("tool"),
        "-i",
        &digest,
        "-o",
        &env.sign.path("y.sig"),
    ]);
    assert!(!ok, "{out}");
    // CKM_RSA_PKCS over something that is not a SHA-2 DigestInfo: refused before the server.
    let raw = file(&env, "raw.bin", &[9u8; 51]);
    let (ok, out) = env.p11(&[
        "--sign",
        "--mechanism",
        "RSA-PKCS",
        "--id",
        &hex::encode("release-rsa"),
        "-i",
        &raw,
        "-o",
        &env.sign.path("z.sig"),
    ]);
    assert!(!ok && out.contains("CKR_DATA_INVALID"), "{out}");
    let out = run(env
        .tool("pkcs11-tool", &["--module", &env.module, "--list-objects"])
        .env(
            "HALLMARK_TOKEN",
            "hmk_000000000000_0000000000000000000000000000000000000000000000000000000000000000",
        ));
    assert!(
        !text_of(&out).contains("Private Key Object"),
        "{}",
        text_of(&out)
    );
    assert_eq!(env.sign.recorded(), before + 4, "nothing more signed");
}

#[test]
fn openssl_and_osslsigncode_sign_through_the_engine() {
    let env = Env::start();
    let conf = env.openssl_conf();
    let (_, pubkey) = env.sign.cert_and_public_key("release");
    let digest = file(&env, "digest.bin", &[0x42u8; 32]);
    let sig = env.sign.path("engine.sig");
    let out = run(env
        .tool(
            "openssl",
            &[
                "pkeyutl",
                "-engine",
                "pkcs11",
                "-keyform",
                "engine",
                "-inkey",
                "pkcs11:object=release;type=private",
                "-sign",
                "-in",
                &digest,
                "-out",
                &sig,
            ],
        )
        .env("OPENSSL_CONF", &conf));
    assert!(
        out.status.success(),
        "openssl pkeyutl -engine pkcs11: {}",
        text_of(&out)
    );
    let (ok, text) = tool_run(
        env.sign.ca.dir.path(),
        "openssl",
        &[
            "pkeyutl", "-verify", "-pubin", "-inkey", &pubkey, "-in", &digest, "-sigfile", &sig,
        ],
    );
    assert!(ok, "{text}");

    // osslsigncode through the same engine: a PE signed with the key that stays on the server.
    let exe = file(&env, "app.exe", &tiny_pe(true));
    let signed = env.sign.path("app-signed.exe");
    let tsa = format!("{}/tsa", env.sign.server.public);
    let out = run(&mut env.osslsigncode_sign(&exe, &signed, &["-ts", &tsa]));
    assert!(out.status.success(), "osslsigncode sign: {}", text_of(&out));
    let (ok, text) = osslsigncode_verify(&env, &signed);
    assert!(
        ok,
        "osslsigncode verify: {}",
        &text[text.len().saturating_sub(1500)..]
    );
    // The signature carries hallmark's RFC 3161 time-stamp (osslsigncode -ts).
    assert!(
        text.contains("Timestamp Server Signature verification: ok")
            || text.contains("Timestamp verified by"),
        "no time-stamp verified: {}",
        &text[text.len().saturating_sub(1500)..]
    );
    let listed = env.sign.ca.hm(&["signature", "list", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_str(&listed).expect("json");
    assert_eq!(v["items"][0]["metadata"]["tool"], "osslsigncode", "{v}");
}

/// Through the `cryptoki` crate against the built module: 16 threads, a session each, sign at
/// once (every signature recorded, each verifying); C_Finalize, then C_Initialize again works.
#[test]
fn sixteen_threads_sign_at_once_and_the_module_reinitializes() {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::{Attribute, AttributeType, ObjectClass};
    let env = Env::start();
    std::env::set_var("HALLMARK_PKCS11_CONFIG", &env.config);
    std::env::set_var("HALLMARK_TOKEN", &env.token);
    std::env::set_var("XDG_CONFIG_HOME", env.sign.path("xdg"));
    let before = env.sign.recorded();
    let (_, pubkey) = env.sign.cert_and_public_key("release");
    for round in 0..2 {
        let ctx = Pkcs11::new(&env.module).expect("load the module");
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .expect("C_Initialize");
        let slot = ctx.get_slots_with_token().expect("slots")[0];
        if round == 0 {
            // The private key signs, is sensitive and never extractable; its value is not read.
            let session = ctx.open_ro_session(slot).expect("session");
            let key = session
                .find_objects(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::Label(b"release".to_vec()),
                ])
                .expect("find")[0];
            let attrs = session
                .get_attributes(
                    key,
                    &[
                        AttributeType::Value,
                        AttributeType::Sign,
                        AttributeType::Sensitive,
                        AttributeType::Extractable,
                        AttributeType::NeverExtractable,
                    ],
                )
                .expect("attributes");
            assert!(
                !attrs.iter().any(|a| matches!(a, Attribute::Value(_))),
                "{attrs:?}"
            );
            for (ok, what) in [
                (
                    attrs.iter().any(|a| matches!(a, Attribute::Sign(true))),
                    "CKA_SIGN",
                ),
                (
                    attrs
                        .iter()
                        .any(|a| matches!(a, Attribute::Sensitive(true))),
                    "CKA_SENSITIVE",
                ),
                (
                    attrs
                        .iter()
                        .any(|a| matches!(a, Attribute::Extractable(false))),
                    "CKA_EXTRACTABLE false",
                ),
                (
                    attrs
                        .iter()
                        .any(|a| matches!(a, Attribute::NeverExtractable(true))),
                    "CKA_NEVER_EXTRACTABLE",
                ),
            ] {
                assert!(ok, "{what}: {attrs:?}");
            }
        }
        let sigs: Vec<(Vec<u8>, Vec<u8>)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..16u8)
                .map(|t| {
                    let ctx = ctx.clone();
                    s.spawn(move || {
                        let session = ctx.open_ro_session(slot).expect("session");
                        let key = session
                            .find_objects(&[
                                Attribute::Class(ObjectClass::PRIVATE_KEY),
                                Attribute::Label(b"release".to_vec()),
                            ])
                            .expect("find")[0];
                        let digest = vec![t.wrapping_add(round); 32];
                        let sig = session
                            .sign(&Mechanism::Ecdsa, key, &digest)
                            .expect("C_Sign");
                        (digest, sig)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("thread"))
                .collect()
        });
        assert_eq!(sigs.len(), 16);
        // One of them, checked with openssl (r || s as DER).
        let (digest, sig) = &sigs[0];
        assert_eq!(sig.len(), 64);
        let int = |b: &[u8]| {
            let b: Vec<u8> = b.iter().copied().skip_while(|x| *x == 0).collect();
            let mut v = if b.first().is_some_and(|x| x & 0x80 != 0) {
                vec![0]
            } else {
                vec![]
            };
            v.extend(b);
            let mut out = vec![0x02, v.len() as u8];
            out.extend(v);
            out
        };
        let mut body = int(&sig[..32]);
        body.extend(int(&sig[32..]));
        let mut der = vec![0x30, body.len() as u8];
        der.extend(body);
        let d = file(&env, "t.digest", digest);
        let s = file(&env, "t.sig", &der);
        let (ok, text) = tool_run(
            env.sign.ca.dir.path(),
            "openssl",
            &[
                "pkeyutl", "-verify", "-pubin", "-inkey", &pubkey, "-in", &d, "-sigfile", &s,
            ],
        );
        assert!(ok, "{text}");
        ctx.finalize().expect("C_Finalize");
    }
    assert_eq!(env.sign.recorded(), before + 32);
}

/// jarsigner through SunPKCS11 (the JDK's PKCS#11 provider) and sbsign through libp11's
/// engine sign with the keys on the server; `jarsigner -verify -strict` and `sbverify` accept
/// the results.
#[test]
fn jarsigner_and_sbsign_sign_through_the_module() {
    let env = Env::start();
    let dir = env.sign.ca.dir.path();
    // A jar, signed with each key through SunPKCS11.
    let src = env.sign.path("jar-src");
    std::fs::create_dir_all(format!("{src}/com/acme")).expect("mkdir");
    std::fs::write(
        format!("{src}/com/acme/App.class"),
        [0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 61],
    )
    .expect("class");
    let jar = env.sign.path("app.jar");
    let (ok, text) = tool_run(dir, "jar", &["--create", "--file", &jar, "-C", &src, "."]);
    assert!(ok, "jar: {text}");
    let p11cfg = env.sign.path("sunpkcs11.cfg");
    std::fs::write(
        &p11cfg,
        format!("name = hallmark\nlibrary = {}\nslot = 1\n", env.module),
    )
    .expect("sunpkcs11 config");
    let trust = env.sign.path("trust.p12");
    for (alias, file) in [
        ("hallmark-root", env.sign.root.clone()),
        (
            "hallmark-code-signing-ca",
            env.sign.ca.ca_pem("code-signing-ca").display().to_string(),
        ),
    ] {
        let (ok, text) = tool_run(
            dir,
            "keytool",
            &[
                "-importcert",
                "-noprompt",
                "-alias",
                alias,
                "-file",
                &file,
                "-keystore",
                &trust,
                "-storetype",
                "PKCS12",
                "-storepass",
                "changeit",
            ],
        );
        assert!(ok, "keytool: {text}");
    }
    for key in ["release", "release-rsa"] {
        let signed = env.sign.path(&format!("app-{key}.jar"));
        let out = run(&mut env.tool(
            "jarsigner",
            &[
                "-keystore",
                "NONE",
                "-storetype",
                "PKCS11",
                "-providerClass",
                "sun.security.pkcs11.SunPKCS11",
                "-providerArg",
                &p11cfg,
                "-storepass",
                "unused",
                "-signedjar",
                &signed,
                &jar,
                key,
            ],
        ));
        let text = text_of(&out);
        assert!(out.status.success(), "jarsigner ({key}): {text}");
        // The token shows hallmark's root (the settings' `ca`) as trusted: jarsigner checks
        // the chain while signing instead of warning that it cannot.
        assert!(
            !text.contains("certificate chain is invalid"),
            "jarsigner ({key}): {text}"
        );
        let (ok, text) = tool_run(
            dir,
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
                &signed,
            ],
        );
        assert!(
            ok && text.contains("jar verified."),
            "jarsigner -verify ({key}): {text}"
        );
    }
    let listed = env.sign.ca.hm(&["signature", "list", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_str(&listed).expect("json");
    assert_eq!(v["items"][0]["metadata"]["tool"], "jarsigner", "{v}");

    // sbsign: an EFI (PE32+) image signed with the RSA key through the engine.
    let conf = env.openssl_conf();
    let (cert, _) = env.sign.cert_and_public_key("release-rsa");
    let efi = file(&env, "app.efi", &tiny_pe(true));
    let signed = env.sign.path("app-signed.efi");
    let out = run(env
        .tool(
            "sbsign",
            &[
                "--engine",
                "pkcs11",
                "--key",
                "pkcs11:object=release-rsa;type=private",
                "--cert",
                &cert,
                "--output",
                &signed,
                &efi,
            ],
        )
        .env("OPENSSL_CONF", &conf));
    assert!(out.status.success(), "sbsign: {}", text_of(&out));
    let (ok, text) = tool_run(dir, "sbverify", &["--cert", &cert, &signed]);
    assert!(
        ok && text.contains("Signature verification OK"),
        "sbverify: {text}"
    );
}

/// A key needing 2-of-3 approvals: `osslsigncode sign` waits in C_Sign, two approvers approve,
/// the file is signed and verifies. A denial makes the tool fail (CKR_FUNCTION_REJECTED) and
/// write nothing.
#[test]
fn a_tool_waits_for_approvals_and_a_denial_fails_it() {
    let env = Env::start();
    env.sign.ca.hm(&[
        "key",
        "policy",
        "release",
        "--approvals",
        "2",
        "--approvers",
        "security-lead,qa-lead,cto",
    ]);
    let tok = |name: &str| {
        env.sign
            .ca
            .token(&["--publisher", "acme", "--scopes", "approve", "--name", name])
    };
    let (sl, qa, cto) = (tok("security-lead"), tok("qa-lead"), tok("cto"));
    let exe = file(&env, "app.exe", &tiny_pe(true));
    let osslsigncode = |out: &str| {
        env.osslsigncode_sign(&exe, out, &[])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("osslsigncode")
    };

    let signed = env.sign.path("approved.exe");
    let child = osslsigncode(&signed);
    let id = env.sign.pending_request();
    for t in [&sl, &qa] {
        let out = env.sign.approve(id, t);
        assert!(out.status.success(), "approve: {}", text_of(&out));
    }
    let out = child.wait_with_output().expect("osslsigncode");
    assert!(
        out.status.success(),
        "osslsigncode after approvals: {}",
        text_of(&out)
    );
    let (ok, text) = osslsigncode_verify(&env, &signed);
    assert!(
        ok,
        "osslsigncode verify: {}",
        &text[text.len().saturating_sub(800)..]
    );
    let rec = env
        .sign
        .store()
        .get_signature(id)
        .expect("read")
        .expect("signed");
    assert_eq!(rec.approvers.as_deref(), Some("security-lead,qa-lead"));

    // Denied: the tool fails and writes no file.
    let denied = env.sign.path("denied.exe");
    let child = osslsigncode(&denied);
    let start = std::time::Instant::now();
    let id2 = loop {
        let ids = env
            .sign
            .store()
            .signature_request_ids(hallmark::store::SignatureRequestStatus::Pending)
            .expect("ids");
        if let Some(i) = ids.into_iter().find(|i| *i != id) {
            break i;
        }
        assert!(start.elapsed().as_secs() < 30, "no second request");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let out = run(env
        .sign
        .ca
        .cmd(&[
            "deny",
            "--signature",
            &id2.to_string(),
            "--server",
            env.sign.api(),
            "--token-env",
            "DENY_TOKEN",
            "--ca",
            &env.sign.root,
        ])
        .env("DENY_TOKEN", &cto));
    assert!(out.status.success(), "deny: {}", text_of(&out));
    let out = child.wait_with_output().expect("osslsigncode");
    assert!(!out.status.success(), "osslsigncode signed after a denial");
    assert!(!std::path::Path::new(&denied).exists());
}

/// Refusals sign and record nothing: a revoked token, a revoked key certificate; a server that
/// is down answers CKR_DEVICE_ERROR, and the module works again once it is back.
#[test]
fn revoked_credentials_and_a_server_outage() {
    let mut env = Env::start();
    let digest = file(&env, "digest.bin", &[0x11u8; 32]);
    let id = hex::encode("release");
    let sign = |env: &Env, key: &str| {
        env.p11(&[
            "--sign",
            "--mechanism",
            "ECDSA",
            "--id",
            &hex::encode(key),
            "-i",
            &digest,
            "-o",
            &env.sign.path("out.sig"),
        ])
    };
    let (ok, out) = sign(&env, "release");
    assert!(ok, "{out}");
    let before = env.sign.recorded();

    // The server goes away: the device's error. Back on the same port: signing works again.
    let api = env.sign.api().to_string();
    let public = env.sign.server.public.clone();
    env.sign.server.kill();
    let (ok, out) = sign(&env, "release");
    assert!(!ok && out.contains("CKR_DEVICE_ERROR"), "{out}");
    let port = |u: &str| {
        u.rsplit(':')
            .next()
            .unwrap_or("")
            .trim_end_matches('/')
            .to_string()
    };
    let mut args = vec!["serve".to_string()];
    args.extend([
        "--public-listen".into(),
        format!("127.0.0.1:{}", port(&public)),
        "--api-listen".into(),
        format!("127.0.0.1:{}", port(&api)),
    ]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = env
        .sign
        .ca
        .cmd(&argv)
        .env("HALLMARK_LOG_LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("serve again");
    let start = std::time::Instant::now();
    let (ok, out) = loop {
        let r = sign(&env, "release");
        if r.0 || start.elapsed().as_secs() > 30 {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    assert!(ok, "after the restart: {out}");
    let before = before + 1;

    // The key's certificate revoked: the key may not sign.
    let (cert, _) = env.sign.cert_and_public_key("release");
    let serial = openssl(
        env.sign.ca.dir.path(),
        &["x509", "-in", &cert, "-noout", "-serial"],
    );
    let serial = serial.trim().trim_start_matches("serial=").to_string();
    env.sign
        .ca
        .hm(&["revoke", &serial, "--reason", "keyCompromise"]);
    let (ok, out) = sign(&env, "release");
    assert!(
        !ok && out.contains("CKR_KEY_FUNCTION_NOT_PERMITTED"),
        "{out}"
    );

    // The token revoked: nothing is listed or signed.
    let token_id = env.token.split('_').nth(1).expect("token id").to_string();
    env.sign.ca.hm(&["token", "revoke", &token_id]);
    let (ok, out) = sign(&env, "release-rsa");
    assert!(!ok, "{out}");
    assert_eq!(
        env.sign.recorded(),
        before,
        "nothing signed after the refusals"
    );
    assert!(!id.is_empty());
    let _ = server.kill();
    let _ = server.wait();
    env.sign.server.kill();
}

/// Without a credential in its config, the PIN carries the token (as CloudHSM's `user:password`
/// does): nothing private is listed before login, a wrong PIN is CKR_PIN_INCORRECT, the token
/// as PIN logs in and signs.
#[test]
fn the_pin_carries_the_token_when_the_config_names_none() {
    let env = Env::start();
    let text = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        text.replace("token_env = \"HALLMARK_TOKEN\"\n", ""),
    )
    .expect("config");
    let (ok, out) = env.p11(&["--list-token-slots"]);
    assert!(ok && out.contains("login required"), "{out}");
    let (ok, out) = env.p11(&["--list-objects"]);
    assert!(ok && !out.contains("Private Key Object"), "{out}");
    let (ok, out) = env.p11(&["--login", "--pin", "hmk_wrong", "--list-objects"]);
    assert!(!ok && out.contains("CKR_PIN_INCORRECT"), "{out}");
    let digest = file(&env, "digest.bin", &[0x33u8; 32]);
    let (ok, out) = env.p11(&[
        "--login",
        "--pin",
        &env.token,
        "--sign",
        "--mechanism",
        "ECDSA",
        "--id",
        &hex::encode("release"),
        "-i",
        &digest,
        "-o",
        &env.sign.path("pin.sig"),
    ]);
    assert!(ok, "{out}");
    assert_eq!(env.sign.recorded(), 1);
}

/// The minimal configuration (server, ca, token_env; no `keys`) shows every key the
/// credential may sign with; a configuration the module cannot use says why on standard
/// error, in one line without the credential, since a PKCS#11 caller has no other channel.
#[test]
fn without_keys_every_usable_key_shows_and_a_bad_config_says_why() {
    let env = Env::start();
    std::fs::write(
        &env.config,
        format!(
            "server = \"{}\"\nca = \"{}\"\ntoken_env = \"HALLMARK_TOKEN\"\n",
            env.sign.api(),
            env.sign.root
        ),
    )
    .expect("config");
    let (ok, out) = env.p11(&["--list-objects"]);
    assert!(ok, "{out}");
    for label in ["release", "release-rsa"] {
        assert!(out.contains(&format!("label:      {label}\n")), "{out}");
    }
    assert!(
        !out.contains("label:      tool"),
        "globex's key showed: {out}"
    );
    assert!(out.contains("Private Key Object"), "{out}");
    // Signing with a key found that way.
    let digest = file(&env, "digest.bin", &[0x44u8; 32]);
    let (ok, out) = env.p11(&[
        "--sign",
        "--mechanism",
        "ECDSA",
        "--label",
        "release",
        "-i",
        &digest,
        "-o",
        &env.sign.path("nokeys.sig"),
    ]);
    assert!(ok, "{out}");
    assert_eq!(env.sign.recorded(), 1);

    // No server anywhere (no client profile either), and a secret pasted into a setting the
    // module does not know.
    for (config, why) in [
        ("token_env = \"HALLMARK_TOKEN\"\n", "no server"),
        (
            "server = \"https://127.0.0.1:1\"\ntoken = \"hmk_pasted_secret\"\n",
            "unknown field `token`",
        ),
    ] {
        std::fs::write(&env.config, config).expect("config");
        let mut c = env.tool("pkcs11-tool", &["--module", &env.module, "--list-slots"]);
        let out = run(c.env_remove("HALLMARK_PKCS11_LOG"));
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err
            .lines()
            .find(|l| l.starts_with("hallmark PKCS#11 module: "))
            .unwrap_or_else(|| panic!("no line from the module: {err}"));
        assert!(line.contains(why), "{line}");
        assert!(
            !err.contains("hmk_pasted_secret") && !err.contains(&env.token),
            "{err}"
        );
    }
}
