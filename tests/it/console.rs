//! The web console in a real browser (Debian's chromium, headless, driven by Playwright's
//! playwright-core from npm; tests/console/console.mjs holds the browser side): two approvers
//! approve a `hallmark sign cms` in the browser and the CLI's `.p7s` verifies; the requester
//! cannot approve its own request; a denial in the browser fails the CLI with its comment;
//! hostile metadata and artifact names render as text with no script run under a strict CSP;
//! posts without the CSRF token or from another origin change nothing; idle sessions, revoked
//! tokens and signed-out sessions are sent to sign in (and the security headers are there); one publisher's approver sees nothing of another's; a
//! certificate is revoked through the confirmation step (a CA's own certificate never is); the
//! approval that completes a request says it was signed or issued; a certificate's page has its
//! SHA-256 fingerprint (as openssl computes it) and a PEM download; filters with a closed set of
//! values are choices; the charts name their dates; labels and file names break only between
//! words and serials not at all; axe-core finds no serious or critical violation on any page at
//! 1280 px and phone width, and every page is screenshotted into target/console-screenshots
//! (docs/guides/console.md shows them).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::oidc::OidcIssuer;
use crate::common::*;

/// A signing CA with publishers acme and globex, key `fw-release` (acme, CMS, 2 of
/// security-lead, qa-lead, cto) and key `globex-fw` (globex, 1 approval by globex-lead), and
/// their people's tokens.
struct Console {
    env: SignEnv,
    spki: String,
    ci: String,
    security_lead: String,
    qa_lead: String,
    officer: String,
    globex_ci: String,
    globex_lead: String,
}

impl Console {
    fn start() -> Console {
        Console::start_with(None)
    }

    /// The console's CA and server; with IDP, people also sign in through that identity
    /// provider (`[console.oidc]`), alice@example.com with security-lead's token.
    fn start_with(idp: Option<&OidcIssuer>) -> Console {
        let ca = TestCa::new(Keys::Soft);
        ca.add_acme();
        ca.add_globex();
        // A profile whose certificates need 2 of 3 approvals (publisher `rel` uses it).
        std::fs::write(
            ca.dir.path().join("ca/ca-profiles/release-signing.toml"),
            RELEASE_PROFILE,
        )
        .expect("profile");
        ca.create_key(
            "acme",
            "fw-release",
            "p256",
            &["--profile", "firmware-signing"],
        );
        ca.hm(&[
            "key",
            "policy",
            "fw-release",
            "--formats",
            "cms",
            "--approvals",
            "2",
            "--approvers",
            "security-lead,qa-lead,cto",
        ]);
        ca.create_key(
            "globex",
            "globex-fw",
            "p256",
            &["--profile", "code-signing"],
        );
        ca.hm(&[
            "key",
            "policy",
            "globex-fw",
            "--approvals",
            "1",
            "--approvers",
            "globex-lead",
        ]);
        let token = |publisher: &str, name: &str, scopes: &str| {
            ca.token(&["--publisher", publisher, "--name", name, "--scopes", scopes])
        };
        let ci = token("acme", "ci", "sign");
        let security_lead = token("acme", "security-lead", "approve");
        let qa_lead = token("acme", "qa-lead", "approve");
        let globex_ci = token("globex", "globex-ci", "sign");
        let globex_lead = token("globex", "globex-lead", "approve");
        let officer = ca.token(&[
            "--officer",
            "--name",
            "officer",
            "--scopes",
            "issue,approve,revoke,sign",
        ]);
        // The API listener's address is known before it starts: the provider redirects to it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let api = format!("127.0.0.1:{port}");
        if let Some(idp) = idp {
            let mut text = std::fs::read_to_string(ca.config()).expect("config");
            text.push_str(&format!(
                "\n[console.oidc]\nname = \"Example SSO\"\nissuer = \"{}\"\nclient_id = \"hallmark-console\"\nclient_secret_env = \"CONSOLE_CLIENT_SECRET\"\nredirect_url = \"https://{api}/ui/login/callback\"\nca_file = \"{}\"\n\n[[console.person]]\nid = \"alice@example.com\"\ntoken = \"{}\"\n",
                idp.url,
                idp.ca_file.display(),
                token_id(&security_lead)
            ));
            std::fs::write(ca.config(), text).expect("config");
        }
        let root = ca.ca_pem("root").display().to_string();
        let server = Server::start_listening(
            &ca,
            "127.0.0.1:0",
            Some(&api),
            &[("CONSOLE_CLIENT_SECRET", "console client secret")],
        );
        let env = SignEnv { server, ca, root };
        // The browser trusts the servers it talks to by their certificates' SPKI hashes only.
        let mut spki = vec![spki_of(&api)];
        if let Some(idp) = idp {
            spki.push(spki_of(idp.url.trim_start_matches("https://")));
        }
        Console {
            env,
            spki: spki.join(","),
            ci,
            security_lead,
            qa_lead,
            officer,
            globex_ci,
            globex_lead,
        }
    }

