//! The PKCS#11 key store against a real SoftHSM2 token in a temporary directory.
//!
//! SoftHSM2 must be installed (`apt-get install softhsm2`): without it these tests fail, they
//! never skip. The token is set up once per process (tests run on threads of one process, and the
//! module reads `SOFTHSM2_CONF` when it is first initialized).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use common::softhsm_conf;
use hallmark::keys::pkcs11::Pkcs11KeyStore;
use hallmark::keys::{
    subject_public_key_bits, KeyAlgorithm, KeyError, KeyProtection, KeyStore, SecretSource,
    SignatureScheme, Signer,
};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN: &str = "hallmark-test";
const PIN: &str = "1234";
const SO_PIN: &str = "5678";
const PIN_VAR: &str = "HALLMARK_TEST_PKCS11_PIN";
const WRONG_PIN_VAR: &str = "HALLMARK_TEST_PKCS11_WRONG_PIN";

struct Hsm {
    _dir: tempfile::TempDir,
}

/// Creates the token once per process and points SoftHSM at it.
fn hsm() -> &'static Hsm {
    static HSM: OnceLock<Hsm> = OnceLock::new();
    HSM.get_or_init(|| {
        assert!(
            Path::new(MODULE).exists(),
            "SoftHSM2 module {MODULE} is missing: install softhsm2 (apt-get install softhsm2)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = softhsm_conf(dir.path());
        // Before the module is loaded for the first time: SoftHSM reads it in C_Initialize.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        std::env::set_var(PIN_VAR, PIN);
        std::env::set_var(WRONG_PIN_VAR, "9999");

        let out = Command::new("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                TOKEN,
                "--pin",
                PIN,
                "--so-pin",
                SO_PIN,
            ])
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run softhsm2-util ({e}): install softhsm2 (apt-get install softhsm2)"
                )
            });
        assert!(
            out.status.success(),
            "softhsm2-util --init-token failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Hsm { _dir: dir }
    })
}

fn open_store() -> Pkcs11KeyStore {
    hsm();
    Pkcs11KeyStore::open(Path::new(MODULE), TOKEN, &SecretSource::Env(PIN_VAR.into()))
        .unwrap_or_else(|e| panic!("opening the SoftHSM token failed: {e}"))
}

fn verifies(
    alg: &'static dyn VerificationAlgorithm,
    signer: &dyn Signer,
    msg: &[u8],
    signature: &[u8],
) -> bool {
    let bits = subject_public_key_bits(signer.spki_der()).expect("SPKI parses");
    UnparsedPublicKey::new(alg, bits)
        .verify(msg, signature)
        .is_ok()
}

/// Signs with `scheme`, checks the signature verifies and that a tampered message does not.
fn sign_and_verify(
    signer: &dyn Signer,
    scheme: SignatureScheme,
    alg: &'static dyn VerificationAlgorithm,
) {
    let msg = format!("to be signed by {} with {scheme:?}", signer.label()).into_bytes();
    let signature = signer
        .sign(scheme, &msg)
        .unwrap_or_else(|e| panic!("{} {scheme:?}: {e}", signer.label()));
    assert!(
        verifies(alg, signer, &msg, &signature),
        "{} {scheme:?}: the signature does not verify",
        signer.label()
    );
    let mut tampered = msg.clone();
    tampered[0] ^= 1;
    assert!(
        !verifies(alg, signer, &tampered, &signature),
        "{} {scheme:?}: a tampered message verifies",
        signer.label()
    );
}

