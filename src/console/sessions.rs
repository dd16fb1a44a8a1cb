//! Console sessions: a token signs in once; the browser then holds only an opaque random id in
//! a cookie, the store only its SHA-256. Every request finds the session, checks its idle and
//! absolute ends, and asks again whether the token holds (a revoked or expired token ends its
//! sessions). The CSRF token of a session is derived from its id, so it is never stored.

use sha2::{Digest, Sha256};

use crate::engine::Hallmark;
use crate::error::{Error, Result};
use crate::policy::auth::{AuthError, Credential};
use crate::store::SessionRecord;

/// A session's last use is written at most this often (not on every page): its idle end is
/// exact to within this.
const TOUCH_EVERY_SECS: i64 = 30;

/// Why a session no longer admits its holder (the console answers each with the sign-in page
/// and this reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// No such session (never made, signed out, or its token revoked).
    Unknown,
    Idle,
    Absolute,
    /// The token it was made with no longer holds.
    TokenGone,
}

impl Ended {
    pub fn says(self) -> &'static str {
        match self {
            Ended::Unknown => "Please sign in.",
            Ended::Idle => "Your session ended after a time without use. Please sign in again.",
            Ended::Absolute => "Your session reached its time limit. Please sign in again.",
            Ended::TokenGone => {
                "The token this session was made with was revoked or has expired. Sign in with a valid token."
            }
        }
    }
}

/// A signed-in person: the credential the token gives, and the session's CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    pub cred: Credential,
    pub csrf: String,
    pub expires_at: i64,
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The CSRF token of the session whose cookie holds `secret`.
pub fn csrf_of(secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"hallmark console csrf\0");
    h.update(secret.as_bytes());
    hex::encode(&h.finalize()[..16])
}

impl Hallmark {
    /// Signs in with a hallmark token: the cookie's value (returned once, kept only as a hash)
    /// and the session. A bad token is refused as the API refuses it.
    pub fn sign_in(&self, token: &str, address: Option<String>) -> Result<(String, Session)> {
        let cred = self.tokens.authenticate(Some(token.trim()), address)?;
        let actor = cred.actor();
        self.open_session(cred, &actor)
    }

    /// Signs in a person the console's identity provider vouched for (`id`: the value of its
    /// `[console.oidc] claim`), with the rights of the token `[[console.person]]` gives them.
    pub fn sign_in_person(&self, id: &str, address: Option<String>) -> Result<(String, Session)> {
        let Some(person) = self.config.console.people.iter().find(|p| p.id == id) else {
            return Err(AuthError::Forbidden(format!(
                "'{id}' signed in at the identity provider but is not a [[console.person]] here; ask an officer to add them"
            ))
            .into());
        };
        let mut cred = self.tokens.credential_of_token(&person.token, address)?;
        cred.person = Some(id.to_string());
        let actor = cred.actor();
        self.open_session(cred, &actor)
    }

    fn open_session(&self, cred: Credential, actor: &str) -> Result<(String, Session)> {
        use base64::Engine as _;
        let mut raw = [0u8; 32];
        rand::Rng::fill(&mut rand::rngs::OsRng, &mut raw);
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let at = self.clock.now();
        let expires_at = at + i64::from(self.config.console.absolute_hours) * 3600;
        self.store.insert_session(
            &SessionRecord {
                id_hash: hash(&secret),
                token_id: cred.token_id.clone(),
                created_at: at,
                last_seen: at,
                expires_at,
                person: cred.person.clone(),
            },
            actor,
        )?;
        let csrf = csrf_of(&secret);
        Ok((
            secret,
            Session {
                cred,
                csrf,
                expires_at,
            },
        ))
    }

    /// The session whose cookie holds `secret`, if it still admits its holder.
    pub fn session(
        &self,
        secret: &str,
        address: Option<String>,
    ) -> Result<std::result::Result<Session, Ended>> {
        let id_hash = hash(secret);
        let Some(s) = self.store.get_session(&id_hash)? else {
            return Ok(Err(Ended::Unknown));
        };
        let at = self.clock.now();
        let idle = i64::from(self.config.console.idle_minutes) * 60;
        let ended = if at >= s.expires_at {
            Some(Ended::Absolute)
        } else if at - s.last_seen >= idle {
            Some(Ended::Idle)
        } else {
            None
        };
        if let Some(e) = ended {
            self.store.end_session(&id_hash, None)?;
            return Ok(Err(e));
        }
        let mut cred = match self.tokens.credential_of_token(&s.token_id, address) {
            Ok(c) => c,
            Err(Error::Auth(AuthError::Unauthorized(_))) => {
                self.store.end_session(&id_hash, None)?;
                return Ok(Err(Ended::TokenGone));
            }
            Err(e) => return Err(e),
        };
        // Every event the session causes names the person, beside the token's rights.
        cred.person = s.person.clone();
        if at - s.last_seen >= TOUCH_EVERY_SECS {
            self.store.touch_session(&id_hash, at)?;
        }
        Ok(Ok(Session {
            cred,
            csrf: csrf_of(secret),
            expires_at: s.expires_at,
        }))
    }

    /// Signs out: the session is gone, whatever the cookie still holds.
    pub fn sign_out(&self, secret: &str, cred: &Credential) -> Result<()> {
        self.store.end_session(&hash(secret), Some(&cred.actor()))?;
        Ok(())
    }
}
