//! The book works as written: the shell blocks of the pages listed in [`CHAPTERS`] (the tour
//! and the guides of docs/, and README.md should it ever hold one) run in order, in one shell,
//! in a temporary directory, on free ports (the pages' 8080, 8443, 18080, 18443, 8088 and 5000
//! are replaced). A block fenced ```` ```sh no-run ```` is illustrative (it needs two machines,
//! a real HSM, ...); ```` ```sh setup ```` is what a person runs once in the repository: the
//! test has done its build, and runs its `export` lines in the repository with the `hallmark`
//! the tests built for `target/release`. Nothing else is added to `PATH`, and `.venv/bin`
//! (which `make test` puts there) is taken off it, so a tool the blocks call must be on the
//! `PATH` a fresh clone has after the set-up line. Any other block failing fails the test, with
//! the block's page and line; a page of docs/ (or the README) with a runnable block that is not
//! listed fails it too.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::common::*;

/// The book's own checks (its table of contents, its links, the generated reference pages).
#[path = "docs_book.rs"]
mod docs_book;

/// The pages run, in this order, in one shell: each page builds on what the pages before it
/// left (the tour's CA, its server, files and variables). Paths from the repository's root.
const CHAPTERS: &[&str] = &[
    "docs/getting-started/tour.md",
    "docs/getting-started/api.md",
    "docs/guides/approvals.md",
    "docs/reference/problems.md",
    "docs/operations/logs-and-metrics.md",
    "docs/guides/revocation.md",
    "docs/guides/timestamping.md",
    "docs/guides/factory-line.md",
    "docs/guides/signing.md",
    "docs/guides/pkcs11.md",
    "docs/guides/packages-and-images.md",
    "docs/guides/verifying.md",
    "docs/guides/signing-formats.md",
    "docs/guides/signing-firmware.md",
    "docs/guides/acme.md",
    "docs/operations/hsm.md",
];

/// README.md and every Markdown page under docs/, as paths from the repository's root.
fn book_pages() -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("docs directory")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                let rel = path.strip_prefix(root).expect("under the repository");
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = vec!["README.md".to_string()];
    walk(&root.join("docs"), root, &mut out);
    out
}

fn read_page(page: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(page))
        .unwrap_or_else(|e| panic!("{page}: {e}"))
}

/// The `export` lines of a page's ```` ```sh setup ```` blocks.
fn setup_exports(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in readme.lines() {
        let fence = line.trim_start().strip_prefix("```");
        match fence {
            Some(info) if !inside => inside = info.split_whitespace().eq(["sh", "setup"]),
            Some(_) => inside = false,
            None if inside && line.starts_with("export ") => out.push(line.to_string()),
            None => {}
        }
    }
    out
}

/// Every runnable `sh` block of a page: (line of the fence, text).
fn page_blocks(page: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut block: Option<(usize, bool, String)> = None;
    for (i, line) in page.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut block, fence) {
            (Some((start, run, text)), Some(_)) => {
                if *run {
                    out.push((*start, std::mem::take(text)));
                }
                block = None;
            }
            (Some((_, _, text)), None) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, Some(info)) => {
                let words: Vec<&str> = info.split_whitespace().collect();
                block = Some((i + 1, words == ["sh"], String::new()));
            }
            (None, None) => {}
        }
    }
    out
}

