//! PKCS#11 key store: keys generated and used inside an HSM (SoftHSM2 in tests) through cryptoki.
//!
//! Why it is built the way it is:
//!
//! * **One `Pkcs11` context per module, process-wide.** `C_Initialize` may run once per process
//!   and module; a second call fails with `CKR_CRYPTOKI_ALREADY_INITIALIZED`. Every store that names
//!   the same module (after `canonicalize`) shares one context from a static registry, and the
//!   context is never finalized (other stores or keys may still use it). If something else in the
//!   process already initialized the module, that error is tolerated.
//! * **Tokens are found by label, not slot number.** SoftHSM moves a token to a new slot when it is
//!   initialized, and real HSMs renumber slots too; the label is what the operator configured.
//! * **Log in once per token, keep one session open for ever.** PKCS#11 login state belongs to the
//!   application and token, not to a session: every session sees it, and it ends when the *last*
//!   session on the token closes. So the store holds an anchor session for its whole life, logs in
//!   on it, and treats `CKR_USER_ALREADY_LOGGED_IN` as success. Because that return code comes
//!   before the token looks at the PIN, a second store with a wrong PIN would slip through; the
//!   registry therefore remembers a salted SHA-256 of the PIN that logged each token in and
//!   refuses a different one (C_Login and that record happen under one lock, so concurrent opens
//!   cannot race past the check).
//! * **A small session pool.** A cryptoki `Session` is `Send` but not `Sync`, and a session can run
//!   only one operation at a time. Each operation takes a session from a `Mutex<Vec<Session>>`
//!   (or opens a new one), and gives it back afterwards; at most `POOL_IDLE_MAX` (8) idle sessions
//!   are kept. Sessions that the token says are gone are dropped instead of returned.
//! * **Creating objects is exclusive.** SoftHSM 2.6's file object store misbehaves when an object
//!   is created while other threads use the token (failed `C_GenerateKeyPair`, attributes read
//!   wrongly). A per-module `RwLock` lets signing and reading run in parallel but makes key
//!   generation and login run alone; on a real HSM this costs nothing that matters, since keys
//!   are generated rarely.
//! * **Hashing in software for ECDSA.** SoftHSM has no `CKM_ECDSA_SHA256`; the message is hashed
//!   here and the digest signed with `CKM_ECDSA`, whose raw `r || s` is turned into DER. Only the
//!   digest crosses into the token; the private key never leaves it (`CKA_SENSITIVE`, not
//!   `CKA_EXTRACTABLE`). RSA uses the token's hash-and-sign mechanisms (PKCS#1 v1.5 and PSS with
//!   salt length = hash length); Ed25519 uses `CKM_EDDSA` (pure).
//! * **The SubjectPublicKeyInfo is built from the public key object** (`CKA_EC_POINT`,
//!   `CKA_MODULUS`/`CKA_PUBLIC_EXPONENT`), since PKCS#11 2.40 tokens have no `CKA_PUBLIC_KEY_INFO`.
//! * **Every cryptoki failure becomes `KeyError::Pkcs11`** naming the operation and the return
//!   code; nothing from the HSM is unwrapped.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use super::{
    ecdsa_raw_to_der, HashAlg, KeyAlgorithm, KeyError, KeyProtection, KeyStore, SecretSource,
    SignatureScheme, Signer,
};

/// How many idle sessions a token keeps in its pool (beyond the anchor session).
const POOL_IDLE_MAX: usize = 8;

/// Length of the random `CKA_ID` shared by the two halves of a key pair.
const KEY_ID_LEN: usize = 16;

// DER pieces of the SubjectPublicKeyInfo encodings.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_RSA_ENCRYPTION: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
const DER_NULL: &[u8] = &[0x05, 0x00];
const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// `PrintableString "edwards25519"`: the curve name form of `CKA_EC_PARAMS` SoftHSM 2.6 accepts.
const EC_PARAMS_EDWARDS25519: &[u8] = b"\x13\x0cedwards25519";

const RSA_PUBLIC_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];

// ---------------------------------------------------------------------------------------------
// Process-wide module registry.

/// A loaded, initialized PKCS#11 module, shared by every store in the process that names it.
struct Module {
    ctx: Pkcs11,
    path: PathBuf,
    /// Per-process random salt for the PIN digests below.
    salt: [u8; 16],
    /// Token (serial + label) -> salted SHA-256 of the PIN that logged this process in.
    logins: Mutex<HashMap<String, [u8; 32]>>,
    /// Operations that create objects or log in take this exclusively, all others shared.
    /// SoftHSM 2.6's file object store is not safe when objects are created while other threads
    /// use the token (C_GenerateKeyPair fails with CKR_GENERAL_ERROR, or a concurrent
    /// C_GetAttributeValue reads CKA_SENSITIVE as false: seen in this crate's tests, and
    /// opendnssec/SoftHSMv2#573). Key generation is rare, so real HSMs lose nothing. Being
    /// exclusive also keeps two stores from both passing the duplicate-label check.
    objects: RwLock<()>,
}

