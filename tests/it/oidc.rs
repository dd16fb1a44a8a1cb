//! CI workload identity on a real server: OIDC tokens from a local issuer (HTTPS, discovery,
//! JWKS, GitHub's token request endpoint; `crate::common::oidc`) authenticate `hallmark sign --oidc`
//! and the API, rules on claims choose the publisher, every refusal says what failed, key
//! rotation, a flood of unknown key ids and an issuer outage behave, and an OIDC job waits for
//! an approver like any requester.

use crate::common::oidc::{github_job, gitlab_job, merged, OidcIssuer};
use crate::common::*;
use serde_json::{json, Value};

/// A CA with publishers acme and globex, key `release` (acme, CMS-capable), a `[[identity.oidc]]`
/// for a GitHub-like and a GitLab-like issuer with their rules, and the server.
struct Env {
    sign: SignEnv,
    github: OidcIssuer,
    gitlab: OidcIssuer,
    /// The issuers' CA files; dropped after the server.
    _dir: tempfile::TempDir,
}

fn config(github: &OidcIssuer, gitlab: &OidcIssuer, extra_rule: &str) -> String {
    format!(
        r#"
[[identity.oidc]]
name = "github"
issuer = "{gh}"
audiences = ["hallmark"]
ca_file = "{gh_ca}"
jwks_min_refresh_secs = 2

[[identity.oidc.rule]]
issuer = "github"
publisher = "acme"
scopes = ["sign"]
claims = {{ repository = "acme/app", ref = "refs/tags/v*", environment = "release", job_workflow_ref = "acme/app/.github/workflows/release.yml@refs/tags/*" }}
name = "github:acme/app release"

[[identity.oidc.rule]]
issuer = "github"
publisher = "globex"
scopes = ["sign"]
claims = {{ repository = "globex/tool" }}
name = "github:globex/tool"
{extra_rule}
[[identity.oidc]]
name = "gitlab"
issuer = "{gl}"
audiences = ["hallmark"]
ca_file = "{gl_ca}"

[[identity.oidc.rule]]
issuer = "gitlab"
publisher = "acme"
scopes = ["sign", "issue"]
claims = {{ project_path = "acme/app", ref = "main", ref_protected = true }}
name = "gitlab:acme/app main"
"#,
        gh = github.url,
        gh_ca = github.ca_file.display(),
        gl = gitlab.url,
        gl_ca = gitlab.ca_file.display(),
    )
}

impl Env {
    fn start(keys: Keys, policy: &[&str], extra_rule: &str) -> Env {
        let dir = tempfile::tempdir().expect("dir");
        let github = OidcIssuer::start(dir.path(), "github");
        let gitlab = OidcIssuer::start(dir.path(), "gitlab");
        let cfg = config(&github, &gitlab, extra_rule);
        let (sign, ()) = SignEnv::start(keys, |ca| {
            ca.add_globex();
            ca.create_key("acme", "release", "p256", &[]);
            ca.create_key("globex", "tool", "p256", &[]);
            if !policy.is_empty() {
                let mut args = vec!["key", "policy", "release"];
                args.extend_from_slice(policy);
                ca.hm(&args);
            }
            let path = ca.config();
            let mut text = std::fs::read_to_string(&path).expect("config");
            text.push_str(&cfg);
            std::fs::write(&path, text).expect("write config");
        });
        Env {
            sign,
            github,
            gitlab,
            _dir: dir,
        }
    }

    fn sign_body(key: &str) -> String {
        json!({"key": key, "digest": "ab".repeat(32), "digest_algorithm": "sha256",
               "format": "raw", "metadata": {"artifact": "app.tar.gz"}})
        .to_string()
    }

    /// POST /api/v1/signatures with `Bearer JWT`.
    fn sign_with(&self, jwt: &str, key: &str) -> (u16, Value) {
        self.sign.call(
            Some("POST"),
            "/api/v1/signatures",
            Some(jwt),
            Some(&Env::sign_body(key)),
        )
    }

    fn tag_build(&self) -> Value {
        merged(
            &self.github.times("hallmark"),
            &github_job("acme/app", "refs/tags/v1.4.0", "release"),
        )
    }
}

