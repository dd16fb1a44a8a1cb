//! `hallmark sign openpgp`: OpenPGP detached and cleartext signatures (what rpm, apt's
//! `Release.gpg`/`InRelease` and `gpgv` verify). The data and the signature packet's hashed
//! trailer are hashed here as the file streams by; the server signs that final digest in its
//! `openpgp` format; the packet is assembled here around the key's certificate, fetched from
//! the server (`GET /api/v1/keys/{label}`).

use std::cell::RefCell;
use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use clap::Args;

use super::sign::{metadata, post_signature, RequestArgs};
use crate::algorithm::HashAlg;
use crate::client::Client;
use crate::formats::names::{digest_algorithm_name, parse_digest_algorithm};
use crate::formats::openpgp::{self as pgp, DigestSigner};

#[derive(Args, Debug)]
pub struct OpenPgpArgs {
    /// The file to sign (`-` for standard input). Only a digest leaves this machine.
    pub file: PathBuf,
    /// ASCII armor ("-----BEGIN PGP SIGNATURE-----") instead of the binary packet.
    #[arg(long)]
    pub armor: bool,
    /// A cleartext signed message (the text with its signature, as apt's InRelease) instead
    /// of a detached signature. The file must be UTF-8 text.
    #[arg(long, conflicts_with = "armor")]
    pub clearsign: bool,
    /// sha256, sha384 or sha512 (default: SHA-512 for RSA keys, SHA-384 for P-384, else
    /// SHA-256).
    #[arg(long)]
    pub digest: Option<String>,
    /// Where to write the signature (`-` for standard output).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub request: RequestArgs,
}

/// What to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Detached { armor: bool },
    Clear,
}

/// The signing service as the OpenPGP code's [`DigestSigner`]: one `POST /api/v1/signatures`
/// in `format` (`openpgp`, or `image` with the payload and trailer in `extra`), waiting for
/// approvals when the key needs them.
pub(super) struct Service<'a> {
    pub(super) client: &'a Client,
    pub(super) key: &'a str,
    pub(super) format: &'static str,
    pub(super) extra: serde_json::Map<String, serde_json::Value>,
    pub(super) metadata: serde_json::Map<String, serde_json::Value>,
    pub(super) timeout: u64,
    pub(super) poll: u64,
    /// The record id of the signature made.
    pub(super) record: RefCell<Option<serde_json::Value>>,
}

impl DigestSigner for Service<'_> {
    fn sign_digest(&self, hash: HashAlg, digest: &[u8]) -> Result<Vec<u8>, String> {
        let mut body = serde_json::json!({
            "key": self.key,
            "digest": hex::encode(digest),
            "digest_algorithm": digest_algorithm_name(hash),
            "format": self.format,
            "metadata": self.metadata,
        });
        if let Some(o) = body.as_object_mut() {
            o.extend(self.extra.clone());
        }
        let (v, sig) = post_signature(self.client, &body, self.timeout, self.poll)
            .map_err(|e| format!("{e:#}"))?;
        *self.record.borrow_mut() = Some(v["id"].clone());
        Ok(sig)
    }
}

/// Whether NAME matches a key document's OpenPGP certificate the way gpg's `-u` matches: the
/// fingerprint, or the long (16) or short (8 hex digits) key ID at its end (`0x` and spaces
/// allowed), the user ID exactly, `<email>` or the email, or else a part of the user ID
/// (case-insensitive).
fn names_openpgp_key(doc: &serde_json::Value, name: &str) -> bool {
    let fpr = doc["openpgp"]["fingerprint"].as_str().unwrap_or_default();
    let uid = doc["openpgp"]["user_id"].as_str().unwrap_or_default();
    if fpr.is_empty() {
        return false;
    }
    let hex: String = name
        .trim()
        .trim_start_matches("0x")
        .trim_end_matches('!')
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if matches!(hex.len(), 8 | 16 | 40) && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return fpr.ends_with(&hex);
    }
    let email = name.trim().trim_start_matches('<').trim_end_matches('>');
    uid == name
        || (!email.is_empty() && uid.contains(&format!("<{email}>")))
        || uid.to_lowercase().contains(&name.to_lowercase())
}

/// The label of the key NAME designates: a key label, else (as gpg's `-u`) a key whose OpenPGP
/// certificate has that fingerprint, key ID or user ID, among the keys this credential may use.
pub(super) fn resolve_key(client: &Client, name: &str) -> anyhow::Result<String> {
    let label_shape = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if label_shape {
        let r = client.send("GET", &format!("/api/v1/keys/{name}"), None, vec![])?;
        match r.status {
            200 => return Ok(name.to_string()),
            404 => {}
            s => bail!("reading key '{name}': {s} {}", r.problem()),
        }
    }
    let r = client.send("GET", "/api/v1/keys", None, vec![])?;
    if r.status != 200 {
        bail!("listing the keys: {} {}", r.status, r.problem());
    }
    let v = r.json()?;
    let found: Vec<String> = v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|d| names_openpgp_key(d, name))
                .filter_map(|d| d["label"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "the server has no key '{name}' this credential may use (name a key label, or an \
             OpenPGP fingerprint, key ID or user ID of a key made with `hallmark key openpgp`)"
        ),
        many => bail!(
            "'{name}' names several keys ({}); name one by its label or fingerprint",
            many.join(", ")
        ),
    }
}

