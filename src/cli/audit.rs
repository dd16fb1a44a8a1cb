//! `hallmark audit`: the audit trail, newest first, filtered and in pages.

use anyhow::{anyhow, bail};
use clap::Args;

use super::{open, print_list, ts, Cli};

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Events at or after this time: a date (YYYY-MM-DD, UTC) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Events before this time (same forms as --since).
    #[arg(long)]
    pub until: Option<String>,
    /// An action (certificate.issued) or a family of them (certificate).
    #[arg(long)]
    pub kind: Option<String>,
    /// Text found in the actor (a token id or name, a person, a station).
    #[arg(long)]
    pub actor: Option<String>,
    /// The object acted on, exactly (a serial, a key label, a request id).
    #[arg(long)]
    pub object: Option<String>,
    /// Events older than this id: the cursor the previous page printed.
    #[arg(long)]
    pub before: Option<i64>,
    /// Events a page.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

pub(super) fn cmd_audit(cli: &Cli, a: &AuditArgs) -> anyhow::Result<()> {
    let time = |v: &Option<String>, flag: &str| -> anyhow::Result<Option<i64>> {
        match v {
            None => Ok(None),
            Some(v) => crate::timespec::parse(v)
                .map(Some)
                .ok_or_else(|| anyhow!("{flag} '{v}' is not {}", crate::timespec::FORMS)),
        }
    };
    if !(1..=1000).contains(&a.limit) {
        bail!("--limit must be 1 to 1000");
    }
    if a.before.is_some_and(|b| b < 1) {
        bail!("--before takes the cursor a previous page printed (a positive id)");
    }
    let search = crate::store::AuditSearch {
        actor: a.actor.clone(),
        action: a.kind.clone().map(crate::store::AuditSearch::kind),
        subject: a.object.clone(),
        from: time(&a.since, "--since")?,
        to: time(&a.until, "--until")?,
        before: a.before,
        limit: a.limit,
    };
    let hm = open(cli)?;
    let page = hm.audit_page(&search)?;
    let full = page.next.is_some();
    let rows = page
        .items
        .into_iter()
        .map(|e| {
            let j = serde_json::json!({
                "id": e.id, "at": ts(e.at), "actor": e.actor, "action": e.action,
                "subject": e.subject, "detail": e.detail,
            });
            let line = format!(
                "{:>6} {} {:<20} {:<28} {} {}",
                e.id,
                ts(e.at),
                e.actor,
                e.action,
                e.subject.unwrap_or_default(),
                e.detail.unwrap_or_default()
            );
            (j, line)
        })
        .collect();
    print_list(
        cli.output,
        rows,
        full,
        page.next.map(|n| n.to_string()),
        "hallmark audit (same filters) --before",
    )
}
