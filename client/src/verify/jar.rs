//! Signed jars as `jarsigner -verify` reads them: the signature block (CMS over the .SF file),
//! the .SF's digest of the manifest, and the manifest's digest of every entry; an entry that is
//! not in the manifest, or a manifest entry that is missing, fails.

use std::collections::BTreeMap;
use std::io::Read;

use base64::Engine as _;

use crate::algorithm::HashAlg;

use super::{chain, cms, crypto, signer_checks, Options, Report};

/// The largest entry read (a jar bigger than this is refused rather than exhausting memory).
const MAX_ENTRY: u64 = 1 << 30;

/// Sections of a manifest or .SF: the main section (empty name) and one per `Name:`.
fn sections(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut lines: Vec<String> = Vec::new();
    for l in text.split('\n') {
        let l = l.strip_suffix('\r').unwrap_or(l);
        match (l.strip_prefix(' '), lines.last_mut()) {
            (Some(cont), Some(last)) => last.push_str(cont),
            _ => lines.push(l.to_string()),
        }
    }
    let mut current: BTreeMap<String, String> = BTreeMap::new();
    let mut name = String::new();
    let mut flush = |name: &mut String, current: &mut BTreeMap<String, String>| {
        if !current.is_empty() {
            out.insert(std::mem::take(name), std::mem::take(current));
        }
    };
    for l in lines {
        if l.is_empty() {
            flush(&mut name, &mut current);
            continue;
        }
        if let Some((k, v)) = l.split_once(": ") {
            if k == "Name" && current.is_empty() {
                name = v.to_string();
            }
            current.insert(k.to_string(), v.to_string());
        }
    }
    flush(&mut name, &mut current);
    out
}

fn digest_key(h: HashAlg) -> &'static str {
    match h {
        HashAlg::Sha256 => "SHA-256",
        HashAlg::Sha384 => "SHA-384",
        HashAlg::Sha512 => "SHA-512",
    }
}

/// The hash and expected digest a section names (the strongest it carries).
fn section_digest(s: &BTreeMap<String, String>, suffix: &str) -> Option<(HashAlg, Vec<u8>)> {
    [HashAlg::Sha512, HashAlg::Sha384, HashAlg::Sha256]
        .into_iter()
        .find_map(|h| {
            let v = s.get(&format!("{}{suffix}", digest_key(h)))?;
            base64::engine::general_purpose::STANDARD
                .decode(v)
                .ok()
                .map(|d| (h, d))
        })
}

fn is_signature_file(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with("META-INF/")
        && !upper["META-INF/".len()..].contains('/')
        && [".SF", ".EC", ".RSA", ".DSA"]
            .iter()
            .any(|e| upper.ends_with(e))
}

/// Verifies a signed jar.
pub fn verify(data: &[u8], o: &Options<'_>) -> Report {
    let mut r = Report::new("jar");
    match check(data, o, &mut r) {
        Ok(()) => {}
        Err((check, e)) => r.fail(check, e),
    }
    r
}

type Fail = (&'static str, String);

fn check(data: &[u8], o: &Options<'_>, r: &mut Report) -> Result<(), Fail> {
    let fmt = |e: String| ("format", e);
    let sig = |e: String| ("signature", e);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(data))
        .map_err(|e| fmt(format!("not a readable jar: {e}")))?;
    let mut entries: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip
            .by_index(i)
            .map_err(|e| fmt(format!("jar entry {i}: {e}")))?;
        if f.is_dir() {
            continue;
        }
        let name = f
            .name()
            .map_err(|e| fmt(format!("jar entry {i}: {e}")))?
            .to_string();
        let mut buf = Vec::new();
        f.by_ref()
            .take(MAX_ENTRY)
            .read_to_end(&mut buf)
            .map_err(|e| fmt(format!("jar entry {name}: {e}")))?;
        entries.insert(name, buf);
    }
    let manifest = entries
        .get("META-INF/MANIFEST.MF")
        .ok_or_else(|| fmt("no META-INF/MANIFEST.MF: the jar is not signed".into()))?;
    let sf_name = entries
        .keys()
        .find(|n| is_signature_file(n) && n.to_ascii_uppercase().ends_with(".SF"))
        .cloned()
        .ok_or_else(|| fmt("no META-INF/*.SF: the jar is not signed".into()))?;
    let stem = &sf_name[..sf_name.len() - 3];
    let block = [".EC", ".RSA", ".DSA"]
        .iter()
        .find_map(|e| entries.get(&format!("{stem}{e}")))
        .ok_or_else(|| fmt(format!("no signature block beside {sf_name}")))?;
    let sf = &entries[&sf_name];
    let sd = cms::parse(block).map_err(|e| fmt(format!("the signature block: {e}")))?;
    r.pass(
        "format",
        format!("signed jar, {} entries, signer {sf_name}", entries.len()),
    );
    // The block signs the .SF.
    let s = sd.signers.first().ok_or_else(|| sig("no signer".into()))?;
    let mut certs = sd.certificates.clone();
    certs.extend(o.certs.iter().cloned());
    let cert = cms::find_signer_cert(&s.sid, &certs)
        .ok_or_else(|| sig("the signer's certificate is not in the block".into()))?
        .clone();
    let h = cms::signer_hash(s).map_err(sig)?;
    let ok = cms::check_signer(s, cms::OID_DATA, &h.digest(sf), &cert)
        .map_err(|e| sig(format!("{sf_name}: {e}")))?;
    // The .SF covers the manifest.
    let sf_text = String::from_utf8_lossy(sf);
    let sf_sections = sections(&sf_text);
    let main = sf_sections.get("").cloned().unwrap_or_default();
    let mf_text = String::from_utf8_lossy(manifest);
    match section_digest(&main, "-Digest-Manifest") {
        Some((mh, d)) if d == mh.digest(manifest) => {}
        Some(_) => {
            return Err(sig(format!(
                "{sf_name}'s digest of the manifest does not match: the manifest was changed"
            )))
        }
        None => {
            return Err(sig(format!(
                "{sf_name} has no digest of the whole manifest"
            )))
        }
    }
    // The manifest covers every entry, and every entry is in it.
    let mf = sections(&mf_text);
    let mut checked = 0;
    for (name, body) in &entries {
        if name == "META-INF/MANIFEST.MF" || is_signature_file(name) {
            continue;
        }
        let section = mf.get(name).ok_or_else(|| {
            sig(format!(
                "{name} is not in the manifest: it was added after signing"
            ))
        })?;
        let (eh, d) = section_digest(section, "-Digest")
            .ok_or_else(|| sig(format!("the manifest has no digest for {name}")))?;
        if d != eh.digest(body) {
            return Err(sig(format!(
                "{name} does not match its digest: it was changed"
            )));
        }
        checked += 1;
    }
    for name in mf.keys() {
        if !name.is_empty() && !entries.contains_key(name) {
            return Err(sig(format!("{name} is in the manifest but not in the jar")));
        }
    }
    r.pass(
        "signature",
        format!(
            "{} by {} over {sf_name}; {checked} entries match the manifest ({})",
            ok.scheme,
            chain::signer_text(&cert),
            crypto::hash_name(ok.hash)
        ),
    );
    let token = cms::timestamp_token(s);
    signer_checks(r, &cert, &certs, token.as_deref(), &s.signature, o);
    Ok(())
}
