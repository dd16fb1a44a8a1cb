//! Webhooks: what happens (a request waits, is approved or denied, a signature is made, a
//! certificate revoked) delivered to the receivers `[[webhook]]` names, so that approvers hear of
//! a request without polling.
//!
//! The audit trail is the outbox: every change writes its audit event in its own transaction,
//! so an event exists exactly when its change does. A cursor per webhook (`webhook_cursors`)
//! records the last event delivered; the deliverer (a thread of `hallmark serve`) sends the
//! events after it, in order, one at a time, as JSON signed with HMAC-SHA256
//! (`X-Hallmark-Signature: sha256=HEX` over the body) or as Slack's `{"text": ...}`. A failed
//! delivery (no answer, or not 2xx) is tried again after 1, 2, 4 ... seconds, at most 5 minutes
//! apart, until it succeeds; the cursor moves only after a success, so neither a receiver that
//! is down nor a restart of the server loses an event. A new webhook starts at the newest event
//! (history is not replayed). Certificates that end within `[notifications] expiring_days`
//! (default 30; not a factory line's devices) are announced once each as
//! `certificate.expiring`, looked for every minute.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::config::{Config, WebhookConfig};

use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::outbound::Tls;
use crate::store::Store;
use crate::store::{rfc3339, AuditEvent, WebhookCursor};

pub(crate) mod events;
pub use events::{check_events, EVENTS};

/// The webhook service: it follows the audit trail (the outbox) for each configured webhook and
/// announces expiring certificates. It holds the store, the clock, `[[webhook]]` and
/// `[notifications]`.
pub struct Webhooks {
    store: Arc<dyn Store>,
    clock: SharedClock,
    configs: Vec<WebhookConfig>,
    /// `notifications.expiring_days`.
    expiring_days: u32,
}

impl Webhooks {
    pub fn new(store: Arc<dyn Store>, clock: SharedClock, config: &Config) -> Webhooks {
        Webhooks {
            store,
            clock,
            configs: config.webhooks.clone(),
            expiring_days: config.notifications.expiring_days,
        }
    }
}

/// The longest wait between two attempts.
const MAX_BACKOFF_SECS: i64 = 300;

/// An event as delivered.
#[derive(Debug, Clone)]
pub struct Event {
    /// The audit event's id: unique, increasing (the `X-Hallmark-Delivery` header).
    pub id: i64,
    pub name: &'static str,
    pub at: i64,
    pub actor: String,
    pub data: serde_json::Value,
}

