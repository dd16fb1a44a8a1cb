//! `make bench`: revocation publication against OpenSSL, side by side in one run.
//!
//! - OCSP: requests per second and p99 latency with 16 keep-alive connections (the same client
//!   code for both) against `hallmark serve` and against `openssl ocsp -index index.txt -multi 2`,
//!   both knowing the same revoked certificates (100,000 by default). Requests carry no nonce
//!   (the RFC 5019 profile): hallmark answers from pre-signed responses, OpenSSL signs each one.
//!   `openssl ocsp -port` listens on every interface, so it runs in its own network (and PID)
//!   namespace (`unshare`), where the only interface is loopback. OpenSSL answers in HTTP/1.0
//!   and closes each connection, so its clients open one per request; hallmark is measured with
//!   keep-alive and, as a second row, with a connection per request too.
//! - OCSP over GET (RFC 5019, what Windows, browsers and CDNs use): the same GET of one
//!   pre-signed response under `wrk -t2 -c16` against `hallmark serve` (GET and POST), cfssl's
//!   `ocspserve` answering from a file holding hallmark's response (POST: Debian's cfssl 1.2
//!   answers every GET with 400), and nginx serving it as a
//!   static file (the floor for handing out pre-signed bytes); HALLMARK_BENCH_GET_SECS (10).
//! - CRL: the CRL of 1,000,000 revoked certificates, `hallmark crl` (streaming from the database)
//!   against `openssl ca -gencrl` on an index.txt of the same revocations, each a child process
//!   measured by `/usr/bin/time` (wall time, peak RSS).
//!
//! Knobs (environment): HALLMARK_BENCH_REVOKED (100000), HALLMARK_BENCH_SECS (30),
//! HALLMARK_BENCH_CRL_ENTRIES (1000000), HALLMARK_BENCH_CONNS (16).
//!
//! The revoked certificates are written straight into the database with SQL (what `revoke` would
//! leave behind): going through issuance for a million certificates would measure issuance.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hallmark::issuer::ocsp::{build_request, cert_id, CertIdHash};
use x509_parser::prelude::*;

const PASS_ENV: &str = "HALLMARK_BENCH_PASS";

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn hallmark_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hallmark"))
}

fn sh(cmd: &mut Command) -> Res<String> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Random positive 16-octet serials (as hallmark makes them), hex.
fn serials(n: usize) -> Vec<String> {
    use rand::RngCore;
    let mut r = rand::rngs::OsRng;
    (0..n)
        .map(|_| {
            let mut b = [0u8; 16];
            r.fill_bytes(&mut b);
            b[0] = (b[0] & 0x7f).max(1);
            hex::encode(b)
        })
        .collect()
}

/// Writes revoked certificates of `ca` into the database, as `hallmark revoke` leaves them
/// (through the store's test hooks: a million revocations one `revoke` at a time would take the
/// benchmark's whole budget).
fn insert_revoked(db: &Path, ca: &str, serials: &[String], revoked_at: i64) -> Res<()> {
    let store = hallmark::store::hooks::open_with_hooks(db)?;
    store.load_revoked(ca, serials, revoked_at)?;
    Ok(())
}

/// An OpenSSL `index.txt` with the same revocations (all keyCompromise).
fn write_index(path: &Path, serials: &[String], revoked_at: i64) -> Res<()> {
    let ts = |t: i64| {
        let d = ::time::OffsetDateTime::from_unix_timestamp(t).expect("time");
        format!(
            "{:02}{:02}{:02}{:02}{:02}{:02}Z",
            d.year() % 100,
            d.month() as u8,
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        )
    };
    let exp = ts(revoked_at + 365 * 86_400);
    let rev = ts(revoked_at);
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    for (i, s) in serials.iter().enumerate() {
        writeln!(
            w,
            "R\t{exp}\t{rev},keyCompromise\t{}\tunknown\t/CN=bench {i}",
            s.to_uppercase()
        )?;
    }
    w.flush()?;
    Ok(())
}

/// SHA-1 issuer hashes of a CA certificate (for CertIDs).
fn issuer_hashes(cert_der: &[u8]) -> Res<(Vec<u8>, Vec<u8>)> {
    let (_, c) = X509Certificate::from_der(cert_der)?;
    Ok((
        CertIdHash::Sha1.digest(c.subject().as_raw()),
        CertIdHash::Sha1.digest(&c.public_key().subject_public_key.data),
    ))
}

