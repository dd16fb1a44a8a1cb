//! `hallmark sign mcuboot`: builds an MCUboot image around a firmware file on this machine (as
//! imgtool 2.5 `sign` does), has the server sign the image hash with its `raw` format, and writes
//! the signed image. Only the hash leaves the machine. Also the server round trip shared with
//! `hallmark sign cose`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::Args;

use super::sign::RequestArgs;
use crate::algorithm::HashAlg;
use crate::formats::mcuboot::{self, ImageOptions, PublicKeyFormat, Version};
use crate::formats::names::digest_algorithm_name;

/// What every firmware signing command sends the server.
#[derive(Args, Debug)]
pub struct RemoteArgs {
    /// The key's certificate (PEM or DER, as `hallmark key show LABEL` prints it). The
    /// algorithm is then chosen from it before anything is sent (a key type the format cannot
    /// use is refused before it signs), and the server's signature must come from that key.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    #[command(flatten)]
    pub request: RequestArgs,
}

impl RemoteArgs {
    /// The SubjectPublicKeyInfo of `--cert`, if given.
    pub fn expected_spki(&self) -> anyhow::Result<Option<Vec<u8>>> {
        let Some(path) = &self.cert else {
            return Ok(None);
        };
        let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let der = match pem::parse(&raw) {
            Ok(p) if p.tag() == "CERTIFICATE" => p.into_contents(),
            Ok(p) => bail!("{}: a PEM {} is not a certificate", path.display(), p.tag()),
            Err(_) => raw,
        };
        certificate_spki(&der)
            .with_context(|| format!("--cert {}", path.display()))
            .map(Some)
    }
}

