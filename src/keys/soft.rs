//! Software keys: PKCS#8 files encrypted at rest (PBES2: PBKDF2-SHA256 + AES-256-CBC).
//!
//! For development and tests only; production keys belong in an HSM. The passphrase comes from an
//! environment variable or a file, never from the command line or the config file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, KeyPair};
use pkcs8::der::Decode;
use zeroize::Zeroizing;

use super::{
    KeyAlgorithm, KeyError, KeyProtection, KeyStore, SecretSource, SignatureScheme, Signer,
};

const PBKDF2_ITERATIONS: u32 = 100_000;

/// A directory of encrypted key files.
pub struct SoftKeyStore {
    dir: PathBuf,
    secret: SecretSource,
    cache: Mutex<HashMap<String, Arc<SoftKey>>>,
}

impl SoftKeyStore {
    pub fn new(dir: impl Into<PathBuf>, secret: SecretSource) -> Self {
        SoftKeyStore {
            dir: dir.into(),
            secret,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn path(&self, label: &str) -> PathBuf {
        self.dir.join(format!("{label}.key.pem"))
    }

    fn file_err(path: &Path, detail: impl ToString) -> KeyError {
        KeyError::File {
            path: path.display().to_string(),
            detail: detail.to_string(),
        }
    }

    fn cache_put(&self, label: &str, key: Arc<SoftKey>) {
        if let Ok(mut c) = self.cache.lock() {
            c.insert(label.to_string(), key);
        }
    }
}

fn generate_pkcs8(alg: KeyAlgorithm) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let rng = SystemRandom::new();
    let crypto = |what: &str| KeyError::Crypto(format!("generating a {what} key failed"));
    let der = match alg {
        KeyAlgorithm::P256 => {
            sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                .map_err(|_| crypto("P-256"))?
                .as_ref()
                .to_vec()
        }
        KeyAlgorithm::P384 => {
            sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P384_SHA384_ASN1_SIGNING, &rng)
                .map_err(|_| crypto("P-384"))?
                .as_ref()
                .to_vec()
        }
        KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            let size = if alg == KeyAlgorithm::Rsa3072 {
                aws_lc_rs::rsa::KeySize::Rsa3072
            } else {
                aws_lc_rs::rsa::KeySize::Rsa4096
            };
            let kp = aws_lc_rs::rsa::KeyPair::generate(size).map_err(|_| crypto("RSA"))?;
            let doc: Pkcs8V1Der = kp.as_der().map_err(|_| crypto("RSA"))?;
            doc.as_ref().to_vec()
        }
        KeyAlgorithm::Ed25519 => sig::Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| crypto("Ed25519"))?
            .as_ref()
            .to_vec(),
    };
    Ok(Zeroizing::new(der))
}

impl KeyStore for SoftKeyStore {
    fn kind(&self) -> &'static str {
        "soft"
    }

    fn generate(&self, label: &str, alg: KeyAlgorithm) -> Result<Arc<dyn Signer>, KeyError> {
        super::validate_label(label)?;
        let path = self.path(label);
        if path.exists() {
            return Err(KeyError::AlreadyExists(label.to_string()));
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| Self::file_err(&self.dir, e))?;
        let pass = self.secret.read()?;
        if pass.is_empty() {
            return Err(KeyError::Secret("the soft key passphrase is empty".into()));
        }
        let p8 = generate_pkcs8(alg)?;
        let key = Arc::new(SoftKey::from_pkcs8(label, alg, p8.clone())?);

        let mut salt = [0u8; 16];
        let mut iv = [0u8; 16];
        rand::Rng::fill(&mut rand::rngs::OsRng, &mut salt);
        rand::Rng::fill(&mut rand::rngs::OsRng, &mut iv);
        let params =
            pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(PBKDF2_ITERATIONS, &salt, &iv)
                .map_err(|e| KeyError::Crypto(format!("PBES2 parameters: {e}")))?;
        let info =
            pkcs8::PrivateKeyInfo::from_der(&p8).map_err(|e| KeyError::Crypto(e.to_string()))?;
        let enc = info
            .encrypt_with_params(params, pass.as_bytes())
            .map_err(|e| KeyError::Crypto(format!("encrypting the key failed: {e}")))?;
        let pem = crate::pemfmt::encode("ENCRYPTED PRIVATE KEY", enc.as_bytes().to_vec());
        write_new_private(&path, pem.as_bytes()).map_err(|e| Self::file_err(&path, e))?;
        self.cache_put(label, key.clone());
        Ok(key)
    }

    fn open(&self, label: &str) -> Result<Arc<dyn Signer>, KeyError> {
        super::validate_label(label)?;
        if let Some(k) = self.cache.lock().ok().and_then(|c| c.get(label).cloned()) {
            return Ok(k);
        }
        let path = self.path(label);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyError::NotFound(label.to_string()))
            }
            Err(e) => return Err(Self::file_err(&path, e)),
        };
        let block = pem::parse(&text).map_err(|e| Self::file_err(&path, e))?;
        if block.tag() != "ENCRYPTED PRIVATE KEY" {
            return Err(Self::file_err(&path, "not an ENCRYPTED PRIVATE KEY"));
        }
        let enc = pkcs8::EncryptedPrivateKeyInfo::from_der(block.contents())
            .map_err(|e| Self::file_err(&path, e))?;
        let pass = self.secret.read()?;
        let doc = enc.decrypt(pass.as_bytes()).map_err(|_| {
            KeyError::Secret(format!(
                "cannot decrypt {}: wrong passphrase?",
                path.display()
            ))
        })?;
        let p8 = Zeroizing::new(doc.as_bytes().to_vec());
        let alg = algorithm_of_pkcs8(&p8).map_err(|e| Self::file_err(&path, e))?;
        let key = Arc::new(SoftKey::from_pkcs8(label, alg, p8)?);
        self.cache_put(label, key.clone());
        Ok(key)
    }

    fn protection(&self, label: &str) -> Result<KeyProtection, KeyError> {
        // A software key is encrypted at rest, but the process holds it in memory: say so.
        self.open(label)?;
        Ok(KeyProtection {
            sensitive: false,
            extractable: true,
            always_sensitive: false,
            never_extractable: false,
        })
    }

    fn check(&self) -> Result<String, KeyError> {
        let meta = std::fs::metadata(&self.dir).map_err(|e| Self::file_err(&self.dir, e))?;
        if !meta.is_dir() {
            return Err(Self::file_err(&self.dir, "not a directory"));
        }
        self.secret.read()?;
        Ok(format!(
            "soft keys in {} (development only)",
            self.dir.display()
        ))
    }
}

