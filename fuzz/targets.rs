//! What each fuzz target feeds to hallmark, in one place: the libFuzzer targets in
//! `fuzz_targets/` call these, and `tests/it/fuzz_regressions.rs` runs the seed corpus and every
//! saved crash through them in `make test` (so a crash, once fixed, stays fixed).
//!
//! Each function takes untrusted bytes the way the server or CLI would receive them; any
//! outcome but a panic (or a hang) is fine.

#![allow(dead_code)]

use base64::Engine;

/// A fuzz target: untrusted bytes in, anything but a panic out.
pub type Target = fn(&[u8]);

/// The targets by name (the folders of `fuzz/corpus/` and `fuzz/regressions/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("csr", csr),
    ("ocsp_request", ocsp_request),
    ("tsa_query", tsa_query),
    ("acme_jws", acme_jws),
    ("provision_line", provision_line),
    ("authenticode", authenticode),
    ("jar", jar),
    ("config_toml", config_toml),
    ("verify", verify),
];

/// CSR parsing and proof of possession: every issuance path starts here.
pub fn csr(data: &[u8]) {
    let _ = hallmark::policy::csr::verify(data);
}

/// The DER body of `POST /ocsp` and the base64 path of RFC 5019 `GET /ocsp/...`.
pub fn ocsp_request(data: &[u8]) {
    let _ = hallmark::issuer::ocsp::parse_request(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(der) = hallmark::http::publication::decode_get(text) {
            let _ = hallmark::issuer::ocsp::parse_request(&der);
        }
    }
}

/// RFC 3161 time-stamp queries (`POST /tsa`).
pub fn tsa_query(data: &[u8]) {
    let _ = hallmark::issuer::tsp::parse_request(data);
}

/// ACME bodies: the flattened JWS, the JWK of its protected header, the signature check, an
/// EAB's HMAC check; and a stored account key.
pub fn acme_jws(data: &[u8]) {
    if let Ok(jws) = hallmark::acme::jws::Jws::parse(data) {
        if let Some(jwk) = &jws.protected.jwk {
            if let Ok(key) = hallmark::acme::jws::Jwk::from_json(jwk) {
                let _ = jws.verify(&key);
                let _ = key.thumbprint();
            }
        }
        let _ = jws.verify_hmac(b"fuzz eab key");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = hallmark::acme::jws::Jwk::from_stored(text);
    }
}

/// One NDJSON line of a factory batch: the JSON object, the base64 CSR, the CSR itself.
pub fn provision_line(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((_serial, csr)) = hallmark::provision::parse_batch_line(text) {
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(csr.trim()) {
            let _ = hallmark::policy::csr::verify(&der);
        }
    }
}

/// PE, CAB and MSI files as `hallmark sign authenticode` reads them: the format by magic, its
/// Authenticode hash, and the embedding of a signature.
pub fn authenticode(data: &[u8]) {
    use hallmark::keys::HashAlg;
    if let Ok(file) = hallmark::formats::authenticode::open(data.to_vec()) {
        if let Ok(d) = file.digest(HashAlg::Sha256) {
            let _ = file.indirect_data(HashAlg::Sha256, &d);
            let _ = file.embed(&[0x30, 0x03, 0x02, 0x01, 0x00]);
        }
    }
}

/// JAR (zip) files as `hallmark sign jar` reads them: entries, manifest and digests.
pub fn jar(data: &[u8]) {
    let _ = hallmark::formats::jar::prepare(std::io::Cursor::new(data), "HALLMARK");
}

/// The TOML an operator writes: `hallmark.toml` and the profiles of `ca-profiles/`.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = hallmark::profile::Profile::from_toml(std::path::Path::new("fuzz.toml"), text);
    if let Ok(cfg) = toml::from_str::<hallmark::config::Config>(text) {
        let _ = cfg.validate();
    }
}

/// `hallmark verify` on a file a relying party received: the first byte chooses an embedded
/// signature (even: the rest is the file) or a detached one (odd: a little-endian u16 length,
/// that many bytes of signature, then the file). Offline, against the root the seed corpus was
/// signed under (`fuzz/verify-root.der`), at a time its certificates are valid.
pub fn verify(data: &[u8]) {
    struct NoNetwork;
    impl hallmark::verify::revocation::Fetch for NoNetwork {
        fn get(&self, _: &str) -> Result<Vec<u8>, String> {
            Err("offline".into())
        }
        fn post(&self, _: &str, _: &str, _: &[u8]) -> Result<Vec<u8>, String> {
            Err("offline".into())
        }
    }
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (file, signature) = if mode & 1 == 0 {
        (rest, None)
    } else {
        let Some(len) = rest
            .get(..2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
        else {
            return;
        };
        let body = &rest[2..];
        let Some(sig) = body.get(..len) else {
            return;
        };
        (&body[len..], Some(sig))
    };
    let opts = hallmark::verify::Options {
        roots: vec![include_bytes!("verify-root.der").to_vec()],
        certs: Vec::new(),
        key: None,
        digest: hallmark::keys::HashAlg::Sha256,
        timestamp: None,
        offline: mode & 2 == 0,
        fetch: &NoNetwork,
        now: 1_796_342_400,
    };
    let _ = hallmark::verify::verify(file, signature, &opts);
}
