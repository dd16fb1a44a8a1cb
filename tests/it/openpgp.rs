//! OpenPGP signatures from HSM keys, checked by the tools that verify them: `gpgv` and `apt-get`
//! for an APT repository (`Release.gpg`, `InRelease`), `rpmkeys --checksig` for packages signed
//! by `rpmsign` through `hallmark-gpg`. Each verifier also rejects a tampered artifact; the
//! refusals (policy, unknown options, unknown keys, a key without an OpenPGP certificate)
//! record nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

struct Fixture {
    env: SignEnv,
    /// acme, scope sign.
    token: String,
}

impl std::ops::Deref for Fixture {
    type Target = SignEnv;
    fn deref(&self) -> &SignEnv {
        &self.env
    }
}

const UID: &str = "Acme Release <release@acme.example>";

impl Fixture {
    /// A server with KEYS (label, algorithm) under package-signing, each with its OpenPGP
    /// certificate, and `cms-only`, whose policy refuses openpgp.
    fn start(keys: Keys, labels: &[(&'static str, &'static str)]) -> Fixture {
        let labels = labels.to_vec();
        let (env, token) = SignEnv::start(keys, move |ca| {
            for (label, alg) in &labels {
                ca.create_key("acme", label, alg, &["--profile", "package-signing"]);
                let out = run(&mut ca.cmd(&["key", "openpgp", label, "--uid", UID]));
                assert!(out.status.success(), "{}", text_of(&out));
                let text = text_of(&out);
                assert!(
                    text.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----"),
                    "{text}"
                );
                if alg.starts_with('p') {
                    assert!(text.contains("rpm 4.18"), "ECDSA warns about rpm: {text}");
                }
            }
            ca.create_key(
                "acme",
                "cms-only",
                "p256",
                &["--profile", "package-signing"],
            );
            ca.hm(&["key", "openpgp", "cms-only", "--uid", UID]);
            ca.hm(&["key", "policy", "cms-only", "--formats", "cms"]);
            ca.create_key("acme", "no-pgp", "p256", &["--profile", "package-signing"]);
            ca.token(&["--publisher", "acme", "--scopes", "sign", "--name", "ci"])
        });
        Fixture { env, token }
    }

    fn dir(&self) -> &Path {
        self.ca.dir.path()
    }

    /// The key's certificate: armored (KEY.asc) and binary (KEY.gpg, `--export`); their paths.
    fn key_files(&self, label: &str) -> (String, String) {
        let asc = self.path(&format!("{label}.asc"));
        let gpg = self.path(&format!("{label}.gpg"));
        self.ca.hm(&["key", "openpgp", label, "--out", &asc]);
        self.ca
            .hm(&["key", "openpgp", label, "--export", "--out", &gpg]);
        (asc, gpg)
    }

    /// The client's environment for `hallmark-gpg` (no flags: server, root and token come
    /// from HALLMARK_SERVER, HALLMARK_CA and HALLMARK_TOKEN).
    fn client_env(&self, c: &mut Command) {
        c.env("HALLMARK_SERVER", self.api())
            .env("HALLMARK_CA", &self.root)
            .env("HALLMARK_TOKEN", &self.token)
            .env("XDG_CONFIG_HOME", self.path("xdg"));
    }

    fn gpg(&self, args: &[&str], cwd: &Path) -> std::process::Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hallmark-gpg"));
        c.args(args).current_dir(cwd);
        self.client_env(&mut c);
        run(&mut c)
    }
}

/// `openssl dgst -sha256 -verify PUBKEY -signature SIG FILE` in DIR: (verified, output).
fn ecdsa_verify(dir: &Path, pubkey: &str, sig: &str, file: &str) -> (bool, String) {
    let (good, text) = tool_run(
        dir,
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            pubkey,
            "-signature",
            sig,
            file,
        ],
    );
    (good && text.contains("Verified OK"), text)
}

fn write(path: &Path, text: &str) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
}

/// A one-package APT repository (flat, `./`) in DIR: the .deb, Packages and Release.
fn apt_repository(dir: &Path) -> PathBuf {
    let pkg = dir.join("pkg");
    write(
        &pkg.join("DEBIAN/control"),
        "Package: hallmark-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: Acme <r@acme.example>\n\
         Description: a package signed by hallmark\n",
    );
    write(&pkg.join("usr/share/hallmark-hello/hello.txt"), "hello\n");
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    ok(Command::new(tool("dpkg-deb")).args([
        "--build",
        "--root-owner-group",
        &pkg.display().to_string(),
        &repo
            .join("hallmark-hello_1.0_all.deb")
            .display()
            .to_string(),
    ]));
    let packages = ok(Command::new(tool("apt-ftparchive"))
        .args(["packages", "."])
        .current_dir(&repo));
    write(&repo.join("Packages"), &packages);
    let release = ok(Command::new(tool("apt-ftparchive"))
        .args([
            "-o",
            "APT::FTPArchive::Release::Origin=Acme",
            "-o",
            "APT::FTPArchive::Release::Suite=stable",
            "release",
            ".",
        ])
        .current_dir(&repo));
    // Lines that end in spaces and tabs: RFC 9580 §7.1 says they are not signed (gpgv and apt
    // strip them before they hash).
    let release = release.replacen("Suite: stable\n", "Suite: stable \t \n", 1)
        + "Description: packages signed by hallmark\t \n";
    write(&repo.join("Release"), &release);
    repo
}

