//! Revoking an issuing CA: the root's CRL lists it, and chains through it fail CRL checking.

use crate::common::*;

#[test]
fn a_revoked_issuing_ca_is_on_the_root_crl() {
    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    let dir = ca.dir.path();
    let csr = make_csr(
        dir,
        "leaf",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/O=Acme Corp",
        &[],
    );
    let leaf = ca.path("leaf.pem").display().to_string();
    ca.hm(&[
        "issue",
        "--profile",
        "code-signing",
        "--publisher",
        "acme",
        "--csr",
        &csr.display().to_string(),
        "--out",
        &leaf,
    ]);
    let root = ca.ca_pem("root").display().to_string();
    let ica = ca.ca_pem("code-signing-ca").display().to_string();
    let crls = |tag: &str| {
        let r = ca.path(&format!("root-{tag}.crl")).display().to_string();
        let i = ca.path(&format!("ica-{tag}.crl")).display().to_string();
        ca.hm(&["crl", "--ca", "root", "--out", &r, "--pem"]);
        ca.hm(&["crl", "--ca", "code-signing-ca", "--out", &i, "--pem"]);
        (r, i)
    };
    let verify = |r: &str, i: &str| {
        run(std::process::Command::new(tool("openssl"))
            .current_dir(dir)
            .args([
                "verify",
                "-crl_check_all",
                "-CAfile",
                &root,
                "-untrusted",
                &ica,
                "-CRLfile",
                r,
                "-CRLfile",
                i,
                &leaf,
            ]))
    };
    let (r, i) = crls("before");
    let out = verify(&r, &i);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let serial = openssl(dir, &["x509", "-in", &ica, "-noout", "-serial"]);
    let serial = serial.trim().trim_start_matches("serial=").to_string();
    ca.hm(&["revoke", &serial, "--reason", "cACompromise"]);
    let shown = ca.hm(&["cert", "show", &serial.to_ascii_lowercase()]);
    assert!(shown.contains("revoked (cACompromise)"), "{shown}");

    let (r, i) = crls("after");
    let text = openssl(dir, &["crl", "-in", &r, "-noout", "-text"]);
    assert!(text.contains(&serial.to_ascii_uppercase()), "{text}");
    let out = verify(&r, &i);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("certificate revoked")
            || String::from_utf8_lossy(&out.stderr).contains("certificate revoked")
    );
    let (code, findings) = pkilint(
        dir,
        "lint_crl",
        &["lint", "-t", "CRL", "-p", "PKIX", "-s", "WARNING", &r],
    );
    assert_eq!(code, 0, "{findings}");
}
