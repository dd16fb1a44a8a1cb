//! A small HTTPS client for CLI commands that talk to a hallmark server (`request`, `approve`).
//!
//! It trusts only the CA file it is given (hallmark's root), never the system store, and sends
//! the token from an environment variable or a file so it never appears in argv.

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;

/// Where the credential comes from: a hallmark token in an environment variable or a file
/// (never argv), or the CI job's own OIDC token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Env(String),
    File(std::path::PathBuf),
    /// The job's OIDC token in this variable (GitLab's `id_tokens`, Buildkite, CircleCI).
    OidcEnv(String),
    /// GitHub Actions: asked of `ACTIONS_ID_TOKEN_REQUEST_URL` with
    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, for this audience.
    GithubActions {
        audience: String,
    },
}

/// What `--oidc` says when the job has no token to give.
const NO_OIDC: &str = "--oidc: this job has no OIDC token to send. In GitHub Actions give the job `permissions: id-token: write`; elsewhere pass --oidc-token-env VAR, the variable that holds the job's token (GitLab CI: an `id_tokens:` entry with `aud: hallmark`)";

impl TokenSource {
    /// The token; a message that names the source (never a value) when it is not there.
    pub fn read(&self) -> anyhow::Result<String> {
        match self {
            TokenSource::Env(var) => std::env::var(var).map_err(|_| {
                anyhow!(crate::envvar::unset_message(
                    "--token-env",
                    var,
                    "the API token"
                ))
            }),
            TokenSource::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .map_err(|e| {
                    anyhow!(
                        "cannot read the token file {} ({e}); `hallmark client login` names another",
                        path.display()
                    )
                }),
            TokenSource::OidcEnv(var) => {
                let t = std::env::var(var)
                    .map_err(|_| anyhow!("--oidc-token-env: ${var} is not set. {NO_OIDC}"))?;
                let t = t.trim().to_string();
                if !crate::jwt::looks_like_jwt(&t) {
                    bail!("--oidc-token-env: ${var} does not hold a JWT (three base64url parts); give the variable your CI fills with the job's OIDC token");
                }
                Ok(t)
            }
            TokenSource::GithubActions { audience } => github_actions_token(audience),
        }
    }
}

