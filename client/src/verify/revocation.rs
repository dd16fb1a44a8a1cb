//! Whether a certificate was revoked, and from when its key is to be distrusted: OCSP at the
//! URL its authorityInfoAccess names, else the CRL its cRLDistributionPoints names, each
//! answer's signature checked against the issuer. A revoked entry's invalidityDate (CRL entry
//! extension) is what the code-signing rule compares a time-stamp with.

use der::Decode;
use x509_parser::prelude::*;

use super::{chain, crypto};
use crate::der::read_tlv;
use crate::ocsp::{build_request, cert_id, CertIdHash};

/// How `verify` reaches OCSP responders and CRL URLs (the CLI gives it an HTTP client).
pub trait Fetch {
    fn get(&self, url: &str) -> Result<Vec<u8>, String>;
    fn post(&self, url: &str, content_type: &str, body: &[u8]) -> Result<Vec<u8>, String>;
}

/// What the issuer says of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Good {
        via: String,
    },
    Revoked {
        revoked_at: i64,
        /// The invalidity date when the issuer published one.
        invalid_from: Option<i64>,
        reason: Option<String>,
        via: String,
    },
}

/// Clock skew allowed on thisUpdate.
const SKEW: i64 = 300;

/// Asks the issuer about `cert` (issued by `issuer`): OCSP first, the CRL when there is no
/// OCSP URL or OCSP fails. For a revoked certificate the CRL is read too, for the invalidity
/// date OCSP does not carry.
pub fn status(cert: &[u8], issuer: &[u8], fetch: &dyn Fetch, now: i64) -> Result<Status, String> {
    let chain::Urls {
        ocsp: ocsp_urls,
        crl: crl_urls,
        ..
    } = chain::urls(cert);
    if ocsp_urls.is_empty() && crl_urls.is_empty() {
        return Err(format!(
            "{} names no OCSP responder and no CRL",
            chain::short_name(cert)
        ));
    }
    let mut errors = Vec::new();
    for url in &ocsp_urls {
        match ocsp(cert, issuer, url, fetch, now) {
            Ok(Status::Revoked {
                revoked_at,
                invalid_from: None,
                reason,
                via,
            }) => {
                // OCSP has no invalidity date; the CRL may.
                let invalid_from =
                    crl_urls
                        .iter()
                        .find_map(|u| match crl(cert, issuer, u, fetch, now) {
                            Ok(Status::Revoked { invalid_from, .. }) => invalid_from,
                            _ => None,
                        });
                return Ok(Status::Revoked {
                    revoked_at,
                    invalid_from,
                    reason,
                    via,
                });
            }
            Ok(s) => return Ok(s),
            Err(e) => errors.push(format!("OCSP {url}: {e}")),
        }
    }
    for url in &crl_urls {
        match crl(cert, issuer, url, fetch, now) {
            Ok(s) => return Ok(s),
            Err(e) => errors.push(format!("CRL {url}: {e}")),
        }
    }
    Err(errors.join("; "))
}

