//! API tokens: made with their scopes (only the hash of the secret is stored) and checked on every request.

use super::*;

/// API tokens: made, checked on every request, revoked. Holds the store and the clock.
pub struct Tokens {
    store: Arc<dyn Store>,
    clock: SharedClock,
}

impl Tokens {
    pub fn new(store: Arc<dyn Store>, clock: SharedClock) -> Tokens {
        Tokens { store, clock }
    }
}

impl Tokens {
    /// Creates an API token; returns its record and the secret, which is never shown again.
    pub fn create_token(
        &self,
        publisher: Option<&str>,
        name: Option<&str>,
        scopes: &[Scope],
        officer: bool,
        expires_in: Option<i64>,
        actor: &str,
    ) -> Result<(TokenRecord, String)> {
        if let Some(p) = publisher {
            if self.store.get_publisher(p)?.is_none() {
                return Err(policy::PolicyError::UnknownPublisher(p.to_string()).into());
            }
        } else if !officer {
            return Err(RequestError::TokenWithoutOwner.into());
        }
        let t = auth::new_token();
        let name = name
            .map(str::to_string)
            .unwrap_or_else(|| format!("token-{}", t.id));
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
        if !ok {
            return Err(RequestError::BadTokenName(name.to_string()).into());
        }
        let rec = TokenRecord {
            id: t.id,
            name,
            hash: t.hash,
            publisher: publisher.map(str::to_string),
            officer,
            scopes: Scope::join(scopes),
            expires_at: expires_in.map(|s| self.clock.now() + s),
            revoked_at: None,
            created_at: self.clock.now(),
        };
        self.store.insert_token(&rec, actor)?;
        Ok((rec, t.secret_token))
    }

    /// Checks a bearer token: 401 for anything missing, malformed, unknown, revoked or expired.
    pub fn authenticate(
        &self,
        bearer: Option<&str>,
        address: Option<String>,
    ) -> Result<Credential> {
        let token = bearer.ok_or_else(|| {
            AuthError::Unauthorized("no token: send Authorization: Bearer hmk_...".into())
        })?;
        let (id, secret) = auth::parse_token(token)?;
        // One read of the record cache's generation per request: whatever another process
        // (the command line) changed before this request began is seen by all its lookups.
        self.store.sync_cache()?;
        let rec = self
            .store
            .get_token(id)?
            .ok_or_else(|| AuthError::Unauthorized("unknown token".into()))?;
        if !auth::digest_eq(&auth::hash_secret(secret), &rec.hash) {
            return Err(AuthError::Unauthorized("unknown token".into()).into());
        }
        credential_of(rec, address, self.clock.now())
    }

    /// The credential of token `id` as it stands now, without its secret: a console session
    /// proved the secret at sign-in and asks again on every request whether the token still
    /// holds (not revoked, not expired).
    pub(crate) fn credential_of_token(
        &self,
        id: &str,
        address: Option<String>,
    ) -> Result<Credential> {
        self.store.sync_cache()?;
        let rec = self
            .store
            .get_token(id)?
            .ok_or_else(|| AuthError::Unauthorized("unknown token".into()))?;
        credential_of(rec, address, self.clock.now())
    }

    /// Revokes token `id`; revoking it twice is refused, saying when it was.
    pub fn revoke_token(&self, id: &str, actor: &str) -> Result<()> {
        let Some(rec) = self.store.get_token(id)? else {
            return Err(Error::NotFound(format!(
                "token '{id}' (hallmark token list shows the ids)"
            )));
        };
        if let Some(at) = rec.revoked_at {
            return Err(Error::Conflict(format!(
                "token {id} was already revoked at {}; nothing changed",
                crate::store::rfc3339(at)
            )));
        }
        self.store.revoke_token(id, self.clock.now(), actor)?;
        Ok(())
    }
}

/// A stored token's credential, if it still holds: not revoked, not of a reserved publisher,
/// not expired.
fn credential_of(rec: TokenRecord, address: Option<String>, now: i64) -> Result<Credential> {
    if rec.revoked_at.is_some() {
        return Err(AuthError::Unauthorized("this token was revoked".into()).into());
    }
    // A publisher created with a reserved id before it was reserved: its tokens act for
    // nobody, so they cannot reach hallmark's own certificates (doctor names the record).
    if rec
        .publisher
        .as_deref()
        .is_some_and(policy::identity::is_reserved_publisher)
    {
        return Err(AuthError::Unauthorized(format!(
            "this token's publisher id '{}' is reserved for hallmark itself; create a publisher with another id and a new token",
            rec.publisher.as_deref().unwrap_or_default()
        ))
        .into());
    }
    if rec.expires_at.is_some_and(|e| e <= now) {
        return Err(AuthError::Unauthorized("this token has expired".into()).into());
    }
    let scopes = Scope::parse_list(&rec.scopes)
        .map_err(|e| Error::Corrupt(format!("the stored token scopes: {e}")))?;
    Ok(Credential {
        token_id: rec.id,
        name: rec.name,
        publisher: rec.publisher,
        officer: rec.officer,
        scopes,
        address,
        request_id: None,
        workload: None,
        person: None,
    })
}
