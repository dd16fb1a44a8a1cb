//! The PKCS#11 key store: finding the token and logging in, generating key pairs inside it, and
//! finding keys by label.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use super::module::{ck, load_module};
use super::session::{PooledSession, Token};
use super::signer::{load_key, Pkcs11Key};
use super::spki::{EC_PARAMS_EDWARDS25519, OID_P256, OID_P384};
use crate::keys::{KeyAlgorithm, KeyError, KeyProtection, KeyStore, SecretSource, Signer};

/// Length of the random `CKA_ID` shared by the two halves of a key pair.
const KEY_ID_LEN: usize = 16;

const RSA_PUBLIC_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];

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
        crate::keys::validate_label(label)?;
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
        crate::keys::validate_label(label)?;
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
        crate::keys::validate_label(label)?;
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
