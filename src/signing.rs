//! The signing service: publisher keys sign digests the client computed; the artifact never
//! reaches the server.
//!
//! Rules: the caller needs the `sign` scope and must act for the key's publisher; SHA-1 is never
//! accepted and a digest must have its algorithm's length; a key whose certificate is missing,
//! not yet valid, expired or revoked signs nothing. A signature is recorded (with its audit
//! event) before it is returned; one that cannot be recorded is dropped, never handed out.
//!
//! A key's policy ([`KeyPolicy`], `hallmark key policy`) narrows this: formats, digest
//! algorithms, the token names that may sign (403 otherwise), and a per-key rate (429, kept in
//! this process; a request waiting for approvals counts too). When it asks for M approvals the
//! digest is stored as a signature request (`signature_requests`, decisions in `approvals` with
//! `request_kind = 'signature'`) under the certificate workflow's rules: the requester never
//! approves, an approver counts once, `api.request_ttl_hours` expires it, one denial ends it. The
//! approval that reaches the quorum claims the request (`pending` -> `signing`, in the same
//! transaction, so exactly one caller signs), checks policy and key certificate again, signs and
//! records. Signature requests have their own routes and ids (`/api/v1/signatures/requests/{id}`)
//! rather than sharing `/api/v1/requests`, so a certificate request and a signature request can
//! never be confused.
//!
//! Formats: `raw` is the key's signature over the digest (DER ECDSA, RSA PKCS#1 v1.5); `cms` is
//! a detached CMS SignedData (RFC 5652) whose signed attributes carry the client's digest as
//! message-digest, built here by hand in DER; `cose_sign1` is the signature in COSE's form over
//! the hash of a Sig_structure the client built (ECDSA `r || s`, RSA-PSS; see
//! [`crate::formats::cose`]).

use std::sync::Arc;

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::der::read_tlv;
use crate::engine::Hallmark;
use crate::error::{Error, Result};
use crate::keys::{HashAlg, KeyAlgorithm, SignatureScheme};
use crate::policy::auth::{AuthError, Credential, Scope};
use crate::policy::signing::KeyPolicy;
use crate::policy::PolicyError;
use crate::store::{
    now, ApprovalRecord, KeyRecord, SignatureRecord, SignatureRequestRecord,
    SignatureRequestStatus, SignedRequest, StoreError,
};

/// Largest accepted metadata object, serialized.
pub const MAX_METADATA_BYTES: usize = 4096;

/// Largest accepted signed content (`content`, decoded), in bytes.
pub const MAX_CONTENT_BYTES: usize = 16 * 1024;

/// The metadata key hallmark keeps its own facts under (timestamp, content type); a client may
/// not send it.
pub const RESERVED_METADATA_KEY: &str = "_hallmark";

/// SpcIndirectDataContent (Authenticode), the one content type offered for embedded content.
pub use crate::issuer::cms::SPC_INDIRECT_DATA;

/// What the signature comes as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFormat {
    /// The bare signature over the digest.
    Raw,
    /// A detached CMS SignedData (DER).
    Cms,
    /// The signature as a COSE_Sign1 carries it (RFC 9053/8230): ECDSA as fixed-size `r || s`
    /// (ES256 with P-256 and SHA-256, ES384 with P-384 and SHA-384), RSA as RSASSA-PSS
    /// (PS256/384/512). The client builds the message (`crate::formats::cose`).
    CoseSign1,
}

impl SignatureFormat {
    pub fn name(self) -> &'static str {
        match self {
            SignatureFormat::Raw => "raw",
            SignatureFormat::Cms => "cms",
            SignatureFormat::CoseSign1 => "cose_sign1",
        }
    }

    pub fn parse(s: &str) -> Result<SignatureFormat> {
        match s {
            "raw" => Ok(SignatureFormat::Raw),
            "cms" => Ok(SignatureFormat::Cms),
            "cose_sign1" => Ok(SignatureFormat::CoseSign1),
            other => Err(Error::Invalid(format!(
                "format '{other}' is not offered (raw, cms, cose_sign1)"
            ))),
        }
    }
}

/// Parses a digest algorithm name; SHA-1 and anything unknown are refused.
pub fn parse_digest_algorithm(s: &str) -> Result<HashAlg> {
    match s.to_ascii_lowercase().replace('-', "").as_str() {
        "sha256" => Ok(HashAlg::Sha256),
        "sha384" => Ok(HashAlg::Sha384),
        "sha512" => Ok(HashAlg::Sha512),
        "sha1" => Err(Error::Invalid(
            "SHA-1 digests are refused: collisions are practical; use sha256, sha384 or sha512"
                .into(),
        )),
        other => Err(Error::Invalid(format!(
            "digest algorithm '{other}' is not accepted (sha256, sha384, sha512)"
        ))),
    }
}

pub fn digest_algorithm_name(h: HashAlg) -> &'static str {
    match h {
        HashAlg::Sha256 => "sha256",
        HashAlg::Sha384 => "sha384",
        HashAlg::Sha512 => "sha512",
    }
}

/// A request to sign a digest.
#[derive(Debug, Clone, Default)]
pub struct SignRequest {
    pub key: String,
    /// Hex, as the client sent it.
    pub digest: String,
    pub digest_algorithm: String,
    pub format: String,
    /// A JSON object describing the artifact (name, commit, pipeline, ...).
    pub metadata: Option<serde_json::Value>,
    /// Add an RFC 3161 time-stamp token from this server's TSA (over the signature value).
    pub timestamp: bool,
    /// The dotted OID of `content` (format `cms` only): today only
    /// [`SPC_INDIRECT_DATA`].
    pub content_type: Option<String>,
    /// Base64 DER of a small content to embed as the SignedData's eContent; `digest` must be its
    /// hash (for SpcIndirectDataContent: of its DER without the outer tag and length).
    pub content: Option<String>,
}

/// A signature handed out.
#[derive(Debug, Clone)]
pub struct SignedDigest {
    /// The record id.
    pub id: i64,
    pub format: SignatureFormat,
    /// Raw signature bytes, or the DER ContentInfo for CMS.
    pub signature: Vec<u8>,
    /// The key's certificate (DER).
    pub certificate: Vec<u8>,
    /// The CA certificates above it, root excluded (DER).
    pub chain: Vec<Vec<u8>>,
    /// The RFC 3161 TimeStampToken (DER ContentInfo) when one was asked for; for CMS it is also
    /// inside the signature as an unsigned attribute.
    pub timestamp_token: Option<Vec<u8>>,
}

/// What a signature submission came to.
#[derive(Debug, Clone)]
pub enum SignSubmitted {
    Signed(SignedDigest),
    /// Waiting for approvals (the key's policy asks for them).
    Pending(SignatureRequestRecord),
}

/// A signature request with its decisions, as callers see it.
#[derive(Debug, Clone)]
pub struct SignatureRequestView {
    pub request: SignatureRequestRecord,
    pub approvals: Vec<ApprovalRecord>,
}