/// The webhook event an audit event is, if it is one, with what a receiver needs to act on it.
impl Webhooks {
    pub fn event_of(&self, a: &AuditEvent) -> Option<Event> {
        let (name, kind) = match a.action.as_str() {
            "request.pending" => ("request.pending", "certificate"),
            "signature.pending" => ("request.pending", "signature"),
            "request.approved" => ("request.approved", "certificate"),
            "signature.approved" => ("request.approved", "signature"),
            "request.denied" => ("request.denied", "certificate"),
            "signature.denied" => ("request.denied", "signature"),
            "request.expired" => ("request.expired", "certificate"),
            "signature.expired" => ("request.expired", "signature"),
            "request.cancelled" => ("request.cancelled", "certificate"),
            "signature.cancelled" => ("request.cancelled", "signature"),
            "signature.created" => ("signature.made", "signature"),
            "certificate.revoked" => ("certificate.revoked", "certificate"),
            "certificate.expiring" => ("certificate.expiring", "certificate"),
            _ => return None,
        };
        let subject = a.subject.clone().unwrap_or_default();
        let mut data = serde_json::Map::new();
        data.insert("kind".into(), kind.into());
        let id: Option<i64> = subject.parse().ok();
        let json = |m: &Option<String>| {
            m.as_deref()
                .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
                .unwrap_or(serde_json::Value::Null)
        };
        match (name, kind, id) {
            ("certificate.expiring", _, _) => {
                data.insert("serial".into(), subject.into());
                if let serde_json::Value::Object(d) = json(&a.detail) {
                    data.extend(d);
                }
            }
            ("certificate.revoked", _, _) => {
                data.insert("serial".into(), subject.into());
                data.insert("detail".into(), a.detail.clone().into());
            }
            ("signature.made", _, Some(id)) => {
                data.insert("signature_id".into(), id.into());
                if let Ok(Some(s)) = self.store.get_signature(id) {
                    data.insert("key".into(), s.key_label.into());
                    data.insert("digest_algorithm".into(), s.digest_algorithm.into());
                    data.insert("digest".into(), s.digest.into());
                    data.insert("format".into(), s.format.into());
                    data.insert("requester".into(), s.requester.into());
                    data.insert("approvers".into(), s.approvers.into());
                    data.insert("metadata".into(), json(&s.metadata));
                }
            }
            (_, "signature", Some(id)) => {
                data.insert("request_id".into(), id.into());
                if let Ok(Some(r)) = self.store.get_signature_request(id) {
                    data.insert("key".into(), r.key_label.into());
                    data.insert("publisher".into(), r.publisher.into());
                    data.insert("requester".into(), r.requester.into());
                    data.insert("digest_algorithm".into(), r.digest_algorithm.into());
                    data.insert("digest".into(), r.digest.into());
                    data.insert("format".into(), r.format.into());
                    data.insert("metadata".into(), json(&r.metadata));
                    data.insert("approvals_required".into(), r.approvals_required.into());
                    data.insert("status".into(), r.status.as_str().into());
                    data.insert("expires_at".into(), rfc3339(r.expires_at).into());
                }
            }
            (_, _, Some(id)) => {
                data.insert("request_id".into(), id.into());
                if let Ok(Some(r)) = self.store.get_request(id) {
                    data.insert("profile".into(), r.profile.into());
                    data.insert("publisher".into(), r.publisher.into());
                    data.insert("requester".into(), r.requester.into());
                    data.insert("status".into(), r.status.as_str().into());
                }
            }
            _ => {}
        }
        if matches!(name, "request.approved" | "request.denied") {
            data.insert("comment".into(), a.detail.clone().into());
        }
        Some(Event {
            id: a.id,
            name,
            at: a.at,
            actor: a.actor.clone(),
            data: serde_json::Value::Object(data),
        })
    }
}

/// The body a webhook is sent: hallmark's JSON document, or Slack's `{"text": ...}`.
pub fn body(w: &WebhookConfig, e: &Event) -> Vec<u8> {
    let doc = if w.format == "slack" {
        let d = &e.data;
        let what = match (d["kind"].as_str(), d["request_id"].as_i64()) {
            (Some(k), Some(id)) => format!("{k} request {id}"),
            _ => d["serial"]
                .as_str()
                .map(|s| format!("certificate {s}"))
                .or_else(|| d["signature_id"].as_i64().map(|i| format!("signature {i}")))
                .unwrap_or_default(),
        };
        let key = d["key"]
            .as_str()
            .map(|k| format!(", key {k}"))
            .unwrap_or_default();
        serde_json::json!({
            "text": format!("hallmark: {} — {what}{key} (by {})", e.name, e.actor),
        })
    } else {
        serde_json::json!({
            "id": e.id,
            "event": e.name,
            "at": rfc3339(e.at),
            "actor": e.actor,
            "data": e.data,
        })
    };
    doc.to_string().into_bytes()
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    format!(
        "sha256={}",
        hex::encode(aws_lc_rs::hmac::sign(&key, body).as_ref())
    )
}

/// A webhook ready to send: its settings, its secret, whom it trusts.
pub struct Receiver {
    pub config: WebhookConfig,
    secret: zeroize::Zeroizing<String>,
    tls: Tls,
}

/// A webhook that cannot be used as configured.
fn misconfigured(name: &str, problem: String) -> Error {
    Error::Config(crate::config::ConfigError::Invalid {
        path: format!("[[webhook]] {name}"),
        problem,
    })
}

