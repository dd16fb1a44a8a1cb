//! ACME issuance and revocation: finalize sends the CSR down the engine's one issuance path as
//! the account's publisher (names checked against the order first); the certificate is served
//! to the account that ordered it; revokeCert is allowed to that account, to one holding valid
//! authorizations for every name, or to a request signed with the certificate's own key.

use super::identifier::Identifier;
use super::jws::Jwk;
use super::service::{actor, AResult, Acme};
use super::{unb64, AcmeError, ProblemType};
use crate::error::Error;
use crate::policy::auth::{Credential, Scope};
use crate::policy::{IssueRequest, PolicyError};
use crate::requests::Submitted;
use crate::revocation::RevocationReason;
use crate::store::{AcmeAccount, AcmeOrder, AcmeOrderStatus, CertStatus};
use serde_json::Value;

/// Who asks for a revocation.
pub enum Revoker<'a> {
    /// An account (signed with its `kid`).
    Account(&'a AcmeAccount),
    /// A request signed with this key (`jwk`): it must be the certificate's.
    CertificateKey(&'a Jwk),
}

impl Acme<'_> {
    /// finalize (`payload`: `{"csr": base64url DER}`): the order must be ready and the CSR name
    /// exactly its identifiers; the certificate is issued (or the refusal recorded on the order).
    pub fn finalize(
        &self,
        acct: &AcmeAccount,
        id: &str,
        payload: Option<&Value>,
    ) -> AResult<AcmeOrder> {
        let o = self.order(acct, id)?;
        if o.status != AcmeOrderStatus::Ready {
            return Err(AcmeError::new(
                ProblemType::OrderNotReady,
                format!("the order is {}, not ready", o.status),
            ));
        }
        let csr_b64 = payload
            .and_then(|p| p.get("csr"))
            .and_then(Value::as_str)
            .ok_or_else(|| AcmeError::malformed("finalize needs {\"csr\": base64url DER}"))?;
        let csr_der = unb64(csr_b64)
            .map_err(|_| AcmeError::new(ProblemType::BadCsr, "the CSR is not base64url"))?;
        let (names, cn) = super::names::csr_names(&csr_der)?;
        let ordered: Vec<Identifier> =
            serde_json::from_str(&o.identifiers).map_err(|_| AcmeError::internal())?;
        let mut want = ordered.clone();
        want.sort();
        if names != want {
            return Err(AcmeError::new(
                ProblemType::BadCsr,
                format!(
                    "the CSR names {} but the order is for {}",
                    list(&names),
                    list(&want)
                ),
            ));
        }
        if let Some(cn) = &cn {
            let kind = if cn.parse::<std::net::IpAddr>().is_ok() {
                "ip"
            } else {
                "dns"
            };
            if !Identifier::parse(kind, cn).is_ok_and(|c| want.contains(&c)) {
                return Err(AcmeError::new(
                    ProblemType::BadCsr,
                    format!("the CSR's CN '{cn}' is not one of the order's names"),
                ));
            }
        }
        let name = cn.clone().or_else(|| {
            want.iter()
                .find(|i| i.kind == "dns" && i.value.len() <= 64)
                .or_else(|| want.first())
                .map(|i| i.value.clone())
        });
        if !self.hm.store.start_acme_finalize(&o.id, &actor(acct))? {
            return Err(AcmeError::new(
                ProblemType::OrderNotReady,
                "the order is no longer ready",
            ));
        }
        // The ACME account acts as its publisher, with the right to issue only.
        let cred = Credential {
            token_id: format!("acme-{}", acct.id),
            name: format!("acme:{}", acct.id),
            publisher: Some(acct.publisher.clone()),
            officer: false,
            scopes: vec![Scope::Issue],
            address: None,
            request_id: None,
            workload: None,
            person: None,
        };
        let issue = IssueRequest {
            profile: self.directory.to_string(),
            publisher: acct.publisher.clone(),
            csr: csr_der,
            requester: cred.name.clone(),
            device_serial: None,
            name,
        };
        let who = actor(acct);
        let refused = match self.hm.requests.submit(issue, &cred) {
            Ok(Submitted::Issued(i)) => {
                self.hm
                    .store
                    .finish_acme_order(&o.id, Ok(&i.serial), &who)?;
                return self.order(acct, id);
            }
            Ok(Submitted::Pending(r)) => AcmeError::unauthorized(format!(
                "profile '{}' needs approvals (request {}); ACME cannot wait for them",
                self.directory, r.id
            )),
            Err(err) => engine_error(&err),
        };
        self.hm
            .store
            .finish_acme_order(&o.id, Err(&refused.document().to_string()), &who)?;
        Err(refused)
    }

    /// The certificate of one of the account's orders: the leaf and its chain (leaf's issuer
    /// first).
    pub fn certificate(
        &self,
        acct: &AcmeAccount,
        serial: &str,
    ) -> AResult<(Vec<u8>, Vec<Vec<u8>>)> {
        let serial = serial.to_ascii_lowercase();
        let order = self
            .hm
            .store
            .acme_order_of_certificate(&serial)?
            .filter(|o| o.account_id == acct.id)
            .ok_or_else(|| {
                AcmeError::unauthorized(format!("certificate {serial} is not this account's"))
            })?;
        let rec = self
            .hm
            .store
            .get_certificate(&order.cert_serial.unwrap_or_default())?
            .ok_or_else(AcmeError::internal)?;
        let leaf = rec.cert_der.ok_or_else(AcmeError::internal)?;
        let chain = self.hm.chain(&rec.ca).map_err(|e| {
            tracing::error!("acme: chain of {}: {e}", rec.ca);
            AcmeError::internal()
        })?;
        Ok((leaf, chain))
    }

    /// revokeCert (RFC 8555 §7.6) of `der` with RFC 5280 reason code `reason_code`.
    pub fn revoke(&self, der: &[u8], reason_code: Option<u64>, by: Revoker<'_>) -> AResult<()> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|_| AcmeError::malformed("the certificate does not parse"))?;
        let serial = crate::revocation::normalize_serial(&hex::encode(cert.raw_serial()))
            .map_err(|_| AcmeError::malformed("the certificate's serial is not usable"))?;
        let rec = self
            .hm
            .store
            .get_certificate(&serial)?
            .filter(|r| r.cert_der.as_deref() == Some(der))
            .ok_or_else(|| AcmeError::unauthorized("hallmark did not issue this certificate"))?;
        let reason = match reason_code {
            Some(0) => RevocationReason::Unspecified,
            Some(1) => RevocationReason::KeyCompromise,
            Some(3) => RevocationReason::AffiliationChanged,
            Some(4) => RevocationReason::Superseded,
            Some(5) => RevocationReason::CessationOfOperation,
            _ => {
                return Err(AcmeError::new(
                    ProblemType::BadRevocationReason,
                    "reasons allowed: 0, 1, 3, 4, 5",
                ))
            }
        };
        let who = match by {
            Revoker::Account(acct) => {
                let owns = self
                    .hm
                    .store
                    .acme_order_of_certificate(&rec.serial)?
                    .is_some_and(|o| o.account_id == acct.id);
                if !owns && !self.authorized_for_all(acct, &cert)? {
                    return Err(AcmeError::unauthorized(
                        "this account neither ordered the certificate nor holds authorizations for its names",
                    ));
                }
                actor(acct)
            }
            Revoker::CertificateKey(key) => {
                if !super::names::cert_key_matches(&cert, key) {
                    return Err(AcmeError::unauthorized(
                        "the JWS is not signed with the certificate's key",
                    ));
                }
                format!("acme:certificate-key({})", rec.serial)
            }
        };
        if self.hm.store.get_revocation(&rec.serial)?.is_some() {
            return Err(AcmeError::new(
                ProblemType::AlreadyRevoked,
                "the certificate is already revoked",
            ));
        }
        if rec.status != CertStatus::Issued {
            return Err(AcmeError::unauthorized(format!(
                "the certificate is {}",
                rec.status
            )));
        }
        self.hm
            .revocation
            .revoke(&rec.serial, reason, None, &who)
            .map_err(|e| {
                tracing::error!("acme: revoke {}: {e}", rec.serial);
                AcmeError::internal()
            })?;
        Ok(())
    }

    /// Whether the account holds valid authorizations for every name of `cert`.
    fn authorized_for_all(
        &self,
        acct: &AcmeAccount,
        cert: &x509_parser::certificate::X509Certificate<'_>,
    ) -> AResult<bool> {
        let names = super::names::cert_names(cert);
        if names.is_empty() {
            return Ok(false);
        }
        for n in names {
            if !self
                .hm
                .store
                .acme_account_authorized_for(&acct.id, &n.kind, &n.value)?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn list(ids: &[Identifier]) -> String {
    if ids.is_empty() {
        return "nothing".into();
    }
    ids.iter()
        .map(|i| format!("{}:{}", i.kind, i.value))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Maps an engine refusal to an ACME error; anything unexpected is logged, not leaked.
fn engine_error(e: &Error) -> AcmeError {
    match e {
        Error::Policy(PolicyError::BadKey(d)) => {
            AcmeError::new(ProblemType::BadPublicKey, d.clone())
        }
        Error::Policy(PolicyError::NotAuthorized(d)) => AcmeError::unauthorized(d.clone()),
        Error::Auth(a) => AcmeError::unauthorized(a.to_string()),
        Error::Policy(
            p @ (PolicyError::BadCsr(_)
            | PolicyError::BadSignature
            | PolicyError::SubjectMismatch { .. }
            | PolicyError::UnexpectedAttribute { .. }
            | PolicyError::ExtensionRefused(_)
            | PolicyError::BadRequest(_)),
        ) => AcmeError::new(ProblemType::BadCsr, p.to_string()),
        Error::Policy(p @ PolicyError::UnknownPublisher(_)) => {
            AcmeError::unauthorized(p.to_string())
        }
        Error::Issue(crate::issuer::IssueError::Lint(l)) => AcmeError::new(
            ProblemType::BadCsr,
            format!("the certificate would fail lint: {}", l.join("; ")),
        ),
        other => {
            tracing::error!("acme: finalize: {} ({other})", other.kind());
            AcmeError::internal()
        }
    }
}
