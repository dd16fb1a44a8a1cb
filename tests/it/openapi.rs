//! `openapi.yaml` names exactly the routes the two listeners serve, and each listed route is
//! really routed by a running server (it does not fall through to "nothing at PATH").

use std::collections::BTreeSet;

use crate::common::*;

fn documented() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.yaml"),
    )
    .expect("openapi.yaml");
    let mut out = BTreeSet::new();
    let mut in_paths = false;
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("paths:") {
            in_paths = true;
            continue;
        }
        if in_paths && !line.starts_with(' ') && !line.is_empty() {
            in_paths = false;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /") {
            if !p.starts_with(' ') {
                current = Some(format!("/{}", p.trim_end_matches(':')));
            }
        } else if let Some(m) = line.strip_prefix("    ") {
            let m = m.trim_end_matches(':');
            if ["get", "post", "put", "delete", "patch"].contains(&m) {
                if let Some(p) = &current {
                    out.insert((m.to_uppercase(), p.clone()));
                }
            }
        }
    }
    out
}

fn served() -> BTreeSet<(String, String)> {
    hallmark::http::api::routes()
        .into_iter()
        .chain(hallmark::http::public::ROUTES.iter().copied())
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect()
}

#[test]
fn openapi_matches_the_served_routes() {
    let doc = documented();
    let srv = served();
    let missing: Vec<_> = srv.difference(&doc).collect();
    let extra: Vec<_> = doc.difference(&srv).collect();
    assert!(
        missing.is_empty(),
        "served but not in openapi.yaml: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "in openapi.yaml but not served: {extra:?}"
    );
}

#[test]
fn every_listed_route_is_routed() {
    let ca = TestCa::new(Keys::Soft);
    let server = Server::start(&ca, true);
    let root = ca.ca_pem("root").display().to_string();
    let check = |base: &str, list: &[(&str, &str)]| {
        for (method, template) in list {
            let path: String = template.replace("{k}", "0").replace(['{', '}'], "");
            let (code, body, _) = curl(
                &format!("{base}{path}"),
                &["--cacert", &root, "-X", method, "--data-binary", ""],
            );
            let text = String::from_utf8_lossy(&body);
            assert!(
                code != 405 && !text.contains("nothing at"),
                "{method} {template} is not routed ({code}: {text})"
            );
        }
    };
    check(
        server.api.as_deref().expect("api"),
        &hallmark::http::api::routes(),
    );
    check(&server.public, hallmark::http::public::ROUTES);
}
