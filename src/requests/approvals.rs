//! M-of-N approvals: a decision on a pending request; the approval that brings the last one needed claims the request and issues its certificate in the same call.

use super::*;

impl Requests {
    /// Approves or denies a pending request. Returns the request as it stands, and the
    /// certificate when this approval was the last one needed.
    pub fn decide(
        &self,
        id: i64,
        cred: &Credential,
        approve: bool,
        comment: Option<&str>,
    ) -> Result<(RequestView, Option<Issued>)> {
        cred.require(Scope::Approve)?;
        let request = self.visible_request(id, cred)?;
        if request.status != RequestStatus::Pending {
            return Err(Error::Conflict(format!(
                "request {id} is {}; it can no longer be decided",
                request.status
            )));
        }
        let profile = self.profiles.get(&request.profile)?;
        let rules = profile.approvals.as_ref().ok_or_else(|| {
            Error::Conflict(format!(
                "profile '{}' no longer asks for approvals",
                profile.name
            ))
        })?;
        if !rules.approvers.iter().any(|a| cred.answers_to(a)) {
            return Err(AuthError::Forbidden(format!(
                "'{}' is not an approver of profile '{}' (approvers: {})",
                cred.name,
                profile.name,
                rules.approvers.join(", ")
            ))
            .into());
        }
        if cred.name == request.requester {
            return Err(AuthError::Forbidden(
                "the requester never approves its own request".into(),
            )
            .into());
        }
        let decision =
            match self
                .store
                .record_decision(id, &cred.name, approve, comment, &cred.actor())
            {
                Ok(d) => d,
                Err(StoreError::Conflict(_)) => {
                    return Err(Error::Conflict(format!(
                        "'{}' has already decided on request {id}",
                        cred.name
                    )))
                }
                Err(e) => return Err(e.into()),
            };
        // Only the approval that claimed the request issues: a concurrent approval or denial
        // saw the request no longer pending and was refused.
        let issued = if decision.claimed {
            Some(self.issue_claimed(&request, &cred.actor())?)
        } else {
            None
        };
        Ok((self.request_view(id, cred)?, issued))
    }
}
