//! `/api/v1/publishers`: the verified publisher records (officers add them).

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PublisherBody {
    id: String,
    org: String,
    country: String,
    state: Option<String>,
    locality: Option<String>,
    profiles: Vec<String>,
}

pub(super) fn post_publisher_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let body: PublisherBody = json_body(c.req)?;
    let cred = c.cred()?;
    cred.require_officer()?;
    let p = Publisher {
        id: body.id,
        org: body.org,
        country: body.country,
        state: body.state,
        locality: body.locality,
        profiles: body.profiles,
        created_at: c.hm.clock.now(),
    };
    c.hm.add_publisher(&p, &cred.actor())?;
    let mut r = json_response(StatusCode::CREATED, &publisher_json(&p));
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/publishers/{}", p.id)) {
        r.headers_mut().insert(LOCATION, v);
    }
    Ok(r)
}

pub(super) fn list_publishers_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    // By id; the cursor is the last id of the previous page.
    let limit = limit_param(&c.q)?;
    let page =
        c.hm.publishers_page(c.cred()?, param(&c.q, "cursor"), limit)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "items": page.items.iter().map(publisher_json).collect::<Vec<_>>(),
            "next_cursor": page.next,
        }),
    ))
}

pub(super) fn publisher_json(p: &Publisher) -> Value {
    json!({"id": p.id, "org": p.org, "country": p.country, "state": p.state, "locality": p.locality, "profiles": p.profiles})
}
