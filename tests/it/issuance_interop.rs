//! End-to-end issuance through the `hallmark` CLI, checked by tools we did not write: openssl
//! verify, pkilint, pkcs11-tool. Every scenario runs once per key store (soft and SoftHSM2).

use crate::common::*;
use x509_parser::prelude::*;

const ACME_SUBJ: &str = "/C=US/ST=California/L=San Jose/O=Acme Corp/CN=Acme Corp";

/// Issues a CSR and splits the result into leaf.pem and chain files; returns the leaf path name.
fn issue(
    ca: &TestCa,
    profile: &str,
    csr: &std::path::Path,
    extra: &[&str],
    tag: &str,
) -> (String, String) {
    let out = ca.path(&format!("{tag}.bundle.pem"));
    let mut args = vec![
        "issue",
        "--profile",
        profile,
        "--publisher",
        "acme",
        "--csr",
    ];
    let csr_s = csr.display().to_string();
    let out_s = out.display().to_string();
    args.push(&csr_s);
    args.extend(["--out", &out_s]);
    args.extend_from_slice(extra);
    ca.hm(&args);
    let bundle = std::fs::read_to_string(&out).expect("bundle");
    let blocks = pem_blocks(&bundle);
    assert_eq!(
        blocks.len(),
        2,
        "certificate then its issuing CA, root excluded"
    );
    let leaf = format!("{tag}.leaf.pem");
    let ica = format!("{tag}.ica.pem");
    std::fs::write(ca.path(&leaf), &blocks[0]).expect("leaf");
    std::fs::write(ca.path(&ica), &blocks[1]).expect("ica");
    (leaf, ica)
}

fn der_of(path: &std::path::Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).expect("pem");
    ::pem::parse(text).expect("pem parse").into_contents()
}

fn verify(ca: &TestCa, leaf: &str, ica: &str) {
    let root = ca.ca_pem("root");
    let out = openssl(
        ca.dir.path(),
        &[
            "verify",
            "-CAfile",
            &root.display().to_string(),
            "-untrusted",
            ica,
            "-purpose",
            "any",
            leaf,
        ],
    );
    assert!(out.contains(": OK"), "openssl verify: {out}");
}

fn code_signing_passes_verifiers(keys: Keys) {
    let ca = TestCa::new(keys);
    ca.add_acme();
    let csr = make_csr(
        ca.dir.path(),
        "cs",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        ACME_SUBJ,
        &[],
    );
    let (leaf, ica) = issue(&ca, "code-signing", &csr, &[], "cs");
    verify(&ca, &leaf, &ica);

    let der = der_of(&ca.path(&leaf));
    let (_, cert) = X509Certificate::from_der(&der).expect("parse leaf");
    let eku = cert
        .extended_key_usage()
        .expect("eku")
        .expect("eku present")
        .value;
    assert!(eku.code_signing, "EKU codeSigning");
    assert!(
        !eku.any
            && !eku.server_auth
            && !eku.client_auth
            && !eku.email_protection
            && !eku.time_stamping
            && !eku.ocsp_signing
            && eku.other.is_empty(),
        "EKU is exactly codeSigning: {eku:?}"
    );
    assert!(cert.raw_serial().len() >= 8 && cert.raw_serial()[0] & 0x80 == 0);
    let lifetime = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert!(lifetime <= 460 * 86_400);
    assert_eq!(
        cert.subject().to_string(),
        "C=US, ST=California, L=San Jose, O=Acme Corp, CN=Acme Corp"
    );

    let root = ca.ca_pem("root");
    assert_pkilint_clean(ca.dir.path(), &leaf);
    assert_pkilint_clean(ca.dir.path(), &ica);
    assert_pkilint_clean(ca.dir.path(), &root.display().to_string());
    for (issuer, subject) in [
        (root.display().to_string(), ica.clone()),
        (ica.clone(), leaf.clone()),
    ] {
        let (code, text) = pkilint(
            ca.dir.path(),
            "lint_pkix_signer_signee_cert_chain",
            &["lint", &issuer, &subject],
        );
        assert_eq!(code, 0, "chain lint {issuer} -> {subject}:\n{text}");
    }

    // The record exists and matches what was returned.
    let serial = hex::encode(cert.raw_serial());
    let shown = ca.hm(&["cert", "show", &serial, "--pem"]);
    assert_eq!(::pem::parse(shown).expect("pem").contents(), der.as_slice());
    assert!(ca
        .hm(&["cert", "list", "--publisher", "acme"])
        .contains(&serial));
}

