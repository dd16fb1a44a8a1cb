//! The objects the token shows for each exposed key: its private key (sign only, sensitive,
//! never extractable: it stays in the server's HSM), its public key and its certificate, all
//! sharing one CKA_ID, and the chain's CA certificates as authority certificates, ending with
//! the root the module's settings trust (CKA_TRUSTED). Built from the server's key document
//! (`GET /api/v1/keys/{label}`); attributes encoded as PKCS#11 reads them (CK_ULONG native,
//! CK_BBOOL one byte, DER for names and EC parameters).

use cryptoki_sys::*;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

/// What kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// An EC key whose field is this many bytes (32 for P-256, 48 for P-384).
    Ec(usize),
    /// An RSA key whose modulus is this many bytes.
    Rsa(usize),
}

/// One exposed key, as the server describes it.
#[derive(Debug, Clone)]
pub struct Key {
    pub label: String,
    pub kind: KeyKind,
    pub cert: Vec<u8>,
    pub chain: Vec<Vec<u8>>,
    /// Which certificate of `chain` is the root the module's settings trust (`ca`, or the
    /// client profile's root): CKA_TRUSTED, so tools that take trust from the token (Java's
    /// SunPKCS11 key store, as jarsigner checks the signer's path) find their anchor here.
    pub trusted: Option<usize>,
    /// CKA_EC_PARAMS (the curve's OID, DER) and CKA_EC_POINT (OCTET STRING of the point).
    ec: Option<(Vec<u8>, Vec<u8>)>,
    /// CKA_MODULUS and CKA_PUBLIC_EXPONENT.
    rsa: Option<(Vec<u8>, Vec<u8>)>,
    subject: Vec<u8>,
    issuer: Vec<u8>,
    serial: Vec<u8>,
}

fn der_len(n: usize) -> Vec<u8> {
    if n < 0x80 {
        vec![n as u8]
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        let mut v = vec![0x80 | bytes.len() as u8];
        v.extend(bytes);
        v
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend(der_len(content.len()));
    v.extend_from_slice(content);
    v
}

impl Key {
    /// The key from its certificate (DER) and chain.
    pub fn new(label: &str, cert: Vec<u8>, chain: Vec<Vec<u8>>) -> Result<Key, String> {
        let (_, c) = X509Certificate::from_der(&cert)
            .map_err(|e| format!("key '{label}': its certificate does not parse: {e}"))?;
        let spki = c.public_key();
        let (kind, ec, rsa) = match spki.parsed() {
            Ok(PublicKey::EC(point)) => {
                let params = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .ok_or_else(|| format!("key '{label}': no named curve"))?;
                let oid_der = tlv(0x06, params.as_bytes());
                let field = (point.data().len().saturating_sub(1)) / 2;
                (
                    KeyKind::Ec(field),
                    Some((oid_der, tlv(0x04, point.data()))),
                    None,
                )
            }
            Ok(PublicKey::RSA(r)) => {
                let modulus: Vec<u8> = r.modulus.iter().copied().skip_while(|b| *b == 0).collect();
                let exponent: Vec<u8> =
                    r.exponent.iter().copied().skip_while(|b| *b == 0).collect();
                (KeyKind::Rsa(modulus.len()), None, Some((modulus, exponent)))
            }
            _ => return Err(format!("key '{label}': neither EC nor RSA")),
        };
        Ok(Key {
            label: label.to_string(),
            kind,
            subject: c.subject().as_raw().to_vec(),
            issuer: c.issuer().as_raw().to_vec(),
            serial: tlv(0x02, c.raw_serial()),
            ec,
            rsa,
            cert,
            chain,
            trusted: None,
        })
    }

    /// Adds the root the settings trust (DER) to the chain, when the chain leads to it, and
    /// marks it CKA_TRUSTED.
    pub fn with_root(mut self, root: &[u8]) -> Key {
        let Ok((_, r)) = X509Certificate::from_der(root) else {
            return self;
        };
        if r.subject().as_raw() != r.issuer().as_raw() {
            return self;
        }
        if let Some(j) = self.chain.iter().position(|c| c.as_slice() == root) {
            self.trusted = Some(j);
            return self;
        }
        let last = self.chain.last().unwrap_or(&self.cert);
        let issued_by_root = X509Certificate::from_der(last)
            .map(|(_, c)| c.issuer().as_raw() == r.subject().as_raw())
            .unwrap_or(false);
        if issued_by_root && self.chain.len() < 100 {
            self.chain.push(root.to_vec());
            self.trusted = Some(self.chain.len() - 1);
        }
        self
    }

    /// The signature's length: `r || s` for ECDSA, the modulus for RSA.
    pub fn signature_len(&self) -> usize {
        match self.kind {
            KeyKind::Ec(n) => 2 * n,
            KeyKind::Rsa(n) => n,
        }
    }
}

/// What one object handle names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    Private(usize),
    Public(usize),
    Certificate(usize),
    /// A CA certificate of key `.0`'s chain, `.1`-th.
    Authority(usize, usize),
}

