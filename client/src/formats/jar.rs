//! JAR signing (the JAR File Specification's "Signed JAR File"), assembled on the client.
//!
//! [`prepare`] reads a jar and writes the two text files a signer adds: `META-INF/MANIFEST.MF`
//! (the existing main attributes kept byte for byte, one section per entry with its
//! `SHA-256-Digest`, other per-entry attributes kept) and `META-INF/<SIGNER>.SF`
//! (`SHA-256-Digest-Manifest`, `SHA-256-Digest-Manifest-Main-Attributes`, one section digest
//! per entry, `Created-By`). The server signs the SHA-256 of the .SF bytes as a detached CMS
//! SignedData (with a time-stamp token), which [`assemble`] stores as the signature block
//! `META-INF/<SIGNER>.EC` (or `.RSA`). Entries come out in the order `JarInputStream` wants:
//! the manifest first, then the .SF and the block, then every other entry copied unchanged
//! (compressed bytes included).
//!
//! An already-signed jar (any `META-INF/*.SF`, `.RSA`, `.DSA`, `.EC` or `SIG-*`) is refused:
//! re-signing would silently drop the other signer.

use std::collections::HashMap;
use std::io::{Read, Seek, Write};

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Errors reading or writing a jar.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JarError {
    #[error("not a readable jar/zip: {0}")]
    Zip(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("the jar is already signed ({0}); sign an unsigned jar")]
    AlreadySigned(String),
    #[error("the manifest is not valid: {0}")]
    Manifest(String),
    #[error("signer name '{0}' must be 1 to 8 characters of A-Z, 0-9, '_' or '-'")]
    SignerName(String),
}

impl From<zip::result::ZipError> for JarError {
    fn from(e: zip::result::ZipError) -> Self {
        JarError::Zip(e.to_string())
    }
}

pub const MANIFEST: &str = "META-INF/MANIFEST.MF";

/// The signature files a signer adds, prepared before anything is signed.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The new `META-INF/MANIFEST.MF`.
    pub manifest: Vec<u8>,
    /// The new `META-INF/<SIGNER>.SF`; the server signs its SHA-256.
    pub signature_file: Vec<u8>,
    /// Upper-case signer name (`SIGNER` in `SIGNER.SF`).
    pub signer: String,
    /// How many entries the manifest covers.
    pub entries: usize,
}

/// The block file extension for a signer key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    Ec,
    Rsa,
}

impl BlockKind {
    pub fn extension(self) -> &'static str {
        match self {
            BlockKind::Ec => "EC",
            BlockKind::Rsa => "RSA",
        }
    }
}

/// Whether `name` is one of the signature-related files of META-INF (JAR spec: not digested).
fn is_signature_file(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("META-INF/") else {
        return false;
    };
    if rest.contains('/') {
        return false;
    }
    let up = rest.to_ascii_uppercase();
    up.ends_with(".SF")
        || up.ends_with(".RSA")
        || up.ends_with(".DSA")
        || up.ends_with(".EC")
        || up.starts_with("SIG-")
}

/// Checks and upper-cases a signer name.
pub fn signer_name(name: &str) -> Result<String, JarError> {
    let up = name.to_ascii_uppercase();
    if up.is_empty()
        || up.len() > 8
        || !up
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(JarError::SignerName(name.to_string()));
    }
    Ok(up)
}

/// Writes `Key: value` as manifest lines of at most 72 bytes (continuations start with a space).
fn push_header(out: &mut Vec<u8>, key: &str, value: &str) {
    let line = format!("{key}: {value}");
    let bytes = line.as_bytes();
    let mut start = 0;
    let mut first = true;
    while start < bytes.len() || first {
        let room = if first { 72 } else { 71 };
        let mut end = (start + room).min(bytes.len());
        // Never split a UTF-8 character.
        while end < bytes.len() && end > start && (bytes[end] & 0xc0) == 0x80 {
            end -= 1;
        }
        if !first {
            out.push(b' ');
        }
        out.extend_from_slice(&bytes[start..end]);
        out.extend_from_slice(b"\r\n");
        start = end;
        first = false;
    }
}

/// A section's `(key, value)` headers, continuation lines joined.
type Headers = Vec<(String, String)>;

/// A manifest split into its main section (raw bytes, up to and including the blank line) and
/// its named sections (name, other attributes in order).
struct Manifest {
    main: Vec<u8>,
    sections: Vec<(String, Headers)>,
}

