//! `hallmark publisher`: the organisations with a verified identity that keys and certificates are for.

use anyhow::anyhow;
use clap::Subcommand;

use super::{actor, open, print_list, ts, Cli, Output};
use crate::store::Publisher;

#[derive(Subcommand, Debug)]
pub enum PublisherCmd {
    /// Register a publisher with its verified identity.
    Add {
        /// Short id, e.g. `acme`.
        id: String,
        /// Verified legal name (becomes O and CN).
        #[arg(long)]
        org: String,
        /// Two-letter country code.
        #[arg(long)]
        country: String,
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        locality: Option<String>,
        /// Profiles the publisher may use, comma separated.
        #[arg(long, value_delimiter = ',', required = true)]
        profiles: Vec<String>,
    },
    /// List publishers.
    List,
    /// Show one publisher.
    Show { id: String },
    /// Change the profiles a publisher may use (its verified identity stays as registered).
    Update {
        id: String,
        /// The new list of profiles, comma separated (replaces the old one).
        #[arg(long, value_delimiter = ',', required = true)]
        profiles: Vec<String>,
    },
}

pub(super) fn cmd_publisher(cli: &Cli, c: &PublisherCmd) -> anyhow::Result<()> {
    let hm = open(cli)?;
    match c {
        PublisherCmd::Add {
            id,
            org,
            country,
            state,
            locality,
            profiles,
        } => {
            let p = Publisher {
                id: id.clone(),
                org: org.clone(),
                country: country.clone(),
                state: state.clone(),
                locality: locality.clone(),
                profiles: profiles.clone(),
                created_at: hm.clock.now(),
            };
            hm.add_publisher(&p, &actor())?;
            println!("added publisher {id}");
        }
        PublisherCmd::List => {
            let rows = hm
                .store
                .list_publishers()?
                .into_iter()
                .map(|p| {
                    let line = format!(
                        "{:<16} {:<30} {} profiles={}",
                        p.id,
                        p.org,
                        p.country,
                        p.profiles.join(",")
                    );
                    (publisher_json(&p), line)
                })
                .collect();
            print_list(cli.output, rows, false, None, "")?;
        }
        PublisherCmd::Update { id, profiles } => {
            hm.set_publisher_profiles(id, profiles, &actor())?;
            println!("publisher {id} may now use: {}", profiles.join(", "));
        }
        PublisherCmd::Show { id } => {
            let p = hm
                .store
                .get_publisher(id)?
                .ok_or_else(|| anyhow!("unknown publisher '{id}'"))?;
            if cli.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&publisher_json(&p))?);
                return Ok(());
            }
            println!("id:       {}\norg:      {}\ncountry:  {}\nstate:    {}\nlocality: {}\nprofiles: {}\ncreated:  {}",
                p.id, p.org, p.country, p.state.unwrap_or_default(), p.locality.unwrap_or_default(), p.profiles.join(", "), ts(p.created_at));
        }
    }
    Ok(())
}

fn publisher_json(p: &Publisher) -> serde_json::Value {
    serde_json::json!({
        "id": p.id, "org": p.org, "country": p.country, "state": p.state,
        "locality": p.locality, "profiles": p.profiles, "created_at": ts(p.created_at),
    })
}
