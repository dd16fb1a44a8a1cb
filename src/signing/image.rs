//! Format `image`: container image signatures. The client sends the signature payload itself
//! (a few hundred bytes of JSON naming the manifest digest and the image's reference), never
//! the image, so the server knows which image it signs, checks the digest it signs against
//! that payload, and records the image's digest and reference with the signature.
//!
//! Two payloads: containers/image "simple signing" (`atomic container signature`, signed as
//! an OpenPGP message: the request also carries the signature packet's hashed trailer, and the
//! digest must be the hash of payload and trailer) and cosign's (`cosign container image
//! signature`, an ECDSA signature over the SHA-256 of the payload).

use super::*;

/// The payload types, named where the client that writes them can see them too.
pub use crate::formats::names::{COSIGN_TYPE, SIMPLE_SIGNING_TYPE};

/// Which signature an image request makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ImageKind {
    /// OpenPGP over the payload; the signature packet's hashed part and trailer.
    Simple { trailer: Vec<u8> },
    /// cosign's: ECDSA or RSA over the payload's SHA-256, Ed25519 over the payload.
    Cosign,
}

/// A checked image request.
#[derive(Debug, Clone)]
pub(super) struct ImageCheck {
    pub(super) payload: Vec<u8>,
    pub(super) kind: ImageKind,
    /// `sha256:HEX`.
    pub(super) manifest_digest: String,
    pub(super) reference: String,
}

impl ImageCheck {
    pub(super) fn kind_name(&self) -> &'static str {
        match self.kind {
            ImageKind::Simple { .. } => "simple-signing",
            ImageKind::Cosign => "cosign",
        }
    }
}

fn bad(m: impl Into<String>) -> Error {
    SigningError::BadContent(m.into()).into()
}

/// Checks an OpenPGP v4 signature's hashed part and trailer for a binary document signature
/// with `hash`: version 4, type 0x00, the hashed subpacket area, then `04 FF` and the length.
fn check_trailer(t: &[u8], hash: HashAlg) -> Result<()> {
    let hash_id = match hash {
        HashAlg::Sha256 => 8,
        HashAlg::Sha384 => 9,
        HashAlg::Sha512 => 10,
    };
    if t.len() < 12 || t.len() > 2048 {
        return Err(bad(
            "openpgp_trailer is not an OpenPGP v4 signature trailer",
        ));
    }
    let hashed = 6 + usize::from(u16::from_be_bytes([t[4], t[5]]));
    let mut end = vec![0x04, 0xFF];
    end.extend_from_slice(&(hashed as u32).to_be_bytes());
    if t[0] != 4 || t.len() != hashed + 6 || t[hashed..] != end[..] {
        return Err(bad(
            "openpgp_trailer is not an OpenPGP v4 signature trailer",
        ));
    }
    if t[1] != 0x00 {
        return Err(bad(
            "openpgp_trailer: an image signature is a binary document signature (type 0x00)",
        ));
    }
    if t[3] != hash_id {
        return Err(bad(
            "openpgp_trailer names another hash algorithm than digest_algorithm",
        ));
    }
    Ok(())
}

/// Checks an image request: the payload (`content`, base64), its type and fields, and that
/// `digest` is the hash of what gets signed.
pub(super) fn check_image(req: &SignRequest, hash: HashAlg, digest: &[u8]) -> Result<ImageCheck> {
    use base64::Engine as _;
    if req.content_type.is_some() {
        return Err(bad(
            "format image takes no content_type: the payload's own type says which signature",
        ));
    }
    let b64 = req.content.as_deref().ok_or_else(|| {
        bad("format image needs content: the signature payload (base64 of its JSON)")
    })?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| bad("content must be base64 (standard alphabet)"))?;
    if payload.len() > MAX_CONTENT_BYTES {
        return Err(bad(format!(
            "content is larger than {MAX_CONTENT_BYTES} bytes ({} bytes)",
            payload.len()
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(&payload)
        .map_err(|e| bad(format!("the image signature payload is not JSON: {e}")))?;
    let critical = &v["critical"];
    let typ = critical["type"].as_str().unwrap_or_default();
    let manifest_digest = critical["image"]["docker-manifest-digest"]
        .as_str()
        .unwrap_or_default();
    let hex_ok = manifest_digest.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    if !hex_ok {
        return Err(bad(
            "the payload's critical.image.docker-manifest-digest must be sha256:HEX (64 lower-case digits)",
        ));
    }
    let reference = critical["identity"]["docker-reference"]
        .as_str()
        .unwrap_or_default();
    if reference.is_empty() || reference.len() > 1024 || reference.chars().any(char::is_control) {
        return Err(bad(
            "the payload's critical.identity.docker-reference must name the image (REGISTRY/REPO[:TAG])",
        ));
    }
    let trailer = match req.openpgp_trailer.as_deref() {
        Some(t) => Some(hex::decode(t.trim()).map_err(|_| bad("openpgp_trailer must be hex"))?),
        None => None,
    };
    let (kind, signed) = match (typ, trailer) {
        (SIMPLE_SIGNING_TYPE, Some(t)) => {
            check_trailer(&t, hash)?;
            let mut all = payload.clone();
            all.extend_from_slice(&t);
            (ImageKind::Simple { trailer: t }, all)
        }
        (SIMPLE_SIGNING_TYPE, None) => {
            return Err(bad(
                "a simple-signing payload is signed as OpenPGP: send openpgp_trailer too",
            ))
        }
        (COSIGN_TYPE, None) => (ImageKind::Cosign, payload.clone()),
        (COSIGN_TYPE, Some(_)) => {
            return Err(bad("a cosign payload is signed without an OpenPGP trailer"))
        }
        (other, _) => {
            return Err(bad(format!(
                "the payload's critical.type '{other}' is neither '{SIMPLE_SIGNING_TYPE}' nor '{COSIGN_TYPE}'"
            )))
        }
    };
    if hash.digest(&signed) != digest {
        return Err(bad(format!(
            "the digest is not the {} of the image signature payload{}",
            digest_algorithm_name(hash),
            if matches!(kind, ImageKind::Simple { .. }) {
                " and its OpenPGP trailer"
            } else {
                ""
            }
        )));
    }
    Ok(ImageCheck {
        payload,
        kind,
        manifest_digest: manifest_digest.to_string(),
        reference: reference.to_string(),
    })
}