#[derive(Args, Debug)]
pub struct McubootArgs {
    /// The firmware (raw binary). Only the image hash leaves this machine.
    pub file: PathBuf,
    /// Where to write the signed image.
    #[arg(long)]
    pub out: PathBuf,
    /// Image version, MAJOR[.MINOR[.REVISION[+BUILD]]] (imgtool's --version).
    #[arg(long)]
    pub version: String,
    /// Bytes reserved for the image header, at least 0x20 (imgtool's --header-size).
    #[arg(long, value_parser = parse_int::<usize>)]
    pub header_size: usize,
    /// Prepend --header-size erased (0xff) bytes to the firmware; without it the firmware's
    /// first --header-size bytes must be zero and are replaced by the header.
    #[arg(long)]
    pub pad_header: bool,
    /// Slot size: the signed image and its swap trailer must fit (imgtool's --slot-size).
    #[arg(long, value_parser = parse_int::<usize>)]
    pub slot_size: Option<usize>,
    /// Pad the image to --slot-size with the trailer magic at its end.
    #[arg(long)]
    pub pad: bool,
    /// Pad and mark the image confirmed (image_ok), as imgtool --confirm.
    #[arg(long)]
    pub confirm: bool,
    /// Flash write alignment for the trailer: 1, 2, 4, 8, 16 or 32.
    #[arg(long, default_value = "1", value_parser = parse_int::<u32>)]
    pub align: u32,
    /// Sectors the swap status area allows for (imgtool's --max-sectors).
    #[arg(long, default_value = "128", value_parser = parse_int::<u32>)]
    pub max_sectors: u32,
    /// RAM load address (sets the RAM_LOAD flag).
    #[arg(long, value_parser = parse_int::<u32>)]
    pub load_addr: Option<u32>,
    /// Flash address the image is built for (sets the ROM_FIXED flag).
    #[arg(long, value_parser = parse_int::<u32>)]
    pub rom_fixed: Option<u32>,
    /// Security counter (a number, or `auto` for major<<24 | minor<<16 | revision), written
    /// as a protected TLV.
    #[arg(long)]
    pub security_counter: Option<String>,
    /// Image hash: sha256 for P-256 keys, sha384 for P-384 keys (MCUboot's pairing). Default:
    /// from --cert when given, else sha256.
    #[arg(long)]
    pub digest: Option<String>,
    /// How the key appears in the image: `hash` (KEYHASH TLV, imgtool's default) or `full`
    /// (PUBKEY TLV with the SubjectPublicKeyInfo).
    #[arg(long, default_value = "hash", value_parser = ["hash", "full"])]
    pub public_key_format: String,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Parses decimal or 0x/0o/0b-prefixed integers, as imgtool does.
pub fn parse_int<T: TryFrom<u64>>(s: &str) -> Result<T, String> {
    let t = s.trim().replace('_', "");
    let lower = t.to_ascii_lowercase();
    let parsed = if let Some(h) = lower.strip_prefix("0x") {
        u64::from_str_radix(h, 16)
    } else if let Some(o) = lower.strip_prefix("0o") {
        u64::from_str_radix(o, 8)
    } else if let Some(b) = lower.strip_prefix("0b") {
        u64::from_str_radix(b, 2)
    } else {
        lower.parse::<u64>()
    };
    let v = parsed.map_err(|_| format!("'{s}' is not a number (decimal or 0x...)"))?;
    T::try_from(v).map_err(|_| format!("{s} is too large"))
}

/// A signature the server made, with the signing certificate.
pub struct Remote {
    pub signature: Vec<u8>,
    /// The key's certificate (DER).
    pub certificate: Vec<u8>,
    /// The CA certificates above it, root excluded (DER).
    pub chain: Vec<Vec<u8>>,
    /// The signature record's id.
    pub id: serde_json::Value,
}

fn pem_der(text: &str) -> anyhow::Result<Vec<u8>> {
    let p = pem::parse(text).context("the server's certificate is not PEM")?;
    Ok(p.into_contents())
}

/// Sends `digest` to the server to be signed in `format`, waits for approvals if the key needs
/// them, and returns the signature with the certificate chain.
pub fn remote_sign(
    r: &RemoteArgs,
    file: &Path,
    digest: &[u8],
    hash: HashAlg,
    format: &str,
    mut metadata: serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<Remote> {
    let client = r.request.server.client()?;
    metadata.extend(super::sign::metadata(file, &r.request.meta)?);
    let body = serde_json::json!({
        "key": r.request.key,
        "digest": hex::encode(digest),
        "digest_algorithm": digest_algorithm_name(hash),
        "format": format,
        "metadata": metadata,
    });
    let (v, signature) =
        super::sign::post_signature(&client, &body, r.request.timeout, r.request.poll)?;
    let certificate = pem_der(
        v["certificate"]
            .as_str()
            .ok_or_else(|| anyhow!("the server's answer has no signing certificate"))?,
    )?;
    let chain = match v["chain"].as_array() {
        Some(a) => a
            .iter()
            .map(|c| pem_der(c.as_str().unwrap_or("")))
            .collect::<anyhow::Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    Ok(Remote {
        signature,
        certificate,
        chain,
        id: v["id"].clone(),
    })
}

/// [`remote_sign`] of `file`'s `digest`, then the signing certificate's key (SPKI, DER), checked
/// against `expected` (`--cert`) when given.
pub fn remote_sign_checked(
    r: &RemoteArgs,
    (file, digest, hash): (&Path, &[u8], HashAlg),
    (format, metadata): (&str, serde_json::Map<String, serde_json::Value>),
    expected: Option<&[u8]>,
) -> anyhow::Result<(Remote, Vec<u8>)> {
    let remote = remote_sign(r, file, digest, hash, format, metadata)?;
    let spki = certificate_spki(&remote.certificate)?;
    check_expected_key(expected, &spki, &r.request.key, &remote.id)?;
    Ok((remote, spki))
}

/// The SubjectPublicKeyInfo (DER) of a certificate.
pub fn certificate_spki(cert_der: &[u8]) -> anyhow::Result<Vec<u8>> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| anyhow!("the signing certificate does not parse: {e}"))?;
    Ok(cert.public_key().raw.to_vec())
}

/// With --cert: the server must have signed with that certificate's key.
pub fn check_expected_key(
    expected: Option<&[u8]>,
    spki: &[u8],
    key: &str,
    id: &serde_json::Value,
) -> anyhow::Result<()> {
    match expected {
        Some(e) if e != spki => bail!(
            "key '{key}' on the server is not the key of --cert; nothing was written \
             (the server recorded signature {id})"
        ),
        _ => Ok(()),
    }
}

/// Checks a signature over a digest with a key (so a wrong signature is never written out).
pub fn verify_digest(
    spki_der: &[u8],
    alg: &'static dyn aws_lc_rs::signature::VerificationAlgorithm,
    hash: HashAlg,
    digest: &[u8],
    signature: &[u8],
) -> anyhow::Result<()> {
    use aws_lc_rs::digest::{Digest, SHA256, SHA384, SHA512};
    let h = match hash {
        HashAlg::Sha256 => &SHA256,
        HashAlg::Sha384 => &SHA384,
        HashAlg::Sha512 => &SHA512,
    };
    let bits = crate::spki::subject_public_key_bits(spki_der)?;
    let d = Digest::import_less_safe(digest, h).map_err(|_| anyhow!("bad digest length"))?;
    aws_lc_rs::signature::UnparsedPublicKey::new(alg, bits)
        .verify_digest(&d, signature)
        .map_err(|_| anyhow!("the server's signature does not verify with the key's certificate"))
}

pub fn cmd_sign_mcuboot(a: &McubootArgs) -> anyhow::Result<()> {
    let version: Version = a.version.parse().map_err(|e| anyhow!("--version: {e}"))?;
    let expected = a.remote.expected_spki()?;
    let from_cert = match &expected {
        Some(spki) => Some(mcuboot::hash_for_key(spki).context("--cert")?),
        None => None,
    };
    let hash = match (&a.digest, from_cert) {
        (Some(d), cert) => {
            let h = crate::formats::names::parse_digest_algorithm(d)
                .map_err(|e| anyhow!("--digest: {e}"))?;
            if let Some(c) = cert.filter(|&c| c != h) {
                bail!(
                    "--digest {d} does not fit the key in --cert: its MCUboot images use --digest {}",
                    digest_algorithm_name(c)
                );
            }
            h
        }
        (None, Some(h)) => h,
        (None, None) => HashAlg::Sha256,
    };
    let security_counter = match a.security_counter.as_deref() {
        None => None,
        Some(s) if s.eq_ignore_ascii_case("auto") => {
            Some(ImageOptions::auto_security_counter(version))
        }
        Some(s) => Some(parse_int::<u32>(s).map_err(|e| anyhow!("--security-counter: {e}"))?),
    };
    let opts = ImageOptions {
        version,
        header_size: a.header_size,
        pad_header: a.pad_header,
        load_addr: a.load_addr.unwrap_or(0),
        rom_fixed: a.rom_fixed,
        security_counter,
        slot_size: a.slot_size,
        align: a.align,
        max_sectors: a.max_sectors,
        pad: a.pad || a.confirm,
        confirm: a.confirm,
        hash,
        public_key_format: if a.public_key_format == "full" {
            PublicKeyFormat::Full
        } else {
            PublicKeyFormat::Hash
        },
    };
    let firmware =
        std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let unsigned = mcuboot::prepare(&firmware, &opts)?;
    let digest = unsigned.digest();
    let mut meta = serde_json::Map::new();
    meta.insert("mcuboot_version".into(), version.to_string().into());
    let (remote, spki) = remote_sign_checked(
        &a.remote,
        (&a.file, &digest, hash),
        ("raw", meta),
        expected.as_deref(),
    )?;
    // The key decides the hash MCUboot expects; refuse before writing anything unusable.
    let needs = mcuboot::hash_for_key(&spki)?;
    if needs != hash {
        bail!(
            "key '{}' is {}: its MCUboot images use --digest {}; nothing was written \
             (the server recorded signature {} over a {} image hash)",
            a.remote.request.key,
            if needs == HashAlg::Sha384 {
                "P-384"
            } else {
                "P-256"
            },
            digest_algorithm_name(needs),
            remote.id,
            digest_algorithm_name(hash)
        );
    }
    let alg: &'static dyn aws_lc_rs::signature::VerificationAlgorithm = match hash {
        HashAlg::Sha384 => &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1,
        _ => &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
    };
    verify_digest(&spki, alg, hash, &digest, &remote.signature)?;
    let image = unsigned.finish(&spki, &remote.signature)?;
    std::fs::write(&a.out, &image).with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "signed {} as MCUboot image {version} ({}:{}) with key '{}': {} ({} bytes, record {})",
        a.file.display(),
        digest_algorithm_name(hash),
        hex::encode(&digest),
        a.remote.request.key,
        a.out.display(),
        image.len(),
        remote.id
    );
    Ok(())
}
