//! Signatures kept beside the file: detached CMS, RFC 3161 time-stamp tokens, COSE_Sign1 with a
//! detached payload, and raw signatures (checked with `--cert` or `--key`).

use super::{chain, cms, crypto, firmware, signer_checks, timestamp, Options, Report};

/// Verifies `file` against the signature `sig` (already PEM/base64-decoded).
pub fn verify(file: &[u8], sig: &[u8], o: &Options<'_>) -> Report {
    if timestamp::is_token(sig) {
        return token(file, sig, o);
    }
    if let Ok(sd) = cms::parse(sig) {
        return detached_cms(file, &sd, o);
    }
    if firmware::is_cose_sign1(sig) {
        return firmware::verify_cose(file, sig, o);
    }
    raw(file, sig, o)
}

fn detached_cms(file: &[u8], sd: &cms::SignedData, o: &Options<'_>) -> Report {
    let mut r = Report::new("cms");
    let Some(s) = sd.signers.first() else {
        r.fail("signature", "the SignedData has no signer");
        return r;
    };
    r.pass(
        "format",
        format!(
            "CMS SignedData, {} signer(s), {} certificate(s){}",
            sd.signers.len(),
            sd.certificates.len(),
            if sd.content.is_some() {
                ", content embedded"
            } else {
                ", detached"
            }
        ),
    );
    if sd.content_type != cms::OID_DATA {
        r.fail(
            "signature",
            format!("content type {} is not id-data", sd.content_type),
        );
        return r;
    }
    if let Some(c) = &sd.content {
        if c.as_slice() != file {
            r.fail(
                "signature",
                "the content embedded in the CMS is not the file",
            );
            return r;
        }
    }
    let mut certs = sd.certificates.clone();
    certs.extend(o.certs.iter().cloned());
    let Some(cert) = cms::find_signer_cert(&s.sid, &certs).cloned() else {
        r.fail(
            "signature",
            "the signer's certificate is not in the CMS: pass it with --cert",
        );
        return r;
    };
    let hash = match cms::signer_hash(s) {
        Ok(h) => h,
        Err(e) => {
            r.fail("signature", e);
            return r;
        }
    };
    match cms::check_signer(s, cms::OID_DATA, &hash.digest(file), &cert) {
        Ok(ok) => r.pass(
            "signature",
            format!(
                "{} by {} over the file's {}",
                ok.scheme,
                chain::signer_text(&cert),
                crypto::hash_name(ok.hash)
            ),
        ),
        Err(e) => {
            r.fail("signature", e);
            return r;
        }
    }
    let token = cms::timestamp_token(s);
    signer_checks(&mut r, &cert, &certs, token.as_deref(), &s.signature, o);
    r
}

fn token(file: &[u8], tok: &[u8], o: &Options<'_>) -> Report {
    let mut r = Report::new("rfc3161");
    r.pass("format", "RFC 3161 time-stamp token");
    let stamp = match timestamp::check(tok, file, &o.certs, &o.roots) {
        Ok(s) => s,
        Err(e) => {
            r.fail("signature", e);
            return r;
        }
    };
    let tsa = &stamp.path[0];
    r.pass(
        "signature",
        format!(
            "{} of the file stamped {} by {}",
            crypto::hash_name(stamp.hash),
            super::rfc3339(stamp.time),
            chain::signer_text(tsa)
        ),
    );
    r.pass("chain", chain::describe(&stamp.path));
    r.pass(
        "validity",
        format!(
            "every certificate valid at the stamped time, {}",
            super::rfc3339(stamp.time)
        ),
    );
    match chain::usage(tsa, chain::Purpose::TimeStamping) {
        Ok(u) => r.pass("usage", u),
        Err(e) => r.fail("usage", e),
    }
    super::revocation_check(&mut r, &stamp.path, None, o);
    r
}

/// The key a raw, COSE or MCUboot signature is checked with: the first `--cert`, else `--key`.
/// Returns (SubjectPublicKeyInfo, the certificate when there is one).
pub(crate) fn signer_key(o: &Options<'_>) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    if let Some(c) = o.certs.first() {
        return cms::spki_of(c).ok().map(|k| (k, Some(c.clone())));
    }
    o.key.clone().map(|k| (k, None))
}

/// After a signature checked with a bare key: the certificate checks, or why they are skipped.
pub(crate) fn after_key(
    r: &mut Report,
    cert: Option<&[u8]>,
    pool: &[Vec<u8>],
    token: Option<&[u8]>,
    stamped: &[u8],
    o: &Options<'_>,
) {
    match cert {
        Some(c) => signer_checks(r, c, pool, token, stamped, o),
        None => {
            let why = "a bare public key (--key) has no certificate: pass --cert to check it";
            r.skip("chain", why);
            r.skip("validity", why);
            r.skip("usage", why);
            r.skip("revocation", why);
        }
    }
}

fn raw(file: &[u8], sig: &[u8], o: &Options<'_>) -> Report {
    let mut r = Report::new("raw");
    let Some((spki, cert)) = signer_key(o) else {
        r.fail(
            "format",
            "the signature is not CMS, COSE_Sign1 or a time-stamp token; a raw signature needs \
             the signer's --cert (or --key)",
        );
        return r;
    };
    r.pass("format", "raw signature over the file's digest");
    let kind = match crypto::key_of(&spki) {
        Ok((k, _)) => k,
        Err(e) => {
            r.fail("signature", e);
            return r;
        }
    };
    use crate::algorithm::{HashAlg, SignatureScheme as S};
    let scheme = match (kind, o.digest) {
        (crypto::KeyKind::Rsa, HashAlg::Sha256) => S::RsaPkcs1Sha256,
        (crypto::KeyKind::Rsa, HashAlg::Sha384) => S::RsaPkcs1Sha384,
        (crypto::KeyKind::Rsa, HashAlg::Sha512) => S::RsaPkcs1Sha512,
        (crypto::KeyKind::Ed25519, _) => S::Ed25519,
        (_, HashAlg::Sha256) => S::EcdsaSha256,
        (_, HashAlg::Sha384) => S::EcdsaSha384,
        (_, HashAlg::Sha512) => S::EcdsaSha512,
    };
    let digest = o.digest.digest(file);
    let checked = if scheme == S::Ed25519 {
        crypto::verify(&spki, scheme, false, &digest, sig)
    } else {
        crypto::verify_digest(&spki, scheme, false, &digest, sig)
    };
    match checked {
        Ok(name) => r.pass(
            "signature",
            format!(
                "{name} over the file's {}{}",
                crypto::hash_name(o.digest),
                chain::by(cert.as_deref())
            ),
        ),
        Err(e) => {
            r.fail(
                "signature",
                format!(
                    "{e} (over the file's {}; --digest names another)",
                    crypto::hash_name(o.digest)
                ),
            );
            return r;
        }
    }
    after_key(&mut r, cert.as_deref(), &[], o.timestamp.as_deref(), sig, o);
    r
}
