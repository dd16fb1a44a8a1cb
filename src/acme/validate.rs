//! Challenge validation, run from the server (RFC 8555 §8.3 http-01, §8.4 dns-01; RFC 8737
//! tls-alpn-01). Ports and the address connected to can be overridden for tests and closed
//! networks (`[acme]` http01_port / `HALLMARK_ACME_HTTP01_PORT`, tls_alpn01_port,
//! validation_address, dns_resolver), as Let's Encrypt's Pebble allows.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use super::identifier::Identifier;
use super::{b64, AcmeError, ProblemType};

/// Where and how validations connect.
#[derive(Debug, Clone)]
pub struct Settings {
    pub http01_port: u16,
    pub tls_alpn01_port: u16,
    pub dns_resolver: Option<String>,
    pub validation_address: Option<IpAddr>,
    pub timeout: Duration,
}

impl Settings {
    pub fn from_config(c: &crate::config::AcmeSection) -> Settings {
        Settings {
            http01_port: c.http01_port(),
            tls_alpn01_port: c.tls_alpn01_port,
            dns_resolver: c.dns_resolver.clone(),
            validation_address: c.validation_address,
            timeout: Duration::from_secs(c.validation_timeout_secs.max(1)),
        }
    }
}

/// `token.thumbprint` (RFC 8555 §8.1).
pub fn key_authorization(token: &str, thumbprint: &str) -> String {
    format!("{token}.{thumbprint}")
}

/// Validates one challenge; `Ok` when the client proved control.
pub fn validate(
    kind: &str,
    id: &Identifier,
    token: &str,
    key_authz: &str,
    s: &Settings,
) -> Result<(), AcmeError> {
    match kind {
        "http-01" => http01(id, token, key_authz, s),
        "tls-alpn-01" => tls_alpn01(id, key_authz, s),
        "dns-01" => dns01(id, key_authz, s),
        other => Err(AcmeError::malformed(format!(
            "unknown challenge type {other}"
        ))),
    }
}

fn addresses(id: &Identifier, port: u16, s: &Settings) -> Result<Vec<SocketAddr>, AcmeError> {
    if let Some(a) = s.validation_address {
        return Ok(vec![SocketAddr::new(a, port)]);
    }
    if id.kind == "ip" {
        let ip: IpAddr = id
            .value
            .parse()
            .map_err(|_| AcmeError::malformed("bad IP identifier"))?;
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = (id.value.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| {
            AcmeError::new(
                ProblemType::Dns,
                format!("{} does not resolve: {e}", id.value),
            )
        })?
        .collect();
    if addrs.is_empty() {
        return Err(AcmeError::new(
            ProblemType::Dns,
            format!("{} has no address", id.value),
        ));
    }
    Ok(addrs)
}

fn connect(id: &Identifier, port: u16, s: &Settings) -> Result<TcpStream, AcmeError> {
    let mut last = String::new();
    for a in addresses(id, port, s)? {
        match TcpStream::connect_timeout(&a, s.timeout) {
            Ok(t) => {
                let _ = t.set_read_timeout(Some(s.timeout));
                let _ = t.set_write_timeout(Some(s.timeout));
                return Ok(t);
            }
            Err(e) => last = format!("{a}: {e}"),
        }
    }
    Err(AcmeError::new(
        ProblemType::Connection,
        format!("cannot connect to {}: {last}", id.value),
    ))
}

fn dechunk(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let nl = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..nl]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[nl + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

fn http01(id: &Identifier, token: &str, key_authz: &str, s: &Settings) -> Result<(), AcmeError> {
    let port = s.http01_port;
    let mut conn = connect(id, port, s)?;
    let host = if id.value.contains(':') {
        format!("[{}]", id.value)
    } else {
        id.value.clone()
    };
    let host = if port == 80 {
        host
    } else {
        format!("{host}:{port}")
    };
    let req = format!(
        "GET /.well-known/acme-challenge/{token} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: hallmark-acme\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    let conn_err = |e: std::io::Error| {
        AcmeError::new(
            ProblemType::Connection,
            format!("http-01 to {}: {e}", id.value),
        )
    };
    conn.write_all(req.as_bytes()).map_err(conn_err)?;
    // At most 64 KiB, within twice the timeout in all (a slow trickle cannot hold a worker).
    let deadline = std::time::Instant::now() + s.timeout * 2;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if std::time::Instant::now() > deadline {
            return Err(AcmeError::new(
                ProblemType::Connection,
                format!("http-01 to {}: the answer took too long", id.value),
            ));
        }
        match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > 64 * 1024 {
                    return Err(AcmeError::new(
                        ProblemType::Unauthorized,
                        format!("http-01: the answer from {} is too large", id.value),
                    ));
                }
            }
            Err(e) => return Err(conn_err(e)),
        }
    }
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            AcmeError::new(ProblemType::Connection, "http-01: the answer is not HTTP")
        })?;
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let body = &buf[split + 4..];
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .unwrap_or(0);
    if status != 200 {
        return Err(AcmeError::new(
            ProblemType::Unauthorized,
            format!("http-01: {} answered HTTP {status} for the token", id.value),
        ));
    }
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(body).unwrap_or_default()
    } else {
        body.to_vec()
    };
    let got = String::from_utf8_lossy(&body);
    if got.trim() != key_authz {
        return Err(AcmeError::new(
            ProblemType::IncorrectResponse,
            format!("http-01: the key authorization at {} is wrong", id.value),
        ));
    }
    Ok(())
}

