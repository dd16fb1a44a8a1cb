//! `POST /api/v1/provision/batch`: NDJSON in, NDJSON out, both streamed.
//!
//! Lines are read as they arrive and answered in chunks (256 lines, or whatever arrived when the
//! sender pauses); each chunk's answers are written only after its certificates are durably
//! stored. Reading waits while a chunk is being answered, so a station that streams a million
//! lines is held to the server's pace by TCP and memory stays constant. Clients must read the
//! answers while they send (full duplex), as `hallmark station run` does.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::{Response, StatusCode};

use super::{boxed, problem, ApiBody};
use crate::engine::Hallmark;
use crate::provision::ProvisionAnswer;

/// Lines answered together (one group commit for their records).
const CHUNK_LINES: usize = 256;
/// The longest accepted line.
const MAX_LINE: usize = 64 * 1024;
/// A partial chunk is answered when no more bytes come for this long.
const PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// A response body fed from a channel.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

pub async fn stream(
    hm: Arc<Hallmark>,
    peer: Option<Arc<Vec<u8>>>,
    body: Incoming,
) -> Response<ApiBody> {
    let auth_hm = hm.clone();
    let station = tokio::task::spawn_blocking(move || {
        auth_hm.station_for_certificate(peer.as_deref().map(|v| v.as_slice()))
    })
    .await;
    let station = match station {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return boxed(super::api::error_response(&e)),
        Err(_) => {
            return boxed(problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            ))
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut body = body;
        let mut buf: Vec<u8> = Vec::new();
        let mut lines: Vec<String> = Vec::new();
        let station = Arc::new(station);
        let mut ended = false;
        while !ended || !lines.is_empty() {
            if !ended && lines.len() < CHUNK_LINES {
                let wait = if lines.is_empty() {
                    std::time::Duration::from_secs(3600)
                } else {
                    PAUSE
                };
                match tokio::time::timeout(wait, body.frame()).await {
                    Ok(Some(Ok(frame))) => {
                        if let Ok(data) = frame.into_data() {
                            buf.extend_from_slice(&data);
                            while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                                let line: Vec<u8> = buf.drain(..=pos).collect();
                                let text = String::from_utf8_lossy(&line[..line.len() - 1])
                                    .trim()
                                    .to_string();
                                if !text.is_empty() {
                                    lines.push(text);
                                }
                            }
                            if buf.len() > MAX_LINE {
                                let a = ProvisionAnswer::Refused {
                                    device_serial: None,
                                    kind: "too-large".into(),
                                    detail: format!("a line is longer than {MAX_LINE} bytes; the batch stops here"),
                                };
                                let _ = tx.send(Bytes::from(a.to_json() + "\n")).await;
                                return;
                            }
                        }
                        continue;
                    }
                    Ok(Some(Err(_))) | Ok(None) => {
                        ended = true;
                        let rest = String::from_utf8_lossy(&buf).trim().to_string();
                        buf.clear();
                        if !rest.is_empty() {
                            lines.push(rest);
                        }
                    }
                    Err(_) => {} // a pause: answer what arrived
                }
            }
            if lines.is_empty() {
                continue;
            }
            let chunk = std::mem::take(&mut lines);
            let (hm, st) = (hm.clone(), station.clone());
            let answers = match tokio::task::spawn_blocking(move || hm.provision(&st, &chunk)).await
            {
                Ok(a) => a,
                Err(_) => return,
            };
            for a in answers {
                if tx.send(Bytes::from(a.to_json() + "\n")).await.is_err() {
                    return; // the client went away; what was issued is recorded
                }
            }
        }
    });
    let mut r = Response::new(http_body_util::BodyExt::boxed(ChannelBody(rx)));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-ndjson"),
    );
    r
}
