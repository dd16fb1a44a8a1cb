//! Routes of the public plain-HTTP listener: what clients fetch without credentials.

use hyper::{Method, Response, StatusCode};

use super::{refused, response, Body};
use crate::engine::Hallmark;
use crate::error::Refusal;

/// A request of the public listener, body already read (within [`super::PUBLIC_BODY_LIMIT`]).
pub struct PublicRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: hyper::HeaderMap,
    pub body: bytes::Bytes,
}

/// Routes one request of the public listener.
pub fn route(hm: &Hallmark, req: &PublicRequest) -> Response<Body> {
    if let Some(r) = super::publication::route(hm, req) {
        return r;
    }
    let (method, path) = (&req.method, req.path.as_str());
    if path == "/tsa" {
        return tsa(hm, req);
    }
    if method != Method::GET && method != Method::HEAD {
        return refused(Refusal::MethodNotAllowed {
            detail: "only GET is served here".into(),
            allow: "GET, HEAD".into(),
        });
    }
    if path == "/healthz" {
        return response(StatusCode::OK, "text/plain", "ok\n");
    }
    if let Some(file) = path.strip_prefix("/ca/") {
        let (name, pem) = if let Some(n) = file.strip_suffix(".crt") {
            (n, false)
        } else if let Some(n) = file.strip_suffix(".pem") {
            (n, true)
        } else {
            return refused(Refusal::NotFound(
                "CA certificates are at /ca/NAME.crt (DER) or /ca/NAME.pem".into(),
            ));
        };
        return match hm.ca_record(name) {
            Ok(Some(ca)) => match ca.cert_der {
                Some(der) if pem => response(
                    StatusCode::OK,
                    "application/x-pem-file",
                    crate::pemfmt::encode("CERTIFICATE", der),
                ),
                Some(der) => response(StatusCode::OK, "application/pkix-cert", der),
                None => refused(Refusal::NotFound(format!(
                    "CA '{name}' has no certificate yet"
                ))),
            },
            Ok(None) => refused(Refusal::NotFound(format!("no CA named '{name}'"))),
            Err(e) => {
                tracing::error!("GET {path}: {e}");
                refused(Refusal::Unavailable("the database is not available".into()))
            }
        };
    }
    refused(Refusal::NotFound(format!("nothing at {path}")))
}

/// Every route the public listener serves: method and path template (the OpenAPI test reads it).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/ca/{name}.crt"),
    ("GET", "/ca/{name}.pem"),
    ("GET", "/crl/{ca}.crl"),
    ("GET", "/crl/{ca}/shard-{k}.crl"),
    ("POST", "/ocsp"),
    ("GET", "/ocsp/{request}"),
    ("POST", "/tsa"),
];

/// The route template a path matches (for logs and metrics): one of [`ROUTES`]' paths, or
/// `unmatched`.
pub fn template_of(path: &str) -> &'static str {
    let segs: Vec<&str> = path.split('/').collect();
    ROUTES
        .iter()
        .map(|(_, t)| *t)
        .find(|t| {
            let parts: Vec<&str> = t.split('/').collect();
            parts.len() == segs.len()
                && parts
                    .iter()
                    .zip(&segs)
                    .all(|(p, s)| match p.split_once('{') {
                        None => p == s,
                        Some((before, rest)) => {
                            let after = rest.split_once('}').map_or("", |(_, a)| a);
                            s.len() > before.len() + after.len()
                                && s.starts_with(before)
                                && s.ends_with(after)
                        }
                    })
        })
        .unwrap_or("unmatched")
}

/// `POST /tsa`: the RFC 3161 time-stamp authority. Refused queries are `TimeStampResp`s with
/// status rejection (HTTP 200), as clients expect.
fn tsa(hm: &Hallmark, req: &PublicRequest) -> Response<Body> {
    if req.method != Method::POST {
        return refused(Refusal::MethodNotAllowed {
            detail: "time-stamp queries are sent with POST /tsa".into(),
            allow: "POST".into(),
        });
    }
    if super::media_type(&req.headers) != "application/timestamp-query" {
        return refused(Refusal::UnsupportedMedia(
            "time-stamp queries are application/timestamp-query".into(),
        ));
    }
    response(
        StatusCode::OK,
        "application/timestamp-reply",
        hm.tsa.respond(&req.body),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_find_their_templates() {
        use super::template_of;
        assert_eq!(template_of("/ocsp"), "/ocsp");
        assert_eq!(template_of("/ocsp/MEkwRzBF"), "/ocsp/{request}");
        assert_eq!(template_of("/crl/code-signing-ca.crl"), "/crl/{ca}.crl");
        assert_eq!(
            template_of("/crl/ca/shard-3.crl"),
            "/crl/{ca}/shard-{k}.crl"
        );
        assert_eq!(template_of("/ca/root.pem"), "/ca/{name}.pem");
        assert_eq!(template_of("/ca/.pem"), "unmatched");
        assert_eq!(template_of("/nothing"), "unmatched");
    }
}
