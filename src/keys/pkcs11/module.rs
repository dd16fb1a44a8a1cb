//! The process-wide registry of loaded PKCS#11 modules (`C_Initialize` runs once per module), and
//! the short forms of cryptoki's errors that every part of the store reports.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};

use crate::keys::KeyError;

// ---------------------------------------------------------------------------------------------
// Process-wide module registry.

/// A loaded, initialized PKCS#11 module, shared by every store in the process that names it.
pub(super) struct Module {
    pub(super) ctx: Pkcs11,
    pub(super) path: PathBuf,
    /// Per-process random salt for the PIN digests below.
    pub(super) salt: [u8; 16],
    /// Token (serial + label) -> salted SHA-256 of the PIN that logged this process in.
    pub(super) logins: Mutex<HashMap<String, [u8; 32]>>,
    /// Operations that create objects or log in take this exclusively, all others shared.
    /// SoftHSM 2.6's file object store is not safe when objects are created while other threads
    /// use the token (C_GenerateKeyPair fails with CKR_GENERAL_ERROR, or a concurrent
    /// C_GetAttributeValue reads CKA_SENSITIVE as false: seen in this crate's tests, and
    /// opendnssec/SoftHSMv2#573). Key generation is rare, so real HSMs lose nothing. Being
    /// exclusive also keeps two stores from both passing the duplicate-label check.
    pub(super) objects: RwLock<()>,
}

impl Module {
    pub(super) fn pin_digest(&self, pin: &str) -> [u8; 32] {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(self.salt);
        h.update(pin.as_bytes());
        h.finalize().into()
    }

    pub(super) fn logins(&self) -> MutexGuard<'_, HashMap<String, [u8; 32]>> {
        self.logins.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.objects.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.objects.write().unwrap_or_else(|p| p.into_inner())
    }
}

pub(super) fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<Module>>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = OnceLock::new();
    MODULES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Loads and initializes `path` once per process; later calls get the same context.
pub(super) fn load_module(path: &Path) -> Result<Arc<Module>, KeyError> {
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    // Held across loading and C_Initialize so two threads cannot initialize the same module.
    let mut modules = registry().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(m) = modules.get(&key) {
        return Ok(m.clone());
    }
    let ctx = Pkcs11::new(&key).map_err(|e| {
        KeyError::Pkcs11(format!(
            "cannot load PKCS#11 module {}: {}",
            path.display(),
            ck_msg(&e)
        ))
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(ck("initializing the PKCS#11 module", e)),
    }
    let mut salt = [0u8; 16];
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut salt);
    let module = Arc::new(Module {
        ctx,
        path: key.clone(),
        salt,
        logins: Mutex::new(HashMap::new()),
        objects: RwLock::new(()),
    });
    modules.insert(key, module.clone());
    Ok(module)
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// A short form of a cryptoki error: `C_Sign returned KeyHandleInvalid` rather than the
/// paragraph-long text of the spec that `RvError`'s `Display` gives.
pub(super) fn ck_msg(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, func) => format!("C_{func:?} returned {rv:?}"),
        other => other.to_string(),
    }
}

/// Maps a cryptoki error to `KeyError::Pkcs11` with what we were doing.
pub(super) fn ck(what: impl fmt::Display, e: CkError) -> KeyError {
    KeyError::Pkcs11(format!("{what}: {}", ck_msg(&e)))
}

/// Whether an error means the session itself is unusable (so it must not go back to the pool).
pub(super) fn session_is_broken(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::TokenNotPresent
                | RvError::CryptokiNotInitialized,
            _
        )
    )
}
