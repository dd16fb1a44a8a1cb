//! Recovery at start: what a stop (a crash, `kill -9`, a lost host) left half-done is finished
//! before the server answers a request, so no caller ever waits on a leftover.
//!
//! Issuance is two-phase (record the intent, then sign and complete), and an approved request is
//! claimed before it issues. A stop between the phases leaves three kinds of leftovers:
//! - certificate intents: the recorded to-be-signed bytes are signed and completed now, or the
//!   intent is abandoned (with an audit event) when its CA can no longer sign them;
//! - claimed certificate requests (`approved`, approvals complete) with no certificate: issued
//!   now, after policy runs again, or ended `denied` by policy;
//! - claimed signature requests (see `signing`).

use super::Hallmark;
use crate::error::Result;
use crate::store::StoreError;

/// How many intents one completion transaction finishes.
const CHUNK: usize = 256;

/// What recovery at start finished.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Intents signed and completed.
    pub intents_completed: usize,
    /// Intents that could not be signed and were abandoned.
    pub intents_abandoned: usize,
    /// Claimed certificate requests ended (issued, or denied by policy).
    pub requests: usize,
    /// Claimed signature requests finished.
    pub signature_requests: usize,
}

impl Recovered {
    pub fn is_empty(&self) -> bool {
        *self == Recovered::default()
    }
}

impl std::fmt::Display for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} certificate intent(s) completed, {} abandoned, {} approved request(s) and {} signature request(s) finished",
            self.intents_completed, self.intents_abandoned, self.requests, self.signature_requests
        )
    }
}

impl Hallmark {
    /// Finishes every leftover of an earlier stop (intents recorded before this process opened
    /// the store, claimed requests). Call once at server start, before serving.
    pub fn recover(&self) -> Result<Recovered> {
        let mut out = Recovered::default();
        // Intents first: a claimed request whose intent is completed here is then ended as issued.
        loop {
            let intents = self.store.leftover_intents(self.started_at, CHUNK)?;
            if intents.is_empty() {
                break;
            }
            let mut done = Vec::with_capacity(intents.len());
            for (serial, ca, tbs) in intents {
                match self.issuance.sign_intent_tbs(&ca, &tbs) {
                    Ok(der) => done.push((serial, der)),
                    Err(e) => {
                        self.store.abandon_intent(
                            &serial,
                            &format!("left by a stop and cannot be signed now: {e}"),
                            "recovery",
                        )?;
                        out.intents_abandoned += 1;
                    }
                }
            }
            let refs: Vec<(&str, &[u8])> = done
                .iter()
                .map(|(s, d)| (s.as_str(), d.as_slice()))
                .collect();
            if self.store.complete_issuances(&refs, "recovery").is_err() {
                // One of them was completed meanwhile by its own process (a CLI that was
                // signing as the server started): complete the others one by one.
                for (serial, der) in &refs {
                    match self.store.complete_issuance(serial, der, "recovery") {
                        Ok(()) | Err(StoreError::NotFound(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            out.intents_completed += done.len();
        }
        for request in self.store.claimed_requests()? {
            out.requests += 1;
            let issued = match &request.certificate_serial {
                Some(serial) => self
                    .store
                    .get_certificate(serial)?
                    .is_some_and(|c| c.status == crate::store::CertStatus::Issued),
                None => false,
            };
            if issued {
                self.store.finish_request(
                    request.id,
                    crate::store::RequestStatus::Issued,
                    None,
                    "recovery",
                )?;
            } else if let Err(e) = self.requests.issue_claimed(&request, "recovery") {
                // Policy refused (the request is now denied) or the CA cannot sign now (the
                // request stays approved and is tried again at the next start).
                tracing::warn!(
                    "approved request {} left by a stop was not issued: {e}",
                    request.id
                );
            }
        }
        out.signature_requests = self.signing.recover_signature_requests()?;
        Ok(out)
    }

    /// When this process opened the store: intents older than this were left by a stop.
    pub fn started_at(&self) -> i64 {
        self.started_at
    }
}