    /// `node console.mjs SCENARIO` with UI_URL, UI_SPKI and VARS; its output (stdout+stderr) and
    /// whether it passed.
    fn scenario_cmd(&self, name: &str, vars: &[(&str, String)]) -> Command {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
        assert!(
            dir.join("node_modules/playwright-core").is_dir() && dir.join("node_modules/axe-core").is_dir(),
            "playwright-core and axe-core are not installed in tests/console: run `make deps` (or `make test`)"
        );
        let chromium = tool("chromium");
        let mut c = Command::new(tool("node"));
        c.current_dir(&dir)
            .arg("console.mjs")
            .arg(name)
            .env("UI_URL", self.env.api())
            .env("UI_SPKI", &self.spki)
            .env("UI_CHROMIUM", chromium);
        for (k, v) in vars {
            c.env(k, v);
        }
        c
    }

    fn scenario(&self, name: &str, vars: &[(&str, String)]) -> String {
        let out = run(&mut self.scenario_cmd(name, vars));
        let text = text_of(&out);
        assert!(
            out.status.success(),
            "browser scenario '{name}' failed:\n{text}"
        );
        text
    }

    fn file(&self, name: &str, content: &[u8]) -> String {
        let p = self.env.path(name);
        std::fs::write(&p, content).expect("write");
        p
    }

