//! Revocation on the public listener: CRLs (`GET /crl/{ca}.crl`, `GET /crl/{ca}/shard-{k}.crl`)
//! and the OCSP responder (`POST /ocsp`, RFC 5019 `GET /ocsp/{base64}`).
//!
//! OCSP errors are OCSP answers (`malformedRequest`, `unauthorized`, ...) with HTTP 200, as
//! clients expect — also for a POST body beyond the listener's own limit (see `http::handle`).

use hyper::header::{self, HeaderValue};
use hyper::{Method, Response, StatusCode};

use super::public::PublicRequest;
use super::{error_response, refused, response, Body};
use crate::engine::Hallmark;
use crate::error::Refusal;
use crate::issuer::ocsp::ResponseStatus;
use crate::revocation::{OcspAnswer, PublishedCrl};

/// Whether a request is answered on the async worker itself: OCSP answers are a read of one row
/// (or one signature), shorter than handing the request to a blocking thread and back.
pub fn answers_inline(req: &PublicRequest) -> bool {
    std::env::var_os("HM_NOINLINE").is_none()
        && (req.path == "/ocsp" || req.path.starts_with("/ocsp/"))
}

/// Routes the revocation paths; `None` for any other path.
pub fn route(hm: &Hallmark, req: &PublicRequest) -> Option<Response<Body>> {
    let path = req.path.as_str();
    if path == "/ocsp" || path.starts_with("/ocsp/") {
        let encoded = path
            .strip_prefix("/ocsp")
            .unwrap_or("")
            .trim_start_matches('/');
        return Some(match req.method {
            Method::POST => ocsp_answer(hm.revocation.ocsp(&req.body), false, 0, hm.clock.now()),
            Method::GET | Method::HEAD => {
                let answer = match decode_get(encoded) {
                    Some(der) => hm.revocation.ocsp(&der),
                    None => hm.revocation.ocsp(&[]),
                };
                ocsp_answer(answer, true, hm.config.ocsp.max_age_seconds, hm.clock.now())
            }
            _ => refused(Refusal::MethodNotAllowed {
                detail: "OCSP takes POST /ocsp or GET /ocsp/{base64 request}".into(),
                allow: "GET, HEAD, POST".into(),
            }),
        });
    }
    let file = path.strip_prefix("/crl/")?;
    if req.method != Method::GET && req.method != Method::HEAD {
        return Some(refused(Refusal::MethodNotAllowed {
            detail: "CRLs are fetched with GET".into(),
            allow: "GET, HEAD".into(),
        }));
    }
    let scope = file
        .strip_suffix(".crl")
        .and_then(|stem| match stem.split_once('/') {
            None => Some((stem, None)),
            Some((ca, part)) => part
                .strip_prefix("shard-")
                .and_then(|k| k.parse::<u32>().ok())
                .map(|k| (ca, Some(k))),
        });
    let Some((ca, shard)) = scope.filter(|(ca, _)| crate::keys::validate_label(ca).is_ok()) else {
        return Some(refused(Refusal::NotFound(
            "CRLs are at /crl/CA.crl (and /crl/CA/shard-K.crl when partitioned)".into(),
        )));
    };
    Some(match hm.revocation.published_crl(ca, shard) {
        Ok(crl) => crl_response(&crl, req, hm.config.crl.max_age_seconds, hm.clock.now()),
        Err(e) if e.class() == crate::error::Class::NotFound => error_response(&e),
        Err(e) => {
            tracing::error!("GET {path}: {e}");
            refused(Refusal::Unavailable(
                "the CRL cannot be produced right now".into(),
            ))
        }
    })
}

/// An HTTP-date (RFC 9110 IMF-fixdate).
pub fn http_date(unix: i64) -> String {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

fn set(r: &mut Response<Body>, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

fn crl_response(crl: &PublishedCrl, req: &PublicRequest, max_age: u32, now: i64) -> Response<Body> {
    let not_modified = req
        .headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == crl.etag || t.trim() == "*")
        });
    let mut r = if not_modified {
        let mut r = response(StatusCode::NOT_MODIFIED, "application/pkix-crl", "");
        r.headers_mut().remove(header::CONTENT_TYPE);
        r
    } else {
        response(StatusCode::OK, "application/pkix-crl", crl.der.clone())
    };
    let max_age = (crl.next_update - now).clamp(0, i64::from(max_age));
    set(&mut r, header::ETAG, &crl.etag);
    set(&mut r, header::LAST_MODIFIED, &http_date(crl.this_update));
    set(&mut r, header::EXPIRES, &http_date(crl.next_update));
    set(
        &mut r,
        header::CACHE_CONTROL,
        &format!("public, max-age={max_age}, no-transform"),
    );
    r
}

fn ocsp_answer(a: OcspAnswer, get: bool, max_age_cap: u32, now: i64) -> Response<Body> {
    let etag = (get && a.cacheable.is_some()).then(|| {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &a.der);
        format!("\"{}\"", hex::encode(&digest.as_ref()[..16]))
    });
    let mut r = response(StatusCode::OK, "application/ocsp-response", a.der);
    match (get, a.status, a.cacheable) {
        (true, ResponseStatus::Successful, Some((this_update, next_update))) => {
            // RFC 5019 §6.2: max-age below nextUpdate, plus validators.
            let max_age = (next_update - now - 60).clamp(0, i64::from(max_age_cap));
            set(
                &mut r,
                header::CACHE_CONTROL,
                &format!("max-age={max_age}, public, no-transform, must-revalidate"),
            );
            set(&mut r, header::LAST_MODIFIED, &http_date(this_update));
            set(&mut r, header::EXPIRES, &http_date(next_update));
            if let Some(e) = &etag {
                set(&mut r, header::ETAG, e);
            }
        }
        _ => set(&mut r, header::CACHE_CONTROL, "no-cache, no-store"),
    }
    r
}

/// Decodes the RFC 5019 GET form: URL-encoded base64 (padding optional; the URL-safe alphabet
/// accepted too).
pub fn decode_get(encoded: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode;
    use base64::{alphabet, Engine};
    let bytes = percent_decode(encoded)?;
    if bytes.is_empty() || bytes.len() > crate::issuer::ocsp::MAX_REQUEST_BYTES * 4 / 3 + 4 {
        return None;
    }
    let cfg = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard = GeneralPurpose::new(&alphabet::STANDARD, cfg);
    let url_safe = GeneralPurpose::new(&alphabet::URL_SAFE, cfg);
    standard
        .decode(&bytes)
        .or_else(|_| url_safe.decode(&bytes))
        .ok()
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_requests_decode() {
        assert_eq!(
            decode_get("MAMCAQA%3D").as_deref(),
            Some(&[0x30, 0x03, 0x02, 0x01, 0x00][..])
        );
        assert_eq!(
            decode_get("MAMCAQA").as_deref(),
            Some(&[0x30, 0x03, 0x02, 0x01, 0x00][..])
        );
        // '/' and '+' of the standard alphabet, raw or escaped; the URL-safe alphabet.
        assert_eq!(decode_get("+/8=").as_deref(), Some(&[0xfb, 0xff][..]));
        assert_eq!(decode_get("%2B%2F8%3D").as_deref(), Some(&[0xfb, 0xff][..]));
        assert_eq!(decode_get("-_8").as_deref(), Some(&[0xfb, 0xff][..]));
        assert!(decode_get("").is_none());
        assert!(decode_get("%zz").is_none());
        assert!(decode_get("!!!").is_none());
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
