//! The events a webhook can subscribe to: the vocabulary the configuration is checked against
//! when it is opened, apart from the deliverer so that checking names nothing of it.

use crate::config::WebhookConfig;

/// The events a webhook can ask for.
pub const EVENTS: &[&str] = &[
    "request.pending",
    "request.approved",
    "request.denied",
    "request.expired",
    "request.cancelled",
    "signature.made",
    "certificate.revoked",
    "certificate.expiring",
];

/// The events each `[[webhook]]` subscribes to, checked against [`EVENTS`] when the
/// configuration is opened.
pub fn check_events(webhooks: &[WebhookConfig]) -> std::result::Result<(), String> {
    for w in webhooks {
        for e in &w.events {
            if !EVENTS.contains(&e.as_str()) {
                return Err(format!(
                    "webhook '{}': unknown event '{e}' (known: {})",
                    w.name,
                    EVENTS.join(", ")
                ));
            }
        }
    }
    Ok(())
}