    /// `hallmark sign cms FILE --key KEY --meta ...` in the background, as TOKEN.
    fn sign_in_background(
        &self,
        token: &str,
        file: &str,
        key: &str,
        out: &str,
        meta: &[&str],
    ) -> std::process::Child {
        let mut opts = vec!["--out", out, "--poll", "1", "--timeout", "300"];
        for m in meta {
            opts.extend(["--meta", m]);
        }
        self.env
            .sign_cmd(token, "cms", file, key, &opts, &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sign")
    }

    /// Approves signature request ID with the CLI as security-lead and qa-lead (fw-release's
    /// two approvals), then waits for the `hallmark sign` CHILD that asked for it to succeed.
    fn approve_and_sign(&self, id: i64, child: std::process::Child) {
        for t in [&self.security_lead, &self.qa_lead] {
            let out = self.env.approve(id, t);
            assert!(
                out.status.success(),
                "approve: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let out = child.wait_with_output().expect("sign");
        assert!(
            out.status.success(),
            "sign: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The pending signature requests, oldest first.
    fn pending(&self) -> Vec<i64> {
        self.env
            .store()
            .signature_request_ids(hallmark::store::SignatureRequestStatus::Pending)
            .expect("read")
    }

    /// Waits for a pending request that is not in BEFORE.
    fn new_pending(&self, before: &[i64]) -> i64 {
        let start = std::time::Instant::now();
        loop {
            if let Some(id) = self.pending().into_iter().find(|i| !before.contains(i)) {
                return id;
            }
            assert!(
                start.elapsed().as_secs() < 60,
                "no new pending signature request"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    fn request(&self, id: i64) -> hallmark::store::SignatureRequestRecord {
        self.env
            .store()
            .get_signature_request(id)
            .expect("read")
            .expect("request")
    }
}

/// The base64 SHA-256 of the SubjectPublicKeyInfo of the TLS certificate the server at ADDR
/// presents (what chromium's --ignore-certificate-errors-spki-list takes).
fn spki_of(addr: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {addr} </dev/null 2>/dev/null | openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | openssl base64 -A"
        ))
        .output()
        .expect("openssl");
    let spki = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(spki.len(), 44, "the SPKI hash of {addr}: '{spki}'");
    spki
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data))
}

/// The JSON lines a scenario printed with `what` = WHAT.
fn said(output: &str, what: &str) -> Vec<serde_json::Value> {
    output
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["what"] == what)
        .collect()
}

fn json(v: &[&str]) -> String {
    serde_json::to_string(v).expect("json")
}

/// The id part of a token `hmk_ID_SECRET`.
fn token_id(token: &str) -> String {
    token.split('_').nth(1).expect("token id").to_string()
}

#[test]
fn two_approvers_in_the_browser_let_the_cli_sign_and_the_requester_cannot_approve() {
    let c = Console::start();
    let data = b"firmware 3.1 for the console test\n".repeat(3000);
    let fw = c.file("fw-3.1.bin", &data);
    let p7s = c.env.path("fw-3.1.p7s");
    let child = c.sign_in_background(
        &c.ci,
        &fw,
        "fw-release",
        &p7s,
        &["build=1234", "branch=release/3.1"],
    );
    let id = c.new_pending(&[]);
    let digest = sha256_hex(&data);
    let expect = json(&[
        &digest,
        "fw-3.1.bin",
        "build: 1234",
        "branch: release/3.1",
        "fw-release",
        "Requested by\nci",
        "0 of 2 needed",
        "security-lead, qa-lead, cto",
        "left",
    ]);
    // The requester sees its request and cannot approve it.
    c.scenario(
        "own",
        &[
            ("UI_TOKEN", c.ci.clone()),
            ("UI_KIND", "signature".into()),
            ("UI_ID", id.to_string()),
        ],
    );
    let seen = c.scenario(
        "decide",
        &[
            ("UI_TOKEN", c.security_lead.clone()),
            ("UI_KIND", "signature".into()),
            ("UI_ID", id.to_string()),
            ("UI_EXPECT", expect),
            ("UI_DECISION", "approve".into()),
            ("UI_COMMENT", "checked the release notes".into()),
        ],
    );
    assert!(seen.contains("\"decided\""), "{seen}");
    assert!(
        !Path::new(&p7s).exists(),
        "signed after one approval of two"
    );
    // The first approval of two says it was recorded; the second, the last one needed, says
    // the signature was made and names its record.
    assert!(seen.contains("Your approval was recorded."), "{seen}");
    let last = c.scenario(
        "decide",
        &[
            ("UI_TOKEN", c.qa_lead.clone()),
            ("UI_KIND", "signature".into()),
            ("UI_ID", id.to_string()),
            (
                "UI_EXPECT",
                json(&[
                    "1 of 2 needed",
                    "security-lead approved",
                    "checked the release notes",
                ]),
            ),
            ("UI_DECISION", "approve".into()),
            ("UI_COMMENT", String::new()),
            (
                "UI_FLASH",
                "Your approval was the last one needed: the signature was made (record".into(),
            ),
        ],
    );
    let out = child.wait_with_output().expect("sign");
    assert!(
        out.status.success(),
        "sign: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, text) = c.env.cms_verify(&p7s, &fw);
    assert!(ok, "openssl cms -verify: {text}");
    let rec = c.request(id);
    assert_eq!(rec.status.as_str(), "signed");
    let sig = c
        .env
        .store()
        .get_signature(rec.signature_id.expect("signature id"))
        .expect("read")
        .expect("record");
    assert_eq!(sig.approvers.as_deref(), Some("security-lead,qa-lead"));
    let flash = said(&last, "decided")[0]["flash"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        flash.ends_with(&format!("the signature was made (record {}).", sig.id)),
        "{flash}"
    );
}

#[test]
fn a_denial_in_the_browser_fails_the_cli_with_its_comment() {
    let c = Console::start();
    let fw = c.file("fw-9.bin", b"not a release\n");
    let p7s = c.env.path("fw-9.p7s");
    let child = c.sign_in_background(&c.ci, &fw, "fw-release", &p7s, &[]);
    let id = c.new_pending(&[]);
    c.scenario(
        "decide",
        &[
            ("UI_TOKEN", c.security_lead.clone()),
            ("UI_KIND", "signature".into()),
            ("UI_ID", id.to_string()),
            ("UI_EXPECT", json(&["fw-9.bin"])),
            ("UI_DECISION", "deny".into()),
            ("UI_COMMENT", "not built from a release branch".into()),
        ],
    );
    let out = child.wait_with_output().expect("sign");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "signed after a denial: {said}");
    assert!(
        said.contains("denied")
            && said.contains("security-lead")
            && said.contains("not built from a release branch"),
        "{said}"
    );
    assert!(!Path::new(&p7s).exists());
    assert_eq!(c.env.recorded(), 0);
}

#[test]
fn hostile_metadata_and_artifact_names_render_as_text() {
    let c = Console::start();
    let script = "<script>window.__pwned=1</script>";
    let img = "\"><img src=x onerror=window.__pwned=1>";
    // An artifact whose very file name is markup.
    let fw = c.file(&format!("{img}.bin"), b"hostile names\n");
    let p7s = c.env.path("hostile.p7s");
    let child = c.sign_in_background(
        &c.ci,
        &fw,
        "fw-release",
        &p7s,
        &[&format!("note={script}"), &format!("{script}={img}")],
    );
    let id = c.new_pending(&[]);
    c.scenario(
        "xss",
        &[
            ("UI_TOKEN", c.officer.clone()),
            ("UI_PAGES", json(&["/ui/requests"])),
            ("UI_EXPECT", json(&[script, &format!("{img}.bin")])),
        ],
    );
    c.approve_and_sign(id, child);
    // Signed: the record and the decided list show the same values as text.
    let seen = c.scenario(
        "xss",
        &[
            ("UI_TOKEN", c.officer.clone()),
            (
                "UI_PAGES",
                json(&[
                    "/ui/requests",
                    "/ui/signatures",
                    "/ui/signatures?q=%3Cscript%3E",
                ]),
            ),
            ("UI_EXPECT", json(&[&format!("{img}.bin")])),
        ],
    );
    assert_eq!(seen.matches("xss-safe").count(), 3, "{seen}");
}

#[test]
fn csrf_origin_idle_revoked_tokens_and_publishers_are_kept_apart() {
    let c = Console::start();
    let fw = c.file("fw-4.bin", b"acme firmware 4\n");
    let acme_child = c.sign_in_background(&c.ci, &fw, "fw-release", &c.env.path("fw-4.p7s"), &[]);
    let acme = c.new_pending(&[]);
    let gx = c.file("globex-secret-project.exe", b"globex tool\n");
    let globex_child =
        c.sign_in_background(&c.globex_ci, &gx, "globex-fw", &c.env.path("gx.p7s"), &[]);
    let globex = c.new_pending(&[acme]);

    // CSRF: no token, a wrong token, another origin, a real cross-site form: all refused.
    let seen = c.scenario(
        "csrf",
        &[
            ("UI_TOKEN", c.security_lead.clone()),
            ("UI_KIND", "signature".into()),
            ("UI_ID", acme.to_string()),
        ],
    );
    for step in ["no-token", "wrong-token", "cross-site-form", "session"] {
        assert!(seen.contains(step), "{step} missing:\n{seen}");
    }
    // With the session's own cookie and CSRF token, a post that says it comes from another
    // origin is refused too (and a same-origin one passes both checks: its bad decision is
    // what is refused).
    let session: serde_json::Value = seen
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["what"] == "session")
        .expect("session line");
    let cookie = format!(
        "Cookie: __Host-hallmark_session={}",
        session["cookie"].as_str().expect("cookie")
    );
    let form = format!(
        "csrf={}&decision=approve",
        session["csrf"].as_str().expect("csrf")
    );
    let url = format!("{}/ui/requests/signature/{acme}", c.env.api());
    let post = |headers: &[&str], body: &str| {
        let mut args = vec!["--cacert", &c.env.root, "-H", &cookie, "--data", body];
        for h in headers {
            args.extend(["-H", h]);
        }
        let (code, body, _) = curl(&url, &args);
        (code, String::from_utf8_lossy(&body).into_owned())
    };
    let (code, body) = post(&["Origin: https://evil.example"], &form);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("another site"), "{body}");
    let (code, body) = post(&["Sec-Fetch-Site: cross-site"], &form);
    assert_eq!(code, 403, "{body}");
    let (code, body) = post(&["Origin: null"], &form);
    assert_eq!(code, 403, "{body}");
    let origin = format!("Origin: {}", c.env.api());
    let bad = form.replace("approve", "maybe");
    let (code, body) = post(&[&origin, "Sec-Fetch-Site: same-origin"], &bad);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("neither approve nor deny"), "{body}");
    // ... and nothing changed.
    let rec = c.request(acme);
    assert_eq!(rec.status.as_str(), "pending");
    assert!(c
        .env
        .store()
        .signature_approvals(acme)
        .expect("read")
        .is_empty());

