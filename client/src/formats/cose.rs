//! COSE_Sign1 (RFC 9052 §4.2) with a detached payload: the SUIT building block.
//!
//! The message is `18([protected, unprotected, nil, signature])` with the protected header
//! `{1: alg}` and an unprotected header holding `kid` (4, the key's label as bytes) and
//! `x5chain` (33, RFC 9360: the signing certificate, then the CA certificates above it, root
//! excluded). What is signed is the hash of the `Sig_structure`
//! `["Signature1", protected, h'', payload]`; its CBOR prefix is made by [`sig_structure_prefix`]
//! so the client can hash it and then stream the payload after it.
//!
//! Algorithms (RFC 9053 §2.1, RFC 8230): ES256 (P-256 with SHA-256), ES384 (P-384 with
//! SHA-384), and PS256/PS384/PS512 for RSA keys. ECDSA signatures are `r || s`, each the curve
//! size. RSA PKCS#1 v1.5 (RS256, RFC 8812) is refused: RFC 8230 defines only RSASSA-PSS for
//! COSE, and RFC 8812 marks RS256 "not recommended" outside WebAuthn. The CBOR is encoded here by
//! hand (deterministic encoding, RFC 8949 §4.2.1: shortest heads, definite lengths).

use crate::algorithm::{HashAlg, KeyAlgorithm, SignatureScheme};

/// The COSE_Sign1 tag.
pub const TAG_SIGN1: u64 = 18;
const LABEL_ALG: u64 = 1;
const LABEL_KID: u64 = 4;
const LABEL_X5CHAIN: u64 = 33;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoseError {
    #[error("COSE algorithm '{0}' is not offered (ES256, ES384, PS256, PS384, PS512)")]
    UnknownAlgorithm(String),
    #[error("{key} keys sign COSE with {alg} ({hash} digests), not with {got} digests")]
    HashMismatch {
        key: &'static str,
        alg: &'static str,
        hash: &'static str,
        got: &'static str,
    },
    #[error("{0} keys cannot sign COSE_Sign1 here (ECDSA P-256/P-384 and RSA-PSS only)")]
    UnsupportedKey(&'static str),
    #[error("the signature is not a DER ECDSA signature for a {0}-byte curve")]
    BadEcdsaSignature(usize),
}

/// A COSE signature algorithm offered here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoseAlg {
    Es256,
    Es384,
    Ps256,
    Ps384,
    Ps512,
}

impl CoseAlg {
    pub const ALL: [CoseAlg; 5] = [
        CoseAlg::Es256,
        CoseAlg::Es384,
        CoseAlg::Ps256,
        CoseAlg::Ps384,
        CoseAlg::Ps512,
    ];

    /// The IANA COSE Algorithms value.
    pub fn id(self) -> i64 {
        match self {
            CoseAlg::Es256 => -7,
            CoseAlg::Es384 => -35,
            CoseAlg::Ps256 => -37,
            CoseAlg::Ps384 => -38,
            CoseAlg::Ps512 => -39,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CoseAlg::Es256 => "ES256",
            CoseAlg::Es384 => "ES384",
            CoseAlg::Ps256 => "PS256",
            CoseAlg::Ps384 => "PS384",
            CoseAlg::Ps512 => "PS512",
        }
    }

