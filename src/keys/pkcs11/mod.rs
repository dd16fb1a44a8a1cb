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
//!
//! The parts, one to a file: [`module`] loads each PKCS#11 module once per process; [`session`]
//! holds a token's login and its pool of sessions; [`store`] is the key store (open, generate,
//! find); [`signer`] reads a key pair and signs with it; [`spki`] encodes its public key.

mod module;
mod session;
mod signer;
mod spki;
mod store;

pub use signer::Pkcs11Key;
pub use store::Pkcs11KeyStore;
