//! `hallmark sign cose`: a COSE_Sign1 with a detached payload over a file. The Sig_structure is
//! hashed here while the file streams by (CBOR prefix, then the file's bytes); the server signs
//! that hash in its `cose_sign1` format and this command assembles the message.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use clap::Args;

use super::sign_mcuboot::{remote_sign_checked, verify_digest, RemoteArgs};
use crate::formats::cose::{self, CoseAlg};
use crate::formats::names::digest_algorithm_name;

#[derive(Args, Debug)]
pub struct CoseArgs {
    /// The payload (e.g. a firmware image). Only the Sig_structure's hash leaves this machine;
    /// the payload is detached (nil) in the message.
    pub file: PathBuf,
    /// Where to write the tagged COSE_Sign1 (default FILE.cose).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// ES256 (P-256 keys), ES384 (P-384 keys), or PS256, PS384, PS512 (RSA keys, RSASSA-PSS).
    /// Default: from --cert when given (PS256 for RSA), else ES256.
    #[arg(long)]
    pub alg: Option<String>,
    /// Leave the key's label out of the unprotected header (kid, label 4).
    #[arg(long)]
    pub no_kid: bool,
    /// Leave the certificate chain out of the unprotected header (x5chain, label 33).
    #[arg(long)]
    pub no_x5chain: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// The algorithm a key signs COSE with here: ES256 (P-256), ES384 (P-384), PS256 (RSA).
fn alg_for_key(spki: &[u8]) -> anyhow::Result<CoseAlg> {
    use crate::spki::KeyKind;
    match crate::spki::key_of(spki).map_err(|e| anyhow!("{e}"))?.0 {
        KeyKind::P256 => Ok(CoseAlg::Es256),
        KeyKind::P384 => Ok(CoseAlg::Es384),
        KeyKind::Rsa => Ok(CoseAlg::Ps256),
        other => bail!(
            "a key of kind {} cannot sign COSE_Sign1 here (ECDSA P-256/P-384 and RSA only)",
            other.name()
        ),
    }
}

pub fn cmd_sign_cose(a: &CoseArgs) -> anyhow::Result<()> {
    let expected = a.remote.expected_spki()?;
    let from_cert = match &expected {
        Some(spki) => Some(alg_for_key(spki).context("--cert")?),
        None => None,
    };
    let alg = match (&a.alg, from_cert) {
        (Some(s), cert) => {
            let alg = CoseAlg::parse(s).map_err(|e| anyhow!("--alg: {e}"))?;
            if let Some(c) = cert {
                // ECDSA: the curve fixes the algorithm; RSA: any PS algorithm.
                if c.is_ecdsa() != alg.is_ecdsa() || (c.is_ecdsa() && c != alg) {
                    bail!(
                        "--alg {} does not fit the key in --cert (use {})",
                        alg.name(),
                        c.name()
                    );
                }
            }
            alg
        }
        (None, Some(c)) => c,
        (None, None) => CoseAlg::Es256,
    };
    let hash = alg.hash();
    let len = std::fs::metadata(&a.file)
        .with_context(|| format!("reading {}", a.file.display()))?
        .len();
    let protected = cose::protected_header(alg);
    let prefix = cose::sig_structure_prefix(&protected, len);
    let digest = super::sign::hash_stream(&a.file, &prefix, Some(len), hash)?;
    let mut meta = serde_json::Map::new();
    meta.insert("cose_alg".into(), alg.name().into());
    let (remote, spki) = remote_sign_checked(
        &a.remote,
        (&a.file, &digest, hash),
        ("cose_sign1", meta),
        expected.as_deref(),
    )?;
    // The server chose the scheme from the key; the header must name the same algorithm.
    let verifier: &'static dyn aws_lc_rs::signature::VerificationAlgorithm =
        {
            use aws_lc_rs::signature as s;
            let (kind, _) = crate::spki::key_of(&spki)
                .map_err(|e| anyhow!("the signing certificate's key: {e}"))?;
            let is_rsa = kind == crate::spki::KeyKind::Rsa;
            match (alg, is_rsa) {
                (CoseAlg::Es256, false) => &s::ECDSA_P256_SHA256_FIXED,
                (CoseAlg::Es384, false) => &s::ECDSA_P384_SHA384_FIXED,
                (CoseAlg::Ps256, true) => &s::RSA_PSS_2048_8192_SHA256,
                (CoseAlg::Ps384, true) => &s::RSA_PSS_2048_8192_SHA384,
                (CoseAlg::Ps512, true) => &s::RSA_PSS_2048_8192_SHA512,
                (_, rsa) => {
                    bail!(
                "key '{}' is an {} key and cannot sign {}: use --alg {}; nothing was written \
                 (the server recorded signature {})",
                a.remote.request.key,
                if rsa { "RSA" } else { "EC" },
                alg.name(),
                if rsa { "PS256" } else { "ES256 (P-256) or ES384 (P-384)" },
                remote.id
            )
                }
            }
        };
    verify_digest(&spki, verifier, hash, &digest, &remote.signature).with_context(|| {
        format!(
            "checking the {} signature (is key '{}' on the curve {} needs?)",
            alg.name(),
            a.remote.request.key,
            alg.name()
        )
    })?;
    let kid = if a.no_kid {
        Vec::new()
    } else {
        a.remote.request.key.as_bytes().to_vec()
    };
    let mut chain = Vec::new();
    if !a.no_x5chain {
        chain.push(remote.certificate.clone());
        chain.extend(remote.chain.iter().cloned());
    }
    let message = cose::sign1_detached(&protected, &kid, &chain, &remote.signature);
    let out = match &a.out {
        Some(p) => p.clone(),
        None => {
            let mut p = a.file.clone().into_os_string();
            p.push(".cose");
            PathBuf::from(p)
        }
    };
    std::fs::write(&out, &message).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "signed {} as COSE_Sign1 {} (Sig_structure {}:{}) with key '{}': {} (record {})",
        a.file.display(),
        alg.name(),
        digest_algorithm_name(hash),
        hex::encode(&digest),
        a.remote.request.key,
        out.display(),
        remote.id
    );
    Ok(())
}
