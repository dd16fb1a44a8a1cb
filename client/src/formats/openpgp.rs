//! OpenPGP (RFC 4880 / RFC 9580, version 4) around keys that never leave the key store: the
//! key's certificate (the HSM key as the primary key, its user ID bound by a positive
//! self-certification) and signatures whose final digest, data and hashed trailer together, is
//! signed elsewhere. Packets, armor and the cleartext framework are rPGP's (`pgp`); this file
//! only turns a key store's public key and raw signatures into OpenPGP's forms.
//!
//! The hash is computed where the data is (the client, or the server for a key's own
//! certificate); the [`DigestSigner`] gets only the final digest, as RSA PKCS#1 v1.5 or ECDSA
//! sign it. OpenPGP's EdDSA (the legacy v4 form, algorithm 22) signs that digest as its message,
//! so an Ed25519 key stays digest-only too.

use std::cell::RefCell;
use std::io::Read;

use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, SignedKeyDetails,
};
use pgp::crypto::ecc_curve::ECCCurve;
use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::public_key::PublicKeyAlgorithm;
use pgp::packet::{
    KeyFlags, PubKeyInner, PublicKey, Signature, SignatureConfig, SignatureType, Subpacket,
    SubpacketData, UserId,
};
use pgp::ser::Serialize;
use pgp::types::{
    Fingerprint, KeyDetails, KeyId, KeyVersion, Mpi, PacketHeaderVersion, Password, PublicParams,
    SignatureBytes, SigningKey, Tag, Timestamp,
};

pub use pgp::composed::SignedPublicKey;

use crate::algorithm::{HashAlg, KeyAlgorithm};
use crate::der::read_tlv;

/// Why an OpenPGP object could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum OpenPgpError {
    #[error("{0}")]
    Unsupported(String),
    #[error("OpenPGP: {0}")]
    Packet(String),
    /// The signer refused or failed (its own message, e.g. the server's answer).
    #[error("{0}")]
    Signer(String),
}

type Result<T> = std::result::Result<T, OpenPgpError>;

fn packet(e: impl std::fmt::Display) -> OpenPgpError {
    OpenPgpError::Packet(e.to_string())
}

/// What signs an OpenPGP digest: the key store (for the key's own certificate) or the signing
/// service (for a client). The answer is in the key store's encoding: DER ECDSA, the RSA
/// PKCS#1 v1.5 value, or Ed25519's 64 bytes over `digest` as the message.
pub trait DigestSigner {
    fn sign_digest(&self, hash: HashAlg, digest: &[u8]) -> std::result::Result<Vec<u8>, String>;
}

/// OpenPGP's hash algorithm for ours.
pub fn pgp_hash(h: HashAlg) -> HashAlgorithm {
    match h {
        HashAlg::Sha256 => HashAlgorithm::Sha256,
        HashAlg::Sha384 => HashAlgorithm::Sha384,
        HashAlg::Sha512 => HashAlgorithm::Sha512,
    }
}

/// The hash a key signs with unless told otherwise: the curve's size for ECDSA, SHA-256 for
/// Ed25519, SHA-512 for RSA (what gpg and rpm use with RSA keys).
pub fn default_hash(alg: KeyAlgorithm) -> HashAlg {
    match alg {
        KeyAlgorithm::P256 | KeyAlgorithm::Ed25519 => HashAlg::Sha256,
        KeyAlgorithm::P384 => HashAlg::Sha384,
        KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => HashAlg::Sha512,
    }
}

/// A multiprecision integer as OpenPGP writes it: bit count, then the bytes without leading
/// zeros.
fn mpi(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let v = &bytes[start..];
    let bits = match v.first() {
        Some(&b) => (v.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
        None => 0,
    };
    out.extend_from_slice(&(bits as u16).to_be_bytes());
    out.extend_from_slice(v);
}

/// The OID of a curve as OpenPGP writes it (without the DER tag and length), and its algorithm.
fn curve(alg: KeyAlgorithm) -> Option<(&'static [u8], PublicKeyAlgorithm)> {
    match alg {
        // 1.2.840.10045.3.1.7
        KeyAlgorithm::P256 => Some((
            &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07],
            PublicKeyAlgorithm::ECDSA,
        )),
        // 1.3.132.0.34
        KeyAlgorithm::P384 => Some((&[0x2B, 0x81, 0x04, 0x00, 0x22], PublicKeyAlgorithm::ECDSA)),
        // 1.3.6.1.4.1.11591.15.1 (Ed25519Legacy)
        KeyAlgorithm::Ed25519 => Some((
            &[0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01],
            PublicKeyAlgorithm::EdDSALegacy,
        )),
        KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => None,
    }
}

