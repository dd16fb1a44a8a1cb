//! ACME records (RFC 8555): EAB keys, accounts, nonces, orders, authorizations, challenges.

use super::*;

/// An external account binding key, made for a publisher by an officer.
#[derive(Debug, Clone)]
pub struct EabKey {
    pub kid: String,
    pub publisher: String,
    pub hmac_key: Vec<u8>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// The account the key was bound to (a key binds one account).
    pub account_id: Option<String>,
}

/// An ACME account.
#[derive(Debug, Clone)]
pub struct AcmeAccount {
    pub id: String,
    /// The directory (profile) the account was made under.
    pub directory: String,
    pub publisher: String,
    /// The account key as a JWK (JSON text).
    pub jwk: String,
    pub thumbprint: String,
    pub status: super::AcmeAccountStatus,
    /// JSON array of contact URLs.
    pub contact: String,
    pub eab_kid: Option<String>,
    pub created_at: i64,
}

/// An ACME order.
#[derive(Debug, Clone)]
pub struct AcmeOrder {
    pub id: String,
    pub account_id: String,
    pub directory: String,
    pub status: super::AcmeOrderStatus,
    /// JSON array of `{type, value}`.
    pub identifiers: String,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    pub expires_at: i64,
    /// A problem document (JSON) when the order is invalid.
    pub error: Option<String>,
    pub cert_serial: Option<String>,
    pub created_at: i64,
}

/// An authorization of one identifier for one order.
#[derive(Debug, Clone)]
pub struct AcmeAuthz {
    pub id: String,
    pub order_id: String,
    pub account_id: String,
    pub id_type: String,
    pub id_value: String,
    pub status: super::AcmeAuthzStatus,
    pub expires_at: i64,
}

/// A challenge of an authorization.
#[derive(Debug, Clone)]
pub struct AcmeChallenge {
    pub id: String,
    pub authz_id: String,
    /// `http-01`, `tls-alpn-01` or `dns-01`.
    pub kind: String,
    pub token: String,
    pub status: super::AcmeChallengeStatus,
    pub validated_at: Option<i64>,
    /// A problem document (JSON) when the challenge failed.
    pub error: Option<String>,
}

/// Reads of ACME records.
pub trait AcmeRead: Send + Sync {
    fn get_eab_key(&self, kid: &str) -> Result<Option<EabKey>, StoreError>;

    /// EAB keys whose HMAC key an older hallmark stored in clear (kid, key), to be sealed.
    fn eab_keys_in_clear(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    fn list_eab_keys(&self) -> Result<Vec<EabKey>, StoreError>;

    fn get_acme_account(&self, id: &str) -> Result<Option<AcmeAccount>, StoreError>;

    fn find_acme_account_by_thumbprint(
        &self,
        thumbprint: &str,
    ) -> Result<Option<AcmeAccount>, StoreError>;

    fn get_acme_order(&self, id: &str) -> Result<Option<AcmeOrder>, StoreError>;

    fn list_acme_orders(&self, account_id: &str) -> Result<Vec<String>, StoreError>;

    fn get_acme_authz(&self, id: &str) -> Result<Option<AcmeAuthz>, StoreError>;

    fn acme_authzs_of_order(&self, order_id: &str) -> Result<Vec<AcmeAuthz>, StoreError>;

    fn acme_challenges_of_authz(&self, authz_id: &str) -> Result<Vec<AcmeChallenge>, StoreError>;

    fn get_acme_challenge(&self, id: &str) -> Result<Option<AcmeChallenge>, StoreError>;

    /// The order that produced a certificate, if ACME issued it.
    fn acme_order_of_certificate(&self, serial: &str) -> Result<Option<AcmeOrder>, StoreError>;

    /// Whether the account holds a valid, unexpired authorization for an identifier.
    fn acme_account_authorized_for(
        &self,
        account_id: &str,
        id_type: &str,
        id_value: &str,
    ) -> Result<bool, StoreError>;
}

/// Writes of ACME records, each with its audit event in the same transaction.
pub trait AcmeWrite: Send + Sync {
    fn insert_eab_key(&self, k: &EabKey, actor: &str) -> Result<(), StoreError>;

    /// Replaces an EAB key's stored HMAC key `old` by `sealed` (the same key, sealed).
    fn replace_eab_hmac(&self, kid: &str, old: &[u8], sealed: &[u8]) -> Result<(), StoreError>;

    fn revoke_eab_key(&self, kid: &str, actor: &str) -> Result<(), StoreError>;

    /// Stores a fresh nonce; expired ones are swept now and then.
    fn insert_acme_nonce(&self, nonce: &str, expires_at: i64) -> Result<(), StoreError>;

    /// Takes a nonce: true if it existed and had not expired (it is gone either way).
    fn take_acme_nonce(&self, nonce: &str) -> Result<bool, StoreError>;

    /// Creates an account; binds the EAB key to it in the same transaction (a key binds once).
    fn insert_acme_account(&self, a: &AcmeAccount, actor: &str) -> Result<(), StoreError>;

    /// Updates contact and/or status (deactivation).
    fn update_acme_account(
        &self,
        id: &str,
        contact: Option<&str>,
        status: Option<super::AcmeAccountStatus>,
        actor: &str,
    ) -> Result<(), StoreError>;

    /// Replaces an account's key (keyChange); refuses a key another account holds.
    fn change_acme_account_key(
        &self,
        id: &str,
        jwk: &str,
        thumbprint: &str,
        actor: &str,
    ) -> Result<(), StoreError>;

    /// Writes a new order with its authorizations and their challenges.
    fn insert_acme_order(
        &self,
        o: &AcmeOrder,
        authzs: &[(AcmeAuthz, Vec<AcmeChallenge>)],
        actor: &str,
    ) -> Result<(), StoreError>;

    /// Moves a pending challenge to processing; false if it was not pending.
    fn start_acme_challenge(&self, id: &str, actor: &str) -> Result<bool, StoreError>;

    /// Records a validation's outcome and moves the authorization and its order on: a valid
    /// challenge makes the authorization valid (and the order ready once all are); a failed one
    /// makes both invalid.
    fn finish_acme_challenge(
        &self,
        id: &str,
        error: Option<&str>,
        actor: &str,
    ) -> Result<(), StoreError>;

    /// Deactivates an authorization (and so its pending order).
    fn deactivate_acme_authz(&self, id: &str, actor: &str) -> Result<(), StoreError>;

    /// Moves a ready order to processing; false if it was not ready.
    fn start_acme_finalize(&self, id: &str, actor: &str) -> Result<bool, StoreError>;

    /// Ends finalization: valid with the certificate, or invalid with the problem (JSON).
    fn finish_acme_order(
        &self,
        id: &str,
        outcome: Result<&str, &str>,
        actor: &str,
    ) -> Result<(), StoreError>;
}