/// Splits manifest text into sections of unfolded `(key, value)` headers, with each section's
/// raw bytes.
fn parse_manifest(data: &[u8]) -> Result<Manifest, JarError> {
    let bad = |why: &str| JarError::Manifest(why.to_string());
    // Split into lines, remembering byte offsets, with any of CRLF, LF, CR.
    let mut lines: Vec<(usize, usize, usize)> = Vec::new(); // (start, end, next)
    let mut i = 0;
    while i < data.len() {
        let start = i;
        while i < data.len() && data[i] != b'\n' && data[i] != b'\r' {
            i += 1;
        }
        let end = i;
        if i < data.len() && data[i] == b'\r' {
            i += 1;
        }
        if i < data.len() && data[i] == b'\n' {
            i += 1;
        }
        lines.push((start, end, i));
    }
    // (start, end, headers) of each section.
    let mut sections: Vec<(usize, usize, Headers)> = Vec::new();
    let mut cur: Headers = Vec::new();
    let mut cur_start = 0;
    let mut in_section = false;
    for &(s, e, next) in &lines {
        let line = std::str::from_utf8(&data[s..e]).map_err(|_| bad("not UTF-8"))?;
        if line.is_empty() {
            if in_section || sections.is_empty() {
                sections.push((cur_start, next, std::mem::take(&mut cur)));
            }
            in_section = false;
            cur_start = next;
            continue;
        }
        in_section = true;
        if let Some(cont) = line.strip_prefix(' ') {
            let last = cur
                .last_mut()
                .ok_or_else(|| bad("continuation line first"))?;
            last.1.push_str(cont);
        } else {
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| bad("a header line without ':'"))?;
            cur.push((k.to_string(), v.strip_prefix(' ').unwrap_or(v).to_string()));
        }
    }
    if in_section {
        sections.push((cur_start, data.len(), cur));
    }
    let mut it = sections.into_iter();
    let main = match it.next() {
        Some((s, e, _)) => {
            let mut m = data[s..e].to_vec();
            // The main section must end with a blank line.
            if !m.ends_with(b"\r\n\r\n") && !m.ends_with(b"\n\n") {
                while matches!(m.last(), Some(b'\r' | b'\n')) {
                    m.pop();
                }
                m.extend_from_slice(b"\r\n\r\n");
            }
            m
        }
        None => Vec::new(),
    };
    let mut named = Vec::new();
    for (_, _, headers) in it {
        if headers.is_empty() {
            continue;
        }
        let mut name = None;
        let mut rest = Vec::new();
        for (k, v) in headers {
            if k.eq_ignore_ascii_case("Name") {
                name = Some(v);
            } else if !k.to_ascii_lowercase().ends_with("-digest") {
                rest.push((k, v));
            }
        }
        if let Some(n) = name {
            named.push((n, rest));
        }
    }
    Ok(Manifest {
        main,
        sections: named,
    })
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Reads a jar and prepares the manifest and the signature file for `signer`.
pub fn prepare<R: Read + Seek>(jar: R, signer: &str) -> Result<Prepared, JarError> {
    let signer = signer_name(signer)?;
    let mut zip = zip::ZipArchive::new(jar)?;
    let mut old_manifest: Option<Vec<u8>> = None;
    let mut digests: Vec<(String, [u8; 32])> = Vec::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i)?;
        let name = f.name()?.into_owned();
        if name.eq_ignore_ascii_case(MANIFEST) {
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)?;
            old_manifest = Some(buf);
            continue;
        }
        if is_signature_file(&name) {
            return Err(JarError::AlreadySigned(name));
        }
        if f.is_dir() {
            continue;
        }
        let mut h = Sha256::new();
        std::io::copy(&mut f, &mut h)?;
        digests.push((name, h.finalize().into()));
    }
    let parsed = match &old_manifest {
        Some(m) => parse_manifest(m)?,
        None => Manifest {
            main: Vec::new(),
            sections: Vec::new(),
        },
    };
    let mut main = parsed.main;
    if main.is_empty() || !main.starts_with(b"Manifest-Version:") {
        // No usable main section: a fresh one (jarsigner does the same).
        let mut m = Vec::new();
        push_header(&mut m, "Manifest-Version", "1.0");
        push_header(&mut m, "Created-By", created_by());
        m.extend_from_slice(b"\r\n");
        if !main.is_empty() {
            return Err(JarError::Manifest(
                "the main section does not start with Manifest-Version".into(),
            ));
        }
        main = m;
    }
    let extra: HashMap<String, Vec<(String, String)>> = parsed.sections.into_iter().collect();
    let mut manifest = main.clone();
    let mut sf_sections = Vec::new();
    for (name, digest) in &digests {
        let mut sec = Vec::new();
        push_header(&mut sec, "Name", name);
        if let Some(attrs) = extra.get(name) {
            for (k, v) in attrs {
                push_header(&mut sec, k, v);
            }
        }
        push_header(&mut sec, "SHA-256-Digest", &b64(digest));
        sec.extend_from_slice(b"\r\n");
        let mut sf = Vec::new();
        push_header(&mut sf, "Name", name);
        push_header(&mut sf, "SHA-256-Digest", &b64(&Sha256::digest(&sec)));
        sf.extend_from_slice(b"\r\n");
        sf_sections.push(sf);
        manifest.extend_from_slice(&sec);
    }
    let mut sf = Vec::new();
    push_header(&mut sf, "Signature-Version", "1.0");
    push_header(&mut sf, "Created-By", created_by());
    push_header(
        &mut sf,
        "SHA-256-Digest-Manifest-Main-Attributes",
        &b64(&Sha256::digest(&main)),
    );
    push_header(
        &mut sf,
        "SHA-256-Digest-Manifest",
        &b64(&Sha256::digest(&manifest)),
    );
    sf.extend_from_slice(b"\r\n");
    for s in sf_sections {
        sf.extend_from_slice(&s);
    }
    Ok(Prepared {
        manifest,
        signature_file: sf,
        signer,
        entries: digests.len(),
    })
}