fn detail(v: &Value) -> String {
    v["detail"].as_str().unwrap_or("").to_string()
}

/// A tag build of acme/app signs a file with `hallmark sign cms --oidc` (its token asked of
/// GitHub's token endpoint, no hallmark secret anywhere); the signature verifies, and the
/// record, `signature list` and the API name the run. A GitLab pipeline signs with
/// `--oidc-token-env`.
#[test]
fn a_tag_build_signs_with_its_oidc_token_and_the_record_names_the_run() {
    let env = Env::start(Keys::SoftHsm, &[], "");
    let file = env.sign.path("app.tar.gz");
    std::fs::write(&file, b"release 1.4.0\n".repeat(1000)).expect("artifact");
    let p7s = env.sign.path("app.p7s");
    let job = github_job("acme/app", "refs/tags/v1.4.0", "release");
    let mut cmd = env.sign.ca.cmd(&[
        "sign",
        "cms",
        &file,
        "--key",
        "release",
        "--oidc",
        "--out",
        &p7s,
        "--server",
        env.sign.api(),
        "--ca",
        &env.sign.root,
    ]);
    cmd.envs(env.github.github_job_env(&job))
        .env("SSL_CERT_FILE", &env.github.ca_file)
        .env_remove("HALLMARK_TOKEN");
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "sign --oidc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, text) = env.sign.cms_verify(&p7s, &file);
    assert!(ok, "openssl cms -verify: {text}");

    let list = env
        .sign
        .store()
        .list_signatures(None, None, None, 10)
        .expect("list");
    assert_eq!(list.len(), 1);
    let rec = &list[0];
    assert_eq!(rec.requester, "oidc:github:acme/app release");
    let id: Value = serde_json::from_str(rec.identity.as_deref().expect("identity")).expect("json");
    assert_eq!(id["kind"], "oidc");
    assert_eq!(id["issuer"], "github");
    assert_eq!(id["subject"], "repo:acme/app:environment:release");
    assert_eq!(id["rule"], "github:acme/app release");
    for (k, v) in [
        ("repository", "acme/app"),
        ("ref", "refs/tags/v1.4.0"),
        ("sha", "9f2c6e3a1d7b4c5e8f0a9b1c2d3e4f5a6b7c8d9e"),
        ("run_id", "8123456789"),
        ("actor", "octocat"),
        ("workflow", "release"),
    ] {
        assert_eq!(id["claims"][k], v, "{k} in {id}");
    }

    let listed = env.sign.ca.hm(&["signature", "list"]);
    for want in [
        "by oidc:github:acme/app release",
        "repository=acme/app",
        "ref=refs/tags/v1.4.0",
        "sha=9f2c6e3a1d7b4c5e8f0a9b1c2d3e4f5a6b7c8d9e",
        "run_id=8123456789",
    ] {
        assert!(listed.contains(want), "{want} missing from:\n{listed}");
    }
    let officer = env.sign.ca.token(&["--officer", "--scopes", "sign"]);
    let (code, v) = env
        .sign
        .call(None, "/api/v1/signatures", Some(&officer), None);
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        v["items"][0]["identity"]["claims"]["repository"], "acme/app",
        "{v}"
    );
    // The audit trail names the job, never its token.
    let audit = env.sign.ca.hm(&["audit", "--limit", "5"]);
    assert!(
        audit.contains("oidc:github/repo:acme/app:environment:release"),
        "{audit}"
    );

    // A GitLab pipeline on protected main: the token in a variable (`id_tokens:`).
    let gl = env.gitlab.mint(&merged(
        &env.gitlab.times("hallmark"),
        &gitlab_job("acme/app", "main"),
    ));
    let out = run(env
        .sign
        .ca
        .cmd(&[
            "sign",
            "raw",
            &file,
            "--key",
            "release",
            "--oidc-token-env",
            "HALLMARK_ID_TOKEN",
            "--out",
            &env.sign.path("app.sig"),
            "--server",
            env.sign.api(),
            "--ca",
            &env.sign.root,
        ])
        .env("HALLMARK_ID_TOKEN", &gl)
        .env_remove("HALLMARK_TOKEN"));
    assert!(
        out.status.success(),
        "sign --oidc-token-env: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = env.sign.ca.hm(&["signature", "list"]);
    assert!(
        listed.contains("by oidc:gitlab:acme/app main")
            && listed.contains("project_path=acme/app")
            && listed.contains("pipeline_id=1001"),
        "{listed}"
    );

    // The same pipeline asks for a certificate: the request records the job.
    let csr = make_csr(
        env.sign.ca.dir.path(),
        "job",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/C=US/ST=California/L=San Jose/O=Acme Corp/CN=Acme Corp",
        &[],
    );
    let cert = env.sign.path("job.pem");
    let out = run(env
        .sign
        .ca
        .cmd(&[
            "request",
            "--profile",
            "code-signing",
            "--csr",
            &csr.display().to_string(),
            "--out",
            &cert,
            "--oidc-token-env",
            "HALLMARK_ID_TOKEN",
            "--server",
            env.sign.api(),
            "--ca",
            &env.sign.root,
        ])
        .env("HALLMARK_ID_TOKEN", &gl));
    assert!(
        out.status.success(),
        "request --oidc-token-env: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = std::fs::read_to_string(&cert).expect("cert");
    let serial = openssl(
        env.sign.ca.dir.path(),
        &["x509", "-noout", "-serial", "-in", &cert],
    )
    .trim()
    .trim_start_matches("serial=")
    .to_ascii_lowercase();
    assert!(pem.contains("BEGIN CERTIFICATE"));
    let store = env.sign.store();
    let rec = store
        .get_certificate(&serial)
        .expect("read")
        .unwrap_or_else(|| panic!("certificate {serial}"));
    let request = store
        .get_request(rec.request_id.expect("request id"))
        .expect("read")
        .expect("request");
    let id: Value = serde_json::from_str(request.identity.as_deref().expect("identity"))
        .expect("identity json");
    assert_eq!(id["rule"], "gitlab:acme/app main");
    assert_eq!(id["claims"]["project_path"], "acme/app");
    assert_eq!(id["claims"]["pipeline_id"], "1001");

    // --oidc outside a CI job says what to do.
    let out = run(env
        .sign
        .ca
        .cmd(&[
            "sign",
            "raw",
            &file,
            "--key",
            "release",
            "--oidc",
            "--server",
            env.sign.api(),
            "--ca",
            &env.sign.root,
        ])
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("id-token: write") && err.contains("--oidc-token-env"),
        "{err}"
    );
}

/// Each bad token is refused with 401 and its own reason; nothing is signed or recorded.
#[test]
fn refusals_say_what_failed_and_record_nothing() {
    let env = Env::start(Keys::Soft, &[], "");
    let good = env.tag_build();
    let now = good["iat"].as_i64().expect("iat");
    // A token that works, first: the refusals below are about what each changes.
    let (code, v) = env.sign_with(&env.github.mint(&good), "release");
    assert_eq!(code, 201, "{v}");

    let (kid, _spki, pem) = env.github.public_key();
    let b64 = |v: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let tampered = {
        let t = env.github.mint(&good);
        let parts: Vec<&str> = t.split('.').collect();
        let mut claims = good.clone();
        claims["repository"] = json!("acme/app");
        claims["ref"] = json!("refs/tags/v9.9.9");
        format!("{}.{}.{}", parts[0], b64(&claims), parts[2])
    };
    let gitlab_kid = env.gitlab.public_key().0;
    let foreign = format!("key id '{gitlab_kid}' is a key of issuer 'gitlab', not of 'github'");
    // Make the gitlab issuer's keys known to the server first.
    let gl_ok = env.gitlab.mint(&merged(
        &env.gitlab.times("hallmark"),
        &gitlab_job("acme/app", "main"),
    ));
    assert_eq!(env.sign_with(&gl_ok, "release").0, 201);

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            env.github
                .mint(&merged(&good, &json!({"iat": now - 900, "nbf": now - 900, "exp": now - 600}))),
            "the token expired at",
        ),
        (
            "not yet valid",
            env.github
                .mint(&merged(&good, &json!({"nbf": now + 3600, "exp": now + 7200}))),
            "is not valid before",
        ),
        (
            "wrong audience",
            env.github
                .mint(&merged(&good, &json!({"aud": "https://github.com/acme"}))),
            "audience (https://github.com/acme) is not one hallmark accepts from issuer 'github' (ask for: hallmark)",
        ),
        (
            "wrong issuer",
            env.github.mint(&merged(
                &good,
                &json!({"iss": "https://token.actions.githubusercontent.com"}),
            )),
            "issuer 'https://token.actions.githubusercontent.com' is not trusted here",
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT"})),
                b64(&good)
            ),
            "unsigned (alg none)",
        ),
        (
            "HS256 keyed with the issuer's public key",
            env.github.mint_hmac(
                &json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
                &good,
                pem.as_bytes(),
            ),
            "shared-secret (HMAC) algorithm",
        ),
        (
            "unknown kid",
            env.github.mint_unpublished("github-stolen", &good),
            "key id 'github-stolen' is not among the keys of issuer 'github'",
        ),
        (
            "a kid of another trusted issuer",
            {
                // Signed by gitlab's key under its kid, claiming to be github's.
                let gl_token = env.gitlab.mint(&good);
                assert!(gl_token.contains('.'));
                gl_token
            },
            &foreign,
        ),
        (
            "tampered payload",
            tampered,
            "signature does not verify",
        ),
        (
            "a branch build against the tag-only rule",
            env.github.mint(&merged(
                &env.github.times("hallmark"),
                &github_job("acme/app", "refs/heads/main", "release"),
            )),
            "no rule for issuer 'github' matches this job (repository=acme/app ref=refs/heads/main",
        ),
    ];
    let before = env.sign.recorded();
    for (what, token, want) in &cases {
        let (code, v) = env.sign_with(token, "release");
        assert_eq!(code, 401, "{what}: {v}");
        assert_eq!(
            v["type"], "urn:hallmark:problem:unauthorized",
            "{what}: {v}"
        );
        assert!(detail(&v).contains(want), "{what}: {}", detail(&v));
        // The refusal reveals no rule.
        assert!(!detail(&v).contains("globex"), "{what}: {}", detail(&v));
    }
    // A job of another publisher's rule does not even see acme's key (as a globex token).
    let globex = env.github.mint(&merged(
        &env.github.times("hallmark"),
        &github_job("globex/tool", "refs/heads/main", "ci"),
    ));
    let (code, v) = env.sign_with(&globex, "release");
    assert_eq!(code, 404, "{v}");
    assert_eq!(detail(&v), "key 'release' was not found");
    assert_eq!(env.sign_with(&globex, "tool").0, 201);
    assert_eq!(
        env.sign.recorded(),
        before + 1,
        "only globex's own signature"
    );
}

