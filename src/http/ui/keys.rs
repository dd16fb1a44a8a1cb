//! Keys: each signing key this person may use, with its policy (read-only here), its
//! certificate's validity, its last use and its signatures per day over 30 days.

use hyper::Response;
use maud::html;

use super::chart::bars;
use super::layout::{left, list_or_any, list_or_none, when};
use super::{ok_page, Body, Ui};
use crate::error::Error;

pub(super) fn page(ui: &Ui<'_>) -> Result<Response<Body>, Error> {
    let keys = ui.hm.console_keys(&ui.session.cred)?;
    let t = ui.hm.clock.now();
    let content = html! {
        @if keys.is_empty() {
            p.note { "No signing key is yours to see." }
        }
        @for k in &keys {
            section.card aria-labelledby={ "key-" (k.key.label) } {
                h2 id={ "key-" (k.key.label) } { code.label { (k.key.label) } }
                dl.facts {
                    dt { "Publisher" } dd { (k.key.publisher) }
                    dt { "Algorithm" } dd { (k.key.algorithm) " in " (k.key.key_store) }
                    dt { "Certificate" } dd {
                        @match k.validity {
                            Some((nb, na)) => { (when(nb)) " to " (when(na)) " (" (left(na, t)) ")" }
                            None => { "none yet" }
                        }
                    }
                    dt { "Policy (" (k.policy_source) ")" } dd {
                        "formats: " (list_or_any(&k.policy.formats)) "; digests: " (list_or_any(&k.policy.digests))
                        "; signers: " (list_or_any(&k.policy.signers)) "; approvals: " (k.policy.approvals)
                        " of approvers " (list_or_none(&k.policy.approvers))
                        @if let Some(r) = k.policy.rate_per_minute { "; at most " (r) " a minute" }
                    }
                    dt { "Last used" } dd { (k.activity.last.map(when).unwrap_or_else(|| "never".into())) }
                    dt { "Signatures per day" } dd { (bars(&k.activity.counts, t, 86_400, 30, "signatures per day over 30 days")) }
                }
            }
        }
    };
    ok_page(ui, "Keys", "/ui/keys", None, content)
}
