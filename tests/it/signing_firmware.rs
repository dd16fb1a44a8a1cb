//! Firmware signing on a real server: `hallmark sign mcuboot` builds the image here and has the
//! server sign its hash; imgtool 2.5 verifies the result, rejects a flipped payload byte, and
//! (given our signature through `--fix-sig`) writes the very same bytes. `hallmark sign cose`
//! makes a COSE_Sign1 with a detached payload that pycose verifies, and rejects over a tampered
//! payload. Refusals (policy, key type, version, header size) sign nothing.

use crate::common::*;

struct Fw {
    env: SignEnv,
    /// acme, scope sign, named "ci".
    token: String,
}

impl std::ops::Deref for Fw {
    type Target = SignEnv;
    fn deref(&self) -> &SignEnv {
        &self.env
    }
}

fn create_key(ca: &TestCa, label: &str, alg: &str, profile: &str) {
    ca.create_key("acme", label, alg, &["--profile", profile]);
}

impl Fw {
    fn start(keys: Keys) -> Fw {
        let (env, token) = SignEnv::start(keys, |ca| {
            create_key(ca, "fw-release", "p256", "firmware-signing");
            create_key(ca, "fw-p384", "p384", "firmware-signing");
            create_key(ca, "app-rsa", "rsa3072", "code-signing");
            create_key(ca, "fw-raw-only", "p256", "firmware-signing");
            ca.hm(&["key", "policy", "fw-raw-only", "--formats", "raw,cms"]);
            create_key(ca, "fw-approved", "p256", "firmware-signing");
            ca.hm(&[
                "key",
                "policy",
                "fw-approved",
                "--formats",
                "raw,cose_sign1",
                "--approvals",
                "1",
                "--approvers",
                "security-lead",
            ]);
            ca.token(&["--publisher", "acme", "--scopes", "sign", "--name", "ci"])
        });
        Fw { env, token }
    }

    /// `hallmark sign KIND FILE --key KEY ... EXTRA` with the token in the environment.
    fn sign(&self, kind: &str, file: &str, key: &str, extra: &[&str]) -> std::process::Output {
        run(&mut self.sign_cmd(&self.token, kind, file, key, &[], extra))
    }