fn write_new_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

fn algorithm_of_pkcs8(p8: &[u8]) -> Result<KeyAlgorithm, String> {
    let info = pkcs8::PrivateKeyInfo::from_der(p8).map_err(|e| e.to_string())?;
    let oid = info.algorithm.oid.to_string();
    let curve = if oid == super::oid::EC_PUBLIC_KEY {
        Some(
            info.algorithm
                .parameters_oid()
                .map_err(|e| e.to_string())?
                .to_string(),
        )
    } else {
        None
    };
    match super::kind_of(&oid, curve.as_deref()) {
        Ok(super::KeyKind::P256) => Ok(KeyAlgorithm::P256),
        Ok(super::KeyKind::P384) => Ok(KeyAlgorithm::P384),
        Ok(super::KeyKind::P521) => Err(format!("unsupported curve {}", super::oid::P521)),
        Err(super::UnknownKey::Curve(c)) => Err(format!("unsupported curve {c}")),
        Ok(super::KeyKind::Rsa) => {
            let kp = aws_lc_rs::rsa::KeyPair::from_pkcs8(p8).map_err(|e| e.to_string())?;
            match kp.public_modulus_len() * 8 {
                3072 => Ok(KeyAlgorithm::Rsa3072),
                4096 => Ok(KeyAlgorithm::Rsa4096),
                n => Err(format!("unsupported RSA size {n}")),
            }
        }
        Ok(super::KeyKind::Ed25519) => Ok(KeyAlgorithm::Ed25519),
        Err(super::UnknownKey::Algorithm(o)) => Err(format!("unsupported key algorithm {o}")),
    }
}

enum Inner {
    Ecdsa(sig::EcdsaKeyPair),
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ed25519(sig::Ed25519KeyPair),
}

/// A decrypted software key in memory.
pub struct SoftKey {
    label: String,
    alg: KeyAlgorithm,
    spki: Vec<u8>,
    inner: Inner,
}

