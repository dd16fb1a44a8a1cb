//! Signatures: the record of every signature this person may see, searchable by key (a choice
//! among the keys they may use), digest, text (artifact name, metadata, requester, CI identity,
//! approvers) and time, newest first.

use hyper::Response;
use maud::html;
use serde_json::Value;

use super::layout::{choice, when};
use super::{id_param, ok_page, time_param, Body, Ui};
use crate::error::Error;
use crate::store::SignatureSearch;

const PAGE: usize = 50;

pub(super) fn page(ui: &Ui<'_>) -> Result<Response<Body>, Error> {
    let search = SignatureSearch {
        key: ui.q("key"),
        digest: ui.q("digest"),
        text: ui.q("q"),
        from: time_param(ui.q("from"), "from")?,
        // `to` is a day: everything before the next midnight.
        to: time_param(ui.q("to"), "to")?.map(|t| t + 86_400),
        before: id_param(ui.q("before").as_deref(), "before")?,
        limit: PAGE,
        publisher: None,
    };
    let rows = ui.hm.console_signatures(&ui.session.cred, search)?;
    let keys = ui.hm.console_key_choices(&ui.session.cred)?;
    let v = |k: &str| ui.q(k).unwrap_or_default();
    let next = ui.next_page(
        "/ui/signatures",
        "before",
        (rows.len() == PAGE)
            .then(|| rows.last().map(|r| r.id.to_string()))
            .flatten(),
    );
    let content = html! {
        form.search method="get" action="/ui/signatures" role="search" {
            (choice("key", "Key", &keys, &v("key")))
            div { label for="digest" { "Digest starts with" } input id="digest" name="digest" value=(v("digest")); }
            div { label for="q" { "Artifact, identity or text" } input id="q" name="q" value=(v("q")); }
            div { label for="from" { "From (date)" } input id="from" name="from" type="date" value=(v("from")); }
            div { label for="to" { "To (date)" } input id="to" name="to" type="date" value=(v("to")); }
            button type="submit" { "Search" }
        }
        @if rows.is_empty() {
            p.note { "No signature matches." }
        } @else {
            div.table-wrap tabindex="0" role="region" aria-label="Signatures" {
                table {
                    thead { tr { th { "Id" } th { "When" } th { "Key" } th { "Artifact" } th { "Digest" } th { "Format" } th { "Requested by" } th { "Approvers" } } }
                    tbody {
                        @for s in &rows {
                            @let meta = s.metadata.as_deref().and_then(|m| serde_json::from_str::<Value>(m).ok());
                            tr {
                                td { (s.id) }
                                td { (when(s.created_at)) }
                                td { code.label { (s.key_label) } }
                                td { @if let Some(a) = meta.as_ref().and_then(|m| m.get("artifact")).and_then(Value::as_str) { code.file { (a) } } }
                                td { (s.digest_algorithm) " " code.hex { (s.digest) } }
                                td { (s.format) }
                                td {
                                    (s.requester)
                                    @if let Some(i) = &s.identity { br; span.note { (crate::policy::workload::identity_line(i)) } }
                                }
                                td { (s.approvers.as_deref().unwrap_or("-")) }
                            }
                        }
                    }
                }
            }
            @if let Some(href) = &next {
                p.pager { a href=(href) { "Older signatures" } }
            }
        }
    };
    ok_page(ui, "Signatures", "/ui/signatures", None, content)
}
