//! `hallmark sign authenticode`: Authenticode-signs a PE, CAB or MSI file with the key on the
//! server. The file's Authenticode hash and the SpcIndirectDataContent are made here; the server
//! receives that small content (and its digest), signs it as CMS with an RFC 3161 time-stamp,
//! and the signature is embedded in the file here.

use std::path::PathBuf;

use anyhow::{anyhow, Context};
use base64::Engine as _;
use clap::Args;

use super::sign::metadata;
use super::sign::RequestArgs;
use super::sign_jar::sign_remote;
use crate::formats::authenticode::SPC_INDIRECT_DATA;
use crate::formats::authenticode::{content_digest, open};
use crate::formats::names::{digest_algorithm_name, parse_digest_algorithm};

#[derive(Args, Debug)]
pub struct AuthenticodeArgs {
    /// The unsigned file: PE (.exe, .dll, .sys; PE32 or PE32+), cabinet (.cab) or MSI (.msi).
    pub file: PathBuf,
    /// Where to write the signed file.
    #[arg(long)]
    pub out: PathBuf,
    /// sha256, sha384 or sha512 (the file's Authenticode hash and the CMS digest).
    #[arg(long, default_value = "sha256")]
    pub digest: String,
    /// Leave the time-stamp out (the signature then stops verifying when the certificate expires).
    #[arg(long)]
    pub no_timestamp: bool,
    #[command(flatten)]
    pub request: RequestArgs,
}

pub fn cmd_sign_authenticode(a: &AuthenticodeArgs) -> anyhow::Result<()> {
    let hash = parse_digest_algorithm(&a.digest).map_err(|e| anyhow!("--digest: {e}"))?;
    let data = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let file = open(data).with_context(|| format!("{}", a.file.display()))?;
    let kind = file.kind();
    let file_digest = file
        .digest(hash)
        .with_context(|| format!("{}", a.file.display()))?;
    let spc = file.indirect_data(hash, &file_digest);
    let digest = content_digest(hash, &spc)?;
    let body = serde_json::json!({
        "key": a.request.key,
        "digest": hex::encode(&digest),
        "digest_algorithm": digest_algorithm_name(hash),
        "format": "cms",
        "timestamp": !a.no_timestamp,
        "content_type": SPC_INDIRECT_DATA,
        "content": base64::engine::general_purpose::STANDARD.encode(&spc),
        "metadata": metadata(&a.file, &a.request.meta)?,
    });
    let remote = sign_remote(&a.request, &body)?;
    let signed = file
        .embed(&remote.signature)
        .with_context(|| format!("{}", a.file.display()))?;
    std::fs::write(&a.out, signed).with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "signed {} ({kind} Authenticode {}:{}{}) with key '{}': {} (record {})",
        a.file.display(),
        digest_algorithm_name(hash),
        hex::encode(&file_digest),
        if a.no_timestamp { "" } else { ", time-stamped" },
        a.request.key,
        a.out.display(),
        remote.id
    );
    Ok(())
}
