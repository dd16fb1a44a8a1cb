//! JWS (RFC 7515, flattened JSON) as ACME uses it (RFC 8555 §6.2): ES256, ES384, RS256 and
//! EdDSA (Ed25519) account keys, checked with aws-lc-rs; JWK thumbprints (RFC 7638).

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{b64, unb64, AcmeError, ProblemType};

/// The algorithms hallmark verifies, as `badSignatureAlgorithm` lists them.
pub const ALGORITHMS: [&str; 4] = ["ES256", "ES384", "RS256", "EdDSA"];

/// An account public key from a JWK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// An uncompressed point (04 ‖ x ‖ y) on P-256 or P-384.
    Ec {
        p384: bool,
        point: Vec<u8>,
    },
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

/// A JWK reduced to its required members (RFC 7638 §3.2), which is also how it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub key: PublicKey,
    canonical: String,
}

fn member<'a>(v: &'a Value, name: &str) -> Result<&'a str, AcmeError> {
    v.get(name).and_then(Value::as_str).ok_or_else(|| {
        AcmeError::new(
            ProblemType::BadPublicKey,
            format!("the JWK has no string member '{name}'"),
        )
    })
}

fn bytes_of(v: &Value, name: &str) -> Result<Vec<u8>, AcmeError> {
    unb64(member(v, name)?).map_err(|_| {
        AcmeError::new(
            ProblemType::BadPublicKey,
            format!("the JWK member '{name}' is not base64url"),
        )
    })
}

impl Jwk {
    /// Reads a JWK (an object); refuses key types and curves hallmark does not verify.
    pub fn from_json(v: &Value) -> Result<Jwk, AcmeError> {
        let bad = |d: String| AcmeError::new(ProblemType::BadPublicKey, d);
        match member(v, "kty")? {
            "EC" => {
                let crv = member(v, "crv")?;
                let (p384, len) = match crv {
                    "P-256" => (false, 32),
                    "P-384" => (true, 48),
                    other => {
                        return Err(bad(format!(
                            "EC curve '{other}' is not supported (P-256, P-384)"
                        )))
                    }
                };
                let x = bytes_of(v, "x")?;
                let y = bytes_of(v, "y")?;
                if x.len() != len || y.len() != len {
                    return Err(bad(format!("{crv} coordinates must be {len} bytes")));
                }
                let canonical =
                    json!({"crv": crv, "kty": "EC", "x": member(v, "x")?, "y": member(v, "y")?});
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Ok(Jwk {
                    key: PublicKey::Ec { p384, point },
                    canonical: canonical.to_string(),
                })
            }
            "RSA" => {
                let n = bytes_of(v, "n")?;
                let e = bytes_of(v, "e")?;
                let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
                if !(2048..=8192).contains(&bits) {
                    return Err(bad(format!(
                        "RSA keys must be 2048 to 8192 bits (this one: about {bits})"
                    )));
                }
                let canonical = json!({"e": member(v, "e")?, "kty": "RSA", "n": member(v, "n")?});
                Ok(Jwk {
                    key: PublicKey::Rsa { n, e },
                    canonical: canonical.to_string(),
                })
            }
            "OKP" => {
                let crv = member(v, "crv")?;
                if crv != "Ed25519" {
                    return Err(bad(format!("OKP curve '{crv}' is not supported (Ed25519)")));
                }
                let x = bytes_of(v, "x")?;
                if x.len() != 32 {
                    return Err(bad("Ed25519 keys are 32 bytes".into()));
                }
                let canonical = json!({"crv": "Ed25519", "kty": "OKP", "x": member(v, "x")?});
                Ok(Jwk {
                    key: PublicKey::Ed25519(x),
                    canonical: canonical.to_string(),
                })
            }
            other => Err(bad(format!(
                "key type '{other}' is not supported (EC, RSA, OKP)"
            ))),
        }
    }

    /// Parses a stored JWK.
    pub fn from_stored(text: &str) -> Result<Jwk, AcmeError> {
        let v: Value = serde_json::from_str(text).map_err(|_| AcmeError::internal())?;
        Jwk::from_json(&v)
    }

    /// The canonical JSON (required members, sorted, no whitespace).
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url.
    pub fn thumbprint(&self) -> String {
        b64(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.canonical.as_bytes())
                .as_ref(),
        )
    }

    /// The JWS `alg` this key signs with.
    pub fn alg(&self) -> &'static str {
        match self.key {
            PublicKey::Ec { p384: false, .. } => "ES256",
            PublicKey::Ec { p384: true, .. } => "ES384",
            PublicKey::Rsa { .. } => "RS256",
            PublicKey::Ed25519(_) => "EdDSA",
        }
    }

    /// Verifies `sig` over `msg` with `alg`, which must be this key's algorithm.
    pub fn verify(&self, alg: &str, msg: &[u8], sig: &[u8]) -> Result<(), AcmeError> {
        if alg != self.alg() {
            return Err(bad_alg(format!(
                "alg '{alg}' does not match the key (which signs with {})",
                self.alg()
            )));
        }
        let ok = match &self.key {
            PublicKey::Ec { p384, point } => {
                let a = if *p384 {
                    &signature::ECDSA_P384_SHA384_FIXED
                } else {
                    &signature::ECDSA_P256_SHA256_FIXED
                };
                UnparsedPublicKey::new(a, point).verify(msg, sig).is_ok()
            }
            PublicKey::Rsa { n, e } => signature::RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, msg, sig)
                .is_ok(),
            PublicKey::Ed25519(x) => UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(msg, sig)
                .is_ok(),
        };
        if ok {
            Ok(())
        } else {
            Err(AcmeError::malformed(
                "JWS verification error: the signature does not verify with the key",
            ))
        }
    }
}

