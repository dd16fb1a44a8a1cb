//! Prometheus metrics, kept in memory and rendered as text for `GET /metrics`.
//!
//! A handful of counters and histograms behind mutexes: the request rate of a CA is far below
//! what a lock per observation costs, and this keeps the crate free of a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Histogram bucket upper bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Clone, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    total: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.total += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.total
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.total);
    }
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    issued: BTreeMap<String, u64>,
    sign: Histogram,
    refused_connections: BTreeMap<&'static str, u64>,
}

/// The process's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    /// One HTTP request: its route template (never the raw path), status and latency.
    pub fn observe_request(&self, route: &str, status: u16, elapsed: Duration) {
        if let Ok(mut m) = self.inner.lock() {
            *m.requests.entry((route.to_string(), status)).or_default() += 1;
            m.latency
                .entry(route.to_string())
                .or_default()
                .observe(elapsed.as_secs_f64());
        }
    }

    pub fn count_issued(&self, profile: &str, n: u64) {
        if let Ok(mut m) = self.inner.lock() {
            *m.issued.entry(profile.to_string()).or_default() += n;
        }
    }

    /// A connection closed because its listener held `max_connections` already (the one with
    /// the least progress, to admit a new one).
    pub fn count_refused_connection(&self, listener: &'static str) {
        if let Ok(mut m) = self.inner.lock() {
            *m.refused_connections.entry(listener).or_default() += 1;
        }
    }

    pub fn observe_sign(&self, elapsed: Duration) {
        if let Ok(mut m) = self.inner.lock() {
            m.sign.observe(elapsed.as_secs_f64());
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(m) = self.inner.lock() else {
            return out;
        };
        out.push_str("# HELP hallmark_http_requests_total HTTP requests by route and status.\n# TYPE hallmark_http_requests_total counter\n");
        for ((route, status), n) in &m.requests {
            let _ = writeln!(
                out,
                "hallmark_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP hallmark_http_request_duration_seconds HTTP request latency by route.\n# TYPE hallmark_http_request_duration_seconds histogram\n");
        for (route, h) in &m.latency {
            h.render(
                &mut out,
                "hallmark_http_request_duration_seconds",
                &format!("route=\"{route}\""),
            );
        }
        out.push_str("# HELP hallmark_certificates_issued_total Certificates issued by profile.\n# TYPE hallmark_certificates_issued_total counter\n");
        for (profile, n) in &m.issued {
            let _ = writeln!(
                out,
                "hallmark_certificates_issued_total{{profile=\"{profile}\"}} {n}"
            );
        }
        out.push_str("# HELP hallmark_connections_refused_total Connections closed because their listener held api.max_connections: the one with the least progress, to admit a new one.\n# TYPE hallmark_connections_refused_total counter\n");
        for (listener, n) in &m.refused_connections {
            let _ = writeln!(
                out,
                "hallmark_connections_refused_total{{listener=\"{listener}\"}} {n}"
            );
        }
        out.push_str("# HELP hallmark_keystore_sign_duration_seconds Key-store signing latency (certificates).\n# TYPE hallmark_keystore_sign_duration_seconds histogram\n");
        m.sign
            .render(&mut out, "hallmark_keystore_sign_duration_seconds", "");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.observe_request("/api/v1/certificates", 201, Duration::from_millis(3));
        m.count_issued("code-signing", 2);
        m.observe_sign(Duration::from_micros(50));
        let t = m.render();
        assert!(t.contains(
            "hallmark_http_requests_total{route=\"/api/v1/certificates\",status=\"201\"} 1"
        ));
        assert!(t.contains("hallmark_http_request_duration_seconds_bucket{route=\"/api/v1/certificates\",le=\"0.005\"} 1"));
        assert!(t.contains("hallmark_certificates_issued_total{profile=\"code-signing\"} 2"));
        assert!(t.contains("hallmark_keystore_sign_duration_seconds_count 1"));
    }
}
