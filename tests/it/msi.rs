//! MSI Authenticode (`hallmark::formats::msi`) against the real tools: MSI files made by
//! `wixl`, signed by `osslsigncode`, checked with `osslsigncode verify` and `msiinfo`. A
//! missing tool fails the test.

use std::io::{Cursor, Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use crate::common::*;
use hallmark::formats::authenticode::{open, Signable};
use hallmark::formats::msi::{MsiError, MsiFile};
use hallmark::keys::HashAlg;

const WXS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">
  <Product Id="*" Name="HallmarkTest" Language="1033" Version="1.0.0" Manufacturer="hallmark" UpgradeCode="12345678-1234-1234-1234-123456789012">
    <Package InstallerVersion="200" Compressed="yes" />
    <Media Id="1" Cabinet="t.cab" EmbedCab="yes" />
    <Directory Id="TARGETDIR" Name="SourceDir"><Directory Id="ProgramFilesFolder"><Directory Id="INSTALLDIR" Name="HallmarkTest">
      <Component Id="C1" Guid="12345678-1234-1234-1234-123456789013"><File Id="F1" Source="PAYLOAD" /></Component>
    </Directory></Directory></Directory>
    <Feature Id="Main" Level="1"><ComponentRef Id="C1" /></Feature>
  </Product>
</Wix>
"#;

/// A temp directory with a throwaway code-signing key and certificate (k.pem, c.pem).
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        code_signing_cert(dir.path(), "hallmark msi test");
        Env { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// `wixl` builds NAME.msi holding the file NAME.bin with `payload`.
    fn msi(&self, name: &str, payload: &[u8]) -> String {
        let bin = format!("{name}.bin");
        std::fs::write(self.path(&bin), payload).expect("payload");
        let wxs = format!("{name}.wxs");
        std::fs::write(self.path(&wxs), WXS.replace("PAYLOAD", &bin)).expect("wxs");
        let msi = self.p(&format!("{name}.msi"));
        let (ok, text) = tool_run(self.dir.path(), "wixl", &["-o", &msi, &wxs]);
        assert!(ok, "wixl: {text}");
        msi
    }

    /// `osslsigncode sign -h HASH` of IN into OUT.
    fn sign(&self, input: &str, out: &str, hash: &str) {
        let _ = std::fs::remove_file(out);
        let (ok, text) = tool_run(
            self.dir.path(),
            "osslsigncode",
            &[
                "sign", "-certs", "c.pem", "-key", "k.pem", "-h", hash, "-in", input, "-out", out,
            ],
        );
        assert!(ok, "osslsigncode sign: {text}");
    }

    /// The PKCS#7 DER `osslsigncode extract-signature` takes out of FILE.
    fn extract(&self, file: &str) -> Vec<u8> {
        let out = format!("{file}.p7");
        let _ = std::fs::remove_file(&out);
        let (ok, text) = tool_run(
            self.dir.path(),
            "osslsigncode",
            &["extract-signature", "-in", file, "-out", &out],
        );
        assert!(ok, "osslsigncode extract-signature: {text}");
        std::fs::read(&out).expect("signature")
    }

    /// `osslsigncode verify` of FILE against c.pem; (ok, output).
    fn verify(&self, file: &str) -> (bool, String) {
        tool_run(
            self.dir.path(),
            "osslsigncode",
            &["verify", "-in", file, "-CAfile", "c.pem"],
        )
    }

    /// `msiinfo ARGS...`'s output.
    fn msiinfo(&self, args: &[&str]) -> String {
        let (ok, text) = tool_run(self.dir.path(), "msiinfo", args);
        assert!(ok, "msiinfo {args:?}: {text}");
        text
    }
}

/// Every stream (path → bytes) and storage (path → CLSID) of a compound file.
fn contents(file: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut cf = cfb::open(file).expect("open compound file");
    let entries: Vec<(PathBuf, bool, Vec<u8>)> = cf
        .walk()
        .map(|e| {
            let clsid = e.clsid().as_bytes().to_vec();
            (e.path().to_path_buf(), e.is_stream(), clsid)
        })
        .collect();
    let mut out = Vec::new();
    for (path, is_stream, clsid) in entries {
        if is_stream {
            let mut data = Vec::new();
            cf.open_stream(&path)
                .expect("stream")
                .read_to_end(&mut data)
                .expect("read");
            out.push((path, data));
        } else {
            out.push((path, clsid));
        }
    }
    out.sort();
    out
}

/// Rewrites the largest root stream of FILE (the embedded cabinet) with one byte changed.
fn tamper_largest_stream(file: &str) {
    let mut cf = cfb::open_rw(file).expect("open msi");
    let (path, _) = cf
        .read_root_storage()
        .filter(|e| e.is_stream())
        .map(|e| (e.path().to_path_buf(), e.len()))
        .max_by_key(|(_, len)| *len)
        .expect("a stream");
    let mut data = Vec::new();
    cf.open_stream(&path)
        .expect("stream")
        .read_to_end(&mut data)
        .expect("read");
    let mid = data.len() / 2;
    data[mid] ^= 0x01;
    let mut s = cf.open_stream(&path).expect("stream");
    s.rewind().expect("seek");
    s.write_all(&data).expect("write");
    drop(s);
    cf.flush().expect("flush");
}

fn parse(file: &str) -> MsiFile {
    MsiFile::parse(std::fs::read(file).expect("read msi")).expect("parse msi")
}

/// A deterministic incompressible payload of `len` bytes.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// (a) digest and content equal osslsigncode's, (b) osslsigncode's signature embedded by us
/// verifies and the MSI keeps its content, (c) tampering breaks it, for one MSI and hash.
fn check(env: &Env, msi: &str, hash: HashAlg, hash_name: &str, payload: &[u8]) {
    let tag = format!("{msi}.{hash_name}");
    let theirs = format!("{tag}.osslsigncode.msi");
    env.sign(msi, &theirs, hash_name);
    let p7 = env.extract(&theirs);
    let (their_content, their_digest) = authenticode_content(&p7);

    let ours = parse(msi);
    assert_eq!(ours.kind(), "MSI");
    let digest = ours.digest(hash).expect("digest");
    assert_eq!(
        hex::encode(&digest),
        hex::encode(&their_digest),
        "{tag}: digest"
    );
    assert_eq!(
        hex::encode(ours.indirect_data(hash, &digest)),
        hex::encode(&their_content),
        "{tag}: SpcIndirectDataContent"
    );

    // The generic entry point picks MSI from the magic and agrees.
    let via_open = open(std::fs::read(msi).expect("read")).expect("open");
    assert_eq!(via_open.kind(), "MSI");
    assert_eq!(via_open.digest(hash).expect("digest"), digest);

    let signed = format!("{tag}.hallmark.msi");
    let bytes = Box::new(ours).embed(&p7).expect("embed");
    std::fs::write(&signed, &bytes).expect("write signed");
    let (ok, text) = env.verify(&signed);
    assert!(ok, "{tag}: osslsigncode verify of our file: {text}");
    assert!(text.contains("Signature verification: ok"), "{text}");
    assert!(!text.contains("MISMATCH"), "{text}");
    assert_eq!(env.extract(&signed), p7, "{tag}: the embedded signature");

    // Everything but the signature stream is unchanged, as msiinfo and cfb see it.
    let before = contents(msi);
    let mut after = contents(&signed);
    let sig = Path::new("/\u{5}DigitalSignature");
    let at = after
        .iter()
        .position(|(p, _)| p == sig)
        .expect("signature stream");
    assert_eq!(after.remove(at).1, p7);
    assert_eq!(after, before, "{tag}: streams and storages");
    assert_eq!(
        env.msiinfo(&["tables", &signed]),
        env.msiinfo(&["tables", msi])
    );
    let mut streams: Vec<String> = env
        .msiinfo(&["streams", &signed])
        .lines()
        .map(str::to_string)
        .collect();
    let mut want: Vec<String> = env
        .msiinfo(&["streams", &theirs])
        .lines()
        .map(str::to_string)
        .collect();
    streams.sort();
    want.sort();
    assert_eq!(streams, want, "{tag}: msiinfo streams");
    assert!(streams.iter().any(|s| s == "\u{5}DigitalSignature"));
    assert_eq!(
        env.msiinfo(&["suminfo", &signed]),
        env.msiinfo(&["suminfo", msi])
    );

    // A changed byte of the cabinet, rewritten through the compound file, breaks it.
    let bad = format!("{tag}.tampered-stream.msi");
    std::fs::copy(&signed, &bad).expect("copy");
    tamper_largest_stream(&bad);
    let (ok, text) = env.verify(&bad);
    assert!(
        !ok && text.contains("MISMATCH"),
        "{tag}: tampered stream verified: {text}"
    );

    // So does a flipped byte of the payload found in the file itself.
    let window = &payload[payload.len() / 2..payload.len() / 2 + 32];
    let at = bytes
        .windows(window.len())
        .position(|w| w == window)
        .expect("the payload stored in the cabinet");
    let mut flipped = bytes.clone();
    flipped[at + 5] ^= 0x01;
    let bad = format!("{tag}.tampered-byte.msi");
    std::fs::write(&bad, flipped).expect("write");
    let (ok, text) = env.verify(&bad);
    assert!(
        !ok && text.contains("MISMATCH"),
        "{tag}: tampered byte verified: {text}"
    );

    // Signed files are refused, ours and osslsigncode's.
    for file in [&signed, &theirs] {
        let err = MsiFile::parse(std::fs::read(file).expect("read")).unwrap_err();
        assert!(err.to_string().contains("already signed"), "{err}");
        let err = open(std::fs::read(file).expect("read"))
            .err()
            .expect("refused");
        assert!(err.to_string().contains("already signed"), "{err}");
    }
}

#[test]
fn msi_signatures_match_and_verify_with_osslsigncode() {
    let env = Env::new();
    // Streams below the 4096-byte mini-stream cutoff only (the payload is incompressible, so
    // the cabinet stores it as is and its bytes can be found in the file)...
    let small_payload = noise(1500);
    let small = env.msi("small", &small_payload);
    // ...and a cabinet of some MB in regular sectors, with a larger FAT.
    let big_payload = noise(3_000_000);
    let big = env.msi("big", &big_payload);
    assert!(std::fs::metadata(&big).expect("big").len() > 3_000_000);
    for (msi, payload) in [(&small, &small_payload[..]), (&big, &big_payload[..])] {
        let (ok, text) = env.verify(msi);
        assert!(!ok, "an unsigned MSI verified: {text}");
        check(&env, msi, HashAlg::Sha256, "sha256", payload);
        check(&env, msi, HashAlg::Sha384, "sha384", payload);
    }
}

/// A leftover MsiDigitalSignatureEx (no DigitalSignature) is outside the hash and removed when
/// signing, as osslsigncode does; the result verifies.
#[test]
fn leftover_msi_digital_signature_ex_is_dropped() {
    let env = Env::new();
    let payload = b"leftover\n".repeat(100);
    let msi = env.msi("ex", &payload);
    let with_ex = env.p("ex-with-dse.msi");
    std::fs::copy(&msi, &with_ex).expect("copy");
    {
        let mut cf = cfb::open_rw(&with_ex).expect("open");
        cf.create_stream("/\u{5}MsiDigitalSignatureEx")
            .expect("create")
            .write_all(&[0x5a; 32])
            .expect("write");
        cf.flush().expect("flush");
    }
    let plain = parse(&msi);
    let ours = parse(&with_ex);
    assert_eq!(
        ours.digest(HashAlg::Sha256).expect("digest"),
        plain.digest(HashAlg::Sha256).expect("digest")
    );

    let theirs = env.p("ex-osslsigncode.msi");
    env.sign(&with_ex, &theirs, "sha256");
    let p7 = env.extract(&theirs);
    let (_, their_digest) = authenticode_content(&p7);
    assert_eq!(ours.digest(HashAlg::Sha256).expect("digest"), their_digest);

    let signed = env.p("ex-hallmark.msi");
    std::fs::write(&signed, Box::new(ours).embed(&p7).expect("embed")).expect("write");
    let (ok, text) = env.verify(&signed);
    assert!(ok && !text.contains("MISMATCH"), "{text}");
    let cf = cfb::open(&signed).expect("open");
    assert!(!cf.exists("/\u{5}MsiDigitalSignatureEx"));
    assert!(cf.is_stream("/\u{5}DigitalSignature"));
}

#[test]
fn malformed_msi_is_refused_without_panic() {
    let env = Env::new();
    let msi = env.msi("m", &noise(20_000));
    let good = std::fs::read(&msi).expect("read");
    assert!(MsiFile::parse(good.clone()).is_ok());

    let magic = [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1];
    let mut garbage = magic.to_vec();
    garbage.extend(noise(5000));
    for bad in [Vec::new(), b"not an msi".to_vec(), magic.to_vec(), garbage] {
        let err = MsiFile::parse(bad).unwrap_err();
        assert!(matches!(err, MsiError::NotMsi(_)), "{err:?}");
    }
    for cut in [8, 511, 512, 1536, good.len() / 3, good.len() / 2] {
        let err = MsiFile::parse(good[..cut].to_vec()).err();
        assert!(err.is_some(), "a MSI cut at {cut} parsed");
    }
    // Damage all over the header, FAT and directory: an error or a parse, never a panic.
    let mut x = 1u32;
    for _ in 0..2000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let at = (x as usize >> 4) % good.len().min(64 * 1024);
        let mut d = good.clone();
        d[at] ^= (x >> 24) as u8 | 1;
        let _ = MsiFile::parse(d);
    }
    // A garbage signature is still embedded as asked (the caller owns its contents).
    let m = Cursor::new(Box::new(parse(&msi)).embed(b"\x30\x00").expect("embed"));
    let mut cf = cfb::CompoundFile::open(m).expect("reopen");
    let mut sig = Vec::new();
    cf.open_stream("/\u{5}DigitalSignature")
        .expect("stream")
        .read_to_end(&mut sig)
        .expect("read");
    assert_eq!(sig, b"\x30\x00");
}
