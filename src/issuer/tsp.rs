//! RFC 3161 time-stamp protocol in DER: reading a `TimeStampReq` and writing a `TimeStampResp`
//! whose token is a CMS SignedData (RFC 5652) over a `TSTInfo`, with the signed attributes
//! content-type, message-digest and signing-certificate-v2 (RFC 5035; OpenSSL requires an ESS
//! signing-certificate attribute).
//!
//! Nothing here touches keys or the database: [`parse_request`] checks a query, [`build_token`]
//! lays out the token and signs it through a [`Signer`], [`rejection`] answers a refused query.

use crate::der::{read_tlv, seq, set_of, tlv};
use crate::issuer::crl::signature_algorithm;
use crate::issuer::extensions::oid;
use crate::issuer::IssueError;
use crate::keys::{HashAlg, SignatureScheme, Signer};

/// id-ct-TSTInfo.
pub const ID_CT_TSTINFO: &str = "1.2.840.113549.1.9.16.1.4";
const ID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const ATTR_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const ATTR_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const ATTR_SIGNING_CERT_V2: &str = "1.2.840.113549.1.9.16.2.47";
const SHA1: &str = "1.3.14.3.2.26";

/// Why a query is refused: the PKIFailureInfo bit (RFC 3161 section 2.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailInfo {
    BadAlg,
    BadRequest,
    BadDataFormat,
    UnacceptedPolicy,
    UnacceptedExtension,
    SystemFailure,
}

impl FailInfo {
    /// The bit number in PKIFailureInfo.
    pub fn bit(self) -> usize {
        match self {
            FailInfo::BadAlg => 0,
            FailInfo::BadRequest => 2,
            FailInfo::BadDataFormat => 5,
            FailInfo::UnacceptedPolicy => 15,
            FailInfo::UnacceptedExtension => 16,
            FailInfo::SystemFailure => 25,
        }
    }

    /// The DER BIT STRING with only this bit set (trailing zero bits removed, as DER wants).
    fn bit_string(self) -> Vec<u8> {
        let bit = self.bit();
        let mut bytes = vec![0u8; bit / 8 + 1];
        bytes[bit / 8] = 0x80 >> (bit % 8);
        let unused = 7 - (bit % 8) as u8;
        let mut body = vec![unused];
        body.extend_from_slice(&bytes);
        tlv(0x03, &body)
    }
}

/// A refused query: the failure bit and a human-readable reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub fail: FailInfo,
    pub reason: String,
}

fn refuse(fail: FailInfo, reason: impl Into<String>) -> Refusal {
    Refusal {
        fail,
        reason: reason.into(),
    }
}

/// A checked `TimeStampReq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeStampReq {
    pub hash: HashAlg,
    /// The whole `MessageImprint` SEQUENCE, echoed into the TSTInfo as received.
    pub imprint_der: Vec<u8>,
    pub hashed_message: Vec<u8>,
    /// The requested policy (whole OID TLV), if any.
    pub policy_der: Option<Vec<u8>>,
    /// The nonce (whole INTEGER TLV), if any.
    pub nonce_der: Option<Vec<u8>>,
    pub cert_req: bool,
}

fn hash_of(alg_oid: &[u8]) -> Option<HashAlg> {
    [
        ("2.16.840.1.101.3.4.2.1", HashAlg::Sha256),
        ("2.16.840.1.101.3.4.2.2", HashAlg::Sha384),
        ("2.16.840.1.101.3.4.2.3", HashAlg::Sha512),
    ]
    .into_iter()
    .find(|(o, _)| oid(o) == alg_oid)
    .map(|(_, h)| h)
}

fn hash_oid(h: HashAlg) -> &'static str {
    match h {
        HashAlg::Sha256 => "2.16.840.1.101.3.4.2.1",
        HashAlg::Sha384 => "2.16.840.1.101.3.4.2.2",
        HashAlg::Sha512 => "2.16.840.1.101.3.4.2.3",
    }
}