/// A key store's public key (its SubjectPublicKeyInfo) as an OpenPGP v4 public key packet made
/// at `created` (seconds since the epoch; part of the fingerprint).
pub fn public_key(alg: KeyAlgorithm, spki: &[u8], created: u32) -> Result<PublicKey> {
    let bits = crate::spki::subject_public_key_bits(spki).map_err(packet)?;
    let mut wire = Vec::new();
    let algorithm = match curve(alg) {
        Some((oid, algorithm)) => {
            wire.push(oid.len() as u8);
            wire.extend_from_slice(oid);
            if algorithm == PublicKeyAlgorithm::EdDSALegacy {
                // The native point, prefixed 0x40.
                let mut point = vec![0x40];
                point.extend_from_slice(&bits);
                mpi(&mut wire, &point);
            } else {
                mpi(&mut wire, &bits);
            }
            algorithm
        }
        None => {
            // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
            let bad = || packet("the RSA public key is not an RSAPublicKey");
            let seq = read_tlv(&bits).map_err(|_| bad())?;
            let n = read_tlv(seq.contents).map_err(|_| bad())?;
            let e = read_tlv(n.rest).map_err(|_| bad())?;
            if seq.tag != 0x30 || n.tag != 0x02 || e.tag != 0x02 {
                return Err(bad());
            }
            mpi(&mut wire, n.contents);
            mpi(&mut wire, e.contents);
            PublicKeyAlgorithm::RSA
        }
    };
    let params =
        PublicParams::try_from_reader(algorithm, Some(wire.len()), &wire[..]).map_err(packet)?;
    let inner = PubKeyInner::new(
        KeyVersion::V4,
        algorithm,
        Timestamp::from_secs(created),
        None,
        params,
    )
    .map_err(packet)?;
    PublicKey::from_inner(inner).map_err(packet)
}

/// A key's signatures in OpenPGP's form from the key store's encoding.
fn signature_bytes(alg: KeyAlgorithm, raw: &[u8]) -> Result<SignatureBytes> {
    let m = Mpi::from_slice;
    match alg {
        KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => Ok(SignatureBytes::Mpis(vec![m(raw)])),
        KeyAlgorithm::Ed25519 => {
            if raw.len() != 64 {
                return Err(packet("an Ed25519 signature has 64 bytes"));
            }
            Ok(SignatureBytes::Mpis(vec![m(&raw[..32]), m(&raw[32..])]))
        }
        KeyAlgorithm::P256 | KeyAlgorithm::P384 => {
            // ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }
            let bad = || packet("the ECDSA signature is not DER");
            let seq = read_tlv(raw).map_err(|_| bad())?;
            let r = read_tlv(seq.contents).map_err(|_| bad())?;
            let s = read_tlv(r.rest).map_err(|_| bad())?;
            if seq.tag != 0x30 || r.tag != 0x02 || s.tag != 0x02 {
                return Err(bad());
            }
            Ok(SignatureBytes::Mpis(vec![m(r.contents), m(s.contents)]))
        }
    }
}

/// rPGP's signing key: the public key packet, and a [`DigestSigner`] for the private half. A
/// signer's own error is kept (rPGP's error type cannot carry it) and returned by the callers
/// below instead of rPGP's.
struct Remote<'a> {
    key: &'a PublicKey,
    alg: KeyAlgorithm,
    hash: HashAlg,
    signer: &'a dyn DigestSigner,
    failure: RefCell<Option<String>>,
}

impl std::fmt::Debug for Remote<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote({:?})", self.key.fingerprint())
    }
}

impl KeyDetails for Remote<'_> {
    fn version(&self) -> KeyVersion {
        self.key.version()
    }
    fn legacy_key_id(&self) -> KeyId {
        self.key.legacy_key_id()
    }
    fn fingerprint(&self) -> Fingerprint {
        self.key.fingerprint()
    }
    fn algorithm(&self) -> PublicKeyAlgorithm {
        self.key.algorithm()
    }
    fn created_at(&self) -> Timestamp {
        self.key.created_at()
    }
    fn legacy_v3_expiration_days(&self) -> Option<u16> {
        None
    }
    fn public_params(&self) -> &PublicParams {
        self.key.public_params()
    }
}

