//! Shared test support: real tools (openssl, pkilint, softhsm2-util), real CA directories made
//! with the `hallmark` binary, and a SoftHSM2 token in a temp dir. A missing tool fails the test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Finds a tool: `$HALLMARK_TOOLS_BIN`, the repo's `.venv/bin`, then PATH. Panics if missing.
pub fn tool(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(d) = std::env::var("HALLMARK_TOOLS_BIN") {
        dirs.push(d.into());
    }
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin"));
    if let Ok(path) = std::env::var("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    for d in dirs {
        let p = d.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("required tool '{name}' is not installed: run `make deps` (or `make test`), which installs it");
}

pub fn hallmark_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hallmark"))
}

/// Runs a command, returning its output (never panics on non-zero exit).
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Which key store a test CA uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    Soft,
    SoftHsm,
}

/// A CA directory made with `hallmark init`, plus the environment its commands need.
pub struct TestCa {
    pub dir: tempfile::TempDir,
    pub keys: Keys,
    env: Vec<(String, String)>,
}

pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

impl TestCa {
    pub fn new(keys: Keys) -> TestCa {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut env = vec![(
            "HALLMARK_TEST_PASS".to_string(),
            "test passphrase".to_string(),
        )];
        let mut args: Vec<String> = vec![
            "init".into(),
            "--dir".into(),
            dir.path().join("ca").display().to_string(),
        ];
        match keys {
            Keys::Soft => {
                args.extend(
                    ["--keys", "soft", "--passphrase-env", "HALLMARK_TEST_PASS"].map(String::from),
                );
            }
            Keys::SoftHsm => {
                assert!(
                    Path::new(SOFTHSM_MODULE).exists(),
                    "SoftHSM2 is not installed ({SOFTHSM_MODULE} missing): run `make deps`"
                );
                let tokens = dir.path().join("tokens");
                std::fs::create_dir_all(&tokens).expect("token dir");
                let conf = dir.path().join("softhsm2.conf");
                std::fs::write(
                    &conf,
                    format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display()),
                )
                .expect("softhsm conf");
                env.push(("SOFTHSM2_CONF".into(), conf.display().to_string()));
                env.push(("HALLMARK_TEST_PIN".into(), "123456".into()));
                let mut init = Command::new(tool("softhsm2-util"));
                init.args([
                    "--init-token",
                    "--free",
                    "--label",
                    "hallmark-test",
                    "--pin",
                    "123456",
                    "--so-pin",
                    "12345678",
                ]);
                init.env("SOFTHSM2_CONF", &conf);
                ok(&mut init);
                args.extend(
                    [
                        "--keys",
                        "pkcs11",
                        "--pkcs11-module",
                        SOFTHSM_MODULE,
                        "--token-label",
                        "hallmark-test",
                        "--pin-env",
                        "HALLMARK_TEST_PIN",
                    ]
                    .map(String::from),
                );
            }
        }
        let ca = TestCa { dir, keys, env };
        let mut c = Command::new(hallmark_bin());
        c.args(&args);
        ca.apply_env(&mut c);
        ok(&mut c);
        ca
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("ca/hallmark.toml")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn apply_env(&self, c: &mut Command) {
        for (k, v) in &self.env {
            c.env(k, v);
        }
    }

    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// `hallmark --config CONFIG ARGS...`
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(hallmark_bin());
        c.arg("--config").arg(self.config()).args(args);
        self.apply_env(&mut c);
        c
    }

    pub fn hm(&self, args: &[&str]) -> String {
        ok(&mut self.cmd(args))
    }

    /// Writes a CA certificate to DIR/NAME.pem and returns the path.
    pub fn ca_pem(&self, name: &str) -> PathBuf {
        let p = self.path(&format!("{name}.pem"));
        if !p.exists() {
            std::fs::write(&p, self.hm(&["ca", "cert", name])).expect("write CA pem");
        }
        p
    }

    pub fn add_acme(&self) {
        self.hm(&[
            "publisher",
            "add",
            "acme",
            "--org",
            "Acme Corp",
            "--country",
            "US",
            "--state",
            "California",
            "--locality",
            "San Jose",
            "--profiles",
            "code-signing,firmware-signing,timestamping,iot-device,station,tls-server,matter-dac",
        ]);
    }
}