/// `apt-get ARGS` against only REPO (signed-by KEYRING), with its own state, cache and lists
/// under DIR/apt: the system's apt configuration is untouched.
fn apt_get(dir: &Path, repo: &Path, keyring: &str, args: &[&str]) -> (bool, String) {
    let apt = dir.join("apt");
    for d in [
        "lists/partial",
        "cache/archives/partial",
        "etc/sources.list.d",
    ] {
        std::fs::create_dir_all(apt.join(d)).expect("mkdir");
    }
    let status = apt.join("status");
    if !status.exists() {
        write(&status, "");
    }
    write(
        &apt.join("etc/sources.list"),
        &format!("deb [signed-by={keyring}] file:{} ./\n", repo.display()),
    );
    let o = |k: &str, v: &Path| format!("{k}={}", v.display());
    let opts = [
        o("Dir::Etc::sourcelist", &apt.join("etc/sources.list")),
        o("Dir::Etc::sourceparts", &apt.join("etc/sources.list.d")),
        o("Dir::State::Lists", &apt.join("lists")),
        o("Dir::State::status", &status),
        o("Dir::Cache", &apt.join("cache")),
        "Debug::NoLocking=1".to_string(),
        "APT::Sandbox::User=root".to_string(),
    ];
    let mut c = Command::new(tool("apt-get"));
    for x in &opts {
        c.args(["-o", x]);
    }
    c.args(args).current_dir(dir);
    let out = run(&mut c);
    (out.status.success(), text_of(&out))
}

#[test]
fn apt_repository_signed_by_an_hsm_key_verifies_with_gpgv_and_apt() {
    let f = Fixture::start(Keys::SoftHsm, &[("release", "p256")]);
    let (_, keyring) = f.key_files("release");
    // The key's document carries the certificate.
    let (code, doc) = f.call(None, "/api/v1/keys/release", Some(&f.token), None);
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["openpgp"]["user_id"], UID);
    let fpr = doc["openpgp"]["fingerprint"].as_str().expect("fingerprint");
    // gpg reads the binary export (its exit status is about its missing home keyring).
    let shown = text_of(&run(Command::new(tool("gpg"))
        .args(["--homedir", &f.path("gnupg-show"), "--show-keys", &keyring])
        .env("GNUPGHOME", f.path("gnupg-show"))));
    assert!(shown.contains(fpr) && shown.contains(UID), "{shown}");

    let repo = apt_repository(f.dir());
    let before = f.recorded();
    // Release.gpg with `hallmark sign openpgp --armor`, InRelease with `hallmark-gpg --clearsign`.
    let release = repo.join("Release").display().to_string();
    let out = run(&mut f.sign_cmd(
        &f.token,
        "openpgp",
        &release,
        "release",
        &[
            "--armor",
            "--out",
            &repo.join("Release.gpg").display().to_string(),
        ],
        &[],
    ));
    assert!(out.status.success(), "{}", text_of(&out));
    // -u by the long key ID, as repository scripts often name it.
    let key_id = format!("0x{}", &fpr[fpr.len() - 16..]);
    let out = f.gpg(
        &[
            "--batch",
            "-u",
            &key_id,
            "--clearsign",
            "-o",
            "InRelease",
            "Release",
        ],
        &repo,
    );
    assert!(out.status.success(), "{}", text_of(&out));
    assert_eq!(f.recorded(), before + 2);
    let signed = std::fs::read_to_string(repo.join("Release.gpg")).expect("Release.gpg");
    assert!(
        signed.starts_with("-----BEGIN PGP SIGNATURE-----"),
        "{signed}"
    );
    let inrelease = std::fs::read_to_string(repo.join("InRelease")).expect("InRelease");
    assert!(
        inrelease.starts_with("-----BEGIN PGP SIGNED MESSAGE-----"),
        "{inrelease}"
    );

    let gpgv = |args: &[&str]| -> (bool, String) {
        let mut a = vec!["--keyring", keyring.as_str()];
        a.extend_from_slice(args);
        tool_run(&repo, "gpgv", &a)
    };
    let (good, text) = gpgv(&["Release.gpg", "Release"]);
    assert!(good && text.contains("Good signature"), "{text}");
    let (good, text) = gpgv(&["InRelease"]);
    assert!(good && text.contains("Good signature"), "{text}");
    // The lines keep their trailing white space in the text.
    assert!(inrelease.contains("Suite: stable \t \n"), "{inrelease}");
    // `hallmark sign openpgp --clearsign` makes the same kind of message.
    let cleartext = repo.join("InRelease.cli").display().to_string();
    let out = run(&mut f.sign_cmd(
        &f.token,
        "openpgp",
        &release,
        "release",
        &["--clearsign", "--out", &cleartext],
        &[],
    ));
    assert!(out.status.success(), "{}", text_of(&out));
    let (good, text) = gpgv(&["InRelease.cli"]);
    assert!(good && text.contains("Good signature"), "{text}");
    std::fs::remove_file(&cleartext).expect("rm");

    // apt takes the repository and fetches the package.
    let (good, text) = apt_get(f.dir(), &repo, &keyring, &["update"]);
    assert!(good, "apt-get update: {text}");
    assert!(
        !text.contains("NO_PUBKEY") && !text.contains("not signed"),
        "{text}"
    );
    let (good, text) = apt_get(f.dir(), &repo, &keyring, &["download", "hallmark-hello"]);
    assert!(good, "apt-get download: {text}");
    assert!(
        f.dir().join("hallmark-hello_1.0_all.deb").exists(),
        "{text}"
    );

    // A tampered Release: gpgv refuses both signatures and apt refuses the repository.
    let tampered = std::fs::read_to_string(repo.join("Release"))
        .expect("Release")
        .replace("Origin: Acme", "Origin: Evil");
    std::fs::write(repo.join("Release"), &tampered).expect("tamper");
    std::fs::write(
        repo.join("InRelease"),
        inrelease.replace("Origin: Acme", "Origin: Evil"),
    )
    .expect("tamper");
    let (good, text) = gpgv(&["Release.gpg", "Release"]);
    assert!(!good && text.contains("BAD signature"), "{text}");
    let (good, text) = gpgv(&["InRelease"]);
    assert!(!good && text.contains("BAD signature"), "{text}");
    std::fs::remove_dir_all(f.dir().join("apt/lists")).expect("clear lists");
    let (good, text) = apt_get(f.dir(), &repo, &keyring, &["update"]);
    assert!(!good, "apt-get update took a tampered repository: {text}");
    assert!(
        text.contains("BADSIG") || text.contains("not signed") || text.contains("invalid"),
        "{text}"
    );
}

