//! `make bench`: hallmark-pkcs11 (issue 17) beside its peers in the same run. C_Sign calls per
//! second from 16 threads, a session each, with SoftHSM2 keys (P-256 over CKM_ECDSA, RSA-3072
//! over CKM_RSA_PKCS with a SHA-256 DigestInfo), through:
//!
//! 1. SoftHSM2 loaded in this process (the floor: no network, no record);
//! 2. p11-kit's remote module (`p11-kit server` exporting the same token over a Unix socket,
//!    `p11-kit-client.so` here) — the peer;
//! 3. `libhallmark_pkcs11.so` → `hallmark serve` over TLS (token check, key policy, a durable
//!    record per signature).
//!
//! Goal: RSA-3072 >= 0.8 of p11-kit's remote rate; P-256 >= 0.3 of it. Prints the CPU per
//! signature of each server process and of this process (every side on the same 2 cores).
//! No assertions.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

mod common;
use common::*;

const THREADS: usize = 16;
const SECS: f64 = 5.0;
const P11_KIT_CLIENT: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so";
const KEYS: [(&str, &str, &str); 2] = [
    ("bench-p256", "p256", "P-256"),
    ("bench-rsa3072", "rsa3072", "RSA-3072"),
];

/// SHA-256's DigestInfo prefix (RFC 8017 §9.2).
const SHA256_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// C_Sign/s from THREADS sessions of module `path` on key `label` for SECS, and the CPU per
/// signature of process `server` (if any) and of this process, in µs.
fn rate(
    path: &str,
    pin: Option<&str>,
    label: &str,
    rsa: bool,
    server: Option<u32>,
) -> Res<(f64, f64, f64)> {
    let ctx = Pkcs11::new(path)?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let slot = *ctx.get_slots_with_token()?.first().ok_or("no slot")?;
    let keep = ctx.open_ro_session(slot)?;
    if let Some(p) = pin {
        keep.login(UserType::User, Some(&AuthPin::new(p.into())))?;
    }
    let spid = server.map(|p| p.to_string());
    let s0 = match &spid {
        Some(p) => cpu_secs(p, true)?,
        None => 0.0,
    };
    let c0 = cpu_secs("self", true)?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(SECS);
    let total: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let ctx = ctx.clone();
                s.spawn(move || -> Result<usize, String> {
                    let session = ctx.open_ro_session(slot).map_err(|e| e.to_string())?;
                    let key = *session
                        .find_objects(&[
                            Attribute::Class(ObjectClass::PRIVATE_KEY),
                            Attribute::Label(label.as_bytes().to_vec()),
                        ])
                        .map_err(|e| e.to_string())?
                        .first()
                        .ok_or(format!("no private key '{label}'"))?;
                    let mut n = 0usize;
                    while Instant::now() < deadline {
                        let mut digest = [0u8; 32];
                        digest[..8].copy_from_slice(&(t as u64).to_be_bytes());
                        digest[8..16].copy_from_slice(&(n as u64).to_be_bytes());
                        let (mech, data) = if rsa {
                            let mut d = SHA256_INFO.to_vec();
                            d.extend_from_slice(&digest);
                            (Mechanism::RsaPkcs, d)
                        } else {
                            (Mechanism::Ecdsa, digest.to_vec())
                        };
                        session.sign(&mech, key, &data).map_err(|e| e.to_string())?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| "a thread panicked".to_string())?)
            .sum::<Result<usize, String>>()
    })?;
    let elapsed = start.elapsed().as_secs_f64();
    drop(keep);
    ctx.finalize()?;
    // The remote side's per-connection processes end when the sessions close; let them be
    // reaped before their CPU is read.
    std::thread::sleep(Duration::from_millis(500));
    let s1 = match &spid {
        Some(p) => cpu_secs(p, true)?,
        None => 0.0,
    };
    let c1 = cpu_secs("self", true)?;
    let n = total.max(1) as f64;
    Ok((
        total as f64 / elapsed,
        (s1 - s0) * 1e6 / n,
        (c1 - c0) * 1e6 / n,
    ))
}