/// Object handles: key `i`'s private, public and certificate objects are 3i+1, 3i+2, 3i+3;
/// its chain's certificates 100000 + 100i + j.
pub fn handle_of(o: Object) -> CK_OBJECT_HANDLE {
    let h = match o {
        Object::Private(i) => 3 * i + 1,
        Object::Public(i) => 3 * i + 2,
        Object::Certificate(i) => 3 * i + 3,
        Object::Authority(i, j) => 100_000 + 100 * i + j,
    };
    h as CK_OBJECT_HANDLE
}

pub fn object_of(h: CK_OBJECT_HANDLE, keys: &[Key]) -> Option<Object> {
    let h = usize::try_from(h).ok()?;
    let o = if h >= 100_000 {
        let (i, j) = ((h - 100_000) / 100, (h - 100_000) % 100);
        (j < keys.get(i)?.chain.len()).then_some(Object::Authority(i, j))?
    } else if h >= 1 {
        let i = (h - 1) / 3;
        keys.get(i)?;
        match (h - 1) % 3 {
            0 => Object::Private(i),
            1 => Object::Public(i),
            _ => Object::Certificate(i),
        }
    } else {
        return None;
    };
    Some(o)
}

/// Every object, in handle order (private keys only when `logged_in`).
pub fn all(keys: &[Key], logged_in: bool) -> Vec<Object> {
    let mut v = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        if logged_in {
            v.push(Object::Private(i));
        }
        v.push(Object::Public(i));
        v.push(Object::Certificate(i));
        for j in 0..k.chain.len().min(100) {
            v.push(Object::Authority(i, j));
        }
    }
    v
}

/// An attribute's value, or why there is none.
pub enum Value {
    Bytes(Vec<u8>),
    Sensitive,
    Invalid,
}

fn ulong(v: CK_ULONG) -> Value {
    Value::Bytes(v.to_ne_bytes().to_vec())
}

fn bool_(b: bool) -> Value {
    Value::Bytes(vec![if b { CK_TRUE } else { CK_FALSE }])
}

