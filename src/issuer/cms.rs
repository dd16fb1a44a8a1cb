//! CMS SignedData (RFC 5652) as the signing service signs it: the signed attributes (plain,
//! and Authenticode's), the time-stamp attribute, and the SignedData around one signer, laid out
//! in DER (SET OF sorted) so the key store signs exactly the bytes recorded.

use crate::der::{read_tlv, seq, set_of, tlv};
use crate::issuer::IssueError;

type Result<T> = std::result::Result<T, IssueError>;
use crate::keys::{HashAlg, SignatureScheme};

/// SPC_INDIRECT_DATA_OBJID: the content type of Authenticode's signed content.
pub const SPC_INDIRECT_DATA: &str = "1.3.6.1.4.1.311.2.1.4";

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
const OID_TIMESTAMP_TOKEN: &str = "1.2.840.113549.1.9.16.2.14";
const OID_SPC_RFC3161: &str = "1.3.6.1.4.1.311.3.3.1";
const OID_SPC_SP_OPUS_INFO: &str = "1.3.6.1.4.1.311.2.1.12";
const OID_SPC_STATEMENT_TYPE: &str = "1.3.6.1.4.1.311.2.1.11";
const OID_SPC_INDIVIDUAL_SP_KEY_PURPOSE: &str = "1.3.6.1.4.1.311.2.1.21";

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
    let ecdsa = |last: u8| seq(&[&[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, last]]);
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
            return Err(IssueError::Encoding(format!(
                "{other:?} is not offered for CMS here"
            )))
        }
    })
}

/// signingTime: UTCTime through 2049, GeneralizedTime after (RFC 5652 §11.3).
fn signing_time(at: i64) -> Vec<u8> {
    let t =
        time::OffsetDateTime::from_unix_timestamp(at).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
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

/// The signed attributes of an Authenticode signature (a SET, tag 0x31): content-type
/// SpcIndirectDataContent, message-digest `digest` (of the content's DER without its outer
/// tag and length), SpcSpOpusInfo (empty), SpcStatementType (individual code signing) and
/// signing-time `at`.
pub fn authenticode_signed_attributes(digest: &[u8], at: i64) -> Vec<u8> {
    let oid = crate::issuer::extensions::oid;
    set_of(
        0x31,
        vec![
            attribute(OID_CONTENT_TYPE, &oid(SPC_INDIRECT_DATA)),
            attribute(OID_SIGNING_TIME, &signing_time(at)),
            attribute(OID_MESSAGE_DIGEST, &tlv(0x04, digest)),
            attribute(&oid(OID_SPC_SP_OPUS_INFO), &seq(&[])),
            attribute(
                &oid(OID_SPC_STATEMENT_TYPE),
                &seq(&[&oid(OID_SPC_INDIVIDUAL_SP_KEY_PURPOSE)]),
            ),
        ],
    )
}

/// The unsigned attribute carrying an RFC 3161 token: id-aa-timeStampToken (RFC 3161
/// Appendix A) for plain CMS and JAR, SPC_RFC3161_OBJID for Authenticode (what signtool,
/// osslsigncode and Windows read).
pub fn timestamp_attribute(token: &[u8], authenticode: bool) -> Vec<u8> {
    let oid = crate::issuer::extensions::oid(if authenticode {
        OID_SPC_RFC3161
    } else {
        OID_TIMESTAMP_TOKEN
    });
    attribute(&oid, token)
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
    /// Embedded content: (dotted content type, DER value placed under eContent `[0]`
    /// EXPLICIT as is). `None`: detached id-data.
    pub content: Option<(&'a str, &'a [u8])>,
    /// Unsigned attributes (each a whole Attribute TLV, e.g. [`timestamp_attribute`]).
    pub unsigned_attrs: Option<&'a [u8]>,
}

/// Issuer and serial number (both TLVs, byte for byte) of a DER certificate.
fn issuer_and_serial(cert: &[u8]) -> Result<Vec<u8>> {
    let bad = |e: crate::der::DerError| -> IssueError {
        IssueError::Encoding(format!("signer certificate: {e}"))
    };
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
        return Err(IssueError::Encoding(
            "signer certificate: unexpected TBSCertificate layout".into(),
        ));
    }
    Ok(seq(&[issuer.whole, serial.whole]))
}

/// A DER ContentInfo holding a SignedData with one signer: detached id-data, or the given
/// content embedded.
pub fn signed_data(p: &Parts<'_>) -> Result<Vec<u8>> {
    let version = [0x02, 0x01, 0x01];
    let digest_alg = digest_algorithm(p.hash);
    // Signed attributes go into SignerInfo as [0] IMPLICIT.
    let mut attrs = p.signed_attrs.to_vec();
    if attrs.first() != Some(&0x31) {
        return Err(IssueError::Encoding(
            "signed attributes must be a SET".into(),
        ));
    }
    attrs[0] = 0xa0;
    // Unsigned attributes go in as [1] IMPLICIT SET OF.
    let unsigned = match p.unsigned_attrs {
        Some(a) => {
            let mut items = Vec::new();
            let mut rest = a;
            while !rest.is_empty() {
                let t = read_tlv(rest)
                    .map_err(|e| IssueError::Encoding(format!("unsigned attribute: {e}")))?;
                items.push(t.whole.to_vec());
                rest = t.rest;
            }
            set_of(0xa1, items)
        }
        None => Vec::new(),
    };
    let signer_info = seq(&[
        &version,
        &issuer_and_serial(p.signer_cert)?,
        &digest_alg,
        &attrs,
        &signature_algorithm(p.scheme)?,
        &tlv(0x04, p.signature),
        &unsigned,
    ]);
    let encap = match p.content {
        // Authenticode: SpcIndirectDataContent sits under [0] EXPLICIT as the SEQUENCE
        // itself, not wrapped in an OCTET STRING.
        Some((ct, der)) => seq(&[&crate::issuer::extensions::oid(ct), &tlv(0xa0, der)]),
        None => seq(&[OID_DATA]),
    };
    let mut certs = vec![p.signer_cert.to_vec()];
    certs.extend(p.chain.iter().cloned());
    let signed_data = seq(&[
        &version,
        &tlv(0x31, &digest_alg),
        &encap,
        &set_of(0xa0, certs),
        &tlv(0x31, &signer_info),
    ]);
    Ok(seq(&[OID_SIGNED_DATA, &tlv(0xa0, &signed_data)]))
}
