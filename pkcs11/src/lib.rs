//! hallmark-pkcs11: a PKCS#11 2.40 module (`libhallmark_pkcs11.so`) through which any signing
//! tool (pkcs11-tool, openssl through libp11, osslsigncode, jarsigner, sbsign) signs with a
//! hallmark server's keys. The private key never leaves the server's HSM: the module hashes
//! here, sends the digest, and the server's key policy, approvals and records apply.
//!
//! This file is the C ABI and the only `unsafe` code of the project: each entry point checks
//! its pointers, converts them to Rust values, calls the safe core (`module`, `objects`, `sign`)
//! and writes the answer back, inside `catch_unwind` so no panic crosses into C. Functions
//! outside signing answer CKR_FUNCTION_NOT_SUPPORTED; key generation, decryption and
//! unwrapping are never offered.

#![allow(non_snake_case)]
#![allow(clippy::missing_safety_doc)]

mod config;
mod module;
mod objects;
mod sign;

use std::os::raw::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use cryptoki_sys::*;

/// Diagnostics, only when `HALLMARK_PKCS11_LOG` names a file (or says `stderr`); never a secret.
pub(crate) fn log(msg: &str) {
    use std::io::Write as _;
    let Some(dest) = std::env::var_os("HALLMARK_PKCS11_LOG") else {
        return;
    };
    let line = format!("hallmark-pkcs11[{}]: {msg}\n", std::process::id());
    if dest == "stderr" {
        let _ = std::io::stderr().write_all(line.as_bytes());
    } else if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dest)
    {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Runs an entry point's body; a panic becomes CKR_GENERAL_ERROR.
fn guard(f: impl FnOnce() -> Result<(), CK_RV>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(rv)) => rv,
        Err(_) => {
            log("a panic was caught at the C boundary");
            CKR_GENERAL_ERROR
        }
    }
}

/// `s` blank-padded into a fixed PKCS#11 text field.
fn padded<const N: usize>(s: &str) -> [CK_UTF8CHAR; N] {
    let mut out = [b' '; N];
    for (o, b) in out.iter_mut().zip(s.bytes()) {
        *o = b;
    }
    out
}

const VERSION: CK_VERSION = CK_VERSION { major: 0, minor: 1 };

/// Writes `values` to a caller's array of `*count` entries, or only the count when the array
/// is NULL (PKCS#11 §5.2's two-call convention).
///
/// # Safety
/// `list` is NULL or points to `*count` writable entries; `count` is writable.
unsafe fn write_list<T: Copy>(
    values: &[T],
    list: *mut T,
    count: *mut CK_ULONG,
) -> Result<(), CK_RV> {
    if count.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: `count` is non-NULL and the caller's to write (the function's contract).
    let room = unsafe { *count } as usize;
    // SAFETY: as above.
    unsafe { *count = values.len() as CK_ULONG };
    if list.is_null() {
        return Ok(());
    }
    if room < values.len() {
        return Err(CKR_BUFFER_TOO_SMALL);
    }
    for (i, v) in values.iter().enumerate() {
        // SAFETY: `list` has `room` >= values.len() entries (checked above).
        unsafe { *list.add(i) = *v };
    }
    Ok(())
}

/// Copies `out` to a caller's buffer of `*len` bytes, or reports the length when the buffer
/// is NULL; CKR_BUFFER_TOO_SMALL (with the length) when it is short.
///
/// # Safety
/// `buf` is NULL or points to `*len` writable bytes; `len` is writable.
unsafe fn write_bytes(out: &[u8], buf: *mut CK_BYTE, len: *mut CK_ULONG) -> Result<(), CK_RV> {
    if len.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: `len` is non-NULL and writable (the contract).
    let room = unsafe { *len } as usize;
    // SAFETY: as above.
    unsafe { *len = out.len() as CK_ULONG };
    if buf.is_null() {
        return Ok(());
    }
    if room < out.len() {
        return Err(CKR_BUFFER_TOO_SMALL);
    }
    // SAFETY: `buf` holds `room` >= out.len() bytes; the regions cannot overlap (ours is a
    // fresh Vec).
    unsafe { std::ptr::copy_nonoverlapping(out.as_ptr(), buf, out.len()) };
    Ok(())
}