/// What one id of `GET /api/v1/signatures/{id}` names (see [`Hallmark::signature_by_id`]).
#[derive(Debug, Clone)]
pub enum SignatureById {
    /// A recorded signature, with the request it ended when it waited for approvals.
    Record(SignatureRecord, Option<SignatureRequestView>),
    /// A signature request not signed (yet): pending, denied, expired or failed.
    Request(SignatureRequestView),
}

/// Embedded content of a CMS signature.
#[derive(Debug, Clone)]
struct Content {
    /// Dotted OID.
    content_type: String,
    /// The content's DER (one TLV).
    der: Vec<u8>,
}

/// The checked parts of a request.
#[derive(Debug)]
struct Checked {
    hash: HashAlg,
    digest: Vec<u8>,
    format: SignatureFormat,
    metadata: Option<String>,
    timestamp: bool,
    content: Option<Content>,
}

/// Checks the shape of an SpcIndirectDataContent (its SEQUENCE's contents):
/// `{ SEQUENCE { type OID, value ANY OPTIONAL }, DigestInfo { AlgorithmIdentifier, OCTET STRING } }`
/// and nothing else; the DigestInfo (the hash of the signed file) must be SHA-256, SHA-384 or
/// SHA-512 with a digest of that length. The service never signs a SHA-1 or MD5 file hash.
fn check_spc_indirect_data(contents: &[u8]) -> Result<()> {
    let bad =
        |why: &str| Error::Invalid(format!("content is not an SpcIndirectDataContent: {why}"));
    let data = read_tlv(contents).map_err(|_| bad("unreadable"))?;
    let digest_info = read_tlv(data.rest).map_err(|_| bad("no DigestInfo"))?;
    if data.tag != 0x30 || digest_info.tag != 0x30 || !digest_info.rest.is_empty() {
        return Err(bad(
            "expected SEQUENCE { SpcAttributeTypeAndOptionalValue, DigestInfo }",
        ));
    }
    let data_type = read_tlv(data.contents).map_err(|_| bad("unreadable data"))?;
    if data_type.tag != 0x06 {
        return Err(bad("the data has no type OID"));
    }
    let alg = read_tlv(digest_info.contents).map_err(|_| bad("unreadable DigestInfo"))?;
    let digest = read_tlv(alg.rest).map_err(|_| bad("DigestInfo without a digest"))?;
    if alg.tag != 0x30 || digest.tag != 0x04 || !digest.rest.is_empty() {
        return Err(bad(
            "DigestInfo is not { AlgorithmIdentifier, OCTET STRING }",
        ));
    }
    let alg_oid = read_tlv(alg.contents).map_err(|_| bad("unreadable digest algorithm"))?;
    let oid = crate::issuer::extensions::oid;
    let file_hash = [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512]
        .into_iter()
        .find(|h| {
            let dotted = match h {
                HashAlg::Sha256 => "2.16.840.1.101.3.4.2.1",
                HashAlg::Sha384 => "2.16.840.1.101.3.4.2.2",
                HashAlg::Sha512 => "2.16.840.1.101.3.4.2.3",
            };
            alg_oid.whole == oid(dotted).as_slice()
        })
        .ok_or_else(|| {
            Error::Invalid(
                "the SpcIndirectDataContent's file digest must be SHA-256, SHA-384 or SHA-512 \
                 (SHA-1 and MD5 are refused)"
                    .into(),
            )
        })?;
    if digest.contents.len() != file_hash.output_len() {
        return Err(bad("the DigestInfo's digest has the wrong length"));
    }
    Ok(())
}

/// Checks `content` against its type and the request's digest.
fn check_content(req: &SignRequest, hash: HashAlg, digest: &[u8]) -> Result<Option<Content>> {
    use base64::Engine as _;
    let (ct, b64) = match (&req.content_type, &req.content) {
        (None, None) => return Ok(None),
        (Some(ct), Some(c)) => (ct.trim(), c),
        _ => {
            return Err(Error::Invalid(
                "content_type and content come together (or not at all)".into(),
            ))
        }
    };
    if ct != SPC_INDIRECT_DATA {
        return Err(Error::Invalid(format!(
            "content_type '{ct}' is not offered (only {SPC_INDIRECT_DATA}, SpcIndirectDataContent)"
        )));
    }
    // A base64 text at most this long decodes to at most MAX_CONTENT_BYTES.
    if b64.len() > MAX_CONTENT_BYTES.div_ceil(3) * 4 + 4 {
        return Err(Error::Invalid(format!(
            "content is larger than {MAX_CONTENT_BYTES} bytes"
        )));
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| Error::Invalid("content must be base64 (standard alphabet)".into()))?;
    if der.len() > MAX_CONTENT_BYTES {
        return Err(Error::Invalid(format!(
            "content is larger than {MAX_CONTENT_BYTES} bytes ({} bytes)",
            der.len()
        )));
    }
    let t =
        read_tlv(&der).map_err(|e| Error::Invalid(format!("content is not one DER value: {e}")))?;
    if t.tag != 0x30 || !t.rest.is_empty() {
        return Err(Error::Invalid(
            "SpcIndirectDataContent content must be exactly one DER SEQUENCE".into(),
        ));
    }
    check_spc_indirect_data(t.contents)?;
    // Authenticode's rule: the message digest covers the SEQUENCE's contents only.
    let computed = hash.digest(t.contents);
    if computed != digest {
        return Err(Error::Invalid(format!(
            "content digest mismatch: the {} of the content (without its outer tag and length) \
             is {}, the request's digest is {}",
            digest_algorithm_name(hash),
            hex::encode(&computed),
            hex::encode(digest)
        )));
    }
    Ok(Some(Content {
        content_type: ct.to_string(),
        der,
    }))
}

fn check_request(req: &SignRequest) -> Result<Checked> {
    let hash = parse_digest_algorithm(&req.digest_algorithm)?;
    let digest = hex::decode(req.digest.trim())
        .map_err(|_| Error::Invalid("the digest must be hex".into()))?;
    if digest.len() != hash.output_len() {
        return Err(Error::Invalid(format!(
            "a {} digest is {} bytes ({} hex characters), this one is {} bytes",
            digest_algorithm_name(hash),
            hash.output_len(),
            hash.output_len() * 2,
            digest.len()
        )));
    }
    let format = SignatureFormat::parse(&req.format)?;
    let content = check_content(req, hash, &digest)?;
    if content.is_some() && format != SignatureFormat::Cms {
        return Err(Error::Invalid(format!(
            "content is signed as CMS only (format cms, not {})",
            format.name()
        )));
    }
    if req.timestamp && !matches!(format, SignatureFormat::Raw | SignatureFormat::Cms) {
        return Err(Error::Invalid(format!(
            "format {} cannot carry a time-stamp",
            format.name()
        )));
    }
    let metadata = match &req.metadata {
        None | Some(serde_json::Value::Null) => None,
        Some(v @ serde_json::Value::Object(o)) => {
            if o.contains_key(RESERVED_METADATA_KEY) {
                return Err(Error::Invalid(format!(
                    "metadata key '{RESERVED_METADATA_KEY}' is reserved for hallmark"
                )));
            }
            let s = v.to_string();
            if s.len() > MAX_METADATA_BYTES {
                return Err(Error::Invalid(format!(
                    "metadata is {} bytes; at most {MAX_METADATA_BYTES}",
                    s.len()
                )));
            }
            Some(s)
        }
        Some(_) => return Err(Error::Invalid("metadata must be a JSON object".into())),
    };
    Ok(Checked {
        hash,
        digest,
        format,
        metadata,
        timestamp: req.timestamp,
        content,
    })
}