/// Parses the SPKI with x509-parser and checks its algorithm and key size.
fn check_spki(signer: &dyn Signer) {
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey;
    let (rest, spki) =
        x509_parser::x509::SubjectPublicKeyInfo::from_der(signer.spki_der()).expect("SPKI is DER");
    assert!(rest.is_empty());
    let oid = spki.algorithm.algorithm.to_id_string();
    let parsed = spki.parsed().expect("public key parses");
    match signer.algorithm() {
        KeyAlgorithm::P256 | KeyAlgorithm::P384 => {
            assert_eq!(oid, "1.2.840.10045.2.1");
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            let want = if signer.algorithm() == KeyAlgorithm::P256 {
                "1.2.840.10045.3.1.7"
            } else {
                "1.3.132.0.34"
            };
            assert_eq!(curve.as_deref(), Some(want));
            match parsed {
                PublicKey::EC(p) => {
                    assert_eq!(p.key_size(), if want == "1.3.132.0.34" { 384 } else { 256 })
                }
                other => panic!("not an EC key: {other:?}"),
            }
        }
        KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            assert_eq!(oid, "1.2.840.113549.1.1.1");
            match parsed {
                PublicKey::RSA(rsa) => {
                    assert_eq!(Some(rsa.key_size()), signer.algorithm().rsa_bits());
                    assert_eq!(rsa.exponent, [1, 0, 1]);
                }
                other => panic!("not an RSA key: {other:?}"),
            }
        }
        KeyAlgorithm::Ed25519 => {
            assert_eq!(oid, "1.3.101.112");
            assert!(spki.algorithm.parameters.is_none());
            assert_eq!(spki.subject_public_key.data.len(), 32);
        }
    }
}

const HSM_PROTECTION: KeyProtection = KeyProtection {
    sensitive: true,
    extractable: false,
    always_sensitive: true,
    never_extractable: true,
};