/// Parses and checks a `TimeStampReq` (DER). SHA-1 and unknown hashes are `badAlg`; anything
/// malformed is `badDataFormat` or `badRequest`; request extensions are `unacceptedExtension`.
pub fn parse_request(der: &[u8]) -> Result<TimeStampReq, Refusal> {
    let bad = |why: &str| refuse(FailInfo::BadDataFormat, format!("malformed query: {why}"));
    let outer = read_tlv(der).map_err(|e| bad(e.0))?;
    if outer.tag != 0x30 || !outer.rest.is_empty() {
        return Err(bad("not a single SEQUENCE"));
    }
    let version = read_tlv(outer.contents).map_err(|e| bad(e.0))?;
    if version.tag != 0x02 {
        return Err(bad("no version"));
    }
    if version.contents != [1] {
        return Err(refuse(
            FailInfo::BadRequest,
            "only version 1 queries are served",
        ));
    }
    let imprint = read_tlv(version.rest).map_err(|e| bad(e.0))?;
    if imprint.tag != 0x30 {
        return Err(bad("no messageImprint"));
    }
    let alg = read_tlv(imprint.contents).map_err(|e| bad(e.0))?;
    let hashed = read_tlv(alg.rest).map_err(|e| bad(e.0))?;
    if alg.tag != 0x30 || hashed.tag != 0x04 || !hashed.rest.is_empty() {
        return Err(bad(
            "messageImprint is not {AlgorithmIdentifier, OCTET STRING}",
        ));
    }
    let alg_oid = read_tlv(alg.contents).map_err(|e| bad(e.0))?;
    if alg_oid.tag != 0x06 || !(alg_oid.rest.is_empty() || alg_oid.rest == [0x05, 0x00]) {
        return Err(bad("hash AlgorithmIdentifier"));
    }
    let hash = match hash_of(alg_oid.whole) {
        Some(h) => h,
        None if alg_oid.whole == oid(SHA1).as_slice() => {
            return Err(refuse(
                FailInfo::BadAlg,
                "SHA-1 imprints are refused: use SHA-256, SHA-384 or SHA-512",
            ))
        }
        None => {
            return Err(refuse(
                FailInfo::BadAlg,
                "unsupported hash algorithm: use SHA-256, SHA-384 or SHA-512",
            ))
        }
    };
    if hashed.contents.len() != hash.output_len() {
        return Err(refuse(
            FailInfo::BadDataFormat,
            format!(
                "a {hash:?} imprint is {} bytes, not {}",
                hash.output_len(),
                hashed.contents.len()
            ),
        ));
    }
    let mut req = TimeStampReq {
        hash,
        imprint_der: imprint.whole.to_vec(),
        hashed_message: hashed.contents.to_vec(),
        policy_der: None,
        nonce_der: None,
        cert_req: false,
    };
    let mut rest = imprint.rest;
    // Optional fields, in order: reqPolicy OID, nonce INTEGER, certReq BOOLEAN, [0] extensions.
    let mut stage = 0;
    while !rest.is_empty() {
        let t = read_tlv(rest).map_err(|e| bad(e.0))?;
        match t.tag {
            0x06 if stage < 1 => {
                req.policy_der = Some(t.whole.to_vec());
                stage = 1;
            }
            0x02 if stage < 2 => {
                let c = t.contents;
                if c.is_empty() || c.len() > 64 || (c.len() > 1 && c[0] == 0 && c[1] < 0x80) {
                    return Err(bad("nonce is not a minimal INTEGER of at most 64 bytes"));
                }
                req.nonce_der = Some(t.whole.to_vec());
                stage = 2;
            }
            0x01 if stage < 3 => {
                req.cert_req = match t.contents {
                    [0xff] => true,
                    [0x00] => false,
                    _ => return Err(bad("certReq is not a DER BOOLEAN")),
                };
                stage = 3;
            }
            0xa0 if stage < 4 => {
                return Err(refuse(
                    FailInfo::UnacceptedExtension,
                    "request extensions are not supported",
                ))
            }
            _ => return Err(bad("unexpected field")),
        }
        rest = t.rest;
    }
    Ok(req)
}

