//! The SubjectPublicKeyInfo of a token's key pair, built from its public key object
//! (`CKA_EC_POINT`, `CKA_MODULUS`/`CKA_PUBLIC_EXPONENT`), and the `CKA_EC_PARAMS` encodings.

use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, UintRef};
use der::{Decode, Encode};
use pkcs8::spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};

use crate::keys::{oid, KeyError};

/// `CKA_EC_PARAMS` of P-256 and P-384: the DER OID of the named curve.
pub(super) const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub(super) const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// `CKA_EC_PARAMS` of Ed25519 in its OID form (RFC 8410), which some tokens give.
pub(super) const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// `PrintableString "edwards25519"`: the curve name form of `CKA_EC_PARAMS` SoftHSM 2.6 accepts.
pub(super) const EC_PARAMS_EDWARDS25519: &[u8] = b"\x13\x0cedwards25519";

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap(oid::EC_PUBLIC_KEY);
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap(oid::ED25519);
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap(oid::RSA_ENCRYPTION);

fn der_err(e: der::Error) -> KeyError {
    KeyError::Pkcs11(format!("encoding the SubjectPublicKeyInfo: {e}"))
}

/// `SubjectPublicKeyInfo { algorithm, BIT STRING key }`.
fn spki(
    oid: ObjectIdentifier,
    parameters: Option<AnyRef<'_>>,
    key: &[u8],
) -> Result<Vec<u8>, KeyError> {
    SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef { oid, parameters },
        subject_public_key: BitStringRef::from_bytes(key).map_err(der_err)?,
    }
    .to_der()
    .map_err(der_err)
}

/// `SubjectPublicKeyInfo { id-ecPublicKey curve, point }`; `curve` is the DER OID of the curve
/// (as `CKA_EC_PARAMS` holds it), `point` the uncompressed point.
pub(super) fn ec_spki(curve: &[u8], point: &[u8]) -> Result<Vec<u8>, KeyError> {
    let curve = AnyRef::from_der(curve).map_err(der_err)?;
    spki(ID_EC_PUBLIC_KEY, Some(curve), point)
}

/// `SubjectPublicKeyInfo { id-Ed25519 (no parameters), key }` (RFC 8410).
pub(super) fn ed25519_spki(key: &[u8]) -> Result<Vec<u8>, KeyError> {
    spki(ID_ED25519, None, key)
}

/// `SubjectPublicKeyInfo { rsaEncryption NULL, RSAPublicKey { n, e } }`, from the unsigned
/// big-endian `CKA_MODULUS` and `CKA_PUBLIC_EXPONENT`.
pub(super) fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Result<Vec<u8>, KeyError> {
    // An empty value is the integer 0 (`02 01 00`), as `UintRef` alone would not encode it.
    fn uint(be: &[u8]) -> Result<UintRef<'_>, KeyError> {
        UintRef::new(if be.is_empty() { &[0] } else { be }).map_err(der_err)
    }
    let rsa_public_key = [uint(modulus)?, uint(exponent)?]
        .to_der()
        .map_err(der_err)?;
    spki(RSA_ENCRYPTION, Some(AnyRef::NULL), &rsa_public_key)
}

/// `CKA_EC_POINT` is a DER OCTET STRING around the point; some tokens give the bare point.
pub(super) fn unwrap_point(raw: &[u8], point_len: usize) -> Option<&[u8]> {
    if raw.first() == Some(&0x04) {
        let (len, hdr) = match raw.get(1) {
            Some(&l) if l < 0x80 => (l as usize, 2),
            Some(&0x81) => (*raw.get(2)? as usize, 3),
            _ => (usize::MAX, 0),
        };
        if len == point_len && raw.len() == hdr + len {
            return Some(&raw[hdr..]);
        }
    }
    (raw.len() == point_len).then_some(raw)
}

