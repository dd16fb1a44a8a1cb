//! `hallmark station ...`: manage factory stations, and drive a batch from a station.
//!
//! `station run` streams an NDJSON file to `POST /api/v1/provision/batch` over mutual TLS and
//! appends the answers, in order, to the output file. The server answers exactly one line per
//! input line, so the output's complete lines say how far a previous run got: a rerun skips
//! that many input lines and sends the rest (resent lines get their certificates again: the
//! server is idempotent), and a finished file sends nothing.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::BodyExt;

#[derive(Subcommand, Debug)]
pub enum StationCmd {
    /// Create a station: its mTLS certificate (and key) and the rules it works under.
    Add(AddArgs),
    /// List stations.
    List,
    /// Disable a station: its next request is refused and its certificate is revoked.
    Disable { name: String },
    /// Send a batch of device CSRs from a station and collect the certificates.
    Run(RunArgs),
}

#[derive(Args, Debug)]
pub struct AddArgs {
    pub name: String,
    /// The device profile the station may use.
    #[arg(long)]
    pub profile: String,
    /// Regular expression device serials must match.
    #[arg(long)]
    pub serial_pattern: String,
    /// How many device certificates the station may obtain.
    #[arg(long)]
    pub quota: i64,
    /// The publisher (manufacturer) the devices belong to (default: the only one allowed the profile).
    #[arg(long)]
    pub publisher: Option<String>,
    /// The station's own CSR (key made in its HSM/TPM) instead of a key made here.
    #[arg(long)]
    pub csr: Option<PathBuf>,
    /// Where NAME.pem (and NAME.key) are written.
    #[arg(long, default_value = ".")]
    pub out_dir: PathBuf,
    /// May give a known device a certificate for a new key (the old one is revoked as superseded).
    #[arg(long)]
    pub reprovision: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Base URL of the API listener (https); default: the client profile's
    /// (`hallmark client bootstrap`), or HALLMARK_SERVER.
    #[arg(long, env = "HALLMARK_SERVER")]
    pub server: Option<String>,
    /// The station certificate chain (PEM).
    #[arg(long)]
    pub cert: PathBuf,
    /// The station key (PKCS#8 PEM).
    #[arg(long)]
    pub key: PathBuf,
    /// hallmark's root certificate, to verify the server; default: the client profile's root,
    /// or HALLMARK_CA.
    #[arg(long, env = "HALLMARK_CA")]
    pub ca: Option<PathBuf>,
    /// Input: one {"device_serial","csr"} per line.
    #[arg(long = "in")]
    pub input: PathBuf,
    /// Output: one answer per input line, appended.
    #[arg(long)]
    pub out: PathBuf,
    /// Hide the progress line.
    #[arg(long)]
    pub quiet: bool,
}

fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)?;
    Ok(())
}

pub fn run(
    hm: Option<&crate::engine::Hallmark>,
    actor: &str,
    c: &StationCmd,
    output: super::Output,
) -> anyhow::Result<()> {
    match c {
        StationCmd::Run(a) => run_batch(a),
        other => {
            let hm =
                hm.ok_or_else(|| anyhow!("no config: give --config FILE or set HALLMARK_CONFIG"))?;
            manage(hm, actor, other, output)
        }
    }
}

