//! Liveness, readiness and metrics: `/healthz`, `/readyz`, `/metrics` (no credential).

use super::*;

pub(super) fn healthz(_: &Ctx<'_>) -> Result<Response<Body>, Error> {
    Ok(response(StatusCode::OK, "text/plain", "ok\n"))
}

pub(super) fn readyz(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    Ok(match c.hm.readiness() {
        (Ok(d), Ok(k)) => json_response(StatusCode::OK, &json!({"database": d, "key_store": k})),
        (d, k) => {
            let why = [
                d.err().map(|e| format!("database: {e}")),
                k.err().map(|e| format!("key store: {e}")),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; ");
            tracing::warn!("not ready: {why}");
            refused(Refusal::Unavailable(
                "not ready: the database or the key store is unreachable".into(),
            ))
        }
    })
}

pub(super) fn metrics(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    Ok(response(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        c.hm.metrics.render(),
    ))
}
