//! `hallmark signature list`: the signatures this CA recorded, read from the local store (the
//! client side, `hallmark sign`, is in the `hallmark-client` crate).

use clap::Subcommand;

use super::open;

#[derive(Subcommand, Debug)]
pub enum SignatureCmd {
    /// List recorded signatures, newest first.
    List {
        /// Only this key's.
        #[arg(long)]
        key: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

pub fn cmd_signature(cli: &super::Cli, c: &SignatureCmd) -> anyhow::Result<()> {
    let hm = open(cli)?;
    match c {
        SignatureCmd::List { key, limit } => {
            let list = hm
                .store
                .list_signatures(key.as_deref(), None, None, *limit)?;
            let full = list.len() == *limit;
            let rows = list
                .into_iter()
                .map(|s| {
                    let j = serde_json::json!({
                        "id": s.id, "created_at": super::ts(s.created_at), "key": s.key_label,
                        "format": s.format, "digest_algorithm": s.digest_algorithm,
                        "digest": s.digest, "requester": s.requester, "approvers": s.approvers,
                        "metadata": s.metadata.as_deref().and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok()),
                        "identity": crate::policy::workload::identity_value(s.identity.as_deref()),
                    });
                    // A CI job's run (repository, ref, sha, run id) follows its name.
                    let run = s
                        .identity
                        .as_deref()
                        .map(|i| format!(" [{}]", crate::policy::workload::identity_line(i)))
                        .unwrap_or_default();
                    let line = format!(
                        "{:>6} {} {:<16} {:<4} {}:{} by {}{run} {}",
                        s.id,
                        super::ts(s.created_at),
                        s.key_label,
                        s.format,
                        s.digest_algorithm,
                        s.digest,
                        s.requester,
                        s.metadata.unwrap_or_default()
                    );
                    (j, line)
                })
                .collect();
            super::print_list(
                cli.output,
                rows,
                full,
                None,
                "hallmark signature list --limit N (newest N)",
            )?;
        }
    }
    Ok(())
}