impl Receiver {
    pub fn new(config: &WebhookConfig) -> Result<Receiver> {
        let secret = match (&config.secret, &config.secret_env) {
            (Some(s), _) => zeroize::Zeroizing::new(s.clone()),
            (None, Some(var)) => zeroize::Zeroizing::new(std::env::var(var).map_err(|_| {
                misconfigured(
                    &config.name,
                    format!("the variable {var} (secret_env) is not set"),
                )
            })?),
            (None, None) => return Err(misconfigured(&config.name, "no secret".into())),
        };
        let tls = Tls::new(config.ca.as_deref())
            .map_err(|e| misconfigured(&config.name, e.to_string()))?;
        Ok(Receiver {
            config: config.clone(),
            secret,
            tls,
        })
    }

    /// Whether it asked for event `name`.
    pub fn wants(&self, name: &str) -> bool {
        self.config.events.is_empty() || self.config.events.iter().any(|e| e == name)
    }

    /// Sends one event; Ok with the status when it was 2xx.
    pub async fn send(&self, e: &Event) -> std::result::Result<u16, String> {
        let body = body(&self.config, e);
        let headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("x-hallmark-event".to_string(), e.name.to_string()),
            ("x-hallmark-delivery".to_string(), e.id.to_string()),
            (
                "x-hallmark-signature".to_string(),
                signature(self.secret.as_bytes(), &body),
            ),
        ];
        let got = crate::outbound::post(
            &self.config.url,
            &headers,
            Bytes::from(body),
            &self.tls,
            Duration::from_secs(10),
            64 * 1024,
        )
        .await
        .map_err(|e| e.to_string())?;
        if (200..300).contains(&got.status) {
            Ok(got.status)
        } else {
            Err(format!("the receiver answered {}", got.status))
        }
    }
}

/// The webhook test event (`hallmark webhook test NAME`): sent at once, not through the outbox.
pub fn test_event(actor: &str, at: i64) -> Event {
    Event {
        id: 0,
        name: "webhook.test",
        at,
        actor: actor.to_string(),
        data: serde_json::json!({"kind": "test"}),
    }
}

/// Sends what is due to one webhook: the events after its cursor, in order, until one fails
/// (then it backs off) or none is left. Returns how many were delivered.
impl Webhooks {
    async fn drain(&self, r: &Receiver) -> Result<usize> {
        let name = &r.config.name;
        let mut cursor = match self.store.webhook_cursor(name)? {
            Some(c) => c,
            None => {
                // A new webhook starts now: history is not replayed.
                let c = WebhookCursor {
                    name: name.clone(),
                    last_id: self.store.audit_last_id()?,
                    attempts: 0,
                    next_at: 0,
                    last_error: None,
                };
                self.store.set_webhook_cursor(&c)?;
                c
            }
        };
        if cursor.next_at > self.clock.now() {
            return Ok(0);
        }
        let mut sent = 0;
        loop {
            let events = self.store.audit_after(cursor.last_id, 100)?;
            if events.is_empty() {
                return Ok(sent);
            }
            for a in events {
                match self.event_of(&a).filter(|e| r.wants(e.name)) {
                    None => cursor.last_id = a.id,
                    Some(e) => match r.send(&e).await {
                        Ok(_) => {
                            cursor.last_id = a.id;
                            cursor.attempts = 0;
                            cursor.next_at = 0;
                            cursor.last_error = None;
                            self.store.set_webhook_cursor(&cursor)?;
                            sent += 1;
                        }
                        Err(why) => {
                            cursor.attempts += 1;
                            let wait = 1i64
                                .checked_shl((cursor.attempts - 1).clamp(0, 16) as u32)
                                .unwrap_or(MAX_BACKOFF_SECS)
                                .min(MAX_BACKOFF_SECS);
                            cursor.next_at = self.clock.now() + wait;
                            tracing::warn!(
                                webhook = %name,
                                event = e.name,
                                delivery = e.id,
                                attempts = cursor.attempts,
                                retry_in_secs = wait,
                                "webhook delivery failed: {why}"
                            );
                            cursor.last_error = Some(why);
                            self.store.set_webhook_cursor(&cursor)?;
                            return Ok(sent);
                        }
                    },
                }
            }
            // Events passed over move the cursor too (saved with the next delivery, or here).
            self.store.set_webhook_cursor(&cursor)?;
        }
    }
}

