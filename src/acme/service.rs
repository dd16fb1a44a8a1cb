//! The ACME service: the account, order, authorization and challenge state machine (RFC 8555),
//! between the HTTP edge (`http::acme`, which verifies the JWS and renders JSON) and the store.
//! Every state change is made here, never in the HTTP layer; certificates come only from the
//! engine's one issuance path (policy, lint, record), as the account's publisher.
//!
//! This file holds the service itself, nonces and accounts; `orders.rs` the orders,
//! authorizations and challenges; `finalize.rs` issuance and revocation.

use std::sync::Arc;

use serde_json::Value;

use super::jws::Jwk;
use super::{eab, random_token, AcmeError, ProblemType};
use crate::engine::Hallmark;
use crate::store::{AcmeAccount, AcmeAccountStatus, StoreError};

pub(super) type AResult<T> = Result<T, AcmeError>;

/// The ACME service of one directory (`/acme/{profile}/`).
pub struct Acme<'a> {
    pub(super) hm: &'a Arc<Hallmark>,
    /// The directory's profile name.
    pub directory: &'a str,
}

/// What newAccount did.
pub enum NewAccount {
    /// A new account (201).
    Created(AcmeAccount),
    /// The key's account already exists in this directory (200).
    Existing(AcmeAccount),
}

/// What keyChange did.
pub enum KeyChange {
    Changed(AcmeAccount),
    /// Another account already has the new key (409, with its id).
    KeyInUse(String),
}

/// The actor an account's changes are audited as.
pub(super) fn actor(a: &AcmeAccount) -> String {
    format!("acme:{}({})", a.id, a.publisher)
}

impl<'a> Acme<'a> {
    pub fn new(hm: &'a Arc<Hallmark>, directory: &'a str) -> Self {
        Acme { hm, directory }
    }

    /// Whether the directory asks for an external account binding.
    pub fn eab_required(&self) -> bool {
        self.hm
            .config
            .acme
            .directories
            .get(self.directory)
            .map(|d| d.eab_required)
            .unwrap_or(true)
    }

    /// A fresh nonce, stored for `[acme] nonce_lifetime_secs`.
    pub fn new_nonce(&self) -> Result<String, StoreError> {
        let nonce = random_token(16);
        let expires = self.hm.clock.now() + self.hm.config.acme.nonce_lifetime_secs as i64;
        self.hm.store.insert_acme_nonce(&nonce, expires)?;
        Ok(nonce)
    }

    /// Uses up `nonce`: refused if it is unknown, used or expired.
    pub fn use_nonce(&self, nonce: &str) -> AResult<()> {
        if nonce.is_empty() || !self.hm.store.take_acme_nonce(nonce)? {
            return Err(AcmeError::new(
                ProblemType::BadNonce,
                "the nonce is unknown, used or expired",
            ));
        }
        Ok(())
    }

    /// The valid account `id` of this directory (a request signed with its `kid`).
    pub fn signing_account(&self, id: &str, kid: &str) -> AResult<AcmeAccount> {
        let acct = self
            .hm
            .store
            .get_acme_account(id)?
            .filter(|a| a.directory == self.directory)
            .ok_or_else(|| {
                AcmeError::new(
                    ProblemType::AccountDoesNotExist,
                    format!("no account at {kid}"),
                )
            })?;
        if acct.status != AcmeAccountStatus::Valid {
            return Err(AcmeError::unauthorized(format!(
                "the account is {}",
                acct.status
            )));
        }
        Ok(acct)
    }

    /// The account as stored now.
    pub fn account(&self, id: &str) -> AResult<AcmeAccount> {
        self.hm
            .store
            .get_acme_account(id)?
            .ok_or_else(AcmeError::internal)
    }

