//! The `hallmark-client` binary (the client crate's, built without the server) against a real
//! hallmark server on 127.0.0.1: it signs a file as `hallmark sign cms` does, openssl and
//! `hallmark-client verify` accept the signature and refuse a tampered file, and its `verify`
//! prints what `hallmark verify` prints for the same files.

use crate::common::*;

/// `hallmark-client ARGS...` with the CA's environment and an empty client profile.
fn client_cmd(env: &SignEnv, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(hallmark_client_bin());
    c.args(args);
    for (k, v) in env.ca.env() {
        c.env(k, v);
    }
    c.env("XDG_CONFIG_HOME", env.path("client-xdg"));
    c
}

#[test]
fn the_client_binary_signs_and_verifies_against_a_real_server() {
    // Certificates that name the server's own public listener, so OCSP and CRLs answer.
    let listen = format!("127.0.0.1:{}", free_port());
    let ca = TestCa::new_with(Keys::Soft, &["--listen", &listen]);
    ca.add_acme();
    ca.create_key("acme", "release", "p256", &[]);
    let token = ca.token(&["--publisher", "acme", "--scopes", "sign"]);
    let root = ca.ca_pem("root").display().to_string();
    let server = Server::start_at(&ca, &listen, true, &[]);
    let env = SignEnv { server, ca, root };
    let file = env.path("app.bin");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    std::fs::write(&file, &data).expect("artifact");
    let mut bad = data.clone();
    bad[1234] ^= 0x01;
    let tampered = env.path("app.bin.tampered");
    std::fs::write(&tampered, bad).expect("tampered");

    let p7s = env.path("app.p7s");
    let out = run(client_cmd(
        &env,
        &[
            "sign",
            "cms",
            &file,
            "--key",
            "release",
            "--out",
            &p7s,
            "--server",
            env.api(),
            "--token-env",
            "SIGN_TOKEN",
            "--ca",
            &env.root,
        ],
    )
    .env("SIGN_TOKEN", &token));
    assert!(
        out.status.success(),
        "hallmark-client sign cms: {}",
        text_of(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("with key 'release'"),
        "{}",
        text_of(&out)
    );
    assert_eq!(env.recorded(), 1, "the server recorded the signature");

    // openssl, the external verifier.
    let (ok, text) = env.cms_verify(&p7s, &file);
    assert!(ok, "openssl cms -verify: {text}");
    let (ok, text) = env.cms_verify(&p7s, &tampered);
    assert!(!ok, "a tampered file verified: {text}");

    // hallmark-client verify: all checks pass (revocation asked of the server's OCSP), the tampered
    // file fails.
    let verify = |f: &str, extra: &[&str]| {
        let mut a = vec!["verify", f, "--signature", &p7s, "--ca", &env.root];
        a.extend_from_slice(extra);
        run(&mut client_cmd(&env, &a))
    };
    let out = verify(&file, &[]);
    assert!(
        out.status.success(),
        "hallmark-client verify: {}",
        text_of(&out)
    );
    let out = verify(&tampered, &[]);
    assert!(
        !out.status.success() && text_of(&out).contains("FAIL"),
        "a tampered file verified: {}",
        text_of(&out)
    );

    // The same report, word for word, as `hallmark verify` (offline: nothing fetched twice).
    let theirs = run(&mut client_cmd(
        &env,
        &[
            "--output",
            "json",
            "verify",
            &file,
            "--signature",
            &p7s,
            "--ca",
            &env.root,
            "--offline",
        ],
    ));
    let ours = run(env
        .ca
        .cmd(&[
            "--output",
            "json",
            "verify",
            &file,
            "--signature",
            &p7s,
            "--ca",
            &env.root,
            "--offline",
        ])
        .env("XDG_CONFIG_HOME", env.path("client-xdg")));
    assert!(
        theirs.status.success() && ours.status.success(),
        "{}",
        text_of(&ours)
    );
    assert_eq!(
        String::from_utf8_lossy(&theirs.stdout),
        String::from_utf8_lossy(&ours.stdout)
    );

    // An unknown command is refused as clap refuses it (exit 2); the server's commands are
    // not there.
    let out = run(&mut client_cmd(&env, &["serve"]));
    assert_eq!(out.status.code(), Some(2), "{}", text_of(&out));
}