#[test]
fn generate_sign_verify_reopen() {
    use SignatureScheme as S;
    let store = open_store();
    assert_eq!(store.kind(), "pkcs11");
    let check = store.check().expect("check");
    eprintln!("check: {check}");
    assert!(
        check.contains(TOKEN) && check.contains("logged in"),
        "{check}"
    );

    // P-256: any ECDSA hash works, since the digest is computed here.
    let p256 = store
        .generate("ca-p256", KeyAlgorithm::P256)
        .expect("generate p256");
    assert_eq!(p256.algorithm(), KeyAlgorithm::P256);
    check_spki(p256.as_ref());
    sign_and_verify(p256.as_ref(), S::EcdsaSha256, &sig::ECDSA_P256_SHA256_ASN1);
    sign_and_verify(p256.as_ref(), S::EcdsaSha384, &sig::ECDSA_P256_SHA384_ASN1);
    sign_and_verify(p256.as_ref(), S::EcdsaSha512, &sig::ECDSA_P256_SHA512_ASN1);
    assert!(matches!(
        p256.sign(S::RsaPkcs1Sha256, b"x"),
        Err(KeyError::Unsupported(_))
    ));
    assert!(matches!(
        p256.sign(S::Ed25519, b"x"),
        Err(KeyError::Unsupported(_))
    ));
    assert_eq!(
        p256.uri(),
        "pkcs11:token=hallmark-test;object=ca-p256;type=private"
    );

    let p384 = store
        .generate("ca-p384", KeyAlgorithm::P384)
        .expect("generate p384");
    assert_eq!(p384.algorithm(), KeyAlgorithm::P384);
    check_spki(p384.as_ref());
    sign_and_verify(p384.as_ref(), S::EcdsaSha384, &sig::ECDSA_P384_SHA384_ASN1);
    sign_and_verify(p384.as_ref(), S::EcdsaSha256, &sig::ECDSA_P384_SHA256_ASN1);
    sign_and_verify(p384.as_ref(), S::EcdsaSha512, &sig::ECDSA_P384_SHA512_ASN1);

    let rsa = store
        .generate("ca-rsa3072", KeyAlgorithm::Rsa3072)
        .expect("generate rsa3072");
    assert_eq!(rsa.algorithm(), KeyAlgorithm::Rsa3072);
    check_spki(rsa.as_ref());
    sign_and_verify(
        rsa.as_ref(),
        S::RsaPkcs1Sha256,
        &sig::RSA_PKCS1_2048_8192_SHA256,
    );
    sign_and_verify(
        rsa.as_ref(),
        S::RsaPkcs1Sha384,
        &sig::RSA_PKCS1_2048_8192_SHA384,
    );
    sign_and_verify(
        rsa.as_ref(),
        S::RsaPkcs1Sha512,
        &sig::RSA_PKCS1_2048_8192_SHA512,
    );
    sign_and_verify(
        rsa.as_ref(),
        S::RsaPssSha256,
        &sig::RSA_PSS_2048_8192_SHA256,
    );
    sign_and_verify(
        rsa.as_ref(),
        S::RsaPssSha384,
        &sig::RSA_PSS_2048_8192_SHA384,
    );
    sign_and_verify(
        rsa.as_ref(),
        S::RsaPssSha512,
        &sig::RSA_PSS_2048_8192_SHA512,
    );
    assert!(matches!(
        rsa.sign(S::EcdsaSha256, b"x"),
        Err(KeyError::Unsupported(_))
    ));

    let rsa4096 = store
        .generate("ca-rsa4096", KeyAlgorithm::Rsa4096)
        .expect("generate rsa4096");
    assert_eq!(rsa4096.algorithm(), KeyAlgorithm::Rsa4096);
    check_spki(rsa4096.as_ref());
    sign_and_verify(
        rsa4096.as_ref(),
        S::RsaPkcs1Sha384,
        &sig::RSA_PKCS1_2048_8192_SHA384,
    );

    let mut labels = vec!["ca-p256", "ca-p384", "ca-rsa3072", "ca-rsa4096"];
    match store.generate("ca-ed25519", KeyAlgorithm::Ed25519) {
        Ok(ed) => {
            eprintln!("SoftHSM generated an Ed25519 key");
            assert_eq!(ed.algorithm(), KeyAlgorithm::Ed25519);
            check_spki(ed.as_ref());
            sign_and_verify(ed.as_ref(), S::Ed25519, &sig::ED25519);
            labels.push("ca-ed25519");
        }
        Err(KeyError::Unsupported(msg)) => eprintln!("Ed25519 refused by SoftHSM: {msg}"),
        Err(e) => panic!("Ed25519 must either work or be Unsupported, got: {e:?}"),
    }

    for label in &labels {
        assert_eq!(
            store.protection(label).expect("protection"),
            HSM_PROTECTION,
            "{label}"
        );
    }

    // Duplicates, missing keys, bad labels.
    assert!(matches!(
        store.generate("ca-p256", KeyAlgorithm::P384),
        Err(KeyError::AlreadyExists(l)) if l == "ca-p256"
    ));
    assert!(matches!(
        store.open("no-such-key"),
        Err(KeyError::NotFound(l)) if l == "no-such-key"
    ));
    assert!(matches!(
        store.protection("no-such-key"),
        Err(KeyError::NotFound(_))
    ));
    assert!(matches!(
        store.generate("bad label", KeyAlgorithm::P256),
        Err(KeyError::Unsupported(_))
    ));

    // The same store hands out the key it generated.
    let again = store.open("ca-p256").expect("open p256");
    assert_eq!(again.spki_der(), p256.spki_der());

    // A second store on the same token (fresh cache) finds the keys by label, with the same SPKI,
    // and its signatures verify against the key generated by the first one.
    let originals = [p256.clone(), p384.clone(), rsa.clone(), rsa4096.clone()];
    drop(store);
    let reopened = open_store();
    for original in &originals {
        let key = reopened.open(original.label()).expect("reopen");
        assert_eq!(key.algorithm(), original.algorithm());
        assert_eq!(key.spki_der(), original.spki_der(), "{}", original.label());
        assert_eq!(key.uri(), original.uri());
        let msg = b"signed after reopening";
        let scheme = key.algorithm().default_scheme();
        let signature = key.sign(scheme, msg).expect("sign after reopen");
        let alg: &'static dyn VerificationAlgorithm = match key.algorithm() {
            KeyAlgorithm::P256 => &sig::ECDSA_P256_SHA256_ASN1,
            KeyAlgorithm::P384 => &sig::ECDSA_P384_SHA384_ASN1,
            KeyAlgorithm::Rsa3072 => &sig::RSA_PKCS1_2048_8192_SHA256,
            KeyAlgorithm::Rsa4096 => &sig::RSA_PKCS1_2048_8192_SHA384,
            KeyAlgorithm::Ed25519 => &sig::ED25519,
        };
        assert!(verifies(alg, original.as_ref(), msg, &signature));
    }
    if labels.contains(&"ca-ed25519") {
        let ed = reopened.open("ca-ed25519").expect("reopen ed25519");
        assert_eq!(ed.algorithm(), KeyAlgorithm::Ed25519);
    }
    // Keys keep working after their store is gone.
    drop(reopened);
    sign_and_verify(p256.as_ref(), S::EcdsaSha256, &sig::ECDSA_P256_SHA256_ASN1);
}