    fn sign_ok(&self, kind: &str, file: &str, key: &str, extra: &[&str]) {
        let out = self.sign(kind, file, key, extra);
        assert!(
            out.status.success(),
            "sign {kind} {key} {extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn write_firmware(fw: &Fw, name: &str, len: usize, zero_header: usize) -> String {
    let p = fw.path(name);
    let mut data: Vec<u8> = (0..len as u32).map(|i| (i * 7 + i / 13) as u8).collect();
    data[..zero_header].fill(0);
    std::fs::write(&p, data).expect("firmware");
    p
}

/// A copy of `file` with the byte at `at` flipped.
fn flipped(file: &str, at: usize) -> String {
    let mut data = std::fs::read(file).expect("read");
    data[at] ^= 0x01;
    let p = format!("{file}.flipped-{at}");
    std::fs::write(&p, data).expect("write");
    p
}

/// Runs a tool in this process's directory; (success, stdout + stderr).
fn tool_here(name: &str, args: &[&str]) -> (bool, String) {
    tool_run(std::path::Path::new("."), name, args)
}

fn imgtool_verify(pubkey: &str, image: &str) -> (bool, String) {
    tool_here("imgtool", &["verify", "-k", pubkey, image])
}

/// The value of the last TLV of an MCUboot image (the ECDSA signature, as we write it).
fn signature_tlv(image: &[u8]) -> Vec<u8> {
    let hs = u16::from_le_bytes([image[8], image[9]]) as usize;
    let prot = u16::from_le_bytes([image[10], image[11]]) as usize;
    let size = u32::from_le_bytes([image[12], image[13], image[14], image[15]]) as usize;
    let mut off = hs + size + prot;
    assert_eq!(&image[off..off + 2], &[0x07, 0x69], "TLV info magic");
    let end = off + u16::from_le_bytes([image[off + 2], image[off + 3]]) as usize;
    off += 4;
    let mut last = Vec::new();
    while off < end {
        let len = u16::from_le_bytes([image[off + 2], image[off + 3]]) as usize;
        if image[off] == 0x22 {
            last = image[off + 4..off + 4 + len].to_vec();
        }
        off += 4 + len;
    }
    assert!(!last.is_empty(), "no ECDSASIG TLV");
    last
}

/// imgtool `sign` with the same options and our signature (`--fix-sig`) must write exactly the
/// image hallmark wrote: header, protected TLVs, hash, key hash, padding and trailer alike.
fn assert_same_as_imgtool(fw: &Fw, firmware: &str, ours: &str, pubkey: &str, opts: &[&str]) {
    use base64::Engine as _;
    let image = std::fs::read(ours).expect("image");
    let sig = fw.path(&format!(
        "{}.sig.b64",
        ours.rsplit('/').next().unwrap_or("x")
    ));
    std::fs::write(
        &sig,
        base64::engine::general_purpose::STANDARD.encode(signature_tlv(&image)),
    )
    .expect("sig");
    let reference = format!("{ours}.imgtool.bin");
    let mut args = vec!["sign"];
    args.extend_from_slice(opts);
    args.extend([
        "--fix-sig",
        &sig,
        "--fix-sig-pubkey",
        pubkey,
        firmware,
        &reference,
    ]);
    let (ok, log) = tool_here("imgtool", &args);
    assert!(ok, "imgtool sign {args:?}: {log}");
    let theirs = std::fs::read(&reference).expect("reference");
    assert_eq!(
        image.len(),
        theirs.len(),
        "image length differs from imgtool's"
    );
    if let Some(i) = (0..image.len()).find(|&i| image[i] != theirs[i]) {
        panic!("image differs from imgtool's at byte {i:#x} (options {opts:?})");
    }
}

fn mcuboot_images_verify_with_imgtool(keys: Keys) {
    let fw = Fw::start(keys);
    let (_, pub256) = fw.cert_and_public_key("fw-release");
    let (_, pub384) = fw.cert_and_public_key("fw-p384");
    let firmware = write_firmware(&fw, "fw.bin", 40_000, 0);

    // P-256, the issue's command line plus a security counter and a slot size.
    let signed = fw.path("fw-signed.bin");
    let opts = [
        "--version",
        "1.2.3+7",
        "--header-size",
        "0x200",
        "--pad-header",
        "--security-counter",
        "auto",
        "--slot-size",
        "0x20000",
    ];
    let mut extra = opts.to_vec();
    extra.extend(["--out", &signed]);
    let before = fw.recorded();
    fw.sign_ok("mcuboot", &firmware, "fw-release", &extra);
    assert_eq!(fw.recorded(), before + 1);
    let (ok, log) = imgtool_verify(&pub256, &signed);
    assert!(ok && log.contains("Image was correctly validated"), "{log}");
    assert!(log.contains("1.2.3+7") || log.contains("1.2.3.7"), "{log}");
    // A flipped payload byte, header byte or signature byte: imgtool refuses.
    for at in [0x200 + 1000, 20] {
        let (ok, log) = imgtool_verify(&pub256, &flipped(&signed, at));
        assert!(!ok, "tampered image at {at:#x} verified: {log}");
    }
    let len = std::fs::read(&signed).expect("image").len();
    let (ok, log) = imgtool_verify(&pub256, &flipped(&signed, len - 10));
    assert!(!ok, "tampered signature verified: {log}");
    // Another key's public key: refused.
    let (ok, _) = imgtool_verify(&pub384, &signed);
    assert!(!ok);
    assert_same_as_imgtool(&fw, &firmware, &signed, &pub256, &opts);

    // P-384 with SHA-384, padded to the slot with a confirmed trailer, 8-byte alignment.
    let signed384 = fw.path("fw-signed-384.bin");
    let opts384 = [
        "--version",
        "2.0.1",
        "--header-size",
        "0x400",
        "--pad-header",
        "--slot-size",
        "0x40000",
        "--align",
        "8",
        "--pad",
        "--confirm",
        "--security-counter",
        "0x55",
    ];
    let mut extra = opts384.to_vec();
    extra.extend(["--digest", "sha384", "--out", &signed384]);
    fw.sign_ok("mcuboot", &firmware, "fw-p384", &extra);
    let (ok, log) = imgtool_verify(&pub384, &signed384);
    assert!(ok && log.contains("Image was correctly validated"), "{log}");
    assert_eq!(std::fs::read(&signed384).expect("image").len(), 0x40000);
    let (ok, _) = imgtool_verify(&pub384, &flipped(&signed384, 0x400 + 5));
    assert!(!ok);
    assert_same_as_imgtool(&fw, &firmware, &signed384, &pub384, &opts384);

    // Firmware built with room for the header (zeros), a RAM load address, the full key, a
    // 16-byte alignment (its own trailer magic), padded.
    let zeroed = write_firmware(&fw, "fw-zero.bin", 9_000, 0x100);
    let signed_ram = fw.path("fw-ram.bin");
    let opts_ram = [
        "--version",
        "0.9",
        "--header-size",
        "0x100",
        "--load-addr",
        "0x20000000",
        "--public-key-format",
        "full",
        "--slot-size",
        "0x10000",
        "--align",
        "16",
        "--pad",
    ];
    let mut extra = opts_ram.to_vec();
    extra.extend(["--out", &signed_ram]);
    fw.sign_ok("mcuboot", &zeroed, "fw-release", &extra);
    let (ok, log) = imgtool_verify(&pub256, &signed_ram);
    assert!(ok, "{log}");
    assert_same_as_imgtool(&fw, &zeroed, &signed_ram, &pub256, &opts_ram);
}

/// Verifies a COSE_Sign1 with pycose over a detached payload, with the key from the signing
/// certificate. Prints `VERIFIED` or `FAILED`, and the headers.
const PYCOSE_VERIFY: &str = r#"
import sys
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from pycose.messages import Sign1Message
from pycose.keys import EC2Key, RSAKey
from pycose.keys.curves import P256, P384
from pycose.headers import Algorithm, KID, X5chain
from cryptography.hazmat.primitives.serialization import Encoding

data = open(sys.argv[1], "rb").read()
payload = open(sys.argv[2], "rb").read()
cert = x509.load_pem_x509_certificate(open(sys.argv[3], "rb").read())
assert data[0] == 0xD2, "not tagged COSE_Sign1 (18)"
msg = Sign1Message.decode(data)
assert msg.payload is None, "the payload must be detached"
pk = cert.public_key()
if isinstance(pk, ec.EllipticCurvePublicKey):
    size = (pk.curve.key_size + 7) // 8
    n = pk.public_numbers()
    crv = {"secp256r1": P256, "secp384r1": P384}[pk.curve.name]
    key = EC2Key(crv=crv, x=n.x.to_bytes(size, "big"), y=n.y.to_bytes(size, "big"))
else:
    n = pk.public_numbers()
    key = RSAKey(n=n.n.to_bytes((n.n.bit_length() + 7) // 8, "big"), e=n.e.to_bytes(3, "big"))
msg.key = key
msg.payload = payload
print("alg", msg.phdr.get(Algorithm).fullname)
print("kid", msg.uhdr.get(KID))
x5 = msg.uhdr.get(X5chain)
print("x5chain", "none" if x5 is None else (len(x5) if isinstance(x5, list) else 1))
if x5 is not None:
    leaf = x5[0] if isinstance(x5, list) else x5
    assert leaf == cert.public_bytes(Encoding.DER), "x5chain[0] is not the signing certificate"
print("VERIFIED" if msg.verify_signature() else "FAILED")
"#;

fn pycose_verify(fw: &Fw, message: &str, payload: &str, cert: &str) -> String {
    let script = fw.path("pycose_verify.py");
    std::fs::write(&script, PYCOSE_VERIFY).expect("script");
    let (ok, out) = tool_here("python", &[&script, message, payload, cert]);
    assert!(ok, "pycose: {out}");
    out
}

fn cose_sign1_verifies_with_pycose(keys: Keys) {
    let fw = Fw::start(keys);
    let firmware = write_firmware(&fw, "fw.bin", 300_000, 0);
    let bad = flipped(&firmware, 1234);

    for (key, alg, name) in [
        ("fw-release", "ES256", "ES256"),
        ("fw-p384", "ES384", "ES384"),
        ("app-rsa", "PS256", "PS256"),
    ] {
        let (cert, _) = fw.cert_and_public_key(key);
        let out = fw.path(&format!("fw-{key}.cose"));
        let before = fw.recorded();
        fw.sign_ok("cose", &firmware, key, &["--alg", alg, "--out", &out]);
        assert_eq!(fw.recorded(), before + 1);
        let v = pycose_verify(&fw, &out, &firmware, &cert);
        assert!(v.contains("VERIFIED"), "{key}: {v}");
        assert!(v.contains(name), "{key}: {v}");
        assert!(v.contains(&format!("kid b'{key}'")), "{key}: {v}");
        // Leaf and code-signing-ca: the root is not carried.
        assert!(v.contains("x5chain 2"), "{key}: {v}");
        let v = pycose_verify(&fw, &out, &bad, &cert);
        assert!(
            v.contains("FAILED"),
            "tampered payload verified with {key}: {v}"
        );
    }

    // Without kid and x5chain; the default FILE.cose; an empty payload.
    let (cert, _) = fw.cert_and_public_key("fw-release");
    fw.sign_ok(
        "cose",
        &firmware,
        "fw-release",
        &["--no-kid", "--no-x5chain"],
    );
    let v = pycose_verify(&fw, &format!("{firmware}.cose"), &firmware, &cert);
    assert!(
        v.contains("VERIFIED") && v.contains("kid None") && v.contains("x5chain none"),
        "{v}"
    );
    let empty = fw.path("empty.bin");
    std::fs::write(&empty, b"").expect("empty");
    fw.sign_ok("cose", &empty, "fw-release", &[]);
    let v = pycose_verify(&fw, &format!("{empty}.cose"), &empty, &cert);
    assert!(v.contains("VERIFIED"), "{v}");
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `hallmark sign KIND FILE --key KEY EXTRA...` fails, saying SAYS.
fn refused(fw: &Fw, kind: &str, file: &str, key: &str, extra: &[&str], says: &str) {
    let o = fw.sign(kind, file, key, extra);
    assert!(!o.status.success());
    assert!(stderr(&o).contains(says), "{}", stderr(&o));
}

/// Refusals: a key whose policy does not offer `cose_sign1`, a key type the format cannot use,
/// an algorithm that does not match the key, a bad version, a header that is too small or not
/// empty. Nothing is written, and what the server refuses is not recorded.
#[test]
fn firmware_refusals() {
    let fw = Fw::start(Keys::Soft);
    let firmware = write_firmware(&fw, "fw.bin", 5_000, 0);
    let out = fw.path("out.bin");
    let base = fw.recorded();

    // The key's policy lists raw and cms only.
    let o = fw.sign("cose", &firmware, "fw-raw-only", &["--out", &out]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("does not sign format 'cose_sign1'"),
        "{}",
        stderr(&o)
    );
    // A policy may name the format.
    fw.ca.hm(&[
        "key",
        "policy",
        "fw-raw-only",
        "--formats",
        "raw,cose_sign1",
    ]);
    assert!(fw
        .ca
        .hm(&["key", "policy", "fw-raw-only"])
        .contains("cose_sign1"));

    // ES256 needs a P-256 key: the P-384 key is refused by the server before it signs.
    refused(
        &fw,
        "cose",
        &firmware,
        "fw-p384",
        &["--alg", "ES256", "--out", &out],
        "ES384",
    );
    refused(
        &fw,
        "cose",
        &firmware,
        "fw-release",
        &["--alg", "RS256", "--out", &out],
        "not offered",
    );

    // Bad versions and header sizes never reach the server.
    for (args, says) in [
        (
            vec!["--version", "1.2.3.4", "--header-size", "0x200"],
            "invalid version",
        ),
        (
            vec!["--version", "01.2", "--header-size", "0x200"],
            "invalid version",
        ),
        (
            vec!["--version", "256.0.0", "--header-size", "0x200"],
            "invalid version",
        ),
        (
            vec!["--version", "1.2.3", "--header-size", "0x10"],
            "too small",
        ),
        (
            vec!["--version", "1.2.3", "--header-size", "0x200"],
            "not all zero",
        ),
        (
            vec![
                "--version",
                "1",
                "--header-size",
                "0x200",
                "--pad-header",
                "--slot-size",
                "0x400",
            ],
            "exceeds the slot size",
        ),
    ] {
        let mut a = args.clone();
        a.extend(["--out", &out]);
        let o = fw.sign("mcuboot", &firmware, "fw-release", &a);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(fw.recorded(), base, "refusals recorded a signature");
    assert!(!std::path::Path::new(&out).exists());

    let img = [
        "--version",
        "1.0.0",
        "--header-size",
        "0x200",
        "--pad-header",
    ];
    // An RSA key cannot sign an MCUboot image here (MCUboot wants RSA-PSS): refused after the
    // server's answer names the key type; nothing is written. (The server did sign and record
    // the raw digest: the client learns the key type from the certificate it returns.)
    refused(
        &fw,
        "mcuboot",
        &firmware,
        "app-rsa",
        &[&img[..], &["--out", &out]].concat(),
        "RSA",
    );
    assert!(!std::path::Path::new(&out).exists());
    // A P-384 key with the P-256 hash: refused before writing, with the flag to use.
    refused(
        &fw,
        "mcuboot",
        &firmware,
        "fw-p384",
        &[&img[..], &["--out", &out]].concat(),
        "--digest sha384",
    );
    assert!(!std::path::Path::new(&out).exists());
    // An EC algorithm with an RSA key: refused when the certificate comes back.
    refused(
        &fw,
        "cose",
        &firmware,
        "app-rsa",
        &["--alg", "ES256", "--out", &out],
        "--alg PS256",
    );
    assert!(!std::path::Path::new(&out).exists());

    // With --cert the key type is known before anything is sent: refusals sign nothing.
    let (rsa_cert, _) = fw.cert_and_public_key("app-rsa");
    let (p384_cert, p384_pub) = fw.cert_and_public_key("fw-p384");
    let base = fw.recorded();
    let mut a = img.to_vec();
    a.extend(["--cert", &rsa_cert, "--out", &out]);
    refused(&fw, "mcuboot", &firmware, "app-rsa", &a, "RSA");
    let mut a = img.to_vec();
    a.extend(["--cert", &p384_cert, "--digest", "sha256", "--out", &out]);
    refused(&fw, "mcuboot", &firmware, "fw-p384", &a, "--digest sha384");
    refused(
        &fw,
        "cose",
        &firmware,
        "app-rsa",
        &["--cert", &rsa_cert, "--alg", "ES256", "--out", &out],
        "use PS256",
    );
    assert_eq!(
        fw.recorded(),
        base,
        "refusals with --cert recorded a signature"
    );
    assert!(!std::path::Path::new(&out).exists());
    // The server's key must be the key of --cert.
    let mut a = img.to_vec();
    a.extend(["--cert", &p384_cert, "--out", &out]);
    let o = fw.sign("mcuboot", &firmware, "fw-release", &a);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("not the key of --cert"),
        "{}",
        stderr(&o)
    );
    assert!(!std::path::Path::new(&out).exists());
    // --cert picks the algorithm: SHA-384 for the P-384 key's image, ES384 for its COSE.
    let mut a = img.to_vec();
    a.extend(["--cert", &p384_cert, "--out", &out]);
    fw.sign_ok("mcuboot", &firmware, "fw-p384", &a);
    let (ok, log) = imgtool_verify(&p384_pub, &out);
    assert!(ok, "{log}");
    let cose_out = fw.path("p384.cose");
    fw.sign_ok(
        "cose",
        &firmware,
        "fw-p384",
        &["--cert", &p384_cert, "--out", &cose_out],
    );
    let v = pycose_verify(&fw, &cose_out, &firmware, &p384_cert);
    assert!(v.contains("VERIFIED") && v.contains("ES384"), "{v}");
}

/// A key whose policy needs an approval: `hallmark sign cose` and `hallmark sign mcuboot` wait
/// (202), an approver approves, the commands finish and the results verify.
#[test]
fn firmware_signatures_wait_for_approvals() {
    let fw = Fw::start(Keys::Soft);
    let approver = fw.ca.token(&[
        "--publisher",
        "acme",
        "--name",
        "security-lead",
        "--scopes",
        "approve",
    ]);
    let (cert, pubkey) = fw.cert_and_public_key("fw-approved");
    let firmware = write_firmware(&fw, "fw.bin", 50_000, 0);
    let cose_out = fw.path("fw-approved.cose");
    let img_out = fw.path("fw-approved.bin");
    for (kind, extra) in [
        ("cose", vec!["--out", cose_out.as_str()]),
        (
            "mcuboot",
            vec![
                "--version",
                "3.1.0",
                "--header-size",
                "0x200",
                "--pad-header",
                "--out",
                img_out.as_str(),
            ],
        ),
    ] {
        let child = fw
            .sign_cmd(
                &fw.token,
                kind,
                &firmware,
                "fw-approved",
                &["--poll", "1", "--timeout", "120"],
                &extra,
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sign");
        let id = fw.pending_request();
        let out = fw.approve(id, &approver);
        assert!(out.status.success(), "approve: {}", stderr(&out));
        let out = child.wait_with_output().expect("sign output");
        assert!(out.status.success(), "sign {kind}: {}", stderr(&out));
    }
    let v = pycose_verify(&fw, &cose_out, &firmware, &cert);
    assert!(v.contains("VERIFIED"), "{v}");
    let (ok, log) = imgtool_verify(&pubkey, &img_out);
    assert!(ok && log.contains("Image was correctly validated"), "{log}");
}

per_key_store!(
    mcuboot_images_verify_with_imgtool,
    cose_sign1_verifies_with_pycose
);