impl SigningKey for Remote<'_> {
    fn sign(
        &self,
        _pw: &Password,
        hash: HashAlgorithm,
        digest: &[u8],
    ) -> pgp::errors::Result<SignatureBytes> {
        let ours = [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512]
            .into_iter()
            .find(|h| pgp_hash(*h) == hash);
        let answer = match ours {
            Some(h) => self
                .signer
                .sign_digest(h, digest)
                .and_then(|raw| signature_bytes(self.alg, &raw).map_err(|e| e.to_string())),
            None => Err(format!("hash {hash} is not offered")),
        };
        answer.map_err(|e| {
            *self.failure.borrow_mut() = Some(e);
            pgp::errors::Error::Message {
                message: "the signer failed".into(),
                backtrace: None,
            }
        })
    }

    fn hash_alg(&self) -> HashAlgorithm {
        pgp_hash(self.hash)
    }
}

impl Remote<'_> {
    /// The signer's own failure when there was one, else rPGP's.
    fn error(&self, e: pgp::errors::Error) -> OpenPgpError {
        match self.failure.borrow_mut().take() {
            Some(s) => OpenPgpError::Signer(s),
            None => packet(e),
        }
    }
}

fn remote<'a>(
    key: &'a PublicKey,
    alg: KeyAlgorithm,
    hash: HashAlg,
    signer: &'a dyn DigestSigner,
) -> Remote<'a> {
    Remote {
        key,
        alg,
        hash,
        signer,
        failure: RefCell::new(None),
    }
}

/// The key algorithm of a public key packet as hallmark names it (RSA by its size).
pub fn key_algorithm(key: &PublicKey) -> Result<KeyAlgorithm> {
    match key.public_params() {
        PublicParams::RSA(_) => {
            // The modulus length decides 3072 or 4096.
            let mut wire = Vec::new();
            key.public_params().to_writer(&mut wire).map_err(packet)?;
            let bits = match wire.get(..2) {
                Some(&[a, b]) => u16::from_be_bytes([a, b]),
                _ => 0,
            };
            match bits {
                3072 => Ok(KeyAlgorithm::Rsa3072),
                4096 => Ok(KeyAlgorithm::Rsa4096),
                n => Err(OpenPgpError::Unsupported(format!(
                    "an RSA key of {n} bits is not offered"
                ))),
            }
        }
        PublicParams::ECDSA(p) => match p.curve() {
            ECCCurve::P256 => Ok(KeyAlgorithm::P256),
            ECCCurve::P384 => Ok(KeyAlgorithm::P384),
            other => Err(OpenPgpError::Unsupported(format!(
                "the curve {other} is not offered"
            ))),
        },
        PublicParams::EdDSALegacy(_) => Ok(KeyAlgorithm::Ed25519),
        _ => Err(OpenPgpError::Unsupported(
            "only RSA, ECDSA (P-256, P-384) and EdDSA (Ed25519) keys are offered".into(),
        )),
    }
}

