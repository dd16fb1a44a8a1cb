//! CAB Authenticode against the real tools: cabinets made by gcab (and one multi-folder cabinet
//! built here), signed by osslsigncode, compared with what `hallmark::formats::cab` computes,
//! and our own signed files checked with `osslsigncode verify`. A missing tool fails the test.

use std::path::PathBuf;

use crate::common::{authenticode_content, code_signing_cert, tool, tool_run};
use hallmark::formats::authenticode::{self, Signable};
use hallmark::formats::cab::{CabError, CabFile};
use hallmark::keys::HashAlg;

/// A temp dir with payload files and a throwaway code-signing key and certificate.
struct Work {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Work {
    fn new() -> Work {
        for t in ["gcab", "osslsigncode", "openssl"] {
            tool(t);
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        code_signing_cert(&dir, "cab test");
        let w = Work { _tmp: tmp, dir };
        w.write(
            "readme.txt",
            "hallmark cabinet payload\n".repeat(300).as_bytes(),
        );
        w.write(
            "tool.bin",
            &(0..70_000u32)
                .map(|i| (i * 7 % 251) as u8)
                .collect::<Vec<u8>>(),
        );
        w.write("tiny.txt", b"x");
        // Poorly compressible and larger than one 32 KiB CFDATA block.
        let mut x = 0x1234_5678u32;
        let noise: Vec<u8> = (0..150_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        w.write("noise.bin", &noise);
        w
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn write(&self, name: &str, data: &[u8]) {
        std::fs::write(self.path(name), data).expect("write");
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    fn gcab(&self, name: &str, args: &[&str]) {
        let mut a = args.to_vec();
        a.insert(1, name);
        let (ok, text) = tool_run(&self.dir, "gcab", &a);
        assert!(ok, "gcab {a:?}: {text}");
    }

    fn ossl(&self, args: &[&str]) -> (bool, String) {
        tool_run(&self.dir, "osslsigncode", args)
    }

    fn verify(&self, name: &str) -> (bool, String) {
        let (ok, text) = self.ossl(&["verify", "-in", name, "-CAfile", "c.pem"]);
        (ok && text.contains("Signature verification: ok"), text)
    }
}

/// The CFDATA checksum: little-endian 32-bit words XORed, the 1-3 bytes left over taken
/// big-endian-first, seeded with `seed`.
fn cfdata_checksum(data: &[u8], seed: u32) -> u32 {
    let mut sum = seed;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        sum ^= u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
    }
    sum ^ words
        .remainder()
        .iter()
        .fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
}

/// An uncompressed cabinet without reserve with one folder per payload, each holding one file
/// in one CFDATA block. gcab always writes a single folder.
fn multi_folder_cab(payloads: &[&[u8]]) -> Vec<u8> {
    let n = payloads.len();
    let coff_files = 36 + 8 * n;
    let files: Vec<Vec<u8>> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut f = Vec::new();
            f.extend_from_slice(&(p.len() as u32).to_le_bytes());
            f.extend_from_slice(&0u32.to_le_bytes());
            f.extend_from_slice(&(i as u16).to_le_bytes());
            f.extend_from_slice(&[0x21, 0x5b, 0x00, 0x60, 0x20, 0x00]);
            f.extend_from_slice(format!("part{i}.txt\0").as_bytes());
            f
        })
        .collect();
    let mut data_at = coff_files + files.iter().map(Vec::len).sum::<usize>();
    let (mut folders, mut blocks) = (Vec::new(), Vec::new());
    for p in payloads {
        folders.extend_from_slice(&(data_at as u32).to_le_bytes());
        folders.extend_from_slice(&1u16.to_le_bytes());
        folders.extend_from_slice(&0u16.to_le_bytes());
        let mut sizes = (p.len() as u16).to_le_bytes().to_vec();
        sizes.extend_from_slice(&(p.len() as u16).to_le_bytes());
        let sum = cfdata_checksum(&sizes, cfdata_checksum(p, 0));
        let mut b = sum.to_le_bytes().to_vec();
        b.extend_from_slice(&sizes);
        b.extend_from_slice(p);
        data_at += b.len();
        blocks.extend_from_slice(&b);
    }
    let mut d = b"MSCF".to_vec();
    d.extend_from_slice(&0u32.to_le_bytes());
    d.extend_from_slice(&(data_at as u32).to_le_bytes());
    d.extend_from_slice(&0u32.to_le_bytes());
    d.extend_from_slice(&(coff_files as u32).to_le_bytes());
    d.extend_from_slice(&0u32.to_le_bytes());
    d.extend_from_slice(&[3, 1]);
    d.extend_from_slice(&(n as u16).to_le_bytes());
    d.extend_from_slice(&(n as u16).to_le_bytes());
    d.extend_from_slice(&0u16.to_le_bytes()); // flags
    d.extend_from_slice(&0x4242u16.to_le_bytes()); // setID
    d.extend_from_slice(&0u16.to_le_bytes()); // iCabinet
    d.extend_from_slice(&folders);
    for f in &files {
        d.extend_from_slice(f);
    }
    d.extend_from_slice(&blocks);
    assert_eq!(d.len(), data_at);
    d
}

/// Signs cabinet `name` with osslsigncode and with our code around osslsigncode's PKCS#7, and
/// checks that both agree (digest, content, file) and that our file verifies and a changed
/// byte breaks it.
fn cross_check(w: &Work, name: &str, hash: HashAlg, hash_name: &str) {
    let tag = format!("{name}.{hash_name}");
    let theirs = format!("{tag}.ossl.cab");
    let (ok, text) = w.ossl(&[
        "sign", "-certs", "c.pem", "-key", "k.pem", "-h", hash_name, "-in", name, "-out", &theirs,
    ]);
    assert!(ok, "osslsigncode sign {tag}: {text}");
    let sig = format!("{tag}.sig.der");
    let (ok, text) = w.ossl(&["extract-signature", "-in", &theirs, "-out", &sig]);
    assert!(ok, "osslsigncode extract-signature {tag}: {text}");
    let pkcs7 = w.read(&sig);
    let (their_spc, their_digest) = authenticode_content(&pkcs7);

    let cab = CabFile::parse(w.read(name)).unwrap_or_else(|e| panic!("parse {tag}: {e}"));
    let ours: Box<dyn Signable> = Box::new(cab);
    assert_eq!(ours.kind(), "CAB");
    let digest = ours.digest(hash).expect("digest");
    assert_eq!(
        digest, their_digest,
        "{tag}: digest differs from osslsigncode's"
    );
    assert_eq!(
        ours.indirect_data(hash, &digest),
        their_spc,
        "{tag}: SpcIndirectDataContent differs from osslsigncode's"
    );

    let signed = ours.embed(&pkcs7).expect("embed");
    let mine = format!("{tag}.ours.cab");
    w.write(&mine, &signed);
    let (ok, text) = w.verify(&mine);
    assert!(ok, "osslsigncode verify of our {tag}: {text}");
    assert!(
        signed == w.read(&theirs),
        "{tag}: our signed cabinet is not byte-identical to osslsigncode's"
    );

    // The signed cabinet still extracts to the same files.
    let out = w.path(&format!("{tag}.x"));
    std::fs::create_dir_all(&out).expect("mkdir");
    let (ok, text) = tool_run(
        &out,
        "gcab",
        &["-x", w.path(&mine).to_str().expect("utf-8")],
    );
    assert!(ok, "gcab -x {tag}: {text}");

    // A changed byte in the signed data, or in a hashed header field, breaks the signature.
    let sigpos = u32::from_le_bytes(signed[44..48].try_into().expect("4 bytes")) as usize;
    for at in [sigpos - 1, sigpos / 2, 26 + 2, 60] {
        let mut bad = signed.clone();
        bad[at] ^= 0x01;
        let name = format!("{tag}.bad{at}.cab");
        w.write(&name, &bad);
        let (ok, text) = w.verify(&name);
        assert!(!ok, "{tag}: a cabinet changed at {at} verified:\n{text}");
    }

    // Signed cabinets, ours and osslsigncode's, are refused.
    for f in [&mine, &theirs] {
        let err = CabFile::parse(w.read(f)).expect_err("a signed cabinet parsed");
        assert!(matches!(err, CabError::AlreadySigned(_)), "{tag}: {err}");
        let err = authenticode::open(w.read(f))
            .err()
            .expect("a signed cabinet opened");
        assert!(err.to_string().contains("already signed"), "{tag}: {err}");
    }
}

#[test]
fn cab_digest_content_and_embedding_match_osslsigncode() {
    let w = Work::new();
    w.gcab("plain.cab", &["-c", "readme.txt", "tool.bin", "tiny.txt"]);
    w.gcab(
        "zipped.cab",
        &["-c", "-z", "readme.txt", "tool.bin", "tiny.txt"],
    );
    w.gcab(
        "large.cab",
        &["-c", "-z", "noise.bin", "tool.bin", "readme.txt"],
    );
    w.gcab("large-stored.cab", &["-c", "noise.bin", "readme.txt"]);
    w.write(
        "folders.cab",
        &multi_folder_cab(&[b"first folder\n", &[0x5a; 3000], b"third\n"]),
    );
    // gcab reads the hand-built cabinet.
    let (ok, text) = tool_run(&w.dir, "gcab", &["-t", "folders.cab"]);
    assert!(
        ok && text.contains("part2.txt"),
        "gcab -t folders.cab: {text}"
    );
    for name in [
        "plain.cab",
        "zipped.cab",
        "large.cab",
        "large-stored.cab",
        "folders.cab",
    ] {
        for (hash, hash_name) in [(HashAlg::Sha256, "sha256"), (HashAlg::Sha384, "sha384")] {
            cross_check(&w, name, hash, hash_name);
        }
    }
    // The multi-folder cabinet signed by us extracts to the right contents.
    let x = w.path("folders.cab.sha256.x");
    assert_eq!(
        std::fs::read(x.join("part0.txt")).expect("part0"),
        b"first folder\n"
    );
    assert_eq!(
        std::fs::read(x.join("part1.txt")).expect("part1"),
        vec![0x5a; 3000]
    );
    assert_eq!(
        std::fs::read(x.join("part2.txt")).expect("part2"),
        b"third\n"
    );
}

#[test]
fn cab_refuses_malformed_input_without_panicking() {
    let w = Work::new();
    w.gcab("t.cab", &["-c", "-z", "readme.txt", "tiny.txt"]);
    let good = w.read("t.cab");
    assert!(CabFile::parse(good.clone()).is_ok());
    // Truncated: every prefix is an error (cbCabinet no longer matches, or headers are cut).
    for n in (0..good.len())
        .step_by(7)
        .chain([0, 4, 35, 36, 43, 44, good.len() - 1])
    {
        assert!(
            CabFile::parse(good[..n].to_vec()).is_err(),
            "truncated to {n}"
        );
    }
    // Garbage after the magic, and garbage with plausible header fields.
    let mut x = 0x9e37_79b9u32;
    for round in 0..200 {
        let len = 36 + round * 3;
        let mut junk: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        junk[..4].copy_from_slice(b"MSCF");
        if round % 2 == 0 {
            junk[4..8].fill(0);
            junk[8..12].copy_from_slice(&(len as u32).to_le_bytes());
            junk[25] = 1;
            junk[31] = 0;
        }
        let _ = CabFile::parse(junk); // must not panic
    }
    // Multi-volume and reserve-carrying cabinets are refused with a reason.
    for (flag, what) in [(1u8, "multi-volume"), (2, "multi-volume"), (4, "reserve")] {
        let mut d = good.clone();
        d[30] |= flag;
        let err = CabFile::parse(d).expect_err("flags");
        assert!(err.to_string().contains(what), "flag {flag}: {err}");
    }
    // osslsigncode refuses garbage too: these are not cabinets anyone signs.
    let mut bad = good.clone();
    bad[16] ^= 0x40; // coffFiles
    assert!(matches!(CabFile::parse(bad), Err(CabError::Malformed(_))));
    assert!(matches!(
        CabFile::parse(b"MSCF".to_vec()),
        Err(CabError::Malformed(_))
    ));
    assert!(authenticode::open(b"garbage, not a cabinet".to_vec()).is_err());
}