impl std::fmt::Debug for SoftKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftKey")
            .field("label", &self.label)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SoftKey {
    /// A key held only in memory (e.g. a station key handed out once), from PKCS#8 DER.
    pub fn ephemeral(label: &str, pkcs8_der: &[u8]) -> Result<SoftKey, KeyError> {
        let p8 = Zeroizing::new(pkcs8_der.to_vec());
        let alg = algorithm_of_pkcs8(&p8).map_err(KeyError::Crypto)?;
        SoftKey::from_pkcs8(label, alg, p8)
    }

    fn from_pkcs8(
        label: &str,
        alg: KeyAlgorithm,
        p8: Zeroizing<Vec<u8>>,
    ) -> Result<Self, KeyError> {
        let bad = |e: aws_lc_rs::error::KeyRejected| {
            KeyError::Crypto(format!("key '{label}' rejected: {e}"))
        };
        let (inner, spki) = match alg {
            KeyAlgorithm::P256 | KeyAlgorithm::P384 => {
                let a = if alg == KeyAlgorithm::P256 {
                    &sig::ECDSA_P256_SHA256_ASN1_SIGNING
                } else {
                    &sig::ECDSA_P384_SHA384_ASN1_SIGNING
                };
                let kp = sig::EcdsaKeyPair::from_pkcs8(a, &p8).map_err(bad)?;
                let spki: PublicKeyX509Der = kp
                    .public_key()
                    .as_der()
                    .map_err(|_| KeyError::Crypto("public key encoding".into()))?;
                let spki = spki.as_ref().to_vec();
                (Inner::Ecdsa(kp), spki)
            }
            KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                let kp = aws_lc_rs::rsa::KeyPair::from_pkcs8(&p8).map_err(bad)?;
                let spki: PublicKeyX509Der = kp
                    .public_key()
                    .as_der()
                    .map_err(|_| KeyError::Crypto("public key encoding".into()))?;
                let spki = spki.as_ref().to_vec();
                (Inner::Rsa(kp), spki)
            }
            KeyAlgorithm::Ed25519 => {
                let kp = sig::Ed25519KeyPair::from_pkcs8(&p8).map_err(bad)?;
                let spki: PublicKeyX509Der = kp
                    .public_key()
                    .as_der()
                    .map_err(|_| KeyError::Crypto("public key encoding".into()))?;
                let spki = spki.as_ref().to_vec();
                (Inner::Ed25519(kp), spki)
            }
        };
        Ok(SoftKey {
            label: label.to_string(),
            alg,
            spki,
            inner,
        })
    }
}

impl Signer for SoftKey {
    fn label(&self) -> &str {
        &self.label
    }
    fn algorithm(&self) -> KeyAlgorithm {
        self.alg
    }
    fn spki_der(&self) -> &[u8] {
        &self.spki
    }
    fn uri(&self) -> String {
        format!("soft:{}", self.label)
    }

    fn sign(&self, scheme: SignatureScheme, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        use SignatureScheme as S;
        let unsupported = || {
            KeyError::Unsupported(format!(
                "a {} software key cannot sign with {scheme:?}",
                self.alg
            ))
        };
        let failed = |_| KeyError::Crypto(format!("signing with '{}' failed", self.label));
        match &self.inner {
            Inner::Ecdsa(kp) => {
                let natural = self.alg.default_scheme();
                if scheme != natural {
                    return Err(unsupported());
                }
                let rng = SystemRandom::new();
                Ok(kp.sign(&rng, msg).map_err(failed)?.as_ref().to_vec())
            }
            Inner::Rsa(kp) => {
                let enc: &'static dyn aws_lc_rs::signature::RsaEncoding = match scheme {
                    S::RsaPkcs1Sha256 => &sig::RSA_PKCS1_SHA256,
                    S::RsaPkcs1Sha384 => &sig::RSA_PKCS1_SHA384,
                    S::RsaPkcs1Sha512 => &sig::RSA_PKCS1_SHA512,
                    S::RsaPssSha256 => &sig::RSA_PSS_SHA256,
                    S::RsaPssSha384 => &sig::RSA_PSS_SHA384,
                    S::RsaPssSha512 => &sig::RSA_PSS_SHA512,
                    _ => return Err(unsupported()),
                };
                let mut out = vec![0u8; kp.public_modulus_len()];
                kp.sign(enc, &SystemRandom::new(), msg, &mut out)
                    .map_err(failed)?;
                Ok(out)
            }
            Inner::Ed25519(kp) => {
                if scheme != S::Ed25519 {
                    return Err(unsupported());
                }
                Ok(kp.sign(msg).as_ref().to_vec())
            }
        }
    }

    fn sign_digest(&self, scheme: SignatureScheme, digest: &[u8]) -> Result<Vec<u8>, KeyError> {
        use aws_lc_rs::digest::{Digest, SHA256, SHA384, SHA512};
        use SignatureScheme as S;
        let hash = super::check_digest(self.alg, scheme, digest)?;
        let failed = |_| KeyError::Crypto(format!("signing with '{}' failed", self.label));
        match &self.inner {
            Inner::Ecdsa(kp) => {
                // aws-lc-rs signs only the digest of the key pair's own algorithm (SHA-256 for
                // P-256, SHA-384 for P-384). ECDSA uses the leftmost bits of the hash as an
                // integer (SEC 1 §4.1.3), so an other-length digest is cut to the curve size
                // or left-padded with zeros: the same integer, the same signature.
                let (size, alg): (usize, _) = if self.alg == KeyAlgorithm::P256 {
                    (32, &SHA256)
                } else {
                    (48, &SHA384)
                };
                let mut e = vec![0u8; size.saturating_sub(digest.len())];
                e.extend_from_slice(&digest[..digest.len().min(size)]);
                let d = Digest::import_less_safe(&e, alg).map_err(failed)?;
                Ok(kp.sign_digest(&d).map_err(failed)?.as_ref().to_vec())
            }
            Inner::Rsa(kp) => {
                let (enc, alg): (&'static dyn aws_lc_rs::signature::RsaEncoding, _) = match scheme {
                    S::RsaPkcs1Sha256 => (&sig::RSA_PKCS1_SHA256, &SHA256),
                    S::RsaPkcs1Sha384 => (&sig::RSA_PKCS1_SHA384, &SHA384),
                    S::RsaPkcs1Sha512 => (&sig::RSA_PKCS1_SHA512, &SHA512),
                    S::RsaPssSha256 => (&sig::RSA_PSS_SHA256, &SHA256),
                    S::RsaPssSha384 => (&sig::RSA_PSS_SHA384, &SHA384),
                    S::RsaPssSha512 => (&sig::RSA_PSS_SHA512, &SHA512),
                    _ => {
                        return Err(KeyError::Unsupported(format!(
                            "an RSA key cannot sign with {scheme:?}"
                        )))
                    }
                };
                debug_assert_eq!(alg.output_len(), hash.output_len());
                let d = Digest::import_less_safe(digest, alg).map_err(failed)?;
                let mut out = vec![0u8; kp.public_modulus_len()];
                kp.sign_digest(enc, &d, &mut out).map_err(failed)?;
                Ok(out)
            }
            Inner::Ed25519(_) => Err(KeyError::Unsupported(format!(
                "Ed25519 key '{}' signs whole messages and cannot sign a digest",
                self.label
            ))),
        }
    }
}