/// `GeneralizedTime` (UTC, whole seconds) of a Unix time.
pub fn generalized_time(unix: i64) -> Result<Vec<u8>, IssueError> {
    let t = ::time::OffsetDateTime::from_unix_timestamp(unix)
        .map_err(|e| IssueError::Encoding(format!("time: {e}")))?;
    let s = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    Ok(tlv(0x18, s.as_bytes()))
}

/// What the TSA puts in a token besides the query's own fields.
pub struct TokenInput<'a> {
    /// The TSA policy (dotted OID).
    pub policy: &'a str,
    /// The serial's INTEGER contents (minimal, positive).
    pub serial: &'a [u8],
    pub gen_time: i64,
    /// Accuracy in seconds.
    pub accuracy_seconds: u8,
    /// The TSA certificate (DER).
    pub tsa_cert: &'a [u8],
    /// Certificates sent after the TSA certificate when certReq is true (its issuing chain).
    pub chain: &'a [Vec<u8>],
    pub signer: &'a dyn Signer,
    pub scheme: SignatureScheme,
}

fn alg_id(dotted: &str) -> Vec<u8> {
    tlv(0x30, &oid(dotted))
}

fn attribute(dotted: &str, value: &[u8]) -> Vec<u8> {
    seq(&[&oid(dotted), &tlv(0x31, value)])
}

/// The DER `TSTInfo` for a query.
pub fn tst_info(req: &TimeStampReq, input: &TokenInput<'_>) -> Result<Vec<u8>, IssueError> {
    let mut body = vec![0x02, 0x01, 0x01];
    body.extend_from_slice(&oid(input.policy));
    body.extend_from_slice(&req.imprint_der);
    body.extend_from_slice(&tlv(0x02, input.serial));
    body.extend_from_slice(&generalized_time(input.gen_time)?);
    if input.accuracy_seconds > 0 {
        let secs = tlv(0x02, &[input.accuracy_seconds & 0x7f]);
        body.extend_from_slice(&tlv(0x30, &secs));
    }
    if let Some(n) = &req.nonce_der {
        body.extend_from_slice(n);
    }
    Ok(tlv(0x30, &body))
}

/// Builds and signs the TimeStampToken (a ContentInfo holding SignedData) for a query.
pub fn build_token(req: &TimeStampReq, input: &TokenInput<'_>) -> Result<Vec<u8>, IssueError> {
    let hash = input.scheme.hash().ok_or_else(|| {
        IssueError::Encoding(format!("{:?} cannot sign time-stamp tokens", input.scheme))
    })?;
    let tst = tst_info(req, input)?;
    let (_, cert) = x509_parser::parse_x509_certificate(input.tsa_cert)
        .map_err(|e| IssueError::Encoding(format!("TSA certificate: {e}")))?;
    let issuer_and_serial = seq(&[
        cert.tbs_certificate.issuer.as_raw(),
        &tlv(0x02, cert.raw_serial()),
    ]);
    // Signed attributes.
    let content_type = attribute(ATTR_CONTENT_TYPE, &oid(ID_CT_TSTINFO));
    let digest = attribute(ATTR_MESSAGE_DIGEST, &tlv(0x04, &hash.digest(&tst)));
    let cert_hash = HashAlg::Sha256.digest(input.tsa_cert);
    // SigningCertificateV2 { certs SEQUENCE OF ESSCertIDv2 { certHash } } (hash defaults to SHA-256).
    let ess_cert_id = seq(&[&tlv(0x04, &cert_hash)]);
    let signing_cert = attribute(ATTR_SIGNING_CERT_V2, &seq(&[&seq(&[&ess_cert_id])]));
    let attrs = set_of(0x31, vec![content_type, digest, signing_cert]);
    let signature = input.signer.sign(input.scheme, &attrs)?;
    let mut signed_attrs = attrs.clone();
    signed_attrs[0] = 0xa0; // [0] IMPLICIT in the SignerInfo
    let digest_alg = alg_id(hash_oid(hash));
    let signer_info = seq(&[
        &[0x02, 0x01, 0x01],
        &issuer_and_serial,
        &digest_alg,
        &signed_attrs,
        &signature_algorithm(input.scheme)?,
        &tlv(0x04, &signature),
    ]);
    let encap = seq(&[&oid(ID_CT_TSTINFO), &tlv(0xa0, &tlv(0x04, &tst))]);
    let certs = if req.cert_req {
        // certificates [0] IMPLICIT CertificateSet: a SET OF, so in DER sorted by encoding
        // (strict parsers, such as those on rust-asn1, refuse another order).
        let mut all: Vec<Vec<u8>> = std::iter::once(input.tsa_cert)
            .chain(input.chain.iter().map(|c| &c[..]))
            .map(<[u8]>::to_vec)
            .collect();
        all.sort();
        tlv(0xa0, &all.concat())
    } else {
        Vec::new()
    };
    let signed_data = seq(&[
        &[0x02, 0x01, 0x03],
        &tlv(0x31, &digest_alg),
        &encap,
        &certs,
        &tlv(0x31, &signer_info),
    ]);
    Ok(seq(&[&oid(ID_SIGNED_DATA), &tlv(0xa0, &signed_data)]))
}

