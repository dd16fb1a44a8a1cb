//! The `hallmark` binary: the CLI edge.

use clap::Parser;
use hallmark::cli::{Cli, Command};

/// Rust ignores SIGPIPE, so `hallmark cert list | head` would end in a "Broken pipe" panic.
/// Commands that only print get the Unix default back: the process stops quietly when its
/// reader goes away. Network commands keep ignoring it (a vanished peer is an error they handle).
#[cfg(unix)]
fn default_sigpipe() {
    // SAFETY: called at the start of main, before any thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() {
    // The gpg front end parses gpg's syntax itself: as `hallmark gpg ...`, or when this binary
    // is run under a gpg name (a symlink `hallmark-gpg`, or rpmsign's argv[0] "gpg").
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rest: Vec<std::ffi::OsString> = args.collect();
    if matches!(name.as_str(), "hallmark-gpg" | "gpg" | "gpg2") {
        std::process::exit(hallmark::cli::gpg::main(rest));
    }
    if rest.first().is_some_and(|a| a == "gpg") {
        std::process::exit(hallmark::cli::gpg::main(rest[1..].to_vec()));
    }
    let cli = Cli::parse();
    let networked = matches!(
        cli.command,
        Command::Serve { .. }
            | Command::Request(_)
            | Command::Approve(_)
            | Command::Deny(_)
            | Command::Sign(_)
            | Command::Station(_)
    );
    #[cfg(unix)]
    if !networked {
        default_sigpipe();
    }
    let _ = networked;
    if let Err(e) = hallmark::cli::run(cli) {
        let kind = e
            .downcast_ref::<hallmark::error::Error>()
            .map(|e| e.kind())
            .unwrap_or("error");
        eprintln!("hallmark: {kind}: {e:#}");
        std::process::exit(1);
    }
}
