//! `make run` works as the README says: the Makefile's `run` builds the release binary and runs
//! `scripts/demo.sh`; this test runs that script (with the tests' binary, in a copy of the
//! scripts directory, on free ports), waits for the server, checks the README shows the lines
//! the demo prints for "another shell" (key, token, curl, client bootstrap and login, sign,
//! verify), and runs the README's block of them as written (its ports replaced) in bash with
//! `set -e`. A second run serves the same CA, and every line it prints then works too, on the
//! same client (no `key create` for the key that exists; the same bootstrap changes nothing).

use std::io::BufRead;
use std::process::{Command, Stdio};

use crate::common::*;

/// Starts demo.sh in `root`; returns the child and the lines it printed up to the server's
/// banner for the API listener.
fn start_demo(root: &std::path::Path, public: u16, api: u16) -> (Demo, Vec<String>) {
    let mut child = Command::new("bash")
        .arg(root.join("scripts/demo.sh"))
        .env("HALLMARK_BIN", hallmark_bin())
        .env("HALLMARK_DEMO_LISTEN", format!("127.0.0.1:{public}"))
        .env("HALLMARK_DEMO_API_LISTEN", format!("127.0.0.1:{api}"))
        .env("HALLMARK_LOG_LEVEL", "warn")
        .env("HOME", root)
        .env_remove("HALLMARK_CONFIG")
        .env_remove("SOFTHSM2_CONF")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("demo.sh");
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = std::io::BufReader::new(stdout);
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("read");
        assert!(n > 0, "demo.sh ended before serving:\n{}", lines.join(""));
        let done = line.contains("API listener on");
        lines.push(line);
        if done {
            break;
        }
    }
    std::thread::spawn(move || {
        let mut sink = String::new();
        while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    (Demo(child), lines)
}

/// The demo's server (demo.sh execs it): stopped with SIGTERM when dropped, also when the test
/// fails.
struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

#[test]
fn make_run_serves_a_demo_ca_and_its_hints_work() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // What `make run` runs: the release build, then the demo script.
    let makefile = std::fs::read_to_string(repo.join("Makefile")).expect("Makefile");
    let recipe: Vec<&str> = makefile
        .lines()
        .skip_while(|l| *l != "run:")
        .skip(1)
        .take_while(|l| l.starts_with('\t'))
        .map(str::trim)
        .collect();
    assert_eq!(
        recipe,
        ["cargo build --release --workspace", "@scripts/demo.sh"],
        "the Makefile's run recipe changed: update this test"
    );

    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path();
    std::fs::create_dir_all(root.join("scripts")).expect("mkdir");
    std::fs::copy(repo.join("scripts/demo.sh"), root.join("scripts/demo.sh")).expect("copy");
    // The README's `$PWD/target/release`: the tests' binaries.
    std::fs::create_dir_all(root.join("target")).expect("mkdir");
    std::os::unix::fs::symlink(
        hallmark_bin().parent().expect("binary directory"),
        root.join("target/release"),
    )
    .expect("symlink");
    let (public, api) = (free_port(), free_port());
    let ports = |line: &str| {
        line.replace("127.0.0.1:8080", &format!("127.0.0.1:{public}"))
            .replace("127.0.0.1:8443", &format!("127.0.0.1:{api}"))
    };

    let (demo, printed) = start_demo(root, public, api);
    let text = printed.join("");
    assert!(text.contains("Demo CA in"), "{text}");
    // The lines for another shell: from "try:" to "Ctrl-C", indented by two spaces.
    let hints: Vec<String> = text
        .lines()
        .skip_while(|l| !l.contains("In another shell, try:"))
        .take_while(|l| !l.starts_with("Ctrl-C"))
        .filter_map(|l| l.strip_prefix("  ").map(str::to_string))
        .collect();
    assert!(
        hints.iter().any(|h| h.starts_with("hallmark verify")),
        "{text}"
    );
    // The README shows the same lines (its own paths and ports, a placeholder fingerprint).
    let readme = std::fs::read_to_string(repo.join("README.md")).expect("README");
    let block: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("Once it is serving, in another shell"))
        .skip_while(|l| !l.starts_with("```"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect();
    let shown: Vec<&str> = block
        .iter()
        .copied()
        .filter(|l| l.starts_with("hallmark ") || l.starts_with("curl ") || l.starts_with("echo "))
        .collect();
    assert!(shown.len() >= 8, "README hint block not found");
    for line in shown {
        let ours = ports(line);
        let ours = ours.split(" --fingerprint ").next().unwrap_or(&ours);
        assert!(
            hints.iter().any(|h| h.starts_with(ours)),
            "README line '{line}' is not what make run prints:\n{text}"
        );
    }
    // The README's block as written, from the repository (here: the copy with the demo), on a
    // client whose home is `client`.
    let client = root.join("client");
    std::fs::create_dir_all(&client).expect("client dir");
    let in_shell = |script: &str, dir: &std::path::Path| {
        run(Command::new("bash")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .env("HOME", &client)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("HALLMARK_CONFIG")
            .env_remove("HALLMARK_TOKEN")
            .env_remove("SOFTHSM2_CONF"))
    };
    let script = format!(
        "set -euo pipefail\n{}\n",
        block
            .iter()
            .map(|l| ports(l))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let out = in_shell(&script, root);
    let said = text_of(&out);
    assert!(
        out.status.success(),
        "the README's block after make run failed:\n{script}\n---\n{said}"
    );
    for shown in [
        "\"database\":\"schema ",
        "BEGIN CERTIFICATE",
        "checked and saved",
        "ok   signature",
        "ok   timestamp",
        "ok   chain",
        "ok   revocation",
    ] {
        assert!(said.contains(shown), "'{shown}' not printed:\n{said}");
    }
    drop(demo);

    // The second `make run` serves the same CA, and what it prints is true now: no `key
    // create` for the key the first run's lines made; the rest works on the same client.
    let (again, printed) = start_demo(root, public, api);
    let text = printed.join("");
    assert!(
        !text.contains("creating a CA") && text.contains("Demo CA in"),
        "{text}"
    );
    let hints: Vec<String> = text
        .lines()
        .skip_while(|l| !l.contains("In another shell, try:"))
        .take_while(|l| !l.starts_with("Ctrl-C"))
        .filter_map(|l| l.strip_prefix("  ").map(str::to_string))
        .collect();
    assert!(
        hints.iter().any(|h| h.starts_with("hallmark verify")),
        "{text}"
    );
    assert!(
        !hints.iter().any(|h| h.contains("key create")),
        "a second run suggests creating the key that exists:\n{text}"
    );
    let script = format!("set -euo pipefail\n{}\n", hints.join("\n"));
    let out = in_shell(&script, &client);
    let said = text_of(&out);
    assert!(
        out.status.success(),
        "a line the second make run printed failed:\n{script}\n---\n{said}"
    );
    for shown in [
        "BEGIN CERTIFICATE",
        "unchanged",
        "ok   signature",
        "ok   chain",
    ] {
        assert!(said.contains(shown), "'{shown}' not printed:\n{said}");
    }
    drop(again);
}