fn every_profile_passes_pkilint(keys: Keys) {
    let ca = TestCa::new(keys);
    ca.add_acme();
    let dir = ca.dir.path();
    let p256 = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
    let cases: Vec<(&str, std::path::PathBuf, Vec<&str>)> = vec![
        (
            "code-signing",
            make_csr(dir, "p1", &p256, ACME_SUBJ, &[]),
            vec![],
        ),
        (
            "firmware-signing",
            make_csr(dir, "p2", &p256, "/O=Acme Corp/CN=Acme Corp", &[]),
            vec![],
        ),
        (
            "timestamping",
            make_csr(dir, "p3", &p256, "/CN=Acme Corp", &[]),
            vec![],
        ),
        (
            "iot-device",
            make_csr(dir, "p4", &p256, "/serialNumber=ACME-L3-00000001", &[]),
            vec![],
        ),
        (
            "station",
            make_csr(dir, "p5", &p256, "/CN=line-3", &[]),
            vec!["--name", "line-3"],
        ),
        (
            "tls-server",
            make_csr(
                dir,
                "p6",
                &p256,
                "/CN=api.acme.internal",
                &[
                    "-addext",
                    "subjectAltName=DNS:api.acme.internal,IP:127.0.0.1",
                ],
            ),
            vec!["--name", "api.acme.internal"],
        ),
        (
            "matter-dac",
            make_csr(dir, "p7", &p256, "/serialNumber=ACME-DAC-0001", &[]),
            vec![],
        ),
        (
            "package-signing",
            make_csr(dir, "p8", &["-algorithm", "ED25519"], ACME_SUBJ, &[]),
            vec![],
        ),
    ];
    // The Matter-style DAC profile is issued by a product attestation intermediate (pathlen 0).
    ca.hm(&[
        "ca",
        "create-issuing",
        "matter-pai",
        "--purpose",
        "devices",
        "--matter-vid",
        "FFF1",
    ]);
    let shipped: Vec<String> =
        std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ca-profiles"))
            .expect("ca-profiles")
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".toml"))
                    .map(String::from)
            })
            .collect();
    for s in &shipped {
        assert!(
            cases.iter().any(|(p, ..)| p == s),
            "profile {s} has no pkilint case here"
        );
    }
    for (profile, csr, extra) in &cases {
        let (leaf, ica) = issue(&ca, profile, csr, extra, profile);
        verify(&ca, &leaf, &ica);
        assert_pkilint_clean(dir, &leaf);
        assert_pkilint_clean(dir, &ica);
        let (code, text) = pkilint(
            dir,
            "lint_pkix_signer_signee_cert_chain",
            &["lint", &ica, &leaf],
        );
        assert_eq!(code, 0, "chain lint for {profile}:\n{text}");
    }
    // Device identity: notAfter 99991231235959Z as GeneralizedTime, serial in the subject, P-256.
    let der = der_of(&ca.path("iot-device.leaf.pem"));
    let (_, cert) = X509Certificate::from_der(&der).expect("parse");
    assert_eq!(cert.validity().not_after.to_datetime().year(), 9999);
    assert!(cert
        .subject()
        .to_string()
        .contains("serialNumber=ACME-L3-00000001"));
    assert!(
        cert.tbs_certificate
            .extensions()
            .iter()
            .all(|e| e.oid.to_id_string() != "2.5.29.31"),
        "no CRL DP on device certs"
    );
    // Matter DAC: vendor and product ids in the subject; the PAI carries the vendor id.
    let der = der_of(&ca.path("matter-dac.leaf.pem"));
    let (_, cert) = X509Certificate::from_der(&der).expect("parse");
    let subject = cert.subject().to_string();
    assert!(
        subject.contains("OID(1.3.6.1.4.1.37244.2.1)=FFF1")
            && subject.contains("OID(1.3.6.1.4.1.37244.2.2)=8000"),
        "{subject}"
    );
    let pai = der_of(&ca.path("matter-dac.ica.pem"));
    let (_, pai) = X509Certificate::from_der(&pai).expect("parse");
    assert!(pai
        .subject()
        .to_string()
        .contains("OID(1.3.6.1.4.1.37244.2.1)=FFF1"));
    assert_eq!(
        pai.basic_constraints()
            .expect("bc")
            .expect("present")
            .value
            .path_len_constraint,
        Some(0)
    );
    // Timestamping: EKU timeStamping, critical.
    let der = der_of(&ca.path("timestamping.leaf.pem"));
    let (_, cert) = X509Certificate::from_der(&der).expect("parse");
    let eku = cert.extended_key_usage().expect("eku").expect("present");
    assert!(eku.critical && eku.value.time_stamping);
}

fn accepts_every_pop_scheme(keys: Keys) {
    let ca = TestCa::new(keys);
    ca.add_acme();
    let dir = ca.dir.path();
    // A P-384 key whose CSR is signed with SHA-256 (rcgen issue #448's case).
    let p384 = make_csr(
        dir,
        "k384",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        ACME_SUBJ,
        &["-sha256"],
    );
    // RSA-3072 with PKCS#1 v1.5 and with PSS.
    let rsa = make_csr(
        dir,
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
        ACME_SUBJ,
        &[],
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "rsa.key",
            "-subj",
            ACME_SUBJ,
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:digest",
            "-out",
            "pss.csr",
        ],
    );
    let p521 = make_csr(
        dir,
        "k521",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
        ACME_SUBJ,
        &["-sha512"],
    );
    for (tag, csr) in [
        ("p384", p384),
        ("rsa", rsa),
        ("pss", dir.join("pss.csr")),
        ("p521", p521),
    ] {
        let (leaf, ica) = issue(&ca, "code-signing", &csr, &[], tag);
        verify(&ca, &leaf, &ica);
        assert_pkilint_clean(dir, &leaf);
    }
    let p384_leaf = der_of(&ca.path("p384.leaf.pem"));
    let (_, cert) = X509Certificate::from_der(&p384_leaf).expect("parse");
    assert_eq!(cert.public_key().parsed().expect("key").key_size(), 384);
    // Ed25519 proves possession but code-signing does not allow it: the refusal names the key.
    let ed = make_csr(dir, "ed", &["-algorithm", "ED25519"], ACME_SUBJ, &[]);
    let out = run(&mut ca.cmd(&[
        "issue",
        "--profile",
        "code-signing",
        "--publisher",
        "acme",
        "--csr",
        &ed.display().to_string(),
    ]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("Ed25519 keys are not allowed by profile 'code-signing'"));
}

