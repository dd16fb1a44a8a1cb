//! Reading records for a caller: what a credential may see of certificates and publishers
//! (another publisher's certificate is answered as one that does not exist), in pages, and
//! whether the database and key store answer. The edges render these; they never read the
//! store themselves.

use super::*;
use crate::policy::auth::Credential;
use crate::store::{AuditEvent, AuditSearch, CertFilter, CertRecord, RevocationRecord};

/// One page of a listing and the cursor of the next (none on the last page).
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

impl Hallmark {
    /// Issued certificate `serial` (any case), if the caller may see it, with its revocation.
    pub fn certificate_for(
        &self,
        serial: &str,
        cred: &Credential,
    ) -> Result<(CertRecord, Option<RevocationRecord>)> {
        let serial = serial.to_ascii_lowercase();
        let rec = self
            .store
            .get_certificate(&serial)?
            .filter(|c| c.status == crate::store::CertStatus::Issued)
            .filter(|c| {
                cred.may_act_for(c.publisher.as_deref().unwrap_or(""))
                    .is_ok()
            })
            .ok_or_else(|| Error::NotFound(format!("certificate {serial}")))?;
        let revocation = self.store.get_revocation(&rec.serial)?;
        Ok((rec, revocation))
    }

    /// Revokes certificate `serial` for a caller: the `revoke` scope, and a certificate the
    /// caller may see (another publisher's is "not found"), as the API and the console ask.
    pub fn revoke_for(
        &self,
        serial: &str,
        cred: &crate::policy::auth::Credential,
        reason: crate::revocation::RevocationReason,
        invalidity_date: Option<i64>,
    ) -> Result<crate::revocation::Revocation> {
        cred.require(crate::policy::auth::Scope::Revoke)?;
        let (rec, _) = self.certificate_for(serial, cred)?;
        self.revocation
            .revoke(&rec.serial, reason, invalidity_date, &cred.actor())
    }

    /// Issued certificates in serial order after `after`, `limit` at a time: a publisher's own,
    /// or (officers) any publisher's or the one named.
    pub fn certificates_page(
        &self,
        cred: &Credential,
        publisher: Option<String>,
        profile: Option<String>,
        after: Option<String>,
        limit: usize,
    ) -> Result<Page<CertRecord, String>> {
        let publisher = match (publisher, cred.officer) {
            (Some(p), true) => Some(p),
            (None, true) => None,
            (Some(p), false) => {
                cred.may_act_for(&p)?;
                Some(p)
            }
            (None, false) => cred.publisher.clone(),
        };
        let items = self.store.list_certificates(&CertFilter {
            publisher,
            profile,
            ca: None,
            after: after.map(|c| c.to_ascii_lowercase()),
            limit,
        })?;
        let next = if items.len() == limit {
            items.last().map(|r| r.serial.clone())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// Publishers by id after `after`, `limit` at a time (officers only).
    pub fn publishers_page(
        &self,
        cred: &Credential,
        after: Option<String>,
        limit: usize,
    ) -> Result<Page<Publisher, String>> {
        cred.require_officer()?;
        let mut list = self.store.list_publishers()?;
        list.sort_by(|a, b| a.id.cmp(&b.id));
        let items: Vec<Publisher> = list
            .into_iter()
            .filter(|p| after.as_deref().is_none_or(|a| p.id.as_str() > a))
            .take(limit)
            .collect();
        let next = if items.len() == limit {
            items.last().map(|p| p.id.clone())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// CA `name`'s record, for publishing its certificate.
    pub fn ca_record(&self, name: &str) -> Result<Option<crate::store::CaRecord>> {
        Ok(self.store.get_ca(name)?)
    }

    /// Whether the database and the default key store answer: the schema version and the key
    /// store's own description, or why not.
    pub fn readiness(&self) -> (Result<String>, Result<String>) {
        let db = self
            .store
            .schema_version()
            .map(|v| format!("schema {v}"))
            .map_err(Error::from);
        let ks = self
            .key_store(&self.config.keys.default_store)
            .and_then(|k| k.check().map_err(Error::from));
        (db, ks)
    }

    /// A page of the audit trail, newest first, for the operator on this machine (the CLI):
    /// the events `search` matches below its `before` cursor, and the cursor of the next page.
    pub fn audit_page(&self, search: &AuditSearch) -> Result<Page<AuditEvent, i64>> {
        let items = self.store.search_audit(search)?;
        let next = (items.len() == search.limit)
            .then(|| items.last().map(|e| e.id))
            .flatten();
        Ok(Page { items, next })
    }

    /// [`Hallmark::audit_page`] for a caller: officers only (the trail names every publisher's
    /// records).
    pub fn audit_for(
        &self,
        cred: &Credential,
        search: &AuditSearch,
    ) -> Result<Page<AuditEvent, i64>> {
        cred.require_officer()?;
        self.audit_page(search)
    }
}
