//! ACME orders, authorizations and challenges: a new order makes an authorization per
//! identifier with its challenges; a challenge the client answers is validated in the
//! background (a bounded number at a time) and its outcome recorded; the store moves the order
//! on to `ready` when every authorization is valid.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;

use super::identifier::Identifier;
use super::jws::Jwk;
use super::service::{actor, AResult, Acme};
use super::validate::{self, Settings};
use super::{random_token, AcmeError, ProblemType};
use crate::engine::Hallmark;
use crate::store::{
    AcmeAccount, AcmeAuthz, AcmeAuthzStatus, AcmeChallenge, AcmeChallengeStatus, AcmeOrder,
    AcmeOrderStatus,
};

/// Validations running now, and the most there may be (each holds a thread for at most a few
/// timeouts).
static VALIDATIONS: AtomicUsize = AtomicUsize::new(0);
const MAX_VALIDATIONS: usize = 32;

impl Acme<'_> {
    /// newOrder: the order, an authorization per identifier and their challenges, in one write.
    pub fn new_order(&self, acct: &AcmeAccount, payload: &Value) -> AResult<AcmeOrder> {
        if payload.get("notBefore").is_some() || payload.get("notAfter").is_some() {
            return Err(AcmeError::malformed(
                "notBefore and notAfter are not supported: validity comes from the profile",
            ));
        }
        let profile = self
            .hm
            .profiles
            .get(self.directory)
            .map_err(|_| AcmeError::internal())?;
        let ids = super::identifier::parse_order(payload, profile)?;
        let now = self.hm.clock.now();
        let cfg = &self.hm.config.acme;
        let expires = now + cfg.order_lifetime_secs as i64;
        let order_id = random_token(12);
        let mut authzs = Vec::new();
        for id in &ids {
            let authz_id = random_token(12);
            let kinds: &[&str] = if id.kind == "dns" {
                &["dns-01", "http-01", "tls-alpn-01"]
            } else {
                &["http-01", "tls-alpn-01"]
            };
            let chs = kinds
                .iter()
                .map(|k| AcmeChallenge {
                    id: random_token(12),
                    authz_id: authz_id.clone(),
                    kind: k.to_string(),
                    token: random_token(32),
                    status: AcmeChallengeStatus::Pending,
                    validated_at: None,
                    error: None,
                })
                .collect();
            authzs.push((
                AcmeAuthz {
                    id: authz_id,
                    order_id: order_id.clone(),
                    account_id: acct.id.clone(),
                    id_type: id.kind.clone(),
                    id_value: id.value.clone(),
                    status: AcmeAuthzStatus::Pending,
                    expires_at: expires.min(now + cfg.authz_lifetime_secs as i64),
                },
                chs,
            ));
        }
        let order = AcmeOrder {
            id: order_id,
            account_id: acct.id.clone(),
            directory: self.directory.to_string(),
            status: AcmeOrderStatus::Pending,
            identifiers: serde_json::to_string(&ids).map_err(|_| AcmeError::internal())?,
            not_before: None,
            not_after: None,
            expires_at: expires,
            error: None,
            cert_serial: None,
            created_at: now,
        };
        self.hm
            .store
            .insert_acme_order(&order, &authzs, &actor(acct))?;
        Ok(order)
    }

    /// Order `id`, if it is the account's.
    pub fn order(&self, acct: &AcmeAccount, id: &str) -> AResult<AcmeOrder> {
        self.hm
            .store
            .get_acme_order(id)?
            .filter(|o| o.account_id == acct.id)
            .ok_or_else(|| {
                AcmeError::malformed(format!("no order {id} of this account")).with_status(404)
            })
    }

    /// The authorizations of an order.
    pub fn authzs_of(&self, order: &AcmeOrder) -> AResult<Vec<AcmeAuthz>> {
        Ok(self.hm.store.acme_authzs_of_order(&order.id)?)
    }

    /// Authorization `id`, if it is the account's.
    pub fn authz(&self, acct: &AcmeAccount, id: &str) -> AResult<AcmeAuthz> {
        self.hm
            .store
            .get_acme_authz(id)?
            .filter(|a| a.account_id == acct.id)
            .ok_or_else(|| {
                AcmeError::malformed(format!("no authorization {id} of this account"))
                    .with_status(404)
            })
    }

    /// An authorization update: only to `deactivated`.
    pub fn update_authz(
        &self,
        acct: &AcmeAccount,
        id: &str,
        status: Option<&str>,
    ) -> AResult<AcmeAuthz> {
        let a = self.authz(acct, id)?;
        match status {
            Some("deactivated") => self.hm.store.deactivate_acme_authz(&a.id, &actor(acct))?,
            Some(s) => {
                return Err(AcmeError::malformed(format!(
                    "an authorization's status can only become 'deactivated', not '{s}'"
                )))
            }
            None => {}
        }
        self.authz(acct, id)
    }

    /// The challenges of an authorization.
    pub fn challenges_of(&self, authz: &AcmeAuthz) -> AResult<Vec<AcmeChallenge>> {
        Ok(self.hm.store.acme_challenges_of_authz(&authz.id)?)
    }

    /// Challenge `id` of the account, with its authorization. With `respond` (the client sent
    /// `{}`), a pending challenge is validated in the background; the client polls for the
    /// outcome.
    pub fn challenge(
        &self,
        acct: &AcmeAccount,
        id: &str,
        respond: bool,
    ) -> AResult<(AcmeChallenge, AcmeAuthz)> {
        let c =
            self.hm.store.get_acme_challenge(id)?.ok_or_else(|| {
                AcmeError::malformed(format!("no challenge {id}")).with_status(404)
            })?;
        let a = self.authz(acct, &c.authz_id)?;
        if respond && c.status == AcmeChallengeStatus::Pending {
            if a.status != AcmeAuthzStatus::Pending {
                return Err(AcmeError::malformed(format!(
                    "the authorization is {}",
                    a.status
                )));
            }
            if VALIDATIONS.load(Ordering::SeqCst) >= MAX_VALIDATIONS {
                return Err(AcmeError::new(
                    ProblemType::RateLimited,
                    "too many validations are running; retry in a few seconds",
                ));
            }
            if self.hm.store.start_acme_challenge(&c.id, &actor(acct))? {
                spawn_validation(self.hm.clone(), acct, &a, &c)?;
            }
        }
        let c = self
            .hm
            .store
            .get_acme_challenge(id)?
            .ok_or_else(AcmeError::internal)?;
        Ok((c, a))
    }
}

