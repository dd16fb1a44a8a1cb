//! Outbound HTTP to third parties: an OIDC issuer's discovery document and keys (the server), a
//! CI system's token endpoint (the command line), webhook deliveries (the server). GETs are
//! HTTPS only; a webhook may name http://. Bounded in time and size, trusting the system's
//! roots (which honour `SSL_CERT_FILE`) or one given PEM bundle.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::HeaderMap;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("'{0}' is not an https:// URL")]
    NotHttps(String),
    #[error("'{url}': {why}")]
    Failed { url: String, why: String },
    #[error("the trust anchors for {what}: {why}")]
    Trust { what: String, why: String },
}

/// Percent-encodes a query or `application/x-www-form-urlencoded` component: everything but
/// RFC 3986's unreserved characters.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Whom an HTTPS connection trusts.
#[derive(Clone)]
pub struct Tls(tokio_rustls::TlsConnector);

impl Tls {
    /// The system's roots (Debian's ca-certificates; `SSL_CERT_FILE` / `SSL_CERT_DIR` when set),
    /// or only the certificates of `bundle`.
    pub fn new(bundle: Option<&Path>) -> Result<Tls, FetchError> {
        let trust = |why: String| FetchError::Trust {
            what: bundle
                .map(|b| b.display().to_string())
                .unwrap_or_else(|| "the system".into()),
            why,
        };
        let mut roots = rustls::RootCertStore::empty();
        match bundle {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| trust(e.to_string()))?;
                let blocks = pem::parse_many(&text).map_err(|e| trust(e.to_string()))?;
                for b in blocks.into_iter().filter(|b| b.tag() == "CERTIFICATE") {
                    roots
                        .add(rustls::pki_types::CertificateDer::from(b.into_contents()))
                        .map_err(|e| trust(e.to_string()))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for c in found.certs {
                    // A system store may hold a certificate rustls cannot use; skip it.
                    let _ = roots.add(c);
                }
            }
        }
        if roots.is_empty() {
            return Err(trust("no certificate to trust".into()));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| trust(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Tls(tokio_rustls::TlsConnector::from(Arc::new(cfg))))
    }
}

impl Tls {
    /// The connector, for a client that speaks its own protocol over it.
    pub fn connector(&self) -> tokio_rustls::TlsConnector {
        self.0.clone()
    }
}

/// An answer: status, headers and body.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// GET `url` over HTTPS (with a bearer token when given), within `timeout`, reading at most
/// `max_bytes` of body.
pub async fn get(
    url: &str,
    bearer: Option<&str>,
    tls: &Tls,
    timeout: Duration,
    max_bytes: usize,
) -> Result<Fetched, FetchError> {
    if !url.starts_with("https://") {
        return Err(FetchError::NotHttps(url.to_string()));
    }
    let mut headers = vec![("accept".to_string(), "application/json".to_string())];
    if let Some(b) = bearer {
        headers.push(("authorization".into(), format!("Bearer {b}")));
    }
    exchange("GET", url, &headers, Bytes::new(), tls, timeout, max_bytes).await
}

/// POST `body` to `url` (https://, or http:// for a receiver the operator named: webhooks) with
/// `headers`, within `timeout`, reading at most `max_bytes` of the answer.
pub async fn post(
    url: &str,
    headers: &[(String, String)],
    body: Bytes,
    tls: &Tls,
    timeout: Duration,
    max_bytes: usize,
) -> Result<Fetched, FetchError> {
    exchange("POST", url, headers, body, tls, timeout, max_bytes).await
}

async fn exchange(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Bytes,
    tls: &Tls,
    timeout: Duration,
    max_bytes: usize,
) -> Result<Fetched, FetchError> {
    let failed = |why: String| FetchError::Failed {
        url: url.to_string(),
        why,
    };
    let https = url.starts_with("https://");
    if !https && !url.starts_with("http://") {
        return Err(FetchError::NotHttps(url.to_string()));
    }
    let uri: hyper::Uri = url.parse().map_err(|e| failed(format!("{e}")))?;
    let host = uri
        .host()
        .ok_or_else(|| failed("no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .unwrap_or_else(|| host.clone());
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header("host", authority)
        .header(
            "user-agent",
            concat!("hallmark/", env!("CARGO_PKG_VERSION")),
        );
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(Full::new(body))
        .map_err(|e| failed(e.to_string()))?;
    let connector = tls.0.clone();
    let exchange = async move {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        let resp = if https {
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| format!("server name: {e}"))?;
            let stream = connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            send(hyper_util::rt::TokioIo::new(stream), req).await?
        } else {
            send(hyper_util::rt::TokioIo::new(tcp), req).await?
        };
        let status = resp.status().as_u16();
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, max_bytes)
            .collect()
            .await
            .map_err(|e| format!("reading the answer (at most {max_bytes} bytes): {e}"))?
            .to_bytes();
        Ok::<_, String>(Fetched {
            status,
            headers: parts.headers,
            body,
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r.map_err(failed),
        Err(_) => Err(failed(format!("no answer within {} s", timeout.as_secs()))),
    }
}

/// One request on a fresh HTTP/1.1 connection over `io`.
async fn send<T>(
    io: T,
    req: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    tokio::spawn(conn);
    sender
        .send_request(req)
        .await
        .map_err(|e| format!("HTTP: {e}"))
}
