//! `make bench`: OpenPGP detached signatures of a 1 GiB file (issue 18). `hallmark-gpg -sbo`
//! (the gpg front end rpmsign runs: it hashes the file and the signature's trailer here, one
//! TLS round trip to a local `hallmark serve` signs the digest with a soft key) against
//! `gpg --detach-sign` with a local key of the same type and the same digest algorithm, in the
//! same run: P-256 with SHA-256 and RSA-3072 with SHA-512. Page cache warmed first; best and
//! median of 3 runs each. Both clients hash on one core; the server's work is one signature.
//! Goal: <= 1.2x gpg's time. Each signature made is checked with gpgv. Prints a markdown
//! table; no assertions. `HALLMARK_BENCH_FILE_MIB` shrinks the file (default 1024).

use std::process::{Command, Stdio};

mod common;
use common::*;

fn main() -> Res<()> {
    let mib: usize = std::env::var("HALLMARK_BENCH_FILE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let ca = BenchCa::init("soft", dir)?;
    ca.add_acme("code-signing,package-signing")?;
    // (label, hallmark algorithm, gpg algorithm, digest, name)
    let kinds = [
        ("bench-p256", "p256", "nistp256", "SHA256", "P-256, SHA-256"),
        (
            "bench-rsa",
            "rsa3072",
            "rsa3072",
            "SHA512",
            "RSA-3072, SHA-512",
        ),
    ];
    for (label, alg, _, _, _) in kinds {
        ca.create_key(label, alg, &["--profile", "package-signing"])?;
        ok(&mut ca.cmd(&[
            "key",
            "openpgp",
            label,
            "--uid",
            "Bench <bench@acme.example>",
        ]))?;
        let keyring = dir.join(format!("{label}.gpg"));
        ok(ca
            .cmd(&["key", "openpgp", label, "--export", "--out"])
            .arg(&keyring))?;
    }
    let token = ca.sign_token()?;
    let root = dir.join("root.pem");
    ca.write_root(&root)?;
    let (_server, api) = ca.serve(Stdio::null())?;

    // gpg's own keys of the same types, without a passphrase.
    let home = dir.join("gnupg");
    std::fs::create_dir_all(&home)?;
    let gpg = || {
        let mut c = Command::new("gpg");
        c.arg("--homedir").arg(&home).args([
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ]);
        c
    };
    for (_, _, galg, _, name) in kinds {
        ok(gpg().args([
            "--quick-gen-key",
            &format!("gpg {name} <{galg}@bench.example>"),
            galg,
            "sign",
            "never",
        ]))?;
    }

    let file = dir.join("artifact.bin");
    page_cached_file(&file, mib)?;
    let sig = dir.join("artifact.bin.sig");
    println!(
        "hallmark-gpg -sbo (hash here, one TLS round trip, soft key on a local hallmark serve) against gpg --detach-sign with a local key, {mib} MiB file in the page cache, 3 runs each; both hash on one core\n"
    );
    println!("| key, digest | gpg best / median (s) | hallmark-gpg best / median (s) | ratio (median) | goal |");
    println!("|---|---|---|---|---|");
    for (label, _, galg, digest, name) in kinds {
        let theirs = timings(3, || {
            let _ = std::fs::remove_file(&sig);
            ok(gpg()
                .args([
                    "--digest-algo",
                    digest,
                    "-u",
                    &format!("{galg}@bench.example"),
                    "--detach-sign",
                    "-o",
                ])
                .arg(&sig)
                .arg(&file))
            .map(|_| ())
        })?;
        let ours = timings(3, || {
            let mut c = Command::new(env!("CARGO_BIN_EXE_hallmark-gpg"));
            c.args(["--batch", "--digest-algo", digest, "-u", label, "-sbo"])
                .arg(&sig)
                .arg(&file)
                .env("HALLMARK_SERVER", &api)
                .env("HALLMARK_CA", &root)
                .env("HALLMARK_TOKEN", &token)
                .env("XDG_CONFIG_HOME", dir.join("xdg"));
            ok(&mut c).map(|_| ())
        })?;
        // What hallmark made verifies over the file with the key's certificate.
        ok(Command::new("gpgv")
            .arg("--keyring")
            .arg(dir.join(format!("{label}.gpg")))
            .arg(&sig)
            .arg(&file))?;
        println!(
            "| {name} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2}x | <= 1.2x |",
            theirs.0,
            theirs.1,
            ours.0,
            ours.1,
            ours.1 / theirs.1
        );
    }
    std::fs::remove_file(&file)?;
    Ok(())
}
