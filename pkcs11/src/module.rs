//! The module's state between C_Initialize and C_Finalize, in safe Rust: one slot with one
//! token (the server), sessions, object search, login, and signing operations. The C ABI in
//! `lib.rs` converts pointers and calls these; nothing here survives C_Finalize.
//!
//! Locking: the module's map of sessions is held only to find a session; a session's own lock
//! is held through its operation (a signature's round trip), so sixteen threads with a session
//! each sign at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use cryptoki_sys::*;
use hallmark_client::client::Client;

use crate::config::Settings;
use crate::objects::{self, Key, Object};
use crate::sign::{self, Operation, PssParams};

/// The one slot's id.
pub const SLOT: CK_SLOT_ID = 1;

pub struct Module {
    pub settings: Settings,
    metadata: serde_json::Value,
    inner: Mutex<Inner>,
    /// Digests refused a moment ago (denied, timed out, refused by policy), by key: a tool
    /// that tries the same signature again (libp11 falls back to a second ECDSA path when the
    /// first fails) gets the refusal at once, not a new request for approvers.
    refused: Mutex<Vec<(usize, Vec<u8>, std::time::Instant)>>,
}

/// How long a refused digest is refused without asking the server again.
const REFUSED_FOR: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Default)]
struct Inner {
    /// The keys, once fetched with a working credential.
    keys: Option<Arc<Vec<Key>>>,
    /// The PIN when it carries the token (no credential in the settings).
    pin: Option<String>,
    logged_in: bool,
    sessions: HashMap<CK_SESSION_HANDLE, Arc<Mutex<Session>>>,
    next: CK_SESSION_HANDLE,
}

#[derive(Default)]
pub struct Session {
    found: Vec<Object>,
    searching: bool,
    op: Option<Operation>,
    client: Option<Arc<Client>>,
    pub flags: CK_FLAGS,
}

static MODULE: RwLock<Option<Arc<Module>>> = RwLock::new(None);

pub type R<T> = Result<T, CK_RV>;

fn poisoned<T>(_: T) -> CK_RV {
    CKR_GENERAL_ERROR
}

/// C_Initialize's work: read the settings; refused twice.
pub fn initialize() -> R<()> {
    let mut m = MODULE.write().map_err(poisoned)?;
    if m.is_some() {
        return Err(CKR_CRYPTOKI_ALREADY_INITIALIZED);
    }
    let settings = crate::config::load().map_err(|e| {
        // A PKCS#11 caller shows only the return value: the reason goes to standard error
        // too, in one line (the settings' own words, never a credential).
        crate::log(&format!("C_Initialize: {e}"));
        eprintln!("hallmark PKCS#11 module: {e}");
        CKR_GENERAL_ERROR
    })?;
    let metadata = metadata(&settings);
    *m = Some(Arc::new(Module {
        settings,
        metadata,
        inner: Mutex::new(Inner {
            next: 1,
            ..Default::default()
        }),
        refused: Mutex::new(Vec::new()),
    }));
    Ok(())
}

/// C_Finalize's work: everything is dropped.
pub fn finalize() -> R<()> {
    let mut m = MODULE.write().map_err(poisoned)?;
    if m.take().is_none() {
        return Err(CKR_CRYPTOKI_NOT_INITIALIZED);
    }
    Ok(())
}

pub fn module() -> R<Arc<Module>> {
    MODULE
        .read()
        .map_err(poisoned)?
        .clone()
        .ok_or(CKR_CRYPTOKI_NOT_INITIALIZED)
}

/// What every signature records besides the digest: that a PKCS#11 tool asked, which one,
/// where, for whom, and the configured and `HALLMARK_META_*` values.
fn metadata(s: &Settings) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("via".into(), "pkcs11".into());
    let tool = std::fs::read_to_string("/proc/self/comm")
        .map(|t| t.trim().to_string())
        .unwrap_or_default();
    m.insert("tool".into(), tool.into());
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        m.insert("host".into(), h.trim().to_string().into());
    }
    if let Ok(u) = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")) {
        m.insert("user".into(), u.into());
    }
    for (k, v) in &s.metadata {
        m.insert(k.clone(), v.clone().into());
    }
    for (k, v) in std::env::vars() {
        if let Some(name) = k.strip_prefix("HALLMARK_META_") {
            if !name.is_empty() {
                m.insert(name.to_ascii_lowercase(), v.into());
            }
        }
    }
    serde_json::Value::Object(m)
}

