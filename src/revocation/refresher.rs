//! The background refresher `hallmark serve` starts: it watches the publication revisions,
//! coalesces bursts of revocations, re-signs the OCSP responses they invalidated and reissues
//! CRLs; on a schedule it pre-signs every response, reissues CRLs before nextUpdate and renews
//! responder certificates.

use super::*;

/// How often the refresher looks at the publication revisions.
const POLL: Duration = Duration::from_millis(250);
/// A burst of revocations is coalesced for at most this long before republishing.
const COALESCE_MAX: Duration = Duration::from_secs(2);
/// The scheduled work (stale responses, due CRLs, responder renewal) runs this often.
const SCHEDULE: Duration = Duration::from_secs(60);
/// The full pass over all certificates for missing or stale OCSP responses runs this often
/// (revocations are handled at once through the queue; new certificates are answered live until
/// the pass signs theirs).
const PRESIGN_SCAN: Duration = Duration::from_secs(600);

/// Starts the server's background publisher on its own thread.
pub fn spawn_refresher(hm: Arc<RevocationService>) {
    let r = std::thread::Builder::new()
        .name("hallmark-publish".into())
        .spawn(move || refresher(&hm));
    if let Err(e) = r {
        tracing::error!("cannot start the CRL/OCSP refresher: {e}");
    }
}

pub(super) fn log_err<T>(what: &str, r: Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!("publish: {what}: {e}");
            None
        }
    }
}

/// A refresher run's CRLs of `ca`, logged (the CRL number is the one just signed).
pub(super) fn publish_crls_logged(hm: &RevocationService, ca: &str, why: &str) {
    let started = Instant::now();
    if let Some(number) = log_err(&format!("CRLs of {ca}"), hm.publish_crls(ca, ACTOR)) {
        tracing::info!(
            target: "hallmark::publish",
            ca,
            crl_number = number,
            why,
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "CRL published"
        );
    }
}

const ACTOR: &str = "publisher";

/// The scheduled work: responder renewal, CRLs that are due (all of them at `first`), OCSP
/// responses (every certificate's with `full_scan`, else only those revocations invalidated).
pub(super) fn scheduled(hm: &RevocationService, first: bool, full_scan: bool) {
    log_err("renewing OCSP responders", hm.renew_responders(ACTOR));
    if first {
        hm.reload_responders();
    } else {
        log_err(
            "checking OCSP responders",
            hm.reload_responders_if_changed(),
        );
    }
    if let Some(cas) = log_err("listing CAs", hm.crl_issuers()) {
        let pubn = hm.publication();
        let due = |ca: &str| {
            let t = hm.clock.now();
            pubn.cached_crl(&(ca.to_string(), None)).is_none_or(|c| {
                t >= c.this_update + i64::from(hm.crl.refresh_hours) * 3600
                    || t >= c.next_update - 3600
            })
        };
        for ca in cas {
            if first || due(&ca) {
                publish_crls_logged(hm, &ca, if first { "start" } else { "schedule" });
            }
        }
    }
    if full_scan {
        let started = Instant::now();
        if let Some(n) = log_err("pre-signing OCSP responses", hm.presign_ocsp()) {
            tracing::info!(
                target: "hallmark::publish",
                signed = n,
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "OCSP responses pre-signed"
            );
        }
    } else {
        log_err(
            "re-signing revoked OCSP responses",
            hm.presign_ocsp_dirty_only(),
        );
    }
    log_err(
        "purging expired OCSP responses",
        hm.store
            .purge_expired_responses(hm.clock.now())
            .map_err(Error::from),
    );
}

pub(super) fn refresher(hm: &RevocationService) {
    let pubn = hm.publication();
    let revisions = || -> HashMap<String, i64> {
        hm.store
            .publication_revisions()
            .map(|v| v.into_iter().collect())
            .unwrap_or_default()
    };
    let mut seen = revisions();
    scheduled(hm, true, true);
    let mut last_schedule = Instant::now();
    let mut last_scan = Instant::now();
    let mut pokes = 0u64;
    loop {
        pubn.wait(&mut pokes, POLL);
        let mut current = revisions();
        if current != seen {
            // Coalesce a burst: wait until the revisions hold still (or COALESCE_MAX passes).
            let start = Instant::now();
            loop {
                std::thread::sleep(POLL);
                let again = revisions();
                if again == current || start.elapsed() >= COALESCE_MAX {
                    current = again;
                    break;
                }
                current = again;
            }
            log_err(
                "re-signing revoked OCSP responses",
                hm.presign_ocsp_dirty_only(),
            );
            for (ca, rev) in &current {
                if seen.get(ca) != Some(rev) {
                    publish_crls_logged(hm, ca, "revocation");
                }
            }
            seen = current;
        }
        if last_schedule.elapsed() >= SCHEDULE {
            let full_scan = last_scan.elapsed() >= PRESIGN_SCAN;
            scheduled(hm, false, full_scan);
            last_schedule = Instant::now();
            if full_scan {
                last_scan = Instant::now();
            }
        }
    }
}