impl Module {
    fn pin_digest(&self, pin: &str) -> [u8; 32] {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(self.salt);
        h.update(pin.as_bytes());
        h.finalize().into()
    }

    fn logins(&self) -> MutexGuard<'_, HashMap<String, [u8; 32]>> {
        self.logins.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.objects.read().unwrap_or_else(|p| p.into_inner())
    }

    fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.objects.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<Module>>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = OnceLock::new();
    MODULES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Loads and initializes `path` once per process; later calls get the same context.
fn load_module(path: &Path) -> Result<Arc<Module>, KeyError> {
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
fn ck_msg(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, func) => format!("C_{func:?} returned {rv:?}"),
        other => other.to_string(),
    }
}

/// Maps a cryptoki error to `KeyError::Pkcs11` with what we were doing.
fn ck(what: impl fmt::Display, e: CkError) -> KeyError {
    KeyError::Pkcs11(format!("{what}: {}", ck_msg(&e)))
}

/// Whether an error means the session itself is unusable (so it must not go back to the pool).
fn session_is_broken(e: &CkError) -> bool {
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

// ---------------------------------------------------------------------------------------------
// Token: the shared state behind a store and its keys.

struct Token {
    module: Arc<Module>,
    slot: Slot,
    label: String,
    /// Never used for operations: it exists so the login outlives idle periods in the pool.
    anchor: Mutex<Session>,
    pool: Mutex<Vec<Session>>,
}

impl Token {
    fn pool(&self) -> MutexGuard<'_, Vec<Session>> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A logged-in session for one operation that only reads or signs; it goes back to the pool
    /// when dropped.
    fn session(&self) -> Result<PooledSession<'_>, KeyError> {
        let guard = Guard::Shared {
            _held: self.module.shared(),
        };
        self.session_with(guard)
    }

    /// A session for an operation that creates or destroys objects (see [`Module::objects`]).
    fn session_exclusive(&self) -> Result<PooledSession<'_>, KeyError> {
        let guard = Guard::Exclusive {
            _held: self.module.exclusive(),
        };
        self.session_with(guard)
    }

    fn session_with<'a>(&'a self, guard: Guard<'a>) -> Result<PooledSession<'a>, KeyError> {
        let pooled = self.pool().pop();
        let session = match pooled {
            Some(s) => s,
            None => self.module.ctx.open_rw_session(self.slot).map_err(|e| {
                ck(
                    format_args!("opening a session on token '{}'", self.label),
                    e,
                )
            })?,
        };
        Ok(PooledSession {
            token: self,
            session: Some(session),
            broken: false,
            _guard: guard,
        })
    }

    fn err(&self, what: impl fmt::Display, e: CkError) -> KeyError {
        ck(format_args!("{what} (token '{}')", self.label), e)
    }
}

/// Which side of [`Module::objects`] an operation holds.
enum Guard<'a> {
    Shared { _held: RwLockReadGuard<'a, ()> },
    Exclusive { _held: RwLockWriteGuard<'a, ()> },
}

struct PooledSession<'a> {
    token: &'a Token,
    session: Option<Session>,
    broken: bool,
    /// Released after the session is back in the pool (fields drop after `Drop::drop`).
    _guard: Guard<'a>,
}

impl PooledSession<'_> {
    fn get(&self) -> &Session {
        // `session` is only taken in `drop`.
        self.session.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// Records a failed call: a session the token no longer knows is discarded, not pooled.
    fn check<T>(&mut self, r: Result<T, CkError>) -> Result<T, CkError> {
        if let Err(e) = &r {
            if session_is_broken(e) {
                self.broken = true;
            }
        }
        r
    }
}

impl Drop for PooledSession<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            if !self.broken {
                let mut pool = self.token.pool();
                if pool.len() < POOL_IDLE_MAX {
                    pool.push(s);
                    return;
                }
            }
            // Closed here, outside the pool lock; the anchor session keeps the login alive.
            drop(s);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The store.

/// Keys in one token of a PKCS#11 module.
pub struct Pkcs11KeyStore {
    token: Arc<Token>,
    cache: Mutex<HashMap<String, Arc<Pkcs11Key>>>,
}

