//! Shared test support: real tools (openssl, pkilint, softhsm2-util), real CA directories made
//! with the `hallmark` binary, and a SoftHSM2 token in a temp dir. A missing tool fails the test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Each test function `fn NAME(keys: Keys)` named, run once per key store: `soft::NAME` and
/// `softhsm::NAME` (the test binary that includes this module with `#[macro_use]` sees it).
#[allow(unused_macros)]
macro_rules! per_key_store {
    ($($name:ident),* $(,)?) => {
        mod soft {
            $( #[test] fn $name() { super::$name(super::Keys::Soft) } )*
        }
        mod softhsm {
            $( #[test] fn $name() { super::$name(super::Keys::SoftHsm) } )*
        }
    };
}

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

/// `target/debug/hallmark-client`, the client crate's binary: `cargo test --workspace` builds it
/// for the client crate's own integration test (`client/tests/binary.rs`), in the same build as
/// these tests (Cargo gives a test only its own crate's binaries).
pub fn hallmark_client_bin() -> PathBuf {
    let p = hallmark_bin()
        .parent()
        .expect("target dir")
        .join("hallmark-client");
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo build -p hallmark-client` (`cargo test --workspace` does)",
        p.display()
    );
    p
}

/// Runs a command, returning its output (never panics on non-zero exit).
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// A finished command's stdout then stderr, as text.
pub fn text_of(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs tool NAME with ARGS in DIR; (success, stdout + stderr).
pub fn tool_run(dir: &Path, name: &str, args: &[&str]) -> (bool, String) {
    let mut c = Command::new(tool(name));
    c.current_dir(dir).args(args);
    let out = run(&mut c);
    (out.status.success(), text_of(&out))
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

/// A SoftHSM2 configuration file in DIR with its token directory DIR/tokens; its path.
pub fn softhsm_conf(dir: &Path) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).expect("token dir");
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .expect("softhsm conf");
    conf
}

/// A SoftHSM2 token LABEL (user PIN, SO PIN) under `softhsm_conf(DIR)`; the configuration file.
pub fn softhsm_token(dir: &Path, label: &str, pin: &str, so_pin: &str) -> PathBuf {
    let conf = softhsm_conf(dir);
    let mut init = Command::new(tool("softhsm2-util"));
    init.args([
        "--init-token",
        "--free",
        "--label",
        label,
        "--pin",
        pin,
        "--so-pin",
        so_pin,
    ]);
    init.env("SOFTHSM2_CONF", &conf);
    ok(&mut init);
    conf
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
        TestCa::new_with(keys, &[])
    }

    /// `hallmark init` with EXTRA arguments (e.g. `--listen`, `--public-url`).
    pub fn new_with(keys: Keys, extra: &[&str]) -> TestCa {
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
                let conf = softhsm_token(dir.path(), "hallmark-test", "123456", "12345678");
                env.push(("SOFTHSM2_CONF".into(), conf.display().to_string()));
                env.push(("HALLMARK_TEST_PIN".into(), "123456".into()));
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
        args.extend(extra.iter().map(|a| a.to_string()));
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

    /// The library on this CA: its secrets' environment variables set for this process (as the
    /// command line gets them), then `Hallmark::open` on its config.
    pub fn open(&self) -> hallmark::engine::Hallmark {
        for (k, v) in self.env() {
            std::env::set_var(k, v);
        }
        hallmark::engine::Hallmark::open(&self.config()).expect("open the CA")
    }

    /// `hallmark key create --publisher PUBLISHER --label LABEL --algorithm ALG EXTRA...`; its
    /// output.
    pub fn create_key(&self, publisher: &str, label: &str, alg: &str, extra: &[&str]) -> String {
        let mut args = vec![
            "key",
            "create",
            "--publisher",
            publisher,
            "--label",
            label,
            "--algorithm",
            alg,
        ];
        args.extend_from_slice(extra);
        self.hm(&args)
    }

    /// `hallmark token create ARGS...`; the token.
    pub fn token(&self, args: &[&str]) -> String {
        let mut a = vec!["token", "create"];
        a.extend_from_slice(args);
        self.hm(&a).trim().to_string()
    }

    /// The CA's store, through its traits (and the test hooks), as a second process would
    /// open it beside a running server.
    pub fn store(&self) -> std::sync::Arc<dyn hallmark::store::hooks::HookedStore> {
        hallmark::store::hooks::open_with_hooks(&self.dir.path().join("ca/hallmark.db"))
            .expect("store")
    }

    /// How many signatures are recorded.
    pub fn signatures(&self) -> i64 {
        self.store().count_signatures().expect("count")
    }

    /// Publisher `globex` (Globex Inc, US, Oregon) for code signing.
    pub fn add_globex(&self) {
        self.hm(&[
            "publisher",
            "add",
            "globex",
            "--org",
            "Globex Inc",
            "--country",
            "US",
            "--state",
            "Oregon",
            "--profiles",
            "code-signing",
        ]);
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
            "code-signing,firmware-signing,timestamping,iot-device,station,tls-server,matter-dac,package-signing",
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
    /// What the server wrote to standard error so far, a line each (also passed on to the
    /// test's own standard error).
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
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
        Server::start_with_env(ca, with_api, &[])
    }

    /// Like `start`, with ENV set for the server only.
    pub fn start_with_env(ca: &TestCa, with_api: bool, env: &[(&str, &str)]) -> Server {
        Server::start_at(ca, "127.0.0.1:0", with_api, env)
    }

    /// Like `start_with_env`, with the public listener on PUBLIC (the address the CA's
    /// certificates name for OCSP and CRLs, when a test fetches them from there).
    pub fn start_at(ca: &TestCa, public: &str, with_api: bool, env: &[(&str, &str)]) -> Server {
        Server::start_listening(ca, public, with_api.then_some("127.0.0.1:0"), env)
    }

    /// Like `start_at`, with the API listener at API (none: `--no-api`), for a test that must
    /// know its address before the server starts (a redirect URI in the config).
    pub fn start_listening(
        ca: &TestCa,
        public: &str,
        api: Option<&str>,
        env: &[(&str, &str)],
    ) -> Server {
        Server::spawn(ca, public, api, env, None)
    }

    /// Both listeners, the server's descriptor limit (soft and hard, as `ulimit -n` sets them)
    /// at NOFILE.
    pub fn start_with_nofile(ca: &TestCa, nofile: u64) -> Server {
        Server::spawn(ca, "127.0.0.1:0", Some("127.0.0.1:0"), &[], Some(nofile))
    }

    fn spawn(
        ca: &TestCa,
        public: &str,
        api: Option<&str>,
        env: &[(&str, &str)],
        nofile: Option<u64>,
    ) -> Server {
        use std::io::BufRead;
        let with_api = api.is_some();
        let mut args = vec!["serve", "--public-listen", public];
        match api {
            Some(a) => args.extend(["--api-listen", a]),
            None => args.push("--no-api"),
        }
        let mut cmd = match nofile {
            None => ca.cmd(&args),
            Some(n) => {
                let mut c = Command::new(tool("prlimit"));
                c.arg(format!("--nofile={n}:{n}"))
                    .arg("--")
                    .arg(hallmark_bin())
                    .arg("--config")
                    .arg(ca.config())
                    .args(&args);
                ca.apply_env(&mut c);
                c
            }
        };
        // Access lines for every request would flood the test output: warnings and errors
        // only (a test's ENV may say otherwise).
        let mut child = cmd
            .env("HALLMARK_LOG_LEVEL", "warn")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        if let Some(err) = child.stderr.take() {
            let sink = log.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                    eprintln!("{line}");
                    if let Ok(mut l) = sink.lock() {
                        l.push(line);
                    }
                }
            });
        }
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
        Server {
            child,
            public,
            api,
            log,
        }
    }

    /// The server's log lines so far, joined.
    pub fn log_text(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9` of the server (SIGKILL sent directly, no `kill` process in between), then reaped.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// A CA with publisher `acme`, its root certificate, and a running server with the API
/// listener: what `hallmark sign` and `hallmark approve` run against.
pub struct SignEnv {
    /// Declared first: dropped (killed) before the CA directory it uses is deleted.
    pub server: Server,
    pub ca: TestCa,
    pub root: String,
}

impl SignEnv {
    /// A CA with KEYS and publisher `acme`, then SETUP (keys exist before the server starts:
    /// an HSM session sees them at once), then the root PEM and the server.
    pub fn start<T>(keys: Keys, setup: impl FnOnce(&TestCa) -> T) -> (SignEnv, T) {
        let ca = TestCa::new(keys);
        ca.add_acme();
        let made = setup(&ca);
        let root = ca.ca_pem("root").display().to_string();
        let server = Server::start(&ca, true);
        (SignEnv { server, ca, root }, made)
    }

    pub fn api(&self) -> &str {
        self.server.api.as_deref().expect("api listener")
    }

    pub fn path(&self, name: &str) -> String {
        self.ca.path(name).display().to_string()
    }

    pub fn store(&self) -> std::sync::Arc<dyn hallmark::store::hooks::HookedStore> {
        self.ca.store()
    }

    pub fn recorded(&self) -> i64 {
        self.ca.signatures()
    }

    /// `hallmark sign KIND FILE --key KEY OPTS... --server API --token-env SIGN_TOKEN --ca ROOT
    /// EXTRA...` with TOKEN in the environment.
    pub fn sign_cmd(
        &self,
        token: &str,
        kind: &str,
        file: &str,
        key: &str,
        opts: &[&str],
        extra: &[&str],
    ) -> Command {
        let mut args = vec!["sign", kind, file, "--key", key];
        args.extend_from_slice(opts);
        args.extend([
            "--server",
            self.api(),
            "--token-env",
            "SIGN_TOKEN",
            "--ca",
            &self.root,
        ]);
        args.extend_from_slice(extra);
        let mut c = self.ca.cmd(&args);
        c.env("SIGN_TOKEN", token);
        c
    }

    /// `hallmark approve --signature ID --server API --token-env APPROVE_TOKEN --ca ROOT` with
    /// TOKEN in the environment.
    pub fn approve(&self, id: i64, token: &str) -> Output {
        let id = id.to_string();
        run(self
            .ca
            .cmd(&[
                "approve",
                "--signature",
                &id,
                "--server",
                self.api(),
                "--token-env",
                "APPROVE_TOKEN",
                "--ca",
                &self.root,
            ])
            .env("APPROVE_TOKEN", token))
    }

    /// Waits (up to 30 s) for a pending signature request; its id.
    pub fn pending_request(&self) -> i64 {
        let start = std::time::Instant::now();
        loop {
            let found: Option<i64> = self
                .store()
                .signature_request_ids(hallmark::store::SignatureRequestStatus::Pending)
                .expect("read")
                .first()
                .copied();
            if let Some(id) = found {
                return id;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "no pending signature request"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// curl to the API: `--cacert ROOT [-X METHOD] [-H "Authorization: Bearer TOKEN"]
    /// [-H "Content-Type: application/json" --data-binary BODY] API+PATH`; (status, JSON).
    pub fn call(
        &self,
        method: Option<&str>,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let auth = token.map(|t| format!("Authorization: Bearer {t}"));
        let mut args = vec!["--cacert", &self.root];
        if let Some(m) = method {
            args.extend(["-X", m]);
        }
        if let Some(a) = &auth {
            args.extend(["-H", a]);
        }
        if let Some(b) = body {
            args.extend(["-H", "Content-Type: application/json", "--data-binary", b]);
        }
        let (code, raw, _) = curl(&format!("{}{path}", self.api()), &args);
        (
            code,
            serde_json::from_slice(&raw).unwrap_or(serde_json::Value::Null),
        )
    }

    /// `openssl cms -verify` of a DER P7S over CONTENT against the root; (ok, output).
    pub fn cms_verify(&self, p7s: &str, content: &str) -> (bool, String) {
        tool_run(
            self.ca.dir.path(),
            "openssl",
            &[
                "cms",
                "-verify",
                "-binary",
                "-inform",
                "DER",
                "-in",
                p7s,
                "-content",
                content,
                "-CAfile",
                &self.root,
                "-purpose",
                "any",
                "-out",
                "/dev/null",
            ],
        )
    }

    /// The key's certificate (PEM, `hallmark key show`) and its public key (PEM), as files.
    pub fn cert_and_public_key(&self, label: &str) -> (String, String) {
        let cert = self.path(&format!("{label}.crt.pem"));
        std::fs::write(&cert, self.ca.hm(&["key", "show", label])).expect("cert");
        let pubkey = self.path(&format!("{label}.pub.pem"));
        openssl(
            self.ca.dir.path(),
            &["x509", "-in", &cert, "-pubkey", "-noout", "-out", &pubkey],
        );
        (cert, pubkey)
    }
}

/// A throwaway P-256 key and self-signed code-signing certificate in DIR (k.pem, c.pem), for
/// signing with osslsigncode itself as the reference the format code is checked against.
pub fn code_signing_cert(dir: &Path, cn: &str) {
    let subj = format!("/CN={cn}");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "k.pem",
            "-out",
            "c.pem",
            "-subj",
            &subj,
            "-days",
            "2",
            "-addext",
            "extendedKeyUsage=codeSigning",
        ],
    );
}

/// The children of a DER constructed value.
pub fn der_children(contents: &[u8]) -> Vec<hallmark::der::Tlv<'_>> {
    let mut out = Vec::new();
    let mut rest = contents;
    while !rest.is_empty() {
        let t = hallmark::der::read_tlv(rest).expect("DER");
        rest = t.rest;
        out.push(t);
    }
    out
}

/// The SpcIndirectDataContent (whole DER) inside an Authenticode PKCS#7 (SignedData
/// ContentInfo), and the file digest in its DigestInfo.
pub fn authenticode_content(p7: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let ci = hallmark::der::read_tlv(p7).expect("ContentInfo");
    let explicit = &der_children(ci.contents)[1];
    let sd = hallmark::der::read_tlv(explicit.contents).expect("SignedData");
    let fields = der_children(sd.contents);
    let content_info = der_children(fields[2].contents);
    // SPC_INDIRECT_DATA_OBJID 1.3.6.1.4.1.311.2.1.4
    assert_eq!(
        content_info[0].whole,
        [0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x04],
        "not SpcIndirectDataContent"
    );
    let content = hallmark::der::read_tlv(content_info[1].contents).expect("content");
    let digest_info = &der_children(content.contents)[1];
    let digest = &der_children(digest_info.contents)[1];
    assert_eq!(digest.tag, 0x04, "DigestInfo digest");
    (content.whole.to_vec(), digest.contents.to_vec())
}

/// A code-signing profile whose certificates need 2 of 3 approvals (release-manager,
/// security-lead, qa-lead); write it to `ca/ca-profiles/release-signing.toml`.
pub const RELEASE_PROFILE: &str = r#"
name = "release-signing"
description = "Release code signing, two approvals"
issuer = "code-signing-ca"
validity_days = 365
approvals = { required = 2, approvers = ["release-manager", "security-lead", "qa-lead"] }

[key]
algorithms = ["p256", "p384"]

[extensions]
key_usage = ["digitalSignature"]
extended_key_usage = ["codeSigning"]
certificate_policies = ["ca-policy"]
crl_distribution_point = true
authority_info_access = true

[subject]
common_name = "organization"
attributes = ["O", "C", "ST", "L"]
"#;

/// A device key made in-process (a device's secure element does this on the line) and its CSR,
/// DER, with the device serial in the subject's serialNumber.
pub fn device_csr(serial: &str) -> Vec<u8> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let p8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &rng,
    )
    .expect("keygen");
    let key = hallmark::keys::soft::SoftKey::ephemeral("device", p8.as_ref()).expect("key");
    let subject = [hallmark::policy::NameAttr {
        kind: "serialNumber".into(),
        value: serial.into(),
    }];
    hallmark::issuer::make_csr(&subject, &key).expect("csr")
}

/// A minimal valid PE image: DOS header, PE header, optional header (PE32+ for x86-64, or
/// PE32 for i386) with 16 data directories, one .text section holding `ret`.
pub fn tiny_pe(pe32_plus: bool) -> Vec<u8> {
    let mut d = vec![0u8; 0x400];
    let put16 =
        |d: &mut Vec<u8>, at: usize, v: u16| d[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 =
        |d: &mut Vec<u8>, at: usize, v: u32| d[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let put64 =
        |d: &mut Vec<u8>, at: usize, v: u64| d[at..at + 8].copy_from_slice(&v.to_le_bytes());
    d[0..2].copy_from_slice(b"MZ");
    put32(&mut d, 0x3c, 0x40);
    d[0x40..0x44].copy_from_slice(b"PE\0\0");
    let coff = 0x44;
    let opt_size: u16 = if pe32_plus { 240 } else { 224 };
    put16(&mut d, coff, if pe32_plus { 0x8664 } else { 0x014c }); // Machine
    put16(&mut d, coff + 2, 1); // NumberOfSections
    put16(&mut d, coff + 16, opt_size); // SizeOfOptionalHeader
    put16(&mut d, coff + 18, if pe32_plus { 0x0022 } else { 0x0102 }); // Characteristics
    let opt = coff + 20;
    put16(&mut d, opt, if pe32_plus { 0x20b } else { 0x10b }); // Magic
    d[opt + 2] = 14; // linker version
    put32(&mut d, opt + 4, 0x200); // SizeOfCode
    put32(&mut d, opt + 16, 0x1000); // AddressOfEntryPoint
    put32(&mut d, opt + 20, 0x1000); // BaseOfCode
    if pe32_plus {
        put64(&mut d, opt + 24, 0x1_4000_0000); // ImageBase
    } else {
        put32(&mut d, opt + 24, 0x2000); // BaseOfData
        put32(&mut d, opt + 28, 0x40_0000); // ImageBase
    }
    put32(&mut d, opt + 32, 0x1000); // SectionAlignment
    put32(&mut d, opt + 36, 0x200); // FileAlignment
    put16(&mut d, opt + 40, 6); // MajorOperatingSystemVersion
    put16(&mut d, opt + 48, 6); // MajorSubsystemVersion
    put32(&mut d, opt + 56, 0x2000); // SizeOfImage
    put32(&mut d, opt + 60, 0x200); // SizeOfHeaders
    put16(&mut d, opt + 68, 3); // Subsystem: console
    put16(&mut d, opt + 70, 0x8140); // DllCharacteristics
    if pe32_plus {
        put64(&mut d, opt + 72, 0x10_0000); // stack reserve
        put64(&mut d, opt + 80, 0x1000); // stack commit
        put64(&mut d, opt + 88, 0x10_0000); // heap reserve
        put64(&mut d, opt + 96, 0x1000); // heap commit
        put32(&mut d, opt + 108, 16); // NumberOfRvaAndSizes
    } else {
        put32(&mut d, opt + 72, 0x10_0000);
        put32(&mut d, opt + 76, 0x1000);
        put32(&mut d, opt + 80, 0x10_0000);
        put32(&mut d, opt + 84, 0x1000);
        put32(&mut d, opt + 92, 16); // NumberOfRvaAndSizes
    }
    let sec = opt + usize::from(opt_size);
    d[sec..sec + 8].copy_from_slice(b".text\0\0\0");
    put32(&mut d, sec + 8, 0x10); // VirtualSize
    put32(&mut d, sec + 12, 0x1000); // VirtualAddress
    put32(&mut d, sec + 16, 0x200); // SizeOfRawData
    put32(&mut d, sec + 20, 0x200); // PointerToRawData
    put32(&mut d, sec + 36, 0x6000_0020); // code, execute, read
    d[0x200] = 0xc3; // ret
    d
}

/// A cabinet made by `gcab` (stored, not compressed, so the payload's bytes can be found and
/// changed) and an MSI made by `wixl`, in the fixture's directory.
pub fn cab_and_msi(dir: &Path) -> (String, String) {
    let path = |n: &str| dir.join(n).display().to_string();
    let payload = path("readme.txt");
    std::fs::write(&payload, "hallmark cabinet payload\n".repeat(200)).expect("payload");
    std::fs::write(
        path("tool.bin"),
        (0..50_000u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<u8>>(),
    )
    .expect("tool.bin");
    let cab = path("app.cab");
    let (ok, text) = tool_run(dir, "gcab", &["-c", &cab, "readme.txt", "tool.bin"]);
    assert!(ok, "gcab: {text}");
    let wxs = path("app.wxs");
    std::fs::write(
        &wxs,
        r#"<?xml version="1.0" encoding="utf-8"?>
<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">
  <Product Id="*" Name="HallmarkApp" Language="1033" Version="1.2.3" Manufacturer="acme"
           UpgradeCode="7c8f6a52-1d3e-4b8a-9f0e-2a6b5c4d3e21">
    <Package InstallerVersion="200" Compressed="yes" />
    <Media Id="1" Cabinet="app.cab" EmbedCab="yes" />
    <Directory Id="TARGETDIR" Name="SourceDir">
      <Directory Id="ProgramFilesFolder">
        <Directory Id="INSTALLDIR" Name="HallmarkApp">
          <Component Id="Main" Guid="0f4e3d2c-1b0a-4987-8654-3210fedcba98">
            <File Id="Readme" Source="readme.txt" />
            <File Id="Tool" Source="tool.bin" />
          </Component>
        </Directory>
      </Directory>
    </Directory>
    <Feature Id="App" Level="1"><ComponentRef Id="Main" /></Feature>
  </Product>
</Wix>
"#,
    )
    .expect("wxs");
    let msi = path("app.msi");
    let (ok, text) = tool_run(dir, "wixl", &["-o", &msi, &wxs]);
    assert!(ok, "wixl: {text}");
    (cab, msi)
}

/// A copy of the MSI `file` with one byte of its summary-information stream changed (the
/// stream is part of the signed hash; a byte of the file itself may sit in unused space).
pub fn tampered_msi(file: &str) -> String {
    use std::io::{Read as _, Seek as _, Write as _};
    let p = format!("{file}.tampered");
    std::fs::copy(file, &p).expect("copy");
    let mut cfb = cfb::open_rw(&p).expect("open msi");
    let name = "\u{5}SummaryInformation";
    let mut data = Vec::new();
    cfb.open_stream(name)
        .expect("summary stream")
        .read_to_end(&mut data)
        .expect("read");
    let last = data.len() - 1;
    data[last] ^= 0x01;
    let mut s = cfb.open_stream(name).expect("summary stream");
    s.rewind().expect("seek");
    s.write_all(&data).expect("write");
    drop(s);
    cfb.flush().expect("flush");
    p
}

/// A TCP port free on 127.0.0.1 now (for a server a test starts on a fixed address).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A jar at DIR/NAME made by the JDK's `jar` from FILES (path inside the jar, contents).
pub fn make_jar(dir: &Path, name: &str, files: &[(&str, &[u8])]) -> String {
    let src = dir.join(format!("{name}-src"));
    for (path, data) in files {
        let p = src.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, data).expect("jar entry");
    }
    let jar = dir.join(name).display().to_string();
    let (ok, said) = tool_run(
        dir,
        "jar",
        &[
            "--create",
            "--file",
            &jar,
            "-C",
            &src.display().to_string(),
            ".",
        ],
    );
    assert!(ok, "jar: {said}");
    jar
}
pub mod oidc;