fn created_by() -> &'static str {
    concat!("hallmark ", env!("CARGO_PKG_VERSION"))
}

/// Writes the signed jar: manifest, .SF, signature block (`block`, the DER detached CMS over
/// the .SF), then every other entry of `jar` copied unchanged.
pub fn assemble<R: Read + Seek, W: Write + Seek>(
    jar: R,
    prepared: &Prepared,
    kind: BlockKind,
    block: &[u8],
    out: W,
    now: time::OffsetDateTime,
) -> Result<W, JarError> {
    let mut zip = zip::ZipArchive::new(jar)?;
    let mut w = zip::ZipWriter::new(out);
    // The entries hallmark adds carry no POSIX attributes (made by "DOS", as the JDK's jar
    // tool writes them: jarsigner warns that Unix permissions are not protected by the
    // signature) and the time of signing, `now` (not the zip format's 1980-01-01 default).
    let stamp = zip::DateTime::from_date_and_time(
        u16::try_from(now.year()).unwrap_or(1980),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
    )
    .unwrap_or_default();
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .system(zip::System::Dos)
        .last_modified_time(stamp);
    let has_dir = (0..zip.len()).any(|i| {
        zip.by_index_raw(i)
            .ok()
            .and_then(|f| f.name().ok().map(|n| n == "META-INF/"))
            .unwrap_or(false)
    });
    if has_dir {
        w.add_directory("META-INF/", opts)?;
    }
    w.start_file(MANIFEST, opts)?;
    w.write_all(&prepared.manifest)?;
    w.start_file(format!("META-INF/{}.SF", prepared.signer), opts)?;
    w.write_all(&prepared.signature_file)?;
    w.start_file(
        format!("META-INF/{}.{}", prepared.signer, kind.extension()),
        opts,
    )?;
    w.write_all(block)?;
    for i in 0..zip.len() {
        let f = zip.by_index_raw(i)?;
        let name = f.name()?.into_owned();
        if name.eq_ignore_ascii_case(MANIFEST) || name == "META-INF/" {
            continue;
        }
        w.raw_copy_file(f)?;
    }
    Ok(w.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_headers_wrap_at_72_bytes() {
        let mut out = Vec::new();
        let name = "a/".repeat(60);
        push_header(&mut out, "Name", &name);
        let text = String::from_utf8(out).unwrap();
        for l in text.split("\r\n") {
            assert!(l.len() <= 72, "{l}");
        }
        let unfolded: String = text
            .split("\r\n")
            .enumerate()
            .map(|(i, l)| {
                if i == 0 {
                    l
                } else {
                    l.strip_prefix(' ').unwrap_or(l)
                }
            })
            .collect();
        assert_eq!(unfolded, format!("Name: {name}"));
    }

    #[test]
    fn manifests_parse() {
        let m = b"Manifest-Version: 1.0\r\nCreated-By: 17 (Debian)\r\n\r\nName: a/B.class\r\nX-Thing: 1\r\nSHA1-Digest: abc\r\n\r\n";
        let p = parse_manifest(m).unwrap();
        assert_eq!(
            p.main,
            b"Manifest-Version: 1.0\r\nCreated-By: 17 (Debian)\r\n\r\n"
        );
        assert_eq!(
            p.sections,
            vec![(
                "a/B.class".to_string(),
                vec![("X-Thing".to_string(), "1".to_string())]
            )]
        );
        let m = b"Manifest-Version: 1.0\nMain-Class: x.Y\n";
        let p = parse_manifest(m).unwrap();
        assert_eq!(p.main, b"Manifest-Version: 1.0\nMain-Class: x.Y\r\n\r\n");
    }

    #[test]
    fn signer_names() {
        assert_eq!(signer_name("release").unwrap(), "RELEASE");
        assert!(signer_name("too-long-name").is_err());
        assert!(signer_name("a.b").is_err());
        assert!(is_signature_file("META-INF/X.SF"));
        assert!(!is_signature_file("META-INF/maven/x.SF"));
    }
}
