//! Mechanisms and the one server call a signature is: which digest a mechanism yields (the
//! caller's, a DigestInfo's unwrapped, or hashed here incrementally: an artifact is never
//! buffered or sent), and `POST /api/v1/signatures` with it — raw for ECDSA and RSA PKCS#1
//! v1.5, `cose_sign1` for RSA-PSS (hash-length salt, MGF1 with the same hash) — waiting while
//! the key's policy asks for approvals. The server's policy decides everything else.

use base64::Engine as _;
use cryptoki_sys::*;
use sha2::Digest as _;

use crate::objects::{Key, KeyKind};

/// The mechanisms offered, with the key kind each needs.
pub const MECHANISMS: &[(CK_MECHANISM_TYPE, bool)] = &[
    (CKM_ECDSA, false),
    (CKM_ECDSA_SHA256, false),
    (CKM_ECDSA_SHA384, false),
    (CKM_ECDSA_SHA512, false),
    (CKM_RSA_PKCS, true),
    (CKM_SHA256_RSA_PKCS, true),
    (CKM_SHA384_RSA_PKCS, true),
    (CKM_SHA512_RSA_PKCS, true),
    (CKM_RSA_PKCS_PSS, true),
    (CKM_SHA256_RSA_PKCS_PSS, true),
    (CKM_SHA384_RSA_PKCS_PSS, true),
    (CKM_SHA512_RSA_PKCS_PSS, true),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn name(self) -> &'static str {
        match self {
            Hash::Sha256 => "sha256",
            Hash::Sha384 => "sha384",
            Hash::Sha512 => "sha512",
        }
    }

    fn len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    fn of_len(n: usize) -> Option<Hash> {
        match n {
            32 => Some(Hash::Sha256),
            48 => Some(Hash::Sha384),
            64 => Some(Hash::Sha512),
            _ => None,
        }
    }

    fn of_mechanism(m: CK_MECHANISM_TYPE) -> Option<Hash> {
        match m {
            CKM_SHA256 => Some(Hash::Sha256),
            CKM_SHA384 => Some(Hash::Sha384),
            CKM_SHA512 => Some(Hash::Sha512),
            _ => None,
        }
    }

    fn mgf(self) -> CK_RSA_PKCS_MGF_TYPE {
        match self {
            Hash::Sha256 => CKG_MGF1_SHA256,
            Hash::Sha384 => CKG_MGF1_SHA384,
            Hash::Sha512 => CKG_MGF1_SHA512,
        }
    }
}

