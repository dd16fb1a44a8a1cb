//! A key pair found in a token, and the [`Signer`] over its private half: ECDSA hashed here and
//! signed raw, RSA and Ed25519 by the token's own mechanisms.

use std::fmt;
use std::sync::Arc;

use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};

use super::session::{PooledSession, Token};
use super::spki::{
    ec_spki, ed25519_spki, rsa_spki, strip_zeros, unwrap_point, EC_PARAMS_EDWARDS25519,
    OID_ED25519, OID_P256, OID_P384,
};
use crate::keys::{ecdsa_raw_to_der, HashAlg, KeyAlgorithm, KeyError, SignatureScheme, Signer};

fn bytes_of(attrs: &[Attribute], t: AttributeType) -> Option<&[u8]> {
    attrs.iter().find_map(|a| match a {
        Attribute::EcParams(v) if t == AttributeType::EcParams => Some(v.as_slice()),
        Attribute::EcPoint(v) if t == AttributeType::EcPoint => Some(v.as_slice()),
        Attribute::Modulus(v) if t == AttributeType::Modulus => Some(v.as_slice()),
        Attribute::PublicExponent(v) if t == AttributeType::PublicExponent => Some(v.as_slice()),
        Attribute::Id(v) if t == AttributeType::Id => Some(v.as_slice()),
        _ => None,
    })
}

/// Reads the key pair whose private half is `handle` and builds the signer.
pub(super) fn load_key(
    token: &Arc<Token>,
    s: &mut PooledSession<'_>,
    handle: ObjectHandle,
    label: &str,
) -> Result<Pkcs11Key, KeyError> {
    let r = s
        .get()
        .get_attributes(handle, &[AttributeType::KeyType, AttributeType::Id]);
    let attrs = s
        .check(r)
        .map_err(|e| token.err(format_args!("reading private key '{label}'"), e))?;
    let key_type = attrs
        .iter()
        .find_map(|a| match a {
            Attribute::KeyType(k) => Some(*k),
            _ => None,
        })
        .ok_or_else(|| {
            KeyError::Pkcs11(format!(
                "token '{}' did not return the key type of '{label}'",
                token.label
            ))
        })?;
    let id = bytes_of(&attrs, AttributeType::Id)
        .unwrap_or_default()
        .to_vec();

    // The public half: same CKA_ID (and key type); by label when the key has no ID.
    let mut template = vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(key_type),
    ];
    if id.is_empty() {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    } else {
        template.push(Attribute::Id(id));
    }
    let r = s.get().find_objects(&template);
    let found = s
        .check(r)
        .map_err(|e| token.err(format_args!("searching for the public key of '{label}'"), e))?;
    let public = match found.as_slice() {
        [one] => *one,
        [] => {
            return Err(KeyError::Pkcs11(format!(
                "token '{}' has no public key object for '{label}' (needed for its \
                 SubjectPublicKeyInfo)",
                token.label
            )))
        }
        more => {
            return Err(KeyError::Pkcs11(format!(
                "token '{}' has {} public key objects matching '{label}'",
                token.label,
                more.len()
            )))
        }
    };

    let wanted: &[AttributeType] = if key_type == KeyType::RSA {
        &[AttributeType::Modulus, AttributeType::PublicExponent]
    } else {
        &[AttributeType::EcParams, AttributeType::EcPoint]
    };
    let r = s.get().get_attributes(public, wanted);
    let attrs = s
        .check(r)
        .map_err(|e| token.err(format_args!("reading the public key of '{label}'"), e))?;
    let need = |t: AttributeType| {
        bytes_of(&attrs, t).ok_or_else(|| {
            KeyError::Pkcs11(format!(
                "token '{}' did not return {t:?} of public key '{label}'",
                token.label
            ))
        })
    };
    let unsupported = |what: String| {
        KeyError::Unsupported(format!(
            "key '{label}' in token '{}' is {what}, which hallmark does not use",
            token.label
        ))
    };

    let (alg, spki) = if key_type == KeyType::RSA {
        let modulus = strip_zeros(need(AttributeType::Modulus)?);
        let exponent = need(AttributeType::PublicExponent)?;
        let bits = modulus
            .first()
            .map(|b| modulus.len() * 8 - b.leading_zeros() as usize)
            .unwrap_or(0);
        let alg = match bits {
            3072 => KeyAlgorithm::Rsa3072,
            4096 => KeyAlgorithm::Rsa4096,
            n => return Err(unsupported(format!("a {n}-bit RSA key"))),
        };
        (alg, rsa_spki(modulus, exponent)?)
    } else if key_type == KeyType::EC {
        let params = need(AttributeType::EcParams)?;
        let (alg, curve, point_len) = if params == OID_P256 {
            (KeyAlgorithm::P256, OID_P256, 65)
        } else if params == OID_P384 {
            (KeyAlgorithm::P384, OID_P384, 97)
        } else {
            return Err(unsupported(format!(
                "an EC key on curve parameters {}",
                hex::encode(params)
            )));
        };
        let point = unwrap_point(need(AttributeType::EcPoint)?, point_len)
            .filter(|p| p.first() == Some(&0x04))
            .ok_or_else(|| {
                KeyError::Pkcs11(format!(
                    "CKA_EC_POINT of '{label}' is not an uncompressed {alg} point"
                ))
            })?;
        (alg, ec_spki(curve, point)?)
    } else if key_type == KeyType::EC_EDWARDS {
        let params = need(AttributeType::EcParams)?;
        if params != EC_PARAMS_EDWARDS25519 && params != OID_ED25519 {
            return Err(unsupported(format!(
                "an Edwards key on curve parameters {}",
                hex::encode(params)
            )));
        }
        let point = unwrap_point(need(AttributeType::EcPoint)?, 32).ok_or_else(|| {
            KeyError::Pkcs11(format!("CKA_EC_POINT of '{label}' is not an Ed25519 key"))
        })?;
        (KeyAlgorithm::Ed25519, ed25519_spki(point)?)
    } else {
        return Err(unsupported(format!("a key of type {key_type}")));
    };

    Ok(Pkcs11Key {
        token: token.clone(),
        label: label.to_string(),
        alg,
        spki,
        handle,
    })
}