/// The metadata to record: the client's object plus, under [`RESERVED_METADATA_KEY`], what
/// hallmark adds (`extra`), when there is any.
fn merged_metadata(
    client: Option<&str>,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Option<String> {
    if extra.is_empty() {
        return client.map(str::to_string);
    }
    let mut obj = client
        .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
        .and_then(|v| match v {
            serde_json::Value::Object(o) => Some(o),
            _ => None,
        })
        .unwrap_or_default();
    obj.insert(
        RESERVED_METADATA_KEY.into(),
        serde_json::Value::Object(extra),
    );
    Some(serde_json::Value::Object(obj).to_string())
}

/// What a signature request waiting for approvals keeps besides the digest: the time-stamp
/// wish and the content, under the reserved metadata key.
fn pending_extras(c: &Checked) -> serde_json::Map<String, serde_json::Value> {
    use base64::Engine as _;
    let mut m = serde_json::Map::new();
    if c.timestamp {
        m.insert("timestamp".into(), true.into());
    }
    if let Some(content) = &c.content {
        m.insert("content_type".into(), content.content_type.clone().into());
        m.insert(
            "content".into(),
            base64::engine::general_purpose::STANDARD
                .encode(&content.der)
                .into(),
        );
    }
    m
}

/// Splits stored metadata into the client's part and hallmark's reserved object.
fn split_metadata(
    stored: Option<&str>,
) -> (
    Option<serde_json::Value>,
    serde_json::Map<String, serde_json::Value>,
) {
    let Some(serde_json::Value::Object(mut o)) =
        stored.and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
    else {
        return (None, serde_json::Map::new());
    };
    let extra = match o.remove(RESERVED_METADATA_KEY) {
        Some(serde_json::Value::Object(e)) => e,
        _ => serde_json::Map::new(),
    };
    let client = (!o.is_empty()).then_some(serde_json::Value::Object(o));
    (client, extra)
}

/// The scheme a key signs digests of `hash` with.
fn scheme_for(alg: KeyAlgorithm, hash: HashAlg) -> Result<SignatureScheme> {
    use SignatureScheme as S;
    Ok(match (alg, hash) {
        (KeyAlgorithm::P256 | KeyAlgorithm::P384, HashAlg::Sha256) => S::EcdsaSha256,
        (KeyAlgorithm::P256 | KeyAlgorithm::P384, HashAlg::Sha384) => S::EcdsaSha384,
        (KeyAlgorithm::P256 | KeyAlgorithm::P384, HashAlg::Sha512) => S::EcdsaSha512,
        (KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096, HashAlg::Sha256) => S::RsaPkcs1Sha256,
        (KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096, HashAlg::Sha384) => S::RsaPkcs1Sha384,
        (KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096, HashAlg::Sha512) => S::RsaPkcs1Sha512,
        (KeyAlgorithm::Ed25519, _) => {
            return Err(PolicyError::BadKey(
                "Ed25519 keys sign whole messages and cannot sign digests".into(),
            )
            .into())
        }
    })
}

/// The scheme (and, for ECDSA, the size of r and of s) a key signs `cose_sign1` with: ECDSA
/// only with its curve's hash, RSA with PSS; PKCS#1 v1.5 (RS256) is never used for COSE.
fn cose_scheme(alg: KeyAlgorithm, hash: HashAlg) -> Result<(SignatureScheme, Option<usize>)> {
    use crate::formats::cose::{CoseAlg, CoseError};
    match CoseAlg::for_key(alg, hash) {
        Ok((_, scheme, fixed)) => Ok((scheme, fixed)),
        Err(e @ CoseError::UnsupportedKey(_)) => Err(PolicyError::BadKey(e.to_string()).into()),
        Err(e) => Err(Error::Invalid(e.to_string())),
    }
}

/// Verifies a fresh signature over `digest` with the key's public key before it is recorded or
/// returned: a faulty token or a key mix-up never hands out a signature that does not verify.
/// (A fault in a signature computation can leak the key; the check is what keeps such a
/// signature from leaving the server. Public so the signing benchmark measures the same cost.)
pub fn check_signature(
    scheme: SignatureScheme,
    spki: &[u8],
    digest: &[u8],
    signature: &[u8],
) -> Result<()> {
    use aws_lc_rs::digest::{Digest, SHA256, SHA384, SHA512};
    use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
    use SignatureScheme as S;
    let bits = crate::keys::subject_public_key_bits(spki)?;
    // The curve is in the SPKI: P-256 keys have a 65-byte point, P-384 97 bytes.
    let p256 = bits.len() == 65;
    let (alg, hash): (&'static dyn VerificationAlgorithm, _) = match scheme {
        S::EcdsaSha256 if p256 => (&sig::ECDSA_P256_SHA256_ASN1, &SHA256),
        S::EcdsaSha384 if p256 => (&sig::ECDSA_P256_SHA384_ASN1, &SHA384),
        S::EcdsaSha512 if p256 => (&sig::ECDSA_P256_SHA512_ASN1, &SHA512),
        S::EcdsaSha256 => (&sig::ECDSA_P384_SHA256_ASN1, &SHA256),
        S::EcdsaSha384 => (&sig::ECDSA_P384_SHA384_ASN1, &SHA384),
        S::EcdsaSha512 => (&sig::ECDSA_P384_SHA512_ASN1, &SHA512),
        S::RsaPkcs1Sha256 => (&sig::RSA_PKCS1_2048_8192_SHA256, &SHA256),
        S::RsaPkcs1Sha384 => (&sig::RSA_PKCS1_2048_8192_SHA384, &SHA384),
        S::RsaPkcs1Sha512 => (&sig::RSA_PKCS1_2048_8192_SHA512, &SHA512),
        S::RsaPssSha256 => (&sig::RSA_PSS_2048_8192_SHA256, &SHA256),
        S::RsaPssSha384 => (&sig::RSA_PSS_2048_8192_SHA384, &SHA384),
        S::RsaPssSha512 => (&sig::RSA_PSS_2048_8192_SHA512, &SHA512),
        other => {
            return Err(Error::Invalid(format!(
                "{other:?} is not offered by the signing service"
            )))
        }
    };
    let failed = || {
        Error::from(crate::keys::KeyError::Crypto(format!(
            "the key store returned a {scheme:?} signature that does not verify with the key's certificate"
        )))
    };
    let d = Digest::import_less_safe(digest, hash).map_err(|_| failed())?;
    UnparsedPublicKey::new(alg, bits)
        .verify_digest(&d, signature)
        .map_err(|_| failed())
}

/// The parts of a publisher key's certificate every signature checks, parsed once per
/// certificate: the certificate is re-read from the store's cache on each request, parsing it
/// again each time cost more than the signature.
pub(crate) struct KeyCertFacts {
    der: Vec<u8>,
    not_before: i64,
    not_after: i64,
    serial: String,
    spki: Vec<u8>,
}

impl KeyCertFacts {
    fn parse(der: &[u8]) -> Result<KeyCertFacts> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| {
            Error::Corrupt(format!("the stored key certificate does not parse: {e}"))
        })?;
        let v = cert.validity();
        Ok(KeyCertFacts {
            der: der.to_vec(),
            not_before: v.not_before.timestamp(),
            not_after: v.not_after.timestamp(),
            serial: hex::encode(cert.raw_serial()),
            spki: cert.public_key().raw.to_vec(),
        })
    }
}