/// How often certificates are looked at for `certificate.expiring`.
const EXPIRY_SCAN: Duration = Duration::from_secs(60);

/// Announces (as `certificate.expiring` audit events, the outbox) the certificates that end
/// within `[notifications] expiring_days` and were not announced yet; how many.
impl Webhooks {
    pub fn announce_expiring(&self) -> Result<usize> {
        let t = self.clock.now();
        let days = i64::from(self.expiring_days);
        let soon = self.store.expiring_unnoticed(t, t + days * 86_400, 500)?;
        // A publisher key's certificate is named by its key.
        let keys: std::collections::HashMap<String, String> = if soon.is_empty() {
            Default::default()
        } else {
            self.store
                .list_keys(None)?
                .into_iter()
                .filter_map(|k| k.cert_serial.map(|s| (s, k.label)))
                .collect()
        };
        for c in &soon {
            let detail = serde_json::json!({
                "not_after": rfc3339(c.not_after),
                "days_left": (c.not_after - t) / 86_400,
                "publisher": c.publisher,
                "profile": c.profile,
                "subject": c.subject,
                "key": keys.get(&c.serial),
            });
            self.store
                .notice_expiring(c, &detail.to_string(), "hallmark")?;
        }
        Ok(soon.len())
    }
}

/// Starts the deliverer (a thread of `hallmark serve`) when webhooks are configured. A webhook
/// whose secret or trust cannot be read is reported and left out.
pub fn spawn(hm: Arc<Webhooks>) {
    let receivers: Vec<Receiver> = hm
        .configs
        .iter()
        .filter_map(|w| match Receiver::new(w) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!("webhook '{}' is not delivered: {e}", w.name);
                None
            }
        })
        .collect();
    if receivers.is_empty() {
        return;
    }
    let started = std::thread::Builder::new()
        .name("hallmark-webhooks".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("cannot start the webhook deliverer: {e}");
                    return;
                }
            };
            let announce = receivers.iter().any(|r| r.wants("certificate.expiring"));
            let mut scanned: Option<std::time::Instant> = None;
            rt.block_on(async {
                loop {
                    // Delivery first: a new webhook's cursor is set before anything is announced.
                    for r in &receivers {
                        if let Err(e) = hm.drain(r).await {
                            tracing::warn!(webhook = %r.config.name, "webhook outbox: {e}");
                        }
                    }
                    if announce && scanned.is_none_or(|t| t.elapsed() >= EXPIRY_SCAN) {
                        scanned = Some(std::time::Instant::now());
                        if let Err(e) = hm.announce_expiring() {
                            tracing::warn!("announcing expiring certificates: {e}");
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            });
        });
    if let Err(e) = started {
        tracing::error!("cannot start the webhook deliverer: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_as_json_and_as_slack_text() {
        let mut w = WebhookConfig {
            name: "h".into(),
            url: "https://h.example/".into(),
            events: Vec::new(),
            secret: Some("s".into()),
            secret_env: None,
            format: "json".into(),
            ca: None,
        };
        let e = Event {
            id: 7,
            name: "request.pending",
            at: 0,
            actor: "token:ci".into(),
            data: serde_json::json!({"kind": "signature", "request_id": 12, "key": "release"}),
        };
        let v: serde_json::Value = serde_json::from_slice(&body(&w, &e)).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["event"], "request.pending");
        assert_eq!(v["at"], "1970-01-01T00:00:00Z");
        assert_eq!(v["data"]["request_id"], 12);
        w.format = "slack".into();
        let v: serde_json::Value = serde_json::from_slice(&body(&w, &e)).unwrap();
        assert_eq!(
            v["text"],
            "hallmark: request.pending — signature request 12, key release (by token:ci)"
        );
        assert!(w.events.is_empty());
    }

    #[test]
    fn signatures_are_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