    pub fn parse(s: &str) -> Result<CoseAlg, CoseError> {
        CoseAlg::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| CoseError::UnknownAlgorithm(s.to_string()))
    }

    pub fn hash(self) -> HashAlg {
        match self {
            CoseAlg::Es256 | CoseAlg::Ps256 => HashAlg::Sha256,
            CoseAlg::Es384 | CoseAlg::Ps384 => HashAlg::Sha384,
            CoseAlg::Ps512 => HashAlg::Sha512,
        }
    }

    pub fn is_ecdsa(self) -> bool {
        matches!(self, CoseAlg::Es256 | CoseAlg::Es384)
    }

    /// The algorithm a key signs COSE with over digests of `hash`, with the key store scheme
    /// and, for ECDSA, the size of each of r and s. ECDSA keys take only their own curve's
    /// hash (ES256 = P-256 + SHA-256, ES384 = P-384 + SHA-384); RSA keys sign PSS.
    pub fn for_key(
        key: KeyAlgorithm,
        hash: HashAlg,
    ) -> Result<(CoseAlg, SignatureScheme, Option<usize>), CoseError> {
        let hash_name = |h: HashAlg| match h {
            HashAlg::Sha256 => "SHA-256",
            HashAlg::Sha384 => "SHA-384",
            HashAlg::Sha512 => "SHA-512",
        };
        match (key, hash) {
            (KeyAlgorithm::P256, HashAlg::Sha256) => {
                Ok((CoseAlg::Es256, SignatureScheme::EcdsaSha256, Some(32)))
            }
            (KeyAlgorithm::P384, HashAlg::Sha384) => {
                Ok((CoseAlg::Es384, SignatureScheme::EcdsaSha384, Some(48)))
            }
            (KeyAlgorithm::P256 | KeyAlgorithm::P384, got) => {
                let (k, alg, h) = if key == KeyAlgorithm::P256 {
                    ("P-256", CoseAlg::Es256, HashAlg::Sha256)
                } else {
                    ("P-384", CoseAlg::Es384, HashAlg::Sha384)
                };
                Err(CoseError::HashMismatch {
                    key: k,
                    alg: alg.name(),
                    hash: hash_name(h),
                    got: hash_name(got),
                })
            }
            (KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096, h) => Ok(match h {
                HashAlg::Sha256 => (CoseAlg::Ps256, SignatureScheme::RsaPssSha256, None),
                HashAlg::Sha384 => (CoseAlg::Ps384, SignatureScheme::RsaPssSha384, None),
                HashAlg::Sha512 => (CoseAlg::Ps512, SignatureScheme::RsaPssSha512, None),
            }),
            (KeyAlgorithm::Ed25519, _) => Err(CoseError::UnsupportedKey("Ed25519")),
        }
    }
}

/// A CBOR head: major type and argument, shortest form.
fn head(major: u8, n: u64) -> Vec<u8> {
    let m = major << 5;
    if n < 24 {
        vec![m | n as u8]
    } else if n <= 0xff {
        vec![m | 24, n as u8]
    } else if n <= 0xffff {
        let mut v = vec![m | 25];
        v.extend_from_slice(&(n as u16).to_be_bytes());
        v
    } else if n <= 0xffff_ffff {
        let mut v = vec![m | 26];
        v.extend_from_slice(&(n as u32).to_be_bytes());
        v
    } else {
        let mut v = vec![m | 27];
        v.extend_from_slice(&n.to_be_bytes());
        v
    }
}

fn int(i: i64) -> Vec<u8> {
    if i >= 0 {
        head(0, i as u64)
    } else {
        head(1, (-1 - i) as u64)
    }
}

fn bstr(b: &[u8]) -> Vec<u8> {
    let mut v = head(2, b.len() as u64);
    v.extend_from_slice(b);
    v
}

fn tstr(s: &str) -> Vec<u8> {
    let mut v = head(3, s.len() as u64);
    v.extend_from_slice(s.as_bytes());
    v
}

/// The protected header map `{1: alg}` (its encoding is what goes into the bstr).
pub fn protected_header(alg: CoseAlg) -> Vec<u8> {
    let mut v = head(5, 1);
    v.extend(int(LABEL_ALG as i64));
    v.extend(int(alg.id()));
    v
}

/// The CBOR of `["Signature1", bstr(protected), h'', ` followed by the head of a byte string of
/// `payload_len` bytes: hash this, then the payload, to get what a COSE_Sign1 signs.
pub fn sig_structure_prefix(protected: &[u8], payload_len: u64) -> Vec<u8> {
    let mut v = head(4, 4);
    v.extend(tstr("Signature1"));
    v.extend(bstr(protected));
    v.extend(bstr(&[]));
    v.extend(head(2, payload_len));
    v
}

/// A tagged COSE_Sign1 with a detached payload (nil). `kid` and `x5chain` go into the
/// unprotected header (left out when empty); an x5chain of one certificate is a bstr, of more
/// an array (RFC 9360 §2).
pub fn sign1_detached(
    protected: &[u8],
    kid: &[u8],
    x5chain: &[Vec<u8>],
    signature: &[u8],
) -> Vec<u8> {
    let mut unprotected = Vec::new();
    let mut entries = 0u64;
    if !kid.is_empty() {
        entries += 1;
        unprotected.extend(int(LABEL_KID as i64));
        unprotected.extend(bstr(kid));
    }
    if !x5chain.is_empty() {
        entries += 1;
        unprotected.extend(int(LABEL_X5CHAIN as i64));
        if let [one] = x5chain {
            unprotected.extend(bstr(one));
        } else {
            unprotected.extend(head(4, x5chain.len() as u64));
            for c in x5chain {
                unprotected.extend(bstr(c));
            }
        }
    }
    let mut v = head(6, TAG_SIGN1);
    v.extend(head(4, 4));
    v.extend(bstr(protected));
    v.extend(head(5, entries));
    v.extend(unprotected);
    v.push(0xf6); // nil: the payload is detached
    v.extend(bstr(signature));
    v
}

