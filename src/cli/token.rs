//! `hallmark token`: API tokens made, listed and revoked (only their hash is stored).

use anyhow::anyhow;
use clap::Subcommand;

use super::{actor, open, print_list, ts, Cli};

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Create a token and print it once.
    Create {
        /// The publisher the token acts for.
        #[arg(long)]
        publisher: Option<String>,
        /// The identity approvals name (e.g. release-manager); default token-ID.
        #[arg(long)]
        name: Option<String>,
        /// Comma-separated: issue, revoke, sign, approve.
        #[arg(long, default_value = "issue")]
        scopes: String,
        /// Lifetime like 90d, 12h, 30m (default: no expiry).
        #[arg(long)]
        expires: Option<String>,
        /// An officer token: may manage publishers and act for any publisher.
        #[arg(long)]
        officer: bool,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke { id: String },
}

pub(super) fn cmd_token(cli: &Cli, c: &TokenCmd) -> anyhow::Result<()> {
    use crate::policy::auth::{parse_duration, Scope};
    let hm = open(cli)?;
    match c {
        TokenCmd::Create {
            publisher,
            name,
            scopes,
            expires,
            officer,
        } => {
            let scopes = Scope::parse_list(scopes).map_err(|e| anyhow!(e))?;
            let expires = expires
                .as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|e| anyhow!(e))?;
            let (rec, secret) = hm.tokens.create_token(
                publisher.as_deref(),
                name.as_deref(),
                &scopes,
                *officer,
                expires,
                &actor(),
            )?;
            eprintln!(
                "token {} ({}) for {}{} scopes={}{}; it is shown once:",
                rec.id,
                rec.name,
                rec.publisher.as_deref().unwrap_or("any publisher"),
                if rec.officer { ", officer" } else { "" },
                rec.scopes,
                rec.expires_at
                    .map(|e| format!(", expires {}", ts(e)))
                    .unwrap_or_default()
            );
            println!("{secret}");
        }
        TokenCmd::List => {
            let mut rows = Vec::new();
            for t in hm.store.list_tokens()? {
                let state = match (t.revoked_at, t.expires_at) {
                    (Some(_), _) => "revoked".to_string(),
                    (None, Some(e)) if e <= hm.clock.now() => "expired".to_string(),
                    (None, Some(e)) => format!("expires {}", ts(e)),
                    (None, None) => "active".to_string(),
                };
                let j = serde_json::json!({
                    "id": t.id, "name": t.name, "publisher": t.publisher, "officer": t.officer,
                    "scopes": t.scopes.split(',').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
                    "state": state, "expires_at": t.expires_at.map(ts), "revoked_at": t.revoked_at.map(ts),
                });
                let line = format!(
                    "{} {:<20} {:<12} {:<7} {:<24} {}",
                    t.id,
                    t.name,
                    t.publisher.unwrap_or_else(|| "-".into()),
                    if t.officer { "officer" } else { "" },
                    t.scopes,
                    state
                );
                rows.push((j, line));
            }
            print_list(cli.output, rows, false, None, "")?;
        }
        TokenCmd::Revoke { id } => {
            hm.tokens.revoke_token(id, &actor())?;
            println!("revoked token {id}");
        }
    }
    Ok(())
}
