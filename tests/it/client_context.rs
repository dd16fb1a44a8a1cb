//! `hallmark client bootstrap` / `login`: the root is fetched over the public listener and
//! checked against the fingerprint (a wrong one writes nothing), the credential is named (never
//! stored or printed), and `hallmark sign` then needs no `--server`, `--ca` or `--token-env`;
//! `HALLMARK_SERVER` still wins over the profile. A second bootstrap for the same server changes
//! nothing; one for another server is refused (the profile unchanged) unless `--force`, which
//! replaces the profile and drops its credential.

use crate::common::*;

#[test]
fn a_bootstrapped_client_signs_without_flags() {
    let (env, token) = SignEnv::start(Keys::Soft, |ca| {
        ca.create_key("acme", "release", "p256", &["--profile", "code-signing"]);
        ca.token(&["--publisher", "acme", "--scopes", "sign", "--name", "ci"])
    });
    let xdg = env.ca.path("xdg");
    let profile = xdg.join("hallmark/client.toml");
    // A client machine: no hallmark.toml, only the client profile.
    let client = |args: &[&str]| {
        let mut c = std::process::Command::new(hallmark_bin());
        c.args(args)
            .env_remove("HALLMARK_CONFIG")
            .env("XDG_CONFIG_HOME", &xdg)
            .env("SIGN_TOKEN", &token);
        c
    };

    // The fingerprint hallmark prints is openssl's SHA-256 of the root.
    let fp = env.ca.hm(&["ca", "fingerprint", "root"]).trim().to_string();
    let openssl_fp = openssl(
        &env.ca.path(""),
        &[
            "x509",
            "-in",
            &env.root,
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
    );
    assert_eq!(
        openssl_fp
            .trim()
            .rsplit('=')
            .next()
            .unwrap_or("")
            .replace(':', "")
            .to_lowercase(),
        fp
    );

    let wrong = format!("{}00", &fp[..62]);
    let out = run(&mut client(&[
        "client",
        "bootstrap",
        "--server",
        env.api(),
        "--fingerprint",
        &wrong,
        "--public",
        &env.server.public,
    ]));
    let text = text_of(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("nothing was written"), "{text}");
    assert!(!profile.exists());

    let out = ok(&mut client(&[
        "client",
        "bootstrap",
        "--server",
        env.api(),
        "--fingerprint",
        &fp.to_uppercase(),
        "--public",
        &env.server.public,
    ]));
    assert!(out.contains("client profile written"), "{out}");
    let out = ok(&mut client(&[
        "client",
        "login",
        "--token-env",
        "SIGN_TOKEN",
    ]));
    let secret = token.rsplit('_').next().expect("secret");
    assert!(!out.contains(secret));
    let stored = std::fs::read_to_string(&profile).expect("profile");
    assert!(!stored.contains(secret), "{stored}");
    assert!(stored.contains("token_env = \"SIGN_TOKEN\""), "{stored}");

    // No --server, --ca or --token-env.
    std::fs::write(env.ca.path("app.bin"), b"an artifact").expect("artifact");
    let p7s = env.path("app.p7s");
    let out = ok(&mut client(&[
        "sign",
        "cms",
        &env.path("app.bin"),
        "--key",
        "release",
        "--out",
        &p7s,
    ]));
    let _ = out;
    let (verified, text) = env.cms_verify(&p7s, &env.path("app.bin"));
    assert!(verified, "{text}");

    // The environment still overrides the profile.
    let out = run(
        client(&["sign", "cms", &env.path("app.bin"), "--key", "release"])
            .env("HALLMARK_SERVER", "https://127.0.0.1:9"),
    );
    assert!(!out.status.success());
    assert!(text_of(&out).contains("127.0.0.1:9"), "{}", text_of(&out));

    let bootstrap = |server: &str, force: bool| {
        let mut args = vec![
            "client",
            "bootstrap",
            "--server",
            server,
            "--fingerprint",
            &fp,
            "--public",
            &env.server.public,
        ];
        if force {
            args.push("--force");
        }
        run(&mut client(&args))
    };
    let root = xdg.join("hallmark/root.pem");
    let (profile_before, root_before) = (
        std::fs::read_to_string(&profile).expect("profile"),
        std::fs::read(&root).expect("root"),
    );
    // The same server and root again (a second `make run`'s hints): nothing changes, the
    // credential stays.
    let out = bootstrap(env.api(), false);
    let text = text_of(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("unchanged"), "{text}");
    assert_eq!(
        std::fs::read_to_string(&profile).expect("profile"),
        profile_before
    );

    // Another server: refused, naming the profile and --force; nothing is written.
    let other = env.api().replace("127.0.0.1", "localhost");
    assert_ne!(other, env.api());
    let out = bootstrap(&other, false);
    let text = text_of(&out);
    assert!(!out.status.success(), "{text}");
    for said in [
        "--force",
        "nothing was written",
        &profile.display().to_string(),
        env.api(),
    ] {
        assert!(text.contains(said), "'{said}' not said:\n{text}");
    }
    assert_eq!(
        std::fs::read_to_string(&profile).expect("profile"),
        profile_before
    );
    assert_eq!(std::fs::read(&root).expect("root"), root_before);

    // --force replaces it; the old server's credential is not kept for the new one.
    let out = bootstrap(&other, true);
    let text = text_of(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("replaced"), "{text}");
    let stored = std::fs::read_to_string(&profile).expect("profile");
    assert!(
        stored.contains(&format!("server = \"{other}\"")),
        "{stored}"
    );
    assert!(!stored.contains("token_env"), "{stored}");
}