/// A publisher key's certificate, checked usable now: its DER, the hallmark CA that issued it
/// (None for an external CA), and its SubjectPublicKeyInfo.
pub(crate) struct UsableCert {
    pub(crate) facts: Arc<KeyCertFacts>,
    pub(crate) ca: Option<String>,
}

impl UsableCert {
    pub(crate) fn der(&self) -> &[u8] {
        &self.facts.der
    }
    fn spki(&self) -> &[u8] {
        &self.facts.spki
    }
}

impl Hallmark {
    /// The parsed facts of a key's certificate, from the cache when the stored certificate is
    /// the one parsed before (a new certificate for the label is parsed again).
    fn key_cert_facts(&self, label: &str, der: &[u8]) -> Result<Arc<KeyCertFacts>> {
        if let Some(f) = self
            .key_cert_facts
            .lock()
            .ok()
            .and_then(|m| m.get(label).cloned())
        {
            if f.der == der {
                return Ok(f);
            }
        }
        let f = Arc::new(KeyCertFacts::parse(der)?);
        if let Ok(mut m) = self.key_cert_facts.lock() {
            m.insert(label.to_string(), f.clone());
        }
        Ok(f)
    }

    /// Checks that a key may sign now: it has a certificate, valid at this moment, not revoked.
    fn usable_key_certificate(&self, key: &KeyRecord) -> Result<UsableCert> {
        let refuse = |why: String| -> Error { PolicyError::BadKey(why).into() };
        let der = key.cert_der.as_deref().ok_or_else(|| {
            refuse(format!(
                "key '{}' has no certificate and signs nothing",
                key.label
            ))
        })?;
        let facts = self.key_cert_facts(&key.label, der)?;
        let t = now();
        if t < facts.not_before {
            return Err(refuse(format!(
                "the certificate of key '{}' is not valid before {}",
                key.label,
                crate::store::rfc3339(facts.not_before)
            )));
        }
        if t > facts.not_after {
            return Err(refuse(format!(
                "the certificate of key '{}' expired at {}",
                key.label,
                crate::store::rfc3339(facts.not_after)
            )));
        }
        let ca = match self.store.certificate_standing_cached(&facts.serial)? {
            Some(s) => {
                if let Some((reason, _)) = s.revoked {
                    let name = crate::revocation::RevocationReason::from_code(reason)
                        .map(|r| r.name().to_string())
                        .unwrap_or_else(|| format!("reason {reason}"));
                    return Err(refuse(format!(
                        "the certificate of key '{}' (serial {}) is revoked ({name})",
                        key.label, facts.serial
                    )));
                }
                Some(s.ca)
            }
            // A certificate from an external CA: its revocation is that CA's to publish.
            None => None,
        };
        Ok(UsableCert { facts, ca })
    }

    /// The key's policy: the config's `[signing.keys.<label>]` when it names the key, else the
    /// one set with `hallmark key policy`, else the default (the service's own rules only).
    pub fn key_policy(&self, label: &str) -> Result<KeyPolicy> {
        if let Some(p) = self.config_key_policies.get(label) {
            return Ok(p.clone());
        }
        Ok(self
            .store
            .get_key_policy(label)?
            .map(|r| KeyPolicy::from_record(&r))
            .unwrap_or_default())
    }