    // acme's approver sees acme's request and nothing of globex's, not even by its address.
    let globex_key_cert = c
        .env
        .store()
        .get_key("globex-fw")
        .expect("read")
        .expect("key")
        .cert_serial
        .expect("globex key certificate");
    c.scenario(
        "visible",
        &[
            ("UI_TOKEN", c.security_lead.clone()),
            ("UI_SEE", json(&[&format!("sig-{acme}")])),
            ("UI_HIDDEN", json(&[&format!("sig-{globex}")])),
            (
                "UI_HIDDEN_TEXT",
                json(&["globex-secret-project", "globex-fw"]),
            ),
            (
                "UI_NOT_FOUND",
                json(&[
                    &format!("/ui/certificates/{globex_key_cert}"),
                    &format!("/ui/certificates/{globex_key_cert}/pem"),
                ]),
            ),
        ],
    );
    // globex's approver sees globex's only; the officer sees both.
    c.scenario(
        "visible",
        &[
            ("UI_TOKEN", c.globex_lead.clone()),
            ("UI_SEE", json(&[&format!("sig-{globex}")])),
            ("UI_HIDDEN", json(&[&format!("sig-{acme}")])),
            ("UI_HIDDEN_TEXT", json(&["fw-4.bin", "fw-release"])),
        ],
    );
    c.scenario(
        "visible",
        &[
            ("UI_TOKEN", c.officer.clone()),
            (
                "UI_SEE",
                json(&[&format!("sig-{acme}"), &format!("sig-{globex}")]),
            ),
        ],
    );

