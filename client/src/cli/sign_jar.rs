//! `hallmark sign jar`: signs a jar the way jarsigner does, with the key on the server. The
//! manifest and signature file are written here; only the SHA-256 of the signature file goes to
//! the server, which answers with a detached, time-stamped CMS SignedData (the signature block).

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use clap::Args;

use super::sign::metadata;
use super::sign::RequestArgs;
use crate::algorithm::HashAlg;
use crate::formats::jar;

#[derive(Args, Debug)]
pub struct JarArgs {
    /// The jar to sign (unsigned). Only the SHA-256 of the signature file leaves this machine.
    pub file: PathBuf,
    /// Where to write the signed jar.
    #[arg(long)]
    pub out: PathBuf,
    /// The signer name: META-INF/NAME.SF and NAME.EC / NAME.RSA (1-8 of A-Z 0-9 _ -).
    #[arg(long, default_value = "SIGNER")]
    pub signer_name: String,
    /// Leave the time-stamp out (the signature then stops verifying when the certificate expires).
    #[arg(long)]
    pub no_timestamp: bool,
    #[command(flatten)]
    pub request: RequestArgs,
}

/// What a remote signature came back as.
pub(super) struct Remote {
    pub id: serde_json::Value,
    pub signature: Vec<u8>,
    /// The signer's certificate (DER).
    pub certificate: Vec<u8>,
}

/// POSTs a signature request and waits (polling) while it needs approvals.
pub(super) fn sign_remote(
    request: &RequestArgs,
    body: &serde_json::Value,
) -> anyhow::Result<Remote> {
    let client = request.server.client()?;
    let (v, signature) = super::sign::post_signature(&client, body, request.timeout, request.poll)?;
    let certificate = pem::parse(v["certificate"].as_str().unwrap_or(""))
        .context("the server's answer has no signer certificate")?
        .into_contents();
    Ok(Remote {
        id: v["id"].clone(),
        signature,
        certificate,
    })
}

/// EC or RSA, from the signer certificate's public key.
fn block_kind(cert: &[u8]) -> anyhow::Result<jar::BlockKind> {
    let (_, c) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| anyhow!("the signer certificate does not parse: {e}"))?;
    use crate::spki::KeyKind;
    match crate::spki::key_of(c.public_key().raw)
        .map_err(|e| anyhow!("{e}"))?
        .0
    {
        KeyKind::P256 | KeyKind::P384 | KeyKind::P521 => Ok(jar::BlockKind::Ec),
        KeyKind::Rsa => Ok(jar::BlockKind::Rsa),
        other => bail!("a jar cannot be signed with a key of kind {}", other.name()),
    }
}

pub fn cmd_sign_jar(a: &JarArgs) -> anyhow::Result<()> {
    let open =
        || std::fs::File::open(&a.file).with_context(|| format!("opening {}", a.file.display()));
    let prepared = jar::prepare(std::io::BufReader::new(open()?), &a.signer_name)
        .with_context(|| format!("reading {}", a.file.display()))?;
    let digest = HashAlg::Sha256.digest(&prepared.signature_file);
    let body = serde_json::json!({
        "key": a.request.key,
        "digest": hex::encode(&digest),
        "digest_algorithm": "sha256",
        "format": "cms",
        "timestamp": !a.no_timestamp,
        "metadata": metadata(&a.file, &a.request.meta)?,
    });
    let remote = sign_remote(&a.request, &body)?;
    let kind = block_kind(&remote.certificate)?;
    let tmp = a.out.with_extension("jar.partial");
    let out = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    jar::assemble(
        std::io::BufReader::new(open()?),
        &prepared,
        kind,
        &remote.signature,
        out,
        crate::clock::Clock::now_utc(&crate::clock::SystemClock),
    )
    .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &a.out).with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "signed {} ({} entries, signer {}{}) with key '{}': {} (record {})",
        a.file.display(),
        prepared.entries,
        prepared.signer,
        if a.no_timestamp { "" } else { ", time-stamped" },
        a.request.key,
        a.out.display(),
        remote.id
    );
    Ok(())
}
