//! The keys every signing service shares, opened once: the key stores the configuration names,
//! the CAs loaded with their keys, and publisher signing keys. Services hold an
//! `Arc<Keyring>` instead of the whole engine, so the TSA, signing and revocation services stand
//! below the engine that wires them rather than beside it.
//!
//! Opening is what costs (finding a key's objects in a PKCS#11 token, decrypting a soft key):
//! every handle is kept after its first use. Every use of a kept handle still checks what it
//! signs for (a CA's certificate, a publisher key's certificate) where it is used.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::config::KeyStoreConfig;
use crate::error::{Error, Result};
use crate::issuer::CaHandle;
use crate::keys::{pkcs11::Pkcs11KeyStore, soft::SoftKeyStore, KeyStore, SecretSource, Signer};
use crate::policy::auth::Credential;
use crate::store::{CaRole, KeyRecord, Store};

/// Key labels in a store: CA keys and publisher keys never collide.
pub fn ca_key_label(ca: &str) -> String {
    format!("ca-{ca}")
}

/// The label a publisher key `label` has inside its key store.
pub fn publisher_key_label(label: &str) -> String {
    format!("key-{label}")
}

/// The key stores of one configuration and the keys opened in them.
pub struct Keyring {
    store: Arc<dyn Store>,
    /// `[key_stores.*]` of the configuration, and the directory relative paths start from.
    key_stores: BTreeMap<String, KeyStoreConfig>,
    base_dir: PathBuf,
    stores: Mutex<HashMap<String, Arc<dyn KeyStore>>>,
    cas: Mutex<HashMap<String, Arc<CaHandle>>>,
    /// Publisher signing keys by key store and label.
    publisher_signers: Mutex<HashMap<(String, String), Arc<dyn Signer>>>,
}

impl Keyring {
    pub fn new(
        store: Arc<dyn Store>,
        key_stores: BTreeMap<String, KeyStoreConfig>,
        base_dir: PathBuf,
    ) -> Keyring {
        Keyring {
            store,
            key_stores,
            base_dir,
            stores: Mutex::new(HashMap::new()),
            cas: Mutex::new(HashMap::new()),
            publisher_signers: Mutex::new(HashMap::new()),
        }
    }

    fn secret_source(&self, env: &Option<String>, file: &Option<PathBuf>) -> SecretSource {
        crate::config::secret_source_in(&self.base_dir, env, file)
    }

    /// Opens (once) the named key store.
    pub fn key_store(&self, name: &str) -> Result<Arc<dyn KeyStore>> {
        if let Some(ks) = self.stores.lock().ok().and_then(|m| m.get(name).cloned()) {
            return Ok(ks);
        }
        let cfg = self
            .key_stores
            .get(name)
            .ok_or_else(|| Error::Internal(format!("key store '{name}' is not in the config")))?;
        let ks: Arc<dyn KeyStore> = match cfg {
            KeyStoreConfig::Soft {
                dir,
                passphrase_env,
                passphrase_file,
            } => Arc::new(SoftKeyStore::new(
                crate::config::resolve_in(&self.base_dir, dir),
                self.secret_source(passphrase_env, passphrase_file),
            )),
            KeyStoreConfig::Pkcs11 {
                module,
                token_label,
                pin_env,
                pin_file,
                ..
            } => Arc::new(Pkcs11KeyStore::open(
                module,
                token_label,
                &self.secret_source(pin_env, pin_file),
            )?),
        };
        if let Ok(mut m) = self.stores.lock() {
            m.insert(name.to_string(), ks.clone());
        }
        Ok(ks)
    }

    /// Loads (once) a CA with its key, ready to sign.
    pub fn ca(&self, name: &str) -> Result<Arc<CaHandle>> {
        if let Some(ca) = self.cas.lock().ok().and_then(|m| m.get(name).cloned()) {
            return Ok(ca);
        }
        let record = self
            .store
            .get_ca(name)?
            .ok_or_else(|| Error::NotFound(format!("CA '{name}'")))?;
        let signer = self.key_store(&record.key_store)?.open(&record.key_label)?;
        let handle = Arc::new(CaHandle::new(record, signer)?);
        if let Ok(mut m) = self.cas.lock() {
            m.insert(name.to_string(), handle.clone());
        }
        Ok(handle)
    }

    /// The chain above a CA's certificates: that CA, then its parents, root excluded.
    pub fn chain(&self, ca: &str) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        let mut next = Some(ca.to_string());
        while let Some(name) = next {
            let rec = self
                .store
                .get_ca(&name)?
                .ok_or_else(|| Error::NotFound(format!("CA '{name}'")))?;
            if rec.role == CaRole::Root {
                break;
            }
            if let Some(der) = rec.cert_der {
                out.push(der);
            }
            next = rec.parent;
            if out.len() > 8 {
                return Err(Error::Corrupt("the CA records' parents form a loop".into()));
            }
        }
        Ok(out)
    }

    /// The signer of a publisher key, opened once and kept.
    pub fn publisher_signer(&self, key: &KeyRecord) -> Result<Arc<dyn Signer>> {
        let id = (key.key_store.clone(), key.label.clone());
        if let Some(s) = self
            .publisher_signers
            .lock()
            .ok()
            .and_then(|m| m.get(&id).cloned())
        {
            return Ok(s);
        }
        let signer = self
            .key_store(&key.key_store)?
            .open(&publisher_key_label(&key.label))?;
        if let Ok(mut m) = self.publisher_signers.lock() {
            m.insert(id, signer.clone());
        }
        Ok(signer)
    }

    /// A publisher key's record.
    pub fn key(&self, label: &str) -> Result<KeyRecord> {
        self.store
            .get_key(label)?
            .ok_or_else(|| Error::NotFound(format!("key '{label}'")))
    }

    /// The keys a credential may use: its publisher's, or every key for an officer.
    pub fn keys_for(&self, cred: &Credential) -> Result<Vec<KeyRecord>> {
        Ok(self
            .store
            .list_keys(None)?
            .into_iter()
            .filter(|k| cred.may_act_for(&k.publisher).is_ok())
            .collect())
    }

    /// A key the credential may use: another publisher's key is answered exactly as a key that
    /// does not exist, so a label never reveals who owns it.
    pub fn key_for(&self, label: &str, cred: &Credential) -> Result<KeyRecord> {
        match self.store.get_key(label)? {
            Some(k) if cred.may_act_for(&k.publisher).is_ok() => Ok(k),
            _ => Err(Error::NotFound(format!("key '{label}'"))),
        }
    }
}
