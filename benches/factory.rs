//! `make bench`: the factory line end to end — `hallmark station run` → mutual TLS →
//! `hallmark serve` (policy, sign, durable record, answer) — beside the crypto limit measured
//! in the same run (one CSR verification plus one signature per certificate, one thread), with a
//! software and a SoftHSM2 P-256 device-CA key. Also the server's peak RSS over the batch.
//!
//! `HALLMARK_BENCH_DEVICES` sets the batch size (default 200,000; the figure is
//! 1,000,000). Device CSRs come from a pool of 64 keys with empty subjects, so the input costs
//! little to make; every line still carries its own device serial and gets its own certificate.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;

mod common;
use common::*;

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

struct Row {
    store: &'static str,
    devices: usize,
    limit: f64,
    rate: f64,
    rss_mib: f64,
}

fn bench(store: &'static str, dir: &Path, devices: usize) -> Res<Row> {
    let bca = BenchCa::init(store, dir)?;
    let cfg = bca.config();
    bca.add_acme("iot-device")?;
    let st_dir = dir.join("stations");
    let st_dir_s = st_dir.display().to_string();
    ok(&mut bca.cmd(&[
        "station",
        "add",
        "line-1",
        "--profile",
        "iot-device",
        "--serial-pattern",
        "^DEV-[0-9]{9}$",
        "--quota",
        "100000000",
        "--out-dir",
        &st_dir_s,
    ]))?;
    let root = dir.join("root.pem");
    std::fs::write(&root, ok(&mut bca.cmd(&["ca", "cert", "root"]))?)?;

    // The crypto limit, in this process, on the same device-CA key.
    bca.set_env();
    let hm = hallmark::engine::Hallmark::open(&cfg)?;
    let ca = hm.ca("device-ca")?;
    let pool: Vec<Vec<u8>> = (0..64)
        .map(|_| {
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let p8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &rng,
            )
            .map_err(|_| "keygen")?;
            let key = hallmark::keys::soft::SoftKey::ephemeral("device", p8.as_ref())?;
            Ok::<_, Box<dyn std::error::Error>>(hallmark::issuer::make_csr(&[], &key)?)
        })
        .collect::<Result<_, _>>()?;
    let tbs = vec![0x5a_u8; 450];
    let n = 3000;
    let t = Instant::now();
    for i in 0..n {
        hallmark::policy::csr::verify(&pool[i % pool.len()])?;
        ca.signer.sign(ca.scheme, &tbs)?;
    }
    let limit = n as f64 / t.elapsed().as_secs_f64();
    drop(ca);
    drop(hm);

    // The input file.
    let input = dir.join("batch.ndjson");
    {
        let b64 = base64::engine::general_purpose::STANDARD;
        let encoded: Vec<String> = pool.iter().map(|c| b64.encode(c)).collect();
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input)?);
        for i in 0..devices {
            writeln!(
                f,
                "{{\"device_serial\":\"DEV-{i:09}\",\"csr\":\"{}\"}}",
                encoded[i % encoded.len()]
            )?;
        }
    }
    // The server, as its own process.
    let (server, api) = bca.serve(Stdio::null())?;
    let out = dir.join("certs.ndjson");
    let t = Instant::now();
    let r = ok(hallmark()
        .args(["station", "run", "--quiet", "--server", &api, "--ca"])
        .arg(&root)
        .arg("--cert")
        .arg(st_dir.join("line-1.pem"))
        .arg("--key")
        .arg(st_dir.join("line-1.key"))
        .arg("--in")
        .arg(&input)
        .arg("--out")
        .arg(&out));
    let secs = t.elapsed().as_secs_f64();
    let rss = peak_rss_kib(server.0.id()).unwrap_or(0);
    drop(server);
    r?;
    let answered = std::io::BufReader::new(std::fs::File::open(&out)?)
        .lines()
        .count();
    if answered != devices {
        return Err(format!("{answered} answers for {devices} lines").into());
    }
    std::thread::sleep(Duration::from_millis(100));
    Ok(Row {
        store,
        devices,
        limit,
        rate: devices as f64 / secs,
        rss_mib: rss as f64 / 1024.0,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let devices: usize = std::env::var("HALLMARK_BENCH_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let wanted = common::wanted_store;
    let mut rows = Vec::new();
    let soft_dir = tempfile::tempdir()?;
    if wanted("soft") {
        rows.push(bench("soft", soft_dir.path(), devices)?);
    }
    let hsm_dir = tempfile::tempdir()?;
    if !Path::new(SOFTHSM_MODULE).exists() {
        return Err(format!("{SOFTHSM_MODULE} is missing: run `make deps`").into());
    }
    if wanted("softhsm2") {
        rows.push(bench("softhsm2", hsm_dir.path(), devices)?);
    }
    println!("factory line end to end (station run -> mTLS -> serve -> durable record -> answer), P-256 device CA");
    println!("| device-CA key | devices | crypto limit/s (verify+sign, 1 thread) | end to end/s | ratio | server peak RSS |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.2} | {:.0} MiB |",
            r.store,
            r.devices,
            r.limit,
            r.rate,
            r.rate / r.limit,
            r.rss_mib
        );
    }
    println!("goals: ratio >= 0.50; peak RSS < 150 MiB over a 1,000,000-line batch");
    Ok(())
}
