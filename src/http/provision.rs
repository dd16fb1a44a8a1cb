//! `POST /api/v1/provision/batch`: NDJSON in, NDJSON out, both streamed.
//!
//! Lines are read as they arrive and answered in chunks (256 lines, or whatever arrived when the
//! sender pauses); each chunk's answers are written only after its certificates are durably
//! stored. A reader task cuts the body into chunks and hands them to the issuance pipeline
//! (`Hallmark::provision_stream`, on a blocking thread), which checks and prepares the next
//! chunks while the current one is recorded and signed. The reader stays at most a few chunks
//! ahead, so a station that streams a million lines is held to the server's pace by TCP and
//! memory stays constant. Clients must read the
//! answers while they send (full duplex), as `hallmark station run` does.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::Response;

use super::{boxed, error_response, refused, ApiBody};
use crate::engine::Hallmark;
use crate::error::Refusal;
use crate::provision::{Lines, ProvisionAnswer};
use crate::store::StationRecord;

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
        auth_hm
            .provisioning
            .station_for_certificate(peer.as_deref().map(|v| v.as_slice()))
    })
    .await;
    let station = match station {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            super::drain_refused(body).await;
            return boxed(error_response(&e));
        }
        Err(_) => return boxed(refused(Refusal::Internal)),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    // Chunks of lines, from the reader below to the issuance pipeline; the small bound keeps
    // the reader at most a couple of chunks ahead (TCP holds the rest back).
    let (chunks_tx, chunks_rx) = tokio::sync::mpsc::channel::<Feed>(2);
    let answers_tx = tx.clone();
    tokio::task::spawn_blocking(move || run_pipeline(&hm, &station, chunks_rx, answers_tx));
    tokio::spawn(async move {
        let mut body = body;
        let mut buf: Vec<u8> = Vec::new();
        let mut lines: Vec<String> = Vec::new();
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
                            let mut start = 0;
                            let mut too_long = false;
                            while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
                                // A whole line over the limit ends the batch as a partial one
                                // would: the lines before it are answered, none after it.
                                if pos > MAX_LINE {
                                    too_long = true;
                                    break;
                                }
                                let line = &buf[start..start + pos];
                                let text = String::from_utf8_lossy(line).trim().to_string();
                                if !text.is_empty() {
                                    lines.push(text);
                                }
                                start += pos + 1;
                            }
                            buf.drain(..start);
                            if too_long || buf.len() > MAX_LINE {
                                if !lines.is_empty() {
                                    let _ = chunks_tx
                                        .send(Feed::Lines(std::mem::take(&mut lines)))
                                        .await;
                                }
                                let a = ProvisionAnswer::Refused {
                                    device_serial: None,
                                    kind: "too-large".into(),
                                    detail: format!("a line is longer than {MAX_LINE} bytes; the batch stops here"),
                                };
                                let _ = chunks_tx.send(Feed::Stop(a)).await;
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
            if chunks_tx
                .send(Feed::Lines(std::mem::take(&mut lines)))
                .await
                .is_err()
            {
                return; // the pipeline stopped: the client went away
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

/// What the reader hands the pipeline.
enum Feed {
    Lines(Vec<String>),
    /// The batch stops here with this answer (after the answers of the chunks before it).
    Stop(ProvisionAnswer),
}

/// The issuance pipeline of one provisioning stream, on a blocking thread: chunks in from the
/// reader, answers out to the response body, in order.
fn run_pipeline(
    hm: &Hallmark,
    station: &StationRecord,
    mut chunks: tokio::sync::mpsc::Receiver<Feed>,
    answers: tokio::sync::mpsc::Sender<Bytes>,
) {
    let mut stop: Option<ProvisionAnswer> = None;
    let mut feed = |f: Option<Feed>| match f {
        Some(Feed::Lines(l)) => Lines::Chunk(l),
        Some(Feed::Stop(a)) => {
            stop = Some(a);
            Lines::End
        }
        None => Lines::End,
    };
    hm.provisioning.provision_stream(
        station,
        |wait| {
            if wait {
                feed(chunks.blocking_recv())
            } else {
                match chunks.try_recv() {
                    Ok(f) => feed(Some(f)),
                    Err(tokio::sync::mpsc::error::TryRecvError::Empty) => Lines::NotYet,
                    Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => Lines::End,
                }
            }
        },
        |batch| {
            // One frame per chunk: one TLS record run and one write, not one per line.
            let mut out = String::with_capacity(batch.len() * 1024);
            for a in batch {
                out.push_str(&a.to_json());
                out.push('\n');
            }
            // Err: the client went away; what was issued is recorded.
            answers.blocking_send(Bytes::from(out)).is_ok()
        },
    );
    if let Some(a) = stop {
        let _ = answers.blocking_send(Bytes::from(a.to_json() + "\n"));
    }
}
