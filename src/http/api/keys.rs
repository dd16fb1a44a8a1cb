//! `/api/v1/keys/{label}`: a signing key, its certificate and policy.

use super::*;

pub(super) fn get_key_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    get_key(c.hm, c.segs[3], c.cred()?)
}

/// A publisher key with its certificate, chain and signing policy (scope `sign`; another
/// publisher's key is "not found", like an unknown one). A key without a certificate yet has
/// `certificate: null`.
pub(super) fn get_key(
    hm: &Hallmark,
    label: &str,
    cred: &Credential,
) -> Result<Response<Body>, Error> {
    cred.require(crate::policy::auth::Scope::Sign)?;
    let key = hm.key_for(label, cred)?;
    Ok(json_response(StatusCode::OK, &hm.key_document(&key)?))
}
