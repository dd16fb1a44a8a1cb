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
