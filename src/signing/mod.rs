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
//! message-digest, laid out in DER by [`crate::issuer::cms`]; `cose_sign1` is the signature in COSE's form over
//! the hash of a Sig_structure the client built (ECDSA `r || s`, RSA-PSS; see
//! [`crate::formats::cose`]).
//!
//! This file holds the request types and the path of one signature (admit, sign, record);
//! `check` what a request must be, `keys` the key certificates and policies, `approvals` the
//! requests that wait for approvals.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::clock::SharedClock;
use crate::config::{Config, IdentitySection};
use crate::der::read_tlv;
use crate::error::{Error, Result};
use crate::keyring::Keyring;
use crate::keys::{HashAlg, KeyAlgorithm, SignatureScheme};
use crate::policy::auth::{AuthError, Credential, Scope};
use crate::policy::signing::KeyPolicy;
use crate::policy::PolicyError;
use crate::store::{
    ApprovalRecord, KeyRecord, SignatureRecord, SignatureRequestRecord, SignatureRequestStatus,
    SignedRequest, StoreError,
};
use crate::tsa::TsaService;

/// Largest accepted metadata object, serialized.
pub const MAX_METADATA_BYTES: usize = 4096;

/// Largest accepted signed content (`content`, decoded), in bytes.
pub const MAX_CONTENT_BYTES: usize = 16 * 1024;

/// The metadata key hallmark keeps its own facts under (timestamp, content type); a client may
/// not send it.
pub const RESERVED_METADATA_KEY: &str = "_hallmark";

/// SpcIndirectDataContent (Authenticode), the one content type offered for embedded content.
pub use crate::issuer::cms::SPC_INDIRECT_DATA;

mod approvals;
mod check;
pub(crate) mod error;
mod image;
mod keys;
mod openpgp;
pub use image::{COSIGN_TYPE, SIMPLE_SIGNING_TYPE};
pub use openpgp::OpenPgpKey;

use crate::issuer::cms;
pub use check::check_signature;
use check::*;
pub use error::SigningError;
pub(crate) use keys::KeyCertFacts;
use keys::*;

pub use crate::formats::names::{
    digest_algorithm_name, parse_digest_algorithm, NameError, SignatureFormat,
};

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
    /// Format `image`, simple signing: hex of the OpenPGP signature's hashed part and trailer
    /// (the digest is the hash of the payload and these bytes).
    pub openpgp_trailer: Option<String>,
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

/// What one id of `GET /api/v1/signatures/{id}` names (see [`Signing::signature_by_id`]).
#[derive(Debug, Clone)]
pub enum SignatureById {
    /// A recorded signature, with the request it ended when it waited for approvals.
    Record(SignatureRecord, Option<Box<SignatureRequestView>>),
    /// A signature request not signed (yet): pending, denied, expired or failed.
    Request(SignatureRequestView),
}

/// The signing service: what it uses and nothing else — the store, the keyring (publisher keys
/// and the CA chains above their certificates), the TSA, the clock, and its slice of the
/// configuration (key policies, workload rules, how long a request waits).
pub struct Signing {
    store: Arc<dyn crate::store::Store>,
    keyring: Arc<Keyring>,
    tsa: Arc<TsaService>,
    clock: SharedClock,
    /// `[signing.keys.<label>]`, as checked when the configuration was opened: these win over
    /// policies set with `hallmark key policy`.
    config_policies: HashMap<String, KeyPolicy>,
    /// `[identity]`: which workload rules may approve.
    identity: IdentitySection,
    /// `api.request_ttl_hours`: how long a signature request waits for approvals.
    request_ttl_hours: u32,
    /// The configuration file, named in messages about policies it sets.
    config_path: PathBuf,
    /// Per-key signing rate buckets (tokens left, last refill), kept in this process.
    sign_buckets: Mutex<HashMap<String, (f64, std::time::Instant)>>,
    /// What every signature checks of a publisher key's certificate (validity, serial, key),
    /// parsed once per certificate rather than once per signature.
    key_cert_facts: Mutex<HashMap<String, Arc<KeyCertFacts>>>,
}

impl Signing {
    pub fn new(
        store: Arc<dyn crate::store::Store>,
        keyring: Arc<Keyring>,
        tsa: Arc<TsaService>,
        clock: SharedClock,
        config: &Config,
        config_policies: HashMap<String, KeyPolicy>,
    ) -> Signing {
        Signing {
            store,
            keyring,
            tsa,
            clock,
            config_policies,
            identity: config.identity.clone(),
            request_ttl_hours: config.api.request_ttl_hours,
            config_path: config.path.clone(),
            sign_buckets: Mutex::new(HashMap::new()),
            key_cert_facts: Mutex::new(HashMap::new()),
        }
    }

