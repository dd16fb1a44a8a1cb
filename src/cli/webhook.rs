//! `hallmark webhook`: the configured webhooks, what each has delivered, and a test event.

use clap::Subcommand;

use super::{actor, open, print_list, Cli};

#[derive(Subcommand, Debug)]
pub enum WebhookCmd {
    /// Send a `webhook.test` event to webhook NAME now (not through the outbox) and print the
    /// receiver's answer; exits non-zero when it is not delivered.
    Test { name: String },
    /// The configured webhooks: URL, events, the last event delivered and any failure.
    List,
}

pub(super) fn cmd_webhook(cli: &Cli, c: &WebhookCmd) -> anyhow::Result<()> {
    let hm = open(cli)?;
    let find = |name: &str| {
        hm.config
            .webhooks
            .iter()
            .find(|w| w.name == name)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no webhook '{name}' in {} (configured: {})",
                    hm.config.path.display(),
                    hm.config
                        .webhooks
                        .iter()
                        .map(|w| w.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    };
    match c {
        WebhookCmd::Test { name } => {
            let r = crate::webhooks::Receiver::new(find(name)?)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let status = rt
                .block_on(r.send(&crate::webhooks::test_event(
                    &actor(),
                    crate::clock::Clock::now(&crate::clock::SystemClock),
                )))
                .map_err(|why| anyhow::anyhow!("webhook '{name}' ({}): {why}", r.config.url))?;
            println!("webhook '{name}' ({}): delivered, {status}", r.config.url);
        }
        WebhookCmd::List => {
            let rows = hm
                .config
                .webhooks
                .iter()
                .map(|w| {
                    let cur = hm.store.webhook_cursor(&w.name)?;
                    let events = if w.events.is_empty() {
                        "all".to_string()
                    } else {
                        w.events.join(",")
                    };
                    let j = serde_json::json!({
                        "name": w.name, "url": w.url, "events": w.events, "format": w.format,
                        "last_delivered": cur.as_ref().map(|c| c.last_id),
                        "failed_attempts": cur.as_ref().map(|c| c.attempts).unwrap_or(0),
                        "last_error": cur.as_ref().and_then(|c| c.last_error.clone()),
                    });
                    let line = format!(
                        "{:<16} {} events={} format={} last={} {}",
                        w.name,
                        w.url,
                        events,
                        w.format,
                        cur.as_ref()
                            .map(|c| c.last_id.to_string())
                            .unwrap_or_else(|| "-".into()),
                        cur.as_ref()
                            .and_then(|c| c.last_error.as_ref())
                            .map(|e| format!(
                                "failing ({} attempts): {e}",
                                cur.as_ref().map(|c| c.attempts).unwrap_or(0)
                            ))
                            .unwrap_or_default()
                    );
                    Ok((j, line))
                })
                .collect::<Result<Vec<_>, crate::store::StoreError>>()?;
            print_list(cli.output, rows, false, None, "")?;
        }
    }
    Ok(())
}