fn ocsp(
    cert: &[u8],
    issuer: &[u8],
    url: &str,
    fetch: &dyn Fetch,
    now: i64,
) -> Result<Status, String> {
    let (_, c) = X509Certificate::from_der(cert).map_err(|e| e.to_string())?;
    let (_, i) = X509Certificate::from_der(issuer).map_err(|e| e.to_string())?;
    let serial = c.raw_serial().to_vec();
    let id = cert_id(
        CertIdHash::Sha1,
        &CertIdHash::Sha1.digest(i.subject().as_raw()),
        &CertIdHash::Sha1.digest(&i.public_key().subject_public_key.data),
        &serial,
    );
    let body = fetch.post(url, "application/ocsp-request", &build_request(&[id], None))?;
    let resp = x509_ocsp::OcspResponse::from_der(&body)
        .map_err(|e| format!("the answer is not an OCSP response ({e})"))?;
    if resp.response_status != x509_ocsp::OcspResponseStatus::Successful {
        return Err(format!("the responder answered {:?}", resp.response_status));
    }
    let basic_der = resp
        .response_bytes
        .ok_or("a successful OCSP response without a body")?
        .response
        .as_bytes()
        .to_vec();
    let basic = x509_ocsp::BasicOcspResponse::from_der(&basic_der)
        .map_err(|e| format!("bad BasicOCSPResponse ({e})"))?;
    // The signed bytes, and the certificates sent with the response.
    let outer = read_tlv(&basic_der).map_err(|e| e.to_string())?;
    let tbs = read_tlv(outer.contents).map_err(|e| e.to_string())?;
    let alg = read_tlv(tbs.rest).map_err(|e| e.to_string())?;
    let sig = read_tlv(alg.rest).map_err(|e| e.to_string())?;
    let mut certs = Vec::new();
    if let Ok(extra) = read_tlv(sig.rest) {
        if extra.tag == 0xa0 {
            if let Ok(seq) = read_tlv(extra.contents) {
                let mut rest = seq.contents;
                while let Ok(t) = read_tlv(rest) {
                    certs.push(t.whole.to_vec());
                    rest = t.rest;
                }
            }
        }
    }
    let scheme = crypto::scheme_of_oid(&super::cms::algorithm_oid(&alg)?, None)?;
    let sig_bits = sig.contents.get(1..).ok_or("empty OCSP signature")?;
    // Signed by the issuer itself, or by a responder the issuer certified for OCSP signing.
    let signer = if crypto::verify(i.public_key().raw, scheme, false, tbs.whole, sig_bits).is_ok() {
        chain::short_name(issuer)
    } else {
        let r = certs
            .iter()
            .find(|r| {
                chain::signed_by(r, issuer).is_ok()
                    && X509Certificate::from_der(r)
                        .ok()
                        .and_then(|(_, x)| {
                            x.extended_key_usage()
                                .ok()
                                .flatten()
                                .map(|e| e.value.ocsp_signing)
                        })
                        .unwrap_or(false)
            })
            .ok_or(
                "the OCSP response is signed neither by the issuer nor by a responder it certified",
            )?;
        crypto::verify(&super::cms::spki_of(r)?, scheme, false, tbs.whole, sig_bits)
            .map_err(|e| format!("the OCSP response's {e}"))?;
        chain::valid_at(std::slice::from_ref(r), now)
            .map_err(|e| format!("the OCSP responder certificate: {e}"))?;
        chain::short_name(r)
    };
    let single = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|s| s.cert_id.serial_number.as_bytes() == serial.as_slice())
        .ok_or("the OCSP response does not answer for this certificate")?;
    let this_update = single.this_update.0.to_unix_duration().as_secs() as i64;
    if this_update > now + SKEW {
        return Err("the OCSP response is from the future".into());
    }
    if let Some(n) = &single.next_update {
        if (n.0.to_unix_duration().as_secs() as i64) < now {
            return Err("the OCSP response is stale (nextUpdate has passed)".into());
        }
    }
    let via = format!("OCSP {url}, signed by {signer}");
    match &single.cert_status {
        x509_ocsp::CertStatus::Good(_) => Ok(Status::Good { via }),
        x509_ocsp::CertStatus::Revoked(info) => Ok(Status::Revoked {
            revoked_at: info.revocation_time.0.to_unix_duration().as_secs() as i64,
            invalid_from: None,
            reason: info.revocation_reason.map(|r| format!("{r:?}")),
            via,
        }),
        x509_ocsp::CertStatus::Unknown(_) => {
            Err("the responder does not know the certificate".into())
        }
    }
}

fn crl(
    cert: &[u8],
    issuer: &[u8],
    url: &str,
    fetch: &dyn Fetch,
    now: i64,
) -> Result<Status, String> {
    let (_, c) = X509Certificate::from_der(cert).map_err(|e| e.to_string())?;
    let body = fetch.get(url)?;
    let der = match ::pem::parse(&body) {
        Ok(p) if p.tag() == "X509 CRL" => p.into_contents(),
        _ => body,
    };
    let (_, list) = parse_x509_crl(&der).map_err(|e| format!("the CRL does not parse ({e})"))?;
    let (_, i) = X509Certificate::from_der(issuer).map_err(|e| e.to_string())?;
    if list.issuer().as_raw() != i.subject().as_raw() {
        return Err("the CRL's issuer is not the certificate's issuer".into());
    }
    let scheme = crypto::scheme_of_oid(&list.signature_algorithm.algorithm.to_id_string(), None)?;
    crypto::verify(
        i.public_key().raw,
        scheme,
        false,
        list.tbs_cert_list.as_ref(),
        &list.signature_value.data,
    )
    .map_err(|e| format!("the CRL's {e}"))?;
    if list.last_update().timestamp() > now + SKEW {
        return Err("the CRL is from the future".into());
    }
    if let Some(n) = list.next_update() {
        if n.timestamp() < now {
            return Err("the CRL is stale (nextUpdate has passed)".into());
        }
    }
    let via = format!("CRL {url}");
    let entry = list
        .iter_revoked_certificates()
        .find(|r| r.raw_serial() == c.raw_serial())
        .map(|r| {
            (
                r.revocation_date.timestamp(),
                r.invalidity_date().map(|(_, t)| t.timestamp()),
                r.reason_code().map(|(_, code)| format!("{code}")),
            )
        });
    Ok(match entry {
        None => Status::Good { via },
        Some((revoked_at, invalid_from, reason)) => Status::Revoked {
            revoked_at,
            invalid_from,
            reason,
            via,
        },
    })
}
