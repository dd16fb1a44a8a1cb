//! API token records: only the hash of the secret is stored.

use super::*;

/// A token as stored.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub hash: String,
    pub publisher: Option<String>,
    pub officer: bool,
    pub scopes: String,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

/// Reads of API tokens.
pub trait TokensRead: Send + Sync {
    fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError>;

    fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
}

/// Writes of API tokens, each with its audit event in the same transaction.
pub trait TokensWrite: Send + Sync {
    fn insert_token(&self, t: &TokenRecord, actor: &str) -> Result<(), StoreError>;

    /// Revokes a token; revoking twice is a conflict.
    fn revoke_token(&self, id: &str, at: i64, actor: &str) -> Result<(), StoreError>;
}
