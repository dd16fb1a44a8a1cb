//! CRLs: per CA, whole and partitioned (shards), built from the store, signed by the CA and
//! kept published (reissued after a revocation and before nextUpdate).

use super::*;

/// A CRL as published.
#[derive(Debug, Clone)]
pub struct PublishedCrl {
    pub ca: String,
    pub shard: Option<u32>,
    pub number: u64,
    pub this_update: i64,
    pub next_update: i64,
    pub entries: u64,
    pub der: bytes::Bytes,
    /// A strong HTTP entity tag, quotes included.
    pub etag: String,
}

/// The CRL partition a certificate's CRL distribution point names (`…/crl/{ca}/shard-{k}.crl`).
pub(super) fn shard_in_crl_dp(cert_der: &[u8], ca: &str) -> Option<u32> {
    let (_, c) = X509Certificate::from_der(cert_der).ok()?;
    let suffix_start = format!("/crl/{ca}/shard-");
    for ext in c.extensions() {
        if let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() {
            for p in points.iter() {
                if let Some(DistributionPointName::FullName(names)) = &p.distribution_point {
                    for n in names {
                        if let GeneralName::URI(u) = n {
                            if let Some(i) = u.find(&suffix_start) {
                                let k = u[i + suffix_start.len()..].strip_suffix(".crl")?;
                                return k.parse().ok();
                            }
                        }
                    }
                }
            }
        }
    }
    None
}

impl RevocationService {
    /// The CAs that publish CRLs: the root and every issuing CA with a certificate.
    pub fn crl_issuers(&self) -> Result<Vec<String>> {
        Ok(self
            .store
            .list_cas()?
            .into_iter()
            .filter(|c| matches!(c.role, CaRole::Root | CaRole::Issuing) && c.cert_der.is_some())
            .map(|c| c.name)
            .collect())
    }

    /// The partitions a CA publishes besides its full CRL (none for the root).
    pub fn crl_shards(&self, ca: &str) -> Result<Vec<u32>> {
        let rec = self
            .store
            .get_ca(ca)?
            .ok_or_else(|| Error::NotFound(format!("CA '{ca}'")))?;
        if rec.role != CaRole::Issuing || self.crl.shards <= 1 {
            return Ok(vec![]);
        }
        Ok((0..self.crl.shards).collect())
    }

    pub(super) fn check_crl_scope(&self, ca: &str, shard: Option<u32>) -> Result<()> {
        let rec = self
            .store
            .get_ca(ca)?
            .filter(|c| matches!(c.role, CaRole::Root | CaRole::Issuing))
            .ok_or_else(|| Error::NotFound(format!("CA '{ca}'")))?;
        if let Some(k) = shard {
            // Partitions beyond the configured count stay published while they list revocations
            // (certificates issued under a larger `crl.shards` still point at them).
            let known = rec.role == CaRole::Issuing
                && (k < self.crl.shards
                    || (k < 256 && self.store.count_revocations(ca, Some(k))? > 0));
            if !known {
                return Err(Error::NotFound(format!("CRL partition {k} of CA '{ca}'")));
            }
        }
        Ok(())
    }

