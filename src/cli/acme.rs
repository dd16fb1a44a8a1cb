//! `hallmark acme ...`: external account binding keys for the ACME server. An EAB key is made
//! for one publisher; an ACME account bound with it gets certificates as that publisher.

use super::ts;
use anyhow::anyhow;
use clap::Subcommand;

use crate::engine::Hallmark;

#[derive(Subcommand, Debug)]
pub enum AcmeCmd {
    /// External account binding keys (new ACME accounts present one).
    #[command(subcommand)]
    Eab(EabCmd),
}

#[derive(Subcommand, Debug)]
pub enum EabCmd {
    /// Make an EAB key for a publisher; prints its kid and HMAC key (shown once).
    Create {
        /// The publisher whose ACME accounts this key makes.
        #[arg(long)]
        publisher: String,
    },
    /// List EAB keys (never the HMAC keys).
    List,
    /// Revoke an EAB key: no new account can be bound with it (bound accounts stay).
    Revoke {
        /// The key id (`eab_...`).
        kid: String,
    },
}

pub fn run(hm: &Hallmark, actor: &str, c: &AcmeCmd) -> anyhow::Result<()> {
    match c {
        AcmeCmd::Eab(EabCmd::Create { publisher }) => {
            let (k, usable) = crate::acme::eab::create(hm, publisher, actor)?;
            eprintln!(
                "EAB key for publisher {publisher} (directories: {}); the HMAC key is shown once:",
                usable
                    .iter()
                    .map(|d| format!("/acme/{d}/"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            println!("kid: {}", k.record.kid);
            println!("hmac_key: {}", k.hmac_b64);
            println!(
                "certbot: --eab-kid={} --eab-hmac-key={}",
                k.record.kid, k.hmac_b64
            );
        }
        AcmeCmd::Eab(EabCmd::List) => {
            println!(
                "{:<22} {:<16} {:<22} {:<10} account",
                "KID", "PUBLISHER", "CREATED", "STATE"
            );
            for k in hm.store.list_eab_keys()? {
                let state = match (k.revoked_at, &k.account_id) {
                    (Some(_), _) => "revoked",
                    (None, Some(_)) => "bound",
                    (None, None) => "unused",
                };
                println!(
                    "{:<22} {:<16} {:<22} {:<10} {}",
                    k.kid,
                    k.publisher,
                    ts(k.created_at),
                    state,
                    k.account_id.as_deref().unwrap_or("-")
                );
            }
        }
        AcmeCmd::Eab(EabCmd::Revoke { kid }) => {
            hm.store
                .revoke_eab_key(kid, actor)
                .map_err(|e| anyhow!("{e}"))?;
            eprintln!("EAB key {kid} revoked");
        }
    }
    Ok(())
}