pub(super) fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoder this file used before it built on the `der` crate, kept as the oracle: the
    /// SubjectPublicKeyInfo of a key must not change by a byte.
    mod by_hand {
        fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            let len = body.len();
            if len < 0x80 {
                out.push(len as u8);
            } else {
                let bytes = len.to_be_bytes();
                let skip = bytes
                    .iter()
                    .position(|&b| b != 0)
                    .unwrap_or(bytes.len() - 1);
                out.push(0x80 | (bytes.len() - skip) as u8);
                out.extend_from_slice(&bytes[skip..]);
            }
            out.extend_from_slice(body);
            out
        }
        fn seq(body: &[u8]) -> Vec<u8> {
            tlv(0x30, body)
        }
        fn bit_string(bits: &[u8]) -> Vec<u8> {
            tlv(0x03, &[&[0u8][..], bits].concat())
        }
        fn unsigned_integer(be: &[u8]) -> Vec<u8> {
            let v = super::strip_zeros(be);
            let mut body = Vec::new();
            if !matches!(v.first(), Some(b) if b & 0x80 == 0) {
                body.push(0);
            }
            body.extend_from_slice(v);
            tlv(0x02, &body)
        }
        const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        const OID_RSA_ENCRYPTION: &[u8] = &[
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
        ];
        pub fn ec(curve: &[u8], point: &[u8]) -> Vec<u8> {
            let algid = seq(&[OID_EC_PUBLIC_KEY, curve].concat());
            seq(&[algid, bit_string(point)].concat())
        }
        pub fn ed25519(key: &[u8]) -> Vec<u8> {
            seq(&[seq(super::OID_ED25519), bit_string(key)].concat())
        }
        pub fn rsa(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
            let key = seq(&[unsigned_integer(modulus), unsigned_integer(exponent)].concat());
            let algid = seq(&[OID_RSA_ENCRYPTION, &[0x05, 0x00]].concat());
            seq(&[algid, bit_string(&key)].concat())
        }
    }

    fn bytes(len: usize, first: u8) -> Vec<u8> {
        (0..len)
            .map(|i| if i == 0 { first } else { (i * 7 + 3) as u8 })
            .collect()
    }

    #[test]
    fn ec_and_ed25519_are_what_they_were() {
        for (curve, len) in [(OID_P256, 65), (OID_P384, 97)] {
            let point = bytes(len, 0x04);
            assert_eq!(ec_spki(curve, &point).unwrap(), by_hand::ec(curve, &point));
        }
        let p256 = ec_spki(OID_P256, &bytes(65, 0x04)).unwrap();
        assert_eq!(
            hex::encode(&p256[..26]),
            "3059301306072a8648ce3d020106082a8648ce3d030107034200"
        );
        let key = bytes(32, 0xd7);
        assert_eq!(ed25519_spki(&key).unwrap(), by_hand::ed25519(&key));
        assert_eq!(
            hex::encode(&ed25519_spki(&key).unwrap()[..12]),
            "302a300506032b6570032100"
        );
    }

    #[test]
    fn rsa_is_what_it_was() {
        let exponents: [&[u8]; 5] = [&[1, 0, 1], &[0, 0, 1, 0, 1], &[3], &[0x80, 0, 1], &[]];
        for len in [384, 512] {
            for first in [0xc3, 0x7f, 0x01] {
                let n = bytes(len, first);
                for e in exponents {
                    assert_eq!(
                        rsa_spki(&n, e).unwrap(),
                        by_hand::rsa(&n, e),
                        "{len} {first} {e:?}"
                    );
                }
            }
        }
        let n = bytes(384, 0xc3);
        let der = rsa_spki(&n, &[1, 0, 1]).unwrap();
        assert_eq!(
            hex::encode(&der[..33]),
            "308201a2300d06092a864886f70d01010105000382018f003082018a0282018100"
        );
        assert_eq!(hex::encode(&der[der.len() - 5..]), "0203010001");
    }
}