fn key_create_issues_from_the_key_store(keys: Keys) {
    let ca = TestCa::new(keys);
    ca.add_acme();
    for alg in ["p256", "p384", "rsa3072", "rsa4096"] {
        let label = format!("release-{alg}");
        let out = ca.hm(&[
            "key",
            "create",
            "--publisher",
            "acme",
            "--label",
            &label,
            "--algorithm",
            alg,
        ]);
        assert!(out.contains("issued under code-signing"), "{out}");
        let cert = ca.hm(&["key", "show", &label]);
        let leaf = format!("{label}.pem");
        std::fs::write(ca.path(&leaf), &cert).expect("write");
        let ica = ca.ca_pem("code-signing-ca");
        verify(&ca, &leaf, &ica.display().to_string());
        assert_pkilint_clean(ca.dir.path(), &leaf);
        let csr = ca.hm(&["key", "csr", &label]);
        assert!(csr.contains("BEGIN CERTIFICATE REQUEST"));
    }
    let out = run(&mut ca.cmd(&[
        "key",
        "create",
        "--publisher",
        "acme",
        "--label",
        "release-p256",
        "--algorithm",
        "p256",
    ]));
    assert!(
        !out.status.success(),
        "a second key with the same label is refused"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    // An external CA's certificate can be attached only to its own key.
    ca.hm(&[
        "key",
        "create",
        "--publisher",
        "acme",
        "--label",
        "ext",
        "--no-issue",
    ]);
    let wrong = ca.path("release-p256.pem").display().to_string();
    let out = run(&mut ca.cmd(&["key", "import-cert", "ext", &wrong]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("public keys differ"));

    if keys == Keys::SoftHsm {
        // Read the protection attributes back with OpenSC's pkcs11-tool, not our code.
        let mut c = std::process::Command::new(tool("pkcs11-tool"));
        c.args([
            "--module",
            SOFTHSM_MODULE,
            "--token-label",
            "hallmark-test",
            "--login",
            "--pin",
            "123456",
            "--list-objects",
            "--type",
            "privkey",
        ]);
        for (k, v) in ca.env() {
            c.env(k, v);
        }
        let listing = ok(&mut c);
        let blocks: Vec<&str> = listing.split("Private Key Object").skip(1).collect();
        assert!(
            blocks.len() >= 7 + 5,
            "CA keys and publisher keys are in the token:\n{listing}"
        );
        for b in blocks {
            assert!(
                b.contains("never extractable") && b.contains("always sensitive"),
                "key not protected:\n{b}"
            );
        }
    }
}

fn external_root_ceremony(keys: Keys) {
    let online = TestCa::new(keys);
    let offline = TestCa::new(Keys::Soft);
    let csr = online.path("ext.csr").display().to_string();
    online.hm(&[
        "ca",
        "create-issuing",
        "partner-ca",
        "--purpose",
        "code-signing",
        "--csr-out",
        &csr,
    ]);
    assert!(online.hm(&["ca", "list"]).contains("(no certificate)"));
    let cert = online.path("partner.pem").display().to_string();
    offline.hm(&[
        "ca",
        "sign-csr",
        "--csr",
        &csr,
        "--purpose",
        "code-signing",
        "--out",
        &cert,
    ]);
    // A certificate for another key is refused; the right one is imported.
    let wrong = offline.ca_pem("code-signing-ca").display().to_string();
    let out = run(&mut online.cmd(&["ca", "import", "partner-ca", &wrong]));
    assert!(!out.status.success());
    online.hm(&["ca", "import", "partner-ca", &cert]);
    let list = online.hm(&["ca", "list"]);
    assert!(list.contains("partner-ca-ocsp"), "{list}");
    let root = offline.ca_pem("root").display().to_string();
    let out = openssl(online.dir.path(), &["verify", "-CAfile", &root, &cert]);
    assert!(out.contains(": OK"));
    assert_pkilint_clean(online.dir.path(), &cert);
    online.hm(&["doctor"]);
}

per_key_store!(
    code_signing_passes_verifiers,
    every_profile_passes_pkilint,
    accepts_every_pop_scheme,
    key_create_issues_from_the_key_store,
    external_root_ceremony,
);
