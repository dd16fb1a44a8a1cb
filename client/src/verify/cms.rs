//! Reading a CMS SignedData (RFC 5652) for `verify`: the certificates it carries and each
//! signer's identifier, attributes, algorithms and signature, and checking one signer against
//! the digest of its content. Detached CMS, Authenticode, JAR blocks and RFC 3161 tokens are all
//! this structure.

use crate::algorithm::HashAlg;
use crate::der::{read_tlv, DerError, Tlv};

use super::crypto;

pub const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
pub const OID_DATA: &str = "1.2.840.113549.1.7.1";
pub const OID_TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
pub const OID_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
pub const OID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
pub const OID_TIMESTAMP_TOKEN: &str = "1.2.840.113549.1.9.16.2.14";
pub const OID_SPC_RFC3161: &str = "1.3.6.1.4.1.311.3.3.1";

/// A parsed SignedData.
#[derive(Debug, Clone)]
pub struct SignedData {
    /// eContentType, dotted.
    pub content_type: String,
    /// The value the signer's message digest covers: the contents of the OCTET STRING under
    /// eContent (id-data, TSTInfo), or of the SEQUENCE placed there (Authenticode's
    /// SpcIndirectDataContent). None when detached.
    pub content: Option<Vec<u8>>,
    /// The whole TLV under eContent `[0]` (Authenticode reads its SpcIndirectDataContent from it).
    pub content_tlv: Option<Vec<u8>>,
    pub certificates: Vec<Vec<u8>>,
    pub signers: Vec<SignerInfo>,
}

/// How a signer names its certificate.
#[derive(Debug, Clone)]
pub enum SignerId {
    /// Issuer Name and serial INTEGER, both whole TLVs.
    IssuerSerial {
        issuer: Vec<u8>,
        serial: Vec<u8>,
    },
    SubjectKeyId(Vec<u8>),
}

/// One attribute: its type and its values (whole TLVs).
#[derive(Debug, Clone)]
pub struct Attribute {
    pub oid: String,
    pub values: Vec<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct SignerInfo {
    pub sid: SignerId,
    pub digest_oid: String,
    /// The signed attributes as they are signed (tag 0x31).
    pub signed_attrs_der: Option<Vec<u8>>,
    pub signed_attrs: Vec<Attribute>,
    pub signature_oid: String,
    pub signature: Vec<u8>,
    pub unsigned_attrs: Vec<Attribute>,
}

impl SignerInfo {
    pub fn signed(&self, oid: &str) -> Option<&Attribute> {
        self.signed_attrs.iter().find(|a| a.oid == oid)
    }
    pub fn unsigned(&self, oid: &str) -> Option<&Attribute> {
        self.unsigned_attrs.iter().find(|a| a.oid == oid)
    }
}

fn bad(what: &'static str) -> impl Fn(DerError) -> String {
    move |e| format!("{what}: {e}")
}

fn children(contents: &[u8]) -> Result<Vec<Tlv<'_>>, DerError> {
    let mut out = Vec::new();
    let mut rest = contents;
    while !rest.is_empty() {
        let t = read_tlv(rest)?;
        rest = t.rest;
        out.push(t);
    }
    Ok(out)
}

/// The dotted form of an OBJECT IDENTIFIER TLV.
pub fn oid_string(t: &Tlv<'_>) -> Result<String, String> {
    if t.tag != 0x06 {
        return Err("expected an OBJECT IDENTIFIER".into());
    }
    der::asn1::ObjectIdentifier::from_bytes(t.contents)
        .map(|o| o.to_string())
        .map_err(|e| format!("bad OBJECT IDENTIFIER: {e}"))
}

/// The OID of an AlgorithmIdentifier TLV.
pub fn algorithm_oid(t: &Tlv<'_>) -> Result<String, String> {
    if t.tag != 0x30 {
        return Err("expected an AlgorithmIdentifier".into());
    }
    let first = read_tlv(t.contents).map_err(bad("AlgorithmIdentifier"))?;
    oid_string(&first)
}

fn attributes(contents: &[u8]) -> Result<Vec<Attribute>, String> {
    let mut out = Vec::new();
    for a in children(contents).map_err(bad("attributes"))? {
        let parts = children(a.contents).map_err(bad("attribute"))?;
        let (Some(oid), Some(set)) = (parts.first(), parts.get(1)) else {
            return Err("an attribute without type or values".into());
        };
        let values = children(set.contents)
            .map_err(bad("attribute values"))?
            .iter()
            .map(|v| v.whole.to_vec())
            .collect();
        out.push(Attribute {
            oid: oid_string(oid)?,
            values,
        });
    }
    Ok(out)
}

