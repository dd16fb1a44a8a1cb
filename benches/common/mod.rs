//! Shared bench support (`mod common;` in each bench; not a bench target itself): a CA made with
//! `hallmark init` on soft or SoftHSM2 keys, and `hallmark serve` on loopback ports, killed on
//! drop. What tests need as well (the `hallmark` binary, a SoftHSM2 token, finding a tool) is
//! the tests' own helper set, `tests/common`, included here rather than written again.
#![allow(dead_code)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

#[path = "../../tests/common/mod.rs"]
pub mod shared;

pub use shared::SOFTHSM_MODULE;

pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

pub fn hallmark() -> Command {
    Command::new(shared::hallmark_bin())
}

/// Runs a command; its stdout, or an error with its stderr.
pub fn ok(c: &mut Command) -> Res<String> {
    let out = c.output()?;
    if !out.status.success() {
        return Err(format!("{c:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Makes a SoftHSM2 token LABEL (user PIN 123456) in DIR/tokens with the tests' helper; returns
/// the configuration file to name in `SOFTHSM2_CONF`.
pub fn softhsm_token(dir: &Path, label: &str) -> Res<PathBuf> {
    if !Path::new(SOFTHSM_MODULE).exists() {
        return Err(format!("{SOFTHSM_MODULE} is missing: run `make deps`").into());
    }
    Ok(shared::softhsm_token(dir, label, "123456", "12345678"))
}

/// Lifts the per-token API rate limit in CONFIG: no rate limit in a benchmark.
pub fn no_rate_limit(config: &Path) -> Res<()> {
    let text = std::fs::read_to_string(config)?;
    std::fs::write(
        config,
        text.replace(
            "rate_limit_per_minute = 600",
            "rate_limit_per_minute = 100000000",
        ),
    )?;
    Ok(())
}

/// A CA made with `hallmark init` in DIR/ca (no API rate limit), with the environment its
/// commands need.
pub struct BenchCa {
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
}

impl BenchCa {
    /// STORE is "soft" (a passphrase from the environment) or "softhsm2" (a token `bench` made
    /// in DIR).
    pub fn init(store: &str, dir: &Path) -> Res<BenchCa> {
        let mut env = vec![("HALLMARK_BENCH_PASS".to_string(), "bench".to_string())];
        let mut init = vec!["init".to_string(), "--dir".into()];
        init.push(dir.join("ca").display().to_string());
        if store == "soft" {
            init.extend(
                ["--keys", "soft", "--passphrase-env", "HALLMARK_BENCH_PASS"].map(String::from),
            );
        } else {
            let conf = softhsm_token(dir, "bench")?;
            env.push(("SOFTHSM2_CONF".into(), conf.display().to_string()));
            env.push(("HALLMARK_BENCH_PIN".into(), "123456".into()));
            init.extend(
                [
                    "--keys",
                    "pkcs11",
                    "--pkcs11-module",
                    SOFTHSM_MODULE,
                    "--token-label",
                    "bench",
                    "--pin-env",
                    "HALLMARK_BENCH_PIN",
                ]
                .map(String::from),
            );
        }
        let mut c = hallmark();
        c.args(&init);
        for (k, v) in &env {
            c.env(k, v);
        }
        ok(&mut c)?;
        let ca = BenchCa {
            dir: dir.to_path_buf(),
            env,
        };
        no_rate_limit(&ca.config())?;
        Ok(ca)
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("ca/hallmark.toml")
    }

    /// `hallmark --config CONFIG ARGS...` with the CA's environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = hallmark();
        c.arg("--config").arg(self.config()).args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Sets the CA's environment in this process, for the library.
    pub fn set_env(&self) {
        for (k, v) in &self.env {
            std::env::set_var(k, v);
        }
    }

    /// `key create --publisher acme --label LABEL --algorithm ALG EXTRA...`.
    pub fn create_key(&self, label: &str, alg: &str, extra: &[&str]) -> Res<()> {
        let mut args = vec![
            "key",
            "create",
            "--publisher",
            "acme",
            "--label",
            label,
            "--algorithm",
            alg,
        ];
        args.extend_from_slice(extra);
        ok(&mut self.cmd(&args))?;
        Ok(())
    }

    /// A token of publisher `acme` with scope `sign`, named `bench`.
    pub fn sign_token(&self) -> Res<String> {
        Ok(ok(&mut self.cmd(&[
            "token",
            "create",
            "--publisher",
            "acme",
            "--scopes",
            "sign",
            "--name",
            "bench",
        ]))?
        .trim()
        .to_string())
    }

    /// The root certificate written to PATH (PEM).
    pub fn write_root(&self, path: &Path) -> Res<()> {
        std::fs::write(path, ok(&mut self.cmd(&["ca", "cert", "root"]))?)?;
        Ok(())
    }

    /// Publisher `acme` (Acme Corp, US, California) with PROFILES.
    pub fn add_acme(&self, profiles: &str) -> Res<()> {
        ok(&mut self.cmd(&[
            "publisher",
            "add",
            "acme",
            "--org",
            "Acme Corp",
            "--country",
            "US",
            "--state",
            "California",
            "--profiles",
            profiles,
        ]))?;
        Ok(())
    }

    /// `hallmark serve` with both listeners on loopback ports, as its own process, its stderr
    /// going to STDERR; returns it and the API URL. Access lines are off (as the peers' are):
    /// [`SERVE_LOG_LEVEL`].
    pub fn serve(&self, stderr: Stdio) -> Res<(Server, String)> {
        let mut child = self
            .cmd(&[
                "serve",
                "--public-listen",
                "127.0.0.1:0",
                "--api-listen",
                "127.0.0.1:0",
            ])
            .env("HALLMARK_LOG_LEVEL", SERVE_LOG_LEVEL)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let server = Server(child);
        let mut lines = std::io::BufReader::new(stdout).lines();
        let _public = lines.next().ok_or("no banner")??;
        let api_line = lines.next().ok_or("no API banner")??;
        let api = api_line
            .split_whitespace()
            .find(|w| w.starts_with("https://"))
            .ok_or("no API address")?
            .to_string();
        std::thread::spawn(move || for _ in lines {});
        Ok((server, api))
    }
}

/// A TLS client configuration trusting only the root certificate(s) in the PEM file `root`
/// (aws-lc-rs, TLS 1.2 and 1.3).
pub fn tls_client(root: &Path) -> Res<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::pem::PemObject::pem_file_iter(root)? {
        roots.add(c?)?;
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// A server process, killed on drop.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether this run measures key store `store` (`soft` or `softhsm2`):
/// `HALLMARK_BENCH_STORES=soft` (or `softhsm2`, or both comma-separated) runs only those, for
/// quick iterations; unset, all.
pub fn wanted_store(store: &str) -> bool {
    let only = std::env::var("HALLMARK_BENCH_STORES").unwrap_or_default();
    only.is_empty() || only.split(',').any(|s| s == store)
}

/// The log level of the servers the benchmarks run: everything but the access lines (one per
/// request; the peers beside them log no requests either: nginx `access_log off`, cfssl at
/// level 5).
pub const SERVE_LOG_LEVEL: &str = "info,hallmark::access=off";

/// CPU seconds (user + system) process `pid` ("self" for this one) has used so far, from
/// /proc/PID/stat; with `children`, also that of its children that ended and were reaped (a
/// server that serves each connection in a process of its own, as p11-kit's does).
pub fn cpu_secs(pid: &str, children: bool) -> Res<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name: utime, stime, cutime, cstime are 14 to 17.
    let rest = stat.rsplit_once(") ").ok_or("unreadable /proc stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let fields: &[usize] = if children {
        &[11, 12, 13, 14]
    } else {
        &[11, 12]
    };
    let mut ticks = 0.0;
    for i in fields {
        ticks += f.get(*i).ok_or("short /proc stat")?.parse::<f64>()?;
    }
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Ok(ticks / if hz > 0 { hz as f64 } else { 100.0 })
}

/// Best and median of `runs` timings of `f`, in seconds.
pub fn timings(runs: usize, mut f: impl FnMut() -> Res<()>) -> Res<(f64, f64)> {
    let mut t = Vec::with_capacity(runs);
    for _ in 0..runs {
        let s = std::time::Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    Ok((t[0], t[t.len() / 2]))
}

/// Writes MIB mebibytes of pseudo-random bytes (xorshift, each MiB numbered) to FILE, synced,
/// then reads it once so that it sits in the page cache.
pub fn page_cached_file(file: &Path, mib: usize) -> Res<()> {
    use std::io::Write;
    let mut block = vec![0u8; 1 << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    for b in block.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(file)?);
    for i in 0..mib {
        block[0..8].copy_from_slice(&(i as u64).to_le_bytes());
        f.write_all(&block)?;
    }
    f.into_inner().map_err(|e| e.to_string())?.sync_all()?;
    std::io::copy(&mut std::fs::File::open(file)?, &mut std::io::sink())?;
    Ok(())
}
