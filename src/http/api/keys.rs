//! `/api/v1/keys` and `/api/v1/keys/{label}`: signing keys, their certificates and policies.

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
    Ok(json_response(
        StatusCode::OK,
        &hm.signing.key_document(&key)?,
    ))
}

pub(super) fn list_keys_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let cred = c.cred()?;
    cred.require(crate::policy::auth::Scope::Sign)?;
    let docs =
        c.hm.keys_for(cred)?
            .iter()
            .map(|k| c.hm.signing.key_document(k))
            .collect::<Result<Vec<_>, _>>()?;
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({"items": docs, "next_cursor": null}),
    ))
}