#[test]
fn readme_chapters_run_as_written() {
    // No runnable block escapes the test: a page of docs/ (or the README) with one is listed
    // here, or its block fenced `sh no-run`.
    let unrun: Vec<String> = book_pages()
        .into_iter()
        .filter(|page| !page_blocks(&read_page(page)).is_empty())
        .filter(|page| !CHAPTERS.contains(&page.as_str()))
        .collect();
    assert!(
        unrun.is_empty(),
        "pages with shell blocks no test runs: {unrun:?} (list them in CHAPTERS, in the order they build on each other, or fence an illustrative block with sh no-run)"
    );
    let dir = tempfile::tempdir().expect("tmp");
    let (public, api) = (free_port(), free_port());
    let (public2, api2) = (free_port(), free_port());
    // The ACME chapter's http-01 port (certbot listens there).
    let http01 = free_port();
    // The OpenPGP chapter's container registry.
    let registry = free_port();
    let bin_dir = hallmark_bin()
        .parent()
        .expect("binary directory")
        .to_path_buf();
    let mut script = String::from(
        "exec 2>&1\nset -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n",
    );
    // The set-up's PATH line, run in the repository, with the tests' binaries for the release
    // build's.
    let exports: Vec<String> = CHAPTERS
        .iter()
        .flat_map(|page| setup_exports(&read_page(page)))
        .collect();
    assert!(
        exports.iter().any(|l| l.contains("$PWD/target/release")),
        "the tour's set-up block no longer puts $PWD/target/release on PATH: {exports:?}"
    );
    let _ = writeln!(script, "cd '{}'", env!("CARGO_MANIFEST_DIR"));
    for line in &exports {
        let _ = writeln!(
            script,
            "{}",
            line.replace("$PWD/target/release", &bin_dir.display().to_string())
        );
    }
    let _ = writeln!(script, "cd '{}'", dir.path().display());
    for chapter in CHAPTERS {
        let found = page_blocks(&read_page(chapter));
        assert!(!found.is_empty(), "no runnable block in {chapter}");
        for (line, text) in found {
            // 8088 first: a free port put in for another one may contain "8088".
            let text = text
                .replace("8088", &http01.to_string())
                .replace("127.0.0.1:5000", &format!("127.0.0.1:{registry}"))
                .replace("127.0.0.1:8080", &format!("127.0.0.1:{public}"))
                .replace("127.0.0.1:8443", &format!("127.0.0.1:{api}"))
                .replace("127.0.0.1:18080", &format!("127.0.0.1:{public2}"))
                .replace("127.0.0.1:18443", &format!("127.0.0.1:{api2}"));
            let _ = writeln!(script, "echo '>>> {chapter}:{line}' >&2\n{text}");
        }
    }
    std::fs::write(dir.path().join("readme.sh"), &script).expect("script");
    // The PATH of a machine with the system's tools, without the test venv `make test` adds.
    let tools_bin = std::env::var_os("HALLMARK_TOOLS_BIN").map(std::path::PathBuf::from);
    let path = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|p| {
            let p = std::path::Path::new(p);
            !p.ends_with(".venv/bin") && Some(p) != tools_bin.as_deref()
        })
        .collect::<Vec<_>>()
        .join(":");
    // A page's wait that never ends (a server that never answers) fails the test, not CI.
    let out = run(std::process::Command::new("timeout")
        .args(["--kill-after=10", "900", "bash"])
        .arg(dir.path().join("readme.sh"))
        .current_dir(dir.path())
        .env("PATH", path)
        .env("HOME", dir.path())
        .env("TMPDIR", dir.path())
        .env_remove("HALLMARK_CONFIG")
        .env_remove("HALLMARK_PASSPHRASE"));
    let text = text_of(&out);
    let _ = std::fs::write(bin_dir.join("readme.log"), &text);
    let last = text
        .lines()
        .rfind(|l| l.starts_with(">>> "))
        .unwrap_or("(before the first block)")
        .to_string();
    if !out.status.success() {
        // The failing block's own output first (a CI log keeps the head and tail of a long
        // message), the whole run in a file beside the test's binary.
        let from = text.rfind(">>> ").unwrap_or(0);
        let log = bin_dir.join("readme-failed.log");
        let _ = std::fs::write(&log, &text);
        panic!(
            "the book failed in the block at {last}; its output:\n{}\n(the whole run: {})",
            &text[from..],
            log.display()
        );
    }
    // What the tour says its commands print, where it is stable.
    for shown in [
        "acme-chain.pem: OK",
        "subject-mismatch: subject attribute O='Evil Corp' contradicts the verified publisher record",
        "\"database\":\"schema ",
        "subject=C = US, O = Hallmark Tour, CN = Hallmark Tour Root CA",
        "pending (1 approval(s) of 2)",
        "issued (2 approval(s) of 2)",
        "Response verify OK",
        "Reason: keyCompromise",
        "0x00112233445566778899aabbccddeeff: unknown",
        "acme.pem: good",
        "certificate revoked",
        "acme.pem: OK",
        "Verification: OK",
        "done: 5 issued, 0 refused in this run",
        "station line-3 disabled; its certificate is revoked",
        "1.3.6.1.4.1.37244.2.1 = FFF1, 1.3.6.1.4.1.37244.2.2 = 8000",
        "CMS Verification successful",
        "Verified OK",
        "Signature verification: ok",
        "jar verified.",
        "ok   chain      Acme Corp → Hallmark Tour Code Signing CA → Hallmark Tour Root CA",
        "ok   revocation Acme Corp: good (OCSP http://127.0.0.1:",
        "\"valid\": true",
        "Image was correctly validated",
        "the content was changed",
        "DNS:web.example.internal",
    ] {
        assert!(text.contains(shown), "'{shown}' not printed:\n{text}");
    }
    // Nor do the examples warn, as users will copy them (jarsigner through the PKCS#11
    // module: a chain it cannot check while signing, a signature without a time-stamp).
    for warning in [
        "PKIX path building failed",
        "not timestamped",
        "certificate chain is invalid",
    ] {
        assert!(!text.contains(warning), "'{warning}' printed:\n{text}");
    }
}
