//! Audit: the trail of every change, searchable by actor, action, object and time (officers:
//! it names every publisher's records).

use hyper::Response;
use maud::html;

use super::layout::{choice, when};
use super::{id_param, ok_page, time_param, Body, Ui};
use crate::error::Error;
use crate::store::AuditSearch;

const PAGE: usize = 100;

/// The families of actions the trail records (`certificate.issued` is in `certificate.`): the
/// kind filter's choices, as `GET /api/v1/audit?kind=` and `hallmark audit --kind` take them.
const KINDS: [&str; 12] = [
    "acme.",
    "ca.",
    "certificate.",
    "crl.",
    "device.",
    "key.",
    "publisher.",
    "request.",
    "session.",
    "signature.",
    "station.",
    "token.",
];

pub(super) fn page(ui: &Ui<'_>) -> Result<Response<Body>, Error> {
    let search = AuditSearch {
        actor: ui.q("actor"),
        action: ui.q("action").map(AuditSearch::kind),
        subject: ui.q("object"),
        from: time_param(ui.q("from"), "from")?,
        to: time_param(ui.q("to"), "to")?.map(|t| t + 86_400),
        before: id_param(ui.q("before").as_deref(), "before")?,
        limit: PAGE,
    };
    let page = ui.hm.audit_for(&ui.session.cred, &search)?;
    let rows = page.items;
    let v = |k: &str| ui.q(k).unwrap_or_default();
    let next = ui.next_page("/ui/audit", "before", page.next.map(|n| n.to_string()));
    let content = html! {
        form.search method="get" action="/ui/audit" role="search" {
            div { label for="actor" { "Actor contains" } input id="actor" name="actor" value=(v("actor")); }
            (choice("action", "Kind of action", &KINDS.map(String::from), search.action.as_deref().unwrap_or("")))
            div { label for="object" { "Object" } input id="object" name="object" value=(v("object")); }
            div { label for="from" { "From (date)" } input id="from" name="from" type="date" value=(v("from")); }
            div { label for="to" { "To (date)" } input id="to" name="to" type="date" value=(v("to")); }
            button type="submit" { "Search" }
        }
        @if rows.is_empty() {
            p.note { "No event matches." }
        } @else {
            div.table-wrap tabindex="0" role="region" aria-label="Audit events" {
                table {
                    thead { tr { th { "Id" } th { "When" } th { "Actor" } th { "Action" } th { "Object" } th { "Detail" } } }
                    tbody {
                        @for e in &rows {
                            tr {
                                td { (e.id) }
                                td { (when(e.at)) }
                                td { span.mono { (e.actor) } }
                                td { code { (e.action) } }
                                td { span.mono { (e.subject.as_deref().unwrap_or("")) } }
                                td { span.mono { (e.detail.as_deref().unwrap_or("")) } }
                            }
                        }
                    }
                }
            }
            @if let Some(href) = &next {
                p.pager { a href=(href) { "Older events" } }
            }
        }
    };
    ok_page(ui, "Audit", "/ui/audit", None, content)
}