fn main() -> Res<()> {
    let module = Path::new(env!("CARGO_BIN_EXE_hallmark"))
        .parent()
        .ok_or("target dir")?
        .join("libhallmark_pkcs11.so");
    if !module.exists() {
        return Err(format!(
            "{} is missing: `cargo build --release -p hallmark-pkcs11` (make bench does)",
            module.display()
        )
        .into());
    }
    let dir = tempfile::tempdir()?;
    let ca = BenchCa::init("softhsm2", dir.path())?;
    ca.add_acme("code-signing")?;
    for (label, alg, _) in KEYS {
        ca.create_key(label, alg, &[])?;
    }
    let token = ca.sign_token()?;
    let root = dir.path().join("root.pem");
    ca.write_root(&root)?;
    let (server, api) = ca.serve(Stdio::inherit())?;
    let config = dir.path().join("pkcs11.toml");
    std::fs::write(
        &config,
        format!(
            "server = \"{api}\"\nca = \"{}\"\ntoken_env = \"HALLMARK_BENCH_TOKEN\"\nkeys = [\"bench-p256\", \"bench-rsa3072\"]\n",
            root.display()
        ),
    )?;
    ca.set_env();
    std::env::set_var("HALLMARK_PKCS11_CONFIG", &config);
    std::env::set_var("HALLMARK_BENCH_TOKEN", &token);
    std::env::set_var("XDG_CONFIG_HOME", dir.path().join("xdg"));

    // p11-kit's server exporting the same SoftHSM token over a Unix socket.
    let mut p11 = Command::new("p11-kit")
        .args([
            "server",
            "-f",
            "--provider",
            SOFTHSM_MODULE,
            "pkcs11:token=bench",
        ])
        .envs(ca.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("XDG_RUNTIME_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("p11-kit server: {e} (make deps installs p11-kit)"))?;
    let out = p11.stdout.take().ok_or("p11-kit stdout")?;
    let mut lines = std::io::BufReader::new(out).lines();
    let address = loop {
        let line = lines.next().ok_or("p11-kit server printed no address")??;
        if let Some(rest) = line.strip_prefix("P11_KIT_SERVER_ADDRESS=") {
            break rest.split(';').next().unwrap_or(rest).to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    std::env::set_var("P11_KIT_SERVER_ADDRESS", &address);
    let p11_pid = p11.id();

    println!("C_Sign/s from {THREADS} threads (a session each), {SECS} s per run, SoftHSM2 keys; every process on this machine's {} cores", std::thread::available_parallelism().map_or(1, |n| n.get()));
    println!("| key | SoftHSM2 in process | p11-kit remote (peer) | hallmark-pkcs11 -> serve | ratio to p11-kit | goal | p11-kit server CPU µs/sig | its client side µs/sig | hallmark serve CPU µs/sig | hallmark-pkcs11 side µs/sig |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (label, _, name) in KEYS {
        let rsa = name.starts_with("RSA");
        let hsm_label = hallmark::engine::publisher_key_label(label);
        let direct = rate(SOFTHSM_MODULE, Some("123456"), &hsm_label, rsa, None)?;
        let remote = rate(
            P11_KIT_CLIENT,
            Some("123456"),
            &hsm_label,
            rsa,
            Some(p11_pid),
        )?;
        let ours = rate(
            &module.display().to_string(),
            None,
            label,
            rsa,
            Some(server.0.id()),
        )?;
        let ratio = ours.0 / remote.0;
        let goal = if rsa { 0.8 } else { 0.3 };
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | **{ratio:.2}** | >= {goal} {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            direct.0,
            remote.0,
            ours.0,
            if ratio >= goal { "met" } else { "not met" },
            remote.1,
            remote.2,
            ours.1,
            ours.2
        );
    }
    let _ = p11.kill();
    let _ = p11.wait();
    drop(server);
    Ok(())
}