    /// newAccount: the key's existing account, or a new one bound to the publisher of its EAB
    /// key (or the directory's publisher where no binding is required). `url` is the
    /// newAccount URL the binding must name.
    pub fn new_account(&self, key: &Jwk, payload: &Value, url: &str) -> AResult<NewAccount> {
        let thumb = key.thumbprint();
        if let Some(existing) = self.hm.store.find_acme_account_by_thumbprint(&thumb)? {
            if existing.directory == self.directory && existing.status != AcmeAccountStatus::Valid {
                return Err(AcmeError::unauthorized(format!(
                    "the account of this key is {}",
                    existing.status
                )));
            }
            if existing.directory == self.directory {
                return Ok(NewAccount::Existing(existing));
            }
        }
        if payload.get("onlyReturnExisting").and_then(Value::as_bool) == Some(true) {
            return Err(AcmeError::new(
                ProblemType::AccountDoesNotExist,
                "no account has this key",
            ));
        }
        let contact = contacts(payload)?;
        let dir = self
            .hm
            .config
            .acme
            .directories
            .get(self.directory)
            .cloned()
            .unwrap_or_default();
        let (publisher, eab_kid) = match payload.get("externalAccountBinding") {
            Some(binding) => {
                let key = eab::verify_binding(binding, key, url, |kid| {
                    let Some(mut k) = self.hm.store.get_eab_key(kid)? else {
                        return Ok(None);
                    };
                    k.hmac_key = match self.hm.unseal(kid, &k.hmac_key) {
                        Ok(key) => key.to_vec(),
                        Err(e) => {
                            // The key store is down or holds another sealing key: a server
                            // fault, with the detail in the log only.
                            tracing::warn!("acme: EAB key {kid}: {e}");
                            return Err(AcmeError::internal());
                        }
                    };
                    Ok(Some(k))
                })?;
                (key.publisher, Some(key.kid))
            }
            None if dir.eab_required => return Err(eab::required()),
            None => match dir.publisher {
                Some(p) => (p, None),
                None => return Err(eab::required()),
            },
        };
        let acct = AcmeAccount {
            id: random_token(12),
            directory: self.directory.to_string(),
            publisher,
            jwk: key.canonical().to_string(),
            thumbprint: thumb,
            status: AcmeAccountStatus::Valid,
            contact: contact.unwrap_or_else(|| "[]".into()),
            eab_kid,
            created_at: self.hm.clock.now(),
        };
        match self.hm.store.insert_acme_account(&acct, "acme:new-account") {
            Ok(()) => Ok(NewAccount::Created(acct)),
            Err(StoreError::Conflict(what)) => {
                Err(AcmeError::unauthorized(format!("{what} already exists")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// An account update: new contacts and/or `deactivated`.
    pub fn update_account(
        &self,
        acct: &AcmeAccount,
        contact: Option<&str>,
        status: Option<&str>,
    ) -> AResult<AcmeAccount> {
        let status = match status {
            None => None,
            Some("deactivated") => Some(AcmeAccountStatus::Deactivated),
            Some(s) => {
                return Err(AcmeError::malformed(format!(
                    "an account's status can only become 'deactivated', not '{s}'"
                )))
            }
        };
        if contact.is_some() || status.is_some() {
            self.hm
                .store
                .update_acme_account(&acct.id, contact, status, &actor(acct))?;
        }
        self.account(&acct.id)
    }

    /// keyChange, after the inner JWS was verified: the account's key becomes `new_key`.
    pub fn change_key(&self, acct: &AcmeAccount, new_key: &Jwk) -> AResult<KeyChange> {
        let thumb = new_key.thumbprint();
        if let Some(other) = self.hm.store.find_acme_account_by_thumbprint(&thumb)? {
            return Ok(KeyChange::KeyInUse(other.id));
        }
        self.hm.store.change_acme_account_key(
            &acct.id,
            new_key.canonical(),
            &thumb,
            &actor(acct),
        )?;
        Ok(KeyChange::Changed(self.account(&acct.id)?))
    }

    /// The ids of an account's orders.
    pub fn orders(&self, acct: &AcmeAccount) -> AResult<Vec<String>> {
        Ok(self.hm.store.list_acme_orders(&acct.id)?)
    }
}

/// The `contact` of a payload: `mailto:` addresses only, as a JSON array (`None`: not given).
pub fn contacts(v: &Value) -> AResult<Option<String>> {
    let Some(c) = v.get("contact") else {
        return Ok(None);
    };
    let list = c
        .as_array()
        .ok_or_else(|| AcmeError::malformed("'contact' is not an array"))?;
    if list.len() > 10 {
        return Err(AcmeError::new(
            ProblemType::InvalidContact,
            "at most 10 contacts",
        ));
    }
    for x in list {
        let s = x
            .as_str()
            .ok_or_else(|| AcmeError::malformed("a contact is not a string"))?;
        if !s.starts_with("mailto:") {
            return Err(AcmeError::new(
                ProblemType::UnsupportedContact,
                format!("contact '{s}' is not a mailto: URL"),
            ));
        }
        if s.len() > 256 || s.contains(',') || s.chars().any(char::is_control) {
            return Err(AcmeError::new(
                ProblemType::InvalidContact,
                format!("contact '{s}' is not one address"),
            ));
        }
    }
    Ok(Some(c.to_string()))
}