    // A session idle past [console] idle_minutes is sent to sign in.
    let ended = |token: &str, between: &dyn Fn(), says: &str| {
        let mut child = c
            .scenario_cmd(
                "ended",
                &[
                    ("UI_TOKEN", token.to_string()),
                    ("UI_ENDED", says.to_string()),
                ],
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut seen = String::new();
        for line in lines.by_ref() {
            let line = line.expect("line");
            seen.push_str(&line);
            if line.contains("\"ready\"") {
                break;
            }
        }
        assert!(
            seen.contains("ready"),
            "the browser did not sign in: {seen}"
        );
        between();
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "go").expect("write");
        drop(stdin);
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        let out = child.wait_with_output().expect("node");
        assert!(
            out.status.success(),
            "{seen}\n{}\n{}",
            rest.join("\n"),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let store = c.env.store();
    ended(
        &c.qa_lead,
        &|| {
            let aged = store
                .age_sessions(&token_id(&c.qa_lead), 31 * 60)
                .expect("age");
            assert_eq!(aged, 1);
        },
        "after a time without use",
    );
    // A revoked token ends its sessions at once.
    let lead = c.security_lead.clone();
    ended(
        &lead,
        &|| {
            c.env.ca.hm(&["token", "revoke", &token_id(&lead)]);
        },
        "was revoked or has expired",
    );
    // Sign-out ends the session (the cookie it leaves behind opens nothing); the headers.
    c.scenario("logout", &[("UI_TOKEN", c.officer.clone())]);
    let audit = c.env.ca.hm(&["audit", "--limit", "200"]);
    assert!(
        audit.contains("session.created") && audit.contains("session.ended"),
        "{audit}"
    );

    for mut child in [acme_child, globex_child] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[test]
fn every_page_is_accessible_at_desktop_and_phone_width_and_revocation_asks_first() {
    let c = Console::start();
    // Something on every page: a pending and a signed request, a station, certificates.
    let fw = c.file("fw-5.bin", b"firmware 5\n");
    let signed = c.sign_in_background(
        &c.ci,
        &fw,
        "fw-release",
        &c.env.path("fw-5.p7s"),
        &["build=5"],
    );
    let first = c.new_pending(&[]);
    c.approve_and_sign(first, signed);
    let fw6 = c.file("fw-6.bin", b"firmware 6\n");
    let mut pending = c.sign_in_background(
        &c.ci,
        &fw6,
        "fw-release",
        &c.env.path("fw-6.p7s"),
        &["build=6"],
    );
    c.new_pending(&[first]);
    c.env.ca.hm(&[
        "station",
        "add",
        "line-1",
        "--profile",
        "iot-device",
        "--serial-pattern",
        "^SN[0-9]{6}$",
        "--quota",
        "1000",
        "--out-dir",
        &c.env.path("stations"),
    ]);

    let shots: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    let seen = c.scenario(
        "tour",
        &[
            ("UI_TOKEN", c.officer.clone()),
            (
                "UI_PAGES",
                json(&[
                    "/ui/requests",
                    "/ui/signatures",
                    "/ui/certificates",
                    "/ui/keys",
                    "/ui/stations",
                    "/ui/audit",
                ]),
            ),
            ("UI_SCREENSHOTS", shots.display().to_string()),
        ],
    );
    assert_eq!(seen.matches("\"what\":\"page\"").count(), 12, "{seen}");
    // The wrapping check had labels, file names and serials to look at.
    let pages = said(&seen, "page");
    let count = |k: &str| {
        pages
            .iter()
            .map(|p| p[k].as_i64().unwrap_or(0))
            .sum::<i64>()
    };
    assert!(count("words") >= 12 && count("serials") >= 2, "{seen}");
    // The charts name their days and hours.
    let charts = c.scenario("charts", &[("UI_TOKEN", c.officer.clone())]);
    assert_eq!(said(&charts, "chart").len(), 2, "{charts}");
    // Status, CA, profile, publisher and key are chosen, not typed.
    let filters = c.scenario(
        "filters",
        &[
            ("UI_TOKEN", c.officer.clone()),
            (
                "UI_CHOICES",
                serde_json::json!({
                    "/ui/certificates": {
                        "profile": ["firmware-signing", "code-signing", "ca-certificate"],
                        "status": ["all", "valid", "revoked", "expired"],
                        "ca": ["code-signing-ca"],
                        "publisher": ["acme", "globex"],
                    },
                    "/ui/signatures": { "key": ["fw-release", "globex-fw"] },
                })
                .to_string(),
            ),
        ],
    );
    assert_eq!(said(&filters, "choice").len(), 5, "{filters}");
    assert_eq!(said(&filters, "filtered").len(), 2, "{filters}");
    for name in [
        "sign-in",
        "requests",
        "signatures",
        "certificates",
        "keys",
        "stations",
        "audit",
        "requests-phone",
    ] {
        let f = shots.join(format!("{name}.png"));
        assert!(
            std::fs::metadata(&f)
                .map(|m| m.len() > 1000)
                .unwrap_or(false),
            "no screenshot {}",
            f.display()
        );
    }

    // Revocation through the form, after its confirmation step.
    let serial = c
        .env
        .store()
        .get_key("globex-fw")
        .expect("read")
        .expect("key")
        .cert_serial
        .expect("certificate");
    c.scenario(
        "revoke",
        &[
            ("UI_TOKEN", c.officer.clone()),
            ("UI_SERIAL", serial.clone()),
            ("UI_REASON", "keyCompromise".into()),
        ],
    );
    let r = c
        .env
        .store()
        .get_revocation(&serial)
        .expect("read")
        .expect("revoked");
    assert_eq!(r.reason, 1);
    assert!(r.actor.contains("officer"), "{}", r.actor);
    let _ = pending.kill();
    let _ = pending.wait();
}

#[test]
fn people_sign_in_through_the_identity_provider_with_pkce() {
    let dir = tempfile::tempdir().expect("dir");
    let idp = OidcIssuer::start(dir.path(), "sso");
    idp.register_client("hallmark-console", "console client secret");
    let c = Console::start_with(Some(&idp));
    let fw = c.file("fw-7.bin", b"firmware 7\n");
    let mut child = c.sign_in_background(&c.ci, &fw, "fw-release", &c.env.path("fw-7.p7s"), &[]);
    let id = c.new_pending(&[]);
    // alice, a [[console.person]], signs in at the provider and decides with security-lead's
    // rights.
    idp.sign_in_as(
        &serde_json::json!({"sub": "u-1001", "email": "alice@example.com", "email_verified": true}),
    );
    let seen = c.scenario(
        "idp",
        &[
            ("UI_PROVIDER", "Example SSO".into()),
            ("UI_EXPECT_NAME", "security-lead".into()),
            ("UI_KIND", "signature".into()),
            ("UI_ID", id.to_string()),
        ],
    );
    assert!(seen.contains("\"approved\""), "{seen}");
    let approvals = c.env.store().signature_approvals(id).expect("read");
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].approver, "security-lead");
    let audit = c.env.ca.hm(&["audit", "--limit", "100"]);
    assert!(audit.contains("person:alice@example.com"), "{audit}");
    // Not only the sign-in: the approval she made names her, beside the token she acted with.
    let approved: serde_json::Value = serde_json::from_str(&c.env.ca.hm(&[
        "audit",
        "--kind",
        "signature.approved",
        "--object",
        &id.to_string(),
        "--output",
        "json",
    ]))
    .expect("json");
    let actor = approved["items"][0]["actor"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        actor.starts_with("person:alice@example.com@") && actor.contains("(security-lead)"),
        "{approved}"
    );

    // Someone the provider knows but the console does not, and an unverified email, are
    // refused; nothing is decided.
    for (who, says) in [
        (
            serde_json::json!({"sub": "u-2", "email": "mallory@example.com", "email_verified": true}),
            "not a [[console.person]]",
        ),
        (
            serde_json::json!({"sub": "u-3", "email": "alice@example.com", "email_verified": false}),
            "not verified",
        ),
    ] {
        idp.sign_in_as(&who);
        c.scenario(
            "idp-refused",
            &[
                ("UI_PROVIDER", "Example SSO".into()),
                ("UI_SAYS", says.into()),
            ],
        );
    }
    // A provider that releases the email only from UserInfo (OIDC Core §5.4): alice signs in
    // all the same; with the claim nowhere, the refusal names the missing claim.
    idp.release_in_userinfo(&["email", "email_verified"]);
    idp.sign_in_as(
        &serde_json::json!({"sub": "u-1001", "email": "alice@example.com", "email_verified": true}),
    );
    let fw8 = c.file("fw-8.bin", b"firmware 8\n");
    let mut child2 = c.sign_in_background(&c.ci, &fw8, "fw-release", &c.env.path("fw-8.p7s"), &[]);
    let id2 = c.new_pending(&[id]);
    let seen = c.scenario(
        "idp",
        &[
            ("UI_PROVIDER", "Example SSO".into()),
            ("UI_EXPECT_NAME", "security-lead".into()),
            ("UI_KIND", "signature".into()),
            ("UI_ID", id2.to_string()),
        ],
    );
    assert!(seen.contains("\"approved\""), "{seen}");
    let approvals = c.env.store().signature_approvals(id2).expect("read");
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].approver, "security-lead");
    for (who, says) in [
        (serde_json::json!({"sub": "u-4"}), "names the claim 'email'"),
        (
            serde_json::json!({"sub": "u-5", "email": "alice@example.com", "email_verified": false}),
            "not verified",
        ),
    ] {
        idp.sign_in_as(&who);
        c.scenario(
            "idp-refused",
            &[
                ("UI_PROVIDER", "Example SSO".into()),
                ("UI_SAYS", says.into()),
            ],
        );
    }
    idp.release_in_userinfo(&[]);
    // A callback this browser did not start (no flow cookie, a made-up state) is refused.
    let (code, body, _) = curl(
        &format!("{}/ui/login/callback?code=abc&state=forged", c.env.api()),
        &["--cacert", &c.env.root],
    );
    assert_eq!(code, 403, "{}", String::from_utf8_lossy(&body));
    let (code, body, _) = curl(
        &format!("{}/ui/login/callback?code=abc&state=forged", c.env.api()),
        &[
            "--cacert",
            &c.env.root,
            "-H",
            "Cookie: __Host-hallmark_login=forged",
        ],
    );
    assert_eq!(code, 401, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("unknown"));
    assert_eq!(
        c.env.store().signature_approvals(id).expect("read").len(),
        1
    );
    for ch in [&mut child, &mut child2] {
        let _ = ch.kill();
        let _ = ch.wait();
    }
}