/// A minimal noarch package built with rpmbuild in DIR; its path.
fn rpm_package(dir: &Path) -> PathBuf {
    let top = dir.join("rpmbuild");
    write(
        &top.join("SPECS/hello.spec"),
        "Name: hallmark-hello\nVersion: 1.0\nRelease: 1\nSummary: signed by hallmark\n\
         License: MIT\nBuildArch: noarch\n\n%description\nA package signed by hallmark.\n\n\
         %install\nmkdir -p %{buildroot}/usr/share/hallmark-hello\n\
         echo hello > %{buildroot}/usr/share/hallmark-hello/hello.txt\n\n\
         %files\n/usr/share/hallmark-hello/hello.txt\n",
    );
    ok(Command::new(tool("rpmbuild"))
        .args([
            "--define",
            &format!("_topdir {}", top.display()),
            "--define",
            "_build_id_links none",
            "-bb",
            &top.join("SPECS/hello.spec").display().to_string(),
        ])
        .env("HOME", dir));
    top.join("RPMS/noarch/hallmark-hello-1.0-1.noarch.rpm")
}

#[test]
fn rpmsign_through_hallmark_gpg_with_rsa_and_ed25519_keys() {
    let f = Fixture::start(
        Keys::SoftHsm,
        &[("release-rsa", "rsa3072"), ("release-ed", "ed25519")],
    );
    let built = rpm_package(f.dir());
    for (label, expect) in [
        ("release-rsa", "RSA/SHA512 Signature"),
        ("release-ed", "EdDSA/SHA256 Signature"),
    ] {
        let pkg = f.path(&format!("{label}.rpm"));
        std::fs::copy(&built, &pkg).expect("copy");
        let before = f.recorded();
        // rpm configurations name the key as gpg knows it: here by label, and by the OpenPGP
        // fingerprint.
        let name = if label == "release-ed" {
            let (_, doc) = f.call(None, &format!("/api/v1/keys/{label}"), Some(&f.token), None);
            doc["openpgp"]["fingerprint"]
                .as_str()
                .expect("fingerprint")
                .to_string()
        } else {
            label.to_string()
        };
        let mut c = Command::new(tool("rpmsign"));
        c.args([
            "--define",
            &format!("%__gpg {}", env!("CARGO_BIN_EXE_hallmark-gpg")),
            "--define",
            &format!("%_gpg_name {name}"),
            "--addsign",
            &pkg,
        ])
        .env("HOME", f.dir());
        f.client_env(&mut c);
        let out = run(&mut c);
        assert!(out.status.success(), "rpmsign: {}", text_of(&out));
        assert!(
            f.recorded() > before,
            "rpmsign signed nothing through hallmark"
        );

        let (asc, _) = f.key_files(label);
        let db = f.path(&format!("rpmdb-{label}"));
        std::fs::create_dir_all(&db).expect("mkdir");
        ok(Command::new(tool("rpmkeys")).args(["--dbpath", &db, "--import", &asc]));
        let check = |file: &str| {
            let out = run(Command::new(tool("rpmkeys")).args([
                "--dbpath",
                &db,
                "--checksig",
                "-v",
                file,
            ]));
            (out.status.success(), text_of(&out))
        };
        let (good, text) = check(&pkg);
        assert!(good, "{text}");
        assert!(
            text.contains(&format!("Header V4 {expect}")) && text.contains(": OK"),
            "{text}"
        );
        assert!(!text.contains("NOKEY") && !text.contains("BAD"), "{text}");

        // The record names rpmsign and the package.
        let list =
            f.ca.hm(&["--output", "json", "signature", "list", "--key", label]);
        let v: serde_json::Value = serde_json::from_str(&list).expect("json");
        let rec = &v["items"][0];
        assert_eq!(rec["format"], "openpgp", "{rec}");
        assert_eq!(rec["metadata"]["caller"]["program"], "rpmsign", "{rec}");
        assert!(
            rec["metadata"]["caller"]["files"]
                .to_string()
                .contains(&format!("{label}.rpm")),
            "{rec}"
        );

        // A changed payload byte fails.
        let mut bytes = std::fs::read(&pkg).expect("read");
        let n = bytes.len();
        bytes[n - 20] ^= 0x01;
        let bad = f.path(&format!("{label}-tampered.rpm"));
        std::fs::write(&bad, &bytes).expect("write");
        let (good, text) = check(&bad);
        assert!(!good, "a tampered package passed: {text}");
    }
}

