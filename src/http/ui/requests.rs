//! Requests: the pending certificate and signature requests this person may see, each with
//! everything deciding it needs (who asked and from which CI run, the key or profile, digest,
//! artifact and metadata, the key's policy, approvals so far and by whom, time left), the
//! approve/deny form where they may decide, and the latest decided requests.

use maud::{html, Markup};
use serde_json::Value;

use super::layout::{badge, left, list_or_any, list_or_none, when, Flash};
use super::{id_param, ok_page, see_other, Ui};
use crate::console::{CertificateRequest, Request, RequestsPage, SignatureRequest, Standing};
use crate::error::{Error, Refusal};
use crate::store::{ApprovalRecord, RequestStatus, SignatureRequestStatus};
use hyper::Response;

use super::Body;

pub(super) fn page(ui: &Ui<'_>) -> Result<Response<Body>, Error> {
    let at = RequestsPage {
        signatures_before: id_param(ui.q("signatures_before").as_deref(), "signatures_before")?,
        certificates_before: id_param(
            ui.q("certificates_before").as_deref(),
            "certificates_before",
        )?,
    };
    let r = ui.hm.console_requests(&ui.session.cred, at)?;
    let t = ui.hm.clock.now();
    let flash = match ui.q("done").as_deref() {
        Some("approve") => Some(Flash::Info("Your approval was recorded.".into())),
        Some("deny") => Some(Flash::Info("Your denial was recorded.".into())),
        Some(done @ ("signed" | "issued")) => Some(Flash::Info(completed(ui, done)?)),
        _ => None,
    };
    let content = html! {
        h2 { "Signature requests pending (" (r.pending_signatures) ")" }
        @if r.signatures.is_empty() {
            p.note { "No signature request waits for a decision." }
        }
        @for item in &r.signatures {
            (card(ui, item, t))
        }
        @if let Some(n) = r.next_signatures {
            p.pager { a href={ "/ui/requests?signatures_before=" (n) } { "Older signature requests" } }
        }
        h2 { "Certificate requests pending (" (r.pending_certificates) ")" }
        @if r.certificates.is_empty() {
            p.note { "No certificate request waits for a decision." }
        }
        @for item in &r.certificates {
            (card(ui, item, t))
        }
        @if let Some(n) = r.next_certificates {
            p.pager { a href={ "/ui/requests?certificates_before=" (n) } { "Older certificate requests" } }
        }
        h2 { "Decided" }
        @if r.decided.is_empty() {
            p.note { "No request was decided yet." }
        } @else {
            div.table-wrap tabindex="0" role="region" aria-label="Decided requests" {
                table {
                    thead { tr { th { "Request" } th { "Status" } th { "Requested by" } th { "What" } th { "Decisions" } th { "Asked" } } }
                    tbody {
                        @for item in &r.decided {
                            (decided_row(item))
                        }
                    }
                }
            }
        }
    };
    ok_page(ui, "Requests", "/ui/requests", flash.as_ref(), content)
}

/// The decision form: approve or deny with a comment.
pub(super) fn decide(ui: &Ui<'_>) -> Result<Response<Body>, Error> {
    let id = id_param(Some(ui.segs[2]), "request id")?.unwrap_or_default();
    let approve = match ui.field("decision").as_deref() {
        Some("approve") => true,
        Some("deny") => false,
        other => {
            return Err(Refusal::BadParameter(format!(
                "decision '{}' is neither approve nor deny",
                other.unwrap_or("")
            ))
            .into())
        }
    };
    let comment = ui.field("comment");
    if comment.as_ref().is_some_and(|c| c.len() > 2000) {
        return Err(Refusal::BadParameter("a comment holds at most 2000 bytes".into()).into());
    }
    let cred = &ui.session.cred;
    // Whether this decision completed the request: the approval that was the last one needed
    // issued the certificate or made the signature in the same call.
    let completed = match ui.segs[1] {
        "certificate" => ui
            .hm
            .requests
            .decide(id, cred, approve, comment.as_deref())?
            .1
            .map(|_| "issued"),
        "signature" => ui
            .hm
            .signing
            .decide_signature(id, cred, approve, comment.as_deref())?
            .1
            .map(|_| "signed"),
        other => {
            return Err(Refusal::NotFound(format!(
                "no kind of request '{other}' (certificate or signature)"
            ))
            .into())
        }
    };
    Ok(see_other(&match (approve, completed) {
        (true, Some(done)) => format!("/ui/requests?done={done}&request={id}"),
        (true, None) => "/ui/requests?done=approve".into(),
        (false, _) => "/ui/requests?done=deny".into(),
    }))
}