/// A hash in progress.
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn new(h: Hash) -> Hasher {
        match h {
            Hash::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Hash::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            Hash::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// What a mechanism does with the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The data is the digest (CKM_ECDSA).
    Digest,
    /// The data is a DigestInfo (CKM_RSA_PKCS).
    DigestInfo,
    /// The data is the digest of this hash (CKM_RSA_PKCS_PSS).
    DigestOf(Hash),
    /// The data is hashed here.
    Hashed(Hash),
}

/// A signing operation begun with C_SignInit.
pub struct Operation {
    pub key: usize,
    pub input: Input,
    pub pss: bool,
    hasher: Option<Hasher>,
    /// Data of the non-hashing mechanisms (a digest or DigestInfo: small).
    buffer: Vec<u8>,
}

/// PSS parameters as C_SignInit received them.
pub struct PssParams {
    pub hash: CK_MECHANISM_TYPE,
    pub mgf: CK_RSA_PKCS_MGF_TYPE,
    pub salt: CK_ULONG,
}

impl Operation {
    /// Checks a mechanism against the key; `pss` holds the parameters of the PSS mechanisms.
    pub fn new(
        key_index: usize,
        key: &Key,
        mechanism: CK_MECHANISM_TYPE,
        pss: Option<PssParams>,
    ) -> Result<Operation, CK_RV> {
        let rsa = matches!(key.kind, KeyKind::Rsa(_));
        let Some(&(_, needs_rsa)) = MECHANISMS.iter().find(|(m, _)| *m == mechanism) else {
            return Err(CKR_MECHANISM_INVALID);
        };
        if needs_rsa != rsa {
            return Err(CKR_KEY_TYPE_INCONSISTENT);
        }
        let hashed = |h| (Input::Hashed(h), Some(Hasher::new(h)));
        let (input, hasher) = match mechanism {
            CKM_ECDSA => (Input::Digest, None),
            CKM_RSA_PKCS => (Input::DigestInfo, None),
            CKM_ECDSA_SHA256 | CKM_SHA256_RSA_PKCS | CKM_SHA256_RSA_PKCS_PSS => {
                hashed(Hash::Sha256)
            }
            CKM_ECDSA_SHA384 | CKM_SHA384_RSA_PKCS | CKM_SHA384_RSA_PKCS_PSS => {
                hashed(Hash::Sha384)
            }
            CKM_ECDSA_SHA512 | CKM_SHA512_RSA_PKCS | CKM_SHA512_RSA_PKCS_PSS => {
                hashed(Hash::Sha512)
            }
            CKM_RSA_PKCS_PSS => {
                let p = pss.as_ref().ok_or(CKR_MECHANISM_PARAM_INVALID)?;
                let h = Hash::of_mechanism(p.hash).ok_or(CKR_MECHANISM_PARAM_INVALID)?;
                (Input::DigestOf(h), None)
            }
            _ => return Err(CKR_MECHANISM_INVALID),
        };
        let is_pss = matches!(
            mechanism,
            CKM_RSA_PKCS_PSS
                | CKM_SHA256_RSA_PKCS_PSS
                | CKM_SHA384_RSA_PKCS_PSS
                | CKM_SHA512_RSA_PKCS_PSS
        );
        if is_pss {
            // The server's PSS: MGF1 with the message hash, a salt as long as the hash.
            let p = pss.ok_or(CKR_MECHANISM_PARAM_INVALID)?;
            let h = match input {
                Input::Hashed(h) | Input::DigestOf(h) => h,
                _ => return Err(CKR_MECHANISM_PARAM_INVALID),
            };
            if Hash::of_mechanism(p.hash) != Some(h)
                || p.mgf != h.mgf()
                || p.salt as usize != h.len()
            {
                return Err(CKR_MECHANISM_PARAM_INVALID);
            }
        }
        Ok(Operation {
            key: key_index,
            input,
            pss: is_pss,
            hasher,
            buffer: Vec::new(),
        })
    }

    /// C_SignUpdate's part.
    pub fn update(&mut self, data: &[u8]) -> Result<(), CK_RV> {
        match &mut self.hasher {
            Some(h) => h.update(data),
            None => {
                if self.buffer.len() + data.len() > 1024 {
                    return Err(CKR_DATA_LEN_RANGE);
                }
                self.buffer.extend_from_slice(data);
            }
        }
        Ok(())
    }

    /// The digest to sign and its algorithm.
    pub fn digest(self) -> Result<(Hash, Vec<u8>), CK_RV> {
        match (self.input, self.hasher) {
            (Input::Hashed(h), Some(hasher)) => Ok((h, hasher.finish())),
            (Input::Digest, _) => {
                // SHA-1 (20 bytes) and other lengths are refused.
                let h = Hash::of_len(self.buffer.len()).ok_or(CKR_DATA_LEN_RANGE)?;
                Ok((h, self.buffer))
            }
            (Input::DigestOf(h), _) => {
                if self.buffer.len() != h.len() {
                    return Err(CKR_DATA_LEN_RANGE);
                }
                Ok((h, self.buffer))
            }
            (Input::DigestInfo, _) => unwrap_digest_info(&self.buffer).ok_or(CKR_DATA_INVALID),
            _ => Err(CKR_GENERAL_ERROR),
        }
    }
}

/// The DER prefixes of SHA-256/384/512 DigestInfo (RFC 8017 §9.2 note 1).
const DIGEST_INFO: [(Hash, &[u8]); 3] = [
    (
        Hash::Sha256,
        &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
    ),
    (
        Hash::Sha384,
        &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
    ),
    (
        Hash::Sha512,
        &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    ),
];

/// The digest inside a SHA-2 DigestInfo; `None` for anything else (SHA-1's included).
pub fn unwrap_digest_info(data: &[u8]) -> Option<(Hash, Vec<u8>)> {
    DIGEST_INFO.iter().find_map(|(h, prefix)| {
        let rest = data.strip_prefix(*prefix)?;
        (rest.len() == h.len()).then(|| (*h, rest.to_vec()))
    })
}

/// Why the server did not sign, as a PKCS#11 return value.
pub fn refusal(status: u16, problem: &str) -> CK_RV {
    match status {
        401 => CKR_USER_NOT_LOGGED_IN,
        404 => CKR_KEY_HANDLE_INVALID,
        // A key certificate revoked, expired or missing: the key may not sign now.
        409 | 422 if problem.contains("certificate") => CKR_KEY_FUNCTION_NOT_PERMITTED,
        400..=499 => CKR_FUNCTION_REJECTED,
        _ => CKR_DEVICE_ERROR,
    }
}

/// What one signature needs from the module's settings.
pub struct Request<'a> {
    pub client: &'a hallmark_client::client::Client,
    pub key: &'a Key,
    pub metadata: &'a serde_json::Value,
    pub approval_timeout_secs: u64,
    pub poll_secs: u64,
}

