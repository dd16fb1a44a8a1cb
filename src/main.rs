//! The `hallmark` binary: the CLI edge.

use clap::Parser;

fn main() {
    let cli = hallmark::cli::Cli::parse();
    if let Err(e) = hallmark::cli::run(cli) {
        let kind = e
            .downcast_ref::<hallmark::error::Error>()
            .map(|e| e.kind())
            .unwrap_or("error");
        eprintln!("hallmark: {kind}: {e:#}");
        std::process::exit(1);
    }
}
