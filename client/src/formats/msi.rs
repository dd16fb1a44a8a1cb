//! Authenticode for MSI files (Windows Installer databases), assembled on the client.
//!
//! An MSI file is an OLE2 Compound File Binary: a small file system of *storages*
//! (directories, each with a 16-byte CLSID) and *streams* (files), packed into sectors. Its
//! Authenticode signature is not appended to the file like a PE's but kept in a stream of the
//! root storage, `\u{5}DigitalSignature`, holding the PKCS#7 DER. The sector layout is
//! therefore not what gets signed (adding a stream moves sectors around); the hash covers the
//! *logical* content instead, as osslsigncode's `msi_hash_dir` and Windows compute it:
//!
//! - the children of a storage are visited in the order of their raw directory-entry names,
//!   i.e. the UTF-16LE bytes with the terminating NUL, compared bytewise (`memcmp`, so the
//!   low byte of each code unit decides first; a name that is a prefix of another, which
//!   the NUL makes impossible for valid names, would sort after it);
//! - a stream contributes its bytes (an empty stream nothing), a storage contributes its own
//!   hash input recursively;
//! - after its children, each storage (the root included) contributes its CLSID as the 16
//!   bytes stored in the directory entry;
//! - at the root only, `\u{5}DigitalSignature` and `\u{5}MsiDigitalSignatureEx` are skipped.
//!
//! Names, sizes and timestamps are not hashed (only the optional MsiDigitalSignatureEx,
//! a hash of that metadata which Windows then folds into the signed digest, would cover
//! them; it is not produced here, as osslsigncode only writes it with `-add-msi-dse`).
//!
//! [`MsiFile::parse`] opens the compound file with the `cfb` crate in memory, refuses a
//! signed file, reads every stream once to check it, and keeps the list of what the hash takes
//! in order (stream paths and CLSIDs); [`Signable::digest`] reads the streams again from the
//! file in memory and feeds them to the hash, so a package is held once, not twice. [`Signable::indirect_data`] builds a SpcIndirectDataContent of type
//! SPC_SIPINFO_OBJID with the SpcSipInfo naming the MSI subject interface package, as
//! signtool and osslsigncode write it. [`Signable::embed`] adds the signature stream to the
//! compound file in place (cfb rewrites only the sectors and directory entries it touches),
//! so every other stream and storage, their CLSIDs, the summary information and the
//! timestamps stay as they were.
//!
//! A file with a `\u{5}MsiDigitalSignatureEx` stream but no `\u{5}DigitalSignature` is a
//! leftover of a removed signature. Kept, it would break the new signature: verifiers that
//! find it (Windows, osslsigncode) prepend its metadata hash to the content hash, which the
//! digest here does not include. It is outside the hash anyway, so [`Signable::embed`]
//! removes it, as `osslsigncode sign` does without `-add-msi-dse`.

use std::cmp::Ordering;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use crate::algorithm::HashAlg;
use crate::der::tlv;

use super::authenticode::{indirect_data_content, AuthenticodeError, Hasher, Signable};

/// Errors reading or writing a MSI file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MsiError {
    #[error("not a MSI file: {0}")]
    NotMsi(String),
    #[error("unsupported MSI file: {0}")]
    Unsupported(String),
    #[error("the MSI file is already signed (it has a \\u{{5}}DigitalSignature {0}); sign an unsigned file")]
    AlreadySigned(&'static str),
    #[error("cannot add the signature to the MSI file: {0}")]
    Embed(String),
}

/// The root-storage stream holding the PKCS#7 signature.
const DIGITAL_SIGNATURE: &str = "\u{5}DigitalSignature";
/// The optional root-storage stream holding the hash of the file's metadata.
const DIGITAL_SIGNATURE_EX: &str = "\u{5}MsiDigitalSignatureEx";
/// SPC_SIPINFO_OBJID: the SpcIndirectDataContent type for files signed through a SIP.
const SPC_SIPINFO_OBJID: &str = "1.3.6.1.4.1.311.2.1.30";
/// The MSI subject interface package's GUID {000C10F1-0000-0000-C000-000000000046}, in its
/// in-memory (little-endian fields) byte order, as SpcSipInfo carries it.
const MSI_SIP_GUID: [u8; 16] = [
    0xf1, 0x10, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46,
];
/// How deep storages may nest (MSI files use one or two levels; this bounds the recursion).
const MAX_DEPTH: usize = 64;