/// The issuer rotates its key: a token signed by the new key is accepted after one JWKS
/// refresh. A burst of 1,000 tokens with unknown key ids fetches the JWKS a bounded number of
/// times. With the issuer down, cached keys keep verifying.
#[test]
fn rotation_unknown_kid_bursts_and_an_issuer_outage() {
    let env = Env::start(Keys::Soft, &[], "");
    let (code, v) = env.sign_with(&env.github.mint(&env.tag_build()), "release");
    assert_eq!(code, 201, "{v}");
    let after_first = env.github.jwks_fetches();
    assert!(after_first >= 1);

    // Rotation: wait out the refresh interval (2 s), then the new key's token is accepted.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let new_kid = env.github.rotate();
    let (code, v) = env.sign_with(&env.github.mint(&env.tag_build()), "release");
    assert_eq!(code, 201, "token from rotated key {new_kid}: {v}");
    assert_eq!(env.github.jwks_fetches(), after_first + 1, "one refresh");

    // A burst of unknown key ids: ten curls at once, a hundred requests each, once the
    // refresh interval allows a fetch again (so the first unknown kid does fetch).
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let before = env.github.jwks_fetches();
    let started = std::time::Instant::now();
    let mut curls = Vec::new();
    for c in 0..10 {
        let mut conf = String::new();
        for i in 0..100 {
            let t = env
                .github
                .mint_unpublished(&format!("flood-{}", (c * 100 + i) % 7), &env.tag_build());
            conf.push_str(&format!(
                "url = \"{}/api/v1/signatures\"\ncacert = \"{}\"\nheader = \"Authorization: Bearer {t}\"\nheader = \"Content-Type: application/json\"\ndata = '{}'\noutput = /dev/null\nwrite-out = \"%{{http_code}} %{{errormsg}}\\n\"\nnext\n",
                env.sign.api(),
                env.sign.root,
                Env::sign_body("release")
            ));
        }
        let conf_path = env.sign.path(&format!("flood-{c}.curl"));
        std::fs::write(&conf_path, conf.trim_end_matches("next\n")).expect("curl config");
        curls.push(
            std::process::Command::new(tool("curl"))
                .args(["-s", "--config"])
                .arg(&conf_path)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("curl"),
        );
    }
    let mut codes = String::new();
    for c in curls {
        let out = c.wait_with_output().expect("curl");
        codes.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    let elapsed = started.elapsed().as_secs();
    let n401 = codes
        .lines()
        .filter(|l| l.trim().starts_with("401"))
        .count();
    let n429 = codes
        .lines()
        .filter(|l| l.trim().starts_with("429"))
        .count();
    assert_eq!(
        n401 + n429,
        1000,
        "every flood token refused: {:?}",
        codes
            .lines()
            .filter(|l| !l.trim().starts_with("401"))
            .collect::<Vec<_>>()
    );
    let fetched = env.github.jwks_fetches() - before;
    eprintln!("{fetched} JWKS fetches for 1000 unknown-kid tokens in {elapsed} s");
    assert!(fetched >= 1, "the first unknown kid fetches the keys again");
    let bound = 2 + elapsed / 2;
    assert!(
        fetched <= bound,
        "{fetched} JWKS fetches for 1000 unknown kids in {elapsed} s (bound {bound})"
    );

    // The issuer goes down: the cached keys keep verifying a fresh token.
    env.github.set_down(true);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (code, v) = env.sign_with(&env.github.mint(&env.tag_build()), "release");
    assert_eq!(code, 201, "cached keys while the issuer is down: {v}");
    // An unknown kid meanwhile is refused as unknown, not as a server error.
    let (code, v) = env.sign_with(
        &env.github.mint_unpublished("while-down", &env.tag_build()),
        "release",
    );
    assert_eq!(code, 401, "{v}");
    env.github.set_down(false);
}

/// A rule that asks for an approval: the OIDC-authenticated job waits, the approver sees who
/// asks (the run's claims), approves, and the job gets its signature.
#[test]
fn an_oidc_job_waits_for_its_approver() {
    let rule = r#"
[[identity.oidc.rule]]
issuer = "github"
publisher = "acme"
scopes = ["sign"]
claims = { repository = "acme/app", ref = "refs/heads/release-*" }
name = "github:acme/app release branch"
approvals = 1
approvers = ["release-manager"]
"#;
    let env = Env::start(Keys::Soft, &[], rule);
    let file = env.sign.path("app.tar.gz");
    std::fs::write(&file, b"release candidate\n".repeat(100)).expect("artifact");
    let p7s = env.sign.path("app.p7s");
    let job = github_job("acme/app", "refs/heads/release-2.0", "staging");
    let child = env
        .sign
        .ca
        .cmd(&[
            "sign",
            "cms",
            &file,
            "--key",
            "release",
            "--oidc",
            "--out",
            &p7s,
            "--poll",
            "1",
            "--timeout",
            "120",
            "--server",
            env.sign.api(),
            "--ca",
            &env.sign.root,
        ])
        .envs(env.github.github_job_env(&job))
        .env("SSL_CERT_FILE", &env.github.ca_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sign");
    let id = env.sign.pending_request();
    let manager = env.sign.ca.token(&[
        "--publisher",
        "acme",
        "--name",
        "release-manager",
        "--scopes",
        "approve",
    ]);
    let (code, v) = env.sign.call(
        None,
        &format!("/api/v1/signatures/requests/{id}"),
        Some(&manager),
        None,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["requester"], "oidc:github:acme/app release branch", "{v}");
    assert_eq!(
        v["identity"]["claims"]["ref"], "refs/heads/release-2.0",
        "{v}"
    );
    assert_eq!(v["approvals_required"], 1, "{v}");
    // Another token of acme with the approve scope is not this rule's approver.
    let other = env.sign.ca.token(&[
        "--publisher",
        "acme",
        "--name",
        "bob",
        "--scopes",
        "approve",
    ]);
    assert!(!env.sign.approve(id, &other).status.success());
    let out = env.sign.approve(id, &manager);
    assert!(
        out.status.success(),
        "approve: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = child.wait_with_output().expect("sign");
    assert!(
        out.status.success(),
        "sign: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, text) = env.sign.cms_verify(&p7s, &file);
    assert!(ok, "openssl cms -verify: {text}");
    let rec = env
        .sign
        .store()
        .get_signature(id)
        .expect("read")
        .expect("signed");
    assert_eq!(rec.approvers.as_deref(), Some("release-manager"));
    assert!(rec
        .identity
        .expect("identity")
        .contains("refs/heads/release-2.0"));
}

/// Key policies name CI identities: `signers = ["oidc:RULE"]` lets that rule's jobs sign and
/// no other (a token named in the list still can, as `token:NAME`).
#[test]
fn key_policies_name_oidc_identities() {
    let env = Env::start(
        Keys::Soft,
        &["--signers", "oidc:gitlab:acme/app main,token:ci"],
        "",
    );
    let gl = env.gitlab.mint(&merged(
        &env.gitlab.times("hallmark"),
        &gitlab_job("acme/app", "main"),
    ));
    assert_eq!(env.sign_with(&gl, "release").0, 201);
    let gh = env.github.mint(&env.tag_build());
    let (code, v) = env.sign_with(&gh, "release");
    assert_eq!(code, 403, "{v}");
    assert!(
        detail(&v).contains("'oidc:github:acme/app release' may not sign with key 'release'"),
        "{}",
        detail(&v)
    );
    let ci = env
        .sign
        .ca
        .token(&["--publisher", "acme", "--name", "ci", "--scopes", "sign"]);
    assert_eq!(
        env.sign
            .call(
                Some("POST"),
                "/api/v1/signatures",
                Some(&ci),
                Some(&Env::sign_body("release"))
            )
            .0,
        201
    );
}

/// Rules are checked when the config loads: an unknown issuer, a rule without claims (unless
/// allow_any), a glob hallmark does not read. Every command refuses the file, naming the rule.
#[test]
fn bad_rules_stop_the_config_from_loading() {
    let ca = TestCa::new(Keys::Soft);
    let base = std::fs::read_to_string(ca.config()).expect("config");
    let issuer = r#"
[[identity.oidc]]
name = "github"
issuer = "https://token.actions.githubusercontent.com"
audiences = ["hallmark"]
"#;
    for (rule, want) in [
        (
            r#"issuer = "gitlab"
publisher = "acme"
scopes = ["sign"]
claims = { repository = "acme/app" }
name = "r1""#,
            "identity.oidc.rule 'r1': issuer 'gitlab' is not the name of an [[identity.oidc]] entry",
        ),
        (
            r#"issuer = "github"
publisher = "acme"
scopes = ["sign"]
name = "r2""#,
            "identity.oidc.rule 'r2': no claims: it would match every job of issuer 'github'",
        ),
        (
            r#"issuer = "github"
publisher = "acme"
scopes = ["sign"]
claims = { ref = "refs/tags/[v]*" }
name = "r3""#,
            "identity.oidc.rule 'r3': claim 'ref': 'refs/tags/[v]*' is not a glob hallmark reads",
        ),
    ] {
        std::fs::write(
            ca.config(),
            format!("{base}{issuer}\n[[identity.oidc.rule]]\n{rule}\n"),
        )
        .expect("write");
        let out = run(&mut ca.cmd(&["publisher", "list"]));
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{want}\n---\n{err}");
    }
    // allow_any makes the claim-less rule loadable.
    std::fs::write(
        ca.config(),
        format!(
            "{base}{issuer}\n[[identity.oidc.rule]]\nissuer = \"github\"\npublisher = \"acme\"\nscopes = [\"sign\"]\nname = \"any\"\nallow_any = true\n"
        ),
    )
    .expect("write");
    ca.hm(&["publisher", "list"]);
    // doctor says when a rule's publisher does not exist (yet).
    let out = run(&mut ca.cmd(&["doctor"]));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("identity.oidc.rule 'any'")
            && text.contains("publisher 'acme' does not exist (yet)"),
        "{text}"
    );
}

/// The pipelines in examples/ use OIDC only (no hallmark secret, no token variable), and their
/// bootstrap-and-sign commands, run as written in a simulated job (GitHub's token endpoint, or
/// GitLab's `id_tokens` variable), sign with the job's identity.
#[test]
fn the_example_pipelines_sign_with_oidc_only() {
    let env = Env::start(Keys::Soft, &[], "");
    let repo = env!("CARGO_MANIFEST_DIR");
    let extract = r#"
import json, sys, yaml
gh = yaml.safe_load(open(sys.argv[1]))
gl = yaml.safe_load(open(sys.argv[2]))
steps = gh["jobs"]["release"]["steps"]
sign = [s for s in steps if s.get("name", "").startswith("Sign")][0]
print(json.dumps({
  "gh_permissions": gh["permissions"],
  "gh_sign": sign["run"],
  "gh_env": sorted(sign.get("env", {}).values()),
  "gl_id_tokens": gl["sign"]["id_tokens"],
  "gl_script": gl["sign"]["script"],
}))
"#;
    let out = run(std::process::Command::new(tool("python3"))
        .args(["-c", extract])
        .arg(format!("{repo}/examples/github-actions-sign.yml"))
        .arg(format!("{repo}/examples/gitlab-ci-sign.yml")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ex: Value = serde_json::from_slice(&out.stdout).expect("examples as JSON");
    assert_eq!(ex["gh_permissions"]["id-token"], "write");
    assert_eq!(ex["gl_id_tokens"]["HALLMARK_ID_TOKEN"]["aud"], "hallmark");
    for f in ["github-actions-sign.yml", "gitlab-ci-sign.yml"] {
        let text = std::fs::read_to_string(format!("{repo}/examples/{f}")).expect("example");
        for secret in ["secrets.", "--token-env", "HALLMARK_TOKEN", "hmk_"] {
            assert!(!text.contains(secret), "{f} mentions {secret}");
        }
    }
    for v in ex["gh_env"].as_array().expect("env") {
        assert!(v.as_str().unwrap_or("").starts_with("${{ vars."), "{v}");
    }

    // Run the commands in a job's shell: its own HOME, a dist/app.bin, the repository
    // variables, and what the CI system gives (GitHub's token endpoint; GitLab's variable).
    let fingerprint = env.sign.ca.hm(&["ca", "fingerprint", "root"]);
    let job_dir = env.sign.path("job");
    std::fs::create_dir_all(format!("{job_dir}/dist")).expect("dist");
    std::fs::write(
        format!("{job_dir}/dist/app.bin"),
        b"app 1.4.0\n".repeat(100),
    )
    .expect("app");
    let bin_dir = hallmark_bin()
        .parent()
        .expect("bin dir")
        .display()
        .to_string();
    let shell = |script: &str, extra: &[(String, String)]| {
        let mut c = std::process::Command::new("bash");
        c.args(["-euo", "pipefail", "-c", script])
            .current_dir(&job_dir)
            .env(
                "PATH",
                format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default()),
            )
            .env("HOME", &job_dir)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("HALLMARK_TOKEN")
            .env("HALLMARK_URL", env.sign.api())
            .env("HALLMARK_PUBLIC", &env.sign.server.public)
            .env("HALLMARK_FINGERPRINT", fingerprint.trim())
            .env("GITHUB_SHA", "9f2c6e3a")
            .env("CI_COMMIT_SHA", "0d1e2f3a")
            .envs(extra.iter().map(|(k, v)| (k, v)));
        run(&mut c)
    };
    let mut gh_env =
        env.github
            .github_job_env(&github_job("acme/app", "refs/tags/v1.4.0", "release"));
    gh_env.push((
        "SSL_CERT_FILE".into(),
        env.github.ca_file.display().to_string(),
    ));
    let out = shell(ex["gh_sign"].as_str().expect("script"), &gh_env);
    assert!(
        out.status.success(),
        "the GitHub example's sign step: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let p7s = format!("{job_dir}/dist/app.bin.p7s");
    let (ok, text) = env
        .sign
        .cms_verify(&p7s, &format!("{job_dir}/dist/app.bin"));
    assert!(ok, "{text}");
    std::fs::remove_file(&p7s).expect("rm");

    // GitLab: the script lines up to the verification (which fetches revocation data from the
    // URLs in the certificates, a server this test does not run there).
    let gl_token = env.gitlab.mint(&merged(
        &env.gitlab.times("hallmark"),
        &gitlab_job("acme/app", "main"),
    ));
    let script: Vec<&str> = ex["gl_script"]
        .as_array()
        .expect("script")
        .iter()
        .filter_map(Value::as_str)
        .filter(|l| !l.starts_with("hallmark verify"))
        .collect();
    let out = shell(
        &script.join("\n"),
        &[("HALLMARK_ID_TOKEN".to_string(), gl_token)],
    );
    assert!(
        out.status.success(),
        "the GitLab example's script: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, text) = env
        .sign
        .cms_verify(&p7s, &format!("{job_dir}/dist/app.bin"));
    assert!(ok, "{text}");
    let listed = env.sign.ca.hm(&["signature", "list"]);
    assert!(
        listed.contains("by oidc:github:acme/app release")
            && listed.contains("by oidc:gitlab:acme/app main"),
        "{listed}"
    );
}

/// `hallmark client login --oidc-token-env VAR` makes the job's OIDC token the client profile's
/// credential: after `client bootstrap`, `hallmark sign` needs no flag.
#[test]
fn the_client_profile_takes_an_oidc_source() {
    let env = Env::start(Keys::Soft, &[], "");
    let xdg = env.sign.path("xdg");
    let fingerprint = env.sign.ca.hm(&["ca", "fingerprint", "root"]);
    let with_profile = |args: &[&str]| {
        let mut c = env.sign.ca.cmd(args);
        c.env("XDG_CONFIG_HOME", &xdg).env_remove("HALLMARK_TOKEN");
        c
    };
    ok(&mut with_profile(&[
        "client",
        "bootstrap",
        "--server",
        env.sign.api(),
        "--fingerprint",
        fingerprint.trim(),
        "--public",
        &env.sign.server.public,
    ]));
    let out = ok(&mut with_profile(&[
        "client",
        "login",
        "--oidc-token-env",
        "HALLMARK_ID_TOKEN",
    ]));
    assert!(out.contains("OIDC token in $HALLMARK_ID_TOKEN"), "{out}");
    let shown = ok(&mut with_profile(&["client", "show"]));
    assert!(
        shown.contains("oidc = true") && !shown.lines().any(|l| l.starts_with("token_env")),
        "{shown}"
    );
    let file = env.sign.path("app.bin");
    std::fs::write(&file, b"app").expect("file");
    let gl = env.gitlab.mint(&merged(
        &env.gitlab.times("hallmark"),
        &gitlab_job("acme/app", "main"),
    ));
    let out = run(
        with_profile(&["sign", "raw", &file, "--key", "release"]).env("HALLMARK_ID_TOKEN", &gl)
    );
    assert!(
        out.status.success(),
        "sign with the profile: {}",
        text_of(&out)
    );
    let listed = env.sign.ca.hm(&["signature", "list"]);
    assert!(listed.contains("by oidc:gitlab:acme/app main"), "{listed}");
}
