//! `hallmark sign` (a client: hashes the file here, sends only the digest to the server), in
//! the client crate so `hallmark` and `hallmark-client` share it. `hallmark signature list`
//! (the local record of what was signed) stays with the server.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use clap::{Args, Subcommand};

use super::{output, ServerArgs};
use crate::algorithm::HashAlg;
use crate::client;
use crate::formats::names::{digest_algorithm_name, parse_digest_algorithm};

#[derive(Subcommand, Debug)]
pub enum SignCmd {
    /// A plain signature over the file's digest (DER ECDSA or RSA PKCS#1 v1.5). Written raw to
    /// --out, or base64 to standard output.
    Raw(SignArgs),
    /// A detached CMS SignedData (DER) for the file, written to --out (default FILE.p7s).
    Cms(SignArgs),
    /// Authenticode for a PE file (.exe, .dll, .sys; PE32 and PE32+): the PE hash is computed
    /// here, the server signs the SpcIndirectDataContent, time-stamped unless --no-timestamp.
    Authenticode(super::sign_authenticode::AuthenticodeArgs),
    /// A signed jar (as jarsigner makes them: MANIFEST.MF, NAME.SF, NAME.EC or .RSA),
    /// time-stamped unless --no-timestamp.
    Jar(super::sign_jar::JarArgs),
    /// An MCUboot image (imgtool 2.5 layout) signed with an ECDSA key: the header and TLVs
    /// are built here, the server signs the image hash.
    Mcuboot(super::sign_mcuboot::McubootArgs),
    /// A COSE_Sign1 (RFC 9052) with a detached payload over the file (the SUIT building block).
    Cose(super::sign_cose::CoseArgs),
    /// An OpenPGP signature: detached (binary, or --armor) or --clearsign (apt's InRelease),
    /// verified by gpgv, rpm and apt. The key needs an OpenPGP certificate (`hallmark key
    /// openpgp`).
    Openpgp(super::sign_openpgp::OpenPgpArgs),
    /// Container image signatures from the image's manifest digest: simple signing (OpenPGP,
    /// into --lookaside DIR; skopeo and podman verify it) and a cosign-compatible signature
    /// pushed as the `sha256-HEX.sig` tag.
    Image(super::sign_image::ImageArgs),
}

/// What every `hallmark sign` command asks the server besides its artifact: which key, the
/// metadata recorded with the signature, how long to wait for approvals, and the server.
#[derive(Args, Debug)]
pub struct RequestArgs {
    /// Label of the signing key on the server.
    #[arg(long)]
    pub key: String,
    /// Extra metadata recorded with the signature (repeat): --meta commit=abc123.
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// When the key needs approvals: how long to wait for them, in seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Seconds between polls while approvals are pending.
    #[arg(long, default_value_t = 5)]
    pub poll: u64,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct SignArgs {
    /// The artifact. Only its digest leaves this machine.
    pub file: PathBuf,
    /// sha256, sha384 or sha512.
    #[arg(long, default_value = "sha256")]
    pub digest: String,
    /// Where to write the signature.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Ask for an RFC 3161 time-stamp from the server's TSA: inside the CMS as an unsigned
    /// attribute (id-aa-timeStampToken); for raw, the DER token is written to OUT.tst.
    #[arg(long)]
    pub timestamp: bool,
    #[command(flatten)]
    pub request: RequestArgs,
}

/// Hashes a file as it streams by (never held in memory whole).
pub fn hash_file(path: &Path, hash: HashAlg) -> anyhow::Result<Vec<u8>> {
    hash_stream(path, &[], None, hash)
}

/// Hashes `prefix` and then the file, streaming; with `len`, checks the file still has that
/// many bytes (it did not change between being measured and being read).
pub fn hash_stream(
    path: &Path,
    prefix: &[u8],
    len: Option<u64>,
    hash: HashAlg,
) -> anyhow::Result<Vec<u8>> {
    use aws_lc_rs::digest;
    let alg = match hash {
        HashAlg::Sha256 => &digest::SHA256,
        HashAlg::Sha384 => &digest::SHA384,
        HashAlg::Sha512 => &digest::SHA512,
    };
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut ctx = digest::Context::new(alg);
    ctx.update(prefix);
    let mut buf = vec![0u8; 1 << 20];
    let mut seen = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        seen += n as u64;
        ctx.update(&buf[..n]);
    }
    if let Some(len) = len.filter(|l| *l != seen) {
        anyhow::bail!(
            "{} changed while it was read ({len} bytes expected, {seen} read)",
            path.display()
        );
    }
    Ok(ctx.finish().as_ref().to_vec())
}