/// A parsed, unsigned MSI file.
#[derive(Debug, Clone)]
pub struct MsiFile {
    /// The compound file as read.
    data: Vec<u8>,
    /// What the Authenticode hash takes, in order.
    pieces: Vec<Piece>,
    /// A leftover `\u{5}MsiDigitalSignatureEx` stream that [`Signable::embed`] removes.
    stale_ex: bool,
}

/// One part of the hash input: a stream's contents, or a storage's CLSID.
#[derive(Debug, Clone)]
enum Piece {
    Stream { path: PathBuf, len: u64 },
    Clsid([u8; 16]),
}

/// A storage's child as the hash needs it.
struct Child {
    /// The raw directory-entry name: UTF-16LE with the terminating NUL.
    raw_name: Vec<u8>,
    name: String,
    path: PathBuf,
    is_stream: bool,
    len: u64,
    clsid: [u8; 16],
}

/// The raw directory-entry name of `name`: its UTF-16LE bytes and the terminating NUL.
fn raw_name(name: &str) -> Vec<u8> {
    name.encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// osslsigncode's (and Windows') order of the children of a storage for the hash: the raw
/// names compared bytewise over their common length; on a tie, the longer name first.
fn hash_order(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    match a[..n].cmp(&b[..n]) {
        Ordering::Equal => b.len().cmp(&a.len()),
        other => other,
    }
}

fn not_msi(e: std::io::Error) -> MsiError {
    MsiError::NotMsi(e.to_string())
}

impl MsiFile {
    /// Parses a MSI file, refusing anything signed or malformed.
    pub fn parse(data: Vec<u8>) -> Result<MsiFile, MsiError> {
        MsiFile::open(data, false).map(|(f, _)| f)
    }

    /// Parses a signed MSI file (for verification): the file as its hash sees it, and the
    /// PKCS#7 in `\u{5}DigitalSignature`. A `\u{5}MsiDigitalSignatureEx` (the extended
    /// signature, which also hashes the metadata of every entry) is refused.
    pub fn parse_signed(data: Vec<u8>) -> Result<(MsiFile, Vec<u8>), MsiError> {
        let (f, sig) = MsiFile::open(data, true)?;
        if f.stale_ex {
            return Err(MsiError::Unsupported(
                "MsiDigitalSignatureEx (extended) signatures are not verified here".into(),
            ));
        }
        let sig = sig.ok_or_else(|| MsiError::NotMsi("the package is not signed".into()))?;
        Ok((f, sig))
    }

    fn open(data: Vec<u8>, signed: bool) -> Result<(MsiFile, Option<Vec<u8>>), MsiError> {
        if u32::try_from(data.len()).is_err() {
            // osslsigncode's (and the format's practical) limit: stream sizes are 32-bit.
            return Err(MsiError::Unsupported("larger than 4 GiB".into()));
        }
        let mut cf = cfb::CompoundFile::open(Cursor::new(data.as_slice())).map_err(not_msi)?;
        let mut stale_ex = false;
        let root_names: Vec<(String, bool)> = cf
            .read_root_storage()
            .map(|e| (e.name().to_string(), e.is_stream()))
            .collect();
        let mut signature = None;
        for (name, is_stream) in &root_names {
            if name == DIGITAL_SIGNATURE && signed && *is_stream {
                let mut stream = cf
                    .open_stream(Path::new("/").join(DIGITAL_SIGNATURE))
                    .map_err(not_msi)?;
                let mut sig = Vec::new();
                (&mut stream)
                    .take(1 << 24)
                    .read_to_end(&mut sig)
                    .map_err(not_msi)?;
                signature = Some(sig);
                continue;
            }
            if name == DIGITAL_SIGNATURE {
                return Err(MsiError::AlreadySigned(if *is_stream {
                    "stream"
                } else {
                    "storage"
                }));
            }
            if name == DIGITAL_SIGNATURE_EX {
                if !is_stream {
                    return Err(MsiError::Unsupported(
                        "\\u{5}MsiDigitalSignatureEx is a storage, not a stream".into(),
                    ));
                }
                stale_ex = true;
            }
        }
        // cfb looks names up case-insensitively (as the format says): another entry whose name
        // differs from the signature stream's only in case would be taken for it.
        if signature.is_none() && cf.exists(Path::new("/").join(DIGITAL_SIGNATURE)) {
            return Err(MsiError::Unsupported(
                "an entry whose name differs from \\u{5}DigitalSignature only in case".into(),
            ));
        }
        let root_clsid = cf.root_entry().clsid().to_bytes_le();
        let mut plan = Plan {
            pieces: Vec::new(),
            // Streams own distinct sectors and a CLSID is smaller than its directory entry, so
            // the hash input of a well-formed file is never larger than the file: more means
            // cross-linked sector chains, which would let a small file inflate without bound.
            left: data.len() as u64,
        };
        hash_storage(&mut cf, Path::new("/"), root_clsid, 0, &mut plan)?;
        drop(cf);
        Ok((
            MsiFile {
                data,
                pieces: plan.pieces,
                stale_ex,
            },
            signature,
        ))
    }

    /// Feeds the hash input to `sink` in order, reading the streams from the file in memory.
    fn feed(&self, sink: &mut dyn FnMut(&[u8])) -> Result<(), MsiError> {
        let mut cf = cfb::CompoundFile::open(Cursor::new(self.data.as_slice())).map_err(not_msi)?;
        let mut buf = vec![0u8; 64 * 1024];
        for piece in &self.pieces {
            match piece {
                Piece::Clsid(clsid) => sink(clsid),
                Piece::Stream { path, len } => {
                    let mut stream = cf.open_stream(path).map_err(not_msi)?;
                    let mut read = 0u64;
                    loop {
                        let n = stream.read(&mut buf).map_err(not_msi)?;
                        if n == 0 {
                            break;
                        }
                        read += n as u64;
                        sink(&buf[..n]);
                    }
                    if read != *len {
                        return Err(MsiError::NotMsi(format!(
                            "stream {path:?} changed while it was hashed"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// What [`hash_storage`] collects: the pieces of the hash input, and how many more bytes the
/// streams may hold.
struct Plan {
    pieces: Vec<Piece>,
    left: u64,
}

/// Appends to `plan` what the hash takes from the storage at `path` (CLSID `clsid`, `depth`
/// storages below the root): its children in hash order, then its CLSID. Every stream is read
/// through once here, so that a stream shorter than its directory entry, or streams holding
/// more than the file, are refused now.
fn hash_storage<F: Read + std::io::Seek>(
    cf: &mut cfb::CompoundFile<F>,
    path: &Path,
    clsid: [u8; 16],
    depth: usize,
    plan: &mut Plan,
) -> Result<(), MsiError> {
    if depth > MAX_DEPTH {
        return Err(MsiError::Unsupported(format!(
            "storages nested more than {MAX_DEPTH} deep"
        )));
    }
    let mut children: Vec<Child> = cf
        .read_storage(path)
        .map_err(not_msi)?
        .map(|e| Child {
            raw_name: raw_name(e.name()),
            name: e.name().to_string(),
            path: e.path().to_path_buf(),
            is_stream: e.is_stream(),
            len: e.len(),
            clsid: e.clsid().to_bytes_le(),
        })
        .collect();
    children.sort_by(|a, b| hash_order(&a.raw_name, &b.raw_name));
    for child in children {
        if depth == 0 && (child.name == DIGITAL_SIGNATURE || child.name == DIGITAL_SIGNATURE_EX) {
            continue;
        }
        if child.is_stream {
            if child.len == 0 {
                continue;
            }
            if child.len > plan.left {
                return Err(MsiError::NotMsi(
                    "its streams hold more data than the file (cross-linked sectors)".into(),
                ));
            }
            plan.left -= child.len;
            let mut stream = cf.open_stream(&child.path).map_err(not_msi)?;
            let read = std::io::copy(&mut stream, &mut std::io::sink()).map_err(not_msi)?;
            if read != child.len {
                return Err(MsiError::NotMsi(format!(
                    "stream {:?} holds {read} bytes, its directory entry says {}",
                    child.path, child.len
                )));
            }
            plan.pieces.push(Piece::Stream {
                path: child.path,
                len: child.len,
            });
        } else {
            hash_storage(cf, &child.path, child.clsid, depth + 1, plan)?;
        }
    }
    plan.pieces.push(Piece::Clsid(clsid));
    Ok(())
}

/// `SpcSipInfo ::= SEQUENCE { version 1, sipGuid OCTET STRING, 0, 0, 0, 0, 0 }` for the MSI
/// subject interface package.
fn sip_info() -> Vec<u8> {
    let zero = [0x02, 0x01, 0x00];
    let mut body = vec![0x02, 0x01, 0x01];
    body.extend_from_slice(&tlv(0x04, &MSI_SIP_GUID));
    for _ in 0..5 {
        body.extend_from_slice(&zero);
    }
    tlv(0x30, &body)
}

impl Signable for MsiFile {
    fn kind(&self) -> &'static str {
        "MSI"
    }
    fn digest(&self, hash: HashAlg) -> Result<Vec<u8>, AuthenticodeError> {
        let mut h = Hasher::new(hash);
        self.feed(&mut |data| h.update(data))?;
        Ok(h.finish())
    }
    fn indirect_data(&self, hash: HashAlg, digest: &[u8]) -> Vec<u8> {
        indirect_data_content(SPC_SIPINFO_OBJID, &sip_info(), hash, digest)
    }
    fn embed(self: Box<Self>, pkcs7: &[u8]) -> Result<Vec<u8>, AuthenticodeError> {
        let MsiFile { data, stale_ex, .. } = *self;
        Ok(embed_signature(data, stale_ex, pkcs7)?)
    }
}

/// The package in memory, refusing to grow past `cap` bytes: a malformed compound file can make
/// the writer place a new sector far past the end of the data (found by fuzzing: gigabytes of
/// padding from a file of a few kilobytes).
struct Capped {
    inner: Cursor<Vec<u8>>,
    cap: u64,
}

impl std::io::Read for Capped {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl std::io::Seek for Capped {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let end = self.inner.position().saturating_add(buf.len() as u64);
        if end > self.cap {
            return Err(std::io::Error::other(format!(
                "the signed package would grow to {end} bytes, past what a signature adds to this one ({} bytes): its sector tables are malformed",
                self.cap
            )));
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Adds the `\u{5}DigitalSignature` stream holding `pkcs7` to the compound file `data`
/// (removing a leftover `\u{5}MsiDigitalSignatureEx` if `stale_ex`).
fn embed_signature(data: Vec<u8>, stale_ex: bool, pkcs7: &[u8]) -> Result<Vec<u8>, MsiError> {
    let embed = |e: std::io::Error| MsiError::Embed(e.to_string());
    // A new stream, and the sectors its tables take: well under twice its size plus 1 MiB.
    let cap = (data.len() as u64)
        .saturating_add(2 * pkcs7.len() as u64)
        .saturating_add(1 << 20);
    let capped = Capped {
        inner: Cursor::new(data),
        cap,
    };
    let mut cf = cfb::CompoundFile::open(capped).map_err(embed)?;
    let root = Path::new("/");
    if stale_ex {
        cf.remove_stream(root.join(DIGITAL_SIGNATURE_EX))
            .map_err(embed)?;
    }
    let mut stream = cf
        .create_new_stream(root.join(DIGITAL_SIGNATURE))
        .map_err(embed)?;
    stream.write_all(pkcs7).map_err(embed)?;
    stream.flush().map_err(embed)?;
    drop(stream);
    cf.flush().map_err(embed)?;
    Ok(cf.into_inner().inner.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compound file with two root streams (one past the mini-stream cutoff), a storage
    /// with a CLSID holding a stream, and a root CLSID.
    fn sample() -> Vec<u8> {
        let mut cf = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
        cf.create_stream("/b").unwrap().write_all(b"bee").unwrap();
        cf.create_stream("/a")
            .unwrap()
            .write_all(&[7u8; 5000])
            .unwrap();
        cf.create_storage("/s").unwrap();
        cf.create_stream("/s/x").unwrap().write_all(b"ex").unwrap();
        cf.create_stream("/empty").unwrap();
        cf.flush().unwrap();
        cf.into_inner().into_inner()
    }

    /// The bytes the hash is fed, in order.
    fn hash_input(msi: &MsiFile) -> Vec<u8> {
        let mut out = Vec::new();
        msi.feed(&mut |d| out.extend_from_slice(d)).unwrap();
        out
    }

    #[test]
    fn hash_order_is_bytewise_on_utf16le() {
        // U+3801 sorts after U+3900 bytewise (01 38 > 00 39), though before it as a code unit.
        let a = raw_name("\u{3801}");
        let b = raw_name("\u{3900}");
        assert_eq!(hash_order(&a, &b), Ordering::Greater);
        // Case matters (no case folding): 'B' (42) before 'a' (61).
        assert_eq!(hash_order(&raw_name("B"), &raw_name("a")), Ordering::Less);
        // A prefix sorts first: its NUL is smaller than the other name's next unit.
        assert_eq!(
            hash_order(&raw_name("ab"), &raw_name("abc")),
            Ordering::Less
        );
        // Without the NUL, a tie goes to the longer name.
        assert_eq!(hash_order(b"ab", b"abcd"), Ordering::Greater);
        let mut names = vec![
            raw_name("b"),
            raw_name("\u{5}x"),
            raw_name("A"),
            raw_name("a"),
        ];
        names.sort_by(|x, y| hash_order(x, y));
        assert_eq!(
            names,
            vec![
                raw_name("\u{5}x"),
                raw_name("A"),
                raw_name("a"),
                raw_name("b")
            ]
        );
    }

    #[test]
    fn hashes_streams_in_order_then_clsids() {
        let msi = MsiFile::parse(sample()).unwrap();
        let mut want = vec![7u8; 5000];
        want.extend_from_slice(b"bee");
        want.extend_from_slice(b"ex");
        want.extend_from_slice(&[0; 16]); // storage "s"
        want.extend_from_slice(&[0; 16]); // root
        assert_eq!(hash_input(&msi), want);
        assert_eq!(
            msi.digest(HashAlg::Sha256).unwrap(),
            HashAlg::Sha256.digest(&want)
        );
        assert_eq!(msi.digest(HashAlg::Sha384).unwrap().len(), 48);
    }

    #[test]
    fn storage_clsids_are_hashed_as_stored() {
        // Set storage "s"'s CLSID in its directory entry (name "s\0" of length 4, CLSID at
        // 0x50); cfb would need the uuid crate's type for it.
        let mut data = sample();
        let at = (512..data.len())
            .step_by(128)
            .find(|&o| data[o..o + 4] == *b"s\0\0\0" && data[o + 0x40..o + 0x42] == [4, 0])
            .unwrap();
        let id: [u8; 16] = core::array::from_fn(|i| i as u8 + 1);
        data[at + 0x50..at + 0x60].copy_from_slice(&id);
        let hashed = hash_input(&MsiFile::parse(data).unwrap());
        let n = hashed.len();
        assert_eq!(hashed[n - 32..n - 16], id);
        assert_eq!(hashed[n - 16..], [0; 16]);
    }

    #[test]
    fn embeds_and_refuses_signed_and_malformed() {
        let msi = MsiFile::parse(sample()).unwrap();
        let digest = msi.digest(HashAlg::Sha256).unwrap();
        let signed = Box::new(msi).embed(b"\x30\x03\x02\x01\x01").unwrap();
        let err = MsiFile::parse(signed.clone()).unwrap_err();
        assert_eq!(err, MsiError::AlreadySigned("stream"));
        assert!(err.to_string().contains("already signed"), "{err}");
        // The signature stream is outside the hash; everything else is still there.
        let mut cf = cfb::CompoundFile::open(Cursor::new(signed)).unwrap();
        let mut sig = Vec::new();
        cf.open_stream(DIGITAL_SIGNATURE)
            .unwrap()
            .read_to_end(&mut sig)
            .unwrap();
        assert_eq!(sig, b"\x30\x03\x02\x01\x01");
        cf.remove_stream(DIGITAL_SIGNATURE).unwrap();
        cf.flush().unwrap();
        let again = MsiFile::parse(cf.into_inner().into_inner()).unwrap();
        assert_eq!(again.digest(HashAlg::Sha256).unwrap(), digest);

        for bad in [Vec::new(), b"hello".to_vec(), vec![0u8; 4096]] {
            assert!(matches!(MsiFile::parse(bad), Err(MsiError::NotMsi(_))));
        }
        let good = sample();
        // (Cutting into unused space at the end may still leave a readable file.)
        for cut in [8, 100, 512, 1000, good.len() / 2] {
            assert!(
                MsiFile::parse(good[..cut].to_vec()).is_err(),
                "cut at {cut}"
            );
        }
        // Flipped bytes anywhere must give an error or a parse, never a panic.
        for at in (0..good.len()).step_by(7) {
            let mut d = good.clone();
            d[at] ^= 0xa5;
            let _ = MsiFile::parse(d);
        }
    }
}
