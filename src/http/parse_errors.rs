//! hyper answers a request head it cannot parse (a malformed request line or header, a target
//! over 64 KiB, more than 100 headers) by itself, with a bodiless `400`, `414` or `431` and no
//! hook for the server. This wrapper around a connection's stream recognises that answer, as
//! hyper writes it (`connection: close`, `content-length: 0`, in one write of its own), and
//! sends a problem document in its place, so every error either listener gives is
//! `application/problem+json`. Anything else passes through untouched.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The longest answer hyper writes for a parse error (status line, three short headers).
const MAX_HYPER_ANSWER: usize = 160;

/// A stream whose writes are watched for hyper's own parse-error answers.
pub struct ParseErrors<T> {
    inner: T,
    /// A problem document being written in place of hyper's answer, and how much of it is out.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T> ParseErrors<T> {
    pub fn new(inner: T) -> Self {
        ParseErrors {
            inner,
            pending: None,
        }
    }
}

/// The problem document for hyper's answer `head`, when `head` is one: a complete, bodiless
/// `400`, `414` or `431` response that closes the connection.
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    if head.len() > MAX_HYPER_ANSWER || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let (status, kind, detail) = if text.starts_with("HTTP/1.1 400 ") {
        (
            400,
            "bad-request",
            "the request head is not valid HTTP/1.1 (its request line or a header)",
        )
    } else if text.starts_with("HTTP/1.1 414 ") {
        (
            414,
            "uri-too-long",
            "the request target is longer than the server reads",
        )
    } else if text.starts_with("HTTP/1.1 431 ") {
        (
            431,
            "headers-too-large",
            "the request head has more headers, or more bytes, than the server reads",
        )
    } else {
        return None;
    };
    let lower = text.to_ascii_lowercase();
    if !lower.contains("\r\ncontent-length: 0\r\n") || !lower.contains("\r\nconnection: close\r\n")
    {
        return None;
    }
    let body = serde_json::json!({
        "type": format!("{}{kind}", super::PROBLEM_BASE),
        "title": text.get(13..).and_then(|r| r.split("\r\n").next()).unwrap_or(""),
        "status": status,
        "detail": detail,
    })
    .to_string();
    let head = text.replacen(
        "content-length: 0\r\n",
        &format!(
            "content-type: application/problem+json\r\ncontent-length: {}\r\n",
            body.len()
        ),
        1,
    );
    Some([head.into_bytes(), body.into_bytes()].concat())
}

impl<T: AsyncWrite + Unpin> ParseErrors<T> {
    /// Writes what is left of a replacement; ready once it is all out.
    fn drive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, done)) = &mut self.pending {
            if *done == bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ParseErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ParseErrors<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drive(cx))?;
        if let Some(doc) = replacement(buf) {
            self.pending = Some((doc, 0));
            // Taken whole; what the stream does not take now goes at the next write or flush.
            if let Poll::Ready(Err(e)) = self.drive(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let first = bufs.iter().find(|b| !b.is_empty());
        if total <= MAX_HYPER_ANSWER && first.is_some_and(|b| b.starts_with(b"HTTP/1.1 4")) {
            let whole: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            if replacement(&whole).is_some() {
                return self.poll_write(cx, &whole);
            }
        }
        ready!(self.drive(cx))?;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drive(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drive(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::replacement;

    #[test]
    fn only_hypers_own_bodiless_answers_are_replaced() {
        let hyper = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Thu, 03 Dec 2026 20:02:30 GMT\r\n\r\n";
        let doc = String::from_utf8(replacement(hyper).expect("replaced")).expect("text");
        assert!(doc.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{doc}");
        assert!(doc.contains("content-type: application/problem+json\r\n"));
        let (head, body) = doc.split_once("\r\n\r\n").expect("head");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["type"], "urn:hallmark:problem:bad-request");
        assert_eq!(v["title"], "Bad Request");
        // Our own answers (with a body, or kept alive) and other statuses pass.
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 120\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(
            replacement(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
                .is_none()
        );
        assert!(replacement(b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n").is_some());
    }
}
