//! The shape of a sealed value as a record holds it (`hms1 ‖ nonce ‖ ciphertext ‖ tag`), so a
//! backend can tell sealed records from ones an older hallmark stored in clear without knowing
//! how values are sealed: only `engine::sealing` makes and opens them.

/// The prefix of a sealed value (a clear 32-byte EAB key from before is told apart by length as
/// well: sealed values are longer).
pub const MAGIC: &[u8] = b"hms1";
/// AES-256-GCM's nonce and tag lengths, as `engine::sealing` writes them.
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

/// Whether `stored` is a sealed value (else a secret stored in clear by an older hallmark).
pub fn is_sealed(stored: &[u8]) -> bool {
    stored.len() > MAGIC.len() + NONCE_LEN + TAG_LEN && stored.starts_with(MAGIC)
}