    /// The key policies the configuration sets, by label (`hallmark doctor` lists them).
    pub fn config_policies(&self) -> &HashMap<String, KeyPolicy> {
        &self.config_policies
    }
}

impl Signing {
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
        let key = self.keyring.key_for(&req.key, cred)?;
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
        if checked.format == SignatureFormat::OpenPgp {
            self.openpgp_key(&key)?;
        }
        // A simple-signing image signature is an OpenPGP one; cosign takes every key type.
        if checked
            .image
            .as_ref()
            .is_some_and(|i| matches!(i.kind, image::ImageKind::Simple { .. }))
        {
            self.openpgp_key(&key)?;
        }
        if let Some(rate) = policy.rate_per_minute {
            self.take_sign_rate(&key.label, rate)?;
        }
        Ok((key, checked, policy, cert))
    }

    /// Signs a client's digest with a publisher key, records it, and returns it. A key whose
    /// policy needs approvals is refused here: use [`Signing::submit_signature`].
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
        let approvals = self.approvals_needed(&key.label, &policy, cred)?;
        if approvals == 0 {
            return Ok(SignSubmitted::Signed(self.sign_checked(
                &key,
                &checked,
                &cred.name,
                &cred.actor(),
                None,
                Some(cert),
                0,
                cred.identity_json(),
            )?));
        }
        if !allow_pending {
            return Err(PolicyError::ApprovalRequired(format!(
                "key '{}' signs only with {approvals} approvals",
                key.label
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
            approvals_required: i64::from(approvals),
            created_at: 0,
            expires_at: self.clock.now() + i64::from(self.request_ttl_hours) * 3600,
            decided_at: None,
            signature_id: None,
            signature: None,
            timestamp_token: None,
            identity: cred.identity_json(),
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
        self.tsa.stamp_digest(HashAlg::Sha256, &imprint)
    }

    /// Refuses a time-stamp request early when no TSA is set up (nothing is signed then).
    fn require_tsa(&self) -> Result<()> {
        if !self.tsa.configured() {
            return Err(Error::Conflict(
                "a time-stamp was asked for but this server has no time-stamp authority \
                 (run `hallmark tsa init`); nothing was signed"
                    .into(),
            ));
        }
        self.tsa.tsa()?;
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
        identity: Option<String>,
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
        // Image signatures of either kind take every key type, as OpenPGP does: an Ed25519
        // key signs a message (below), the others the digest.
        let scheme = match checked.format {
            SignatureFormat::OpenPgp | SignatureFormat::Image => openpgp_scheme(alg, checked.hash),
            _ => scheme_for(alg, checked.hash)?,
        };
        let signer = self.keyring.publisher_signer(key)?;
        if cert.spki() != signer.spki_der() {
            return Err(PolicyError::BadKey(format!(
                "the certificate of key '{}' is not for the key in the store",
                key.label
            ))
            .into());
        }
        let chain = match &cert.ca {
            Some(ca) => self.keyring.chain(ca)?,
            None => Vec::new(),
        };
        let at = self.clock.now();
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
            SignatureFormat::OpenPgp | SignatureFormat::Image => {
                // What Ed25519 signs as its message: OpenPGP's EdDSA the digest, cosign the
                // payload itself (sigstore's Ed25519 verifier checks the whole payload).
                let message = match &checked.image {
                    Some(i) if i.kind == image::ImageKind::Cosign => &i.payload,
                    _ => &checked.digest,
                };
                let (sig, signed) = match scheme {
                    SignatureScheme::Ed25519 => (signer.sign(scheme, message)?, message),
                    _ => (
                        signer.sign_digest(scheme, &checked.digest)?,
                        &checked.digest,
                    ),
                };
                check_signature(scheme, signer.spki_der(), signed, &sig)?;
                sig
            }
            SignatureFormat::CoseSign1 => {
                let (scheme, fixed) = cose_scheme(alg, checked.hash)?;
                let sig = signer.sign_digest(scheme, &checked.digest)?;
                check_signature(scheme, signer.spki_der(), &checked.digest, &sig)?;
                match fixed {
                    Some(n) => crate::formats::cose::ecdsa_der_to_fixed(&sig, n)
                        .map_err(|e| SigningError::Internal(e.to_string()))?,
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
        if let Some(i) = &checked.image {
            extra.insert("image".into(), i.manifest_digest.clone().into());
            extra.insert("reference".into(), i.reference.clone().into());
            extra.insert("signature".into(), i.kind_name().into());
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
            identity,
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
}

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