/// Runs openssl with ARGS in DIR.
pub fn openssl(dir: &Path, args: &[&str]) -> String {
    let mut c = Command::new(tool("openssl"));
    c.current_dir(dir).args(args);
    ok(&mut c)
}

/// Makes a key (openssl genpkey ARGS) and a CSR with SUBJ; returns the CSR path.
pub fn make_csr(dir: &Path, name: &str, genpkey: &[&str], subj: &str, extra: &[&str]) -> PathBuf {
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let mut a = vec!["genpkey"];
    a.extend_from_slice(genpkey);
    a.extend(["-out", &key]);
    openssl(dir, &a);
    let mut r = vec!["req", "-new", "-key", &key, "-subj", subj, "-out", &csr];
    r.extend_from_slice(extra);
    openssl(dir, &r);
    dir.join(csr)
}

/// Splits a PEM bundle into its certificate blocks (as PEM strings).
pub fn pem_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        cur.push_str(line);
        cur.push('\n');
        if line.starts_with("-----END") {
            out.push(std::mem::take(&mut cur));
        }
    }
    out
}

/// Runs a pkilint command; returns (exit code, output).
pub fn pkilint(dir: &Path, lint: &str, args: &[&str]) -> (i32, String) {
    let mut c = Command::new(tool(lint));
    c.current_dir(dir).args(args);
    let out = run(&mut c);
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

pub fn assert_pkilint_clean(dir: &Path, cert: &str) {
    let (code, text) = pkilint(dir, "lint_pkix_cert", &["lint", "-s", "WARNING", cert]);
    assert_eq!(code, 0, "pkilint findings for {cert}:\n{text}");
}

/// A running `hallmark serve` on random loopback ports; killed on drop.
pub struct Server {
    child: std::process::Child,
    pub public: String,
    pub api: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts the server with both listeners (or `--no-api`) and reads the bound addresses.
    pub fn start(ca: &TestCa, with_api: bool) -> Server {
        use std::io::BufRead;
        let mut args = vec!["serve", "--public-listen", "127.0.0.1:0"];
        if with_api {
            args.extend(["--api-listen", "127.0.0.1:0"]);
        } else {
            args.push("--no-api");
        }
        let mut child = ca
            .cmd(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("spawn serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = std::io::BufReader::new(stdout);
        let mut url_of = |what: &str| -> String {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read banner");
            assert!(line.contains(what), "unexpected banner line: {line}");
            line.split_whitespace()
                .find(|w| w.starts_with("http://") || w.starts_with("https://"))
                .unwrap_or_else(|| panic!("no address in banner: {line}"))
                .to_string()
        };
        let public = url_of("public listener");
        let api = with_api.then(|| url_of("API listener"));
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        Server { child, public, api }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for the server to exit; its exit code.
    pub fn wait_exit(&mut self, limit: std::time::Duration) -> Option<i32> {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }
}

/// One curl call: returns (status, body, content type). `args` are extra curl arguments.
pub fn curl(url: &str, args: &[&str]) -> (u16, Vec<u8>, String) {
    let mut c = Command::new(tool("curl"));
    c.args(["-s", "-o", "-", "-w", "\n%{http_code} %{content_type}"])
        .args(args)
        .arg(url);
    let out = run(&mut c);
    let body = out.stdout;
    let split = body
        .iter()
        .rposition(|&b| b == b'\n')
        .expect("curl trailer");
    let trailer = String::from_utf8_lossy(&body[split + 1..]).into_owned();
    let (code, ctype) = trailer.split_once(' ').unwrap_or((&trailer, ""));
    (
        code.parse().unwrap_or(0),
        body[..split].to_vec(),
        ctype.to_string(),
    )
}
