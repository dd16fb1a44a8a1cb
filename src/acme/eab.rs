//! External account binding (RFC 8555 §7.3.4): an officer makes a key for a publisher
//! (`hallmark acme eab create`); a new account proves it holds that key with an HMAC over its
//! own account JWK, and so belongs to the publisher.

use serde_json::Value;

use super::jws::{Jwk, Jws};
use super::{b64, random_token, AcmeError, ProblemType};
use crate::store::EabKey;

/// A new EAB key: its kid and the HMAC key (shown once, base64url).
pub struct NewEabKey {
    pub record: EabKey,
    pub hmac_b64: String,
}

/// Makes a key for a publisher (256-bit HMAC key, random kid).
pub fn new_key(publisher: &str, now: i64) -> NewEabKey {
    use rand::RngCore;
    // A key whose base64url starts with '-' reads as an option on a command line
    // (`certbot --eab-hmac-key -x...`): drawn again until it does not (1 in 64 does).
    let (key, hmac_b64) = loop {
        let mut key = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        let text = b64(&key);
        if !text.starts_with('-') {
            break (key, text);
        }
    };
    NewEabKey {
        record: EabKey {
            kid: format!("eab_{}", random_token(12)),
            publisher: publisher.to_string(),
            hmac_key: key,
            created_at: now,
            revoked_at: None,
            account_id: None,
        },
        hmac_b64,
    }
}

/// Checks a newAccount's `externalAccountBinding` against the account key and the newAccount
/// URL; returns the EAB key it used (still to be bound, which the store does atomically).
pub fn verify_binding(
    binding: &Value,
    account_key: &Jwk,
    new_account_url: &str,
    lookup: impl FnOnce(&str) -> Result<Option<EabKey>, AcmeError>,
) -> Result<EabKey, AcmeError> {
    let jws = Jws::from_value(binding)?;
    let p = &jws.protected;
    if p.nonce.is_some() {
        return Err(AcmeError::malformed(
            "the external account binding must not carry a nonce",
        ));
    }
    if p.jwk.is_some() {
        return Err(AcmeError::malformed(
            "the external account binding must name its key with 'kid'",
        ));
    }
    if p.url.as_deref() != Some(new_account_url) {
        return Err(AcmeError::unauthorized(
            "the external account binding's url is not the newAccount URL",
        ));
    }
    let kid = p
        .kid
        .as_deref()
        .ok_or_else(|| AcmeError::malformed("the external account binding has no 'kid'"))?;
    let inner: Value = serde_json::from_slice(&jws.payload)
        .map_err(|_| AcmeError::malformed("the external account binding's payload is not a JWK"))?;
    if Jwk::from_json(&inner)?.canonical() != account_key.canonical() {
        return Err(AcmeError::unauthorized(
            "the external account binding is for another account key",
        ));
    }
    let key = lookup(kid)?
        .ok_or_else(|| AcmeError::unauthorized(format!("EAB key '{kid}' is unknown")))?;
    if key.revoked_at.is_some() {
        return Err(AcmeError::unauthorized(format!(
            "EAB key '{kid}' was revoked"
        )));
    }
    if key.account_id.is_some() {
        return Err(AcmeError::unauthorized(format!(
            "EAB key '{kid}' is already bound to an account"
        )));
    }
    jws.verify_hmac(&key.hmac_key)?;
    Ok(key)
}

/// The error for a newAccount without a binding where one is required.
pub fn required() -> AcmeError {
    AcmeError::new(
        ProblemType::ExternalAccountRequired,
        "this directory needs an external account binding: ask an officer for `hallmark acme eab create --publisher ...`",
    )
}

/// A new EAB key for `publisher`, sealed and recorded; the HMAC key comes back in clear, to be
/// shown once, with the directories its accounts may order from. Refused for an unknown
/// publisher and for one that may use the profile of no ACME directory (every order would fail
/// at finalize).
pub fn create(
    hm: &crate::engine::Hallmark,
    publisher: &str,
    actor: &str,
) -> crate::error::Result<(NewEabKey, Vec<String>)> {
    use crate::error::Error;
    let Some(p) = hm.store.get_publisher(publisher)? else {
        return Err(crate::policy::PolicyError::UnknownPublisher(publisher.to_string()).into());
    };
    let directories: Vec<&String> = hm.config.acme.directories.keys().collect();
    let usable: Vec<String> = directories
        .iter()
        .filter(|d| p.profiles.iter().any(|q| q == **d))
        .map(|d| d.to_string())
        .collect();
    if usable.is_empty() {
        return Err(Error::Conflict(format!(
            "publisher '{publisher}' may not use the profile of any ACME directory ({}): its profiles are {}. Add one (hallmark publisher update {publisher} --profiles ...) or a directory for one of its profiles ([acme.directories.PROFILE] in the config), then create the key",
            directories.iter().map(|d| format!("/acme/{d}/")).collect::<Vec<_>>().join(", "),
            if p.profiles.is_empty() { "none".to_string() } else { p.profiles.join(", ") }
        )));
    }
    let mut k = new_key(publisher, hm.clock.now());
    let clear = k.record.hmac_key.clone();
    // The database keeps the HMAC key sealed; it is shown once, in clear.
    k.record.hmac_key = hm.seal(&k.record.kid, &clear)?;
    hm.store.insert_eab_key(&k.record, actor)?;
    Ok((k, usable))
}

#[cfg(test)]
mod tests {
    #[test]
    fn printed_keys_never_start_with_a_dash() {
        // 1 in 64 raw draws would; 2,000 keys see about 31 of them redrawn.
        for _ in 0..2000 {
            assert!(!super::new_key("p", 0).hmac_b64.starts_with('-'));
        }
    }
}
