//! Logs (`tracing`): text or JSON lines on standard error, at a level the operator picks;
//! `hallmark serve` writes one access line per request (target `hallmark::access`) under a
//! request id it also returns as `X-Request-Id`. Never a secret, a body or a PIN.

use std::io::IsTerminal;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (timestamp, level, target, message and the event's fields).
    Json,
}

/// Installs the process's log writer: FORMAT on standard error, events at LEVEL and above
/// (`error`, `warn`, `info`, `debug`, `trace`, or `tracing` directives such as
/// `info,hallmark::access=warn`). Lines are written by a thread of their own, so a request
/// pays for formatting its line, not for the write (none is dropped: a full buffer waits).
/// Keep the guard until the process ends: dropping it writes what is buffered.
pub fn init(format: LogFormat, level: &str) -> Result<LogGuard, String> {
    let filter = tracing_subscriber::EnvFilter::try_new(level).map_err(|e| {
        format!("--log-level '{level}': {e} (give error, warn, info, debug or trace)")
    })?;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    installed.map_err(|e| format!("cannot install the log writer: {e}"))?;
    Ok(LogGuard(guard))
}

/// Flushes the log when dropped (at the end of `main`).
pub struct LogGuard(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard);

/// A new request id: 96 random bits, hex.
pub fn request_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}