#[test]
fn refusals_sign_nothing() {
    let f = Fixture::start(Keys::Soft, &[("release", "rsa3072")]);
    let dir = f.dir().to_path_buf();
    write(&dir.join("data"), "some data\n");
    let before = f.recorded();
    let refused = |args: &[&str], why: &str| {
        let out = f.gpg(args, &dir);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text_of(&out));
        let text = text_of(&out);
        assert!(text.contains(why), "{args:?}: {text}");
        assert!(!dir.join("out.sig").exists(), "{args:?} wrote a signature");
    };
    refused(
        &["-u", "release", "-sb", "--encrypt", "-o", "out.sig", "data"],
        "'--encrypt' is not supported",
    );
    refused(
        &[
            "-u",
            "release",
            "-sb",
            "--homedir",
            "/tmp",
            "-o",
            "out.sig",
            "data",
        ],
        "'--homedir' is not supported",
    );
    refused(
        &[
            "-u",
            "release",
            "-sbo",
            "out.sig",
            "--digest-algo",
            "SHA1",
            "data",
        ],
        "SHA-1",
    );
    refused(
        &["-u", "nosuch", "-sbo", "out.sig", "data"],
        "no key 'nosuch'",
    );
    refused(
        &["-u", "cms-only", "-sbo", "out.sig", "data"],
        "does not sign format 'openpgp'",
    );
    refused(
        &["-u", "no-pgp", "-sbo", "out.sig", "data"],
        "has no OpenPGP certificate",
    );
    refused(&["-sbo", "out.sig", "data"], "-u LABEL");
    refused(
        &["-u", "Acme Release", "-sbo", "out.sig", "data"],
        "names several keys",
    );
    refused(
        &["-u", "0xDEADBEEFDEADBEEF", "-sbo", "out.sig", "data"],
        "no key '0xDEADBEEFDEADBEEF'",
    );
    // GET /api/v1/keys lists what this token may use.
    let (code, v) = f.call(None, "/api/v1/keys", Some(&f.token), None);
    assert_eq!(code, 200, "{v}");
    let labels: Vec<&str> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|k| k["label"].as_str())
        .collect();
    assert_eq!(labels, ["cms-only", "no-pgp", "release"], "{v}");
    assert_eq!(f.recorded(), before, "a refusal recorded a signature");

    // The same through the API: a key without a certificate is 409, nothing recorded.
    let body = serde_json::json!({
        "key": "no-pgp", "digest": "00".repeat(32), "digest_algorithm": "sha256", "format": "openpgp",
    });
    let (code, v) = f.call(
        Some("POST"),
        "/api/v1/signatures",
        Some(&f.token),
        Some(&body.to_string()),
    );
    assert_eq!(code, 409, "{v}");
    assert_eq!(f.recorded(), before);

    // Image payloads the server cannot vouch for are 400: not JSON, an unknown type, no
    // payload, a trailer on another format, a simple-signing payload without its trailer.
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let simple = r#"{"critical":{"identity":{"docker-reference":"r.example/app:v1"},"image":{"docker-manifest-digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"},"type":"atomic container signature"},"optional":null}"#;
    for (body, why) in [
        (serde_json::json!({"content": b64("not json")}), "not JSON"),
        (
            serde_json::json!({"content": b64(&simple.replace("atomic", "other"))}),
            "neither",
        ),
        (serde_json::json!({}), "needs content"),
        (
            serde_json::json!({"content": b64(simple)}),
            "send openpgp_trailer",
        ),
        (
            serde_json::json!({"format": "openpgp", "openpgp_trailer": "04"}),
            "format image only",
        ),
        (
            serde_json::json!({"content": b64(simple), "openpgp_trailer": "zz"}),
            "hex",
        ),
        (
            serde_json::json!({"content": b64(simple), "openpgp_trailer": "0400080a0000"}),
            "trailer",
        ),
    ] {
        let mut req = serde_json::json!({
            "key": "release", "digest": "00".repeat(32), "digest_algorithm": "sha256", "format": "image",
        });
        for (k, v) in body.as_object().expect("object") {
            req[k] = v.clone();
        }
        let (code, v) = f.call(
            Some("POST"),
            "/api/v1/signatures",
            Some(&f.token),
            Some(&req.to_string()),
        );
        assert_eq!(code, 400, "{req}: {v}");
        assert!(v["detail"].to_string().contains(why), "{req}: {v}");
    }
    // The CLI refuses a bad image reference and an unknown key before anything is signed.
    let out = run(&mut f.sign_cmd(
        &f.token,
        "image",
        "not a reference",
        "release",
        &["--lookaside", "x"],
        &[],
    ));
    assert!(!out.status.success());
    assert!(
        text_of(&out).contains("is not an image reference"),
        "{}",
        text_of(&out)
    );
    let out = run(&mut f.ca.cmd(&["key", "openpgp", "nosuch", "--uid", UID]));
    assert!(!out.status.success());
    assert!(
        text_of(&out).contains("key 'nosuch' was not found"),
        "{}",
        text_of(&out)
    );
    let out = run(&mut f
        .ca
        .cmd(&["key", "openpgp", "no-pgp", "--uid", "two\nlines"]));
    assert!(text_of(&out).contains("one line"), "{}", text_of(&out));
    assert_eq!(f.recorded(), before);

    // A second `key openpgp` with another user ID is refused; the first stays.
    let out = run(&mut f
        .ca
        .cmd(&["key", "openpgp", "release", "--uid", "Other <o@x>"]));
    assert!(!out.status.success());
    assert!(
        text_of(&out).contains("already has an OpenPGP certificate"),
        "{}",
        text_of(&out)
    );
    let (_, doc) = f.call(None, "/api/v1/keys/release", Some(&f.token), None);
    assert_eq!(doc["openpgp"]["user_id"], UID);

    // A good one for contrast: detached binary over standard input, verified by gpgv.
    let (_, keyring) = f.key_files("release");
    let mut c = Command::new(env!("CARGO_BIN_EXE_hallmark-gpg"));
    c.args([
        "--no-verbose",
        "--no-armor",
        "--no-secmem-warning",
        "-u",
        "release",
        "-sbo",
        "good.sig",
    ])
    .current_dir(&dir)
    .stdin(std::fs::File::open(dir.join("data")).expect("open"));
    f.client_env(&mut c);
    let out = run(&mut c);
    assert!(out.status.success(), "{}", text_of(&out));
    let (good, text) = tool_run(&dir, "gpgv", &["--keyring", &keyring, "good.sig", "data"]);
    assert!(good, "{text}");
    assert_eq!(f.recorded(), before + 1);
}