/// `n` single-certificate requests over `serials`; with `nonce`, each carries its own.
fn requests_for(cert_der: &[u8], serials: &[String], n: usize, nonce: bool) -> Res<Vec<Vec<u8>>> {
    use rand::RngCore;
    let (name, key) = issuer_hashes(cert_der)?;
    let step = (serials.len() / n.max(1)).max(1);
    Ok(serials
        .iter()
        .step_by(step)
        .take(n)
        .map(|s| {
            build_request(
                &[cert_id(
                    CertIdHash::Sha1,
                    &name,
                    &key,
                    &hex::decode(s).expect("hex"),
                )],
                nonce
                    .then(|| {
                        let mut n = [0u8; 16];
                        rand::rngs::OsRng.fill_bytes(&mut n);
                        n
                    })
                    .as_ref()
                    .map(|n| &n[..]),
            )
        })
        .collect())
}

// ---- the load generator (same code against both responders) ----

#[derive(Default)]
struct Load {
    ok: u64,
    errors: u64,
    connects: u64,
    latencies_us: Vec<u32>,
    secs: f64,
}

impl Load {
    fn rps(&self) -> f64 {
        self.ok as f64 / self.secs
    }
    fn p(&mut self, q: f64) -> f64 {
        self.latencies_us.sort_unstable();
        let n = self.latencies_us.len();
        if n == 0 {
            return f64::NAN;
        }
        let i = ((n as f64 * q).ceil() as usize).clamp(1, n) - 1;
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

/// One POST /ocsp; returns whether the answer is a successful OCSP response, and whether the
/// connection stays open.
fn exchange(
    conn: &mut BufReader<TcpStream>,
    req: &[u8],
    buf: &mut Vec<u8>,
    keep_alive: bool,
) -> std::io::Result<(bool, bool)> {
    let head = format!(
        "POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        req.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    let s = conn.get_mut();
    let mut msg = Vec::with_capacity(head.len() + req.len());
    msg.extend_from_slice(head.as_bytes());
    msg.extend_from_slice(req);
    s.write_all(&msg)?;
    let mut line = String::new();
    conn.read_line(&mut line)?;
    let http10 = line.starts_with("HTTP/1.0");
    let status_ok = line.split_whitespace().nth(1) == Some("200");
    let mut len = None;
    let mut close = http10;
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
            if k == "content-length" {
                len = v.parse::<usize>().ok();
            } else if k == "connection" {
                close = v == "close" || (http10 && v != "keep-alive");
            }
        }
    }
    buf.clear();
    match len {
        Some(n) => {
            buf.resize(n, 0);
            conn.read_exact(buf)?;
        }
        None => {
            conn.read_to_end(buf)?;
            close = true;
        }
    }
    // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED (0 = successful), ... }
    let hdr = match buf.get(1) {
        Some(&b) if b & 0x80 != 0 => 2 + usize::from(b & 0x7f),
        _ => 2,
    };
    let ok = status_ok && buf.get(hdr..hdr + 3) == Some(&[0x0a, 0x01, 0x00][..]);
    Ok((ok, keep_alive && !close))
}

/// `conns` client threads, each on its own connection (a new one per request without
/// `keep_alive`), for `dur`. Latency includes connecting when a request needs a connection.
fn load(
    addr: SocketAddr,
    requests: &[Vec<u8>],
    conns: usize,
    dur: Duration,
    keep_alive: bool,
) -> Load {
    let start = Instant::now();
    let deadline = start + dur;
    let results: Vec<Load> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..conns)
            .map(|t| {
                s.spawn(move || {
                    let mut l = Load::default();
                    let mut conn: Option<BufReader<TcpStream>> = None;
                    let mut buf = Vec::new();
                    let mut i = t * 7919;
                    while Instant::now() < deadline {
                        let req = &requests[i % requests.len()];
                        i += 1;
                        let t0 = Instant::now();
                        if conn.is_none() {
                            match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
                                Ok(c) => {
                                    let _ = c.set_nodelay(true);
                                    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
                                    conn = Some(BufReader::new(c));
                                    l.connects += 1;
                                }
                                Err(_) => {
                                    l.errors += 1;
                                    std::thread::sleep(Duration::from_millis(1));
                                    continue;
                                }
                            }
                        }
                        let c = conn.as_mut().expect("connected");
                        match exchange(c, req, &mut buf, keep_alive) {
                            Ok((ok, keep)) => {
                                if ok {
                                    l.ok += 1;
                                    l.latencies_us.push(t0.elapsed().as_micros() as u32);
                                } else {
                                    l.errors += 1;
                                }
                                if !keep {
                                    conn = None;
                                }
                            }
                            Err(_) => {
                                l.errors += 1;
                                conn = None;
                            }
                        }
                    }
                    l
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut total = Load {
        secs: start.elapsed().as_secs_f64(),
        ..Load::default()
    };
    for r in results {
        total.ok += r.ok;
        total.errors += r.errors;
        total.connects += r.connects;
        total.latencies_us.extend(r.latencies_us);
    }
    total
}

fn wait_port(addr: SocketAddr, within: Duration) -> Res<()> {
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if start.elapsed() > within {
            return Err(format!("nothing listens on {addr}").into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn write_requests(path: &Path, reqs: &[Vec<u8>]) -> Res<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    for r in reqs {
        w.write_all(&(r.len() as u32).to_be_bytes())?;
        w.write_all(r)?;
    }
    Ok(w.flush()?)
}

fn read_requests(path: &Path) -> Res<Vec<Vec<u8>>> {
    let data = std::fs::read(path)?;
    let mut out = Vec::new();
    let mut rest = &data[..];
    while rest.len() >= 4 {
        let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        out.push(rest[4..4 + n].to_vec());
        rest = &rest[4 + n..];
    }
    Ok(out)
}

/// Inside `unshare` (own network and PID namespaces): loopback up, `openssl ocsp` on it, the load, one result line.
fn openssl_peer(dir: &Path) -> Res<()> {
    sh(Command::new("ip").args(["link", "set", "lo", "up"]))?;
    let secs = env_num("HALLMARK_BENCH_SECS", 30);
    let conns = env_num("HALLMARK_BENCH_CONNS", 16) as usize;
    let port = 18_888;
    let mut child = Command::new("openssl")
        .current_dir(dir)
        .args(["ocsp", "-index", "index.txt", "-port", &port.to_string()])
        .args([
            "-rsigner",
            "responder.pem",
            "-rkey",
            "responder.key",
            "-CA",
            "ca.pem",
        ])
        .args(["-multi", "2", "-ndays", "7"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let r = (|| -> Res<Load> {
        wait_port(addr, Duration::from_secs(60))?;
        let reqs = read_requests(&dir.join("openssl.requests"))?;
        // Warm up, then measure.
        // OpenSSL's responder speaks HTTP/1.0 and closes after each answer: a connection per
        // request is how it is used.
        load(addr, &reqs, conns, Duration::from_secs(1), false);
        Ok(load(addr, &reqs, conns, Duration::from_secs(secs), false))
    })();
    // The -multi children go with the PID namespace when this process (its init) exits.
    let _ = child.kill();
    let _ = child.wait();
    let mut l = r?;
    let (p50, p99) = (l.p(0.50), l.p(0.99));
    println!(
        "RESULT {} {} {} {} {} {}",
        l.rps(),
        p50,
        p99,
        l.ok,
        l.errors,
        l.connects
    );
    Ok(())
}

struct PeerNumbers {
    rps: f64,
    p50: f64,
    p99: f64,
    ok: u64,
    errors: u64,
    connects: u64,
}

fn parse_result(text: &str) -> Option<PeerNumbers> {
    let line = text.lines().find(|l| l.starts_with("RESULT "))?;
    let v: Vec<f64> = line[7..]
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    (v.len() == 6).then(|| PeerNumbers {
        rps: v[0],
        p50: v[1],
        p99: v[2],
        ok: v[3] as u64,
        errors: v[4] as u64,
        connects: v[5] as u64,
    })
}

/// Makes OpenSSL's CA and delegated responder (P-256, like hallmark's).
fn openssl_ca(dir: &Path) -> Res<()> {
    let o = |args: &[&str]| sh(Command::new("openssl").current_dir(dir).args(args));
    o(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-subj",
        "/C=US/O=Bench/CN=OpenSSL Bench CA",
        "-days",
        "30",
        "-sha256",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-out",
        "ca.pem",
    ])?;
    o(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "responder.key",
        "-subj",
        "/C=US/O=Bench/CN=OpenSSL Bench OCSP",
        "-out",
        "responder.csr",
    ])?;
    std::fs::write(
        dir.join("responder.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=OCSPSigning\nnoCheck=ignored\n",
    )?;
    o(&[
        "x509",
        "-req",
        "-in",
        "responder.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "30",
        "-sha256",
        "-extfile",
        "responder.ext",
        "-out",
        "responder.pem",
    ])?;
    Ok(())
}

/// Runs a command under `/usr/bin/time`; returns (wall seconds, peak RSS in MB).
fn timed(cmd: &mut Command) -> Res<(f64, f64)> {
    let report = std::env::temp_dir().join(format!("hallmark-bench-time-{}", std::process::id()));
    let mut t = Command::new("/usr/bin/time");
    t.arg("-f").arg("%e %M").arg("-o").arg(&report);
    t.arg(cmd.get_program()).args(cmd.get_args());
    if let Some(d) = cmd.get_current_dir() {
        t.current_dir(d);
    }
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            t.env(k, v);
        }
    }
    sh(t.stdout(Stdio::null()))?;
    let text = std::fs::read_to_string(&report)?;
    let _ = std::fs::remove_file(&report);
    let mut it = text.split_whitespace();
    let secs: f64 = it.next().ok_or("no time")?.parse()?;
    let kb: f64 = it.next().ok_or("no rss")?.parse()?;
    Ok((secs, kb / 1024.0))
}

fn crl_entries(path: &Path) -> Res<usize> {
    let der = std::fs::read(path)?;
    let (_, crl) = CertificateRevocationList::from_der(&der)?;
    Ok(crl.iter_revoked_certificates().count())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--openssl-ocsp-peer") {
        return openssl_peer(Path::new(&args[i + 1]));
    }
    let revoked_n = env_num("HALLMARK_BENCH_REVOKED", 100_000) as usize;
    let secs = env_num("HALLMARK_BENCH_SECS", 30);
    let crl_n = env_num("HALLMARK_BENCH_CRL_ENTRIES", 1_000_000) as usize;
    let conns = env_num("HALLMARK_BENCH_CONNS", 16) as usize;
    let tmp = tempfile::tempdir()?;
    // HALLMARK_BENCH_KEEP=1 keeps the directory (CA, database, OpenSSL files) for a look after.
    let (_cleanup, dir_buf) = if std::env::var_os("HALLMARK_BENCH_KEEP").is_some() {
        let p = tmp.keep();
        println!("(keeping {})", p.display());
        (None, p)
    } else {
        let p = tmp.path().to_path_buf();
        (Some(tmp), p)
    };
    let dir = dir_buf.as_path();
    std::env::set_var(PASS_ENV, "bench passphrase");
    let ca_dir = dir.join("ca");
    sh(Command::new(hallmark_bin())
        .args(["init", "--dir"])
        .arg(&ca_dir)
        .args(["--keys", "soft", "--passphrase-env", PASS_ENV]))?;
    let config = ca_dir.join("hallmark.toml");
    let db = ca_dir.join("hallmark.db");
    let now = ::time::OffsetDateTime::now_utc().unix_timestamp();
    println!("hallmark revocation bench: {} cores, OCSP {revoked_n} revoked, {conns} connections, {secs} s each; CRL {crl_n} revoked",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));

    // ---- OCSP ----
    let ocsp_serials = serials(revoked_n);
    insert_revoked(&db, "code-signing-ca", &ocsp_serials, now - 3600)?;
    let peer_dir = dir.join("openssl");
    std::fs::create_dir_all(&peer_dir)?;
    openssl_ca(&peer_dir)?;
    write_index(&peer_dir.join("index.txt"), &ocsp_serials, now - 3600)?;
    let ossl_ca = ::pem::parse(std::fs::read_to_string(peer_dir.join("ca.pem"))?)?.into_contents();
    write_requests(
        &peer_dir.join("openssl.requests"),
        &requests_for(&ossl_ca, &ocsp_serials, 8192, false)?,
    )?;

    let store = hallmark::store::open_existing(&db, hallmark::clock::system())?;
    let our_ca = store
        .get_ca("code-signing-ca")?
        .and_then(|c| c.cert_der)
        .ok_or("no code-signing-ca")?;
    drop(store);
    let our_reqs = requests_for(&our_ca, &ocsp_serials, 8192, false)?;
    let our_nonce_reqs = requests_for(&our_ca, &ocsp_serials, 8192, true)?;

    let presign_start = Instant::now();
    let mut server = Command::new(hallmark_bin())
        .arg("--config")
        .arg(&config)
        .args(["serve", "--public-listen", "127.0.0.1:0", "--no-api"])
        // Access lines off, as the peers' are (cfssl at level 5, nginx access_log off).
        .env("HALLMARK_LOG_LEVEL", "info,hallmark::access=off")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut banner = String::new();
    let mut out = BufReader::new(server.stdout.take().ok_or("stdout")?);
    out.read_line(&mut banner)?;
    // Keep draining the server's stdout so it never writes into a closed pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while out.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    let addr: SocketAddr = banner
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .ok_or("no address in the banner")?
        .trim_end_matches('/')
        .parse()?;
    let get_secs = env_num("HALLMARK_BENCH_GET_SECS", 10);
    let mut get_rows = None;
    let ours = (|| -> Res<(Load, Load, Load, f64)> {
        let store = hallmark::store::open_existing(&db, hallmark::clock::system())?;
        loop {
            let n = store.count_presigned(Some("code-signing-ca"))?;
            if n as usize >= revoked_n {
                break;
            }
            if presign_start.elapsed() > Duration::from_secs(600) {
                return Err("pre-signing did not finish".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let presign = presign_start.elapsed().as_secs_f64();
        load(addr, &our_reqs, conns, Duration::from_secs(1), true);
        let kept = load(addr, &our_reqs, conns, Duration::from_secs(secs), true);
        let fresh = load(
            addr,
            &our_reqs,
            conns,
            Duration::from_secs(secs.div_ceil(3)),
            false,
        );
        let nonce = load(
            addr,
            &our_nonce_reqs,
            conns,
            Duration::from_secs(secs.div_ceil(3)),
            true,
        );
        get_rows = Some(ocsp_get_beside_peers(
            addr,
            dir,
            &our_reqs[0],
            conns,
            get_secs,
        ));
        Ok((kept, fresh, nonce, presign))
    })();
    let _ = server.kill();
    let _ = server.wait();
    let (mut ours, mut ours_fresh, mut ours_nonce, presign) = ours?;

    let exe = std::env::current_exe()?;
    let peer = Command::new("unshare")
        .args(["--user", "--map-root-user", "--net", "--pid", "--fork"])
        .arg(&exe)
        .arg("--openssl-ocsp-peer")
        .arg(&peer_dir)
        .env("HALLMARK_BENCH_SECS", secs.to_string())
        .env("HALLMARK_BENCH_CONNS", conns.to_string())
        .output();
    let peer = match peer {
        Ok(o) => parse_result(&String::from_utf8_lossy(&o.stdout)).ok_or_else(|| {
            format!(
                "the OpenSSL peer failed: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        }),
        Err(e) => Err(format!(
            "cannot run unshare (needed to keep openssl on loopback): {e}"
        )),
    };
    let (o50, o99) = (ours.p(0.50), ours.p(0.99));
    println!();
    println!("OCSP, {revoked_n} revoked, {conns} connections, {secs} s, no nonce (pre-signed here; signed per request by OpenSSL)");
    println!(
        "{:<34} {:>12} {:>10} {:>10} {:>10} {:>9}",
        "", "requests/s", "p50 ms", "p99 ms", "errors", "connects"
    );
    match &peer {
        Ok(p) => println!(
            "{:<34} {:>12.0} {:>10.2} {:>10.2} {:>10} {:>9}",
            "openssl ocsp -multi 2", p.rps, p.p50, p.p99, p.errors, p.connects
        ),
        Err(e) => println!("openssl ocsp -multi 2: {e}"),
    }
    println!(
        "{:<34} {:>12.0} {:>10.2} {:>10.2} {:>10} {:>9}",
        "hallmark serve (keep-alive)",
        ours.rps(),
        o50,
        o99,
        ours.errors,
        ours.connects
    );
    let (f50, f99) = (ours_fresh.p(0.50), ours_fresh.p(0.99));
    println!(
        "{:<34} {:>12.0} {:>10.2} {:>10.2} {:>10} {:>9}",
        "hallmark serve (conn. per request)",
        ours_fresh.rps(),
        f50,
        f99,
        ours_fresh.errors,
        ours_fresh.connects
    );
    let (n50, n99) = (ours_nonce.p(0.50), ours_nonce.p(0.99));
    println!(
        "{:<34} {:>12.0} {:>10.2} {:>10.2} {:>10} {:>9}",
        "hallmark serve (nonce: signed live)",
        ours_nonce.rps(),
        n50,
        n99,
        ours_nonce.errors,
        ours_nonce.connects
    );
    if let Ok(p) = &peer {
        println!(
            "ratio: {:.1}x the requests/s (goal >= 5x), p99 {:.2} ms (goal < 5 ms); with a connection per request like OpenSSL's clients: {:.1}x",
            ours.rps() / p.rps,
            o99,
            ours_fresh.rps() / p.rps
        );
    }
    println!(
        "(answered: OpenSSL {}, hallmark {} + {}; hallmark pre-signed the {revoked_n} responses in {presign:.1} s after start)",
        peer.as_ref().map(|p| p.ok).unwrap_or(0),
        ours.ok,
        ours_fresh.ok
    );

    // ---- OCSP GET beside cfssl and nginx ----
    println!();
    println!("OCSP, one pre-signed response (a revoked certificate, no nonce), wrk -t2 -c{conns}, {get_secs} s, keep-alive; each server on both cores, wrk's two threads beside it");
    match get_rows {
        Some(Ok((rows, cfssl_get))) => {
            println!(
                "{:<34} {:>12} {:>10} {:>10}",
                "", "requests/s", "p99 ms", "errors"
            );
            for (name, r) in &rows {
                println!(
                    "{:<34} {:>12.0} {:>10.2} {:>10}",
                    name, r.rps, r.p99_ms, r.errors
                );
            }
            let rps = |n: &str| rows.iter().find(|(k, _)| *k == n).map(|(_, r)| r.rps);
            if let (Some(get), Some(post), Some(cfssl), Some(nginx)) = (
                rps("hallmark serve, GET"),
                rps("hallmark serve, POST"),
                rps("cfssl ocspserve, POST"),
                rps("nginx static file, GET"),
            ) {
                println!(
                    "ratio: GET {:.2}x POST (goal >= 1.0), {:.2}x cfssl (goal >= 1.0), {:.2}x nginx's static file (aim >= 0.8)",
                    get / post,
                    get / cfssl,
                    get / nginx
                );
                println!("(cfssl 1.2's own GET of the same request answers HTTP {cfssl_get}: it decodes the path's leading '/' as base64)");
            }
        }
        Some(Err(e)) => println!("OCSP GET beside its peers failed: {e}"),
        None => println!("OCSP GET beside its peers did not run (hallmark's run failed)"),
    }

    // ---- CRL ----
    let crl_serials = serials(crl_n);
    let fill = Instant::now();
    insert_revoked(&db, "timestamping-ca", &crl_serials, now - 3600)?;
    write_index(&peer_dir.join("crl-index.txt"), &crl_serials, now - 3600)?;
    drop(crl_serials);
    println!(
        "\n(database and index.txt filled with {crl_n} revocations in {:.1} s)",
        fill.elapsed().as_secs_f64()
    );
    std::fs::write(peer_dir.join("crlnumber"), "1000\n")?;
    std::fs::write(peer_dir.join("crl-index.txt.attr"), "unique_subject = no\n")?;
    std::fs::write(
        peer_dir.join("ca.cnf"),
        "[ca]\ndefault_ca = bench\n[bench]\ndatabase = crl-index.txt\ncertificate = ca.pem\nprivate_key = ca.key\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 7\nunique_subject = no\ncrl_extensions = crl_ext\n[crl_ext]\nauthorityKeyIdentifier = keyid:always\n",
    )?;
    let ossl_out = peer_dir.join("openssl.crl");
    let (o_secs, o_mb) = timed(
        Command::new("openssl")
            .current_dir(&peer_dir)
            .args([
                "ca", "-config", "ca.cnf", "-gencrl", "-outform", "DER", "-out",
            ])
            .arg(&ossl_out),
    )
    .or_else(|_| {
        // OpenSSL 3.0's `ca` has no -outform: PEM then.
        timed(
            Command::new("openssl")
                .current_dir(&peer_dir)
                .args(["ca", "-config", "ca.cnf", "-gencrl", "-out"])
                .arg(&ossl_out),
        )
    })?;
    let ours_out = dir.join("hallmark.crl");
    let (h_secs, h_mb) = timed(
        Command::new(hallmark_bin())
            .arg("--config")
            .arg(&config)
            .args(["crl", "--ca", "timestamping-ca", "--out"])
            .arg(&ours_out)
            .env(PASS_ENV, "bench passphrase"),
    )?;
    let ours_entries = crl_entries(&ours_out)?;
    let ossl_entries = {
        let data = std::fs::read(&ossl_out)?;
        if data.starts_with(b"-----") {
            let der = ::pem::parse(data)?.into_contents();
            let p = peer_dir.join("openssl.der.crl");
            std::fs::write(&p, der)?;
            crl_entries(&p)?
        } else {
            crl_entries(&ossl_out)?
        }
    };
    println!(
        "CRL of {crl_n} revoked certificates, signed (P-256); OpenSSL 3.0 writes PEM, hallmark DER"
    );
    println!(
        "{:<34} {:>10} {:>14} {:>10} {:>10}",
        "", "wall s", "peak RSS MB", "entries", "file MB"
    );
    let size = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.len() as f64 / 1e6)
            .unwrap_or(0.0)
    };
    println!(
        "{:<34} {:>10.2} {:>14.1} {:>10} {:>10.1}",
        "openssl ca -gencrl",
        o_secs,
        o_mb,
        ossl_entries,
        size(&ossl_out)
    );
    println!(
        "{:<34} {:>10.2} {:>14.1} {:>10} {:>10.1}",
        "hallmark crl (from the database)",
        h_secs,
        h_mb,
        ours_entries,
        size(&ours_out)
    );
    println!(
        "ratio: {:.1}x faster (goal >= 5x), {:.2} of OpenSSL's memory (goal <= 0.5)",
        o_secs / h_secs.max(0.005),
        h_mb / o_mb
    );
    Ok(())
}

// ---- OCSP over GET (RFC 5019) beside cfssl and nginx, all under wrk ----

/// What `wrk` reports for one run.
struct WrkResult {
    rps: f64,
    p99_ms: f64,
    /// Non-2xx answers and socket errors together.
    errors: u64,
}

/// `wrk -t2 -cCONNS -dSECSs --latency [-s SCRIPT] URL`.
fn wrk(url: &str, conns: usize, secs: u64, script: Option<&Path>) -> Res<WrkResult> {
    let mut c = Command::new("wrk");
    c.args([
        "-t2",
        &format!("-c{conns}"),
        &format!("-d{secs}s"),
        "--latency",
    ]);
    if let Some(s) = script {
        c.arg("-s").arg(s);
    }
    let text = sh(c.arg(url))?;
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::trim))
            .map(str::to_string)
    };
    let rps: f64 = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no Requests/sec in wrk's output:\n{text}"))?;
    let p99_ms = field("99%")
        .and_then(|v| {
            let (num, unit) = v.split_at(v.find(|ch: char| ch.is_ascii_alphabetic())?);
            let n: f64 = num.parse().ok()?;
            Some(match unit {
                "us" => n / 1000.0,
                "ms" => n,
                "s" => n * 1000.0,
                _ => return None,
            })
        })
        .unwrap_or(f64::NAN);
    let non_2xx: u64 = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let socket: u64 = field("Socket errors:")
        .map(|v| {
            v.split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Ok(WrkResult {
        rps,
        p99_ms,
        errors: non_2xx + socket,
    })
}

/// One `GET PATH` (or a POST of BODY) with `Connection: close`: (status, body).
fn http_call(addr: SocketAddr, path: &str, post: Option<&[u8]>) -> Res<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    match post {
        None => write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )?,
        Some(body) => {
            write!(
                s,
                "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/ocsp-request\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )?;
            s.write_all(body)?;
        }
    }
    let mut all = Vec::new();
    s.read_to_end(&mut all)?;
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of head")?;
    let head = String::from_utf8_lossy(&all[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    Ok((status, all[split + 4..].to_vec()))
}

/// A free loopback port (bound, then released).
fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Kills the child on drop.
/// A peer server, stopped when dropped: SIGTERM first (nginx's master then stops its workers;
/// a SIGKILL to the master alone left them running after the benchmark), SIGKILL after 5 s.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The same RFC 5019 GET (one certificate, no nonce) against `hallmark serve` (GET and POST),
/// cfssl's `ocspserve` (answering from a file holding hallmark's response) and nginx (serving
/// that response as a static file: the floor for handing out pre-signed bytes). Each server
/// has both cores; wrk's two threads share them.
fn ocsp_get_beside_peers(
    ours: SocketAddr,
    dir: &Path,
    request: &[u8],
    conns: usize,
    secs: u64,
) -> Res<(Vec<(&'static str, WrkResult)>, u16)> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(request);
    let escaped = b64
        .replace('%', "%25")
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let get_path = format!("/ocsp/{escaped}");
    let (status, response) = http_call(ours, &get_path, None)?;
    if status != 200 || response.len() < 100 {
        return Err(format!(
            "hallmark's GET answered {status} ({} bytes)",
            response.len()
        )
        .into());
    }
    let mut rows = Vec::new();
    let our_url = format!("http://{ours}{get_path}");
    wrk(&our_url, conns, 1, None)?;
    rows.push(("hallmark serve, GET", wrk(&our_url, conns, secs, None)?));
    let post = dir.join("post.lua");
    std::fs::write(dir.join("request.der"), request)?;
    std::fs::write(
        &post,
        format!(
            "local f = io.open(\"{}\", \"rb\")\nwrk.method = \"POST\"\nwrk.body = f:read(\"*a\")\nf:close()\nwrk.headers[\"Content-Type\"] = \"application/ocsp-request\"\n",
            dir.join("request.der").display()
        ),
    )?;
    rows.push((
        "hallmark serve, POST",
        wrk(&format!("http://{ours}/ocsp"), conns, secs, Some(&post))?,
    ));

    // cfssl ocspserve, from a file of base64 responses (one: hallmark's).
    let responses = dir.join("cfssl-responses");
    std::fs::write(
        &responses,
        format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode(&response)
        ),
    )?;
    let port = free_port()?;
    let cfssl = Child(
        Command::new("cfssl")
            .args(["ocspserve", "-address", "127.0.0.1", "-port"])
            .arg(port.to_string())
            .arg("-responses")
            .arg(&responses)
            .args(["-loglevel", "5"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run cfssl (apt install golang-cfssl): {e}"))?,
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    wait_port(addr, Duration::from_secs(30))?;
    // cfssl 1.2 (Debian's) decodes the path with its leading '/' as base64, so every GET is
    // 400 (later cfssl strips the slash): it is measured with POST, its working path, and its
    // GET answer is shown.
    let (get_status, _) = http_call(addr, &format!("/{escaped}"), None)?;
    let (status, body) = http_call(addr, "/", Some(request))?;
    if status != 200 || body != response {
        return Err(format!("cfssl did not answer with hallmark's response ({status})").into());
    }
    let url = format!("http://{addr}/");
    wrk(&url, conns, 1, Some(&post))?;
    rows.push((
        "cfssl ocspserve, POST",
        wrk(&url, conns, secs, Some(&post))?,
    ));
    let cfssl_get_status = get_status;
    drop(cfssl);

    // nginx, the response as a static file for any path.
    let root = dir.join("nginx");
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("response.der"), &response)?;
    let port = free_port()?;
    let user = if sh(Command::new("id").arg("-u"))?.trim() == "0" {
        "user root;\n"
    } else {
        ""
    };
    std::fs::write(
        root.join("nginx.conf"),
        format!(
            "{user}worker_processes 2;\npid {r}/nginx.pid;\nerror_log {r}/error.log;\nevents {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n  server {{\n    listen 127.0.0.1:{port};\n    location / {{ root {r}; default_type application/ocsp-response; try_files /response.der =404; }}\n  }}\n}}\n",
            r = root.display()
        ),
    )?;
    let nginx = Child(
        Command::new("nginx")
            .arg("-p")
            .arg(&root)
            .arg("-c")
            .arg(root.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run nginx (apt install nginx-light): {e}"))?,
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    wait_port(addr, Duration::from_secs(30))?;
    let (status, body) = http_call(addr, &get_path, None)?;
    if status != 200 || body != response {
        return Err(format!("nginx did not serve hallmark's response ({status})").into());
    }
    let url = format!("http://{addr}{get_path}");
    wrk(&url, conns, 1, None)?;
    rows.push(("nginx static file, GET", wrk(&url, conns, secs, None)?));
    drop(nginx);
    Ok((rows, cfssl_get_status))
}