/// Parses a DER ContentInfo holding a SignedData.
pub fn parse(der: &[u8]) -> Result<SignedData, String> {
    let outer = read_tlv(der).map_err(bad("ContentInfo"))?;
    if outer.tag != 0x30 {
        return Err("not a CMS ContentInfo (no SEQUENCE)".into());
    }
    let parts = children(outer.contents).map_err(bad("ContentInfo"))?;
    let (Some(ct), Some(explicit)) = (parts.first(), parts.get(1)) else {
        return Err("a ContentInfo without content".into());
    };
    if oid_string(ct)? != OID_SIGNED_DATA {
        return Err("the ContentInfo does not hold a SignedData".into());
    }
    let sd = read_tlv(explicit.contents).map_err(bad("SignedData"))?;
    let fields = children(sd.contents).map_err(bad("SignedData"))?;
    // version, digestAlgorithms, encapContentInfo, [0] certificates, [1] crls, signerInfos
    let encap = fields.get(2).ok_or("SignedData without encapContentInfo")?;
    let encap_parts = children(encap.contents).map_err(bad("encapContentInfo"))?;
    let content_type = oid_string(
        encap_parts
            .first()
            .ok_or("encapContentInfo without a type")?,
    )?;
    let (content, content_tlv) = match encap_parts.get(1) {
        Some(e) if e.tag == 0xa0 => {
            let inner = read_tlv(e.contents).map_err(bad("eContent"))?;
            (Some(inner.contents.to_vec()), Some(inner.whole.to_vec()))
        }
        _ => (None, None),
    };
    let mut certificates = Vec::new();
    let mut signer_set = None;
    for f in fields.iter().skip(3) {
        match f.tag {
            0xa0 => {
                for c in children(f.contents).map_err(bad("certificates"))? {
                    if c.tag == 0x30 {
                        certificates.push(c.whole.to_vec());
                    }
                }
            }
            0xa1 => {}
            0x31 => signer_set = Some(f.contents),
            _ => return Err("unexpected field in SignedData".into()),
        }
    }
    let mut signers = Vec::new();
    for s in
        children(signer_set.ok_or("SignedData without signerInfos")?).map_err(bad("signerInfos"))?
    {
        signers.push(signer_info(&s)?);
    }
    if signers.is_empty() {
        return Err("the SignedData has no signer".into());
    }
    Ok(SignedData {
        content_type,
        content,
        content_tlv,
        certificates,
        signers,
    })
}

fn signer_info(s: &Tlv<'_>) -> Result<SignerInfo, String> {
    let f = children(s.contents).map_err(bad("SignerInfo"))?;
    let mut it = f.iter().skip(1); // version
    let sid_t = it.next().ok_or("SignerInfo without sid")?;
    let sid = match sid_t.tag {
        0x30 => {
            let p = children(sid_t.contents).map_err(bad("IssuerAndSerialNumber"))?;
            let (Some(i), Some(n)) = (p.first(), p.get(1)) else {
                return Err("bad IssuerAndSerialNumber".into());
            };
            SignerId::IssuerSerial {
                issuer: i.whole.to_vec(),
                serial: n.whole.to_vec(),
            }
        }
        0x80 => SignerId::SubjectKeyId(sid_t.contents.to_vec()),
        _ => return Err("bad SignerIdentifier".into()),
    };
    let digest_oid = algorithm_oid(it.next().ok_or("SignerInfo without digestAlgorithm")?)?;
    let mut next = it.next().ok_or("SignerInfo without signatureAlgorithm")?;
    let (mut signed_attrs_der, mut signed_attrs) = (None, Vec::new());
    if next.tag == 0xa0 {
        let mut d = next.whole.to_vec();
        d[0] = 0x31;
        signed_attrs_der = Some(d);
        signed_attrs = attributes(next.contents)?;
        next = it.next().ok_or("SignerInfo without signatureAlgorithm")?;
    }
    let signature_oid = algorithm_oid(next)?;
    let sig = it.next().ok_or("SignerInfo without signature")?;
    if sig.tag != 0x04 {
        return Err("the signature is not an OCTET STRING".into());
    }
    let unsigned_attrs = match it.next() {
        Some(u) if u.tag == 0xa1 => attributes(u.contents)?,
        _ => Vec::new(),
    };
    Ok(SignerInfo {
        sid,
        digest_oid,
        signed_attrs_der,
        signed_attrs,
        signature_oid,
        signature: sig.contents.to_vec(),
        unsigned_attrs,
    })
}