fn manage(
    hm: &crate::engine::Hallmark,
    actor: &str,
    c: &StationCmd,
    output: super::Output,
) -> anyhow::Result<()> {
    match c {
        StationCmd::Add(a) => {
            let cert_path = a.out_dir.join(format!("{}.pem", a.name));
            let key_path = a.out_dir.join(format!("{}.key", a.name));
            for p in [&cert_path, &key_path] {
                if p.exists() {
                    bail!("{} already exists; choose another --out-dir", p.display());
                }
            }
            let csr = a
                .csr
                .as_ref()
                .map(std::fs::read)
                .transpose()
                .context("reading --csr")?;
            let (rec, creds) = hm.provisioning.add_station(
                &a.name,
                a.publisher.as_deref(),
                &a.profile,
                &a.serial_pattern,
                a.quota,
                a.reprovision,
                csr.as_deref(),
                actor,
            )?;
            std::fs::create_dir_all(&a.out_dir)?;
            std::fs::write(&cert_path, &creds.chain_pem)
                .with_context(|| format!("writing {}", cert_path.display()))?;
            if let Some(key) = &creds.key_pem {
                write_private(&key_path, key.as_bytes())?;
            }
            println!(
                "station {} for publisher {} (profile {}, pattern {}, quota {}); certificate {}{}",
                rec.name,
                rec.publisher,
                rec.profile,
                rec.serial_pattern,
                rec.quota,
                cert_path.display(),
                if creds.key_pem.is_some() {
                    format!(", key {}", key_path.display())
                } else {
                    String::new()
                }
            );
        }
        StationCmd::List => {
            let mut rows = Vec::new();
            for s in hm.store.list_stations()? {
                let used = hm.store.station_issued_count(&s.name)?;
                let state = match hm.provisioning.station_refusal(&s)? {
                    None => "active",
                    Some(_) if s.disabled => "DISABLED",
                    Some(why) if why.ends_with("revoked") => "CERT-REVOKED",
                    Some(why) if why.ends_with("expired") => "CERT-EXPIRED",
                    Some(_) => "NO-CERT",
                };
                let j = serde_json::json!({
                    "name": s.name, "publisher": s.publisher, "profile": s.profile,
                    "used": used, "quota": s.quota, "state": state,
                    "reprovision": s.reprovision, "serial_pattern": s.serial_pattern,
                });
                let line = format!(
                    "{:<16} {:<10} {:<14} used {}/{} {}{} pattern={}",
                    s.name,
                    s.publisher,
                    s.profile,
                    used,
                    s.quota,
                    state,
                    if s.reprovision { " reprovision" } else { "" },
                    s.serial_pattern
                );
                rows.push((j, line));
            }
            super::print_list(output, rows, false, None, "")?;
        }
        StationCmd::Disable { name } => {
            hm.provisioning.disable_station(name, actor)?;
            println!("station {name} disabled; its certificate is revoked");
        }
        StationCmd::Run(_) => unreachable_run()?,
    }
    Ok(())
}

fn unreachable_run() -> anyhow::Result<()> {
    bail!("station run does not use the local database")
}

/// Complete lines already in the output (a partial last line from a crash is cut off).
fn answered_lines(out: &Path) -> anyhow::Result<usize> {
    let data = match std::fs::read(out) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("reading {}", out.display())),
    };
    let complete = data.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    if complete < data.len() {
        let f = std::fs::OpenOptions::new().write(true).open(out)?;
        f.set_len(complete as u64)?;
    }
    Ok(data[..complete].iter().filter(|&&b| b == b'\n').count())
}

