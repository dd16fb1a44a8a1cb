//! The CLI reference page, docs/reference/cli.md, rendered from clap's definition of the
//! command line (`hallmark::cli::Cli`): shared by the generator (`cargo run --example cli_docs`,
//! which `make docs` runs) and the test that keeps the committed page current
//! (tests/it/docs_book.rs).

use std::fmt::Write as _;

use clap::{Arg, Command};

/// Where the page lives, from the repository's root.
pub const PAGE: &str = "docs/reference/cli.md";

/// The whole page, for a built command (`Command::build` has run).
pub fn markdown(root: &Command) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# The `{}` command line\n", root.get_name());
    let _ = writeln!(
        out,
        "<!-- Generated from hallmark::cli::Cli (clap) by `cargo run --example cli_docs` \
         (`make docs`); do not edit: tests/it/docs_book.rs fails when this page differs from \
         what the generator writes. -->\n"
    );
    if let Some(about) = root.get_about() {
        let _ = writeln!(out, "{about}\n");
    }
    let _ = writeln!(
        out,
        "`hallmark --help` and `hallmark COMMAND --help` print the same text. `make docs` also \
         writes a man page per command into `target/man/`.\n"
    );
    let _ = writeln!(out, "Usage: `{}`\n", usage(root));
    let globals: Vec<&Arg> = root
        .get_arguments()
        .filter(|a| !a.is_hide_set() && a.is_global_set())
        .collect();
    if !globals.is_empty() {
        let _ = writeln!(out, "## Options of every command\n");
        for arg in &globals {
            item(&mut out, arg);
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Commands\n");
    tree(&mut out, root, root.get_name(), 0);
    out.push('\n');
    for sub in visible(root) {
        section(
            &mut out,
            sub,
            &format!("{} {}", root.get_name(), sub.get_name()),
        );
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// Subcommands a user sees (not hidden, not clap's own `help`).
fn visible(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
}

/// The anchor mdBook and forges give a `## hallmark a b` heading.
fn anchor(path: &str) -> String {
    path.replace(' ', "-")
}

/// Help text as one line of Markdown: white space collapsed, and `<` outside code spans
/// escaped (so "Name <mail>" is text, not an HTML tag or a link).
fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    line.split('`')
        .enumerate()
        .map(|(i, piece)| {
            if i % 2 == 0 {
                piece.replace('<', "\\<")
            } else {
                piece.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

fn tree(out: &mut String, cmd: &Command, path: &str, depth: usize) {
    for sub in visible(cmd) {
        let sub_path = format!("{path} {}", sub.get_name());
        let about = sub.get_about().map(|a| one_line(&a.to_string()));
        let _ = writeln!(
            out,
            "{}- [`{}`](#{}){}",
            "  ".repeat(depth),
            sub_path,
            anchor(&sub_path),
            about.map(|a| format!(": {a}")).unwrap_or_default()
        );
        tree(out, sub, &sub_path, depth + 1);
    }
}

fn usage(cmd: &Command) -> String {
    let text = cmd.clone().render_usage().to_string();
    let text = text.strip_prefix("Usage: ").unwrap_or(&text);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn section(out: &mut String, cmd: &Command, path: &str) {
    let _ = writeln!(out, "## {path}\n");
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        let _ = writeln!(out, "{}\n", about.to_string().trim_end());
    }
    let _ = writeln!(out, "Usage: `{}`\n", usage(cmd));
    let args: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_global_set())
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .collect();
    if !args.is_empty() {
        for arg in args {
            item(out, arg);
        }
        out.push('\n');
    }
    let subs: Vec<&Command> = visible(cmd).collect();
    if !subs.is_empty() {
        let _ = writeln!(out, "Commands:\n");
        for sub in &subs {
            let sub_path = format!("{path} {}", sub.get_name());
            let about = sub.get_about().map(|a| one_line(&a.to_string()));
            let _ = writeln!(
                out,
                "- [`{}`](#{}){}",
                sub.get_name(),
                anchor(&sub_path),
                about.map(|a| format!(": {a}")).unwrap_or_default()
            );
        }
        out.push('\n');
        for sub in subs {
            section(out, sub, &format!("{path} {}", sub.get_name()));
        }
    }
}

/// One argument as a list item: its spelling, then its help, default, choices and variable.
fn item(out: &mut String, arg: &Arg) {
    let value = || {
        arg.get_value_names()
            .map(|names| {
                names
                    .iter()
                    .map(|n| format!("<{n}>"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|| format!("<{}>", arg.get_id().as_str().to_uppercase()))
    };
    let takes_value = arg.get_action().takes_values();
    let mut spelling = match (arg.get_short(), arg.get_long()) {
        (Some(s), Some(l)) => format!("-{s}, --{l}"),
        (Some(s), None) => format!("-{s}"),
        (None, Some(l)) => format!("--{l}"),
        (None, None) => value(),
    };
    if takes_value && (arg.get_short().is_some() || arg.get_long().is_some()) {
        spelling = format!("{spelling} {}", value());
    }
    let mut text = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|h| one_line(&h.to_string()))
        .unwrap_or_default();
    let mut notes = Vec::new();
    if arg.is_positional() && arg.is_required_set() {
        notes.push("required".to_string());
    }
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    if takes_value && !defaults.is_empty() && !arg.is_hide_default_value_set() {
        notes.push(format!("default: `{}`", defaults.join(",")));
    }
    let choices: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|p| !p.is_hide_set())
        .map(|p| format!("`{}`", p.get_name()))
        .collect();
    if takes_value && !choices.is_empty() && !arg.is_hide_possible_values_set() {
        notes.push(format!("one of {}", choices.join(", ")));
    }
    if let Some(env) = arg.get_env() {
        if !arg.is_hide_env_set() {
            notes.push(format!("variable `{}`", env.to_string_lossy()));
        }
    }
    if !notes.is_empty() {
        if !text.is_empty() && !text.ends_with('.') {
            text.push('.');
        }
        let _ = write!(text, " ({})", notes.join("; "));
    }
    let _ = writeln!(out, "- `{spelling}`: {}", text.trim());
}