#[test]
fn certificate_requests_are_decided_in_the_browser_too() {
    let c = Console::start();
    c.env.ca.hm(&[
        "publisher",
        "add",
        "rel",
        "--org",
        "Acme Releases",
        "--country",
        "US",
        "--state",
        "California",
        "--profiles",
        "release-signing",
    ]);
    let token = |name: &str, scopes: &str| {
        c.env
            .ca
            .token(&["--publisher", "rel", "--name", name, "--scopes", scopes])
    };
    let ci = token("rel-ci", "issue");
    let rm = token("release-manager", "approve");
    let qa = token("qa-lead", "approve");
    let csr = make_csr(
        c.env.ca.dir.path(),
        "rel",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=Acme Releases/O=Acme Releases",
        &[],
    );
    let body = serde_json::json!({
        "profile": "release-signing",
        "csr": std::fs::read_to_string(csr).expect("csr"),
    });
    let (code, v) = c.env.call(
        Some("POST"),
        "/api/v1/certificates",
        Some(&ci),
        Some(&body.to_string()),
    );
    assert_eq!(code, 202, "{v}");
    let id = v["id"].as_i64().expect("request id");
    c.scenario(
        "decide",
        &[
            ("UI_TOKEN", rm.clone()),
            ("UI_KIND", "certificate".into()),
            ("UI_ID", id.to_string()),
            (
                "UI_EXPECT",
                json(&[
                    "release-signing",
                    "CN=Acme Releases",
                    "ECDSA P-256",
                    "Requested by\nrel-ci",
                    "0 of 2 needed",
                    "release-manager, security-lead, qa-lead",
                ]),
            ),
            ("UI_DECISION", "approve".into()),
            ("UI_COMMENT", "release 3.1".into()),
        ],
    );
    let last = c.scenario(
        "decide",
        &[
            ("UI_TOKEN", qa.clone()),
            ("UI_KIND", "certificate".into()),
            ("UI_ID", id.to_string()),
            ("UI_EXPECT", json(&["1 of 2 needed", "release 3.1"])),
            ("UI_DECISION", "approve".into()),
            ("UI_COMMENT", String::new()),
            (
                "UI_FLASH",
                "Your approval was the last one needed: the certificate was issued (serial".into(),
            ),
        ],
    );
    let rec = c
        .env
        .store()
        .get_request(id)
        .expect("read")
        .expect("request");
    assert_eq!(rec.status.as_str(), "issued");
    let serial = rec.certificate_serial.expect("serial");
    // The certificate's subject is the publisher's verified identity, not the CSR's.
    let cert = c
        .env
        .store()
        .get_certificate(&serial)
        .expect("read")
        .expect("certificate");
    assert!(cert.subject.contains("Acme Releases"), "{}", cert.subject);
    let flash = said(&last, "decided")[0]["flash"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        flash.ends_with(&format!("the certificate was issued (serial {serial}).")),
        "{flash}"
    );

    // Its page, to the publisher's approver: the PEM it downloads is the stored certificate,
    // and the fingerprint it shows is openssl's.
    let pem = c.env.path("downloaded.pem");
    let seen = c.scenario(
        "certificate",
        &[
            ("UI_TOKEN", rm.clone()),
            ("UI_SERIAL", serial.clone()),
            ("UI_OUT", pem.clone()),
        ],
    );
    let shown = said(&seen, "certificate")[0].clone();
    assert_eq!(shown["file"], format!("{serial}.pem"), "{seen}");
    let text = std::fs::read_to_string(&pem).expect("the downloaded PEM");
    let der = cert.cert_der.expect("DER");
    assert_eq!(
        text,
        hallmark::pemfmt::encode("CERTIFICATE", der.as_slice()),
        "the download is not the stored certificate"
    );
    let out = run(Command::new("openssl").args([
        "x509",
        "-noout",
        "-fingerprint",
        "-sha256",
        "-in",
        &pem,
    ]));
    let openssl = text_of(&out);
    assert!(out.status.success(), "{openssl}");
    let fingerprint = openssl
        .trim()
        .split_once('=')
        .map(|(_, f)| f.to_string())
        .expect("openssl's fingerprint line");
    assert_eq!(shown["fingerprint"], fingerprint, "{seen}");
}