fn tls_config(a: &RunArgs) -> anyhow::Result<rustls::ClientConfig> {
    let read =
        |p: &Path| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    let mut roots = rustls::RootCertStore::empty();
    let ca = match &a.ca {
        Some(c) => c.clone(),
        None => super::context::load()?.root.ok_or_else(|| {
            anyhow!("no root to verify the server: pass --ca ROOT.pem (or HALLMARK_CA), or run hallmark client bootstrap once")
        })?,
    };
    for b in pem::parse_many(read(&ca)?).context("--ca")? {
        if b.tag() == "CERTIFICATE" {
            roots.add(rustls::pki_types::CertificateDer::from(b.into_contents()))?;
        }
    }
    let chain: Vec<rustls::pki_types::CertificateDer<'static>> = pem::parse_many(read(&a.cert)?)
        .context("--cert")?
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| rustls::pki_types::CertificateDer::from(b.into_contents()))
        .collect();
    if chain.is_empty() {
        bail!("{} holds no certificate", a.cert.display());
    }
    let key_block = pem::parse(read(&a.key)?).context("--key")?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(key_block.into_contents())
        .map_err(|e| anyhow!("--key: {e}"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .context("station certificate and key")
}

/// A request body fed from a channel (the input file, read as the server takes it).
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|o| o.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

fn run_batch(a: &RunArgs) -> anyhow::Result<()> {
    let done = answered_lines(&a.out)?;
    let input =
        std::fs::File::open(&a.input).with_context(|| format!("opening {}", a.input.display()))?;
    // Blank lines carry nothing and get no answer: they are neither sent nor counted.
    let total = std::io::BufReader::new(input)
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.trim().is_empty())
        .count();
    if done >= total {
        eprintln!(
            "{}: all {total} lines already answered in {}",
            a.input.display(),
            a.out.display()
        );
        return Ok(());
    }
    let server = match &a.server {
        Some(s) => s.clone(),
        None => super::context::load()?.server.ok_or_else(|| {
            anyhow!("no server: pass --server URL (or HALLMARK_SERVER), or run hallmark client bootstrap once")
        })?,
    };
    let url: hyper::Uri = format!("{}/api/v1/provision/batch", server.trim_end_matches('/'))
        .parse()
        .context("--server")?;
    if url.scheme_str() != Some("https") {
        bail!("stations talk to the server over https (mutual TLS)");
    }
    let host = url
        .host()
        .ok_or_else(|| anyhow!("--server has no host"))?
        .to_string();
    let port = url.port_u16().unwrap_or(443);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(a)?));
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&a.out)
        .with_context(|| format!("opening {}", a.out.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let input_path = a.input.clone();
    let quiet = a.quiet;
    let (issued, refused) = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .with_context(|| format!("connecting to {host}:{port}"))?;
        let name = rustls::pki_types::ServerName::try_from(host.clone()).context("server name")?;
        let tls = connector
            .connect(name, tcp)
            .await
            .context("TLS handshake")?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        // The sender: the input lines after those already answered.
        let feeder = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let f = std::fs::File::open(&input_path)?;
            let mut chunk = Vec::with_capacity(64 * 1024);
            let lines = std::io::BufReader::new(f)
                .lines()
                .filter(|l| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
                .skip(done);
            for line in lines {
                chunk.extend_from_slice(line?.trim().as_bytes());
                chunk.push(b'\n');
                if chunk.len() >= 32 * 1024
                    && tx
                        .blocking_send(Bytes::from(std::mem::take(&mut chunk)))
                        .is_err()
                {
                    return Ok(());
                }
            }
            if !chunk.is_empty() {
                let _ = tx.blocking_send(Bytes::from(chunk));
            }
            Ok(())
        });
        let req = hyper::Request::post(url.path())
            .header("host", format!("{host}:{port}"))
            .header("content-type", "application/x-ndjson")
            .body(ChannelBody(rx))?;
        let resp = sender
            .send_request(req)
            .await
            .context("sending the batch")?;
        if resp.status() != 200 {
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            let detail = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["detail"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            bail!("the server refused the batch: {status} {detail}");
        }
        let mut body = resp.into_body();
        let (mut issued, mut refused, mut seen) = (0usize, 0usize, done);
        let mut pending: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.context("reading the answers")?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.extend_from_slice(&data);
            if let Some(end) = pending.iter().rposition(|&b| b == b'\n') {
                let lines: Vec<u8> = pending.drain(..=end).collect();
                out.write_all(&lines)?;
                out.flush()?;
                for l in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    seen += 1;
                    if l.windows(17).any(|w| w == b"\"status\":\"issued\"") {
                        issued += 1;
                    } else {
                        refused += 1;
                    }
                }
                if !quiet {
                    eprint!("\r{seen}/{total} lines answered: {issued} issued, {refused} refused");
                }
            }
        }
        out.sync_all()?;
        if !quiet {
            eprintln!();
        }
        feeder.await.map_err(|e| anyhow!("input reader: {e}"))??;
        if seen < total {
            bail!("the server stopped after {seen} of {total} lines; run again to continue");
        }
        Ok::<_, anyhow::Error>((issued, refused))
    })?;
    eprintln!(
        "done: {issued} issued, {refused} refused in this run; answers in {}",
        a.out.display()
    );
    Ok(())
}