/// Validates in the background and records the outcome.
fn spawn_validation(
    hm: Arc<Hallmark>,
    acct: &AcmeAccount,
    a: &AcmeAuthz,
    c: &AcmeChallenge,
) -> AResult<()> {
    let key = Jwk::from_stored(&acct.jwk)?;
    let key_authz = validate::key_authorization(&c.token, &key.thumbprint());
    let id = Identifier {
        kind: a.id_type.clone(),
        value: a.id_value.clone(),
    };
    let settings = Settings::from_config(&hm.config.acme);
    let (kind, token, chall_id, who) = (c.kind.clone(), c.token.clone(), c.id.clone(), actor(acct));
    let (store, failed_id, failed_who) = (hm.clone(), c.id.clone(), actor(acct));
    VALIDATIONS.fetch_add(1, Ordering::SeqCst);
    std::thread::Builder::new()
        .name("acme-validate".into())
        .spawn(move || {
            // A client may answer its challenge a moment after asking: try three times.
            let started = std::time::Instant::now();
            let mut outcome = Err(AcmeError::internal());
            let mut attempts = 0;
            for attempt in 0..3 {
                attempts = attempt + 1;
                if attempt > 0 {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
                outcome = validate::validate(&kind, &id, &token, &key_authz, &settings);
                if outcome.is_ok() {
                    break;
                }
            }
            let err = outcome.err().map(|e| e.document().to_string());
            tracing::info!(
                target: "hallmark::acme",
                challenge = %chall_id,
                kind = %kind,
                identifier = ?id,
                attempts,
                valid = err.is_none(),
                error = err.as_deref(),
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "ACME validation"
            );
            if let Err(e) = hm
                .store
                .finish_acme_challenge(&chall_id, err.as_deref(), &who)
            {
                tracing::error!("acme: cannot record the validation of {chall_id}: {e}");
            }
            VALIDATIONS.fetch_sub(1, Ordering::SeqCst);
        })
        .map_err(|e| {
            VALIDATIONS.fetch_sub(1, Ordering::SeqCst);
            tracing::error!("acme: cannot start a validation: {e}");
            // Not left processing for ever: the challenge fails and may be ordered anew.
            let doc = AcmeError::internal().document().to_string();
            let _ = store
                .store
                .finish_acme_challenge(&failed_id, Some(&doc), &failed_who);
            AcmeError::internal()
        })?;
    Ok(())
}