/// The job's OIDC token from GitHub Actions' token service, for `audience`.
fn github_actions_token(audience: &str) -> anyhow::Result<String> {
    let url = std::env::var("ACTIONS_ID_TOKEN_REQUEST_URL").map_err(|_| anyhow!(NO_OIDC))?;
    let bearer = std::env::var("ACTIONS_ID_TOKEN_REQUEST_TOKEN").map_err(|_| {
        anyhow!("ACTIONS_ID_TOKEN_REQUEST_URL is set but ACTIONS_ID_TOKEN_REQUEST_TOKEN is not: {NO_OIDC}")
    })?;
    let encoded: String = audience
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let sep = if url.contains('?') { '&' } else { '?' };
    let full = format!("{url}{sep}audience={encoded}");
    let tls = crate::outbound::Tls::new(None)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let r = rt
        .block_on(crate::outbound::get(
            &full,
            Some(&bearer),
            &tls,
            std::time::Duration::from_secs(30),
            64 * 1024,
        ))
        .context("asking GitHub Actions for the job's OIDC token")?;
    if r.status != 200 {
        bail!(
            "GitHub Actions' token service answered HTTP {} (does the job have `permissions: id-token: write`?)",
            r.status
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body)
        .context("GitHub Actions' token service did not answer JSON")?;
    let t = v["value"]
        .as_str()
        .ok_or_else(|| anyhow!("GitHub Actions' token service answered no token (value)"))?;
    Ok(t.to_string())
}

/// One server: base URL, credential (none for the public listener) and trust anchor.
pub struct Client {
    base: String,
    token: std::sync::Mutex<Option<String>>,
    /// A CI job's OIDC token lives minutes: where to ask again, and when it was last asked
    /// (a command that waits days for approvals keeps polling with a fresh one).
    refresh: Option<(TokenSource, std::sync::Mutex<std::time::Instant>)>,
    tls: Option<tokio_rustls::TlsConnector>,
    rt: tokio::runtime::Runtime,
    /// A bound on each exchange (connect to last byte); none by default.
    timeout: Option<std::time::Duration>,
    /// The open connection (HTTP/1.1 keep-alive) and when it last answered: the next request
    /// reuses it unless it closed or idled longer than [`IDLE_REUSE`].
    conn: tokio::sync::Mutex<Option<(Sender, std::time::Instant)>>,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A connection idle longer than this is not reused (the server closes idle ones after
/// `api.connection_timeout_secs`, 120 s by default; a request must not race that close).
const IDLE_REUSE: std::time::Duration = std::time::Duration::from_secs(20);

/// A response: status and body.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).context("the server's answer is not JSON")
    }

    /// The problem document's detail, or the body.
    pub fn problem(&self) -> String {
        match self.json() {
            Ok(v) => format!(
                "{} ({})",
                v["detail"].as_str().unwrap_or("no detail"),
                v["type"].as_str().unwrap_or("no type")
            ),
            Err(_) => String::from_utf8_lossy(&self.body).into_owned(),
        }
    }
}

/// SIGINT and SIGTERM, caught while a command waits on the server (for approvals): the command
/// then withdraws what it asked for instead of leaving it pending for ever.
pub struct Interrupts {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Client {
    /// Catches SIGINT and SIGTERM from now on (see [`Client::pause`]).
    pub fn interrupts(&self) -> anyhow::Result<Interrupts> {
        use tokio::signal::unix::{signal, SignalKind};
        let _rt = self.rt.enter();
        Ok(Interrupts {
            int: signal(SignalKind::interrupt()).context("catching SIGINT")?,
            term: signal(SignalKind::terminate()).context("catching SIGTERM")?,
        })
    }

    /// Waits `dur`; true when SIGINT or SIGTERM came first.
    pub fn pause(&self, dur: std::time::Duration, signals: &mut Interrupts) -> bool {
        self.rt.block_on(async {
            tokio::select! {
                _ = tokio::time::sleep(dur) => false,
                _ = signals.int.recv() => true,
                _ = signals.term.recv() => true,
            }
        })
    }

    /// Withdraws a pending request (`PATH` is the request's URL path); what happened, to say.
    pub fn cancel(&self, path: &str) -> String {
        match self.send("POST", &format!("{path}/cancel"), None, vec![]) {
            Ok(r) if r.status == 200 => "it was cancelled".into(),
            Ok(r) => format!("cancelling it failed: {} {}", r.status, r.problem()),
            Err(e) => format!("cancelling it failed: {e:#}"),
        }
    }

    pub fn new(
        server: &str,
        token: Option<String>,
        ca_file: Option<&std::path::Path>,
    ) -> anyhow::Result<Client> {
        let base = server.trim_end_matches('/').to_string();
        let tls = if base.starts_with("https://") {
            let ca_file = ca_file.ok_or_else(|| anyhow!("an https server needs --ca ROOT.pem"))?;
            // Only hallmark's root is trusted, never the system's store.
            Some(crate::outbound::Tls::new(Some(ca_file))?.connector())
        } else if base.starts_with("http://") {
            None
        } else {
            bail!("--server must be an http:// or https:// URL");
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Client {
            base,
            token: std::sync::Mutex::new(token),
            refresh: None,
            tls,
            rt,
            timeout: None,
            conn: tokio::sync::Mutex::new(None),
        })
    }

    /// A client whose credential is read from `source` (and, for a CI job's OIDC token, read
    /// again when it is a few minutes old).
    pub fn with_source(
        server: &str,
        source: TokenSource,
        ca_file: Option<&std::path::Path>,
    ) -> anyhow::Result<Client> {
        let token = source.read()?;
        let mut c = Client::new(server, Some(token), ca_file)?;
        if matches!(
            source,
            TokenSource::OidcEnv(_) | TokenSource::GithubActions { .. }
        ) {
            c.refresh = Some((source, std::sync::Mutex::new(std::time::Instant::now())));
        }
        Ok(c)
    }

    /// The credential to send: an OIDC token older than two minutes is asked for again.
    fn bearer(&self) -> anyhow::Result<Option<String>> {
        if let Some((source, at)) = &self.refresh {
            let mut at = at.lock().map_err(|_| anyhow!("token refresh lock"))?;
            if at.elapsed() > std::time::Duration::from_secs(120) {
                let fresh = source.read()?;
                *self.token.lock().map_err(|_| anyhow!("token lock"))? = Some(fresh);
                *at = std::time::Instant::now();
            }
        }
        Ok(self
            .token
            .lock()
            .map_err(|_| anyhow!("token lock"))?
            .clone())
    }

    /// Bounds each exchange to `d`.
    pub fn with_timeout(mut self, d: std::time::Duration) -> Client {
        self.timeout = Some(d);
        self
    }

    /// The PEM chain of an issued certificate (leaf first).
    pub fn send_pem_chain(&self, serial: &str) -> anyhow::Result<String> {
        let r = self.send_accept(
            "GET",
            &format!("/api/v1/certificates/{serial}"),
            "application/pem-certificate-chain",
        )?;
        if r.status != 200 {
            bail!("certificate {serial}: {} {}", r.status, r.problem());
        }
        Ok(String::from_utf8_lossy(&r.body).into_owned())
    }

    fn send_accept(&self, method: &str, path: &str, accept: &str) -> anyhow::Result<Reply> {
        self.send_with(method, path, None, Some(accept), vec![])
    }

    /// Sends one request and reads the whole answer.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> anyhow::Result<Reply> {
        self.send_with(method, path, content_type, None, body)
    }

    fn send_with(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        accept: Option<&str>,
        body: Vec<u8>,
    ) -> anyhow::Result<Reply> {
        let url: hyper::Uri = format!("{}{}", self.base, path).parse().context("URL")?;
        let host = url
            .host()
            .ok_or_else(|| anyhow!("the server URL has no host"))?
            .to_string();
        let port = url
            .port_u16()
            .unwrap_or(if self.tls.is_some() { 443 } else { 80 });
        let mut req = Request::builder()
            .method(method)
            .uri(url.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
            .header("host", format!("{host}:{port}"));
        if let Some(token) = self.bearer()? {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let req = req.body(Full::new(Bytes::from(body))).context("request")?;
        let tls = self.tls.clone();
        let limit = self.timeout;
        let conn = &self.conn;
        let exchange = async move {
            let mut slot = conn.lock().await;
            // Reuse the open connection when it is alive and was used a moment ago.
            let mut sender = match slot.take() {
                Some((mut s, at)) if at.elapsed() < IDLE_REUSE && !s.is_closed() => {
                    match s.ready().await {
                        Ok(()) => Some(s),
                        Err(_) => None,
                    }
                }
                _ => None,
            };
            if sender.is_none() {
                let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
                    .await
                    .with_context(|| format!("connecting to {host}:{port}"))?;
                let s = match tls {
                    Some(c) => {
                        let name = rustls::pki_types::ServerName::try_from(host.clone())
                            .context("server name")?;
                        let stream = c
                            .connect(name, tcp)
                            .await
                            .context("TLS handshake (is --ca the server's root?)")?;
                        let (s, c) = hyper::client::conn::http1::handshake(
                            hyper_util::rt::TokioIo::new(stream),
                        )
                        .await?;
                        tokio::spawn(c);
                        s
                    }
                    None => {
                        let (s, c) = hyper::client::conn::http1::handshake(
                            hyper_util::rt::TokioIo::new(tcp),
                        )
                        .await?;
                        tokio::spawn(c);
                        s
                    }
                };
                sender = Some(s);
            }
            let mut s = sender.ok_or_else(|| anyhow!("no connection"))?;
            let resp = s.send_request(req).await?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await?.to_bytes().to_vec();
            *slot = Some((s, std::time::Instant::now()));
            Ok(Reply { status, body })
        };
        self.rt.block_on(async move {
            match limit {
                Some(d) => tokio::time::timeout(d, exchange)
                    .await
                    .map_err(|_| anyhow!("no answer within {} s", d.as_secs()))?,
                None => exchange.await,
            }
        })
    }
}