/// What the page says after an approval that completed request `request` (`done`: `signed` or
/// `issued`), read from the request as it stands: a link cannot make the page claim a
/// signature or certificate that was not made.
fn completed(ui: &Ui<'_>, done: &str) -> Result<String, Error> {
    let id = id_param(ui.q("request").as_deref(), "request")?;
    let cred = &ui.session.cred;
    let said = match (done, id) {
        ("signed", Some(id)) => {
            let r = ui.hm.signing.signature_request_view(id, cred)?.request;
            match (r.status, r.signature_id) {
                (SignatureRequestStatus::Signed, Some(n)) => Some(format!(
                    "Your approval was the last one needed: the signature was made (record {n})."
                )),
                _ => None,
            }
        }
        ("issued", Some(id)) => {
            let r = ui.hm.requests.request_view(id, cred)?.request;
            match (r.status, r.certificate_serial) {
                (RequestStatus::Issued, Some(serial)) => Some(format!(
                    "Your approval was the last one needed: the certificate was issued (serial {serial})."
                )),
                _ => None,
            }
        }
        _ => None,
    };
    Ok(said.unwrap_or_else(|| "Your approval was recorded.".into()))
}

fn card(ui: &Ui<'_>, item: &Request, t: i64) -> Markup {
    match item {
        Request::Signature(s) => signature_card(ui, s, t),
        Request::Certificate(c) => certificate_card(ui, c, t),
    }
}

/// The artifact's name in a request's metadata, when the client named it.
fn artifact_of(metadata: Option<&str>) -> Option<String> {
    let m: Value = serde_json::from_str(metadata?).ok()?;
    m.get("artifact")?.as_str().map(str::to_string)
}

fn signature_card(ui: &Ui<'_>, s: &SignatureRequest, t: i64) -> Markup {
    let r = &s.request;
    let meta = r
        .metadata
        .as_deref()
        .and_then(|m| serde_json::from_str::<Value>(m).ok());
    let artifact = artifact_of(r.metadata.as_deref());
    let p = &s.policy;
    html! {
        section.card aria-labelledby={ "sig-" (r.id) } {
            h3 id={ "sig-" (r.id) } { "Signature request " (r.id) " " (badge(r.status.as_str())) }
            dl.facts {
                dt { "Key" } dd { code.label { (r.key_label) } " (publisher " (r.publisher) ")" }
                dt { "Artifact" } dd { @if let Some(a) = &artifact { code.file { (a) } } @else { "not named" } }
                dt { "Digest" } dd { (r.digest_algorithm) " " code.hex { (r.digest) } }
                dt { "Format" } dd { (r.format) }
                dt { "Requested by" } dd { (r.requester) }
                (identity(r.identity.as_deref()))
                (metadata(meta.as_ref()))
                dt { "Key policy" } dd {
                    "formats: " (list_or_any(&p.formats)) "; digests: " (list_or_any(&p.digests))
                    "; signers: " (list_or_any(&p.signers)) "; approvals: " (p.approvals)
                }
                dt { "Approvals" } dd { (approvals(&s.approvals, r.approvals_required, &s.approvers)) }
                dt { "Asked" } dd { (when(r.created_at)) }
                dt { "Time left" } dd { (left(r.expires_at, t)) " (until " (when(r.expires_at)) ")" }
            }
            (decision(ui, "signature", r.id, &s.standing))
        }
    }
}

fn certificate_card(ui: &Ui<'_>, c: &CertificateRequest, t: i64) -> Markup {
    let r = &c.request;
    html! {
        section.card aria-labelledby={ "cert-" (r.id) } {
            h3 id={ "cert-" (r.id) } { "Certificate request " (r.id) " " (badge(r.status.as_str())) }
            dl.facts {
                dt { "Profile" } dd { code.label { (r.profile) } }
                dt { "Publisher" } dd { (r.publisher.as_deref().unwrap_or("-")) }
                dt { "CSR subject" } dd { code { (c.csr_subject) } }
                dt { "CSR key" } dd { (c.csr_key) }
                @if let Some(d) = &r.device_serial { dt { "Device" } dd { code { (d) } } }
                @if let Some(n) = &r.cn_name { dt { "Name" } dd { (n) } }
                dt { "Requested by" } dd { (r.requester) }
                (identity(r.identity.as_deref()))
                dt { "Approvals" } dd { (approvals(&c.approvals, r.approvals_required, &c.approvers)) }
                dt { "Asked" } dd { (when(r.created_at)) }
                @if let Some(e) = r.expires_at {
                    dt { "Time left" } dd { (left(e, t)) " (until " (when(e)) ")" }
                }
            }
            (decision(ui, "certificate", r.id, &c.standing))
        }
    }
}

