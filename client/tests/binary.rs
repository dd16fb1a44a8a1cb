//! The `hallmark-client` binary on its own: it refuses what it does not know with a usage error
//! (exit 2) and lists its commands. Being an integration test of the client crate, this also
//! makes `cargo test --workspace` build the binary, which the server's tests then run against a
//! real server (`tests/it/client_binary.rs`).

use std::process::Command;

fn client() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hallmark-client"))
}

#[test]
fn unknown_commands_are_usage_errors_and_help_lists_the_client_commands() {
    let out = client().arg("serve").output().expect("run hallmark-client");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("serve"),
        "the refusal names the command: {err}"
    );

    let out = client()
        .arg("--help")
        .output()
        .expect("run hallmark-client --help");
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["sign", "verify", "request", "approve", "deny"] {
        assert!(help.contains(cmd), "--help lists {cmd}: {help}");
    }
}