#[cfg(test)]
mod digest_tests {
    use super::*;
    use crate::keys::HashAlg;
    use aws_lc_rs::signature::UnparsedPublicKey;

    fn key(alg: KeyAlgorithm) -> SoftKey {
        SoftKey::from_pkcs8("t", alg, generate_pkcs8(alg).unwrap()).unwrap()
    }

    /// The public key bits inside a SubjectPublicKeyInfo (what aws-lc-rs verifies with).
    fn bits(spki: &[u8]) -> Vec<u8> {
        crate::keys::subject_public_key_bits(spki).unwrap()
    }

    #[test]
    fn ecdsa_signs_every_digest_length() {
        let msg = b"artifact bytes";
        for (alg, cases) in [
            (
                KeyAlgorithm::P256,
                [
                    (
                        SignatureScheme::EcdsaSha256,
                        HashAlg::Sha256,
                        &sig::ECDSA_P256_SHA256_ASN1,
                    ),
                    (
                        SignatureScheme::EcdsaSha384,
                        HashAlg::Sha384,
                        &sig::ECDSA_P256_SHA384_ASN1,
                    ),
                ],
            ),
            (
                KeyAlgorithm::P384,
                [
                    (
                        SignatureScheme::EcdsaSha384,
                        HashAlg::Sha384,
                        &sig::ECDSA_P384_SHA384_ASN1,
                    ),
                    (
                        SignatureScheme::EcdsaSha256,
                        HashAlg::Sha256,
                        &sig::ECDSA_P384_SHA256_ASN1,
                    ),
                ],
            ),
        ] {
            let k = key(alg);
            for (scheme, hash, verify) in cases {
                let s = k.sign_digest(scheme, &hash.digest(msg)).unwrap();
                UnparsedPublicKey::new(verify, bits(k.spki_der()))
                    .verify(msg, &s)
                    .unwrap_or_else(|_| panic!("{alg} {scheme:?} does not verify"));
                assert!(UnparsedPublicKey::new(verify, bits(k.spki_der()))
                    .verify(b"other", &s)
                    .is_err());
            }
        }
    }

    #[test]
    fn rsa_signs_digests_and_ed25519_refuses() {
        let k = key(KeyAlgorithm::Rsa3072);
        let msg = b"artifact bytes";
        for (scheme, hash, verify) in [
            (
                SignatureScheme::RsaPkcs1Sha256,
                HashAlg::Sha256,
                &sig::RSA_PKCS1_2048_8192_SHA256,
            ),
            (
                SignatureScheme::RsaPssSha512,
                HashAlg::Sha512,
                &sig::RSA_PSS_2048_8192_SHA512,
            ),
        ] {
            let s = k.sign_digest(scheme, &hash.digest(msg)).unwrap();
            UnparsedPublicKey::new(verify, bits(k.spki_der()))
                .verify(msg, &s)
                .unwrap();
        }
        assert!(k
            .sign_digest(SignatureScheme::RsaPkcs1Sha256, &[0u8; 48])
            .is_err());
        let ed = key(KeyAlgorithm::Ed25519);
        assert!(ed
            .sign_digest(SignatureScheme::Ed25519, &[0u8; 64])
            .is_err());
    }
}