/// Makes a key's OpenPGP certificate: the public key made at `created`, with `uid` bound by a
/// positive certification that names it for certifying and signing and prefers SHA-512,
/// SHA-384 and SHA-256. The self-signature is made by `signer` (the key store).
pub fn certificate(
    alg: KeyAlgorithm,
    spki: &[u8],
    created: u32,
    uid: &str,
    signer: &dyn DigestSigner,
) -> Result<SignedPublicKey> {
    if uid.trim().is_empty() || uid.len() > 1024 || uid.chars().any(char::is_control) {
        return Err(OpenPgpError::Unsupported(
            "the user ID must be one line of text, such as \"Acme Release <release@acme.example>\""
                .into(),
        ));
    }
    let key = public_key(alg, spki, created)?;
    let user = UserId::from_str(PacketHeaderVersion::New, uid).map_err(packet)?;
    let hash = default_hash(alg);
    let r = remote(&key, alg, hash, signer);
    let mut flags = KeyFlags::default();
    flags.set_certify(true);
    flags.set_sign(true);
    let mut config =
        SignatureConfig::v4(SignatureType::CertPositive, key.algorithm(), r.hash_alg());
    let sub = |d| Subpacket::regular(d).map_err(packet);
    config.hashed_subpackets = vec![
        sub(SubpacketData::SignatureCreationTime(Timestamp::from_secs(
            created,
        )))?,
        sub(SubpacketData::KeyFlags(flags))?,
        sub(SubpacketData::PreferredHashAlgorithms(
            [
                HashAlgorithm::Sha512,
                HashAlgorithm::Sha384,
                HashAlgorithm::Sha256,
            ]
            .into_iter()
            .collect(),
        ))?,
        sub(SubpacketData::IssuerFingerprint(key.fingerprint()))?,
    ];
    config.unhashed_subpackets = vec![sub(SubpacketData::IssuerKeyId(key.legacy_key_id()))?];
    let sig = config
        .sign_certification(&r, &key, &Password::empty(), Tag::UserId, &user)
        .map_err(|e| r.error(e))?;
    let details = SignedKeyDetails::new(
        Vec::new(),
        Vec::new(),
        vec![pgp::types::SignedUser::new(user, vec![sig])],
        Vec::new(),
    );
    Ok(SignedPublicKey::new(key, details, Vec::new()))
}

/// Reads a certificate, armored or binary.
pub fn parse_certificate(bytes: &[u8]) -> Result<SignedPublicKey> {
    let armored = bytes.trim_ascii_start().starts_with(b"-----BEGIN");
    let key = if armored {
        SignedPublicKey::from_armor_single(bytes).map(|(k, _)| k)
    } else {
        SignedPublicKey::from_bytes(bytes)
    };
    key.map_err(packet)
}

/// A certificate armored ("PGP PUBLIC KEY BLOCK").
pub fn armored(key: &SignedPublicKey) -> Result<String> {
    key.to_armored_string(ArmorOptions::default())
        .map_err(packet)
}

/// A certificate in binary (what `apt`'s keyrings and `gpgv --keyring` read).
pub fn binary(key: &SignedPublicKey) -> Result<Vec<u8>> {
    key.to_bytes().map_err(packet)
}

/// The fingerprint as upper-case hex (40 digits for v4).
pub fn fingerprint_hex(key: &PublicKey) -> String {
    format!("{:X}", key.fingerprint())
}

/// The key's user IDs.
pub fn user_ids(key: &SignedPublicKey) -> Vec<String> {
    key.details
        .users
        .iter()
        .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
        .collect()
}

/// A signature's configuration: type, creation time, issuer fingerprint (hashed), issuer key
/// id (unhashed).
fn config(key: &PublicKey, typ: SignatureType, hash: HashAlg, at: u32) -> Result<SignatureConfig> {
    let mut c = SignatureConfig::v4(typ, key.algorithm(), pgp_hash(hash));
    let sub = |d| Subpacket::regular(d).map_err(packet);
    c.hashed_subpackets = vec![
        sub(SubpacketData::SignatureCreationTime(Timestamp::from_secs(
            at,
        )))?,
        sub(SubpacketData::IssuerFingerprint(key.fingerprint()))?,
    ];
    c.unhashed_subpackets = vec![sub(SubpacketData::IssuerKeyId(key.legacy_key_id()))?];
    Ok(c)
}

/// A detached signature over what `data` yields (binary, signature type 0x00): hashed here as it
/// streams, then its final digest signed by `signer`.
pub fn detached(
    key: &PublicKey,
    hash: HashAlg,
    data: &mut dyn Read,
    signer: &dyn DigestSigner,
    at: u32,
) -> Result<Signature> {
    let alg = key_algorithm(key)?;
    let r = remote(key, alg, hash, signer);
    let mut hasher = config(key, SignatureType::Binary, hash, at)?
        .into_hasher()
        .map_err(packet)?;
    std::io::copy(data, &mut hasher).map_err(|e| packet(format!("reading the data: {e}")))?;
    hasher.sign(&r, &Password::empty()).map_err(|e| r.error(e))
}

/// A detached signature, binary or armored ("PGP SIGNATURE").
pub fn signature_bytes_out(sig: Signature, armor: bool) -> Result<Vec<u8>> {
    let d = DetachedSignature::new(sig);
    if armor {
        d.to_armored_bytes(ArmorOptions::default()).map_err(packet)
    } else {
        d.to_bytes().map_err(packet)
    }
}