/// The issuer Name and serial INTEGER (whole TLVs) of a DER certificate.
pub fn cert_issuer_serial(cert: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let outer = read_tlv(cert).ok()?;
    let tbs = read_tlv(outer.contents).ok()?;
    let mut next = read_tlv(tbs.contents).ok()?;
    if next.tag == 0xa0 {
        next = read_tlv(next.rest).ok()?;
    }
    let sig_alg = read_tlv(next.rest).ok()?;
    let issuer = read_tlv(sig_alg.rest).ok()?;
    Some((issuer.whole.to_vec(), next.whole.to_vec()))
}

/// The certificate among `certs` a signer names.
pub fn find_signer_cert<'c>(sid: &SignerId, certs: &'c [Vec<u8>]) -> Option<&'c Vec<u8>> {
    certs.iter().find(|c| match sid {
        SignerId::IssuerSerial { issuer, serial } => {
            cert_issuer_serial(c).is_some_and(|(i, s)| &i == issuer && &s == serial)
        }
        SignerId::SubjectKeyId(id) => {
            use x509_parser::prelude::*;
            X509Certificate::from_der(c)
                .ok()
                .and_then(|(_, x)| {
                    x.extensions()
                        .iter()
                        .find_map(|e| match e.parsed_extension() {
                            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0 == id.as_slice()),
                            _ => None,
                        })
                })
                .unwrap_or(false)
        }
    })
}

/// What a checked signer proved.
#[derive(Debug, Clone)]
pub struct SignerOk {
    pub hash: HashAlg,
    pub scheme: String,
}

/// The digest algorithm a signer used.
pub fn signer_hash(s: &SignerInfo) -> Result<HashAlg, String> {
    crypto::hash_of_oid(&s.digest_oid)
}

/// Checks one signer: its signed attributes name `content_type` and carry `digest` (of the
/// content, in the signer's digest algorithm), and its signature over them verifies with the
/// key of `cert`.
pub fn check_signer(
    s: &SignerInfo,
    content_type: &str,
    digest: &[u8],
    cert: &[u8],
) -> Result<SignerOk, String> {
    let hash = signer_hash(s)?;
    let attrs = s
        .signed_attrs_der
        .as_ref()
        .ok_or("the signer has no signed attributes (not supported)")?;
    let md = s
        .signed(OID_MESSAGE_DIGEST)
        .and_then(|a| a.values.first())
        .ok_or("the signer has no message-digest attribute")?;
    let md = read_tlv(md).map_err(bad("message-digest"))?;
    if md.tag != 0x04 || md.contents != digest {
        return Err(format!(
            "the signed message digest is {}, the content's {} is {}: the content was changed",
            hex::encode(md.contents),
            crypto::hash_name(hash),
            hex::encode(digest)
        ));
    }
    let ct = s
        .signed(OID_CONTENT_TYPE)
        .and_then(|a| a.values.first())
        .ok_or("the signer has no content-type attribute")?;
    let ct = oid_string(&read_tlv(ct).map_err(bad("content-type"))?)?;
    if ct != content_type {
        return Err(format!(
            "the signed content type {ct} differs from the content's {content_type}"
        ));
    }
    let scheme = crypto::scheme_of_oid(&s.signature_oid, Some(hash))?;
    let spki = spki_of(cert)?;
    let name = crypto::verify(&spki, scheme, false, attrs, &s.signature)?;
    Ok(SignerOk { hash, scheme: name })
}

/// The SubjectPublicKeyInfo of a DER certificate.
pub fn spki_of(cert: &[u8]) -> Result<Vec<u8>, String> {
    use x509_parser::prelude::*;
    let (_, c) = X509Certificate::from_der(cert)
        .map_err(|e| format!("a certificate does not parse: {e}"))?;
    Ok(c.public_key().raw.to_vec())
}

/// The first RFC 3161 token among a signer's unsigned attributes (id-aa-timeStampToken, or
/// Authenticode's SPC_RFC3161_OBJID).
pub fn timestamp_token(s: &SignerInfo) -> Option<Vec<u8>> {
    s.unsigned(OID_TIMESTAMP_TOKEN)
        .or_else(|| s.unsigned(OID_SPC_RFC3161))
        .and_then(|a| a.values.first().cloned())
}