/// A CI job's identity: issuer, subject and the run's claims (repository, ref, commit, workflow,
/// run), as the OIDC token stated them.
fn identity(json: Option<&str>) -> Markup {
    let Some(v) = json.and_then(|j| serde_json::from_str::<Value>(j).ok()) else {
        return html! {};
    };
    let claim = |k: &str| v["claims"].get(k).map(shown);
    html! {
        dt { "CI identity" } dd {
            @if let Some(i) = v["issuer"].as_str() { "issuer " code { (i) } br; }
            @if let Some(s) = v["subject"].as_str() { "subject " code { (s) } br; }
            @for (k, label) in [("repository", "repository"), ("project_path", "project"), ("ref", "ref"), ("sha", "commit"), ("workflow", "workflow"), ("job_workflow_ref", "workflow ref"), ("run_id", "run"), ("pipeline_id", "pipeline"), ("actor", "actor"), ("user_login", "user")] {
                @if let Some(c) = claim(k) { (label) " " code { (c) } br; }
            }
        }
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every metadata field the client sent but the artifact name (shown above).
fn metadata(meta: Option<&Value>) -> Markup {
    let Some(Value::Object(m)) = meta else {
        return html! {};
    };
    let rest: Vec<(&String, &Value)> = m.iter().filter(|(k, _)| *k != "artifact").collect();
    html! {
        @if !rest.is_empty() {
            dt { "Metadata" } dd {
                @for (k, v) in rest { code { (k) } ": " (shown(v)) br; }
            }
        }
    }
}

fn approvals(list: &[ApprovalRecord], required: i64, approvers: &[String]) -> Markup {
    let approved = list.iter().filter(|a| a.decision == "approve").count();
    html! {
        (approved) " of " (required) " needed; approvers: " (list_or_none(approvers))
        @if !list.is_empty() {
            ul {
                @for a in list {
                    li {
                        strong { (a.approver) } " " (if a.decision == "approve" { "approved" } else { "denied" })
                        " at " (when(a.created_at))
                        @if let Some(c) = &a.comment { ": “" (c) "”" }
                    }
                }
            }
        }
    }
}

/// The approve/deny form, or why this person does not decide.
fn decision(ui: &Ui<'_>, kind: &str, id: i64, standing: &Standing) -> Markup {
    let comment_id = format!("comment-{kind}-{id}");
    match standing {
        Standing::MayDecide => html! {
            form.decide method="post" action={ "/ui/requests/" (kind) "/" (id) } {
                input type="hidden" name="csrf" value=(ui.session.csrf);
                label for=(comment_id) { "Comment (optional)" }
                textarea id=(comment_id) name="comment" maxlength="2000" {}
                div.buttons {
                    button type="submit" name="decision" value="approve" { "Approve" }
                    button.deny type="submit" name="decision" value="deny" { "Deny" }
                }
            }
        },
        Standing::Own => html! { p.note { "You asked for this; another approver decides." } },
        Standing::Decided(d) => html! {
            p.note { "You " (if d == "approve" { "approved" } else { "denied" }) " this request." }
        },
        Standing::NotApprover => html! { p.note { "You are not among this request's approvers." } },
        Standing::NoScope => html! { p.note { "Your token has no approve scope." } },
    }
}

fn decided_row(item: &Request) -> Markup {
    match item {
        Request::Signature(s) => {
            let r = &s.request;
            html! {
                tr {
                    td { "signature " (r.id) }
                    td { (badge(r.status.as_str())) }
                    td { (r.requester) }
                    td {
                        @if let Some(a) = artifact_of(r.metadata.as_deref()) { code.file { (a) } ", " }
                        "key " code.label { (r.key_label) } ", " (r.digest_algorithm) " " code.hex { (r.digest.get(..16).unwrap_or(&r.digest)) } "…"
                    }
                    td { (decisions(&s.approvals)) }
                    td { (when(r.created_at)) }
                }
            }
        }
        Request::Certificate(c) => {
            let r = &c.request;
            html! {
                tr {
                    td { "certificate " (r.id) }
                    td { (badge(r.status.as_str())) }
                    td { (r.requester) }
                    td { "profile " code.label { (r.profile) } @if let Some(s) = &r.certificate_serial { ", serial " a href={ "/ui/certificates/" (s) } { code.serial { (s) } } } }
                    td { (decisions(&c.approvals)) }
                    td { (when(r.created_at)) }
                }
            }
        }
    }
}

fn decisions(list: &[ApprovalRecord]) -> Markup {
    html! {
        @for (i, a) in list.iter().enumerate() {
            @if i > 0 { ", " }
            (a.approver) " " (a.decision)
            @if let Some(c) = &a.comment { " (“" (c) "”)" }
        }
    }
}