/// A cleartext signed message (`InRelease`): the text as given, dash-escaped, and its text
/// signature (type 0x01) over what RFC 9580 §7.1 (RFC 4880 §7.1) says is signed: each line
/// ending in CR LF, with its trailing spaces and tabs removed (verifiers such as gpgv remove
/// them before they hash; rPGP's `CleartextSignedMessage::new` does not, so the lines are
/// trimmed here), the last line break not signed.
pub fn clearsign(
    key: &PublicKey,
    hash: HashAlg,
    text: &str,
    signer: &dyn DigestSigner,
    at: u32,
) -> Result<String> {
    let alg = key_algorithm(key)?;
    let r = remote(key, alg, hash, signer);
    let cfg = config(key, SignatureType::Text, hash, at)?;
    let msg = CleartextSignedMessage::new_many(text, |normalized| {
        let signed = trim_line_ends(normalized);
        Ok(vec![cfg.sign(&r, &Password::empty(), signed.as_bytes())?])
    })
    .map_err(|e| r.error(e))?;
    msg.to_armored_string(ArmorOptions::default())
        .map_err(packet)
}

/// `text` (lines ending in CR LF) with the spaces and tabs at the end of each line removed.
fn trim_line_ends(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (content, end) = match line.strip_suffix("\r\n") {
            Some(c) => (c, "\r\n"),
            None => (line, ""),
        };
        out.push_str(content.trim_end_matches([' ', '\t']));
        out.push_str(end);
    }
    out
}

/// Records what rPGP hashes (to hand a signature's hashed part to a server that hashes it after
/// a payload it was given).
#[derive(Clone, Default)]
struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl digest::DynDigest for Recorder {
    fn update(&mut self, data: &[u8]) {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(data);
        }
    }
    fn finalize_into(self, _buf: &mut [u8]) -> std::result::Result<(), digest::InvalidBufferSize> {
        Ok(())
    }
    fn finalize_into_reset(
        &mut self,
        _out: &mut [u8],
    ) -> std::result::Result<(), digest::InvalidBufferSize> {
        Ok(())
    }
    fn reset(&mut self) {
        if let Ok(mut v) = self.0.lock() {
            v.clear();
        }
    }
    fn output_size(&self) -> usize {
        0
    }
    fn box_clone(&self) -> Box<dyn digest::DynDigest> {
        Box::new(self.clone())
    }
}

/// What a binary signature made with `key`, `hash` and `at` hashes after the data: its hashed
/// part (version, type, algorithms, hashed subpackets) and the v4 trailer. [`signed_message`]
/// with the same arguments signs exactly the data followed by these bytes.
pub fn binary_trailer(key: &PublicKey, hash: HashAlg, at: u32) -> Result<Vec<u8>> {
    let cfg = config(key, SignatureType::Binary, hash, at)?;
    let rec = Recorder::default();
    let mut boxed: Box<dyn digest::DynDigest + Send> = Box::new(rec.clone());
    let len = cfg.hash_signature_data(&mut boxed).map_err(packet)?;
    let mut out = rec
        .0
        .lock()
        .map_err(|_| packet("the trailer recorder failed"))?
        .clone();
    out.extend_from_slice(&cfg.trailer(len).map_err(packet)?);
    Ok(out)
}

/// An OpenPGP signed message (one-pass signature, literal data, signature; not compressed)
/// over `payload`: what containers/image's simple signing stores as a signature.
pub fn signed_message(
    key: &PublicKey,
    hash: HashAlg,
    payload: &[u8],
    signer: &dyn DigestSigner,
    at: u32,
) -> Result<Vec<u8>> {
    use pgp::packet::{LiteralData, OnePassSignature, PacketTrait};
    let sig = detached(key, hash, &mut &payload[..], signer, at)?;
    let ops = OnePassSignature::v3(
        SignatureType::Binary,
        pgp_hash(hash),
        key.algorithm(),
        key.legacy_key_id(),
    );
    let lit = LiteralData::from_bytes("", payload.to_vec().into()).map_err(packet)?;
    let mut out = Vec::new();
    ops.to_writer_with_header(&mut out).map_err(packet)?;
    lit.to_writer_with_header(&mut out).map_err(packet)?;
    sig.to_writer_with_header(&mut out).map_err(packet)?;
    Ok(out)
}
