//! `hallmark gpg` / `hallmark-gpg`: a gpg-compatible front end for the tools that call gpg to
//! sign (rpmsign's `%__gpg`, repository scripts running `gpg --clearsign` and `gpg -abs`). It
//! accepts the arguments those tools pass and nothing else, and signs through the signing
//! service like `hallmark sign openpgp`: detached or cleartext, the key named with `-u LABEL`.
//! The server and credential come from the client profile (`hallmark client login`) or
//! HALLMARK_SERVER, HALLMARK_CA and HALLMARK_TOKEN; a key that needs approvals makes it wait
//! (HALLMARK_APPROVAL_TIMEOUT_SECS, default 600; polling every HALLMARK_APPROVAL_POLL_SECS, 5).
//!
//! gpg's own syntax is kept: short options combine (`-sbo FILE`, `-abs`), a long option takes
//! its value after `=` or as the next argument, `--` ends the options, and the one input is a
//! file or (none, or `-`) standard input. Errors exit with 2, as gpg's do.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};

use super::sign_openpgp::{sign, Mode};
use crate::algorithm::HashAlg;

/// What the arguments ask for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GpgArgs {
    pub sign: bool,
    pub detach: bool,
    pub clear: bool,
    pub armor: bool,
    pub output: Option<String>,
    pub user: Option<String>,
    pub digest: Option<HashAlg>,
    pub input: Option<String>,
    pub version: bool,
}

const SUPPORTED: &str = "hallmark-gpg signs only: -u/--local-user KEY, -s/--sign with \
    -b/--detach-sign, --clearsign, -a/--armor, --no-armor, -o/--output FILE, --digest-algo \
    SHA256|SHA384|SHA512, --batch, --yes, --quiet, --no-tty, --no-verbose, --no-secmem-warning, \
    --pinentry-mode MODE, --";

/// Options that take no value and change nothing here.
const IGNORED: &[&str] = &[
    "batch",
    "yes",
    "quiet",
    "no-tty",
    "no-verbose",
    "verbose",
    "no-secmem-warning",
    "no-permission-warning",
    "no-greeting",
];

fn digest_algo(v: &str) -> anyhow::Result<HashAlg> {
    match v.to_ascii_uppercase().replace('-', "").as_str() {
        "SHA256" | "8" => Ok(HashAlg::Sha256),
        "SHA384" | "9" => Ok(HashAlg::Sha384),
        "SHA512" | "10" => Ok(HashAlg::Sha512),
        _ => bail!(
            "--digest-algo {v} is not offered (SHA256, SHA384 or SHA512; SHA-1 and MD5 are \
             refused); nothing was signed"
        ),
    }
}

/// Parses gpg's arguments (without the program name).
pub fn parse(args: &[String]) -> anyhow::Result<GpgArgs> {
    let mut a = GpgArgs::default();
    let mut i = 0;
    let mut inputs = Vec::new();
    let mut only_files = false;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if only_files || arg == "-" || !arg.starts_with('-') {
            inputs.push(arg.clone());
            continue;
        }
        if arg == "--" {
            only_files = true;
            continue;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let mut value = |what: &str| -> anyhow::Result<String> {
                match &inline {
                    Some(v) => Ok(v.clone()),
                    None => {
                        let v = args
                            .get(i)
                            .cloned()
                            .ok_or_else(|| anyhow!("--{name} needs {what}"))?;
                        i += 1;
                        Ok(v)
                    }
                }
            };
            match name {
                "sign" => a.sign = true,
                "detach-sign" => a.detach = true,
                "clearsign" | "clear-sign" => a.clear = true,
                "armor" | "armour" => a.armor = true,
                "no-armor" | "no-armour" => a.armor = false,
                "output" => a.output = Some(value("a file")?),
                "local-user" | "default-key" => a.user = Some(value("a key label")?),
                "digest-algo" => a.digest = Some(digest_algo(&value("an algorithm")?)?),
                "pinentry-mode" => {
                    value("a mode")?;
                }
                "version" => a.version = true,
                n if IGNORED.contains(&n) => {
                    if inline.is_some() {
                        bail!("--{n} takes no value");
                    }
                }
                _ => bail!("option '--{name}' is not supported ({SUPPORTED}); nothing was signed"),
            }
            continue;
        }
        // Short options, combined: the first one that takes a value takes the rest of the
        // argument, or the next argument.
        let flags: Vec<char> = arg[1..].chars().collect();
        let mut k = 0;
        while k < flags.len() {
            let c = flags[k];
            k += 1;
            match c {
                's' => a.sign = true,
                'b' => a.detach = true,
                'a' => a.armor = true,
                'q' | 'v' => {}
                'o' | 'u' => {
                    let rest: String = flags[k..].iter().collect();
                    k = flags.len();
                    let v = if rest.is_empty() {
                        let v = args
                            .get(i)
                            .cloned()
                            .ok_or_else(|| anyhow!("-{c} needs a value"))?;
                        i += 1;
                        v
                    } else {
                        rest
                    };
                    if c == 'o' {
                        a.output = Some(v);
                    } else {
                        a.user = Some(v);
                    }
                }
                other => {
                    bail!("option '-{other}' is not supported ({SUPPORTED}); nothing was signed")
                }
            }
        }
    }
    if inputs.len() > 1 {
        bail!(
            "one input at a time ({} given: {}); nothing was signed",
            inputs.len(),
            inputs.join(" ")
        );
    }
    a.input = inputs.pop().filter(|s| s != "-");
    if a.version {
        return Ok(a);
    }
    if a.clear && a.detach {
        bail!("--clearsign and --detach-sign exclude each other; nothing was signed");
    }
    if !a.clear && !a.detach {
        bail!(
            "only detached (-sb, --detach-sign) and cleartext (--clearsign) signatures are \
             made; nothing was signed"
        );
    }
    if a.user.is_none() {
        bail!(
            "name the key with -u LABEL (a hallmark key label, or its OpenPGP fingerprint, key \
             ID or user ID); nothing was signed"
        );
    }
    Ok(a)
}