/// The key's document (`GET /api/v1/keys/{label}`).
pub(super) fn key_document(client: &Client, label: &str) -> anyhow::Result<serde_json::Value> {
    if label.is_empty()
        || !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        bail!("'{label}' is not a key label (letters, digits, '-', '_' and '.')");
    }
    let path = format!("/api/v1/keys/{label}");
    let r = client.send("GET", &path, None, vec![])?;
    match r.status {
        200 => {}
        404 => bail!(
            "the server has no key '{label}' this credential may use (`hallmark key list` on the \
             server shows the labels)"
        ),
        s => bail!("reading key '{label}': {s} {}", r.problem()),
    }
    r.json()
}

/// The key's OpenPGP certificate, from the server.
pub(super) fn key_certificate(
    client: &Client,
    label: &str,
) -> anyhow::Result<pgp::SignedPublicKey> {
    let v = key_document(client, label)?;
    let Some(armored) = v["openpgp"]["certificate"].as_str() else {
        bail!(
            "key '{label}' has no OpenPGP certificate yet: an officer makes it once with \
             `hallmark key openpgp {label} --uid \"Name <email>\"`"
        );
    };
    pgp::parse_certificate(armored.as_bytes())
        .map_err(|e| anyhow!("the server's OpenPGP certificate of key '{label}': {e}"))
}

/// Signs what `input` yields with key `label` and writes the result to `out`; the record id.
#[allow(clippy::too_many_arguments)]
pub(super) fn sign(
    client: &Client,
    label: &str,
    digest: Option<HashAlg>,
    mode: Mode,
    input: &mut dyn Read,
    out: &mut dyn Write,
    metadata: serde_json::Map<String, serde_json::Value>,
    timeout: u64,
    poll: u64,
) -> anyhow::Result<serde_json::Value> {
    let cert = key_certificate(client, label)?;
    let key = &cert.primary_key;
    let alg = pgp::key_algorithm(key).map_err(|e| anyhow!("key '{label}': {e}"))?;
    let hash = digest.unwrap_or_else(|| pgp::default_hash(alg));
    let service = Service {
        client,
        key: label,
        format: "openpgp",
        extra: serde_json::Map::new(),
        metadata,
        timeout,
        poll,
        record: RefCell::new(None),
    };
    let at =
        u32::try_from(crate::clock::Clock::now(&crate::clock::SystemClock)).unwrap_or(u32::MAX);
    let bytes = match mode {
        Mode::Detached { armor } => {
            let sig = pgp::detached(key, hash, input, &service, at)?;
            pgp::signature_bytes_out(sig, armor)?
        }
        Mode::Clear => {
            let mut text = String::new();
            input
                .read_to_string(&mut text)
                .context("a cleartext signature is over UTF-8 text; this input is not")?;
            pgp::clearsign(key, hash, &text, &service, at)?.into_bytes()
        }
    };
    out.write_all(&bytes).context("writing the signature")?;
    out.flush().context("writing the signature")?;
    let id = service.record.borrow_mut().take();
    Ok(id.unwrap_or(serde_json::Value::Null))
}

pub fn cmd_sign_openpgp(a: &OpenPgpArgs) -> anyhow::Result<()> {
    let hash = a
        .digest
        .as_deref()
        .map(parse_digest_algorithm)
        .transpose()
        .map_err(|e| anyhow!("--digest: {e}"))?;
    let client = a.request.server.client()?;
    let stdin = a.file.as_os_str() == "-";
    let mut meta = metadata(&a.file, &a.request.meta)?;
    if stdin {
        meta.remove("artifact");
    }
    meta.insert(
        "openpgp".into(),
        if a.clearsign { "cleartext" } else { "detached" }.into(),
    );
    let mut input: Box<dyn Read> = if stdin {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(&a.file)
                .with_context(|| format!("opening {}", a.file.display()))?,
        ))
    };
    let mode = if a.clearsign {
        Mode::Clear
    } else {
        Mode::Detached { armor: a.armor }
    };
    let to_stdout = a.out.as_os_str() == "-";
    let mut buf = Vec::new();
    let id = sign(
        &client,
        &a.request.key,
        hash,
        mode,
        &mut input,
        &mut buf,
        meta,
        a.request.timeout,
        a.request.poll,
    )?;
    if to_stdout {
        let mut o = std::io::stdout().lock();
        o.write_all(&buf).context("writing to standard output")?;
        o.flush().context("writing to standard output")?;
    } else {
        std::fs::write(&a.out, &buf).with_context(|| format!("writing {}", a.out.display()))?;
        eprintln!(
            "signed {} with key '{}' (OpenPGP, record {id}): {}",
            a.file.display(),
            a.request.key,
            a.out.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpg_names_for_a_key() {
        let doc = serde_json::json!({"label": "release", "openpgp": {
            "fingerprint": "467187C84DD7ECCE476E2B2D5ED06D76C7C776BC",
            "user_id": "Acme Release <release@acme.example>",
        }});
        for name in [
            "467187C84DD7ECCE476E2B2D5ED06D76C7C776BC",
            "0x5ED06D76C7C776BC",
            "c7c776bc",
            "4671 87C8 4DD7 ECCE 476E  2B2D 5ED0 6D76 C7C7 76BC",
            "Acme Release <release@acme.example>",
            "release@acme.example",
            "<release@acme.example>",
            "acme release",
        ] {
            assert!(names_openpgp_key(&doc, name), "{name}");
        }
        for name in ["DEADBEEF", "other@acme.example", "Globex"] {
            assert!(!names_openpgp_key(&doc, name), "{name}");
        }
        assert!(!names_openpgp_key(
            &serde_json::json!({"openpgp": null}),
            "x"
        ));
    }
}
