//! One HTTP/1.1 connection to an upstream server.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;

use std::pin::Pin;
use std::task::{ready, Poll};
use std::time::Duration;
use tokio::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Method};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::io::poll_read_buf;

use super::body::{BodyDecoder, Decoded};
use super::error::{is_closed_by_peer, UpstreamError};
use super::request;
use super::response::{parse_head, ParsedHead, ResponseHead};
use super::stream::UpstreamStream;
use super::tls::{Endpoint, EndpointKey};

/// First read size, and the floor of the adaptive read size.
const MIN_READ: usize = 8 * 1024;
/// Ceiling of the adaptive read size.
const MAX_READ: usize = 64 * 1024;
/// Largest body piece [`UpstreamConnection::read_body`] joins from buffered chunks.
const MAX_JOINED_BODY: usize = 64 * 1024;

/// Where the connection stands in its request/response exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Ready for a request.
    Idle,
    /// Request sent; the response head is expected.
    AwaitingHead,
    /// Head read; the body is being read.
    Body,
    /// The response is complete.
    Done,
    /// Failed or interrupted mid-exchange: must be closed.
    Broken,
}

/// A connection to an upstream HTTP/1.1 server, over TCP or TLS, carrying one exchange
/// at a time. While waiting for bytes on plain TCP it holds no read buffer.
#[derive(Debug)]
pub struct UpstreamConnection {
    stream: UpstreamStream,
    key: EndpointKey,
    buf: BytesMut,
    read_size: usize,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    state: State,
    decoder: BodyDecoder,
    head_request: bool,
    request_close: bool,
    response_keep_alive: bool,
    response_started: bool,
    reusable: bool,
    reused: bool,
    idle_since: Instant,
}

impl UpstreamConnection {
    #[cfg(test)]
    /// Connects to the plain HTTP server at `addr` (with TCP_NODELAY) within
    /// `connect_timeout`.
    pub async fn connect(
        addr: std::net::SocketAddr,
        connect_timeout: Option<Duration>,
    ) -> Result<Self, UpstreamError> {
        Self::open(&Endpoint::plain(addr), connect_timeout).await
    }

    /// Connects to `endpoint` (with TCP_NODELAY), and completes the TLS handshake when it
    /// is a TLS endpoint, all within `connect_timeout`. A failed handshake or
    /// certificate verification is [`UpstreamError::Tls`].
    pub async fn open(
        endpoint: &Endpoint,
        connect_timeout: Option<Duration>,
    ) -> Result<Self, UpstreamError> {
        let connecting = Self::establish(endpoint);
        let stream = match connect_timeout {
            Some(t) => tokio::time::timeout(t, connecting)
                .await
                .map_err(|_| UpstreamError::ConnectTimeout)?,
            None => connecting.await,
        }?;
        Ok(Self::from_stream(stream, endpoint.key()))
    }

    async fn establish(endpoint: &Endpoint) -> Result<UpstreamStream, UpstreamError> {
        let tcp = TcpStream::connect(endpoint.socket())
            .await
            .map_err(UpstreamError::Connect)?;
        tcp.set_nodelay(true).map_err(UpstreamError::Connect)?;
        let Some(tls) = endpoint.tls_target() else {
            return Ok(UpstreamStream::Plain(tcp));
        };
        match tls
            .client
            .connector()
            .connect(tls.server_name.clone(), tcp)
            .await
        {
            Ok(session) => Ok(UpstreamStream::Tls(Box::new(session))),
            Err(error) => {
                tracing::warn!(server = %endpoint.socket(), server_name = %tls.server_name.to_str(),
                    %error, "TLS handshake with the upstream failed");
                Err(UpstreamError::Tls(error))
            }
        }
    }