/// Converts a DER `Ecdsa-Sig-Value` to COSE's `r || s`, each `size` bytes big-endian.
pub fn ecdsa_der_to_fixed(der: &[u8], size: usize) -> Result<Vec<u8>, CoseError> {
    crate::der::ecdsa_der_to_fixed(der, size).map_err(|_| CoseError::BadEcdsaSignature(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms() {
        assert_eq!(protected_header(CoseAlg::Es256), [0xa1, 0x01, 0x26]);
        assert_eq!(protected_header(CoseAlg::Es384), [0xa1, 0x01, 0x38, 0x22]);
        assert_eq!(protected_header(CoseAlg::Ps256), [0xa1, 0x01, 0x38, 0x24]);
        assert_eq!(CoseAlg::parse("es384").unwrap(), CoseAlg::Es384);
        assert!(CoseAlg::parse("RS256").is_err());
        assert_eq!(
            CoseAlg::for_key(KeyAlgorithm::P256, HashAlg::Sha256).unwrap(),
            (CoseAlg::Es256, SignatureScheme::EcdsaSha256, Some(32))
        );
        assert_eq!(
            CoseAlg::for_key(KeyAlgorithm::P384, HashAlg::Sha384)
                .unwrap()
                .0,
            CoseAlg::Es384
        );
        assert!(matches!(
            CoseAlg::for_key(KeyAlgorithm::P384, HashAlg::Sha256),
            Err(CoseError::HashMismatch { .. })
        ));
        assert_eq!(
            CoseAlg::for_key(KeyAlgorithm::Rsa3072, HashAlg::Sha256)
                .unwrap()
                .1,
            SignatureScheme::RsaPssSha256
        );
        assert!(CoseAlg::for_key(KeyAlgorithm::Ed25519, HashAlg::Sha512).is_err());
    }

    #[test]
    fn sig_structure_matches_rfc_layout() {
        let p = protected_header(CoseAlg::Es256);
        let pre = sig_structure_prefix(&p, 3);
        let mut whole = pre.clone();
        whole.extend_from_slice(b"abc");
        let mut expected = vec![0x84, 0x6a];
        expected.extend_from_slice(b"Signature1");
        expected.extend_from_slice(&[0x43, 0xa1, 0x01, 0x26, 0x40, 0x43]);
        expected.extend_from_slice(b"abc");
        assert_eq!(whole, expected);
        // Long payloads get longer heads.
        assert_eq!(&sig_structure_prefix(&p, 300)[17..], &[0x59, 0x01, 0x2c]);
        assert_eq!(
            &sig_structure_prefix(&p, 100_000)[17..],
            &[0x5a, 0x00, 0x01, 0x86, 0xa0]
        );
    }

    #[test]
    fn sign1_layout() {
        let p = protected_header(CoseAlg::Es256);
        let m = sign1_detached(&p, b"fw", &[vec![1, 2], vec![3]], &[9; 64]);
        let mut e = vec![
            0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa2, 0x04, 0x42, b'f', b'w',
        ];
        e.extend_from_slice(&[0x18, 0x21, 0x82, 0x42, 1, 2, 0x41, 3, 0xf6, 0x58, 64]);
        e.extend_from_slice(&[9; 64]);
        assert_eq!(m, e);
        let one = sign1_detached(&p, b"", &[vec![7]], &[1]);
        assert_eq!(
            one,
            [0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa1, 0x18, 0x21, 0x41, 7, 0xf6, 0x41, 1]
        );
    }

    #[test]
    fn ecdsa_fixed_form() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x00;
        raw[1] = 0x85; // r with a leading zero byte and a high bit after it
        raw[32] = 0xff; // s with its high bit set: DER needs a 0x00 pad
        raw[63] = 1;
        let der = crate::spki::ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(ecdsa_der_to_fixed(&der, 32).unwrap(), raw);
        assert!(ecdsa_der_to_fixed(&der, 16).is_err());
        assert!(ecdsa_der_to_fixed(&der[..der.len() - 1], 32).is_err());
        assert!(ecdsa_der_to_fixed(&[0x30, 0x03, 0x02, 0x01, 0x80], 32).is_err());
    }
}