// ---------------------------------------------------------------------------------------------
// The signer.

/// A private key in a PKCS#11 token.
pub struct Pkcs11Key {
    pub(super) token: Arc<Token>,
    pub(super) label: String,
    pub(super) alg: KeyAlgorithm,
    pub(super) spki: Vec<u8>,
    pub(super) handle: ObjectHandle,
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("token", &self.token.label)
            .field("label", &self.label)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn pss(hash: HashAlg) -> Result<PkcsPssParams, KeyError> {
    let (hash_alg, mgf) = match hash {
        HashAlg::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        HashAlg::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        HashAlg::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
    };
    let s_len = cryptoki::types::Ulong::try_from(hash.output_len())
        .map_err(|e| KeyError::Pkcs11(format!("PSS salt length: {e}")))?;
    Ok(PkcsPssParams {
        hash_alg,
        mgf,
        s_len,
    })
}

/// RFC 3986 percent-encoding of everything but unreserved characters (RFC 7512 `pk11-pchar`).
fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Signer for Pkcs11Key {
    fn label(&self) -> &str {
        &self.label
    }

    fn algorithm(&self) -> KeyAlgorithm {
        self.alg
    }

    fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    fn uri(&self) -> String {
        format!(
            "pkcs11:token={};object={};type=private",
            pct(&self.token.label),
            pct(&self.label)
        )
    }

    fn sign(&self, scheme: SignatureScheme, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        use SignatureScheme as S;
        if !self.alg.supports(scheme) {
            return Err(KeyError::Unsupported(format!(
                "a {} key in a PKCS#11 token cannot sign with {scheme:?}",
                self.alg
            )));
        }
        let mut input = msg;
        let digest;
        let mechanism = match scheme {
            S::EcdsaSha256 | S::EcdsaSha384 | S::EcdsaSha512 => {
                let hash = scheme
                    .hash()
                    .ok_or_else(|| KeyError::Unsupported(format!("{scheme:?} names no hash")))?;
                digest = hash.digest(msg);
                input = &digest;
                Mechanism::Ecdsa
            }
            S::RsaPkcs1Sha256 => Mechanism::Sha256RsaPkcs,
            S::RsaPkcs1Sha384 => Mechanism::Sha384RsaPkcs,
            S::RsaPkcs1Sha512 => Mechanism::Sha512RsaPkcs,
            S::RsaPssSha256 => Mechanism::Sha256RsaPkcsPss(pss(HashAlg::Sha256)?),
            S::RsaPssSha384 => Mechanism::Sha384RsaPkcsPss(pss(HashAlg::Sha384)?),
            S::RsaPssSha512 => Mechanism::Sha512RsaPkcsPss(pss(HashAlg::Sha512)?),
            S::Ed25519 => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
        };

        self.sign_with(scheme, &mechanism, input)
    }

    fn sign_digest(&self, scheme: SignatureScheme, digest: &[u8]) -> Result<Vec<u8>, KeyError> {
        use SignatureScheme as S;
        let hash = crate::keys::check_digest(self.alg, scheme, digest)?;
        let mut input = digest.to_vec();
        let mechanism = match scheme {
            // The token truncates or uses the digest as ECDSA's integer itself.
            S::EcdsaSha256 | S::EcdsaSha384 | S::EcdsaSha512 => Mechanism::Ecdsa,
            S::RsaPkcs1Sha256 | S::RsaPkcs1Sha384 | S::RsaPkcs1Sha512 => {
                // Raw PKCS#1 v1.5 wants the DigestInfo; the token adds only the padding.
                input = [digest_info_prefix(hash), digest].concat();
                Mechanism::RsaPkcs
            }
            S::RsaPssSha256 | S::RsaPssSha384 | S::RsaPssSha512 => {
                Mechanism::RsaPkcsPss(pss(hash)?)
            }
            S::Ed25519 => {
                return Err(KeyError::Unsupported(format!(
                    "Ed25519 key '{}' signs whole messages and cannot sign a digest",
                    self.label
                )))
            }
        };
        self.sign_with(scheme, &mechanism, &input)
    }
}

/// The DER `DigestInfo` header before a digest of `hash` (RFC 8017 §9.2, note 1).
fn digest_info_prefix(hash: HashAlg) -> &'static [u8] {
    match hash {
        HashAlg::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        HashAlg::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        HashAlg::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    }
}

impl Pkcs11Key {
    /// One C_Sign with `mechanism`; ECDSA's raw r‖s comes back as DER.
    fn sign_with(
        &self,
        scheme: SignatureScheme,
        mechanism: &Mechanism<'_>,
        input: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        let mut s = self.token.session()?;
        let r = s.get().sign(mechanism, self.handle, input);
        let sig = s.check(r).map_err(|e| {
            self.token.err(
                format_args!("signing with key '{}' ({scheme:?})", self.label),
                e,
            )
        })?;
        drop(s);

        match self.alg {
            KeyAlgorithm::P256 | KeyAlgorithm::P384 => {
                let expected = if self.alg == KeyAlgorithm::P256 {
                    64
                } else {
                    96
                };
                if sig.len() != expected {
                    return Err(KeyError::Pkcs11(format!(
                        "token returned a {}-byte ECDSA signature for {} key '{}' (expected {expected})",
                        sig.len(),
                        self.alg,
                        self.label
                    )));
                }
                ecdsa_raw_to_der(&sig)
            }
            _ => Ok(sig),
        }
    }
}