/// Attribute `t` of object `o`. A private key is a private object (CKA_PRIVATE) only where
/// the token needs a login: with the credential in the module's settings it is usable from a
/// public session, so it is not private (PKCS#11 2.40 §4.4).
pub fn attribute(keys: &[Key], o: Object, t: CK_ATTRIBUTE_TYPE, login_required: bool) -> Value {
    let (i, is_ca) = match o {
        Object::Private(i) | Object::Public(i) | Object::Certificate(i) => (i, None),
        Object::Authority(i, j) => (i, Some(j)),
    };
    let Some(k) = keys.get(i) else {
        return Value::Invalid;
    };
    let id = k.label.as_bytes().to_vec();
    // Common to every object.
    match t {
        CKA_TOKEN => return bool_(true),
        CKA_MODIFIABLE | CKA_COPYABLE | CKA_DESTROYABLE => return bool_(false),
        CKA_PRIVATE => return bool_(login_required && matches!(o, Object::Private(_))),
        _ => {}
    }
    match o {
        Object::Certificate(_) | Object::Authority(..) => {
            let der = match is_ca {
                Some(j) => k.chain[j].clone(),
                None => k.cert.clone(),
            };
            let parsed = X509Certificate::from_der(&der).ok().map(|(_, c)| {
                (
                    c.subject().as_raw().to_vec(),
                    c.issuer().as_raw().to_vec(),
                    tlv(0x02, c.raw_serial()),
                )
            });
            let (subject, issuer, serial) = match (is_ca, parsed) {
                (None, _) => (k.subject.clone(), k.issuer.clone(), k.serial.clone()),
                (Some(_), Some(p)) => p,
                (Some(_), None) => return Value::Invalid,
            };
            match t {
                CKA_CLASS => ulong(CKO_CERTIFICATE),
                CKA_CERTIFICATE_TYPE => ulong(CKC_X_509),
                CKA_LABEL => Value::Bytes(match is_ca {
                    Some(j) => format!("{} CA {}", k.label, j + 1).into_bytes(),
                    None => k.label.clone().into_bytes(),
                }),
                CKA_ID => Value::Bytes(match is_ca {
                    Some(j) => format!("{}-ca-{}", k.label, j + 1).into_bytes(),
                    None => id,
                }),
                CKA_VALUE => Value::Bytes(der),
                CKA_SUBJECT => Value::Bytes(subject),
                CKA_ISSUER => Value::Bytes(issuer),
                CKA_SERIAL_NUMBER => Value::Bytes(serial),
                CKA_TRUSTED => bool_(is_ca.is_some() && is_ca == k.trusted),
                CKA_CERTIFICATE_CATEGORY => ulong(if is_ca.is_some() { 2 } else { 1 }),
                _ => Value::Invalid,
            }
        }
        Object::Private(_) | Object::Public(_) => {
            let private = matches!(o, Object::Private(_));
            let key_type = match k.kind {
                KeyKind::Ec(_) => CKK_EC,
                KeyKind::Rsa(_) => CKK_RSA,
            };
            match t {
                CKA_CLASS => ulong(if private {
                    CKO_PRIVATE_KEY
                } else {
                    CKO_PUBLIC_KEY
                }),
                CKA_KEY_TYPE => ulong(key_type),
                CKA_LABEL => Value::Bytes(k.label.clone().into_bytes()),
                CKA_ID => Value::Bytes(id),
                CKA_SUBJECT => Value::Bytes(k.subject.clone()),
                CKA_LOCAL
                | CKA_DERIVE
                | CKA_ENCRYPT
                | CKA_DECRYPT
                | CKA_WRAP
                | CKA_UNWRAP
                | CKA_SIGN_RECOVER
                | CKA_VERIFY_RECOVER
                | CKA_ALWAYS_AUTHENTICATE
                | CKA_WRAP_WITH_TRUSTED => bool_(false),
                CKA_SIGN => bool_(private),
                CKA_VERIFY => bool_(!private),
                CKA_SENSITIVE | CKA_ALWAYS_SENSITIVE | CKA_NEVER_EXTRACTABLE if private => {
                    bool_(true)
                }
                CKA_EXTRACTABLE if private => bool_(false),
                CKA_EC_PARAMS => match &k.ec {
                    Some((params, _)) => Value::Bytes(params.clone()),
                    None => Value::Invalid,
                },
                CKA_EC_POINT => match &k.ec {
                    Some((_, point)) => Value::Bytes(point.clone()),
                    None => Value::Invalid,
                },
                CKA_MODULUS => match &k.rsa {
                    Some((m, _)) => Value::Bytes(m.clone()),
                    None => Value::Invalid,
                },
                CKA_PUBLIC_EXPONENT => match &k.rsa {
                    Some((_, e)) => Value::Bytes(e.clone()),
                    None => Value::Invalid,
                },
                CKA_MODULUS_BITS => match k.kind {
                    KeyKind::Rsa(n) => ulong((n * 8) as CK_ULONG),
                    KeyKind::Ec(_) => Value::Invalid,
                },
                CKA_VALUE | CKA_PRIVATE_EXPONENT | CKA_PRIME_1 | CKA_PRIME_2 | CKA_EXPONENT_1
                | CKA_EXPONENT_2 | CKA_COEFFICIENT
                    if private =>
                {
                    Value::Sensitive
                }
                _ => Value::Invalid,
            }
        }
    }
}
