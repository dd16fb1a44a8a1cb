//! TLS for the API listener (rustls, TLS 1.2 and 1.3) with the server key in the key store.
//!
//! rustls signs the handshake through [`rustls::sign::SigningKey`]; [`KeyStoreKey`] forwards
//! that to hallmark's [`Signer`], so with a PKCS#11 store the API's key never leaves the HSM.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;
use rustls::{SignatureAlgorithm, SignatureScheme as TlsScheme};

use crate::keys::{KeyAlgorithm, SignatureScheme, Signer};

/// A key-store key as rustls sees it.
#[derive(Debug)]
pub struct KeyStoreKey(pub Arc<dyn Signer>);

#[derive(Debug)]
struct KeyStoreSigner {
    key: Arc<dyn Signer>,
    ours: SignatureScheme,
    tls: TlsScheme,
}

impl rustls::sign::Signer for KeyStoreSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.key
            .sign(self.ours, message)
            .map_err(|e| rustls::Error::General(format!("key store: {e}")))
    }
    fn scheme(&self) -> TlsScheme {
        self.tls
    }
}

impl rustls::sign::SigningKey for KeyStoreKey {
    fn choose_scheme(&self, offered: &[TlsScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        let candidates: &[(TlsScheme, SignatureScheme)] = match self.0.algorithm() {
            KeyAlgorithm::P256 => &[(
                TlsScheme::ECDSA_NISTP256_SHA256,
                SignatureScheme::EcdsaSha256,
            )],
            KeyAlgorithm::P384 => &[(
                TlsScheme::ECDSA_NISTP384_SHA384,
                SignatureScheme::EcdsaSha384,
            )],
            KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => &[
                (TlsScheme::RSA_PSS_SHA256, SignatureScheme::RsaPssSha256),
                (TlsScheme::RSA_PSS_SHA384, SignatureScheme::RsaPssSha384),
                (TlsScheme::RSA_PKCS1_SHA256, SignatureScheme::RsaPkcs1Sha256),
            ],
            KeyAlgorithm::Ed25519 => &[(TlsScheme::ED25519, SignatureScheme::Ed25519)],
        };
        candidates
            .iter()
            .find(|(tls, _)| offered.contains(tls))
            .map(|&(tls, ours)| {
                Box::new(KeyStoreSigner {
                    key: self.0.clone(),
                    ours,
                    tls,
                }) as Box<dyn rustls::sign::Signer>
            })
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self.0.algorithm() {
            KeyAlgorithm::P256 | KeyAlgorithm::P384 => SignatureAlgorithm::ECDSA,
            KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => SignatureAlgorithm::RSA,
            KeyAlgorithm::Ed25519 => SignatureAlgorithm::ED25519,
        }
    }
}

/// Errors setting up TLS.
#[derive(Debug, thiserror::Error)]
#[error("API TLS: {0}")]
pub struct TlsError(pub String);

/// Reads all certificates of a PEM file.
pub fn read_chain(pem_text: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let blocks =
        pem::parse_many(pem_text).map_err(|e| TlsError(format!("certificate file: {e}")))?;
    let chain: Vec<CertificateDer<'static>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| CertificateDer::from(b.into_contents()))
        .collect();
    if chain.is_empty() {
        return Err(TlsError("the certificate file holds no CERTIFICATE".into()));
    }
    Ok(chain)
}

/// The server configuration: TLS 1.2+, HTTP/1.1, a certificate chain and a key-store key or a
/// PEM key file.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: TlsKey,
    client_roots: Option<Vec<CertificateDer<'static>>>,
) -> Result<rustls::ServerConfig, TlsError> {
    let signing: Arc<dyn rustls::sign::SigningKey> = match key {
        TlsKey::Store(signer) => Arc::new(KeyStoreKey(signer)),
        TlsKey::Pem(text) => {
            let der = rustls::pki_types::PrivateKeyDer::try_from(
                pem::parse(text.as_bytes())
                    .map_err(|e| TlsError(format!("key file: {e}")))?
                    .into_contents(),
            )
            .map_err(|e| TlsError(format!("key file: {e}")))?;
            rustls::crypto::aws_lc_rs::sign::any_supported_type(&der)
                .map_err(|e| TlsError(format!("key file: {e}")))?
        }
    };
    let certified = Arc::new(CertifiedKey::new(chain, signing));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| TlsError(e.to_string()))?;
    let builder = match client_roots {
        // Client certificates are asked for and verified, never required: token clients send
        // none; the provisioning route then refuses with 401.
        Some(roots) => {
            let mut store = rustls::RootCertStore::empty();
            for r in roots {
                store
                    .add(r)
                    .map_err(|e| TlsError(format!("client CA: {e}")))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(store),
                provider,
            )
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError(format!("client verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_cert_resolver(Arc::new(Fixed(certified)));
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Where the API's TLS key is.
pub enum TlsKey {
    Store(Arc<dyn Signer>),
    Pem(String),
}

#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl rustls::server::ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}