/// Signs `digest` on the server, waiting for approvals when the policy asks; the signature as
/// PKCS#11 gives it (ECDSA as `r || s`).
pub fn sign_remote(
    r: &Request<'_>,
    hash: Hash,
    digest: &[u8],
    pss: bool,
) -> Result<Vec<u8>, CK_RV> {
    let format = if pss { "cose_sign1" } else { "raw" };
    let body = serde_json::json!({
        "key": r.key.label,
        "digest": hex::encode(digest),
        "digest_algorithm": hash.name(),
        "format": format,
        "metadata": r.metadata,
    });
    let reply = r
        .client
        .send(
            "POST",
            "/api/v1/signatures",
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .map_err(|e| {
            crate::log(&format!("sign: the server cannot be reached: {e:#}"));
            CKR_DEVICE_ERROR
        })?;
    let v = match reply.status {
        201 => reply.json().map_err(|_| CKR_DEVICE_ERROR)?,
        202 => wait(r, &reply.json().map_err(|_| CKR_DEVICE_ERROR)?)?,
        s => {
            let p = reply.problem();
            crate::log(&format!("sign: refused: {s} {p}"));
            return Err(refusal(s, &p));
        }
    };
    let sig = base64::engine::general_purpose::STANDARD
        .decode(v["signature"].as_str().unwrap_or(""))
        .map_err(|_| CKR_DEVICE_ERROR)?;
    match r.key.kind {
        KeyKind::Ec(n) if !pss => {
            hallmark_client::der::ecdsa_der_to_fixed(&sig, n).map_err(|_| CKR_DEVICE_ERROR)
        }
        _ => Ok(sig),
    }
}

/// Polls a signature request until it is signed, refused, or the wait is over (then it is
/// cancelled: nothing is signed for it afterwards).
fn wait(r: &Request<'_>, accepted: &serde_json::Value) -> Result<serde_json::Value, CK_RV> {
    let id = accepted["request_id"].as_i64().ok_or(CKR_DEVICE_ERROR)?;
    crate::log(&format!(
        "sign: signature request {id} waits for {} approval(s)",
        accepted["approvals_required"]
    ));
    let path = format!("/api/v1/signatures/requests/{id}");
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_secs(r.approval_timeout_secs);
    loop {
        std::thread::sleep(std::time::Duration::from_secs(r.poll_secs));
        let reply = r
            .client
            .send("GET", &path, None, vec![])
            .map_err(|_| CKR_DEVICE_ERROR)?;
        if reply.status != 200 {
            return Err(refusal(reply.status, &reply.problem()));
        }
        let v = reply.json().map_err(|_| CKR_DEVICE_ERROR)?;
        match v["status"].as_str() {
            Some("signed") => return Ok(v),
            Some("pending" | "signing") if std::time::Instant::now() < deadline => continue,
            Some("pending" | "signing") => {
                let _ = r.client.cancel(&path);
                crate::log(&format!(
                    "sign: signature request {id} timed out; cancelled"
                ));
                return Err(CKR_FUNCTION_REJECTED);
            }
            other => {
                crate::log(&format!("sign: signature request {id} ended {other:?}"));
                return Err(CKR_FUNCTION_REJECTED);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_infos() {
        let mut di = DIGEST_INFO[0].1.to_vec();
        di.extend([7u8; 32]);
        assert_eq!(unwrap_digest_info(&di), Some((Hash::Sha256, vec![7u8; 32])));
        di.push(0);
        assert_eq!(unwrap_digest_info(&di), None);
        // SHA-1's DigestInfo is not one.
        let sha1 = [
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ];
        let mut d = sha1.to_vec();
        d.extend([1u8; 20]);
        assert_eq!(unwrap_digest_info(&d), None);
    }
}