#[test]
fn bad_pin_module_or_token_is_an_error() {
    hsm();
    let module = Path::new(MODULE);

    let wrong = || Pkcs11KeyStore::open(module, TOKEN, &SecretSource::Env(WRONG_PIN_VAR.into()));
    // Whatever the login state is (other tests run in parallel), a wrong PIN fails...
    match wrong() {
        Ok(_) => panic!("a wrong PIN was accepted"),
        Err(e) => {
            eprintln!("wrong PIN: {e}");
            assert!(e.to_string().contains("PIN is incorrect"), "{e}");
        }
    }
    // ...including while this process is surely logged in: then the token answers
    // CKR_USER_ALREADY_LOGGED_IN without looking at the PIN, and the store must check it.
    let logged_in = open_store();
    match wrong() {
        Ok(_) => panic!("a wrong PIN was accepted while the token was logged in"),
        Err(e) => {
            eprintln!("wrong PIN while logged in: {e}");
            assert!(e.to_string().contains("PIN is incorrect"), "{e}");
        }
    }
    // The right PIN still works alongside the open store.
    let second = open_store();
    second.check().expect("second store is logged in");
    drop((logged_in, second));

    assert!(matches!(
        Pkcs11KeyStore::open(
            module,
            TOKEN,
            &SecretSource::Env("HALLMARK_TEST_UNSET_PIN".into())
        ),
        Err(KeyError::Secret(_))
    ));
    match Pkcs11KeyStore::open(module, "no-such-token", &SecretSource::Env(PIN_VAR.into())) {
        Err(KeyError::Pkcs11(msg)) => assert!(msg.contains("no-such-token"), "{msg}"),
        other => panic!("missing token: {other:?}"),
    }
    let missing: PathBuf = "/nonexistent/libpkcs11-missing.so".into();
    match Pkcs11KeyStore::open(&missing, TOKEN, &SecretSource::Env(PIN_VAR.into())) {
        Err(KeyError::Pkcs11(msg)) => assert!(msg.contains("cannot load"), "{msg}"),
        other => panic!("missing module: {other:?}"),
    }
}

