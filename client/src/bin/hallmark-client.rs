//! `hallmark-client`: the client-side commands of `hallmark` (`sign`, `verify`, `request`,
//! `approve`, `deny`, `gpg`, `client`) as a binary of their own, for build machines and CI jobs
//! that sign or verify but never run a CA. It links no database, no HTTP server and no
//! templates, so it builds in a fraction of the server's time. The arguments, help and output
//! of each command are the `hallmark` binary's: both name the same clap types
//! (`hallmark_client::cli`).

use clap::{Parser, Subcommand};
use hallmark_client::cli::{self, gpg, request, sign, verify, ClientCmd, Output};

#[derive(Parser, Debug)]
#[command(
    name = "hallmark-client",
    version,
    about = "Sign, verify and request certificates with a hallmark server (the client side of hallmark)"
)]
struct Cli {
    /// How list and show commands print: text, or json (one document; lists as
    /// {"items": [...], "next": CURSOR-or-null}).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "HALLMARK_OUTPUT"
    )]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Submit a CSR to a hallmark server and wait for the certificate (CI jobs); `request
    /// cancel ID` withdraws a pending request.
    Request(request::RequestCmd),
    /// Approve a pending request on a hallmark server, with your own token.
    Approve(request::DecideArgs),
    /// Deny a pending request on a hallmark server, with your own token.
    Deny(request::DecideArgs),
    /// Sign a file with a key on a hallmark server: the file is hashed here, only the digest is sent.
    #[command(subcommand)]
    Sign(sign::SignCmd),
    /// A gpg-compatible signing front end (also installed as `hallmark-gpg`) for rpmsign and
    /// repository scripts: -u LABEL, -sb/--detach-sign, --clearsign, -a/--armor, -o FILE,
    /// --digest-algo. Takes gpg's own syntax: `hallmark-client gpg -u release -sbo sig file`.
    Gpg {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Verify anything hallmark signs: detached CMS, Authenticode PE, jars, MCUboot images,
    /// COSE_Sign1, RFC 3161 tokens and raw signatures; the chain to the root, key usage, the
    /// time-stamp and revocation (OCSP, else CRL). One line per check; exit 0 only when all pass.
    Verify(verify::VerifyArgs),
    /// The client profile: server, root and credential for sign, request, approve and deny.
    #[command(subcommand)]
    Client(ClientCmd),
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Request(request::RequestCmd {
            action:
                Some(request::RequestAction::Cancel {
                    server,
                    id,
                    signature,
                }),
            ..
        }) => request::cmd_cancel(server, *id, *signature),
        Command::Request(request::RequestCmd { submit, .. }) => request::cmd_request(submit),
        Command::Approve(a) => request::cmd_decide(a, true),
        Command::Deny(a) => request::cmd_decide(a, false),
        Command::Sign(c) => sign::cmd_sign(c),
        Command::Gpg { args } => {
            let code = gpg::main(args.iter().map(std::ffi::OsString::from).collect());
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        Command::Verify(a) => verify::cmd_verify(cli.output, a),
        Command::Client(c) => cli::cmd_client(c),
    }
}

fn main() {
    // The gpg front end parses gpg's syntax itself, as in `hallmark gpg ...`.
    let rest: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if rest.first().is_some_and(|a| a == "gpg") {
        std::process::exit(gpg::main(rest[1..].to_vec()));
    }
    if let Err(e) = run(Cli::parse()) {
        eprintln!("hallmark-client: error: {e:#}");
        std::process::exit(1);
    }
}
