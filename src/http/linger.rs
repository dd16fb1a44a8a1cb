//! A lingering close, as nginx's `lingering_close`: once the answer is out and the write side
//! is shut, what the client is still sending is read and dropped, for a bounded time and
//! amount, before the socket closes. A server that closes a socket with unread data makes the
//! kernel reset the connection, and the reset destroys the answer the client has not read yet:
//! a client refused in the middle of an upload (413) would see "broken pipe" instead of the
//! refusal.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// The longest a closed connection lingers (nginx's `lingering_time` is 30 s, its
/// `lingering_timeout` 5 s: a client that reads our answer stops sending long before).
const LINGER: Duration = Duration::from_secs(5);
/// The most that is read and dropped while lingering.
const LINGER_BYTES: usize = 64 * 1024 * 1024;

enum State {
    Open,
    Draining { until: Pin<Box<Sleep>>, left: usize },
    Closed,
}

/// A connection whose shutdown lingers (see the module's text).
pub struct Linger<T> {
    inner: T,
    state: State,
}

impl<T> Linger<T> {
    pub fn new(inner: T) -> Self {
        Linger {
            inner,
            state: State::Open,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Linger<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Linger<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Open => {
                    ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
                    this.state = State::Draining {
                        until: Box::pin(tokio::time::sleep(LINGER)),
                        left: LINGER_BYTES,
                    };
                }
                State::Draining { until, left } => {
                    if until.as_mut().poll(cx).is_ready() {
                        this.state = State::Closed;
                        continue;
                    }
                    let mut scratch = [0u8; 16 * 1024];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                        Poll::Pending => return Poll::Pending,
                        // The client closed (it read the answer), or the connection broke.
                        Poll::Ready(Err(_)) => this.state = State::Closed,
                        Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                            this.state = State::Closed
                        }
                        Poll::Ready(Ok(())) => {
                            *left = left.saturating_sub(buf.filled().len());
                            if *left == 0 {
                                this.state = State::Closed;
                            }
                        }
                    }
                }
                State::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A peer still sending when the server shuts down reads the whole answer, not a reset.
    #[tokio::test]
    async fn the_answer_survives_a_client_still_sending() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let mut s = Linger::new(s);
            let mut head = [0u8; 16];
            s.read_exact(&mut head).await.unwrap();
            s.write_all(b"refused").await.unwrap();
            s.shutdown().await.unwrap();
        });
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        // Two megabytes, of which the server reads 16 bytes.
        let (mut r, mut w) = c.split();
        let send = async {
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..32 {
                if w.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            let _ = w.shutdown().await;
        };
        let mut answer = Vec::new();
        let read = r.read_to_end(&mut answer);
        let (_, got) = tokio::join!(send, read);
        got.unwrap();
        assert_eq!(answer, b"refused");
        server.await.unwrap();
    }
}
