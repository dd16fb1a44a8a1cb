//! Writes the CLI reference from clap's definition of the command line: the Markdown page
//! docs/reference/cli.md (committed; tests/it/docs_book.rs keeps it current) and a man page per
//! command into target/man/. `make docs` runs it.

mod render;

use clap::CommandFactory;

fn main() -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = hallmark::cli::Cli::command();
    cmd.build();
    let page = root.join(render::PAGE);
    std::fs::write(&page, render::markdown(&cmd))?;
    println!("wrote {}", render::PAGE);
    let man = root.join("target/man");
    std::fs::create_dir_all(&man)?;
    clap_mangen::generate_to(cmd, &man)?;
    println!("wrote man pages into target/man/");
    Ok(())
}