    fn from_stream(stream: UpstreamStream, key: EndpointKey) -> Self {
        UpstreamConnection {
            stream,
            key,
            buf: BytesMut::new(),
            read_size: MIN_READ,
            read_timeout: None,
            write_timeout: None,
            state: State::Idle,
            decoder: BodyDecoder::Done,
            head_request: false,
            request_close: false,
            response_keep_alive: false,
            response_started: false,
            reusable: false,
            reused: false,
            idle_since: Instant::now(),
        }
    }

    /// Bounds each read (head or body) by `t`; `None` waits forever.
    pub fn set_read_timeout(&mut self, t: Option<Duration>) {
        self.read_timeout = t;
    }

    /// Bounds the whole request write by `t`; `None` waits forever.
    pub fn set_write_timeout(&mut self, t: Option<Duration>) {
        self.write_timeout = t;
    }

    #[cfg(test)]
    /// True when the connection speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// What the connection was opened to, for the pool.
    pub(super) fn endpoint_key(&self) -> EndpointKey {
        self.key
    }

    #[cfg(test)]
    /// Whether the connection came from the pool.
    pub fn was_reused(&self) -> bool {
        self.reused
    }

    /// True once the response ended cleanly with framing that allows reuse and
    /// neither side asked for `Connection: close`.
    pub fn is_reusable(&self) -> bool {
        self.state == State::Done && self.reusable
    }

