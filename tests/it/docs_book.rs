//! The docs book holds together: docs/SUMMARY.md (mdBook's table of contents) links every page
//! under docs/ and nothing that is missing, mdBook builds it as `make docs` does, every relative
//! link of the README and the book points at a file (and a heading) that exists, and the
//! generated reference pages are what their generators write now (docs/reference/cli.md from
//! clap's definition of the command line, docs/reference/http.md from openapi.yaml). The shell
//! blocks of the pages are run by `readme.rs`, whose module this is (so
//! `cargo test --test it readme` runs both).

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use clap::CommandFactory;

use super::book_pages;
use crate::common::*;

#[path = "../../examples/cli_docs/render.rs"]
mod cli_render;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(page: &str) -> String {
    std::fs::read_to_string(repo().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"))
}

/// A path made of `base`'s directory and `target`, with `.` and `..` resolved (no file system).
fn join(base: &str, target: &str) -> String {
    let mut parts: Vec<String> = Path::new(base)
        .parent()
        .map(|p| {
            p.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for c in Path::new(target).components() {
        match c {
            Component::ParentDir => {
                assert!(
                    parts.pop().is_some(),
                    "{base}: link {target} leaves the repository"
                );
            }
            Component::CurDir => {}
            c => parts.push(c.as_os_str().to_string_lossy().into_owned()),
        }
    }
    parts.join("/")
}

/// The Markdown links and images of a page, outside code blocks and code spans: (line, target).
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Code spans hold no links.
        let mut plain = String::new();
        for (k, piece) in line.split('`').enumerate() {
            if k % 2 == 0 {
                plain.push_str(piece);
            }
        }
        let mut rest = plain.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            out.push((i + 1, after[..end].trim().to_string()));
            rest = &after[end..];
        }
    }
    out
}

/// The anchors of a page's headings, as mdBook and forges make them: lower case, letters,
/// digits, `-` and `_` kept, spaces as `-`, anything else dropped.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let heading = line.trim_start_matches('#').trim();
        let id: String = heading
            .chars()
            .filter_map(|c| {
                if c.is_alphanumeric() || c == '_' || c == '-' {
                    Some(c.to_lowercase().next().unwrap_or(c))
                } else if c.is_whitespace() {
                    Some('-')
                } else {
                    None
                }
            })
            .collect();
        out.insert(id);
    }
    out
}

#[test]
fn summary_links_every_page_of_the_book() {
    let summary = read("docs/SUMMARY.md");
    let mut linked = BTreeSet::new();
    for (line, target) in links(&summary) {
        assert!(
            !target.contains('#') && !target.contains("://"),
            "docs/SUMMARY.md:{line}: a chapter is a page of docs/, not {target}"
        );
        let path = join("docs/SUMMARY.md", &target);
        assert!(
            repo().join(&path).is_file(),
            "docs/SUMMARY.md:{line}: {target} does not exist"
        );
        assert!(
            linked.insert(path.clone()),
            "docs/SUMMARY.md:{line}: {target} is listed twice"
        );
    }
    let unlinked: Vec<String> = book_pages()
        .into_iter()
        .filter(|p| p.starts_with("docs/") && p != "docs/SUMMARY.md")
        .filter(|p| !linked.contains(p))
        .collect();
    assert!(
        unlinked.is_empty(),
        "pages of docs/ that docs/SUMMARY.md does not link (so the book leaves them out): {unlinked:?}"
    );
}

#[test]
fn the_book_builds_as_make_docs_builds_it() {
    // mdBook as `make docs` runs it (pinned; `make deps` installs it into .tools/bin).
    let mdbook = repo().join(".tools/bin/mdbook");
    assert!(
        mdbook.is_file(),
        "{} is missing: run `make deps` (or scripts/mdbook.sh), which installs it",
        mdbook.display()
    );
    let dest = tempfile::tempdir().expect("tmp");
    let out = run(std::process::Command::new(&mdbook)
        .arg("build")
        .arg("--dest-dir")
        .arg(dest.path())
        .current_dir(repo()));
    let said = text_of(&out);
    assert!(out.status.success(), "mdbook build failed:\n{said}");
    assert!(
        !said.contains("WARN") && !said.contains("ERROR"),
        "mdbook build warned:\n{said}"
    );
    // A page for every chapter of SUMMARY.md (README.md becomes index.html).
    for (line, target) in links(&read("docs/SUMMARY.md")) {
        let html = match target.as_str() {
            "README.md" => "index.html".to_string(),
            t => t.replace(".md", ".html"),
        };
        assert!(
            dest.path().join(&html).is_file(),
            "docs/SUMMARY.md:{line}: mdbook wrote no {html}"
        );
    }
}

#[test]
fn every_link_of_the_readme_and_the_book_resolves() {
    let mut broken = Vec::new();
    for page in book_pages() {
        let text = read(&page);
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let path = if file.is_empty() {
                page.clone()
            } else {
                join(&page, file)
            };
            let full: PathBuf = repo().join(&path);
            if !full.exists() {
                broken.push(format!("{page}:{line}: {target} (no {path})"));
                continue;
            }
            if let Some(anchor) = anchor {
                if path.ends_with(".md") && !anchors(&read(&path)).contains(anchor) {
                    broken.push(format!(
                        "{page}:{line}: {target} (no heading #{anchor} in {path})"
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_cli_reference_is_what_clap_says_now() {
    let mut cmd = hallmark::cli::Cli::command();
    cmd.build();
    let now = cli_render::markdown(&cmd);
    let committed = read(cli_render::PAGE);
    same(
        cli_render::PAGE,
        &committed,
        &now,
        "cargo run --example cli_docs",
    );
}

#[test]
fn the_http_reference_is_what_openapi_yaml_says_now() {
    let out = run(std::process::Command::new(tool("python3"))
        .arg(repo().join("scripts/http_reference.py"))
        .arg("--stdout"));
    assert!(out.status.success(), "{}", text_of(&out));
    let now = String::from_utf8(out.stdout).expect("UTF-8");
    let committed = read("docs/reference/http.md");
    same(
        "docs/reference/http.md",
        &committed,
        &now,
        "scripts/http_reference.py",
    );
}

/// Fails with the first line that differs, and what to run.
fn same(page: &str, committed: &str, now: &str, generator: &str) {
    if committed == now {
        return;
    }
    let longest = committed.lines().count().max(now.lines().count()) + 1;
    let (line, (old, new)) = committed
        .lines()
        .chain(std::iter::repeat(""))
        .zip(now.lines().chain(std::iter::repeat("")))
        .take(longest)
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .unwrap_or((longest - 1, ("(end)", "(end)")));
    panic!(
        "{page} is not what its generator writes now: run `make docs` (or `{generator}`) and commit it.\n\
         First difference, line {}:\n  committed: {old}\n  now:       {new}",
        line + 1
    );
}
