//! A request waiting for approvals can be withdrawn: by its requester or an officer (403 for
//! another token, 404 for another publisher), only while pending (409 after), and never issues
//! or signs afterwards; `hallmark sign` cancels its own request on SIGINT, SIGTERM and its
//! timeout; `hallmark request cancel ID [--signature]`.

use std::process::Stdio;

use crate::common::*;

/// A key that needs one approval, and the tokens around it.
struct Env {
    env: SignEnv,
    ci: String,
    other: String,
    approver: String,
}

fn start() -> Env {
    let (env, (ci, other, approver)) = SignEnv::start(Keys::Soft, |ca| {
        ca.add_globex();
        ca.create_key("acme", "release", "p256", &["--profile", "code-signing"]);
        ca.hm(&[
            "key",
            "policy",
            "release",
            "--approvals",
            "1",
            "--approvers",
            "lead",
        ]);
        (
            ca.token(&["--publisher", "acme", "--scopes", "sign", "--name", "ci"]),
            ca.token(&[
                "--publisher",
                "acme",
                "--scopes",
                "sign,approve",
                "--name",
                "other",
            ]),
            ca.token(&[
                "--publisher",
                "acme",
                "--scopes",
                "approve",
                "--name",
                "lead",
            ]),
        )
    });
    Env {
        env,
        ci,
        other,
        approver,
    }
}

fn status(env: &SignEnv, id: i64) -> String {
    env.store()
        .get_signature_request(id)
        .expect("read")
        .expect("signature request")
        .status
        .to_string()
}

fn pending(e: &Env, file: &str) -> (std::process::Child, i64) {
    let child = e
        .env
        .sign_cmd(
            &e.ci,
            "raw",
            file,
            "release",
            &["--poll", "1", "--timeout", "120"],
            &[],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sign");
    (child, e.env.pending_request())
}

#[test]
fn pending_requests_are_cancelled_by_their_requester_and_by_an_interrupted_cli() {
    let e = start();
    let file = e.env.path("app.bin");
    std::fs::write(&file, b"artifact").expect("file");

    // SIGINT: the CLI withdraws its request and fails.
    let (child, id) = pending(&e, &file);
    ok(std::process::Command::new("kill").args(["-INT", &child.id().to_string()]));
    let out = child.wait_with_output().expect("sign");
    assert!(!out.status.success());
    assert!(
        text_of(&out).contains("it was cancelled"),
        "{}",
        text_of(&out)
    );
    assert_eq!(status(&e.env, id), "cancelled");
    // A cancelled request is never signed: the approver gets 409.
    let out = e.env.approve(id, &e.approver);
    assert!(!out.status.success());
    assert!(text_of(&out).contains("409"), "{}", text_of(&out));

    // SIGTERM likewise.
    let (child, id) = pending(&e, &file);
    ok(std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let out = child.wait_with_output().expect("sign");
    assert!(!out.status.success());
    assert_eq!(status(&e.env, id), "cancelled");

    // The timeout likewise.
    let out = run(&mut e.env.sign_cmd(
        &e.ci,
        "raw",
        &file,
        "release",
        &["--poll", "1", "--timeout", "1"],
        &[],
    ));
    assert!(!out.status.success());
    assert!(
        text_of(&out).contains("it was cancelled"),
        "{}",
        text_of(&out)
    );

    // Over the API: another token of the publisher may not (403), another publisher's does not
    // see it (404), the requester may, once (then 409).
    let (mut child, id) = pending(&e, &file);
    let cancel = |token: &str| {
        e.env.call(
            Some("POST"),
            &format!("/api/v1/signatures/requests/{id}/cancel"),
            Some(token),
            None,
        )
    };
    assert_eq!(cancel(&e.other).0, 403);
    let globex = e
        .env
        .ca
        .token(&["--publisher", "globex", "--scopes", "sign"]);
    assert_eq!(cancel(&globex).0, 404);
    let (code, v) = cancel(&e.ci);
    assert_eq!(
        (code, v["status"].as_str()),
        (200, Some("cancelled")),
        "{v}"
    );
    assert_eq!(cancel(&e.ci).0, 409);
    // The waiting CLI sees the end and fails.
    let out = child.wait().expect("sign");
    assert!(!out.success());
    let _ = child.kill();

    // `hallmark request cancel ID --signature`.
    let (child, id) = pending(&e, &file);
    let out = run(e
        .env
        .ca
        .cmd(&[
            "request",
            "cancel",
            &id.to_string(),
            "--signature",
            "--server",
            e.env.api(),
            "--token-env",
            "CANCEL_TOKEN",
            "--ca",
            &e.env.root,
        ])
        .env("CANCEL_TOKEN", &e.ci));
    assert!(out.status.success(), "{}", text_of(&out));
    assert!(text_of(&out).contains("cancelled"));
    let out = child.wait_with_output().expect("sign");
    assert!(!out.status.success());
    assert_eq!(e.env.recorded(), 0, "nothing was signed");
}
