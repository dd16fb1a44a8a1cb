//! The client side of OCSP (RFC 6960, RFC 5019): the hash a CertID is made with, a CertID, and
//! a request for some of them. `verify` asks responders with these; the server's responder
//! (`issuer::ocsp`, which reads requests and signs answers) names the same types.

use der::asn1::ObjectIdentifier;

use crate::der::{oid, tlv};

const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// The hash a CertID was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertIdHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl CertIdHash {
    pub const ALL: [CertIdHash; 4] = [
        CertIdHash::Sha1,
        CertIdHash::Sha256,
        CertIdHash::Sha384,
        CertIdHash::Sha512,
    ];

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use aws_lc_rs::digest;
        let alg = match self {
            CertIdHash::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            CertIdHash::Sha256 => &digest::SHA256,
            CertIdHash::Sha384 => &digest::SHA384,
            CertIdHash::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }

    /// The hash a CertID's `hashAlgorithm` names, if hallmark knows it.
    pub fn from_oid(o: &ObjectIdentifier) -> Option<CertIdHash> {
        Some(match *o {
            ID_SHA1 => CertIdHash::Sha1,
            ID_SHA256 => CertIdHash::Sha256,
            ID_SHA384 => CertIdHash::Sha384,
            ID_SHA512 => CertIdHash::Sha512,
            _ => return None,
        })
    }

    /// The hash's OID, dotted.
    pub fn dotted(self) -> &'static str {
        match self {
            CertIdHash::Sha1 => "1.3.14.3.2.26",
            CertIdHash::Sha256 => "2.16.840.1.101.3.4.2.1",
            CertIdHash::Sha384 => "2.16.840.1.101.3.4.2.2",
            CertIdHash::Sha512 => "2.16.840.1.101.3.4.2.3",
        }
    }
}

/// A `CertID` as RFC 5019 clients make it: SHA-1 with NULL parameters.
pub fn cert_id(hash: CertIdHash, name_hash: &[u8], key_hash: &[u8], serial: &[u8]) -> Vec<u8> {
    let mut alg = oid(hash.dotted());
    alg.extend_from_slice(&[0x05, 0x00]);
    let mut body = tlv(0x30, &alg);
    body.extend_from_slice(&tlv(0x04, name_hash));
    body.extend_from_slice(&tlv(0x04, key_hash));
    body.extend_from_slice(&tlv(0x02, serial));
    tlv(0x30, &body)
}

/// The nonce extension a client sends (RFC 8954): a non-critical `Extension` holding the
/// nonce as an OCTET STRING.
pub fn nonce_extension(nonce: &[u8]) -> Vec<u8> {
    let mut body = oid("1.3.6.1.5.5.7.48.1.2");
    body.extend_from_slice(&tlv(0x04, &tlv(0x04, nonce)));
    tlv(0x30, &body)
}

/// A request for `cert_ids`: `OCSPRequest { TBSRequest { ... } }`.
pub fn build_request(cert_ids: &[Vec<u8>], nonce: Option<&[u8]>) -> Vec<u8> {
    let list: Vec<u8> = cert_ids.iter().flat_map(|id| tlv(0x30, id)).collect();
    let mut tbs = tlv(0x30, &list);
    if let Some(n) = nonce {
        tbs.extend_from_slice(&tlv(0xa2, &tlv(0x30, &nonce_extension(n))));
    }
    tlv(0x30, &tlv(0x30, &tbs))
}