/// Debian's docker-registry on 127.0.0.1, storing under DIR; stopped when dropped.
struct Registry {
    child: std::process::Child,
    addr: String,
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        Registry::start_with(dir, "")
    }

    /// With EXTRA appended to the configuration (TLS under `http:`, then `auth:`).
    fn start_with(dir: &Path, extra: &str) -> Registry {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("registry.yml");
        write(
            &config,
            &format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n{extra}",
                dir.join("registry-data").display()
            ),
        );
        let child = Command::new(tool("docker-registry"))
            .args(["serve", &config.display().to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "docker-registry did not listen on {addr}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Registry { child, addr }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(hallmark::keys::HashAlg::Sha256.digest(b))
}

/// A one-layer OCI image layout in DIR/NAME (a file with TEXT), tagged TAG.
fn oci_layout(dir: &Path, name: &str, tag: &str, text: &str) -> PathBuf {
    let root = dir.join(format!("{name}-rootfs"));
    write(&root.join("hello.txt"), text);
    let tar = dir.join(format!("{name}-layer.tar"));
    ok(Command::new(tool("tar")).args([
        "--sort=name",
        "--mtime=@0",
        "--owner=0",
        "--group=0",
        "-cf",
        &tar.display().to_string(),
        "-C",
        &root.display().to_string(),
        ".",
    ]));
    let layer = std::fs::read(&tar).expect("layer");
    let layout = dir.join(name);
    let blob = |bytes: &[u8]| -> String {
        let h = sha256_hex(bytes);
        let p = layout.join("blobs/sha256").join(&h);
        std::fs::create_dir_all(p.parent().unwrap()).expect("mkdir");
        std::fs::write(&p, bytes).expect("blob");
        format!("sha256:{h}")
    };
    let layer_digest = blob(&layer);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    })
    .to_string();
    let config_digest = blob(config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": config_digest},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": layer.len(), "digest": layer_digest}],
    })
    .to_string();
    let manifest_digest = blob(manifest.as_bytes());
    write(
        &layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    write(
        &layout.join("index.json"),
        &serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "size": manifest.len(), "digest": manifest_digest,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }],
        })
        .to_string(),
    );
    layout
}