impl fmt::Debug for Pkcs11KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11KeyStore")
            .field("module", &self.token.module.path)
            .field("token", &self.token.label)
            .field("slot", &self.token.slot.id())
            .finish_non_exhaustive()
    }
}

impl Pkcs11KeyStore {
    /// Loads `module` (once per process), finds the token labelled `token_label` and logs in as
    /// the user with the PIN read from `pin`.
    pub fn open(module: &Path, token_label: &str, pin: &SecretSource) -> Result<Self, KeyError> {
        if token_label.is_empty() {
            return Err(KeyError::Pkcs11("the token label is empty".into()));
        }
        let module = load_module(module)?;
        let ctx = &module.ctx;

        let slots = ctx
            .get_slots_with_token()
            .map_err(|e| ck("listing slots", e))?;
        let mut seen = Vec::new();
        let mut found: Vec<(Slot, String)> = Vec::new();
        for slot in slots {
            let info = ctx
                .get_token_info(slot)
                .map_err(|e| ck(format_args!("reading token info of slot {}", slot.id()), e))?;
            let label = info.label().trim_end().to_string();
            if label == token_label {
                found.push((slot, info.serial_number().trim_end().to_string()));
            } else if info.token_initialized() {
                seen.push(format!("'{label}'"));
            }
        }
        let (slot, serial) = match found.len() {
            1 => found.remove(0),
            0 => {
                // SoftHSM2 reads its tokens from the config SOFTHSM2_CONF names, or from
                // /etc/softhsm/softhsm2.conf without it: the usual cause of a missing token.
                let softhsm = module
                    .path
                    .to_string_lossy()
                    .to_ascii_lowercase()
                    .contains("softhsm");
                let hint = match (softhsm, std::env::var_os("SOFTHSM2_CONF")) {
                    (true, None) => "; SOFTHSM2_CONF is not set, so SoftHSM2 read its default config (/etc/softhsm/softhsm2.conf): set SOFTHSM2_CONF to the config whose tokendir holds the token".to_string(),
                    (true, Some(c)) => format!(
                        "; SoftHSM2 read the tokens of {} (SOFTHSM2_CONF): check its directories.tokendir",
                        std::path::Path::new(&c).display()
                    ),
                    (false, _) => String::new(),
                };
                return Err(KeyError::Pkcs11(format!(
                    "no token labelled '{token_label}' in {} (tokens present: {}){hint}",
                    module.path.display(),
                    if seen.is_empty() {
                        "none".to_string()
                    } else {
                        seen.join(", ")
                    }
                )));
            }
            n => {
                return Err(KeyError::Pkcs11(format!(
                    "{n} tokens are labelled '{token_label}' in {}: labels must be unique",
                    module.path.display()
                )))
            }
        };

        let pin = pin.read()?;
        if pin.is_empty() {
            return Err(KeyError::Secret(format!(
                "the PIN for token '{token_label}' is empty"
            )));
        }
        let anchor = ctx.open_rw_session(slot).map_err(|e| {
            ck(
                format_args!("opening a session on token '{token_label}'"),
                e,
            )
        })?;
        let digest = module.pin_digest(&pin);
        let login_key = format!("{serial}\u{0}{token_label}");
        let auth = AuthPin::from(pin.as_str());
        // The registry lock is held across C_Login and the record, so a concurrent open cannot see
        // "already logged in" before the PIN that logged in is on record.
        let exclusive = module.exclusive();
        let mut logins = module.logins();
        match anchor.login(UserType::User, Some(&auth)) {
            Ok(()) => {
                logins.insert(login_key, digest);
            }
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                // The token does not look at the PIN in this case: compare with the one that did
                // log in. No record means a login this registry did not make: fail closed.
                match logins.get(&login_key) {
                    Some(known) if constant_time_eq(known, &digest) => {}
                    Some(_) => {
                        return Err(KeyError::Pkcs11(format!(
                            "login to token '{token_label}' failed: the PIN is incorrect"
                        )))
                    }
                    None => {
                        return Err(KeyError::Pkcs11(format!(
                            "token '{token_label}' is already logged in by another part of this \
                             process, so the PIN cannot be checked"
                        )))
                    }
                }
            }
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
                return Err(KeyError::Pkcs11(format!(
                    "login to token '{token_label}' failed: the PIN is incorrect (CKR_PIN_INCORRECT)"
                )))
            }
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                return Err(KeyError::Pkcs11(format!(
                    "login to token '{token_label}' failed: the user PIN is locked (CKR_PIN_LOCKED)"
                )))
            }
            Err(e) => return Err(ck(format_args!("login to token '{token_label}'"), e)),
        }
        drop((logins, exclusive));

        Ok(Pkcs11KeyStore {
            token: Arc::new(Token {
                module: module.clone(),
                slot,
                label: token_label.to_string(),
                anchor: Mutex::new(anchor),
                pool: Mutex::new(Vec::new()),
            }),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The label of the token this store uses.
    pub fn token_label(&self) -> &str {
        &self.token.label
    }

    fn cached(&self, label: &str) -> Option<Arc<Pkcs11Key>> {
        self.cache.lock().ok().and_then(|c| c.get(label).cloned())
    }

    fn cache_put(&self, label: &str, key: Arc<Pkcs11Key>) {
        if let Ok(mut c) = self.cache.lock() {
            c.insert(label.to_string(), key);
        }
    }

    /// Handles of objects of `class` labelled `label`.
    fn find(
        &self,
        s: &mut PooledSession<'_>,
        class: ObjectClass,
        label: &str,
    ) -> Result<Vec<ObjectHandle>, KeyError> {
        let template = [
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let r = s.get().find_objects(&template);
        s.check(r).map_err(|e| {
            self.token
                .err(format_args!("searching for key '{label}'"), e)
        })
    }

    /// The one private key labelled `label`.
    fn find_private(
        &self,
        s: &mut PooledSession<'_>,
        label: &str,
    ) -> Result<ObjectHandle, KeyError> {
        let found = self.find(s, ObjectClass::PRIVATE_KEY, label)?;
        match found.as_slice() {
            [] => Err(KeyError::NotFound(label.to_string())),
            [one] => Ok(*one),
            more => Err(KeyError::Pkcs11(format!(
                "{} private keys are labelled '{label}' in token '{}'",
                more.len(),
                self.token.label
            ))),
        }
    }

    /// Checks that the token offers `needed` mechanisms for `alg`.
    fn require_mechanisms(
        &self,
        alg: KeyAlgorithm,
        needed: &[MechanismType],
    ) -> Result<(), KeyError> {
        let list = self
            .token
            .module
            .ctx
            .get_mechanism_list(self.token.slot)
            .map_err(|e| self.token.err("listing mechanisms", e))?;
        let missing: Vec<String> = needed
            .iter()
            .filter(|m| !list.contains(m))
            .map(|m| m.to_string())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(KeyError::Unsupported(format!(
                "token '{}' cannot do {alg} keys: it lacks {}",
                self.token.label,
                missing.join(", ")
            )))
        }
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The generation mechanism, extra public-key attributes, and the mechanisms signing needs.
fn generation_params(
    alg: KeyAlgorithm,
) -> (Mechanism<'static>, Vec<Attribute>, Vec<MechanismType>) {
    match alg {
        KeyAlgorithm::P256 | KeyAlgorithm::P384 => {
            let oid = if alg == KeyAlgorithm::P256 {
                OID_P256
            } else {
                OID_P384
            };
            (
                Mechanism::EccKeyPairGen,
                vec![Attribute::EcParams(oid.to_vec())],
                vec![MechanismType::ECC_KEY_PAIR_GEN, MechanismType::ECDSA],
            )
        }
        KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            // A literal, so that it takes CK_ULONG's width on every platform.
            let bits: cryptoki::types::Ulong = if alg == KeyAlgorithm::Rsa3072 {
                3072.into()
            } else {
                4096.into()
            };
            (
                Mechanism::RsaPkcsKeyPairGen,
                vec![
                    Attribute::ModulusBits(bits),
                    Attribute::PublicExponent(RSA_PUBLIC_EXPONENT.to_vec()),
                ],
                vec![
                    MechanismType::RSA_PKCS_KEY_PAIR_GEN,
                    MechanismType::SHA256_RSA_PKCS,
                    MechanismType::SHA256_RSA_PKCS_PSS,
                ],
            )
        }
        KeyAlgorithm::Ed25519 => (
            Mechanism::EccEdwardsKeyPairGen,
            vec![Attribute::EcParams(EC_PARAMS_EDWARDS25519.to_vec())],
            vec![
                MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
                MechanismType::EDDSA,
            ],
        ),
    }
}

impl KeyStore for Pkcs11KeyStore {
    fn kind(&self) -> &'static str {
        "pkcs11"
    }

    fn generate(&self, label: &str, alg: KeyAlgorithm) -> Result<Arc<dyn Signer>, KeyError> {
        super::validate_label(label)?;
        let (mechanism, pub_extra, needed) = generation_params(alg);
        self.require_mechanisms(alg, &needed)?;

        let mut s = self.token.session_exclusive()?;
        if !self
            .find(&mut s, ObjectClass::PRIVATE_KEY, label)?
            .is_empty()
            || !self
                .find(&mut s, ObjectClass::PUBLIC_KEY, label)?
                .is_empty()
        {
            return Err(KeyError::AlreadyExists(label.to_string()));
        }

        let mut id = vec![0u8; KEY_ID_LEN];
        rand::Rng::fill(&mut rand::rngs::OsRng, id.as_mut_slice());
        let name = label.as_bytes().to_vec();
        let mut pub_template = vec![
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::Label(name.clone()),
            Attribute::Id(id.clone()),
        ];
        pub_template.extend(pub_extra);
        let priv_template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(name),
            Attribute::Id(id),
        ];
        let r = s
            .get()
            .generate_key_pair(&mechanism, &pub_template, &priv_template);
        let (pub_handle, priv_handle) = match s.check(r) {
            Ok(handles) => handles,
            Err(CkError::Pkcs11(
                rv @ (RvError::MechanismInvalid
                | RvError::MechanismParamInvalid
                | RvError::CurveNotSupported
                | RvError::DomainParamsInvalid
                | RvError::AttributeValueInvalid
                | RvError::TemplateInconsistent
                | RvError::TemplateIncomplete
                | RvError::KeySizeRange),
                _,
            )) => {
                return Err(KeyError::Unsupported(format!(
                    "token '{}' refused to generate a {alg} key ({rv:?})",
                    self.token.label
                )))
            }
            Err(e) => {
                return Err(self
                    .token
                    .err(format_args!("generating {alg} key '{label}'"), e))
            }
        };

        match load_key(&self.token, &mut s, priv_handle, label) {
            Ok(key) if key.alg == alg => {
                drop(s);
                let key = Arc::new(key);
                self.cache_put(label, key.clone());
                Ok(key)
            }
            outcome => {
                // Do not leave a half-usable key pair behind under this label.
                for h in [priv_handle, pub_handle] {
                    let _ = s.get().destroy_object(h);
                }
                match outcome {
                    Ok(key) => Err(KeyError::Pkcs11(format!(
                        "token '{}' generated a {} key when asked for {alg}",
                        self.token.label, key.alg
                    ))),
                    Err(e) => Err(e),
                }
            }
        }
    }

    fn open(&self, label: &str) -> Result<Arc<dyn Signer>, KeyError> {
        super::validate_label(label)?;
        if let Some(k) = self.cached(label) {
            return Ok(k);
        }
        let mut s = self.token.session()?;
        let handle = self.find_private(&mut s, label)?;
        let key = Arc::new(load_key(&self.token, &mut s, handle, label)?);
        drop(s);
        self.cache_put(label, key.clone());
        Ok(key)
    }

    fn protection(&self, label: &str) -> Result<KeyProtection, KeyError> {
        super::validate_label(label)?;
        let mut s = self.token.session()?;
        let handle = self.find_private(&mut s, label)?;
        let types = [
            AttributeType::Sensitive,
            AttributeType::Extractable,
            AttributeType::AlwaysSensitive,
            AttributeType::NeverExtractable,
        ];
        let r = s.get().get_attributes(handle, &types);
        let attrs = s.check(r).map_err(|e| {
            self.token
                .err(format_args!("reading the protection of key '{label}'"), e)
        })?;
        let flag = |t: AttributeType| {
            attrs
                .iter()
                .find_map(|a| match a {
                    Attribute::Sensitive(v) if t == AttributeType::Sensitive => Some(*v),
                    Attribute::Extractable(v) if t == AttributeType::Extractable => Some(*v),
                    Attribute::AlwaysSensitive(v) if t == AttributeType::AlwaysSensitive => {
                        Some(*v)
                    }
                    Attribute::NeverExtractable(v) if t == AttributeType::NeverExtractable => {
                        Some(*v)
                    }
                    _ => None,
                })
                .ok_or_else(|| {
                    KeyError::Pkcs11(format!(
                        "token '{}' did not return {t:?} for key '{label}'",
                        self.token.label
                    ))
                })
        };
        Ok(KeyProtection {
            sensitive: flag(AttributeType::Sensitive)?,
            extractable: flag(AttributeType::Extractable)?,
            always_sensitive: flag(AttributeType::AlwaysSensitive)?,
            never_extractable: flag(AttributeType::NeverExtractable)?,
        })
    }

    fn check(&self) -> Result<String, KeyError> {
        let mut s = self.token.session()?;
        let r = s.get().get_session_info();
        let info = s
            .check(r)
            .map_err(|e| self.token.err("reading session info", e))?;
        if !matches!(
            info.session_state(),
            SessionState::RwUser | SessionState::RoUser
        ) {
            return Err(KeyError::Pkcs11(format!(
                "token '{}' is not logged in (session state {:?})",
                self.token.label,
                info.session_state()
            )));
        }
        drop(s);
        let token = self
            .token
            .module
            .ctx
            .get_token_info(self.token.slot)
            .map_err(|e| self.token.err("reading token info", e))?;
        // Touch the anchor too: it must still be alive for the login to last.
        let anchor = self.token.anchor.lock().unwrap_or_else(|p| p.into_inner());
        anchor
            .get_session_info()
            .map_err(|e| self.token.err("checking the login session", e))?;
        Ok(format!(
            "pkcs11 token '{}' in slot {} ({} {}), logged in",
            self.token.label,
            self.token.slot.id(),
            token.manufacturer_id().trim_end(),
            token.model().trim_end()
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Reading a key pair and building its SubjectPublicKeyInfo.

fn bytes_of(attrs: &[Attribute], t: AttributeType) -> Option<&[u8]> {
    attrs.iter().find_map(|a| match a {
        Attribute::EcParams(v) if t == AttributeType::EcParams => Some(v.as_slice()),
        Attribute::EcPoint(v) if t == AttributeType::EcPoint => Some(v.as_slice()),
        Attribute::Modulus(v) if t == AttributeType::Modulus => Some(v.as_slice()),
        Attribute::PublicExponent(v) if t == AttributeType::PublicExponent => Some(v.as_slice()),
        Attribute::Id(v) if t == AttributeType::Id => Some(v.as_slice()),
        _ => None,
    })
}

/// Reads the key pair whose private half is `handle` and builds the signer.
fn load_key(
    token: &Arc<Token>,
    s: &mut PooledSession<'_>,
    handle: ObjectHandle,
    label: &str,
) -> Result<Pkcs11Key, KeyError> {
    let r = s
        .get()
        .get_attributes(handle, &[AttributeType::KeyType, AttributeType::Id]);
    let attrs = s
        .check(r)
        .map_err(|e| token.err(format_args!("reading private key '{label}'"), e))?;
    let key_type = attrs
        .iter()
        .find_map(|a| match a {
            Attribute::KeyType(k) => Some(*k),
            _ => None,
        })
        .ok_or_else(|| {
            KeyError::Pkcs11(format!(
                "token '{}' did not return the key type of '{label}'",
                token.label
            ))
        })?;
    let id = bytes_of(&attrs, AttributeType::Id)
        .unwrap_or_default()
        .to_vec();

    // The public half: same CKA_ID (and key type); by label when the key has no ID.
    let mut template = vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(key_type),
    ];
    if id.is_empty() {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    } else {
        template.push(Attribute::Id(id));
    }
    let r = s.get().find_objects(&template);
    let found = s
        .check(r)
        .map_err(|e| token.err(format_args!("searching for the public key of '{label}'"), e))?;
    let public = match found.as_slice() {
        [one] => *one,
        [] => {
            return Err(KeyError::Pkcs11(format!(
                "token '{}' has no public key object for '{label}' (needed for its \
                 SubjectPublicKeyInfo)",
                token.label
            )))
        }
        more => {
            return Err(KeyError::Pkcs11(format!(
                "token '{}' has {} public key objects matching '{label}'",
                token.label,
                more.len()
            )))
        }
    };

    let wanted: &[AttributeType] = if key_type == KeyType::RSA {
        &[AttributeType::Modulus, AttributeType::PublicExponent]
    } else {
        &[AttributeType::EcParams, AttributeType::EcPoint]
    };
    let r = s.get().get_attributes(public, wanted);
    let attrs = s
        .check(r)
        .map_err(|e| token.err(format_args!("reading the public key of '{label}'"), e))?;
    let need = |t: AttributeType| {
        bytes_of(&attrs, t).ok_or_else(|| {
            KeyError::Pkcs11(format!(
                "token '{}' did not return {t:?} of public key '{label}'",
                token.label
            ))
        })
    };
    let unsupported = |what: String| {
        KeyError::Unsupported(format!(
            "key '{label}' in token '{}' is {what}, which hallmark does not use",
            token.label
        ))
    };

    let (alg, spki) = if key_type == KeyType::RSA {
        let modulus = strip_zeros(need(AttributeType::Modulus)?);
        let exponent = need(AttributeType::PublicExponent)?;
        let bits = modulus
            .first()
            .map(|b| modulus.len() * 8 - b.leading_zeros() as usize)
            .unwrap_or(0);
        let alg = match bits {
            3072 => KeyAlgorithm::Rsa3072,
            4096 => KeyAlgorithm::Rsa4096,
            n => return Err(unsupported(format!("a {n}-bit RSA key"))),
        };
        (alg, rsa_spki(modulus, exponent))
    } else if key_type == KeyType::EC {
        let params = need(AttributeType::EcParams)?;
        let (alg, curve, point_len) = if params == OID_P256 {
            (KeyAlgorithm::P256, OID_P256, 65)
        } else if params == OID_P384 {
            (KeyAlgorithm::P384, OID_P384, 97)
        } else {
            return Err(unsupported(format!(
                "an EC key on curve parameters {}",
                hex::encode(params)
            )));
        };
        let point = unwrap_point(need(AttributeType::EcPoint)?, point_len)
            .filter(|p| p.first() == Some(&0x04))
            .ok_or_else(|| {
                KeyError::Pkcs11(format!(
                    "CKA_EC_POINT of '{label}' is not an uncompressed {alg} point"
                ))
            })?;
        let algid = seq(&[OID_EC_PUBLIC_KEY, curve].concat());
        (alg, seq(&[algid, bit_string(point)].concat()))
    } else if key_type == KeyType::EC_EDWARDS {
        let params = need(AttributeType::EcParams)?;
        if params != EC_PARAMS_EDWARDS25519 && params != OID_ED25519 {
            return Err(unsupported(format!(
                "an Edwards key on curve parameters {}",
                hex::encode(params)
            )));
        }
        let point = unwrap_point(need(AttributeType::EcPoint)?, 32).ok_or_else(|| {
            KeyError::Pkcs11(format!("CKA_EC_POINT of '{label}' is not an Ed25519 key"))
        })?;
        (
            KeyAlgorithm::Ed25519,
            seq(&[seq(OID_ED25519), bit_string(point)].concat()),
        )
    } else {
        return Err(unsupported(format!("a key of type {key_type}")));
    };

    Ok(Pkcs11Key {
        token: token.clone(),
        label: label.to_string(),
        alg,
        spki,
        handle,
    })
}

/// `CKA_EC_POINT` is a DER OCTET STRING around the point; some tokens give the bare point.
fn unwrap_point(raw: &[u8], point_len: usize) -> Option<&[u8]> {
    if raw.first() == Some(&0x04) {
        let (len, hdr) = match raw.get(1) {
            Some(&l) if l < 0x80 => (l as usize, 2),
            Some(&0x81) => (*raw.get(2)? as usize, 3),
            _ => (usize::MAX, 0),
        };
        if len == point_len && raw.len() == hdr + len {
            return Some(&raw[hdr..]);
        }
    }
    (raw.len() == point_len).then_some(raw)
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

use crate::der::tlv;

fn seq(body: &[u8]) -> Vec<u8> {
    tlv(0x30, body)
}

fn bit_string(bits: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(bits.len() + 1);
    body.push(0); // no unused bits
    body.extend_from_slice(bits);
    tlv(0x03, &body)
}

/// A DER INTEGER from unsigned big-endian bytes.
fn unsigned_integer(be: &[u8]) -> Vec<u8> {
    let v = strip_zeros(be);
    let mut body = Vec::with_capacity(v.len() + 1);
    if !matches!(v.first(), Some(b) if b & 0x80 == 0) {
        body.push(0);
    }
    body.extend_from_slice(v);
    tlv(0x02, &body)
}

/// `SubjectPublicKeyInfo { rsaEncryption NULL, RSAPublicKey { n, e } }`.
fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    let rsa_public_key = seq(&[unsigned_integer(modulus), unsigned_integer(exponent)].concat());
    let algid = seq(&[OID_RSA_ENCRYPTION, DER_NULL].concat());
    seq(&[algid, bit_string(&rsa_public_key)].concat())
}

// ---------------------------------------------------------------------------------------------
// The signer.

/// A private key in a PKCS#11 token.
pub struct Pkcs11Key {
    token: Arc<Token>,
    label: String,
    alg: KeyAlgorithm,
    spki: Vec<u8>,
    handle: ObjectHandle,
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("token", &self.token.label)
            .field("label", &self.label)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn pss(hash: HashAlg) -> Result<PkcsPssParams, KeyError> {
    let (hash_alg, mgf) = match hash {
        HashAlg::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        HashAlg::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        HashAlg::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
    };
    let s_len = cryptoki::types::Ulong::try_from(hash.output_len())
        .map_err(|e| KeyError::Pkcs11(format!("PSS salt length: {e}")))?;
    Ok(PkcsPssParams {
        hash_alg,
        mgf,
        s_len,
    })
}

/// RFC 3986 percent-encoding of everything but unreserved characters (RFC 7512 `pk11-pchar`).
fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Signer for Pkcs11Key {
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
        format!(
            "pkcs11:token={};object={};type=private",
            pct(&self.token.label),
            pct(&self.label)
        )
    }

    fn sign(&self, scheme: SignatureScheme, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        use SignatureScheme as S;
        if !self.alg.supports(scheme) {
            return Err(KeyError::Unsupported(format!(
                "a {} key in a PKCS#11 token cannot sign with {scheme:?}",
                self.alg
            )));
        }
        let mut input = msg;
        let digest;
        let mechanism = match scheme {
            S::EcdsaSha256 | S::EcdsaSha384 | S::EcdsaSha512 => {
                let hash = scheme
                    .hash()
                    .ok_or_else(|| KeyError::Unsupported(format!("{scheme:?} names no hash")))?;
                digest = hash.digest(msg);
                input = &digest;
                Mechanism::Ecdsa
            }
            S::RsaPkcs1Sha256 => Mechanism::Sha256RsaPkcs,
            S::RsaPkcs1Sha384 => Mechanism::Sha384RsaPkcs,
            S::RsaPkcs1Sha512 => Mechanism::Sha512RsaPkcs,
            S::RsaPssSha256 => Mechanism::Sha256RsaPkcsPss(pss(HashAlg::Sha256)?),
            S::RsaPssSha384 => Mechanism::Sha384RsaPkcsPss(pss(HashAlg::Sha384)?),
            S::RsaPssSha512 => Mechanism::Sha512RsaPkcsPss(pss(HashAlg::Sha512)?),
            S::Ed25519 => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
        };

        self.sign_with(scheme, &mechanism, input)
    }

    fn sign_digest(&self, scheme: SignatureScheme, digest: &[u8]) -> Result<Vec<u8>, KeyError> {
        use SignatureScheme as S;
        let hash = super::check_digest(self.alg, scheme, digest)?;
        let mut input = digest.to_vec();
        let mechanism = match scheme {
            // The token truncates or uses the digest as ECDSA's integer itself.
            S::EcdsaSha256 | S::EcdsaSha384 | S::EcdsaSha512 => Mechanism::Ecdsa,
            S::RsaPkcs1Sha256 | S::RsaPkcs1Sha384 | S::RsaPkcs1Sha512 => {
                // Raw PKCS#1 v1.5 wants the DigestInfo; the token adds only the padding.
                input = [digest_info_prefix(hash), digest].concat();
                Mechanism::RsaPkcs
            }
            S::RsaPssSha256 | S::RsaPssSha384 | S::RsaPssSha512 => {
                Mechanism::RsaPkcsPss(pss(hash)?)
            }
            S::Ed25519 => {
                return Err(KeyError::Unsupported(format!(
                    "Ed25519 key '{}' signs whole messages and cannot sign a digest",
                    self.label
                )))
            }
        };
        self.sign_with(scheme, &mechanism, &input)
    }
}

/// The DER `DigestInfo` header before a digest of `hash` (RFC 8017 §9.2, note 1).
fn digest_info_prefix(hash: HashAlg) -> &'static [u8] {
    match hash {
        HashAlg::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        HashAlg::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        HashAlg::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    }
}

impl Pkcs11Key {
    /// One C_Sign with `mechanism`; ECDSA's raw r‖s comes back as DER.
    fn sign_with(
        &self,
        scheme: SignatureScheme,
        mechanism: &Mechanism<'_>,
        input: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        let mut s = self.token.session()?;
        let r = s.get().sign(mechanism, self.handle, input);
        let sig = s.check(r).map_err(|e| {
            self.token.err(
                format_args!("signing with key '{}' ({scheme:?})", self.label),
                e,
            )
        })?;
        drop(s);

        match self.alg {
            KeyAlgorithm::P256 | KeyAlgorithm::P384 => {
                let expected = if self.alg == KeyAlgorithm::P256 {
                    64
                } else {
                    96
                };
                if sig.len() != expected {
                    return Err(KeyError::Pkcs11(format!(
                        "token returned a {}-byte ECDSA signature for {} key '{}' (expected {expected})",
                        sig.len(),
                        self.alg,
                        self.label
                    )));
                }
                ecdsa_raw_to_der(&sig)
            }
            _ => Ok(sig),
        }
    }
}