    /// Builds and signs one CRL with a given number.
    pub(super) fn build_crl(
        &self,
        ca_name: &str,
        shard: Option<u32>,
        number: u64,
        this_update: i64,
    ) -> Result<PublishedCrl> {
        let ca = self.keyring.ca(ca_name)?;
        let next_update = this_update + i64::from(self.crl.next_update_days) * 86_400;
        let idp = shard.map(|k| self.urls.crl_shard(ca_name, k));
        let spec = CrlSpec {
            issuer_name: &ca.subject_raw,
            issuer_ski: &ca.ski,
            number,
            this_update,
            next_update,
            idp_url: idp.as_deref(),
            scheme: ca.scheme,
        };
        // The scan uses the read half only (read-only connections; it never waits on a writer).
        let reads: &dyn crate::store::RevocationRead = &*self.store;
        let expected = reads.count_revocations(ca_name, shard)?;
        let mut builder = CrlBuilder::new(&spec, expected as usize)?;
        let mut failed = None;
        reads.for_each_revocation(ca_name, shard, &mut |e| {
            let pushed = builder.push(&CrlEntry {
                serial_hex: e.serial,
                revoked_at: e.revoked_at,
                reason: e.reason,
                invalidity_date: e.invalidity_date,
            });
            pushed.map_err(|e| failed = Some(e)).is_ok()
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        let entries = builder.entries();
        let der = builder.finish(ca.signer.as_ref())?;
        let scope = shard.map_or("full".to_string(), |k| format!("shard-{k}"));
        Ok(PublishedCrl {
            etag: format!("\"{ca_name}-{scope}-{number}\""),
            ca: ca_name.to_string(),
            shard,
            number,
            this_update,
            next_update,
            entries,
            der: der.into(),
        })
    }

    /// Issues a new CRL for one scope of `ca` (a fresh CRL number) and makes it the published one.
    pub fn issue_crl(
        &self,
        ca: &str,
        shard: Option<u32>,
        actor: &str,
    ) -> Result<Arc<PublishedCrl>> {
        self.check_crl_scope(ca, shard)?;
        self.with_crl_number(ca, actor, |pubn, number, t| {
            let crl = Arc::new(self.build_crl(ca, shard, number, t)?);
            if let Ok(mut m) = pubn.crls.lock() {
                m.insert((ca.to_string(), shard), crl.clone());
            }
            Ok(crl)
        })
    }

    /// Runs `build` with a new CRL number of `ca` (and its thisUpdate), holding the CA's CRL
    /// build lock, so numbers are published in the order they were taken.
    fn with_crl_number<T>(
        &self,
        ca: &str,
        actor: &str,
        build: impl FnOnce(&Publication, u64, i64) -> Result<T>,
    ) -> Result<T> {
        let pubn = self.publication();
        let lock = pubn.build_lock(ca);
        let _g = lock
            .lock()
            .map_err(|_| internal("CRL build lock poisoned"))?;
        let t = self.clock.now();
        let number = self.store.next_crl_number(ca, t, actor)?;
        build(&pubn, number, t)
    }

    /// Reissues every CRL of `ca` (full and partitions) under one new CRL number.
    pub fn publish_crls(&self, ca: &str, actor: &str) -> Result<u64> {
        self.with_crl_number(ca, actor, |pubn, number, t| {
            let mut scopes = vec![None];
            scopes.extend(self.crl_shards(ca)?.into_iter().map(Some));
            // Partitions published on demand beyond `crl.shards` (older certificates) stay current.
            if let Ok(m) = pubn.crls.lock() {
                for (c, shard) in m.keys() {
                    if c == ca && shard.is_some() && !scopes.contains(shard) {
                        scopes.push(*shard);
                    }
                }
            }
            for shard in scopes {
                let crl = Arc::new(self.build_crl(ca, shard, number, t)?);
                if let Ok(mut m) = pubn.crls.lock() {
                    m.insert((ca.to_string(), shard), crl);
                }
            }
            Ok(number)
        })
    }

    /// The published CRL of one scope: the current one, or a new one if there is none yet or it
    /// is due (the refresher normally keeps it current).
    pub fn published_crl(&self, ca: &str, shard: Option<u32>) -> Result<Arc<PublishedCrl>> {
        let key = (ca.to_string(), shard);
        let pubn = self.publication();
        let fresh = |c: &PublishedCrl| {
            let t = self.clock.now();
            t < c.this_update + i64::from(self.crl.refresh_hours) * 3600 && t < c.next_update - 3600
        };
        if let Some(c) = pubn.cached_crl(&key).filter(|c| fresh(c)) {
            return Ok(c);
        }
        self.check_crl_scope(ca, shard)?;
        let lock = pubn.build_lock(ca);
        {
            let _g = lock
                .lock()
                .map_err(|_| internal("CRL build lock poisoned"))?;
            if let Some(c) = pubn.cached_crl(&key).filter(|c| fresh(c)) {
                return Ok(c);
            }
        }
        self.issue_crl(ca, shard, "publisher")
    }

    // ---- OCSP ----
}
