//! `hallmark profile`: certificate profiles checked (against the config's CAs too) and listed.

use std::path::PathBuf;

use anyhow::{anyhow, bail};
use clap::Subcommand;

use super::{open, Cli};
use crate::profile::{Profile, Profiles};

#[derive(Subcommand, Debug)]
pub enum ProfileCmd {
    /// Validate a profile file, or every profile of the config.
    Check { file: Option<PathBuf> },
    /// List the profiles of the config.
    List,
}

/// Why a profile's issuer is not usable: not a CA (root or issuing) in the config's database.
fn issuer_missing(cfg: &crate::config::Config, issuer: &str) -> anyhow::Result<Option<String>> {
    let store = crate::store::open_existing(&cfg.database_path(), crate::clock::system())?;
    let cas: Vec<String> = store
        .list_cas()?
        .into_iter()
        .filter(|c| c.role != crate::store::CaRole::Ocsp)
        .map(|c| c.name)
        .collect();
    if cas.iter().any(|c| c == issuer) {
        return Ok(None);
    }
    Ok(Some(format!(
        "'{issuer}' is not a CA of this hallmark (its CAs: {}); create it (hallmark ca create-issuing {issuer} --purpose ...) or name one of these",
        cas.join(", ")
    )))
}

pub(super) fn cmd_profile(cli: &Cli, c: &ProfileCmd) -> anyhow::Result<()> {
    match c {
        ProfileCmd::Check { file: Some(f) } => {
            let p = Profile::load_file(f)?;
            // With a CA's config, the issuer must be one of its CAs too.
            let note = match &cli.config {
                Some(path) => {
                    let cfg = crate::config::Config::load(path)?;
                    crate::engine::check_config(&cfg)?;
                    if let Some(why) = issuer_missing(&cfg, &p.issuer)? {
                        bail!("{}: issuer: {why}", f.display());
                    }
                    "a CA of this config"
                }
                None => "not checked against a CA: give --config for that",
            };
            println!(
                "{}: ok (profile '{}', issuer {} - {note})",
                f.display(),
                p.name,
                p.issuer
            );
        }
        ProfileCmd::Check { file: None } => {
            let path = cli.config.as_ref().ok_or_else(|| {
                anyhow!("give a FILE, or --config to check the config's profiles")
            })?;
            let cfg = crate::config::Config::load(path)?;
            crate::engine::check_config(&cfg)?;
            let ps = Profiles::load_dir(&cfg.profiles_dir())?;
            for p in ps.iter() {
                // A shipped profile whose CA is made on demand (matter-dac's PAI) is valid but
                // not usable yet: said so, not "ok".
                match issuer_missing(&cfg, &p.issuer)? {
                    None => println!(
                        "{}: ok (profile '{}', issuer {})",
                        p.file.display(),
                        p.name,
                        p.issuer
                    ),
                    Some(why) => println!(
                        "{}: valid, not usable yet (profile '{}'): {why}",
                        p.file.display(),
                        p.name
                    ),
                }
            }
        }
        ProfileCmd::List => {
            let hm = open(cli)?;
            for p in hm.profiles.iter() {
                println!("{:<18} issuer={:<16} {}", p.name, p.issuer, p.description);
            }
        }
    }
    Ok(())
}
