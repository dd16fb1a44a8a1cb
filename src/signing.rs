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
//! message-digest, built here by hand in DER.

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::der::{read_tlv, tlv};
use crate::engine::{publisher_key_label, Hallmark};
use crate::error::{Error, Result};
use crate::keys::{HashAlg, KeyAlgorithm, SignatureScheme};
use crate::policy::auth::{AuthError, Credential, Scope};
use crate::policy::signing::KeyPolicy;
use crate::policy::PolicyError;
use crate::store::{
    now, ApprovalRecord, KeyRecord, SignatureRecord, SignatureRequestRecord, StoreError,
};

/// Largest accepted metadata object, serialized.
pub const MAX_METADATA_BYTES: usize = 4096;

/// What the signature comes as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFormat {
    /// The bare signature over the digest.
    Raw,
    /// A detached CMS SignedData (DER).
    Cms,
}

impl SignatureFormat {
    pub fn name(self) -> &'static str {
        match self {
            SignatureFormat::Raw => "raw",
            SignatureFormat::Cms => "cms",
        }
    }

    pub fn parse(s: &str) -> Result<SignatureFormat> {
        match s {
            "raw" => Ok(SignatureFormat::Raw),
            "cms" => Ok(SignatureFormat::Cms),
            other => Err(Error::Invalid(format!(
                "format '{other}' is not offered (raw, cms)"
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
#[derive(Debug, Clone)]
pub struct SignRequest {
    pub key: String,
    /// Hex, as the client sent it.
    pub digest: String,
    pub digest_algorithm: String,
    pub format: String,
    /// A JSON object describing the artifact (name, commit, pipeline, ...).
    pub metadata: Option<serde_json::Value>,
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

/// The checked parts of a request.
struct Checked {
    hash: HashAlg,
    digest: Vec<u8>,
    format: SignatureFormat,
    metadata: Option<String>,
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
    let metadata = match &req.metadata {
        None | Some(serde_json::Value::Null) => None,
        Some(v @ serde_json::Value::Object(_)) => {
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
    })
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

/// Verifies a fresh signature over `digest` with the key's public key before it is recorded or
/// returned: a faulty token or a key mix-up never hands out a signature that does not verify.
fn check_signature(
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

impl Hallmark {
    /// Checks that a key may sign now: it has a certificate, valid at this moment, not revoked.
    /// Returns the certificate (DER) and the name of the CA that issued it, if hallmark did.
    fn usable_key_certificate(&self, key: &KeyRecord) -> Result<(Vec<u8>, Option<String>)> {
        let refuse = |why: String| -> Error { PolicyError::BadKey(why).into() };
        let der = key.cert_der.clone().ok_or_else(|| {
            refuse(format!(
                "key '{}' has no certificate and signs nothing",
                key.label
            ))
        })?;
        let (_, cert) = X509Certificate::from_der(&der)
            .map_err(|e| Error::Invalid(format!("stored key certificate does not parse: {e}")))?;
        let t = now();
        let v = cert.validity();
        if t < v.not_before.timestamp() {
            return Err(refuse(format!(
                "the certificate of key '{}' is not valid before {}",
                key.label, v.not_before
            )));
        }
        if t > v.not_after.timestamp() {
            return Err(refuse(format!(
                "the certificate of key '{}' expired at {}",
                key.label, v.not_after
            )));
        }
        let serial = hex::encode(cert.raw_serial());
        let ca = match self.store.certificate_standing(&serial)? {
            Some(s) => {
                if let Some((reason, _)) = s.revoked {
                    let name = crate::revocation::RevocationReason::from_code(reason)
                        .map(|r| r.name().to_string())
                        .unwrap_or_else(|| format!("reason {reason}"));
                    return Err(refuse(format!(
                        "the certificate of key '{}' (serial {serial}) is revoked ({name})",
                        key.label
                    )));
                }
                Some(s.ca)
            }
            // A certificate from an external CA: its revocation is that CA's to publish.
            None => None,
        };
        Ok((der, ca))
    }

    /// The key's policy, or the default (today's rules) when none is set.
    pub fn key_policy(&self, label: &str) -> Result<KeyPolicy> {
        Ok(self
            .store
            .get_key_policy(label)?
            .map(|r| KeyPolicy::from_record(&r))
            .unwrap_or_default())
    }

    /// Sets a key's policy (replacing any earlier one).
    pub fn set_key_policy(&self, label: &str, policy: &KeyPolicy, actor: &str) -> Result<()> {
        self.key(label)?;
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
    ) -> Result<(KeyRecord, Checked, KeyPolicy)> {
        cred.require(Scope::Sign)?;
        let checked = check_request(req)?;
        let key = self.key(&req.key)?;
        cred.may_act_for(&key.publisher)?;
        let policy = self.key_policy(&key.label)?;
        policy.check(
            &key.label,
            checked.format.name(),
            digest_algorithm_name(checked.hash),
            &cred.name,
        )?;
        self.usable_key_certificate(&key)?;
        if let Some(rate) = policy.rate_per_minute {
            self.take_sign_rate(&key.label, rate)?;
        }
        Ok((key, checked, policy))
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
        let (key, checked, policy) = self.admit(req, cred)?;
        if policy.approvals == 0 {
            return Ok(SignSubmitted::Signed(self.sign_checked(
                &key,
                &checked,
                &cred.name,
                &cred.actor(),
                None,
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
            metadata: checked.metadata.clone(),
            status: "pending".into(),
            approvals_required: i64::from(policy.approvals),
            created_at: 0,
            expires_at: now() + i64::from(self.config.api.request_ttl_hours) * 3600,
            decided_at: None,
            signature_id: None,
            signature: None,
        };
        let id = self.store.insert_signature_request(&rec, &cred.actor())?;
        let stored = self
            .store
            .get_signature_request(id)?
            .ok_or_else(|| Error::NotFound(format!("signature request {id}")))?;
        Ok(SignSubmitted::Pending(stored))
    }

    /// Signs checked parts with a key (its certificate checked again), records the signature,
    /// and returns it.
    fn sign_checked(
        &self,
        key: &KeyRecord,
        checked: &Checked,
        requester: &str,
        actor: &str,
        approvers: Option<String>,
    ) -> Result<SignedDigest> {
        let (cert_der, ca) = self.usable_key_certificate(key)?;
        let alg: KeyAlgorithm = key
            .algorithm
            .parse()
            .map_err(|e: String| Error::Invalid(format!("stored key algorithm: {e}")))?;
        let scheme = scheme_for(alg, checked.hash)?;
        let signer = self
            .key_store(&key.key_store)?
            .open(&publisher_key_label(&key.label))?;
        {
            let (_, cert) = X509Certificate::from_der(&cert_der)
                .map_err(|e| Error::Invalid(format!("key certificate: {e}")))?;
            if cert.public_key().raw != signer.spki_der() {
                return Err(PolicyError::BadKey(format!(
                    "the certificate of key '{}' is not for the key in the store",
                    key.label
                ))
                .into());
            }
        }
        let chain = match &ca {
            Some(ca) => self.chain(ca)?,
            None => Vec::new(),
        };
        let at = now();
        let signature = match checked.format {
            SignatureFormat::Raw => {
                let sig = signer.sign_digest(scheme, &checked.digest)?;
                check_signature(scheme, signer.spki_der(), &checked.digest, &sig)?;
                sig
            }
            SignatureFormat::Cms => {
                let attrs = cms::signed_attributes(&checked.digest, at);
                let attrs_digest = checked.hash.digest(&attrs);
                let sig = signer.sign_digest(scheme, &attrs_digest)?;
                check_signature(scheme, signer.spki_der(), &attrs_digest, &sig)?;
                cms::signed_data(&cms::Parts {
                    hash: checked.hash,
                    scheme,
                    signed_attrs: &attrs,
                    signature: &sig,
                    signer_cert: &cert_der,
                    chain: &chain,
                })?
            }
        };
        let record = SignatureRecord {
            id: 0,
            key_label: key.label.clone(),
            digest_algorithm: digest_algorithm_name(checked.hash).to_string(),
            digest: hex::encode(&checked.digest),
            format: checked.format.name().to_string(),
            requester: requester.to_string(),
            approvers,
            metadata: checked.metadata.clone(),
            created_at: at,
        };
        let id = self.store.insert_signature(&record, actor)?;
        Ok(SignedDigest {
            id,
            format: checked.format,
            signature,
            certificate: cert_der,
            chain,
        })
    }

    /// A key's certificate and the CA certificates above it (root excluded), without the
    /// validity checks: for showing what an earlier signature was made with.
    pub fn key_certificate_chain(&self, key: &KeyRecord) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
        let der = key
            .cert_der
            .clone()
            .ok_or_else(|| Error::NotFound(format!("the certificate of key '{}'", key.label)))?;
        let (_, cert) = X509Certificate::from_der(&der)
            .map_err(|e| Error::Invalid(format!("stored key certificate does not parse: {e}")))?;
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
        if r.status == "pending" && r.expires_at <= now() {
            self.store
                .finish_signature_request(r.id, "pending", "expired", None, "hallmark")?;
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
        if request.status != "pending" {
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
            match self.sign_approved(&request, &policy) {
                Ok(s) => {
                    self.store.finish_signature_request(
                        id,
                        "signing",
                        "signed",
                        Some((s.id, &s.signature)),
                        &cred.actor(),
                    )?;
                    signed = Some(s);
                }
                Err(e) => {
                    let status = if matches!(e, Error::Key(_) | Error::Store(_)) {
                        "failed"
                    } else {
                        "denied"
                    };
                    self.store
                        .finish_signature_request(id, "signing", status, None, "policy")?;
                    return Err(e);
                }
            }
        }
        Ok((self.signature_request_view(id, cred)?, signed))
    }

    /// Signs an approved request's stored digest after checking it again against the key's
    /// current policy (it may have changed while the request waited).
    fn sign_approved(
        &self,
        request: &SignatureRequestRecord,
        policy: &KeyPolicy,
    ) -> Result<SignedDigest> {
        let checked = check_request(&SignRequest {
            key: request.key_label.clone(),
            digest: request.digest.clone(),
            digest_algorithm: request.digest_algorithm.clone(),
            format: request.format.clone(),
            metadata: request
                .metadata
                .as_deref()
                .and_then(|m| serde_json::from_str(m).ok()),
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
        )
    }

    /// Lists signatures: a publisher's credential sees its own keys' only, officers all.
    pub fn list_signatures(
        &self,
        key: Option<&str>,
        cred: &Credential,
        limit: usize,
    ) -> Result<Vec<SignatureRecord>> {
        if cred.officer {
            return Ok(self.store.list_signatures(key, None, limit)?);
        }
        let publisher = cred.publisher.as_deref().ok_or_else(|| {
            Error::from(crate::policy::auth::AuthError::Forbidden(
                "this token acts for no publisher".into(),
            ))
        })?;
        if let Some(k) = key {
            let rec = self.key(k)?;
            cred.may_act_for(&rec.publisher)?;
        }
        Ok(self.store.list_signatures(key, Some(publisher), limit)?)
    }
}

/// Detached CMS SignedData (RFC 5652) in DER, over a digest computed elsewhere.
pub mod cms {
    use super::*;

    const OID_SIGNED_DATA: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
    ];
    const OID_DATA: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01,
    ];
    const OID_CONTENT_TYPE: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03,
    ];
    const OID_MESSAGE_DIGEST: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04,
    ];
    const OID_SIGNING_TIME: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05,
    ];

    fn seq(parts: &[&[u8]]) -> Vec<u8> {
        tlv(0x30, &parts.concat())
    }

    /// A DER SET OF: elements sorted by their encodings (X.690 §11.6).
    fn set_of(tag: u8, mut items: Vec<Vec<u8>>) -> Vec<u8> {
        items.sort();
        tlv(tag, &items.concat())
    }

    fn attribute(oid: &[u8], value: &[u8]) -> Vec<u8> {
        seq(&[oid, &tlv(0x31, value)])
    }

    /// The digest AlgorithmIdentifier (parameters absent, RFC 5754 §2).
    fn digest_algorithm(h: HashAlg) -> Vec<u8> {
        let last = match h {
            HashAlg::Sha256 => 0x01,
            HashAlg::Sha384 => 0x02,
            HashAlg::Sha512 => 0x03,
        };
        seq(&[&[
            0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, last,
        ]])
    }

    /// The signature AlgorithmIdentifier of a scheme as CMS names it.
    fn signature_algorithm(s: SignatureScheme) -> Result<Vec<u8>> {
        use SignatureScheme as S;
        let ecdsa =
            |last: u8| seq(&[&[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, last]]);
        let rsa = |last: u8| {
            seq(&[
                &[
                    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, last,
                ],
                &[0x05, 0x00],
            ])
        };
        Ok(match s {
            S::EcdsaSha256 => ecdsa(0x02),
            S::EcdsaSha384 => ecdsa(0x03),
            S::EcdsaSha512 => ecdsa(0x04),
            S::RsaPkcs1Sha256 => rsa(0x0b),
            S::RsaPkcs1Sha384 => rsa(0x0c),
            S::RsaPkcs1Sha512 => rsa(0x0d),
            other => {
                return Err(Error::Invalid(format!(
                    "{other:?} is not offered for CMS here"
                )))
            }
        })
    }

    /// signingTime: UTCTime through 2049, GeneralizedTime after (RFC 5652 §11.3).
    fn signing_time(at: i64) -> Vec<u8> {
        let t = time::OffsetDateTime::from_unix_timestamp(at)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let rest = format!(
            "{:02}{:02}{:02}{:02}{:02}Z",
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        if (1950..2050).contains(&t.year()) {
            tlv(0x17, format!("{:02}{rest}", t.year() % 100).as_bytes())
        } else {
            tlv(0x18, format!("{:04}{rest}", t.year()).as_bytes())
        }
    }

    /// The DER of the signed attributes as they are signed (a SET, tag 0x31): content-type
    /// id-data, signing-time `at`, message-digest `digest`.
    pub fn signed_attributes(digest: &[u8], at: i64) -> Vec<u8> {
        set_of(
            0x31,
            vec![
                attribute(OID_CONTENT_TYPE, OID_DATA),
                attribute(OID_SIGNING_TIME, &signing_time(at)),
                attribute(OID_MESSAGE_DIGEST, &tlv(0x04, digest)),
            ],
        )
    }

    /// The pieces of a SignedData.
    pub struct Parts<'a> {
        pub hash: HashAlg,
        pub scheme: SignatureScheme,
        /// From [`signed_attributes`] (tag 0x31).
        pub signed_attrs: &'a [u8],
        /// Over `signed_attrs`.
        pub signature: &'a [u8],
        pub signer_cert: &'a [u8],
        pub chain: &'a [Vec<u8>],
    }

    /// Issuer and serial number (both TLVs, byte for byte) of a DER certificate.
    fn issuer_and_serial(cert: &[u8]) -> Result<Vec<u8>> {
        let bad = |e: crate::der::DerError| Error::Invalid(format!("signer certificate: {e}"));
        let outer = read_tlv(cert).map_err(bad)?;
        let tbs = read_tlv(outer.contents).map_err(bad)?;
        let mut next = read_tlv(tbs.contents).map_err(bad)?;
        if next.tag == 0xa0 {
            next = read_tlv(next.rest).map_err(bad)?;
        }
        let serial = next;
        let sig_alg = read_tlv(serial.rest).map_err(bad)?;
        let issuer = read_tlv(sig_alg.rest).map_err(bad)?;
        if serial.tag != 0x02 || issuer.tag != 0x30 {
            return Err(Error::Invalid(
                "signer certificate: unexpected TBSCertificate layout".into(),
            ));
        }
        Ok(seq(&[issuer.whole, serial.whole]))
    }

    /// A DER ContentInfo holding a detached SignedData with one signer.
    pub fn signed_data(p: &Parts<'_>) -> Result<Vec<u8>> {
        let version = [0x02, 0x01, 0x01];
        let digest_alg = digest_algorithm(p.hash);
        // Signed attributes go into SignerInfo as [0] IMPLICIT.
        let mut attrs = p.signed_attrs.to_vec();
        if attrs.first() != Some(&0x31) {
            return Err(Error::Invalid("signed attributes must be a SET".into()));
        }
        attrs[0] = 0xa0;
        let signer_info = seq(&[
            &version,
            &issuer_and_serial(p.signer_cert)?,
            &digest_alg,
            &attrs,
            &signature_algorithm(p.scheme)?,
            &tlv(0x04, p.signature),
        ]);
        let mut certs = vec![p.signer_cert.to_vec()];
        certs.extend(p.chain.iter().cloned());
        let signed_data = seq(&[
            &version,
            &tlv(0x31, &digest_alg),
            &seq(&[OID_DATA]),
            &set_of(0xa0, certs),
            &tlv(0x31, &signer_info),
        ]);
        Ok(seq(&[OID_SIGNED_DATA, &tlv(0xa0, &signed_data)]))
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