    /// Where key `label`'s policy comes from: "config", "set" (`hallmark key policy`) or
    /// "default".
    pub fn key_policy_source(&self, label: &str) -> Result<&'static str> {
        Ok(if self.config_key_policies.contains_key(label) {
            "config"
        } else if self.store.get_key_policy(label)?.is_some() {
            "set"
        } else {
            "default"
        })
    }

    /// Sets a key's policy (replacing any earlier one). Refused for a key whose policy the
    /// config file sets.
    pub fn set_key_policy(&self, label: &str, policy: &KeyPolicy, actor: &str) -> Result<()> {
        self.key(label)?;
        if self.config_key_policies.contains_key(label) {
            return Err(Error::Conflict(format!(
                "the policy of key '{label}' is set in {} ([signing.keys.{label}]); change it \
                 there (a running server reads it when it starts)",
                self.config.path.display()
            )));
        }
        policy.validate()?;
        self.store.set_key_policy(&policy.to_record(label), actor)?;
        Ok(())
    }

    /// Takes one signature from key `label`'s rate bucket (`per_minute`, bursts of as many).
    fn take_sign_rate(&self, label: &str, per_minute: u32) -> Result<()> {
        let Ok(mut b) = self.sign_buckets.lock() else {
            return Ok(());
        };
        let rate = f64::from(per_minute.max(1));
        let t = std::time::Instant::now();
        let (tokens, last) = b.entry(label.to_string()).or_insert((rate, t));
        *tokens = (*tokens + t.duration_since(*last).as_secs_f64() * rate / 60.0).min(rate);
        *last = t;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - *tokens) * 60.0 / rate).ceil().max(1.0) as u64;
        Err(Error::RateLimited {
            detail: format!(
                "key '{label}' signs at most {per_minute} times a minute; retry in {wait} s"
            ),
            retry_after: wait,
        })
    }

    /// The checks every submission passes, in order: scope, request, key, publisher, policy,
    /// key certificate, rate.
    fn admit(
        &self,
        req: &SignRequest,
        cred: &Credential,
    ) -> Result<(KeyRecord, Checked, KeyPolicy, UsableCert)> {
        cred.require(Scope::Sign)?;
        let checked = check_request(req)?;
        let key = self.key_for(&req.key, cred)?;
        let policy = self.key_policy(&key.label)?;
        policy.check(
            &key.label,
            checked.format.name(),
            digest_algorithm_name(checked.hash),
            &cred.name,
        )?;
        let cert = self.usable_key_certificate(&key)?;
        if checked.timestamp {
            // Before anything waits for approvals or is signed.
            self.require_tsa()?;
        }
        if checked.format == SignatureFormat::CoseSign1 {
            // Refuse a key/digest pair COSE cannot express before anything waits or is signed.
            let alg: KeyAlgorithm = key
                .algorithm
                .parse()
                .map_err(|e: String| Error::Corrupt(format!("the stored key algorithm: {e}")))?;
            cose_scheme(alg, checked.hash)?;
        }
        if let Some(rate) = policy.rate_per_minute {
            self.take_sign_rate(&key.label, rate)?;
        }
        Ok((key, checked, policy, cert))
    }

    /// Signs a client's digest with a publisher key, records it, and returns it. A key whose
    /// policy needs approvals is refused here: use [`Hallmark::submit_signature`].
    pub fn sign_digest(&self, req: &SignRequest, cred: &Credential) -> Result<SignedDigest> {
        match self.submit_signature(req, cred, false)? {
            SignSubmitted::Signed(s) => Ok(s),
            SignSubmitted::Pending(_) => Err(PolicyError::ApprovalRequired(format!(
                "key '{}' signs only with approvals",
                req.key
            ))
            .into()),
        }
    }

    /// Signs at once, or (when the key's policy needs approvals and `allow_pending`) stores the
    /// request with its digest to wait for them.
    pub fn submit_signature(
        &self,
        req: &SignRequest,
        cred: &Credential,
        allow_pending: bool,
    ) -> Result<SignSubmitted> {
        let (key, checked, policy, cert) = self.admit(req, cred)?;
        if policy.approvals == 0 {
            return Ok(SignSubmitted::Signed(self.sign_checked(
                &key,
                &checked,
                &cred.name,
                &cred.actor(),
                None,
                Some(cert),
                0,
            )?));
        }
        if !allow_pending {
            return Err(PolicyError::ApprovalRequired(format!(
                "key '{}' signs only with {} approvals",
                key.label, policy.approvals
            ))
            .into());
        }
        let rec = SignatureRequestRecord {
            id: 0,
            key_label: key.label.clone(),
            publisher: key.publisher.clone(),
            requester: cred.name.clone(),
            digest_algorithm: digest_algorithm_name(checked.hash).to_string(),
            digest: hex::encode(&checked.digest),
            format: checked.format.name().to_string(),
            metadata: merged_metadata(checked.metadata.as_deref(), pending_extras(&checked)),
            status: SignatureRequestStatus::Pending,
            approvals_required: i64::from(policy.approvals),
            created_at: 0,
            expires_at: now() + i64::from(self.config.api.request_ttl_hours) * 3600,
            decided_at: None,
            signature_id: None,
            signature: None,
            timestamp_token: None,
        };
        let id = self.store.insert_signature_request(&rec, &cred.actor())?;
        let stored = self
            .store
            .get_signature_request(id)?
            .ok_or_else(|| Error::NotFound(format!("signature request {id}")))?;
        Ok(SignSubmitted::Pending(stored))
    }

    /// Time-stamps a signature value with this server's TSA (SHA-256 imprint), in process.
    fn timestamp_signature(&self, signature: &[u8]) -> Result<Vec<u8>> {
        let imprint = HashAlg::Sha256.digest(signature);
        crate::tsa::stamp_digest(self, HashAlg::Sha256, &imprint)
    }

    /// Refuses a time-stamp request early when no TSA is set up (nothing is signed then).
    fn require_tsa(&self) -> Result<()> {
        if !crate::tsa::configured(self) {
            return Err(Error::Conflict(
                "a time-stamp was asked for but this server has no time-stamp authority \
                 (run `hallmark tsa init`); nothing was signed"
                    .into(),
            ));
        }
        self.tsa()?;
        Ok(())
    }

    /// Signs checked parts with a key, records the signature, and returns it. `cert` is the
    /// key's certificate as checked a moment before (on the direct path); `None` checks it
    /// now (after approvals, which may have taken days). `record_id` is the id the record
    /// should take (a signature request's), or 0 for the next one.
    #[allow(clippy::too_many_arguments)]
    fn sign_checked(
        &self,
        key: &KeyRecord,
        checked: &Checked,
        requester: &str,
        actor: &str,
        approvers: Option<String>,
        cert: Option<UsableCert>,
        record_id: i64,
    ) -> Result<SignedDigest> {
        let cert = match cert {
            Some(c) => c,
            None => self.usable_key_certificate(key)?,
        };
        if checked.timestamp {
            self.require_tsa()?;
        }
        let alg: KeyAlgorithm = key
            .algorithm
            .parse()
            .map_err(|e: String| Error::Corrupt(format!("the stored key algorithm: {e}")))?;
        let scheme = scheme_for(alg, checked.hash)?;
        let signer = self.publisher_signer(key)?;
        if cert.spki() != signer.spki_der() {
            return Err(PolicyError::BadKey(format!(
                "the certificate of key '{}' is not for the key in the store",
                key.label
            ))
            .into());
        }
        let chain = match &cert.ca {
            Some(ca) => self.chain(ca)?,
            None => Vec::new(),
        };
        let at = now();
        let mut timestamp_token = None;
        let signature = match checked.format {
            SignatureFormat::Raw => {
                let sig = signer.sign_digest(scheme, &checked.digest)?;
                check_signature(scheme, signer.spki_der(), &checked.digest, &sig)?;
                if checked.timestamp {
                    timestamp_token = Some(self.timestamp_signature(&sig)?);
                }
                sig
            }
            SignatureFormat::CoseSign1 => {
                let (scheme, fixed) = cose_scheme(alg, checked.hash)?;
                let sig = signer.sign_digest(scheme, &checked.digest)?;
                check_signature(scheme, signer.spki_der(), &checked.digest, &sig)?;
                match fixed {
                    Some(n) => crate::formats::cose::ecdsa_der_to_fixed(&sig, n)
                        .map_err(|e| Error::Invalid(e.to_string()))?,
                    None => sig,
                }
            }
            SignatureFormat::Cms => {
                let attrs = match &checked.content {
                    Some(_) => cms::authenticode_signed_attributes(&checked.digest, at),
                    None => cms::signed_attributes(&checked.digest, at),
                };
                let attrs_digest = checked.hash.digest(&attrs);
                let sig = signer.sign_digest(scheme, &attrs_digest)?;
                check_signature(scheme, signer.spki_der(), &attrs_digest, &sig)?;
                let unsigned_attrs = if checked.timestamp {
                    let token = self.timestamp_signature(&sig)?;
                    let attr = cms::timestamp_attribute(&token, checked.content.is_some());
                    timestamp_token = Some(token);
                    Some(attr)
                } else {
                    None
                };
                cms::signed_data(&cms::Parts {
                    hash: checked.hash,
                    scheme,
                    signed_attrs: &attrs,
                    signature: &sig,
                    signer_cert: cert.der(),
                    chain: &chain,
                    content: checked
                        .content
                        .as_ref()
                        .map(|c| (c.content_type.as_str(), c.der.as_slice())),
                    unsigned_attrs: unsigned_attrs.as_deref(),
                })?
            }
        };
        let mut extra = serde_json::Map::new();
        if timestamp_token.is_some() {
            extra.insert("timestamped".into(), true.into());
        }
        if let Some(c) = &checked.content {
            extra.insert("content_type".into(), c.content_type.clone().into());
        }
        let record = SignatureRecord {
            id: record_id,
            key_label: key.label.clone(),
            digest_algorithm: digest_algorithm_name(checked.hash).to_string(),
            digest: hex::encode(&checked.digest),
            format: checked.format.name().to_string(),
            requester: requester.to_string(),
            approvers,
            metadata: merged_metadata(checked.metadata.as_deref(), extra),
            created_at: at,
        };
        let id = self.store.insert_signature(&record, actor)?;
        Ok(SignedDigest {
            id,
            format: checked.format,
            signature,
            certificate: cert.der().to_vec(),
            chain,
            timestamp_token,
        })
    }

    /// What `GET /api/v1/keys/{label}` and `hallmark --output json key show` say of a key: its
    /// publisher and algorithm, certificate (PEM) and the CA certificates above it, notAfter,
    /// and its policy with where the policy comes from.
    pub fn key_document(&self, key: &KeyRecord) -> Result<serde_json::Value> {
        let pem = |der: &[u8]| crate::pemfmt::encode("CERTIFICATE", der.to_vec());
        let (certificate, chain, not_after) = match &key.cert_der {
            Some(_) => {
                let (cert, chain) = self.key_certificate_chain(key)?;
                let not_after = X509Certificate::from_der(&cert)
                    .ok()
                    .map(|(_, c)| crate::store::rfc3339(c.validity().not_after.timestamp()));
                (
                    Some(pem(&cert)),
                    chain.iter().map(|c| pem(c)).collect::<Vec<_>>(),
                    not_after,
                )
            }
            None => (None, Vec::new(), None),
        };
        let p = self.key_policy(&key.label)?;
        Ok(serde_json::json!({
            "label": key.label,
            "publisher": key.publisher,
            "algorithm": key.algorithm,
            "certificate": certificate,
            "chain": chain,
            "not_after": not_after,
            "policy": {
                "formats": p.formats,
                "digests": p.digests,
                "signers": p.signers,
                "approvals": p.approvals,
                "approvers": p.approvers,
                "rate_per_minute": p.rate_per_minute,
                "source": self.key_policy_source(&key.label)?,
            },
        }))
    }

    /// A key's certificate and the CA certificates above it (root excluded), without the
    /// validity checks: for showing what an earlier signature was made with.
    pub fn key_certificate_chain(&self, key: &KeyRecord) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
        let der = key
            .cert_der
            .clone()
            .ok_or_else(|| Error::NotFound(format!("the certificate of key '{}'", key.label)))?;
        let (_, cert) = X509Certificate::from_der(&der).map_err(|e| {
            Error::Corrupt(format!("the stored key certificate does not parse: {e}"))
        })?;
        let chain = match self
            .store
            .certificate_standing(&hex::encode(cert.raw_serial()))?
        {
            Some(s) => self.chain(&s.ca)?,
            None => Vec::new(),
        };
        Ok((der, chain))
    }

    fn expire_signature_request_if_due(
        &self,
        mut r: SignatureRequestRecord,
    ) -> Result<SignatureRequestRecord> {
        if r.status == SignatureRequestStatus::Pending && r.expires_at <= now() {
            self.store.finish_signature_request(
                r.id,
                SignatureRequestStatus::Pending,
                SignatureRequestStatus::Expired,
                None,
                "hallmark",
            )?;
            if let Some(fresh) = self.store.get_signature_request(r.id)? {
                r = fresh;
            }
        }
        Ok(r)
    }

    /// A signature request, if the caller may see it (another publisher's is "not found").
    pub fn signature_request_view(
        &self,
        id: i64,
        cred: &Credential,
    ) -> Result<SignatureRequestView> {
        let request = self
            .store
            .get_signature_request(id)?
            .ok_or_else(|| Error::NotFound(format!("signature request {id}")))?;
        cred.may_act_for(&request.publisher)
            .map_err(|_| Error::NotFound(format!("signature request {id}")))?;
        let request = self.expire_signature_request_if_due(request)?;
        Ok(SignatureRequestView {
            approvals: self.store.signature_approvals(id)?,
            request,
        })
    }

    /// What `GET /api/v1/signatures/{id}` names. A signature request that waits for approvals
    /// shares its id with the signature it ends in: until it is signed the id shows the request
    /// (pending, denied, expired, failed), afterwards the record with the request beside it.
    /// Any other id is a recorded signature. A request from before ids were shared whose number
    /// a signature also has is reachable only as `/api/v1/signatures/requests/{id}`.
    pub fn signature_by_id(&self, id: i64, cred: &Credential) -> Result<SignatureById> {
        if let Some(request) = self.store.get_signature_request(id)? {
            match request.signature_id {
                Some(signature) if signature == id => {
                    return Ok(SignatureById::Record(
                        self.signature_record(id, cred)?,
                        Some(self.signature_request_view(id, cred)?),
                    ));
                }
                None if self.store.get_signature(id)?.is_none() => {
                    return Ok(SignatureById::Request(
                        self.signature_request_view(id, cred)?,
                    ));
                }
                _ => {}
            }
        }
        Ok(SignatureById::Record(
            self.signature_record(id, cred)?,
            None,
        ))
    }

    /// The id under which `GET /api/v1/signatures/{id}` shows signature request `r`: the
    /// signature's once signed, else its own when no signature holds that number.
    pub fn signature_request_public_id(&self, r: &SignatureRequestRecord) -> Result<Option<i64>> {
        Ok(match r.signature_id {
            Some(id) => Some(id),
            None => self.store.get_signature(r.id)?.is_none().then_some(r.id),
        })
    }

    /// A recorded signature, if the caller may see it.
    pub fn signature_record(&self, id: i64, cred: &Credential) -> Result<SignatureRecord> {
        let rec = self
            .store
            .get_signature(id)?
            .ok_or_else(|| Error::NotFound(format!("signature {id}")))?;
        let key = self.key(&rec.key_label)?;
        cred.may_act_for(&key.publisher)
            .map_err(|_| Error::NotFound(format!("signature {id}")))?;
        Ok(rec)
    }

    /// Approves or denies a pending signature request. The approval that completes the quorum
    /// signs the stored digest (policy and key certificate checked again) in this call.
    /// Cancels a pending signature request: its requester, or an officer. Nothing is signed
    /// for it afterwards.
    pub fn cancel_signature_request(
        &self,
        id: i64,
        cred: &Credential,
    ) -> Result<SignatureRequestView> {
        let view = self.signature_request_view(id, cred)?;
        let request = view.request;
        if !cred.officer && cred.name != request.requester {
            return Err(AuthError::Forbidden(format!(
                "only the requester ('{}') or an officer cancels signature request {id}",
                request.requester
            ))
            .into());
        }
        if request.status != SignatureRequestStatus::Pending {
            return Err(Error::Conflict(format!(
                "signature request {id} is {}; only a pending request can be cancelled",
                request.status
            )));
        }
        if !self.store.finish_signature_request(
            id,
            SignatureRequestStatus::Pending,
            SignatureRequestStatus::Cancelled,
            None,
            &cred.actor(),
        )? {
            return Err(Error::Conflict(format!(
                "signature request {id} was decided meanwhile; it is no longer pending"
            )));
        }
        self.signature_request_view(id, cred)
    }

    pub fn decide_signature(
        &self,
        id: i64,
        cred: &Credential,
        approve: bool,
        comment: Option<&str>,
    ) -> Result<(SignatureRequestView, Option<SignedDigest>)> {
        cred.require(Scope::Approve)?;
        let view = self.signature_request_view(id, cred)?;
        let request = view.request;
        if request.status != SignatureRequestStatus::Pending {
            return Err(Error::Conflict(format!(
                "signature request {id} is {}; it can no longer be decided",
                request.status
            )));
        }
        if cred.name == request.requester {
            return Err(AuthError::Forbidden(
                "the requester never approves its own signature request".into(),
            )
            .into());
        }
        let policy = self.key_policy(&request.key_label)?;
        if !policy.approvers.iter().any(|a| a == &cred.name) {
            return Err(AuthError::Forbidden(format!(
                "'{}' is not an approver of key '{}' (approvers: {})",
                cred.name,
                request.key_label,
                if policy.approvers.is_empty() {
                    "none".to_string()
                } else {
                    policy.approvers.join(", ")
                }
            ))
            .into());
        }
        let decision = match self.store.record_signature_decision(
            id,
            &cred.name,
            approve,
            comment,
            &cred.actor(),
        ) {
            Ok(d) => d,
            Err(StoreError::Conflict(_)) => {
                return Err(Error::Conflict(format!(
                    "'{}' has already decided on signature request {id}, or it is decided",
                    cred.name
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let mut signed = None;
        if decision.claimed {
            let result = self.sign_approved(&request, &policy);
            signed = Some(self.finish_claimed(id, result, &cred.actor(), "policy")?);
        }
        Ok((self.signature_request_view(id, cred)?, signed))
    }

    /// Ends a claimed (`signing`) request with the outcome of its signature: `signed` with the
    /// signature (and any time-stamp token), or `failed` (a key store, database or time-stamp
    /// authority problem: the server's failure) / `denied` (the request no longer passes the
    /// key's policy). The signing error is returned after the request is ended.
    fn finish_claimed(
        &self,
        id: i64,
        result: Result<SignedDigest>,
        signed_by: &str,
        ended_by: &str,
    ) -> Result<SignedDigest> {
        match result {
            Ok(s) => {
                self.store.finish_signature_request(
                    id,
                    SignatureRequestStatus::Signing,
                    SignatureRequestStatus::Signed,
                    Some(SignedRequest {
                        signature_id: s.id,
                        signature: &s.signature,
                        timestamp_token: s.timestamp_token.as_deref(),
                    }),
                    signed_by,
                )?;
                Ok(s)
            }
            Err(e) => {
                let status = if matches!(
                    e,
                    Error::Key(_) | Error::Store(_) | Error::Issue(_) | Error::Conflict(_)
                ) {
                    SignatureRequestStatus::Failed
                } else {
                    SignatureRequestStatus::Denied
                };
                self.store.finish_signature_request(
                    id,
                    SignatureRequestStatus::Signing,
                    status,
                    None,
                    ended_by,
                )?;
                Err(e)
            }
        }
    }

    /// Finishes the signature requests a crash left claimed (`signing`: the quorum was reached,
    /// the server stopped before the request was finished). Nobody else could complete them —
    /// their approvers have all decided — so at server start each is signed now, or ends
    /// `failed`/`denied` as the approval path would end it. If the crash came after the
    /// signature was recorded, the digest is signed (and recorded) a second time: the approved
    /// digest, never another. Returns how many were finished.
    pub fn recover_signature_requests(&self) -> Result<usize> {
        let ids = self
            .store
            .signature_request_ids(SignatureRequestStatus::Signing)?;
        for &id in &ids {
            let Some(request) = self.store.get_signature_request(id)? else {
                continue;
            };
            let result = self
                .key_policy(&request.key_label)
                .and_then(|policy| self.sign_approved(&request, &policy));
            if let Err(e) = self.finish_claimed(id, result, "recovery", "recovery") {
                tracing::warn!("signature request {id} left claimed by a stop: {e}");
            }
        }
        Ok(ids.len())
    }

    /// Signs an approved request's stored digest after checking it again against the key's
    /// current policy (it may have changed while the request waited).
    fn sign_approved(
        &self,
        request: &SignatureRequestRecord,
        policy: &KeyPolicy,
    ) -> Result<SignedDigest> {
        let (metadata, extra) = split_metadata(request.metadata.as_deref());
        let text = |k: &str| extra.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let checked = check_request(&SignRequest {
            key: request.key_label.clone(),
            digest: request.digest.clone(),
            digest_algorithm: request.digest_algorithm.clone(),
            format: request.format.clone(),
            metadata,
            timestamp: extra
                .get("timestamp")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            content_type: text("content_type"),
            content: text("content"),
        })?;
        let key = self.key(&request.key_label)?;
        policy.check(
            &key.label,
            checked.format.name(),
            digest_algorithm_name(checked.hash),
            &request.requester,
        )?;
        let approvers = self
            .store
            .signature_approvals(request.id)?
            .into_iter()
            .filter(|a| a.decision == "approve")
            .map(|a| a.approver)
            .collect::<Vec<_>>()
            .join(",");
        self.sign_checked(
            &key,
            &checked,
            &request.requester,
            &format!("signature-request:{}", request.id),
            Some(approvers),
            None,
            // The signature takes the request's id (reserved from the same sequence).
            request.id,
        )
    }

    /// Lists signatures, newest first, below id `before` when given: a publisher's credential
    /// sees its own keys' only, officers all.
    pub fn list_signatures(
        &self,
        key: Option<&str>,
        cred: &Credential,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<SignatureRecord>> {
        if cred.officer {
            return Ok(self.store.list_signatures(key, None, before, limit)?);
        }
        let publisher = cred.publisher.as_deref().ok_or_else(|| {
            Error::from(crate::policy::auth::AuthError::Forbidden(
                "this token acts for no publisher".into(),
            ))
        })?;
        if let Some(k) = key {
            self.key_for(k, cred)?;
        }
        Ok(self
            .store
            .list_signatures(key, Some(publisher), before, limit)?)
    }
}

/// Detached CMS SignedData (RFC 5652) in DER, over a digest computed elsewhere.
use crate::issuer::cms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_algorithms() {
        assert_eq!(parse_digest_algorithm("SHA-256").unwrap(), HashAlg::Sha256);
        assert!(parse_digest_algorithm("sha1")
            .unwrap_err()
            .to_string()
            .contains("SHA-1"));
        assert!(parse_digest_algorithm("md5").is_err());
    }

    #[test]
    fn requests_are_checked() {
        let req = |d: &str, a: &str, f: &str, m: Option<serde_json::Value>| SignRequest {
            key: "k".into(),
            digest: d.into(),
            digest_algorithm: a.into(),
            format: f.into(),
            metadata: m,
            ..Default::default()
        };
        let d32 = "ab".repeat(32);
        assert!(check_request(&req(&d32, "sha256", "raw", None)).is_ok());
        assert!(check_request(&req(&d32, "sha384", "raw", None)).is_err());
        assert!(check_request(&req("zz", "sha256", "raw", None)).is_err());
        assert!(check_request(&req(&d32, "sha256", "pgp", None)).is_err());
        assert!(check_request(&req(&d32, "sha256", "cms", Some(serde_json::json!([1])))).is_err());
        let big = serde_json::json!({"x": "y".repeat(MAX_METADATA_BYTES)});
        assert!(check_request(&req(&d32, "sha256", "cms", Some(big))).is_err());
    }

    #[test]
    fn fresh_signatures_are_checked() {
        use crate::keys::Signer;
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let p8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
            &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            &rng,
        )
        .unwrap();
        let key = crate::keys::soft::SoftKey::ephemeral("t", p8.as_ref()).unwrap();
        let digest = HashAlg::Sha256.digest(b"artifact");
        let sig = key
            .sign_digest(SignatureScheme::EcdsaSha256, &digest)
            .unwrap();
        check_signature(SignatureScheme::EcdsaSha256, key.spki_der(), &digest, &sig).unwrap();
        let other = HashAlg::Sha256.digest(b"other");
        let e = check_signature(SignatureScheme::EcdsaSha256, key.spki_der(), &other, &sig);
        assert!(e.unwrap_err().to_string().contains("does not verify"));
    }

    #[test]
    fn content_is_checked_against_the_digest() {
        use base64::Engine as _;
        let content = crate::formats::authenticode::spc_indirect_data(HashAlg::Sha256, &[7u8; 32]);
        let inner = read_tlv(&content).unwrap().contents.to_vec();
        let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
        let req = |digest: Vec<u8>, ct: &str, c: String, f: &str| SignRequest {
            key: "k".into(),
            digest: hex::encode(digest),
            digest_algorithm: "sha256".into(),
            format: f.into(),
            content_type: Some(ct.into()),
            content: Some(c),
            ..Default::default()
        };
        let good = HashAlg::Sha256.digest(&inner);
        let c = check_request(&req(good.clone(), SPC_INDIRECT_DATA, b64(&content), "cms")).unwrap();
        assert_eq!(c.content.unwrap().der, content);
        let whole = HashAlg::Sha256.digest(&content);
        let e = check_request(&req(whole, SPC_INDIRECT_DATA, b64(&content), "cms"));
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("content digest mismatch"));
        let e = check_request(&req(good.clone(), "1.2.3", b64(&content), "cms"));
        assert!(e.unwrap_err().to_string().contains("not offered"));
        let e = check_request(&req(good.clone(), SPC_INDIRECT_DATA, b64(&content), "raw"));
        assert!(e.unwrap_err().to_string().contains("CMS only"));
        let big = vec![0u8; MAX_CONTENT_BYTES + 1];
        let e = check_request(&req(good, SPC_INDIRECT_DATA, b64(&big), "cms"));
        assert!(e.unwrap_err().to_string().contains("larger than"));
        // Shapes that are not an SpcIndirectDataContent, and a SHA-1 file hash.
        let not_spc = [0x30, 0x05, 0x06, 0x03, 0x2b, 0x06, 0x01];
        let e = check_request(&req(
            HashAlg::Sha256.digest(&not_spc[2..]),
            SPC_INDIRECT_DATA,
            b64(&not_spc),
            "cms",
        ));
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("not an SpcIndirectDataContent"));
        let spc_data = read_tlv(read_tlv(&content).unwrap().contents)
            .unwrap()
            .whole
            .to_vec();
        let di = crate::der::tlv(
            0x30,
            &[
                crate::der::tlv(
                    0x30,
                    &[
                        crate::issuer::extensions::oid("1.3.14.3.2.26"),
                        vec![0x05, 0x00],
                    ]
                    .concat(),
                ),
                crate::der::tlv(0x04, &[1u8; 20]),
            ]
            .concat(),
        );
        let weak_inner = [spc_data, di].concat();
        let weak = crate::der::tlv(0x30, &weak_inner);
        let e = check_request(&req(
            HashAlg::Sha256.digest(&weak_inner),
            SPC_INDIRECT_DATA,
            b64(&weak),
            "cms",
        ));
        assert!(e.unwrap_err().to_string().contains("SHA-1"));
    }

    #[test]
    fn hallmark_metadata_round_trips() {
        let mut extra = serde_json::Map::new();
        extra.insert("timestamp".into(), true.into());
        let m = merged_metadata(Some(r#"{"commit":"abc"}"#), extra.clone()).unwrap();
        let (client, back) = split_metadata(Some(&m));
        assert_eq!(client, Some(serde_json::json!({"commit": "abc"})));
        assert_eq!(back, extra);
        let m = merged_metadata(None, extra.clone()).unwrap();
        assert_eq!(split_metadata(Some(&m)), (None, extra));
        assert_eq!(merged_metadata(None, serde_json::Map::new()), None);
    }

    #[test]
    fn signed_attributes_are_sorted_der() {
        let a = cms::signed_attributes(&[7u8; 32], 1_800_000_000);
        let t = read_tlv(&a).unwrap();
        assert_eq!((t.tag, t.rest.len()), (0x31, 0));
        let mut items = Vec::new();
        let mut rest = t.contents;
        while !rest.is_empty() {
            let x = read_tlv(rest).unwrap();
            items.push(x.whole.to_vec());
            rest = x.rest;
        }
        assert_eq!(items.len(), 3);
        let mut sorted = items.clone();
        sorted.sort();
        assert_eq!(items, sorted);
        // 2027-01-15T08:00:00Z as UTCTime.
        assert!(a.windows(13).any(|w| w == b"270115080000Z"));
    }
}
