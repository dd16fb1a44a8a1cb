//! The OpenPGP format's unit tests that need a real key: certificates, detached and clearsigned
//! signatures made with a software key store's key and checked with rPGP. The format lives in
//! the client crate (`formats::openpgp`), the key store here, so these tests live here.

use pgp::composed::{CleartextSignedMessage, DetachedSignature};

use crate::formats::openpgp::*;
use crate::keys::{HashAlg, KeyAlgorithm, KeyStore, SignatureScheme, Signer};

struct Soft(
    std::sync::Arc<dyn Signer>,
    #[allow(dead_code)] tempfile::TempDir,
);

impl DigestSigner for Soft {
    fn sign_digest(&self, hash: HashAlg, digest: &[u8]) -> std::result::Result<Vec<u8>, String> {
        let scheme = match (self.0.algorithm(), hash) {
            (KeyAlgorithm::Ed25519, _) => {
                return self
                    .0
                    .sign(SignatureScheme::Ed25519, digest)
                    .map_err(|e| e.to_string())
            }
            (KeyAlgorithm::P256 | KeyAlgorithm::P384, HashAlg::Sha256) => {
                SignatureScheme::EcdsaSha256
            }
            (KeyAlgorithm::P256 | KeyAlgorithm::P384, HashAlg::Sha384) => {
                SignatureScheme::EcdsaSha384
            }
            (KeyAlgorithm::P256 | KeyAlgorithm::P384, HashAlg::Sha512) => {
                SignatureScheme::EcdsaSha512
            }
            (_, HashAlg::Sha256) => SignatureScheme::RsaPkcs1Sha256,
            (_, HashAlg::Sha384) => SignatureScheme::RsaPkcs1Sha384,
            (_, HashAlg::Sha512) => SignatureScheme::RsaPkcs1Sha512,
        };
        self.0
            .sign_digest(scheme, digest)
            .map_err(|e| e.to_string())
    }
}

fn soft(alg: KeyAlgorithm) -> Soft {
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "unit test").unwrap();
    let store =
        crate::keys::soft::SoftKeyStore::new(dir.path(), crate::keys::SecretSource::File(pass));
    Soft(store.generate("k", alg).unwrap(), dir)
}

#[test]
fn certificates_and_signatures_verify_with_rpgp() {
    for alg in [
        KeyAlgorithm::P256,
        KeyAlgorithm::P384,
        KeyAlgorithm::Ed25519,
        KeyAlgorithm::Rsa3072,
    ] {
        let s = soft(alg);
        let cert = certificate(
            alg,
            s.0.spki_der(),
            1_700_000_000,
            "Acme <r@acme.example>",
            &s,
        )
        .unwrap();
        cert.verify_bindings().unwrap();
        let round = parse_certificate(armored(&cert).unwrap().as_bytes()).unwrap();
        assert_eq!(round, cert);
        assert_eq!(parse_certificate(&binary(&cert).unwrap()).unwrap(), cert);
        assert_eq!(key_algorithm(&cert.primary_key).unwrap(), alg);
        let data = b"hello\nworld\n".to_vec();
        let sig = detached(
            &cert.primary_key,
            default_hash(alg),
            &mut &data[..],
            &s,
            1_700_000_001,
        )
        .unwrap();
        DetachedSignature::new(sig.clone())
            .verify(&cert.primary_key, &data)
            .unwrap();
        assert!(DetachedSignature::new(sig)
            .verify(&cert.primary_key, b"hello\nworld!\n")
            .is_err());
        let text = clearsign(
            &cert.primary_key,
            HashAlg::Sha256,
            "Origin: x\nSuite: y\n",
            &s,
            1,
        )
        .unwrap();
        let (msg, _) = CleartextSignedMessage::from_string(&text).unwrap();
        msg.verify(&cert.primary_key).unwrap();
        // Trailing spaces and tabs are not signed (rPGP's verifier trims them, as gpgv
        // does), but stay in the text.
        let spaced = "Origin: x \nSuite: y\t\n- dashed \t\n";
        let text = clearsign(&cert.primary_key, HashAlg::Sha256, spaced, &s, 1).unwrap();
        assert!(
            text.contains("Origin: x \nSuite: y\t\n- - dashed \t\n"),
            "{text}"
        );
        let (msg, _) = CleartextSignedMessage::from_string(&text).unwrap();
        msg.verify(&cert.primary_key).unwrap();
    }
}

#[test]
fn the_trailer_is_what_the_signature_hashes_after_the_data() {
    struct Check<'a>(&'a Soft, Vec<u8>, HashAlg);
    impl DigestSigner for Check<'_> {
        fn sign_digest(
            &self,
            hash: HashAlg,
            digest: &[u8],
        ) -> std::result::Result<Vec<u8>, String> {
            assert_eq!(
                self.2.digest(&self.1),
                digest,
                "digest = H(payload || trailer)"
            );
            self.0.sign_digest(hash, digest)
        }
    }
    let s = soft(KeyAlgorithm::P256);
    let cert = certificate(KeyAlgorithm::P256, s.0.spki_der(), 1, "A", &s).unwrap();
    let payload = br#"{"critical":{}}"#;
    for hash in [HashAlg::Sha256, HashAlg::Sha512] {
        let trailer = binary_trailer(&cert.primary_key, hash, 77).unwrap();
        assert_eq!(trailer[0], 4);
        let mut all = payload.to_vec();
        all.extend_from_slice(&trailer);
        let msg =
            signed_message(&cert.primary_key, hash, payload, &Check(&s, all, hash), 77).unwrap();
        assert_eq!(msg[0] & 0x3F, 4, "starts with a one-pass signature packet");
    }
}

#[test]
fn a_signer_failure_is_its_own_message() {
    struct No;
    impl DigestSigner for No {
        fn sign_digest(&self, _: HashAlg, _: &[u8]) -> std::result::Result<Vec<u8>, String> {
            Err("key 'x' does not sign format 'openpgp'".into())
        }
    }
    let s = soft(KeyAlgorithm::P256);
    let cert = certificate(KeyAlgorithm::P256, s.0.spki_der(), 1, "A", &s).unwrap();
    let e = detached(&cert.primary_key, HashAlg::Sha256, &mut &b"x"[..], &No, 2).unwrap_err();
    assert_eq!(e.to_string(), "key 'x' does not sign format 'openpgp'");
    assert!(certificate(KeyAlgorithm::P256, s.0.spki_der(), 1, "a\nb", &s).is_err());
}