#[test]
fn container_images_signed_for_skopeo_and_cosign() {
    let f = Fixture::start(Keys::Soft, &[("release", "p256")]);
    let dir = f.dir().to_path_buf();
    let reg = Registry::start(&dir);
    let skopeo = |args: &[&str]| -> (bool, String) { tool_run(&dir, "skopeo", args) };
    for (name, text) in [("v1", "one\n"), ("v2", "two\n")] {
        let layout = oci_layout(&dir, name, name, text);
        let (good, out) = skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:{name}", layout.display()),
            &format!("docker://{}/app:{name}", reg.addr),
        ]);
        assert!(good, "skopeo push: {out}");
    }
    let digest_of = |tag: &str| -> String {
        let (good, out) = skopeo(&[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{}/app:{tag}", reg.addr),
        ]);
        assert!(good, "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("inspect json");
        v["Digest"].as_str().expect("Digest").to_string()
    };
    let d1 = digest_of("v1");
    let d2 = digest_of("v2");

    // Sign app:v1: simple signing into the lookaside directory, and cosign in the registry.
    let lookaside = f.path("lookaside");
    let before = f.recorded();
    let image = format!("{}/app:v1", reg.addr);
    let out = run(&mut f.sign_cmd(
        &f.token,
        "image",
        &image,
        "release",
        &["--lookaside", &lookaside, "--registry-plain-http"],
        &[],
    ));
    assert!(out.status.success(), "{}", text_of(&out));
    assert_eq!(f.recorded(), before + 2, "two signatures recorded");
    let list =
        f.ca.hm(&["--output", "json", "signature", "list", "--key", "release"]);
    let v: serde_json::Value = serde_json::from_str(&list).expect("json");
    for rec in v["items"].as_array().expect("items").iter().take(2) {
        assert_eq!(rec["format"], "image", "{rec}");
        assert_eq!(rec["metadata"]["_hallmark"]["image"], d1.as_str(), "{rec}");
    }
    let sig_file = Path::new(&lookaside)
        .join(format!("app@{}", d1.replacen(':', "=", 1)))
        .join("signature-1");
    assert!(
        sig_file.exists(),
        "no simple signature at {}",
        sig_file.display()
    );

    // skopeo pulls it under a signedBy policy with the key's OpenPGP certificate.
    let (_, keyring) = f.key_files("release");
    let policy = f.path("policy.json");
    write(
        Path::new(&policy),
        &serde_json::json!({
            "default": [{"type": "reject"}],
            "transports": {
                "docker": {reg.addr.as_str(): [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": keyring}]},
                "oci": {"": [{"type": "insecureAcceptAnything"}]},
            },
        })
        .to_string(),
    );
    let regd = f.path("registries.d");
    write(
        &Path::new(&regd).join("hallmark.yaml"),
        &format!(
            "docker:\n  {}:\n    lookaside: file://{lookaside}\n",
            reg.addr
        ),
    );
    let pull = |tag: &str| -> (bool, String) {
        skopeo(&[
            "--policy",
            &policy,
            "--registries.d",
            &regd,
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{}/app:{tag}", reg.addr),
            &format!("dir:{}", dir.join(format!("pulled-{tag}")).display()),
        ])
    };
    let (good, text) = pull("v1");
    assert!(good, "skopeo refused the signed image: {text}");
    // An unsigned image is refused...
    let (good, text) = pull("v2");
    assert!(!good, "skopeo pulled an unsigned image: {text}");
    assert!(text.contains("no signature exists"), "{text}");
    // ...and so is one whose signature was made for another digest.
    let other = Path::new(&lookaside)
        .join(format!("app@{}", d2.replacen(':', "=", 1)))
        .join("signature-1");
    std::fs::create_dir_all(other.parent().unwrap()).expect("mkdir");
    std::fs::copy(&sig_file, &other).expect("copy");
    let (good, text) = pull("v2");
    assert!(!good, "skopeo took v1's signature for v2: {text}");
    assert!(text.contains("does not match"), "{text}");

    // The cosign signature: the .sig manifest, its payload names the digest, and its
    // annotation verifies over the payload with the key's certificate.
    let hex1 = d1.trim_start_matches("sha256:");
    let (code, body, _) = curl(
        &format!("http://{}/v2/app/manifests/sha256-{hex1}.sig", reg.addr),
        &["-H", "Accept: application/vnd.oci.image.manifest.v1+json"],
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let manifest: serde_json::Value = serde_json::from_slice(&body).expect("manifest");
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let (code, payload, _) = curl(
        &format!(
            "http://{}/v2/app/blobs/{}",
            reg.addr,
            layer["digest"].as_str().expect("digest")
        ),
        &["-L"],
    );
    assert_eq!(code, 200);
    let p: serde_json::Value = serde_json::from_slice(&payload).expect("payload");
    assert_eq!(
        p["critical"]["image"]["docker-manifest-digest"],
        d1.as_str()
    );
    assert_eq!(p["critical"]["type"], "cosign container image signature");
    use base64::Engine as _;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(
            layer["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .expect("annotation"),
        )
        .expect("base64");
    std::fs::write(dir.join("cosign.sig"), &sig).expect("write");
    std::fs::write(dir.join("cosign.payload"), &payload).expect("write");
    let (_, pubkey) = f.cert_and_public_key("release");
    let verify = |file: &str| ecdsa_verify(&dir, &pubkey, "cosign.sig", file);
    let (good, text) = verify("cosign.payload");
    assert!(good && text.contains("Verified OK"), "{text}");
    let mut tampered = payload.clone();
    let n = tampered.len();
    tampered[n / 2] ^= 0x01;
    std::fs::write(dir.join("cosign.tampered"), &tampered).expect("write");
    let (good, text) = verify("cosign.tampered");
    assert!(!good, "a tampered payload verified: {text}");

    // Refusals, nothing signed: a digest the registry does not have; through the API, a digest
    // that is not the payload's.
    let before = f.recorded();
    let out = run(&mut f.sign_cmd(
        &f.token,
        "image",
        &format!("{}/app@sha256:{}", reg.addr, "0".repeat(64)),
        "release",
        &["--lookaside", &lookaside, "--registry-plain-http"],
        &[],
    ));
    assert!(!out.status.success());
    assert!(text_of(&out).contains("has no image"), "{}", text_of(&out));
    let body = serde_json::json!({
        "key": "release", "digest": "00".repeat(32), "digest_algorithm": "sha256", "format": "image",
        "content": base64::engine::general_purpose::STANDARD.encode(&payload),
    });
    let (code, v) = f.call(
        Some("POST"),
        "/api/v1/signatures",
        Some(&f.token),
        Some(&body.to_string()),
    );
    assert_eq!(code, 400, "{v}");
    assert!(
        v["detail"]
            .to_string()
            .contains("not the sha256 of the image signature payload"),
        "{v}"
    );
    // A key whose policy does not allow images.
    let (code, v) = f.call(
        Some("POST"),
        "/api/v1/signatures",
        Some(&f.token),
        Some(&serde_json::json!({
            "key": "cms-only", "digest": sha256_hex(&payload), "digest_algorithm": "sha256", "format": "image",
            "content": base64::engine::general_purpose::STANDARD.encode(&payload),
        }).to_string()),
    );
    assert_eq!(code, 403, "{v}");
    assert_eq!(f.recorded(), before, "a refusal recorded a signature");
}

#[test]
fn approvals_gate_gpg_and_image_signatures() {
    let f = Fixture::start(Keys::Soft, &[("gated", "p256")]);
    f.ca.hm(&[
        "key",
        "policy",
        "gated",
        "--approvals",
        "1",
        "--approvers",
        "security-lead",
    ]);
    let lead = f.ca.token(&[
        "--publisher",
        "acme",
        "--scopes",
        "approve",
        "--name",
        "security-lead",
    ]);
    let dir = f.dir().to_path_buf();
    write(&dir.join("Release"), "Origin: Acme\nSuite: stable\n");
    let (_, keyring) = f.key_files("gated");

    // hallmark-gpg waits for the approval, then writes the signature gpgv accepts.
    let mut c = Command::new(env!("CARGO_BIN_EXE_hallmark-gpg"));
    c.args(["-u", "gated", "--clearsign", "-o", "InRelease", "Release"])
        .current_dir(&dir)
        .env("HALLMARK_APPROVAL_POLL_SECS", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    f.client_env(&mut c);
    let child = c.spawn().expect("hallmark-gpg");
    let id = f.pending_request();
    let out = f.approve(id, &lead);
    assert!(out.status.success(), "{}", text_of(&out));
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", text_of(&out));
    let (good, text) = tool_run(&dir, "gpgv", &["--keyring", &keyring, "InRelease"]);
    assert!(good && text.contains("Good signature"), "{text}");

    // An image payload waits too, and is checked again when the approval signs it.
    use base64::Engine as _;
    let payload = serde_json::json!({
        "critical": {
            "identity": {"docker-reference": "registry.example/app"},
            "image": {"docker-manifest-digest": format!("sha256:{}", "ab".repeat(32))},
            "type": "cosign container image signature",
        },
        "optional": null,
    })
    .to_string();
    let body = serde_json::json!({
        "key": "gated", "digest": sha256_hex(payload.as_bytes()), "digest_algorithm": "sha256",
        "format": "image", "content": base64::engine::general_purpose::STANDARD.encode(&payload),
    });
    let (code, v) = f.call(
        Some("POST"),
        "/api/v1/signatures",
        Some(&f.token),
        Some(&body.to_string()),
    );
    assert_eq!(code, 202, "{v}");
    let id = v["request_id"].as_i64().expect("request id");
    let out = f.approve(id, &lead);
    assert!(out.status.success(), "{}", text_of(&out));
    let (code, v) = f.call(
        None,
        &format!("/api/v1/signatures/requests/{id}"),
        Some(&f.token),
        None,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "signed", "{v}");
    let sig = base64::engine::general_purpose::STANDARD
        .decode(v["signature"].as_str().expect("signature"))
        .expect("base64");
    std::fs::write(dir.join("image.sig"), &sig).expect("write");
    std::fs::write(dir.join("image.payload"), &payload).expect("write");
    let (_, pubkey) = f.cert_and_public_key("gated");
    let (good, text) = ecdsa_verify(&dir, &pubkey, "image.sig", "image.payload");
    assert!(good && text.contains("Verified OK"), "{text}");
    let list =
        f.ca.hm(&["--output", "json", "signature", "list", "--key", "gated"]);
    let v: serde_json::Value = serde_json::from_str(&list).expect("json");
    assert_eq!(v["items"][0]["format"], "image", "{v}");
    assert_eq!(
        v["items"][0]["metadata"]["_hallmark"]["reference"], "registry.example/app",
        "{v}"
    );
    assert_eq!(v["items"][0]["approvers"], "security-lead", "{v}");
}

#[test]
fn a_registry_over_tls_with_basic_authentication() {
    let f = Fixture::start(Keys::Soft, &[("release", "p256")]);
    let dir = f.dir().to_path_buf();
    // The registry's certificate, for 127.0.0.1, from hallmark's own tls-ca (bundle: leaf then
    // tls-ca; the root is what --registry-ca names), and an htpasswd user.
    let csr = make_csr(
        &dir,
        "registry",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=127.0.0.1",
        &["-addext", "subjectAltName=IP:127.0.0.1"],
    );
    f.ca.hm(&[
        "issue",
        "--profile",
        "tls-server",
        "--publisher",
        "acme",
        "--csr",
        &csr.display().to_string(),
        "--out",
        &dir.join("registry.crt").display().to_string(),
        "--name",
        "127.0.0.1",
    ]);
    let htpasswd = ok(Command::new(tool("htpasswd")).args(["-Bbn", "ci", "registry secret"]));
    write(&dir.join("htpasswd"), &htpasswd);
    let reg = Registry::start_with(
        &dir,
        &format!(
            "  tls:\n    certificate: {0}/registry.crt\n    key: {0}/registry.key\nauth:\n  htpasswd:\n    realm: hallmark-test\n    path: {0}/htpasswd\n",
            dir.display()
        ),
    );
    let layout = oci_layout(&dir, "v1", "v1", "one\n");
    let (good, out) = tool_run(
        &dir,
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "ci:registry secret",
            &format!("oci:{}:v1", layout.display()),
            &format!("docker://{}/app:v1", reg.addr),
        ],
    );
    assert!(good, "skopeo push: {out}");
    let image = format!("{}/app:v1", reg.addr);
    let sign = |extra: &[&str]| {
        let mut opts = vec!["--registry-ca", f.root.as_str()];
        opts.extend_from_slice(extra);
        let mut c = f.sign_cmd(&f.token, "image", &image, "release", &opts, &[]);
        c.current_dir(&dir)
            .env("REGISTRY_PASSWORD", "registry secret");
        run(&mut c)
    };
    let before = f.recorded();
    // Without credentials the registry says 401: nothing is signed.
    let out = sign(&[]);
    assert!(!out.status.success(), "{}", text_of(&out));
    assert!(
        text_of(&out).contains("Not authorized"),
        "{}",
        text_of(&out)
    );
    assert_eq!(f.recorded(), before);
    // With them (the password from a variable, never a flag), the cosign signature is pushed
    // over TLS to a registry whose certificate --registry-ca names.
    let out = sign(&[
        "--registry-user",
        "ci",
        "--registry-password-env",
        "REGISTRY_PASSWORD",
    ]);
    assert!(out.status.success(), "{}", text_of(&out));
    assert!(
        !text_of(&out).contains("registry secret"),
        "the password was printed"
    );
    assert_eq!(f.recorded(), before + 1);
    let (good, text) = tool_run(
        &dir,
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            "ci:registry secret",
            &format!("docker://{}/app:v1", reg.addr),
        ],
    );
    assert!(good, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("inspect");
    let digest = v["Digest"].as_str().expect("Digest");
    let (code, body, _) = curl(
        &format!(
            "https://{}/v2/app/manifests/sha256-{}.sig",
            reg.addr,
            digest.trim_start_matches("sha256:")
        ),
        &[
            "--cacert",
            &dir.join("registry.crt").display().to_string(),
            "-u",
            "ci:registry secret",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ],
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    // A registry certificate nobody vouched for is refused.
    let mut c = f.sign_cmd(
        &f.token,
        "image",
        &image,
        "release",
        &[
            "--registry-user",
            "ci",
            "--registry-password-env",
            "REGISTRY_PASSWORD",
        ],
        &[],
    );
    c.current_dir(&dir)
        .env("REGISTRY_PASSWORD", "registry secret");
    let out = run(&mut c);
    assert!(!out.status.success(), "{}", text_of(&out));
    assert!(text_of(&out).contains("UnknownIssuer"), "{}", text_of(&out));
    assert_eq!(f.recorded(), before + 1);
}

#[test]
fn reprepro_signs_its_repository_through_the_example_hook() {
    let f = Fixture::start(Keys::Soft, &[("release", "p256")]);
    let dir = f.dir().to_path_buf();
    let (_, keyring) = f.key_files("release");
    let base = dir.join("reprepro");
    let hook = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/reprepro-sign");
    write(
        &base.join("conf/distributions"),
        &format!(
            "Codename: stable\nComponents: main\nArchitectures: amd64\nSignWith: ! {}\n",
            hook.display()
        ),
    );
    // A .deb to include.
    let pkg = dir.join("pkg");
    write(
        &pkg.join("DEBIAN/control"),
        "Package: hallmark-hello\nVersion: 1.0\nSection: misc\nPriority: optional\nArchitecture: all\nMaintainer: Acme <r@acme.example>\n\
         Description: a package signed by hallmark\n",
    );
    let deb = dir.join("hallmark-hello_1.0_all.deb");
    ok(Command::new(tool("dpkg-deb")).args([
        "--build",
        "--root-owner-group",
        &pkg.display().to_string(),
        &deb.display().to_string(),
    ]));
    let before = f.recorded();
    let mut c = Command::new(tool("reprepro"));
    c.args([
        "-b",
        &base.display().to_string(),
        "includedeb",
        "stable",
        &deb.display().to_string(),
    ])
    .env("HALLMARK_GPG_KEY", "release")
    .env("HALLMARK_GPG", env!("CARGO_BIN_EXE_hallmark-gpg"));
    f.client_env(&mut c);
    let out = run(&mut c);
    assert!(out.status.success(), "reprepro: {}", text_of(&out));
    assert_eq!(f.recorded(), before + 2, "InRelease and Release.gpg");
    let stable = base.join("dists/stable");
    let (good, text) = tool_run(&stable, "gpgv", &["--keyring", &keyring, "InRelease"]);
    assert!(good && text.contains("Good signature"), "{text}");
    let (good, text) = tool_run(
        &stable,
        "gpgv",
        &["--keyring", &keyring, "Release.gpg", "Release"],
    );
    assert!(good && text.contains("Good signature"), "{text}");
    let signed = std::fs::read_to_string(stable.join("Release.gpg")).expect("Release.gpg");
    assert!(
        signed.starts_with("-----BEGIN PGP SIGNATURE-----"),
        "{signed}"
    );
}

/// cosign signatures with RSA and Ed25519 keys (cosign verifies both, as sigstore's verifiers
/// load them: RSA PKCS#1 v1.5 over the payload's SHA-256, Ed25519 over the payload itself),
/// checked with openssl the same way; both land in the image's one `.sig` manifest.
#[test]
fn cosign_signatures_with_rsa_and_ed25519_keys() {
    use base64::Engine as _;
    let f = Fixture::start(Keys::Soft, &[("rsa", "rsa3072"), ("ed", "ed25519")]);
    let dir = f.dir().to_path_buf();
    let reg = Registry::start(&dir);
    let layout = oci_layout(&dir, "v1", "v1", "one\n");
    let (good, out) = tool_run(
        &dir,
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", layout.display()),
            &format!("docker://{}/app:v1", reg.addr),
        ],
    );
    assert!(good, "skopeo push: {out}");
    let before = f.recorded();
    let lookaside = f.path("lookaside");
    for key in ["rsa", "ed"] {
        let out = run(&mut f.sign_cmd(
            &f.token,
            "image",
            &format!("{}/app:v1", reg.addr),
            key,
            &["--lookaside", &lookaside, "--registry-plain-http"],
            &[],
        ));
        assert!(out.status.success(), "{key}: {}", text_of(&out));
    }
    assert_eq!(f.recorded(), before + 4, "simple signing and cosign, twice");
    let (code, body, _) = curl(
        &format!("http://{}/v2/app/manifests/v1", reg.addr),
        &[
            "-I",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ],
    );
    assert_eq!(code, 200);
    let head = String::from_utf8_lossy(&body).to_ascii_lowercase();
    let digest = head
        .lines()
        .find_map(|l| l.strip_prefix("docker-content-digest: "))
        .expect("digest header")
        .trim()
        .to_string();
    let hex = digest.trim_start_matches("sha256:");
    let (code, body, _) = curl(
        &format!("http://{}/v2/app/manifests/sha256-{hex}.sig", reg.addr),
        &["-H", "Accept: application/vnd.oci.image.manifest.v1+json"],
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let manifest: serde_json::Value = serde_json::from_slice(&body).expect("manifest");
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 2, "{manifest}");
    for (key, layer) in ["rsa", "ed"].into_iter().zip(layers) {
        let (code, payload, _) = curl(
            &format!(
                "http://{}/v2/app/blobs/{}",
                reg.addr,
                layer["digest"].as_str().expect("digest")
            ),
            &["-L"],
        );
        assert_eq!(code, 200);
        let sig = base64::engine::general_purpose::STANDARD
            .decode(
                layer["annotations"]["dev.cosignproject.cosign/signature"]
                    .as_str()
                    .expect("annotation"),
            )
            .expect("base64");
        let (sig_file, payload_file) = (format!("{key}.sig"), format!("{key}.payload"));
        std::fs::write(dir.join(&sig_file), &sig).expect("write");
        std::fs::write(dir.join(&payload_file), &payload).expect("write");
        let (_, pubkey) = f.cert_and_public_key(key);
        let verify = |file: &str| -> (bool, String) {
            if key == "rsa" {
                ecdsa_verify(&dir, &pubkey, &sig_file, file)
            } else {
                let (good, text) = tool_run(
                    &dir,
                    "openssl",
                    &[
                        "pkeyutl", "-verify", "-pubin", "-inkey", &pubkey, "-rawin", "-in", file,
                        "-sigfile", &sig_file,
                    ],
                );
                (
                    good && text.contains("Signature Verified Successfully"),
                    text,
                )
            }
        };
        let (good, text) = verify(&payload_file);
        assert!(good, "{key}: {text}");
        let mut tampered = payload.clone();
        let n = tampered.len();
        tampered[n / 2] ^= 0x01;
        std::fs::write(dir.join("tampered"), &tampered).expect("write");
        let (good, text) = verify("tampered");
        assert!(!good, "{key}: a tampered payload verified: {text}");
    }
}
