//! Secrets the database must hold (ACME EAB HMAC keys: verifying an HMAC needs the key) are
//! sealed under a key that only the key store can make, so a copy of `hallmark.db` (or a
//! backup) binds no ACME account.
//!
//! The sealing key is derived from a signature: the key store's RSA key [`SEAL_KEY`] (made on
//! first use, never exported) signs a fixed label with RSASSA-PKCS1-v1_5, which is deterministic,
//! and SHA-256 of that signature is the AES-256-GCM key. Any key store can do this through the one
//! signer trait (no symmetric-key support needed from the HSM), and the derivation is checked to
//! repeat before anything is sealed. A sealed value is `hms1 ‖ nonce ‖ ciphertext ‖ tag`, with the
//! record's name (the EAB kid) as additional data, so a sealed value moved to another record does
//! not open.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use zeroize::Zeroizing;

use super::Hallmark;
use crate::error::{Error, Result};
use crate::keys::{KeyAlgorithm, KeyError, SignatureScheme};

/// The key-store label of the key the sealing key is derived from.
pub const SEAL_KEY: &str = "hallmark-seal";
/// What the sealing key's signature is over.
const LABEL: &[u8] = b"hallmark: key for sealing secrets at rest, v1";
pub use crate::store::sealed::is_sealed;
use crate::store::sealed::MAGIC;
// The store's picture of a sealed value is the one written here.
const _: () = assert!(crate::store::sealed::NONCE_LEN == NONCE_LEN);

impl Hallmark {
    /// The AES-256 sealing key (derived once per process).
    fn seal_key(&self) -> Result<LessSafeKey> {
        let mut cached = self
            .seal_key
            .lock()
            .map_err(|_| Error::Internal("sealing key lock poisoned".into()))?;
        if cached.is_none() {
            let ks = self.key_store(&self.config.keys.default_store)?;
            let signer = match ks.open(SEAL_KEY) {
                Ok(s) => s,
                Err(KeyError::NotFound(_)) => ks.generate(SEAL_KEY, KeyAlgorithm::Rsa3072)?,
                Err(e) => return Err(e.into()),
            };
            let first = signer.sign(SignatureScheme::RsaPkcs1Sha256, LABEL)?;
            let again = signer.sign(SignatureScheme::RsaPkcs1Sha256, LABEL)?;
            if first != again {
                return Err(Error::Internal(format!(
                    "the key store's '{SEAL_KEY}' key does not sign deterministically; secrets cannot be sealed with it"
                )));
            }
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &first);
            let mut k = Zeroizing::new([0u8; 32]);
            k.copy_from_slice(digest.as_ref());
            *cached = Some(k);
        }
        let k = cached
            .as_ref()
            .ok_or_else(|| Error::Internal("no sealing key".into()))?;
        let unbound = UnboundKey::new(&AES_256_GCM, k.as_ref())
            .map_err(|_| Error::Internal("the sealing key is not an AES-256 key".into()))?;
        Ok(LessSafeKey::new(unbound))
    }

    /// Seals `secret` for the record named `name`.
    pub fn seal(&self, name: &str, secret: &[u8]) -> Result<Vec<u8>> {
        use rand::RngCore;
        let key = self.seal_key()?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let mut body = secret.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(name.as_bytes()),
            &mut body,
        )
        .map_err(|_| Error::Internal("sealing failed".into()))?;
        Ok([MAGIC, &nonce[..], &body].concat())
    }

    /// Opens a value sealed for `name`; a value stored in clear (before sealing) is returned as
    /// it is.
    pub fn unseal(&self, name: &str, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if !is_sealed(stored) {
            return Ok(Zeroizing::new(stored.to_vec()));
        }
        let key = self.seal_key()?;
        let rest = &stored[MAGIC.len()..];
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| Error::Corrupt("a sealed value's nonce is malformed".into()))?;
        let mut body = Zeroizing::new(sealed.to_vec());
        let n = key
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut body)
            .map_err(|_| {
                Error::Corrupt(format!(
                    "the sealed secret of '{name}' does not open with this key store's '{SEAL_KEY}' key"
                ))
            })?
            .len();
        body.truncate(n);
        Ok(body)
    }

    /// Seals every EAB key an older hallmark stored in clear; returns how many. Run at start.
    pub fn seal_clear_secrets(&self) -> Result<usize> {
        let clear = self.store.eab_keys_in_clear()?;
        for (kid, key) in &clear {
            let sealed = self.seal(kid, key)?;
            self.store.replace_eab_hmac(kid, key, &sealed)?;
        }
        Ok(clear.len())
    }
}