/// The bytes at `p` (NULL with length 0 is empty).
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes.
unsafe fn bytes<'a>(p: *const CK_BYTE, len: CK_ULONG) -> Result<&'a [u8], CK_RV> {
    if p.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(CKR_ARGUMENTS_BAD)
        };
    }
    // SAFETY: non-NULL with `len` readable bytes (the contract).
    Ok(unsafe { std::slice::from_raw_parts(p, len as usize) })
}

// ------------------------------------------------------------------------------------------
// General

#[no_mangle]
pub unsafe extern "C" fn C_Initialize(args: *mut c_void) -> CK_RV {
    guard(|| {
        if !args.is_null() {
            // SAFETY: a non-NULL argument is a CK_C_INITIALIZE_ARGS (PKCS#11 §5.4).
            let a = unsafe { &*(args as *const CK_C_INITIALIZE_ARGS) };
            if !a.pReserved.is_null() {
                return Err(CKR_ARGUMENTS_BAD);
            }
            let own_locks = a.CreateMutex.is_some()
                || a.DestroyMutex.is_some()
                || a.LockMutex.is_some()
                || a.UnlockMutex.is_some();
            // The module uses the OS's locks; an application that insists on its own is refused.
            if own_locks && a.flags & CKF_OS_LOCKING_OK == 0 {
                return Err(CKR_CANT_LOCK);
            }
        }
        module::initialize()
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Finalize(reserved: *mut c_void) -> CK_RV {
    guard(|| {
        if !reserved.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        module::finalize()
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetInfo(info: *mut CK_INFO) -> CK_RV {
    guard(|| {
        module::module()?;
        if info.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let v = CK_INFO {
            cryptokiVersion: CK_VERSION {
                major: 2,
                minor: 40,
            },
            manufacturerID: padded("hallmark"),
            flags: 0,
            libraryDescription: padded("hallmark signing service"),
            libraryVersion: VERSION,
        };
        // SAFETY: `info` is non-NULL and points to a CK_INFO (the contract).
        unsafe { *info = v };
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    guard(|| {
        if list.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: `list` is non-NULL and writable; FUNCTIONS is a static that lives as long as
        // the library, and callers only read through the pointer (PKCS#11 §5.2).
        unsafe { *list = std::ptr::addr_of!(FUNCTIONS) as *mut CK_FUNCTION_LIST };
        Ok(())
    })
}

// ------------------------------------------------------------------------------------------
// Slot and token

#[no_mangle]
pub unsafe extern "C" fn C_GetSlotList(
    _present: CK_BBOOL,
    list: *mut CK_SLOT_ID,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        module::module()?;
        // SAFETY: the caller's list and count, as C_GetSlotList defines them.
        unsafe { write_list(&[module::SLOT], list, count) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetSlotInfo(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> CK_RV {
    guard(|| {
        let m = module::module()?;
        if slot != module::SLOT {
            return Err(CKR_SLOT_ID_INVALID);
        }
        if info.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let v = CK_SLOT_INFO {
            slotDescription: padded(&format!("hallmark {}", m.settings.server)),
            manufacturerID: padded("hallmark"),
            flags: CKF_TOKEN_PRESENT | CKF_REMOVABLE_DEVICE,
            hardwareVersion: VERSION,
            firmwareVersion: VERSION,
        };
        // SAFETY: non-NULL, points to a CK_SLOT_INFO (the contract).
        unsafe { *info = v };
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetTokenInfo(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> CK_RV {
    guard(|| {
        let m = module::module()?;
        if slot != module::SLOT {
            return Err(CKR_SLOT_ID_INVALID);
        }
        if info.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let mut flags = CKF_TOKEN_INITIALIZED | CKF_WRITE_PROTECTED | CKF_USER_PIN_INITIALIZED;
        if m.login_required() {
            flags |= CKF_LOGIN_REQUIRED;
        } else {
            // The credential is in the module's settings: a caller that logs in anyway passes
            // no PIN (PKCS#11 2.40 §5.6.1, C_Login with a protected authentication path).
            flags |= CKF_PROTECTED_AUTHENTICATION_PATH;
        }
        const NONE: CK_ULONG = CK_UNAVAILABLE_INFORMATION;
        let v = CK_TOKEN_INFO {
            label: padded("hallmark"),
            manufacturerID: padded("hallmark"),
            model: padded("signing service"),
            serialNumber: padded("1"),
            flags,
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: NONE,
            ulMaxRwSessionCount: 0,
            ulRwSessionCount: 0,
            ulMaxPinLen: 4096,
            ulMinPinLen: 0,
            ulTotalPublicMemory: NONE,
            ulFreePublicMemory: NONE,
            ulTotalPrivateMemory: NONE,
            ulFreePrivateMemory: NONE,
            hardwareVersion: VERSION,
            firmwareVersion: VERSION,
            utcTime: padded(""),
        };
        // SAFETY: non-NULL, points to a CK_TOKEN_INFO (the contract).
        unsafe { *info = v };
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismList(
    slot: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        module::module()?;
        if slot != module::SLOT {
            return Err(CKR_SLOT_ID_INVALID);
        }
        let all: Vec<CK_MECHANISM_TYPE> = sign::MECHANISMS.iter().map(|(m, _)| *m).collect();
        // SAFETY: the caller's list and count, as C_GetMechanismList defines them.
        unsafe { write_list(&all, list, count) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismInfo(
    slot: CK_SLOT_ID,
    mechanism: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    guard(|| {
        module::module()?;
        if slot != module::SLOT {
            return Err(CKR_SLOT_ID_INVALID);
        }
        if info.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let Some((_, rsa)) = sign::MECHANISMS.iter().find(|(m, _)| *m == mechanism) else {
            return Err(CKR_MECHANISM_INVALID);
        };
        let (min, max, extra) = if *rsa {
            (2048, 8192, 0)
        } else {
            (256, 384, CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS)
        };
        let v = CK_MECHANISM_INFO {
            ulMinKeySize: min,
            ulMaxKeySize: max,
            flags: CKF_SIGN | extra,
        };
        // SAFETY: non-NULL, points to a CK_MECHANISM_INFO (the contract).
        unsafe { *info = v };
        Ok(())
    })
}

// ------------------------------------------------------------------------------------------
// Sessions and login

#[no_mangle]
pub unsafe extern "C" fn C_OpenSession(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    _application: *mut c_void,
    _notify: CK_NOTIFY,
    session: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    guard(|| {
        let m = module::module()?;
        if session.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let h = m.open_session(slot, flags)?;
        // SAFETY: non-NULL and writable (the contract).
        unsafe { *session = h };
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_CloseSession(session: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| module::module()?.close_session(session))
}

#[no_mangle]
pub unsafe extern "C" fn C_CloseAllSessions(slot: CK_SLOT_ID) -> CK_RV {
    guard(|| module::module()?.close_all(slot))
}

#[no_mangle]
pub unsafe extern "C" fn C_GetSessionInfo(
    session: CK_SESSION_HANDLE,
    info: *mut CK_SESSION_INFO,
) -> CK_RV {
    guard(|| {
        let m = module::module()?;
        let s = m.session(session)?;
        let flags = s.lock().map_err(|_| CKR_GENERAL_ERROR)?.flags;
        if info.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let v = CK_SESSION_INFO {
            slotID: module::SLOT,
            state: m.session_state()?,
            flags,
            ulDeviceError: 0,
        };
        // SAFETY: non-NULL, points to a CK_SESSION_INFO (the contract).
        unsafe { *info = v };
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Login(
    session: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let m = module::module()?;
        m.session(session)?;
        // SAFETY: the PIN's bytes, as C_Login defines them.
        let pin = unsafe { bytes(pin, pin_len) }?;
        let pin = std::str::from_utf8(pin).map_err(|_| CKR_PIN_INCORRECT)?;
        m.login(user, pin.trim())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Logout(session: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| {
        let m = module::module()?;
        m.session(session)?;
        m.logout()
    })
}

// ------------------------------------------------------------------------------------------
// Objects

#[no_mangle]
pub unsafe extern "C" fn C_GetAttributeValue(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let m = module::module()?;
        let (keys, obj) = m.object(session, object)?;
        if template.is_null() && count > 0 {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let mut rv = CKR_OK;
        for i in 0..count as usize {
            // SAFETY: `template` holds `count` attributes (the contract); i < count.
            let a = unsafe { &mut *template.add(i) };
            match objects::attribute(&keys, obj, a.type_, m.login_required()) {
                objects::Value::Bytes(v) => {
                    if a.pValue.is_null() {
                        a.ulValueLen = v.len() as CK_ULONG;
                    } else if (a.ulValueLen as usize) < v.len() {
                        a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                        rv = CKR_BUFFER_TOO_SMALL;
                    } else {
                        // SAFETY: pValue holds ulValueLen >= v.len() bytes (checked).
                        unsafe {
                            std::ptr::copy_nonoverlapping(v.as_ptr(), a.pValue as *mut u8, v.len())
                        };
                        a.ulValueLen = v.len() as CK_ULONG;
                    }
                }
                objects::Value::Sensitive => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    rv = CKR_ATTRIBUTE_SENSITIVE;
                }
                objects::Value::Invalid => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    rv = CKR_ATTRIBUTE_TYPE_INVALID;
                }
            }
        }
        if rv == CKR_OK {
            Ok(())
        } else {
            Err(rv)
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_FindObjectsInit(
    session: CK_SESSION_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let m = module::module()?;
        if template.is_null() && count > 0 {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let mut want = Vec::with_capacity(count as usize);
        for i in 0..count as usize {
            // SAFETY: `template` holds `count` attributes (the contract); i < count.
            let a = unsafe { &*template.add(i) };
            // SAFETY: each value holds ulValueLen readable bytes (the contract).
            let v = unsafe { bytes(a.pValue as *const u8, a.ulValueLen) }?;
            want.push((a.type_, v.to_vec()));
        }
        m.find_init(session, &want)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_FindObjects(
    session: CK_SESSION_HANDLE,
    objects_out: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let m = module::module()?;
        if count.is_null() || (objects_out.is_null() && max > 0) {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let found = m.find(session, max as usize)?;
        for (i, h) in found.iter().enumerate() {
            // SAFETY: `objects_out` holds `max` >= found.len() handles (find returns at most
            // `max`).
            unsafe { *objects_out.add(i) = *h };
        }
        // SAFETY: non-NULL and writable (checked).
        unsafe { *count = found.len() as CK_ULONG };
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_FindObjectsFinal(session: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| module::module()?.find_final(session))
}

// ------------------------------------------------------------------------------------------
// Signing

#[no_mangle]
pub unsafe extern "C" fn C_SignInit(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        let m = module::module()?;
        if mechanism.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: non-NULL, points to a CK_MECHANISM (the contract).
        let mech = unsafe { &*mechanism };
        let pss = if mech.pParameter.is_null() {
            None
        } else if mech.ulParameterLen as usize == std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>() {
            // SAFETY: a parameter of a CK_RSA_PKCS_PSS_PARAMS's size with a PSS mechanism is
            // one (PKCS#11 §2.1.13); read unaligned, the caller's buffer may not be aligned.
            let p = unsafe {
                std::ptr::read_unaligned(mech.pParameter as *const CK_RSA_PKCS_PSS_PARAMS)
            };
            Some(sign::PssParams {
                hash: p.hashAlg,
                mgf: p.mgf,
                salt: p.sLen,
            })
        } else {
            None
        };
        m.sign_init(session, mech.mechanism, pss, key)
    })
}

/// C_Sign and C_SignFinal: a length query keeps the operation; anything else ends it.
unsafe fn sign_out(
    session: CK_SESSION_HANDLE,
    data: Option<&[u8]>,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> Result<(), CK_RV> {
    let m = module::module()?;
    if sig_len.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    let need = m.sign_len(session)?;
    // SAFETY: non-NULL and readable (checked).
    let room = unsafe { *sig_len } as usize;
    if sig.is_null() || room < need {
        // SAFETY: non-NULL and writable (checked).
        unsafe { *sig_len = need as CK_ULONG };
        return if sig.is_null() {
            Ok(())
        } else {
            Err(CKR_BUFFER_TOO_SMALL)
        };
    }
    let out = m.sign_finish(session, data)?;
    // SAFETY: `sig` holds `room` >= need bytes and `sig_len` is writable (checked above).
    unsafe { write_bytes(&out, sig, sig_len) }
}

#[no_mangle]
pub unsafe extern "C" fn C_Sign(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: the data's bytes, as C_Sign defines them.
        let d = unsafe { bytes(data, data_len) }?;
        // SAFETY: the signature buffer and its length, as C_Sign defines them.
        unsafe { sign_out(session, Some(d), sig, sig_len) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SignUpdate(
    session: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: the part's bytes, as C_SignUpdate defines them.
        let p = unsafe { bytes(part, part_len) }?;
        module::module()?.sign_update(session, p)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SignFinal(
    session: CK_SESSION_HANDLE,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> CK_RV {
    // SAFETY: the signature buffer and its length, as C_SignFinal defines them.
    guard(|| unsafe { sign_out(session, None, sig, sig_len) })
}

// ------------------------------------------------------------------------------------------
// Everything else

macro_rules! unsupported {
    ($($name:ident($($t:ty),*);)*) => {
        $(
            extern "C" fn $name($(_: $t),*) -> CK_RV {
                CKR_FUNCTION_NOT_SUPPORTED
            }
        )*
    };
}

/// C_GetFunctionStatus and C_CancelFunction: legacy functions that a module answers with
/// CKR_FUNCTION_NOT_PARALLEL (PKCS#11 2.40 §5.20).
extern "C" fn not_parallel(_: CK_SESSION_HANDLE) -> CK_RV {
    CKR_FUNCTION_NOT_PARALLEL
}

type S = CK_SESSION_HANDLE;
type O = CK_OBJECT_HANDLE;
type B = *mut CK_BYTE;
type L = CK_ULONG;
type PL = *mut CK_ULONG;
type M = *mut CK_MECHANISM;
type A = *mut CK_ATTRIBUTE;
type PO = *mut CK_OBJECT_HANDLE;
type U = *mut CK_UTF8CHAR;

unsupported! {
    no_init_token(CK_SLOT_ID, U, L, U);
    no_init_pin(S, U, L);
    no_set_pin(S, U, L, U, L);
    no_get_operation_state(S, B, PL);
    no_set_operation_state(S, B, L, O, O);
    no_create_object(S, A, L, PO);
    no_copy_object(S, O, A, L, PO);
    no_destroy_object(S, O);
    no_get_object_size(S, O, PL);
    no_set_attribute_value(S, O, A, L);
    no_crypt_init(S, M, O);
    no_crypt(S, B, L, B, PL);
    no_crypt_final(S, B, PL);
    no_digest_init(S, M);
    no_digest_update(S, B, L);
    no_digest_key(S, O);
    no_verify(S, B, L, B, L);
    no_verify_final(S, B, L);
    no_generate_key(S, M, A, L, PO);
    no_generate_key_pair(S, M, A, L, A, L, PO, PO);
    no_wrap_key(S, M, O, O, B, PL);
    no_unwrap_key(S, M, O, B, L, A, L, PO);
    no_derive_key(S, M, O, A, L, PO);
    no_random(S, B, L);
    no_wait_for_slot_event(CK_FLAGS, *mut CK_SLOT_ID, *mut c_void);
}

/// The function list C_GetFunctionList hands out.
static FUNCTIONS: CK_FUNCTION_LIST = CK_FUNCTION_LIST {
    version: CK_VERSION {
        major: 2,
        minor: 40,
    },
    C_Initialize: Some(C_Initialize),
    C_Finalize: Some(C_Finalize),
    C_GetInfo: Some(C_GetInfo),
    C_GetFunctionList: Some(C_GetFunctionList),
    C_GetSlotList: Some(C_GetSlotList),
    C_GetSlotInfo: Some(C_GetSlotInfo),
    C_GetTokenInfo: Some(C_GetTokenInfo),
    C_GetMechanismList: Some(C_GetMechanismList),
    C_GetMechanismInfo: Some(C_GetMechanismInfo),
    C_InitToken: Some(no_init_token),
    C_InitPIN: Some(no_init_pin),
    C_SetPIN: Some(no_set_pin),
    C_OpenSession: Some(C_OpenSession),
    C_CloseSession: Some(C_CloseSession),
    C_CloseAllSessions: Some(C_CloseAllSessions),
    C_GetSessionInfo: Some(C_GetSessionInfo),
    C_GetOperationState: Some(no_get_operation_state),
    C_SetOperationState: Some(no_set_operation_state),
    C_Login: Some(C_Login),
    C_Logout: Some(C_Logout),
    C_CreateObject: Some(no_create_object),
    C_CopyObject: Some(no_copy_object),
    C_DestroyObject: Some(no_destroy_object),
    C_GetObjectSize: Some(no_get_object_size),
    C_GetAttributeValue: Some(C_GetAttributeValue),
    C_SetAttributeValue: Some(no_set_attribute_value),
    C_FindObjectsInit: Some(C_FindObjectsInit),
    C_FindObjects: Some(C_FindObjects),
    C_FindObjectsFinal: Some(C_FindObjectsFinal),
    C_EncryptInit: Some(no_crypt_init),
    C_Encrypt: Some(no_crypt),
    C_EncryptUpdate: Some(no_crypt),
    C_EncryptFinal: Some(no_crypt_final),
    C_DecryptInit: Some(no_crypt_init),
    C_Decrypt: Some(no_crypt),
    C_DecryptUpdate: Some(no_crypt),
    C_DecryptFinal: Some(no_crypt_final),
    C_DigestInit: Some(no_digest_init),
    C_Digest: Some(no_crypt),
    C_DigestUpdate: Some(no_digest_update),
    C_DigestKey: Some(no_digest_key),
    C_DigestFinal: Some(no_crypt_final),
    C_SignInit: Some(C_SignInit),
    C_Sign: Some(C_Sign),
    C_SignUpdate: Some(C_SignUpdate),
    C_SignFinal: Some(C_SignFinal),
    C_SignRecoverInit: Some(no_crypt_init),
    C_SignRecover: Some(no_crypt),
    C_VerifyInit: Some(no_crypt_init),
    C_Verify: Some(no_verify),
    C_VerifyUpdate: Some(no_digest_update),
    C_VerifyFinal: Some(no_verify_final),
    C_VerifyRecoverInit: Some(no_crypt_init),
    C_VerifyRecover: Some(no_crypt),
    C_DigestEncryptUpdate: Some(no_crypt),
    C_DecryptDigestUpdate: Some(no_crypt),
    C_SignEncryptUpdate: Some(no_crypt),
    C_DecryptVerifyUpdate: Some(no_crypt),
    C_GenerateKey: Some(no_generate_key),
    C_GenerateKeyPair: Some(no_generate_key_pair),
    C_WrapKey: Some(no_wrap_key),
    C_UnwrapKey: Some(no_unwrap_key),
    C_DeriveKey: Some(no_derive_key),
    C_SeedRandom: Some(no_random),
    C_GenerateRandom: Some(no_random),
    C_GetFunctionStatus: Some(not_parallel),
    C_CancelFunction: Some(not_parallel),
    C_WaitForSlotEvent: Some(no_wait_for_slot_event),
};

#[cfg(test)]
mod tests {
    //! The C ABI's edge cases, called in process (no server: nothing here reaches one).
    use super::*;

    #[test]
    fn null_arguments_length_queries_and_reinitialization() {
        let dir = std::env::temp_dir().join(format!("hallmark-pkcs11-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let cfg = dir.join("p11.toml");
        std::fs::write(
            &cfg,
            "server = \"https://127.0.0.1:1\"\ntoken_env = \"HALLMARK_P11_UNIT_TOKEN\"\nkeys = [\"release\"]\n",
        )
        .expect("config");
        std::env::set_var("HALLMARK_PKCS11_CONFIG", &cfg);
        std::env::set_var("XDG_CONFIG_HOME", &dir);
        // SAFETY (the whole test): every pointer passed is NULL on purpose, or points to a live
        // local of the type the function writes.
        unsafe {
            assert_eq!(C_GetFunctionList(std::ptr::null_mut()), CKR_ARGUMENTS_BAD);
            let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
            assert_eq!(C_GetFunctionList(&mut list), CKR_OK);
            assert!(!list.is_null());
            // Before C_Initialize.
            let mut info: CK_INFO = std::mem::zeroed();
            assert_eq!(C_GetInfo(&mut info), CKR_CRYPTOKI_NOT_INITIALIZED);
            assert_eq!(C_Initialize(std::ptr::null_mut()), CKR_OK);
            assert_eq!(
                C_Initialize(std::ptr::null_mut()),
                CKR_CRYPTOKI_ALREADY_INITIALIZED
            );
            assert_eq!(C_GetInfo(std::ptr::null_mut()), CKR_ARGUMENTS_BAD);
            assert_eq!(C_GetInfo(&mut info), CKR_OK);
            assert_eq!(info.cryptokiVersion.major, 2);
            // Slot list: count query, short buffer, then the list.
            let mut n: CK_ULONG = 0;
            assert_eq!(C_GetSlotList(1, std::ptr::null_mut(), &mut n), CKR_OK);
            assert_eq!(n, 1);
            let mut none: [CK_SLOT_ID; 1] = [0];
            let mut zero: CK_ULONG = 0;
            assert_eq!(
                C_GetSlotList(1, none.as_mut_ptr(), &mut zero),
                CKR_BUFFER_TOO_SMALL
            );
            assert_eq!(C_GetSlotList(1, none.as_mut_ptr(), &mut n), CKR_OK);
            assert_eq!(none[0], module::SLOT);
            assert_eq!(
                C_GetSlotList(1, std::ptr::null_mut(), std::ptr::null_mut()),
                CKR_ARGUMENTS_BAD
            );
            // Mechanisms.
            let mut m: CK_ULONG = 0;
            assert_eq!(
                C_GetMechanismList(module::SLOT, std::ptr::null_mut(), &mut m),
                CKR_OK
            );
            assert_eq!(m as usize, sign::MECHANISMS.len());
            let mut mi: CK_MECHANISM_INFO = std::mem::zeroed();
            assert_eq!(
                C_GetMechanismInfo(module::SLOT, CKM_SHA_1_HMAC, &mut mi),
                CKR_MECHANISM_INVALID
            );
            assert_eq!(
                C_GetMechanismInfo(99, CKM_ECDSA, &mut mi),
                CKR_SLOT_ID_INVALID
            );
            // Sessions: a NULL handle pointer, a read-write session (write-protected), then one.
            assert_eq!(
                C_OpenSession(
                    module::SLOT,
                    CKF_SERIAL_SESSION,
                    std::ptr::null_mut(),
                    None,
                    std::ptr::null_mut()
                ),
                CKR_ARGUMENTS_BAD
            );
            let mut h: CK_SESSION_HANDLE = 0;
            assert_eq!(
                C_OpenSession(
                    module::SLOT,
                    CKF_SERIAL_SESSION | CKF_RW_SESSION,
                    std::ptr::null_mut(),
                    None,
                    &mut h
                ),
                CKR_TOKEN_WRITE_PROTECTED
            );
            assert_eq!(
                C_OpenSession(module::SLOT, 0, std::ptr::null_mut(), None, &mut h),
                CKR_SESSION_PARALLEL_NOT_SUPPORTED
            );
            assert_eq!(
                C_OpenSession(
                    module::SLOT,
                    CKF_SERIAL_SESSION,
                    std::ptr::null_mut(),
                    None,
                    &mut h
                ),
                CKR_OK
            );
            // The credential is in the settings: no login is required, a caller that logs in
            // passes no PIN (protected authentication path), and the session follows §5.6.1's
            // states: public, user functions after C_Login, public again after C_Logout.
            let mut ti: CK_TOKEN_INFO = std::mem::zeroed();
            assert_eq!(C_GetTokenInfo(module::SLOT, &mut ti), CKR_OK);
            assert_eq!(ti.flags & CKF_LOGIN_REQUIRED, 0);
            assert_ne!(ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH, 0);
            let state = |h| {
                let mut si: CK_SESSION_INFO = std::mem::zeroed();
                assert_eq!(C_GetSessionInfo(h, &mut si), CKR_OK);
                si.state
            };
            assert_eq!(state(h), CKS_RO_PUBLIC_SESSION);
            assert_eq!(C_Logout(h), CKR_USER_NOT_LOGGED_IN);
            assert_eq!(C_Login(h, CKU_USER, std::ptr::null_mut(), 0), CKR_OK);
            assert_eq!(state(h), CKS_RO_USER_FUNCTIONS);
            assert_eq!(C_Logout(h), CKR_OK);
            assert_eq!(state(h), CKS_RO_PUBLIC_SESSION);
            // The legacy parallel functions (§5.20), through the function list as callers
            // reach them.
            let f = &*list;
            for func in [f.C_GetFunctionStatus, f.C_CancelFunction] {
                let func = func.expect("listed");
                assert_eq!(func(h), CKR_FUNCTION_NOT_PARALLEL);
            }
            // Signing without C_SignInit, and a length query without it.
            let mut data = [0u8; 32];
            let mut sig = [0u8; 64];
            let mut sig_len: CK_ULONG = sig.len() as CK_ULONG;
            assert_eq!(
                C_Sign(h, data.as_mut_ptr(), 32, sig.as_mut_ptr(), &mut sig_len),
                CKR_OPERATION_NOT_INITIALIZED
            );
            assert_eq!(
                C_SignFinal(h, std::ptr::null_mut(), std::ptr::null_mut()),
                CKR_ARGUMENTS_BAD
            );
            assert_eq!(
                C_SignUpdate(h, data.as_mut_ptr(), 32),
                CKR_OPERATION_NOT_INITIALIZED
            );
            // A search while the server is unreachable: the device's error, not a crash.
            assert_eq!(
                C_FindObjectsInit(h, std::ptr::null_mut(), 1),
                CKR_ARGUMENTS_BAD
            );
            std::env::set_var("HALLMARK_P11_UNIT_TOKEN", "hmk_x");
            let rv = C_FindObjectsInit(h, std::ptr::null_mut(), 0);
            assert!(
                rv == CKR_DEVICE_ERROR || rv == CKR_USER_NOT_LOGGED_IN,
                "{rv:#x}"
            );
            // Functions not offered.
            assert_eq!(
                no_generate_key_pair(
                    h,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    0,
                    std::ptr::null_mut(),
                    0,
                    std::ptr::null_mut(),
                    std::ptr::null_mut()
                ),
                CKR_FUNCTION_NOT_SUPPORTED
            );
            assert_eq!(C_CloseSession(h), CKR_OK);
            assert_eq!(C_CloseSession(h), CKR_SESSION_HANDLE_INVALID);
            // Finalize, then initialize again: nothing survives.
            assert_eq!(C_Finalize(std::ptr::null_mut()), CKR_OK);
            assert_eq!(
                C_Finalize(std::ptr::null_mut()),
                CKR_CRYPTOKI_NOT_INITIALIZED
            );
            assert_eq!(C_Initialize(std::ptr::null_mut()), CKR_OK);
            let mut info2: CK_SESSION_INFO = std::mem::zeroed();
            assert_eq!(C_GetSessionInfo(h, &mut info2), CKR_SESSION_HANDLE_INVALID);
            assert_eq!(C_Finalize(std::ptr::null_mut()), CKR_OK);
        }
    }
}
