//! Certificates: those ending within 30 days first, then every certificate this person may see,
//! filtered by publisher, profile, CA and status (each a choice); one certificate's record with
//! its SHA-256 fingerprint and a PEM download, and revocation with a reason and a confirmation
//! step (for holders of the `revoke` scope, as the API allows; never a CA's own certificate).

use hyper::header::{HeaderValue, CONTENT_DISPOSITION};
use hyper::{Response, StatusCode};
use maud::{html, Markup};

use super::layout::{badge, choice, fingerprint, left, when, Flash};
use super::{ok_page, response, see_other, Body, Ui};
use crate::error::{Error, Refusal};
use crate::policy::auth::Scope;
use crate::revocation::RevocationReason;
use crate::store::{CertRecord, CertSearch, Validity};

const PAGE: usize = 50;
const ENDING_DAYS: i64 = 30;
const ENDING_SHOWN: usize = 20;

pub(super) fn list(ui: &Ui<'_>) -> Result<Response<Body>, Error> {
    let validity = match ui.q("status").as_deref() {
        None | Some("all") => None,
        Some("valid") => Some(Validity::Valid),
        Some("revoked") => Some(Validity::Revoked),
        Some("expired") => Some(Validity::Expired),
        Some(other) => {
            return Err(Refusal::BadParameter(format!(
                "status '{other}' is not one of all, valid, revoked, expired"
            ))
            .into())
        }
    };
    let cred = &ui.session.cred;
    let choices = ui.hm.console_certificate_choices(cred)?;
    let ending = ui.hm.console_ending(cred, ENDING_DAYS, ENDING_SHOWN)?;
    let rows = ui.hm.console_certificates(
        cred,
        CertSearch {
            publisher: ui.q("publisher"),
            profile: ui.q("profile"),
            ca: ui.q("ca"),
            validity,
            after: ui.q("after").map(|a| a.to_ascii_lowercase()),
            limit: PAGE,
            at: 0,
        },
    )?;
    let t = ui.hm.clock.now();
    let v = |k: &str| ui.q(k).unwrap_or_default();
    let status = v("status");
    let next = ui.next_page(
        "/ui/certificates",
        "after",
        (rows.len() == PAGE)
            .then(|| rows.last().map(|r| r.serial.clone()))
            .flatten(),
    );
    let content = html! {
        h2 { "Ending in the next " (ENDING_DAYS) " days" }
        @if ending.is_empty() {
            p.note { "No certificate ends in the next " (ENDING_DAYS) " days." }
        } @else {
            (table("Certificates ending soon", &ending, t))
        }
        h2 { "All certificates" }
        form.search method="get" action="/ui/certificates" role="search" {
            @if cred.officer {
                (choice("publisher", "Publisher", &choices.publishers, &v("publisher")))
            }
            (choice("profile", "Profile", &choices.profiles, &v("profile")))
            (choice("ca", "CA", &choices.cas, &v("ca")))
            div {
                label for="status" { "Status" }
                select id="status" name="status" {
                    @for s in ["all", "valid", "revoked", "expired"] {
                        option value=(s) selected[status == s] { (s) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            p.note { "No certificate matches." }
        } @else {
            (table("Certificates", &rows, t))
            @if let Some(href) = &next {
                p.pager { a href=(href) { "Next certificates" } }
            }
        }
    };
    ok_page(ui, "Certificates", "/ui/certificates", None, content)
}

fn table(label: &str, rows: &[CertRecord], t: i64) -> Markup {
    html! {
        div.table-wrap tabindex="0" role="region" aria-label=(label) {
            table {
                thead { tr { th { "Serial" } th { "Subject" } th { "Publisher" } th { "Profile" } th { "CA" } th { "Ends" } } }
                tbody {
                    @for c in rows {
                        tr {
                            td { a href={ "/ui/certificates/" (c.serial) } { code.serial { (c.serial) } } }
                            td { span.mono { (c.subject) } }
                            td { (c.publisher.as_deref().unwrap_or("-")) }
                            td { (c.profile) }
                            td { (c.ca) }
                            td { (when(c.not_after)) br; span.note { (left(c.not_after, t)) } }
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn one(ui: &Ui<'_>) -> Result<Response<Body>, Error> {
    let flash = ui
        .q("revoked")
        .map(|_| Flash::Info("The certificate was revoked.".into()));
    let content = record(ui, ui.segs[1])?;
    ok_page(
        ui,
        "Certificate",
        "/ui/certificates",
        flash.as_ref(),
        content,
    )
}

fn record(ui: &Ui<'_>, serial: &str) -> Result<Markup, Error> {
    let (c, revocation) = ui.hm.certificate_for(serial, &ui.session.cred)?;
    let t = ui.hm.clock.now();
    let may_revoke = ui.session.cred.require(Scope::Revoke).is_ok();
    let ca_of = ui.hm.ca_of_certificate(&c.serial)?;
    Ok(html! {
        dl.facts {
            dt { "Serial" } dd.serial { code.serial { (c.serial) } }
            dt { "Subject" } dd { span.mono { (c.subject) } }
            dt { "Publisher" } dd { (c.publisher.as_deref().unwrap_or("-")) }
            dt { "Profile" } dd { (c.profile) }
            dt { "CA" } dd { (c.ca) }
            dt { "Valid" } dd { (when(c.not_before)) " to " (when(c.not_after)) " (" (left(c.not_after, t)) ")" }
            @if let Some(s) = &c.station { dt { "Station" } dd { (s) } }
            @if let Some(d) = &c.device_serial { dt { "Device" } dd { code { (d) } } }
            @if let Some(der) = &c.cert_der {
                dt { "SHA-256 fingerprint" } dd { (fingerprint(der)) }
            }
            dt { "Status" } dd {
                @match &revocation {
                    Some(r) => {
                        (badge("revoked")) " " (RevocationReason::from_code(r.reason).map_or("unknown", |x| x.name()))
                        " at " (when(r.revoked_at))
                    }
                    None if c.not_after <= t => { (badge("expired")) }
                    None => { (badge("valid")) }
                }
            }
        }
        @if c.cert_der.is_some() {
            p { a href={ "/ui/certificates/" (c.serial) "/pem" } download={ (c.serial) ".pem" } { "Download the certificate (PEM)" } }
        }
        @if let (None, Some(ca)) = (&revocation, &ca_of) {
            p.note { "This is CA " strong { (ca) } "'s own certificate. A CA is not revoked from the console: an officer runs " code { "hallmark revoke " (c.serial) " --reason cACompromise" } " on the CA's machine." }
        } @else if revocation.is_none() && may_revoke {
            h2 { "Revoke" }
            form.decide method="post" action={ "/ui/certificates/" (c.serial) "/revoke" } {
                input type="hidden" name="csrf" value=(ui.session.csrf);
                label for="reason" { "Reason" }
                select id="reason" name="reason" {
                    @for r in RevocationReason::ALL {
                        option value=(r.name()) { (r.name()) }
                    }
                }
                div.buttons { button.danger type="submit" { "Revoke…" } }
            }
        }
    })
}

/// Revocation in two steps: the first post shows what will be revoked and asks to confirm;
/// the second (`confirm=yes`) revokes.
pub(super) fn revoke(ui: &Ui<'_>) -> Result<Response<Body>, Error> {
    let serial = ui.segs[1];
    let reason: RevocationReason = ui
        .field("reason")
        .unwrap_or_else(|| "unspecified".into())
        .parse()
        .map_err(Refusal::BadParameter)?;
    if ui.field("confirm").as_deref() == Some("yes") {
        let r = ui.hm.console_revoke(serial, &ui.session.cred, reason)?;
        return Ok(see_other(&format!(
            "/ui/certificates/{}?revoked=1",
            r.serial
        )));
    }
    ui.session.cred.require(Scope::Revoke)?;
    let (c, _) = ui.hm.certificate_for(serial, &ui.session.cred)?;
    ui.hm.console_revocable(&c.serial)?;
    let content = html! {
        p { "Revoke certificate " code { (c.serial) } " (" span.mono { (c.subject) } ") for the reason " strong { (reason.name()) } "? This cannot be undone: CRLs and OCSP will answer it revoked." }
        form.decide method="post" action={ "/ui/certificates/" (c.serial) "/revoke" } {
            input type="hidden" name="csrf" value=(ui.session.csrf);
            input type="hidden" name="reason" value=(reason.name());
            input type="hidden" name="confirm" value="yes";
            div.buttons {
                button.danger type="submit" { "Yes, revoke it" }
                a href={ "/ui/certificates/" (c.serial) } { "No, keep it" }
            }
        }
    };
    ok_page(ui, "Confirm revocation", "/ui/certificates", None, content)
}

/// The certificate as a PEM file to save (the leaf alone), to whoever may see its page.
pub(super) fn pem(ui: &Ui<'_>) -> Result<Response<Body>, Error> {
    let (c, _) = ui.hm.certificate_for(ui.segs[1], &ui.session.cred)?;
    let der = c
        .cert_der
        .ok_or_else(|| Refusal::NotFound(format!("certificate {} has no DER stored", c.serial)))?;
    let mut r = response(
        StatusCode::OK,
        "application/x-pem-file",
        crate::pemfmt::encode("CERTIFICATE", der),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}.pem\"", c.serial)) {
        r.headers_mut().insert(CONTENT_DISPOSITION, v);
    }
    Ok(r)
}
