//! A key's OpenPGP certificate: made once on the server (the self-certification is the key
//! store's own signature), kept beside the key, and handed to clients, which need its public
//! key packet (fingerprint, creation time) to build signature packets for format `openpgp`.

use super::*;
use crate::formats::openpgp::{self as pgp, DigestSigner};
use crate::keys::Signer;
use crate::store::OpenPgpKeyRecord;

/// The key store as a [`DigestSigner`], for the certificate's self-signature.
struct StoreSigner<'a>(&'a dyn Signer);

impl DigestSigner for StoreSigner<'_> {
    fn sign_digest(&self, hash: HashAlg, digest: &[u8]) -> std::result::Result<Vec<u8>, String> {
        let scheme = openpgp_scheme(self.0.algorithm(), hash);
        let sig = match scheme {
            SignatureScheme::Ed25519 => self.0.sign(scheme, digest),
            _ => self.0.sign_digest(scheme, digest),
        }
        .map_err(|e| e.to_string())?;
        check_signature(scheme, self.0.spki_der(), digest, &sig).map_err(|e| e.to_string())?;
        Ok(sig)
    }
}

/// A certificate just made, or the one the key had.
#[derive(Debug, Clone)]
pub struct OpenPgpKey {
    pub record: OpenPgpKeyRecord,
    /// Whether this call made it.
    pub made: bool,
    /// What the operator should know (a tool that will refuse this key type).
    pub warning: Option<String>,
}

impl OpenPgpKey {
    /// The certificate armored ("PGP PUBLIC KEY BLOCK").
    pub fn armored(&self) -> Result<String> {
        armored_certificate(&self.record.certificate)
    }
}

fn armored_certificate(binary: &[u8]) -> Result<String> {
    let key = pgp::parse_certificate(binary)
        .map_err(|e| Error::Corrupt(format!("a stored OpenPGP certificate: {e}")))?;
    pgp::armored(&key).map_err(|e| Error::Corrupt(format!("a stored OpenPGP certificate: {e}")))
}

/// What rpm and others will make of a key type.
fn warning(alg: KeyAlgorithm) -> Option<String> {
    match alg {
        KeyAlgorithm::P256 | KeyAlgorithm::P384 => Some(
            "rpm 4.18 (Debian 12, and RHEL 9's rpm before 4.19) refuses ECDSA OpenPGP keys at \
             import: sign RPM packages with an RSA or Ed25519 key (apt, gpgv and skopeo take \
             ECDSA)"
                .into(),
        ),
        _ => None,
    }
}

impl Signing {
    /// Makes key `label`'s OpenPGP certificate with user ID `uid`, once: a second call with the
    /// same user ID returns the stored one; another user ID is a conflict (the fingerprint
    /// others trust never changes under them).
    pub fn make_openpgp_key(&self, label: &str, uid: &str, actor: &str) -> Result<OpenPgpKey> {
        let key = self
            .store
            .get_key(label)?
            .ok_or_else(|| Error::NotFound(format!("key '{label}'")))?;
        let alg: KeyAlgorithm = key
            .algorithm
            .parse()
            .map_err(|e: String| Error::Corrupt(format!("the stored key algorithm: {e}")))?;
        if let Some(record) = self.store.get_openpgp_key(label)? {
            if record.user_id != uid {
                return Err(Error::Conflict(format!(
                    "key '{label}' already has an OpenPGP certificate, for \"{}\" (fingerprint {}); \
                     it is made once and never replaced",
                    record.user_id, record.fingerprint
                )));
            }
            return Ok(OpenPgpKey {
                record,
                made: false,
                warning: warning(alg),
            });
        }
        let signer = self.keyring.publisher_signer(&key)?;
        let created = u32::try_from(self.clock.now()).unwrap_or(u32::MAX);
        let cert = pgp::certificate(
            alg,
            signer.spki_der(),
            created,
            uid,
            &StoreSigner(signer.as_ref()),
        )
        .map_err(|e| match e {
            pgp::OpenPgpError::Unsupported(m) => PolicyError::BadRequest(m).into(),
            other => Error::Internal(other.to_string()),
        })?;
        let record = OpenPgpKeyRecord {
            key_label: label.to_string(),
            fingerprint: pgp::fingerprint_hex(&cert.primary_key),
            user_id: uid.to_string(),
            certificate: pgp::binary(&cert).map_err(|e| Error::Internal(e.to_string()))?,
            created_at: i64::from(created),
        };
        self.store.insert_openpgp_key(&record, actor)?;
        Ok(OpenPgpKey {
            record,
            made: true,
            warning: warning(alg),
        })
    }

    /// The key's OpenPGP certificate; a key without one signs no `openpgp` format.
    pub(super) fn openpgp_key(&self, key: &KeyRecord) -> Result<OpenPgpKeyRecord> {
        self.store.get_openpgp_key(&key.label)?.ok_or_else(|| {
            Error::Conflict(format!(
                "key '{}' has no OpenPGP certificate: an officer makes it once with \
                 `hallmark key openpgp {} --uid \"Name <email>\"`; nothing was signed",
                key.label, key.label
            ))
        })
    }

    /// The `openpgp` member of a key's document: fingerprint, user ID and the armored
    /// certificate, or null.
    pub(super) fn openpgp_document(&self, label: &str) -> Result<serde_json::Value> {
        Ok(match self.store.get_openpgp_key(label)? {
            Some(r) => serde_json::json!({
                "fingerprint": r.fingerprint,
                "user_id": r.user_id,
                "created_at": crate::store::rfc3339(r.created_at),
                "certificate": armored_certificate(&r.certificate)?,
            }),
            None => serde_json::Value::Null,
        })
    }
}