/// What called this process: the program's name and the arguments that name existing files
/// (rpmsign's package, a repository's Release). Nothing else of its command line is kept, so
/// a secret there is never recorded.
fn caller() -> Option<serde_json::Value> {
    let ppid = std::os::unix::process::parent_id();
    let raw = std::fs::read(format!("/proc/{ppid}/cmdline")).ok()?;
    let mut parts = raw
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let program = parts.next()?;
    let program = std::path::Path::new(&program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or(program);
    let files: Vec<String> = parts
        .filter(|p| !p.starts_with('-') && std::path::Path::new(p).is_file())
        .take(8)
        .collect();
    Some(serde_json::json!({ "program": program, "files": files }))
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let a = parse(args)?;
    if a.version {
        println!(
            "hallmark-gpg (hallmark {}): a gpg-compatible signing front end; keys stay in \
             hallmark's key store",
            env!("CARGO_PKG_VERSION")
        );
        return Ok(());
    }
    let server = std::env::var("HALLMARK_SERVER").ok();
    let ca = std::env::var_os("HALLMARK_CA").map(PathBuf::from);
    let client = crate::context::client(server.as_deref(), &Default::default(), ca.as_deref())?;
    let label = super::sign_openpgp::resolve_key(&client, a.user.as_deref().unwrap_or_default())?;
    let label = label.as_str();
    let mut meta = serde_json::Map::new();
    meta.insert("tool".into(), "gpg".into());
    meta.insert(
        "openpgp".into(),
        if a.clear { "cleartext" } else { "detached" }.into(),
    );
    if let Some(f) = &a.input {
        if let Some(name) = std::path::Path::new(f).file_name() {
            meta.insert(
                "artifact".into(),
                name.to_string_lossy().into_owned().into(),
            );
        }
    }
    if let Some(c) = caller() {
        meta.insert("caller".into(), c);
    }
    let mut input: Box<dyn Read> = match &a.input {
        Some(f) => Box::new(std::io::BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(f).with_context(|| format!("opening {f}"))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let mode = if a.clear {
        Mode::Clear
    } else {
        Mode::Detached { armor: a.armor }
    };
    let mut out = Vec::new();
    sign(
        &client, label, a.digest, mode, &mut input, &mut out, meta, 600, 5,
    )?;
    match a.output.as_deref() {
        None | Some("-") => {
            let mut o = std::io::stdout().lock();
            o.write_all(&out).context("writing to standard output")?;
            o.flush().context("writing to standard output")?;
        }
        Some(f) => std::fs::write(f, &out).with_context(|| format!("writing {f}"))?,
    }
    Ok(())
}

/// The front end: runs with `args` (without the program name); the exit status.
pub fn main(args: Vec<OsString>) -> i32 {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match run(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("hallmark-gpg: {e:#}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> anyhow::Result<GpgArgs> {
        parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn what_rpmsign_and_repository_scripts_pass() {
        let a = p("--no-verbose --no-armor --no-secmem-warning -u release -sbo /tmp/sig").unwrap();
        assert!(a.sign && a.detach && !a.armor && a.input.is_none());
        assert_eq!(a.output.as_deref(), Some("/tmp/sig"));
        assert_eq!(a.user.as_deref(), Some("release"));
        let a =
            p("--batch --digest-algo=sha512 --local-user=r -abs -o Release.gpg Release").unwrap();
        assert!(a.armor && a.detach);
        assert_eq!(a.digest, Some(HashAlg::Sha512));
        assert_eq!(a.input.as_deref(), Some("Release"));
        let a =
            p("--pinentry-mode loopback -u r --clearsign --output InRelease -- Release").unwrap();
        assert!(a.clear);
        assert_eq!(a.output.as_deref(), Some("InRelease"));
        let a = p("-ur -b -").unwrap();
        assert_eq!(a.user.as_deref(), Some("r"));
        assert!(a.input.is_none());
    }

    #[test]
    fn everything_else_is_refused() {
        for bad in [
            "-u r -sb --encrypt",
            "-u r -e",
            "-u r -sb --homedir /x",
            "-u r -sb --digest-algo SHA1",
            "-u r -s",
            "-sb",
            "-u r -sb a b",
            "-u r --clearsign -b",
            "-u r -sb -o",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
        assert!(p("-u r -sb --encrypt")
            .unwrap_err()
            .to_string()
            .contains("'--encrypt' is not supported"));
    }
}