fn dns01(id: &Identifier, key_authz: &str, s: &Settings) -> Result<(), AcmeError> {
    if id.kind != "dns" {
        return Err(AcmeError::malformed("dns-01 validates DNS names only"));
    }
    let server = super::dns::resolver(s.dns_resolver.as_deref())
        .map_err(|e| AcmeError::new(ProblemType::Dns, e.to_string()))?;
    let name = format!("_acme-challenge.{}", id.value);
    let records = super::dns::txt(server, &name, s.timeout)
        .map_err(|e| AcmeError::new(ProblemType::Dns, format!("{name}: {e}")))?;
    let want =
        b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key_authz.as_bytes()).as_ref());
    if records.iter().any(|r| r.trim() == want) {
        Ok(())
    } else {
        Err(AcmeError::new(
            ProblemType::IncorrectResponse,
            format!(
                "dns-01: no TXT record at {name} holds the key authorization digest ({} records)",
                records.len()
            ),
        ))
    }
}

/// The id-pe-acmeIdentifier extension (RFC 8737 §6.1).
const ACME_IDENTIFIER_OID: &str = "1.3.6.1.5.5.7.1.31";

/// Accepts any certificate: tls-alpn-01 checks the self-signed challenge certificate itself.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &rustls::pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        // The client offers TLS 1.3 only.
        Err(rustls::Error::General(
            "TLS 1.2 is not used for tls-alpn-01".into(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        // webpki refuses the challenge certificate (its acmeIdentifier extension is critical
        // and unknown to it), so the handshake signature is checked against the bare key.
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        let spki = rustls::pki_types::SubjectPublicKeyInfoDer::from(
            parsed.tbs_certificate.subject_pki.raw,
        );
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &spki,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The SNI name of an identifier: the name, or the reverse-DNS name of an address (RFC 8738 §6).
fn sni(id: &Identifier) -> Result<String, AcmeError> {
    if id.kind == "dns" {
        return Ok(id.value.clone());
    }
    match id.value.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let o = v4.octets();
            Ok(format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0]))
        }
        Ok(IpAddr::V6(v6)) => {
            let mut s = String::new();
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0x0F, b >> 4));
            }
            Ok(format!("{s}ip6.arpa"))
        }
        Err(_) => Err(AcmeError::malformed("bad IP identifier")),
    }
}

fn tls_alpn01(id: &Identifier, key_authz: &str, s: &Settings) -> Result<(), AcmeError> {
    let tls_err = |d: String| AcmeError::new(ProblemType::Tls, d);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls_err(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"acme-tls/1".to_vec()];
    let name = rustls::pki_types::ServerName::try_from(sni(id)?)
        .map_err(|e| tls_err(format!("SNI: {e}")))?;
    let mut conn =
        rustls::ClientConnection::new(Arc::new(cfg), name).map_err(|e| tls_err(e.to_string()))?;
    let mut sock = connect(id, s.tls_alpn01_port, s)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)
            .map_err(|e| tls_err(format!("tls-alpn-01 handshake with {}: {e}", id.value)))?;
    }
    if conn.alpn_protocol() != Some(b"acme-tls/1".as_slice()) {
        return Err(tls_err(
            "tls-alpn-01: the server did not negotiate acme-tls/1".into(),
        ));
    }
    let cert = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .ok_or_else(|| tls_err("tls-alpn-01: no certificate".into()))?;
    conn.send_close_notify();
    let _ = conn.complete_io(&mut sock);
    check_alpn_cert(&cert, id, key_authz)
}

/// The challenge certificate names exactly the identifier and carries a critical
/// acmeIdentifier extension with SHA-256 of the key authorization.
pub fn check_alpn_cert(der: &[u8], id: &Identifier, key_authz: &str) -> Result<(), AcmeError> {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    let bad = |d: &str| AcmeError::new(ProblemType::IncorrectResponse, format!("tls-alpn-01: {d}"));
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| bad("the certificate does not parse"))?;
    let mut names = Vec::new();
    let mut digest: Option<Vec<u8>> = None;
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            for n in &san.general_names {
                match n {
                    GeneralName::DNSName(d) => names.push(Identifier {
                        kind: "dns".into(),
                        value: d.to_ascii_lowercase(),
                    }),
                    GeneralName::IPAddress(b) => {
                        if let Some(ip) = super::names::ip_from_bytes(b) {
                            names.push(Identifier {
                                kind: "ip".into(),
                                value: ip.to_string(),
                            });
                        }
                    }
                    _ => names.push(Identifier {
                        kind: "other".into(),
                        value: String::new(),
                    }),
                }
            }
        }
        if ext.oid.to_id_string() == ACME_IDENTIFIER_OID {
            if !ext.critical {
                return Err(bad("the acmeIdentifier extension is not critical"));
            }
            // OCTET STRING (04 20) of the 32-byte digest.
            let v = ext.value;
            if v.len() != 34 || v[0] != 0x04 || v[1] != 0x20 {
                return Err(bad(
                    "the acmeIdentifier extension is not a 32-byte OCTET STRING",
                ));
            }
            digest = Some(v[2..].to_vec());
        }
    }
    if names != [id.clone()] {
        return Err(bad("the certificate must name exactly the identifier"));
    }
    let want = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key_authz.as_bytes());
    match digest {
        Some(d) if d.as_slice() == want.as_ref() => Ok(()),
        Some(_) => Err(bad("the acmeIdentifier digest is wrong")),
        None => Err(bad("the certificate has no acmeIdentifier extension")),
    }
}