/// Bad input to the console gets a clear page with the API's status, never a 500, and changes
/// nothing; bad `[console]` settings stop every command naming the setting.
#[test]
fn bad_console_input_and_settings_are_refused_clearly() {
    let c = Console::start();
    let api = c.env.api().to_string();
    let root = c.env.root.clone();
    let call = |method: &str, path: &str, extra: &[&str]| {
        let mut args = vec!["--cacert", root.as_str(), "-X", method];
        args.extend_from_slice(extra);
        let (code, body, ctype) = curl(&format!("{api}{path}"), &args);
        (code, String::from_utf8_lossy(&body).into_owned(), ctype)
    };
    // A wrong token at sign-in.
    let (code, body, ctype) = call(
        "POST",
        "/ui/login",
        &["--data-urlencode", "token=hmk_000000000000_nope"],
    );
    assert_eq!(code, 401, "{body}");
    assert!(
        ctype.starts_with("text/html") && body.contains("not accepted"),
        "{body}"
    );
    // Signed in (as a browser would, with curl keeping the cookie).
    let jar = c.env.path("cookies");
    let token = format!("token={}", c.officer);
    let (code, body, _) = call(
        "POST",
        "/ui/login",
        &["-c", &jar, "--data-urlencode", &token],
    );
    assert_eq!(code, 303, "{body}");
    let get = |path: &str| call("GET", path, &["-b", &jar]);
    for (path, status, says) in [
        (
            "/ui/certificates?status=bogus",
            400,
            "not one of all, valid, revoked, expired",
        ),
        ("/ui/signatures?before=abc", 400, "is not a number"),
        ("/ui/signatures?from=yesterday", 400, "is not a date"),
        ("/ui/audit?to=2026-13-45", 400, "is not a date"),
        ("/ui/requests?signatures_before=-3", 400, "is not a number"),
        ("/ui/certificates/00ff", 404, "certificate 00ff"),
        ("/ui/nothing/here", 404, "nothing at /ui/nothing/here"),
    ] {
        let (code, body, ctype) = get(path);
        assert_eq!(code, status, "{path}: {body}");
        assert!(ctype.starts_with("text/html"), "{path}: {ctype}");
        assert!(body.contains(says), "{path}: {body}");
    }
    let (code, _, _) = call("PUT", "/ui/requests", &["-b", &jar]);
    assert_eq!(code, 405);
    // The audit page's kind of action is a choice; a family finds its actions, and the choice
    // stays selected.
    let (code, page, _) = get("/ui/audit?action=token");
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("<select id=\"action\""), "{page}");
    assert!(page.contains("<option value=\"token.\" selected"), "{page}");
    assert!(page.contains("token.created"), "{page}");
    assert!(!page.contains("<code>session.created</code>"), "{page}");
    // A form of the wrong kind, an unknown kind of request, an oversized form: refused, with
    // the session's own CSRF token and origin (so only the input is at fault).
    let keys = get("/ui/keys").1;
    let csrf = keys
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a CSRF token on the page")
        .to_string();
    let origin = format!("Origin: {api}");
    let form = format!("csrf={csrf}&decision=approve");
    let (code, body, _) = call(
        "POST",
        "/ui/requests/bogus/1",
        &["-b", &jar, "-H", &origin, "--data", &form],
    );
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("no kind of request 'bogus'"), "{body}");
    let (code, body, _) = call(
        "POST",
        "/ui/requests/signature/1",
        &[
            "-b",
            &jar,
            "-H",
            &origin,
            "-H",
            "Content-Type: application/json",
            "--data",
            "{}",
        ],
    );
    assert_eq!(code, 415, "{body}");
    let big = format!("csrf={csrf}&comment={}", "x".repeat(70_000));
    let (code, _, _) = call(
        "POST",
        "/ui/requests/signature/1",
        &["-b", &jar, "-H", &origin, "--data", &big],
    );
    assert_eq!(code, 413);
    let (code, body, _) = call(
        "POST",
        "/ui/requests/signature/999",
        &["-b", &jar, "-H", &origin, "--data", &form],
    );
    assert_eq!(code, 404, "{body}");
    assert_eq!(c.env.recorded(), 0);
    // A CA's own certificate: its page offers no revocation and says how it is done; a post
    // revoking it anyway (confirmed) is refused, and the CA stays unrevoked.
    let ca_serial = c
        .env
        .store()
        .list_cas()
        .expect("CAs")
        .into_iter()
        .find(|ca| ca.name == "code-signing-ca")
        .and_then(|ca| ca.serial)
        .expect("the code-signing CA's serial");
    let (code, page, _) = get(&format!("/ui/certificates/{ca_serial}"));
    assert_eq!(code, 200, "{page}");
    assert!(!page.contains("Revoke…"), "{page}");
    assert!(
        page.contains("A CA is not revoked from the console"),
        "{page}"
    );
    // Not even its confirmation step is offered.
    let ask = format!("csrf={csrf}&reason=cACompromise");
    let (code, body, _) = call(
        "POST",
        &format!("/ui/certificates/{ca_serial}/revoke"),
        &["-b", &jar, "-H", &origin, "--data", &ask],
    );
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("hallmark revoke") && !body.contains("Yes, revoke it"),
        "{body}"
    );
    let confirm = format!("csrf={csrf}&reason=cACompromise&confirm=yes");
    let (code, body, _) = call(
        "POST",
        &format!("/ui/certificates/{ca_serial}/revoke"),
        &["-b", &jar, "-H", &origin, "--data", &confirm],
    );
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("hallmark revoke"), "{body}");
    assert!(c
        .env
        .store()
        .get_revocation(&ca_serial.to_ascii_lowercase())
        .expect("read")
        .is_none());
    // A certificate's PEM: to a session only, and only for a certificate that is there.
    let (code, _, _) = call("GET", &format!("/ui/certificates/{ca_serial}/pem"), &[]);
    assert_eq!(code, 303);
    let head = c.env.path("pem-head");
    let (code, pem, ctype) = call(
        "GET",
        &format!("/ui/certificates/{ca_serial}/pem"),
        &["-b", &jar, "-D", &head],
    );
    assert_eq!(code, 200, "{pem}");
    assert_eq!(ctype, "application/x-pem-file");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let head = std::fs::read_to_string(&head).expect("head");
    assert!(
        head.to_ascii_lowercase().contains(&format!(
            "content-disposition: attachment; filename=\"{}.pem\"",
            ca_serial.to_ascii_lowercase()
        )),
        "{head}"
    );
    let (code, body, _) = get("/ui/certificates/00ff/pem");
    assert_eq!(code, 404, "{body}");
    // The console's answers are counted in /metrics like the API's.
    let (_, metrics, _) = call("GET", "/metrics", &[]);
    assert!(
        metrics.contains("hallmark_http_requests_total{route=\"/ui\",status=\"400\"}"),
        "{metrics}"
    );

    // Settings.
    let base = std::fs::read_to_string(c.env.ca.config()).expect("config");
    for (extra, says) in [
        ("[console]\nidle_minutes = 0\n", "console.idle_minutes = 0 must be 1..1440"),
        ("[console]\nabsolute_hours = 1000\n", "console.absolute_hours = 1000 must be 1..720"),
        (
            "[[console.person]]\nid = \"a@example.com\"\ntoken = \"x\"\n",
            "needs a [console.oidc] provider",
        ),
        (
            "[console.oidc]\nname = \"SSO\"\nissuer = \"http://sso\"\nclient_id = \"c\"\nredirect_url = \"https://h/ui/login/callback\"\n",
            "is not an https:// URL",
        ),
        (
            "[console.oidc]\nname = \"SSO\"\nissuer = \"https://sso\"\nclient_id = \"c\"\nredirect_url = \"https://h/elsewhere\"\n",
            "must be this server's https://HOST:PORT/ui/login/callback",
        ),
    ] {
        std::fs::write(c.env.ca.config(), format!("{base}\n{extra}")).expect("config");
        let out = run(&mut c.env.ca.cmd(&["doctor"]));
        assert!(!out.status.success(), "{extra}");
        assert!(text_of(&out).contains(says), "{extra}: {}", text_of(&out));
    }
    std::fs::write(c.env.ca.config(), base).expect("config");
}