#[test]
fn concurrent_signing_and_speed() {
    let store = open_store();
    let key: Arc<dyn Signer> = store
        .generate("concurrent-p256", KeyAlgorithm::P256)
        .expect("generate");

    // One thread: P-256 signatures per second through the backend. Other tests in this binary
    // run at the same time (and key generation holds the token alone), so for a clean number run
    // `cargo test --release --test pkcs11_keystore concurrent -- --nocapture`.
    let n = 5000;
    let start = Instant::now();
    for i in 0..n {
        let msg = format!("speed {i}");
        key.sign(SignatureScheme::EcdsaSha256, msg.as_bytes())
            .expect("sign");
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "P-256 through Pkcs11KeyStore on one thread: {n} signs in {secs:.3} s = {:.0} signs/s",
        n as f64 / secs
    );

    // Two threads sharing one signer, 200 signatures each, all verified.
    let start = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let key = key.clone();
            std::thread::spawn(move || {
                let bits = subject_public_key_bits(key.spki_der()).expect("SPKI");
                let pk = UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_ASN1, bits);
                for i in 0..200 {
                    let msg = format!("thread {t} message {i}");
                    let s = key
                        .sign(SignatureScheme::EcdsaSha256, msg.as_bytes())
                        .expect("sign");
                    assert!(pk.verify(msg.as_bytes(), &s).is_ok(), "thread {t} sig {i}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("signing thread panicked");
    }
    eprintln!(
        "2 threads x 200 P-256 signs (with verification) in {:.3} s",
        start.elapsed().as_secs_f64()
    );
}

/// `Signer::sign_digest` on a SoftHSM2 token, in this process: every scheme verifies over the
/// message the digest came from (ECDSA with other-length digests, RSA PKCS#1 v1.5 and PSS), a
/// wrong-length digest and Ed25519 are refused.
#[test]
fn softhsm_signs_digests_for_every_scheme() {
    use hallmark::keys::{HashAlg, SignatureScheme as S};

    // This binary's one token (SoftHSM2 reads its configuration once per process).
    let store = open_store();

    let msg = b"firmware image bytes";
    let cases: [(KeyAlgorithm, S, HashAlg, &'static dyn VerificationAlgorithm); 7] = [
        (
            KeyAlgorithm::P256,
            S::EcdsaSha256,
            HashAlg::Sha256,
            &sig::ECDSA_P256_SHA256_ASN1,
        ),
        (
            KeyAlgorithm::P256,
            S::EcdsaSha384,
            HashAlg::Sha384,
            &sig::ECDSA_P256_SHA384_ASN1,
        ),
        (
            KeyAlgorithm::P384,
            S::EcdsaSha384,
            HashAlg::Sha384,
            &sig::ECDSA_P384_SHA384_ASN1,
        ),
        (
            KeyAlgorithm::P384,
            S::EcdsaSha256,
            HashAlg::Sha256,
            &sig::ECDSA_P384_SHA256_ASN1,
        ),
        (
            KeyAlgorithm::Rsa3072,
            S::RsaPkcs1Sha256,
            HashAlg::Sha256,
            &sig::RSA_PKCS1_2048_8192_SHA256,
        ),
        (
            KeyAlgorithm::Rsa3072,
            S::RsaPkcs1Sha512,
            HashAlg::Sha512,
            &sig::RSA_PKCS1_2048_8192_SHA512,
        ),
        (
            KeyAlgorithm::Rsa3072,
            S::RsaPssSha384,
            HashAlg::Sha384,
            &sig::RSA_PSS_2048_8192_SHA384,
        ),
    ];
    for (i, (alg, scheme, hash, verify)) in cases.into_iter().enumerate() {
        let key = store
            .generate(&format!("digest-scheme-{i}"), alg)
            .expect("generate");
        let signature = key
            .sign_digest(scheme, &hash.digest(msg))
            .unwrap_or_else(|e| panic!("{alg} {scheme:?}: {e}"));
        let public = subject_public_key_bits(key.spki_der()).expect("spki");
        assert!(
            UnparsedPublicKey::new(verify, &public)
                .verify(msg, &signature)
                .is_ok(),
            "{alg} {scheme:?} does not verify"
        );
        assert!(UnparsedPublicKey::new(verify, &public)
            .verify(b"other bytes", &signature)
            .is_err());
        let short = &hash.digest(msg)[1..];
        assert!(key.sign_digest(scheme, short).is_err(), "{alg} {scheme:?}");
    }
    let ed = store
        .generate("digest-scheme-ed", KeyAlgorithm::Ed25519)
        .expect("generate");
    let e = ed.sign_digest(S::Ed25519, &[0u8; 64]).unwrap_err();
    assert!(e.to_string().contains("cannot sign a digest"), "{e}");
}