impl Module {
    fn inner(&self) -> R<std::sync::MutexGuard<'_, Inner>> {
        self.inner.lock().map_err(poisoned)
    }

    /// Whether the tool must log in: the PIN carries the token when the settings name no
    /// credential.
    pub fn login_required(&self) -> bool {
        self.settings.source.is_none()
    }

    /// A client with the module's credential (the settings', or the PIN given at login).
    fn new_client(&self, pin: Option<&str>) -> R<Client> {
        let made = match (&self.settings.source, pin) {
            (Some(source), _) => Client::with_source(
                &self.settings.server,
                source.clone(),
                self.settings.ca.as_deref(),
            ),
            (None, Some(pin)) => Client::new(
                &self.settings.server,
                Some(pin.to_string()),
                self.settings.ca.as_deref(),
            ),
            (None, None) => return Err(CKR_USER_NOT_LOGGED_IN),
        };
        made.map(|c| c.with_timeout(std::time::Duration::from_secs(60)))
            .map_err(|e| {
                crate::log(&format!("client: {e:#}"));
                CKR_DEVICE_ERROR
            })
    }

    /// The exposed keys, fetched once with a working credential (another publisher's key, or
    /// one without a certificate, is left out: it does not exist for this credential).
    /// The keys the settings name, or with none named every key the credential may sign with
    /// (`GET /api/v1/keys`); each with its certificate.
    fn fetch_keys(&self, client: &Client) -> R<Vec<Key>> {
        let get = |path: &str| -> R<Option<serde_json::Value>> {
            let reply = client.send("GET", path, None, vec![]).map_err(|e| {
                crate::log(&format!("keys: the server cannot be reached: {e:#}"));
                CKR_DEVICE_ERROR
            })?;
            match reply.status {
                200 => reply.json().map(Some).map_err(|_| CKR_DEVICE_ERROR),
                401 => Err(CKR_PIN_INCORRECT),
                404 | 403 => {
                    crate::log(&format!("keys: {path}: {}", reply.problem()));
                    Ok(None)
                }
                s => {
                    crate::log(&format!("keys: {path}: {s} {}", reply.problem()));
                    Err(CKR_DEVICE_ERROR)
                }
            }
        };
        let docs: Vec<serde_json::Value> = if self.settings.keys.is_empty() {
            get("/api/v1/keys")?
                .and_then(|v| v["items"].as_array().cloned())
                .unwrap_or_default()
        } else {
            let mut docs = Vec::new();
            for label in &self.settings.keys {
                match get(&format!("/api/v1/keys/{label}"))? {
                    Some(v) => docs.push(v),
                    None => crate::log(&format!(
                        "keys: '{label}' is not visible to this credential"
                    )),
                }
            }
            docs
        };
        let der = |p: &str| -> Option<Vec<u8>> {
            pem::parse(p)
                .ok()
                .filter(|b| b.tag() == "CERTIFICATE")
                .map(|b| b.into_contents())
        };
        // The root the settings trust, shown with each chain that leads to it.
        let root = self
            .settings
            .ca
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|text| der(&text));
        let mut keys = Vec::new();
        for v in docs {
            let Some(label) = v["label"].as_str() else {
                continue;
            };
            let Some(cert) = v["certificate"].as_str().and_then(der) else {
                crate::log(&format!("keys: '{label}' has no certificate yet"));
                continue;
            };
            let chain = v["chain"]
                .as_array()
                .map(|a| a.iter().filter_map(|c| c.as_str().and_then(der)).collect())
                .unwrap_or_default();
            match Key::new(label, cert, chain) {
                Ok(k) => keys.push(match &root {
                    Some(r) => k.with_root(r),
                    None => k,
                }),
                Err(e) => crate::log(&format!("keys: {e}")),
            }
        }
        Ok(keys)
    }

    /// The keys, fetching them when the credential allows (before login only when the
    /// settings hold the credential).
    pub fn keys(&self) -> R<Arc<Vec<Key>>> {
        let pin = {
            let inner = self.inner()?;
            if let Some(k) = &inner.keys {
                return Ok(k.clone());
            }
            inner.pin.clone()
        };
        if self.settings.source.is_none() && pin.is_none() {
            return Ok(Arc::new(Vec::new()));
        }
        let client = self.new_client(pin.as_deref())?;
        let keys = Arc::new(self.fetch_keys(&client).map_err(|rv| {
            if rv == CKR_PIN_INCORRECT {
                CKR_USER_NOT_LOGGED_IN
            } else {
                rv
            }
        })?);
        self.inner()?.keys = Some(keys.clone());
        Ok(keys)
    }

    /// Logged in (or no login needed): private keys are visible and sign.
    pub fn user_functions(&self) -> R<bool> {
        Ok(self.settings.source.is_some() || self.inner()?.logged_in)
    }

    pub fn login(&self, user: CK_USER_TYPE, pin: &str) -> R<()> {
        if user != CKU_USER {
            return Err(CKR_USER_TYPE_INVALID);
        }
        if self.inner()?.logged_in {
            return Err(CKR_USER_ALREADY_LOGGED_IN);
        }
        if self.settings.source.is_some() {
            // The settings hold the credential; the PIN is not needed.
            self.inner()?.logged_in = true;
            return Ok(());
        }
        let client = self.new_client(Some(pin))?;
        let keys = self.fetch_keys(&client)?;
        let mut inner = self.inner()?;
        inner.pin = Some(pin.to_string());
        inner.keys = Some(Arc::new(keys));
        inner.logged_in = true;
        Ok(())
    }

    pub fn logout(&self) -> R<()> {
        let mut inner = self.inner()?;
        if !inner.logged_in {
            return Err(CKR_USER_NOT_LOGGED_IN);
        }
        inner.logged_in = false;
        if self.settings.source.is_none() {
            inner.pin = None;
            inner.keys = None;
            for s in inner.sessions.values() {
                if let Ok(mut s) = s.lock() {
                    s.client = None;
                    s.op = None;
                }
            }
        }
        Ok(())
    }

    pub fn open_session(&self, slot: CK_SLOT_ID, flags: CK_FLAGS) -> R<CK_SESSION_HANDLE> {
        if slot != SLOT {
            return Err(CKR_SLOT_ID_INVALID);
        }
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
        }
        if flags & CKF_RW_SESSION != 0 {
            return Err(CKR_TOKEN_WRITE_PROTECTED);
        }
        let mut inner = self.inner()?;
        let h = inner.next;
        inner.next += 1;
        inner.sessions.insert(
            h,
            Arc::new(Mutex::new(Session {
                flags,
                ..Default::default()
            })),
        );
        Ok(h)
    }

    pub fn close_session(&self, h: CK_SESSION_HANDLE) -> R<()> {
        let mut inner = self.inner()?;
        inner
            .sessions
            .remove(&h)
            .map(|_| ())
            .ok_or(CKR_SESSION_HANDLE_INVALID)?;
        if inner.sessions.is_empty() {
            // The last session closed logs the user out (PKCS#11 §5.6).
            self.logged_out(&mut inner);
        }
        Ok(())
    }

    /// The user is logged out: a credential that came from the PIN is forgotten with the keys
    /// it read; one from the settings stays.
    fn logged_out(&self, inner: &mut Inner) {
        inner.logged_in = false;
        if self.settings.source.is_none() {
            inner.pin = None;
            inner.keys = None;
        }
    }

    pub fn close_all(&self, slot: CK_SLOT_ID) -> R<()> {
        if slot != SLOT {
            return Err(CKR_SLOT_ID_INVALID);
        }
        let mut inner = self.inner()?;
        inner.sessions.clear();
        self.logged_out(&mut inner);
        Ok(())
    }

    pub fn session(&self, h: CK_SESSION_HANDLE) -> R<Arc<Mutex<Session>>> {
        self.inner()?
            .sessions
            .get(&h)
            .cloned()
            .ok_or(CKR_SESSION_HANDLE_INVALID)
    }

    /// A session is a public one until C_Login, and again after C_Logout, whether or not the
    /// credential is in the settings (PKCS#11 2.40 §5.6.1's state machine); what it may use
    /// is [`Module::user_functions`].
    pub fn session_state(&self) -> R<CK_STATE> {
        Ok(if self.inner()?.logged_in {
            CKS_RO_USER_FUNCTIONS
        } else {
            CKS_RO_PUBLIC_SESSION
        })
    }

    /// C_FindObjectsInit: the objects whose attributes equal every one of `template`.
    pub fn find_init(
        &self,
        h: CK_SESSION_HANDLE,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> R<()> {
        let session = self.session(h)?;
        let mut s = session.lock().map_err(poisoned)?;
        if s.searching {
            return Err(CKR_OPERATION_ACTIVE);
        }
        let keys = self.keys()?;
        let visible = objects::all(&keys, self.user_functions()?);
        let login_required = self.login_required();
        s.found = visible
            .into_iter()
            .filter(|o| {
                template.iter().all(|(t, want)| {
                    matches!(objects::attribute(&keys, *o, *t, login_required), objects::Value::Bytes(v) if v == *want)
                })
            })
            .rev()
            .collect();
        s.searching = true;
        Ok(())
    }

    /// C_FindObjects: up to `max` more handles.
    pub fn find(&self, h: CK_SESSION_HANDLE, max: usize) -> R<Vec<CK_OBJECT_HANDLE>> {
        let session = self.session(h)?;
        let mut s = session.lock().map_err(poisoned)?;
        if !s.searching {
            return Err(CKR_OPERATION_NOT_INITIALIZED);
        }
        let mut out = Vec::new();
        while out.len() < max {
            match s.found.pop() {
                Some(o) => out.push(objects::handle_of(o)),
                None => break,
            }
        }
        Ok(out)
    }

    pub fn find_final(&self, h: CK_SESSION_HANDLE) -> R<()> {
        let session = self.session(h)?;
        let mut s = session.lock().map_err(poisoned)?;
        if !s.searching {
            return Err(CKR_OPERATION_NOT_INITIALIZED);
        }
        s.searching = false;
        s.found.clear();
        Ok(())
    }

    /// The object a handle names, if this session may see it.
    pub fn object(&self, h: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE) -> R<(Arc<Vec<Key>>, Object)> {
        self.session(h)?;
        let keys = self.keys()?;
        let obj = objects::object_of(o, &keys).ok_or(CKR_OBJECT_HANDLE_INVALID)?;
        if matches!(obj, Object::Private(_)) && !self.user_functions()? {
            return Err(CKR_OBJECT_HANDLE_INVALID);
        }
        Ok((keys, obj))
    }

    pub fn sign_init(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: CK_MECHANISM_TYPE,
        pss: Option<PssParams>,
        key: CK_OBJECT_HANDLE,
    ) -> R<()> {
        let (keys, obj) = self.object(h, key)?;
        let Object::Private(i) = obj else {
            return Err(CKR_KEY_FUNCTION_NOT_PERMITTED);
        };
        let op = Operation::new(i, &keys[i], mechanism, pss).inspect_err(|rv| {
            crate::log(&format!(
                "C_SignInit: mechanism {mechanism:#x} with key '{}' ({:?}): {rv:#x}",
                keys[i].label, keys[i].kind
            ))
        })?;
        let session = self.session(h)?;
        let mut s = session.lock().map_err(poisoned)?;
        if s.op.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        s.op = Some(op);
        Ok(())
    }

    pub fn sign_update(&self, h: CK_SESSION_HANDLE, data: &[u8]) -> R<()> {
        let session = self.session(h)?;
        let mut s = session.lock().map_err(poisoned)?;
        let op = s.op.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        if let Err(rv) = op.update(data) {
            s.op = None;
            return Err(rv);
        }
        Ok(())
    }

    /// The signature's length, for a length query (the operation goes on).
    pub fn sign_len(&self, h: CK_SESSION_HANDLE) -> R<usize> {
        let session = self.session(h)?;
        let s = session.lock().map_err(poisoned)?;
        let op = s.op.as_ref().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        Ok(self
            .keys()?
            .get(op.key)
            .map(Key::signature_len)
            .unwrap_or(0))
    }

    /// Finishes the operation (with `data` first, for C_Sign): the signature, made on the
    /// server. The operation ends whatever the outcome.
    pub fn sign_finish(&self, h: CK_SESSION_HANDLE, data: Option<&[u8]>) -> R<Vec<u8>> {
        let session = self.session(h)?;
        let mut s = session.lock().map_err(poisoned)?;
        let mut op = s.op.take().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        if let Some(d) = data {
            op.update(d)?;
        }
        let keys = self.keys()?;
        let key = keys.get(op.key).ok_or(CKR_KEY_HANDLE_INVALID)?;
        let pss = op.pss;
        let key_index = op.key;
        let (hash, digest) = op.digest()?;
        {
            let mut refused = self.refused.lock().map_err(poisoned)?;
            refused.retain(|(_, _, at)| at.elapsed() < REFUSED_FOR);
            if refused
                .iter()
                .any(|(k, d, _)| *k == key_index && *d == digest)
            {
                crate::log("sign: this digest was refused a moment ago; refused again");
                return Err(CKR_FUNCTION_REJECTED);
            }
        }
        let client = match &s.client {
            Some(c) => c.clone(),
            None => {
                let pin = self.inner()?.pin.clone();
                let c = Arc::new(self.new_client(pin.as_deref())?);
                s.client = Some(c.clone());
                c
            }
        };
        let result = sign::sign_remote(
            &sign::Request {
                client: &client,
                key,
                metadata: &self.metadata,
                approval_timeout_secs: self.settings.approval_timeout_secs,
                poll_secs: self.settings.poll_secs,
            },
            hash,
            &digest,
            pss,
        );
        if result == Err(CKR_FUNCTION_REJECTED) {
            if let Ok(mut refused) = self.refused.lock() {
                refused.push((key_index, digest, std::time::Instant::now()));
            }
        }
        result
    }
}