pub fn cmd_sign(c: &SignCmd) -> anyhow::Result<()> {
    let (a, format) = match c {
        SignCmd::Raw(a) => (a, "raw"),
        SignCmd::Cms(a) => (a, "cms"),
        SignCmd::Authenticode(x) => return super::sign_authenticode::cmd_sign_authenticode(x),
        SignCmd::Jar(x) => return super::sign_jar::cmd_sign_jar(x),
        SignCmd::Mcuboot(m) => return super::sign_mcuboot::cmd_sign_mcuboot(m),
        SignCmd::Cose(m) => return super::sign_cose::cmd_sign_cose(m),
        SignCmd::Openpgp(m) => return super::sign_openpgp::cmd_sign_openpgp(m),
        SignCmd::Image(m) => return super::sign_image::cmd_sign_image(m),
    };
    let hash = parse_digest_algorithm(&a.digest).map_err(|e| anyhow!("--digest: {e}"))?;
    let client = a.request.server.client()?;
    let digest = hash_file(&a.file, hash)?;
    let metadata = metadata(&a.file, &a.request.meta)?;
    let body = serde_json::json!({
        "key": a.request.key,
        "digest": hex::encode(&digest),
        "digest_algorithm": digest_algorithm_name(hash),
        "format": format,
        "metadata": metadata,
        "timestamp": a.timestamp,
    });
    let (v, sig) = post_signature(&client, &body, a.request.timeout, a.request.poll)?;
    let out = match (format, &a.out) {
        (_, Some(p)) => Some(p.clone()),
        ("cms", None) => {
            let mut p = a.file.clone().into_os_string();
            p.push(".p7s");
            Some(PathBuf::from(p))
        }
        _ => None,
    };
    let token = match v["timestamp_token"].as_str() {
        Some(t) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .context("the server's time-stamp token is not base64")?,
        ),
        None => None,
    };
    match out {
        Some(p) => {
            std::fs::write(&p, &sig).with_context(|| format!("writing {}", p.display()))?;
            if let (Some(t), "raw") = (&token, format) {
                let mut tsr = p.clone().into_os_string();
                tsr.push(".tst");
                std::fs::write(&tsr, t).with_context(|| format!("writing {tsr:?}"))?;
            }
            eprintln!(
                "signed {} ({}:{}) with key '{}': {} (record {})",
                a.file.display(),
                digest_algorithm_name(hash),
                hex::encode(&digest),
                a.request.key,
                p.display(),
                v["id"]
            );
        }
        None => {
            if token.is_some() {
                eprintln!("the time-stamp token is written only with --out (to OUT.tst)");
            }
            output(
                None,
                &format!(
                    "{}\n",
                    base64::engine::general_purpose::STANDARD.encode(&sig)
                ),
            )?;
        }
    }
    Ok(())
}

/// Polls a pending signature request (the 202 answer `accepted`) until it is signed (its answer
/// then holds the signature, like a 201), refused, or `timeout` seconds pass. Every `hallmark
/// sign` command waits through this.
/// POSTs a signature request and waits (polling) while it needs approvals. Returns the final
/// answer and its signature (decoded; an empty one is an error).
pub fn post_signature(
    client: &client::Client,
    body: &serde_json::Value,
    timeout: u64,
    poll: u64,
) -> anyhow::Result<(serde_json::Value, Vec<u8>)> {
    // Caught from before the request exists: an interrupt at any moment after the server
    // records it still cancels it.
    let mut interrupts = client.interrupts()?;
    let reply = client.send(
        "POST",
        "/api/v1/signatures",
        Some("application/json"),
        body.to_string().into_bytes(),
    )?;
    let v = match reply.status {
        201 => reply.json()?,
        202 => wait_for_approvals(client, &reply.json()?, timeout, poll, &mut interrupts)?,
        s => bail!("the server refused to sign: {s} {}", reply.problem()),
    };
    let sig = base64::engine::general_purpose::STANDARD
        .decode(v["signature"].as_str().unwrap_or(""))
        .context("the server's signature is not base64")?;
    if sig.is_empty() {
        bail!("the server returned an empty signature");
    }
    Ok((v, sig))
}

pub fn wait_for_approvals(
    client: &client::Client,
    accepted: &serde_json::Value,
    timeout: u64,
    poll: u64,
    interrupts: &mut client::Interrupts,
) -> anyhow::Result<serde_json::Value> {
    let id = accepted["request_id"]
        .as_i64()
        .ok_or_else(|| anyhow!("202 without a request id"))?;
    eprintln!(
        "signature request {id} waits for {} approval(s); polling for up to {timeout} s \
         (approvers: hallmark approve --signature {id} ...; Ctrl-C cancels it)",
        accepted["approvals_required"]
    );
    let path = format!("/api/v1/signatures/requests/{id}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout);
    loop {
        if client.pause(std::time::Duration::from_secs(poll.max(1)), interrupts) {
            bail!(
                "interrupted while signature request {id} waited for approvals; {}",
                client.cancel(&path)
            );
        }
        let r = client.send("GET", &path, None, vec![])?;
        if r.status != 200 {
            bail!("signature request {id}: {} {}", r.status, r.problem());
        }
        let v = r.json()?;
        match v["status"].as_str() {
            Some("signed") => return Ok(v),
            Some("pending" | "signing") if std::time::Instant::now() < deadline => continue,
            Some("pending" | "signing") => {
                bail!(
                    "signature request {id} was still waiting for approvals after {timeout} s; {}",
                    client.cancel(&path)
                )
            }
            Some(other) => bail!(
                "signature request {id} was {other}{}; nothing was signed",
                denials(&v)
            ),
            None => bail!("signature request {id}: unexpected answer"),
        }
    }
}

/// Who denied a request and why, as the request's approvals list them: ` by NAME ("COMMENT")`.
fn denials(v: &serde_json::Value) -> String {
    let Some(list) = v["approvals"].as_array() else {
        return String::new();
    };
    list.iter()
        .filter(|a| a["decision"] == "deny")
        .map(|a| {
            let who = a["approver"].as_str().unwrap_or("?");
            match a["comment"].as_str() {
                Some(c) if !c.is_empty() => format!(" by {who} (\"{c}\")"),
                _ => format!(" by {who}"),
            }
        })
        .collect()
}

/// The metadata object: the artifact's file name and `--meta KEY=VALUE` pairs.
pub fn metadata(
    file: &std::path::Path,
    meta: &[String],
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let mut m = serde_json::Map::new();
    if let Some(name) = file.file_name() {
        m.insert(
            "artifact".into(),
            name.to_string_lossy().into_owned().into(),
        );
    }
    for kv in meta {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow!("--meta '{kv}' is not KEY=VALUE"))?;
        m.insert(k.to_string(), v.to_string().into());
    }
    Ok(m)
}