/// A `TimeStampResp` with status granted and the token.
pub fn granted(token: &[u8]) -> Vec<u8> {
    seq(&[&seq(&[&[0x02, 0x01, 0x00]]), token])
}

/// A `TimeStampResp` with status rejection, a status string and the failure bit.
pub fn rejection(refusal: &Refusal) -> Vec<u8> {
    let text = seq(&[&tlv(0x0c, refusal.reason.as_bytes())]);
    seq(&[&seq(&[
        &[0x02, 0x01, 0x02],
        &text,
        &refusal.fail.bit_string(),
    ])])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_info_bits() {
        assert_eq!(FailInfo::BadAlg.bit_string(), vec![0x03, 0x02, 0x07, 0x80]);
        assert_eq!(
            FailInfo::BadRequest.bit_string(),
            vec![0x03, 0x02, 0x05, 0x20]
        );
        assert_eq!(
            FailInfo::BadDataFormat.bit_string(),
            vec![0x03, 0x02, 0x02, 0x04]
        );
        assert_eq!(
            FailInfo::SystemFailure.bit_string(),
            vec![0x03, 0x05, 0x06, 0x00, 0x00, 0x00, 0x40]
        );
    }

    fn query(alg: &str, digest_len: usize, tail: &[u8]) -> Vec<u8> {
        let imprint = seq(&[
            &seq(&[&oid(alg), &[0x05, 0x00]]),
            &tlv(0x04, &vec![7u8; digest_len]),
        ]);
        seq(&[&[0x02, 0x01, 0x01], &imprint, tail])
    }

    #[test]
    fn parses_and_refuses() {
        let q = query(
            "2.16.840.1.101.3.4.2.1",
            32,
            &[0x02, 0x02, 0x01, 0x00, 0x01, 0x01, 0xff],
        );
        let r = parse_request(&q).unwrap();
        assert_eq!(r.hash, HashAlg::Sha256);
        assert!(r.cert_req);
        assert_eq!(r.nonce_der.as_deref(), Some(&[0x02, 0x02, 0x01, 0x00][..]));
        let sha1 = query(SHA1, 20, &[]);
        assert_eq!(parse_request(&sha1).unwrap_err().fail, FailInfo::BadAlg);
        let short = query("2.16.840.1.101.3.4.2.1", 20, &[]);
        assert_eq!(
            parse_request(&short).unwrap_err().fail,
            FailInfo::BadDataFormat
        );
        assert_eq!(
            parse_request(b"garbage").unwrap_err().fail,
            FailInfo::BadDataFormat
        );
        assert_eq!(
            parse_request(&[]).unwrap_err().fail,
            FailInfo::BadDataFormat
        );
    }

    #[test]
    fn times_are_generalized() {
        assert_eq!(&generalized_time(0).unwrap()[2..], b"19700101000000Z");
    }
}