fn bad_alg(detail: String) -> AcmeError {
    AcmeError {
        kind: ProblemType::BadSignatureAlgorithm,
        detail,
        extra: Some(json!({"algorithms": ALGORITHMS})),
        status: None,
    }
}

#[derive(Deserialize)]
struct Flattened {
    protected: String,
    payload: String,
    signature: String,
    /// An unprotected header is not allowed in ACME (RFC 8555 §6.2).
    header: Option<Value>,
}

/// The protected header of an ACME JWS.
#[derive(Debug, Clone)]
pub struct Protected {
    pub alg: String,
    pub nonce: Option<String>,
    pub url: Option<String>,
    pub jwk: Option<Value>,
    pub kid: Option<String>,
}

/// A parsed (not yet verified) JWS.
#[derive(Debug, Clone)]
pub struct Jws {
    pub protected: Protected,
    /// The decoded payload; empty for POST-as-GET.
    pub payload: Vec<u8>,
    /// The payload as sent (base64url), for EAB comparisons.
    pub payload_b64: String,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

impl Jws {
    /// Parses a flattened JWS (RFC 7515 §7.2.2) from a request body.
    pub fn parse(body: &[u8]) -> Result<Jws, AcmeError> {
        let f: Flattened = serde_json::from_slice(body)
            .map_err(|e| AcmeError::malformed(format!("the body is not a flattened JWS: {e}")))?;
        if f.header.is_some() {
            return Err(AcmeError::malformed(
                "unprotected JWS headers are not allowed",
            ));
        }
        Jws::from_parts(&f.protected, &f.payload, &f.signature)
    }

    /// Parses a JWS given as a JSON value (EAB, keyChange's inner JWS).
    pub fn from_value(v: &Value) -> Result<Jws, AcmeError> {
        let f: Flattened = serde_json::from_value(v.clone()).map_err(|e| {
            AcmeError::malformed(format!("an inner value is not a flattened JWS: {e}"))
        })?;
        if f.header.is_some() {
            return Err(AcmeError::malformed(
                "unprotected JWS headers are not allowed",
            ));
        }
        Jws::from_parts(&f.protected, &f.payload, &f.signature)
    }

    fn from_parts(protected: &str, payload: &str, signature: &str) -> Result<Jws, AcmeError> {
        let header: Value = serde_json::from_slice(&unb64(protected)?)
            .map_err(|_| AcmeError::malformed("the protected header is not JSON"))?;
        let s = |k: &str| header.get(k).and_then(Value::as_str).map(str::to_string);
        let alg =
            s("alg").ok_or_else(|| AcmeError::malformed("the protected header has no 'alg'"))?;
        let protected_h = Protected {
            alg,
            nonce: s("nonce"),
            url: s("url"),
            jwk: header.get("jwk").cloned(),
            kid: s("kid"),
        };
        if protected_h.jwk.is_some() && protected_h.kid.is_some() {
            return Err(AcmeError::malformed(
                "the protected header has both 'jwk' and 'kid'",
            ));
        }
        let mut signing_input = protected.as_bytes().to_vec();
        signing_input.push(b'.');
        signing_input.extend_from_slice(payload.as_bytes());
        Ok(Jws {
            protected: protected_h,
            payload: unb64(payload)?,
            payload_b64: payload.to_string(),
            signing_input,
            signature: unb64(signature)?,
        })
    }

    /// Checks the signature with an account key; the `alg` must be one hallmark supports.
    pub fn verify(&self, key: &Jwk) -> Result<(), AcmeError> {
        if !ALGORITHMS.contains(&self.protected.alg.as_str()) {
            return Err(bad_alg(format!(
                "alg '{}' is not supported",
                self.protected.alg
            )));
        }
        key.verify(&self.protected.alg, &self.signing_input, &self.signature)
    }

    /// Checks an HMAC signature (external account binding: HS256, HS384, HS512).
    pub fn verify_hmac(&self, key: &[u8]) -> Result<(), AcmeError> {
        use aws_lc_rs::hmac;
        let alg = match self.protected.alg.as_str() {
            "HS256" => hmac::HMAC_SHA256,
            "HS384" => hmac::HMAC_SHA384,
            "HS512" => hmac::HMAC_SHA512,
            other => {
                return Err(AcmeError::malformed(format!(
                    "the external account binding uses alg '{other}' (HS256, HS384 or HS512)"
                )))
            }
        };
        hmac::verify(
            &hmac::Key::new(alg, key),
            &self.signing_input,
            &self.signature,
        )
        .map_err(|_| AcmeError::unauthorized("the external account binding's MAC does not verify"))
    }

    /// The payload as JSON; an empty payload (POST-as-GET) is `None`.
    pub fn json(&self) -> Result<Option<Value>, AcmeError> {
        if self.payload.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&self.payload)
            .map(Some)
            .map_err(|e| AcmeError::malformed(format!("the JWS payload is not JSON: {e}")))
    }
}