    #[cfg(test)]
    /// Capacity of the read buffer this connection holds (0 while nothing is
    /// buffered). For tests and metrics.
    pub fn read_buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Sends the request head and `body` (one write when head + body < 64 KiB).
    /// `headers` are sent in order, all values kept, except `Content-Length` and
    /// `Transfer-Encoding`: a `content-length` computed from `body` is sent
    /// instead (always when the body is not empty, and for methods other than
    /// GET, HEAD, DELETE and OPTIONS when it is). The caller provides `Host`.
    /// Not cancel-safe: a dropped or failed send leaves the connection broken.
    pub async fn send_request<'h, H>(
        &mut self,
        method: &Method,
        target: &str,
        headers: H,
        body: &[u8],
    ) -> Result<(), UpstreamError>
    where
        H: IntoIterator<Item = (&'h HeaderName, &'h HeaderValue)> + Clone,
    {
        match self.state {
            State::Idle => {}
            State::Done if self.reusable => {}
            _ => {
                return Err(UpstreamError::InvalidState(
                    "connection not ready for a request",
                ))
            }
        }
        request::validate_target(target)?;
        let encoded = request::encode(method, target, headers.clone(), body);
        self.state = State::Broken;
        self.head_request = method == Method::HEAD;
        self.request_close = request::wants_close(headers);
        self.response_started = false;
        self.reusable = false;
        let rest = if encoded.body_inline { &[][..] } else { body };
        let tls = self.stream.is_tls();
        let writing = write_two(&mut self.stream, &encoded.buf, rest);
        match self.write_timeout {
            Some(t) => tokio::time::timeout(t, writing)
                .await
                .map_err(|_| UpstreamError::WriteTimeout)?,
            None => writing.await,
        }
        .map_err(|e| UpstreamError::from_io(e, tls, UpstreamError::Write))?;
        self.state = State::AwaitingHead;
        Ok(())
    }

    /// Reads the final response head, skipping interim 1xx responses (101 is an
    /// error). Cancel-safe. After [`UpstreamError::ReadTimeout`] the call can be
    /// repeated; after other errors the connection is broken.
    pub async fn read_response_head(&mut self) -> Result<ResponseHead, UpstreamError> {
        if self.state != State::AwaitingHead {
            return Err(UpstreamError::InvalidState("no response head expected"));
        }
        loop {
            if !self.buf.is_empty() {
                match parse_head(&self.buf, self.head_request) {
                    Err(e) => return Err(self.fail(e)),
                    Ok(ParsedHead::Partial) => {}
                    Ok(ParsedHead::Interim { len }) => {
                        self.buf.advance(len);
                        continue;
                    }
                    Ok(ParsedHead::Final {
                        head,
                        len,
                        keep_alive,
                    }) => {
                        self.buf.advance(len);
                        self.response_keep_alive = keep_alive;
                        self.decoder = BodyDecoder::new(head.framing);
                        self.state = State::Body;
                        if self.decoder.is_done() {
                            self.finish();
                        }
                        self.release_if_empty();
                        return Ok(head);
                    }
                }
            }
            match self.fill().await {
                Ok(0) if self.response_started => {
                    return Err(self.fail(UpstreamError::InvalidResponse(
                        "connection closed inside the response head".into(),
                    )))
                }
                Ok(0) => return Err(self.fail(UpstreamError::ClosedBeforeResponse)),
                Ok(_) => self.response_started = true,
                Err(UpstreamError::Read(e)) if !self.response_started && is_closed_by_peer(&e) => {
                    tracing::debug!(error = %e, "upstream reset the connection before responding");
                    return Err(self.fail(UpstreamError::ClosedBeforeResponse));
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    /// The next piece of the body with the framing removed, cut out of the read
    /// buffer without copying; `Ok(None)` at the end. Cancel-safe. After
    /// [`UpstreamError::ReadTimeout`] the call can be repeated.
    pub async fn read_body(&mut self) -> Result<Option<Bytes>, UpstreamError> {
        match self.state {
            State::Body => {}
            State::Done => return Ok(None),
            _ => return Err(UpstreamError::InvalidState("no response body to read")),
        }
        loop {
            match self.decoder.decode(&mut self.buf) {
                Err(e) => return Err(self.fail(e)),
                Ok(Decoded::Data(first)) => {
                    let data = match self.join_buffered(first) {
                        Ok(data) => data,
                        Err(e) => return Err(self.fail(e)),
                    };
                    if self.decoder.is_done() {
                        self.finish();
                    }
                    self.release_if_empty();
                    return Ok(Some(data));
                }
                Ok(Decoded::End) => {
                    self.finish();
                    return Ok(None);
                }
                Ok(Decoded::NeedMore) => {}
            }
            match self.fill().await {
                Ok(0) => match self.decoder.at_eof() {
                    Ok(()) => {
                        self.finish();
                        self.reusable = false;
                        return Ok(None);
                    }
                    Err(e) => return Err(self.fail(e)),
                },
                Ok(_) => {}
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    /// Joins the pieces of body already buffered after `first` (the many small chunks of
    /// a chunked event stream that arrived in one read) into one, up to
    /// [`MAX_JOINED_BODY`], so that they reach the client in one write. A lone piece
    /// is returned as is, without a copy.
    fn join_buffered(&mut self, first: Bytes) -> Result<Bytes, UpstreamError> {
        let mut joined: Option<BytesMut> = None;
        while !self.buf.is_empty()
            && joined.as_ref().map_or(first.len(), BytesMut::len) < MAX_JOINED_BODY
        {
            match self.decoder.decode(&mut self.buf)? {
                Decoded::Data(next) => joined
                    .get_or_insert_with(|| BytesMut::from(&first[..]))
                    .extend_from_slice(&next),
                Decoded::NeedMore | Decoded::End => break,
            }
        }
        Ok(joined.map_or(first, BytesMut::freeze))
    }

    /// Marks the response complete and decides whether the connection is reusable.
    fn finish(&mut self) {
        self.state = State::Done;
        let framing_ok = !matches!(self.decoder, BodyDecoder::UntilClose);
        self.reusable =
            framing_ok && self.response_keep_alive && !self.request_close && self.buf.is_empty();
        if !self.buf.is_empty() {
            tracing::debug!(
                extra = self.buf.len(),
                "bytes after the end of the response"
            );
        }
        self.buf = BytesMut::new();
    }

    /// Records a failure: the connection is broken unless it is a read timeout.
    fn fail(&mut self, e: UpstreamError) -> UpstreamError {
        if !matches!(e, UpstreamError::ReadTimeout) {
            self.state = State::Broken;
            self.reusable = false;
        }
        e
    }

    /// Drops the read buffer allocation when nothing is buffered.
    fn release_if_empty(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() != 0 {
            self.buf = BytesMut::new();
        }
    }

    /// Waits for the socket to be readable (holding no buffer; see
    /// [`UpstreamStream::poll_read_ready`] for TLS), then reads into the buffer. `Ok(0)`
    /// means end of stream. Cancel-safe: bytes are moved into `self.buf` in the same poll
    /// that reads them.
    async fn fill(&mut self) -> Result<usize, UpstreamError> {
        self.release_if_empty();
        let timeout = self.read_timeout;
        let tls = self.stream.is_tls();
        let reading = poll_fn(|cx| {
            ready!(self.stream.poll_read_ready(cx))?;
            let want = self.read_size;
            self.buf.reserve(want);
            match poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.buf) {
                Poll::Ready(Ok(n)) => {
                    self.read_size = next_read_size(want, n);
                    Poll::Ready(Ok(n))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => {
                    self.release_if_empty();
                    Poll::Pending
                }
            }
        });
        match timeout {
            Some(t) => tokio::time::timeout(t, reading)
                .await
                .map_err(|_| UpstreamError::ReadTimeout)?,
            None => reading.await,
        }
        .map_err(|e| UpstreamError::from_io(e, tls, UpstreamError::Read))
    }

    /// Checks without blocking that an idle connection is still open and
    /// silent: a non-blocking peek must report "would block". Data, EOF or an
    /// error mean the connection must not be reused (over TLS, data is usually the
    /// server's `close_notify`). The peek bypasses tokio's readiness cache, which may
    /// not have seen a close yet.
    pub(super) fn probe_alive(&self) -> bool {
        let mut byte = [MaybeUninit::<u8>::uninit(); 1];
        matches!(
            socket2::SockRef::from(self.stream.tcp()).peek(&mut byte),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock
        )
    }

    /// Resets the connection for the idle pool (must be reusable).
    pub(super) fn make_idle(&mut self) {
        debug_assert!(self.is_reusable());
        self.state = State::Idle;
        self.decoder = BodyDecoder::Done;
        self.buf = BytesMut::new();
        self.read_size = MIN_READ;
        self.read_timeout = None;
        self.write_timeout = None;
        self.idle_since = Instant::now();
    }

    /// When the connection went idle.
    pub(super) fn idle_since(&self) -> Instant {
        self.idle_since
    }

    /// Marks the connection as taken from the pool.
    pub(super) fn mark_reused(&mut self) {
        self.reused = true;
    }
}

/// The read size after a read of `n` bytes into `want` bytes of space: doubled
/// (up to 64 KiB) when the read filled it, halved (down to 8 KiB) when it got
/// less than half.
pub(super) fn next_read_size(want: usize, n: usize) -> usize {
    if n >= want {
        (want * 2).min(MAX_READ)
    } else if n < want / 2 {
        (want / 2).max(MIN_READ)
    } else {
        want
    }
}

/// Writes `head` then `body`: one `write` when `body` is empty, vectored
/// writes otherwise, until everything is written, then flushes (a no-op on TCP; TLS
/// may hold encrypted records back).
async fn write_two<S: AsyncWrite + Unpin>(
    stream: &mut S,
    head: &[u8],
    body: &[u8],
) -> io::Result<()> {
    if body.is_empty() {
        stream.write_all(head).await?;
        return stream.flush().await;
    }
    let (mut h, mut b) = (0, 0);
    while h < head.len() || b < body.len() {
        let n = if h < head.len() {
            let slices = [IoSlice::new(&head[h..]), IoSlice::new(&body[b..])];
            stream.write_vectored(&slices).await?
        } else {
            stream.write(&body[b..]).await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_head = n.min(head.len() - h);
        h += from_head;
        b += n - from_head;
    }
    stream.flush().await
}
