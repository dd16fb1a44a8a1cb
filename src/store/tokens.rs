//! API token records and the web console's sessions made with them: only hashes of their
//! secrets are stored.

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

/// A web console session: the hash of its cookie's id, the token that signed in, its clocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Lower-case hex SHA-256 of the cookie's opaque id.
    pub id_hash: String,
    pub token_id: String,
    pub created_at: i64,
    pub last_seen: i64,
    /// The absolute end, whatever the activity.
    pub expires_at: i64,
    /// The person the console's identity provider signed in (its `[console.oidc] claim`), when
    /// a person, not a token, signed in.
    pub person: Option<String>,
}

/// Reads of API tokens and console sessions.
pub trait TokensRead: Send + Sync {
    fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError>;

    fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    fn get_session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError>;
}

/// Writes of API tokens, each with its audit event in the same transaction.
pub trait TokensWrite: Send + Sync {
    fn insert_token(&self, t: &TokenRecord, actor: &str) -> Result<(), StoreError>;

    /// Revokes a token; revoking twice is a conflict. (Its console sessions end at their next
    /// use, which finds the token revoked and says so.)
    fn revoke_token(&self, id: &str, at: i64, actor: &str) -> Result<(), StoreError>;

    /// Records a console sign-in (audited `session.created` on the token), dropping sessions
    /// already past their end.
    fn insert_session(&self, s: &SessionRecord, actor: &str) -> Result<(), StoreError>;

    /// Marks a session used at `at`.
    fn touch_session(&self, id_hash: &str, at: i64) -> Result<(), StoreError>;

    /// Ends a session (sign-out, or found past its idle or absolute end); `actor` `None`
    /// records nothing in the audit trail (an expiry). Ending one already gone is not an error.
    fn end_session(&self, id_hash: &str, actor: Option<&str>) -> Result<(), StoreError>;
}
