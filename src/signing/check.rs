//! What a signature request must be before anything is signed: digest and algorithm, format,
//! embedded content (Authenticode's SpcIndirectDataContent checked against the digest),
//! metadata, the scheme a key signs with, and the fresh signature verified before it leaves.

use super::*;

/// Embedded content of a CMS signature.
#[derive(Debug, Clone)]
pub(super) struct Content {
    /// Dotted OID.
    pub(super) content_type: String,
    /// The content's DER (one TLV).
    pub(super) der: Vec<u8>,
}

/// The checked parts of a request.
#[derive(Debug)]
pub(super) struct Checked {
    pub(super) hash: HashAlg,
    pub(super) digest: Vec<u8>,
    pub(super) format: SignatureFormat,
    pub(super) metadata: Option<String>,
    pub(super) timestamp: bool,
    pub(super) content: Option<Content>,
    /// Format `image`: the payload and which signature.
    pub(super) image: Option<super::image::ImageCheck>,
}

/// Checks the shape of an SpcIndirectDataContent (its SEQUENCE's contents):
/// `{ SEQUENCE { type OID, value ANY OPTIONAL }, DigestInfo { AlgorithmIdentifier, OCTET STRING } }`
/// and nothing else; the DigestInfo (the hash of the signed file) must be SHA-256, SHA-384 or
/// SHA-512 with a digest of that length. The service never signs a SHA-1 or MD5 file hash.
pub(super) fn check_spc_indirect_data(contents: &[u8]) -> Result<()> {
    let bad = |why: &str| -> Error {
        SigningError::BadContent(format!("content is not an SpcIndirectDataContent: {why}")).into()
    };
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
            SigningError::BadContent(
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
pub(super) fn check_content(
    req: &SignRequest,
    hash: HashAlg,
    digest: &[u8],
) -> Result<Option<Content>> {
    use base64::Engine as _;
    let (ct, b64) = match (&req.content_type, &req.content) {
        (None, None) => return Ok(None),
        (Some(ct), Some(c)) => (ct.trim(), c),
        _ => {
            return Err(SigningError::BadContent(
                "content_type and content come together (or not at all)".into(),
            )
            .into())
        }
    };
    if ct != SPC_INDIRECT_DATA {
        return Err(SigningError::BadContent(format!(
            "content_type '{ct}' is not offered (only {SPC_INDIRECT_DATA}, SpcIndirectDataContent)"
        ))
        .into());
    }
    // A base64 text at most this long decodes to at most MAX_CONTENT_BYTES.
    if b64.len() > MAX_CONTENT_BYTES.div_ceil(3) * 4 + 4 {
        return Err(SigningError::BadContent(format!(
            "content is larger than {MAX_CONTENT_BYTES} bytes"
        ))
        .into());
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| {
            SigningError::BadContent("content must be base64 (standard alphabet)".into())
        })?;
    if der.len() > MAX_CONTENT_BYTES {
        return Err(SigningError::BadContent(format!(
            "content is larger than {MAX_CONTENT_BYTES} bytes ({} bytes)",
            der.len()
        ))
        .into());
    }
    let t = read_tlv(&der)
        .map_err(|e| SigningError::BadContent(format!("content is not one DER value: {e}")))?;
    if t.tag != 0x30 || !t.rest.is_empty() {
        return Err(SigningError::BadContent(
            "SpcIndirectDataContent content must be exactly one DER SEQUENCE".into(),
        )
        .into());
    }
    check_spc_indirect_data(t.contents)?;
    // Authenticode's rule: the message digest covers the SEQUENCE's contents only.
    let computed = hash.digest(t.contents);
    if computed != digest {
        return Err(SigningError::BadContent(format!(
            "content digest mismatch: the {} of the content (without its outer tag and length) \
             is {}, the request's digest is {}",
            digest_algorithm_name(hash),
            hex::encode(&computed),
            hex::encode(digest)
        ))
        .into());
    }
    Ok(Some(Content {
        content_type: ct.to_string(),
        der,
    }))
}

pub(super) fn check_request(req: &SignRequest) -> Result<Checked> {
    let hash = parse_digest_algorithm(&req.digest_algorithm)?;
    let digest = hex::decode(req.digest.trim())
        .map_err(|_| SigningError::BadDigest("the digest must be hex".into()))?;
    if digest.len() != hash.output_len() {
        return Err(SigningError::BadDigest(format!(
            "a {} digest is {} bytes ({} hex characters), this one is {} bytes",
            digest_algorithm_name(hash),
            hash.output_len(),
            hash.output_len() * 2,
            digest.len()
        ))
        .into());
    }
    let format = SignatureFormat::parse(&req.format)?;
    let image = match format {
        SignatureFormat::Image => Some(super::image::check_image(req, hash, &digest)?),
        _ if req.openpgp_trailer.is_some() => {
            return Err(SigningError::Unsupported(
                "openpgp_trailer is sent with format image only".into(),
            )
            .into())
        }
        _ => None,
    };
    let content = match format {
        SignatureFormat::Image => None,
        _ => check_content(req, hash, &digest)?,
    };
    if content.is_some() && format != SignatureFormat::Cms {
        return Err(SigningError::Unsupported(format!(
            "content is signed as CMS only (format cms, not {})",
            format.name()
        ))
        .into());
    }
    if req.timestamp && !matches!(format, SignatureFormat::Raw | SignatureFormat::Cms) {
        return Err(SigningError::Unsupported(format!(
            "format {} cannot carry a time-stamp",
            format.name()
        ))
        .into());
    }
    let metadata = match &req.metadata {
        None | Some(serde_json::Value::Null) => None,
        Some(v @ serde_json::Value::Object(o)) => {
            if o.contains_key(RESERVED_METADATA_KEY) {
                return Err(SigningError::BadMetadata(format!(
                    "metadata key '{RESERVED_METADATA_KEY}' is reserved for hallmark"
                ))
                .into());
            }
            let s = v.to_string();
            if s.len() > MAX_METADATA_BYTES {
                return Err(SigningError::BadMetadata(format!(
                    "metadata is {} bytes; at most {MAX_METADATA_BYTES}",
                    s.len()
                ))
                .into());
            }
            Some(s)
        }
        Some(_) => {
            return Err(SigningError::BadMetadata("metadata must be a JSON object".into()).into())
        }
    };
    Ok(Checked {
        hash,
        digest,
        format,
        metadata,
        timestamp: req.timestamp,
        content,
        image,
    })
}

/// The metadata to record: the client's object plus, under [`RESERVED_METADATA_KEY`], what
/// hallmark adds (`extra`), when there is any.
pub(super) fn merged_metadata(
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
pub(super) fn pending_extras(c: &Checked) -> serde_json::Map<String, serde_json::Value> {
    use base64::Engine as _;
    let mut m = serde_json::Map::new();
    if c.timestamp {
        m.insert("timestamp".into(), true.into());
    }
    if let Some(image) = &c.image {
        m.insert(
            "content".into(),
            base64::engine::general_purpose::STANDARD
                .encode(&image.payload)
                .into(),
        );
        if let super::image::ImageKind::Simple { trailer } = &image.kind {
            m.insert("openpgp_trailer".into(), hex::encode(trailer).into());
        }
        m.insert("image".into(), image.manifest_digest.clone().into());
        m.insert("reference".into(), image.reference.clone().into());
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
pub(super) fn split_metadata(
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
pub(super) fn scheme_for(alg: KeyAlgorithm, hash: HashAlg) -> Result<SignatureScheme> {
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

/// The scheme a key signs an OpenPGP digest with: as [`scheme_for`], and Ed25519 (the digest
/// as its message: OpenPGP's EdDSA) for an Ed25519 key.
pub(super) fn openpgp_scheme(alg: KeyAlgorithm, hash: HashAlg) -> SignatureScheme {
    match scheme_for(alg, hash) {
        Ok(s) => s,
        Err(_) => SignatureScheme::Ed25519,
    }
}

/// The scheme (and, for ECDSA, the size of r and of s) a key signs `cose_sign1` with: ECDSA
/// only with its curve's hash, RSA with PSS; PKCS#1 v1.5 (RS256) is never used for COSE.
pub(super) fn cose_scheme(
    alg: KeyAlgorithm,
    hash: HashAlg,
) -> Result<(SignatureScheme, Option<usize>)> {
    use crate::formats::cose::{CoseAlg, CoseError};
    match CoseAlg::for_key(alg, hash) {
        Ok((_, scheme, fixed)) => Ok((scheme, fixed)),
        Err(e @ CoseError::UnsupportedKey(_)) => Err(PolicyError::BadKey(e.to_string()).into()),
        Err(e) => Err(SigningError::Unsupported(e.to_string()).into()),
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
    if scheme == S::Ed25519 {
        // `digest` is the message (OpenPGP's EdDSA signs the digest itself).
        return UnparsedPublicKey::new(&sig::ED25519, &bits)
            .verify(digest, signature)
            .map_err(|_| {
                crate::keys::KeyError::Crypto(
                    "the key store returned an Ed25519 signature that does not verify with the \
                     key's certificate"
                        .into(),
                )
                .into()
            });
    }
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
            return Err(SigningError::Internal(format!(
                "{other:?} is not offered by the signing service"
            ))
            .into())
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
