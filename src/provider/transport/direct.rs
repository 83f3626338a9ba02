//! Calls whose body is already in memory (JSON, forms, none) and whose
//! answer is read whole, on pooled HTTP/1.1 connections that the calling
//! task drives itself.
//!
//! Why not hyper-util's pooled client (reqwest's core): it runs every
//! connection as a task of its own, so each call hands its request to that
//! task over a channel and gets the answer back over another, two wake-ups
//! that often cross worker threads. Here the task that makes the call also
//! polls the connection, and a connection waits in the pool unpolled
//! between calls, checked for a close by the server when taken out.
//! BENCHMARKS.md has what this saved per call.
//!
//! Connections are dialled, and TLS set up (Mozilla roots, as reqwest's),
//! by hyper-rustls's connector. Only HTTP/1.1 is offered over ALPN: an
//! HTTP/2 connection is shared by many calls at once and so needs a task
//! of its own to drive it. Multipart uploads and streamed bodies still go
//! through reqwest, which offers HTTP/2.

use std::{
    future::poll_fn,
    pin::{Pin, pin},
    sync::{Arc, Mutex},
    task::{Context, Poll, Waker},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderValue, Uri, header, uri};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::client::conn::http1;
use hyper_util::{client::legacy::connect::HttpConnector, rt::TokioIo};
use tokio::time::Instant;
use tower_service::Service as _;

use super::{
    Outbound, POOL_IDLE_TIMEOUT, ProviderResponse, USER_AGENT, errors::SendFailure,
    files::content_length,
};
use crate::{
    config::Timeouts,
    error::{GatewayError, Result},
    telemetry,
};

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
type Io = hyper_rustls::MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;
/// Scheme and authority: which connections a request may use.
type Origin = (uri::Scheme, uri::Authority);

/// The pool of provider connections; cheap to clone.
#[derive(Clone)]
pub(super) struct DirectClient {
    inner: Arc<Pool>,
}

struct Pool {
    connector: Connector,
    idle: Mutex<IdleByOrigin>,
    /// Idle connections kept per origin.
    max_idle: usize,
}

/// Idle connections per origin, oldest first. Boxed: a connection with its
/// buffers and TLS state is about 1.8 KB, and it moves in and out of here
/// on every call.
///
/// A list searched in order, not a hash map: there is one origin per
/// configured provider host, a handful, and comparing a scheme and an
/// authority costs less than SipHashing them twice per call (measured with
/// callgrind, BENCHMARKS.md).
#[derive(Default)]
struct IdleByOrigin(Vec<(Origin, IdleList)>);

type IdleList = Vec<Box<Pooled>>;

impl IdleByOrigin {
    fn get_mut(&mut self, origin: &Origin) -> Option<&mut IdleList> {
        self.0
            .iter_mut()
            .find(|(each, _)| each == origin)
            .map(|(_, list)| list)
    }

    fn entry(&mut self, origin: Origin) -> &mut IdleList {
        let index = match self.0.iter().position(|(each, _)| *each == origin) {
            Some(index) => index,
            None => {
                self.0.push((origin, Vec::new()));
                self.0.len() - 1
            }
        };
        &mut self.0[index].1
    }
}

/// One HTTP/1.1 connection: the handle requests are sent on, and the
/// connection state machine, polled only by the call using it.
struct Pooled {
    sender: http1::SendRequest<Full<Bytes>>,
    connection: http1::Connection<Io, Full<Bytes>>,
    idle_since: Instant,
}

/// How an exchange on a connection ended without an answer.
enum Unanswered {
    /// The connection closed before the request was written: it never left.
    /// Boxed: rare, and large beside the other variant.
    NotSent(Box<http::Request<Full<Bytes>>>),
    Failed(SendFailure),
}

/// A client keeping up to `max_idle` idle connections per origin.
pub(super) fn client(timeouts: &Timeouts, max_idle: usize) -> Result<DirectClient> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    client_trusting(timeouts, roots, max_idle)
}

fn client_trusting(
    timeouts: &Timeouts,
    roots: rustls::RootCertStore,
    max_idle: usize,
) -> Result<DirectClient> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(timeouts.connect));
    http.set_nodelay(true);
    http.enforce_http(false);
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| GatewayError::internal("could not set up TLS").with_source(error))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    // Said outright: hyper-rustls's builder offers nothing over ALPN when
    // only HTTP/1 is on, and a server that speaks both should settle on
    // HTTP/1.1 for certain. Plain `http://` URLs stay allowed (the simulator).
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = Connector::from((http, tls));
    Ok(DirectClient {
        inner: Arc::new(Pool {
            connector,
            idle: Mutex::default(),
            max_idle,
        }),
    })
}

/// One attempt: the request sent and the whole answer read within `budget`,
/// the answer bounded to `max_body_bytes`.
pub(super) async fn send(
    client: &DirectClient,
    request: &Outbound,
    body: Bytes,
    trace_headers: Option<&telemetry::TraceHeaders>,
    budget: Duration,
    max_body_bytes: usize,
) -> std::result::Result<ProviderResponse, SendFailure> {
    let call = client
        .inner
        .call(request, body, trace_headers, max_body_bytes);
    tokio::time::timeout(budget, call)
        .await
        .map_err(|elapsed| SendFailure::Timeout(Box::new(elapsed)))?
}

/// The request as HTTP/1.1 sends it: the path in the request line and the
/// authority in `Host`.
fn outbound(
    request: &Outbound,
    body: Bytes,
    trace_headers: Option<&telemetry::TraceHeaders>,
) -> std::result::Result<(Origin, http::Request<Full<Bytes>>), SendFailure> {
    let invalid = |what: &str| SendFailure::Transport(format!("the URL has no {what}").into());
    let url = Uri::try_from(request.url.as_str())
        .map_err(|error| SendFailure::Transport(Box::new(error)))?;
    let uri::Parts {
        scheme,
        authority,
        path_and_query,
        ..
    } = url.into_parts();
    let scheme = scheme.ok_or_else(|| invalid("scheme"))?;
    let authority = authority.ok_or_else(|| invalid("host"))?;
    let host = HeaderValue::from_str(authority.as_str().rsplit('@').next().unwrap_or_default())
        .map_err(|error| SendFailure::Transport(Box::new(error)))?;
    let mut outbound = http::Request::new(Full::new(body));
    *outbound.method_mut() = request.method.clone();
    *outbound.uri_mut() = path_and_query.map_or_else(|| Uri::from_static("/"), Uri::from);
    // Sized for the four added below, so adding them never regrows the map.
    let mut headers = http::HeaderMap::with_capacity(request.headers.len() + 4);
    for (name, value) in &request.headers {
        headers.append(name, value.clone());
    }
    headers.insert(header::HOST, host);
    headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    headers
        .entry(header::ACCEPT)
        .or_insert(HeaderValue::from_static("*/*"));
    if let Some(trace_headers) = trace_headers {
        trace_headers.insert_into(&mut headers);
    }
    *outbound.headers_mut() = headers;
    Ok(((scheme, authority), outbound))
}

impl Pool {
    /// Built here rather than passed in: an `async fn` keeps room for its
    /// arguments beside its locals, and the request is a large one.
    async fn call(
        &self,
        request: &Outbound,
        body: Bytes,
        trace_headers: Option<&telemetry::TraceHeaders>,
        max_body_bytes: usize,
    ) -> std::result::Result<ProviderResponse, SendFailure> {
        let (origin, mut request) = outbound(request, body, trace_headers)?;
        loop {
            let (mut pooled, reused) = match self.checkout(&origin) {
                Some(pooled) => (pooled, true),
                // Boxed: dialling and the TLS handshake hold more state than the
                // rest of a call, and a pooled call should not carry (and
                // copy) room for it.
                None => (Box::pin(self.connect(&origin)).await?, false),
            };
            let (outcome, connection_done) = {
                let Pooled {
                    sender, connection, ..
                } = &mut *pooled;
                drive(sender, connection, request, max_body_bytes).await
            };
            // Only a connection that took in the end of the answer and stays
            // open goes back (not one the server asked to close, say).
            match outcome {
                Ok(response) => {
                    let reusable = !connection_done && pooled.is_open();
                    if reusable {
                        self.checkin(origin, pooled);
                    }
                    return Ok(response);
                }
                // An idle connection the server closed just as it was taken
                // out: the request never left, so it goes on the next one.
                Err(Unanswered::NotSent(unsent)) if reused => request = *unsent,
                Err(Unanswered::NotSent(_)) => {
                    return Err(SendFailure::Connect(
                        "the new connection closed before the request was sent".into(),
                    ));
                }
                Err(Unanswered::Failed(failure)) => return Err(failure),
            }
        }
    }

    /// An idle connection to `origin` still open and not idle too long.
    /// The newest comes first: it is the least likely to have been closed.
    fn checkout(&self, origin: &Origin) -> Option<Box<Pooled>> {
        loop {
            let mut pooled = {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                idle.get_mut(origin)?.pop()?
            };
            if pooled.idle_since.elapsed() >= POOL_IDLE_TIMEOUT {
                // The rest waited longer still.
                if let Some(rest) = self
                    .idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_mut(origin)
                {
                    rest.clear();
                }
                return None;
            }
            if pooled.is_open() {
                return Some(pooled);
            }
        }
    }

    fn checkin(&self, origin: Origin, mut pooled: Box<Pooled>) {
        let now = Instant::now();
        pooled.idle_since = now;
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let waiting = idle.entry(origin);
        // Oldest first, as they were put back: the long-idle ones go from the
        // front, so a quiet origin keeps none.
        let expired = waiting
            .partition_point(|pooled| now.duration_since(pooled.idle_since) >= POOL_IDLE_TIMEOUT);
        waiting.drain(..expired);
        if waiting.len() < self.max_idle {
            waiting.push(pooled);
        }
    }

    async fn connect(
        &self,
        (scheme, authority): &Origin,
    ) -> std::result::Result<Box<Pooled>, SendFailure> {
        let target = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|error| SendFailure::Connect(Box::new(error)))?;
        let io = self
            .connector
            .clone()
            .call(target)
            .await
            .map_err(SendFailure::Connect)?;
        let (sender, connection) = http1::handshake(io)
            .await
            .map_err(|error| SendFailure::Connect(Box::new(error)))?;
        Ok(Box::new(Pooled {
            sender,
            connection,
            idle_since: Instant::now(),
        }))
    }
}

impl Pooled {
    /// Polls the connection once without a waker: an idle HTTP/1.1
    /// connection has nothing to do, so being done means the server closed
    /// it (or it failed). Open but not asking for a request means it is
    /// still busy with the last one (say, a body the server answered before
    /// reading): not fit for another call either.
    fn is_open(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        self.connection.poll_without_shutdown(&mut cx).is_pending() && self.sender.is_ready()
    }
}

/// The exchange itself, and whether the connection finished during it.
///
/// The request is handed to the connection before the returned future
/// exists, so that future holds no room for it.
fn drive<'a>(
    sender: &'a mut http1::SendRequest<Full<Bytes>>,
    connection: &'a mut http1::Connection<Io, Full<Bytes>>,
    request: http::Request<Full<Bytes>>,
    max_body_bytes: usize,
) -> impl Future<Output = (std::result::Result<ProviderResponse, Unanswered>, bool)> + 'a {
    let sent = sender.try_send_request(request);
    let answer = async move {
        let response = match sent.await {
            Ok(response) => response,
            Err(mut error) => {
                return match error.take_message() {
                    Some(unsent) => Err(Unanswered::NotSent(Box::new(unsent))),
                    None => Err(Unanswered::Failed(SendFailure::Transport(Box::new(
                        error.into_error(),
                    )))),
                };
            }
        };
        let (parts, body) = response.into_parts();
        if content_length(&parts.headers).is_some_and(|length| length > max_body_bytes as u64) {
            return Err(Unanswered::Failed(SendFailure::BodyTooLarge));
        }
        let body = match Limited::new(body, max_body_bytes).collect().await {
            // One chunk (the usual small answer) is kept without a copy.
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<LengthLimitError>() => {
                return Err(Unanswered::Failed(SendFailure::BodyTooLarge));
            }
            Err(error) => return Err(Unanswered::Failed(SendFailure::Transport(error))),
        };
        Ok(ProviderResponse {
            status: parts.status,
            headers: parts.headers,
            body,
            is_retry_after_possible_delivery: false,
        })
    };
    async move {
        let mut answer = pin!(answer);
        // Only the connection moves the answer along (it hands over the head
        // and the body chunks, all in this task), so the answer is polled right
        // after it, with no waker of its own: a wake-up from it would only poll
        // this whole task once more for nothing. The connection keeps the real
        // waker for whatever it waits on, the socket or room for more body.
        let mut connection_done = false;
        let outcome = poll_fn(|cx| {
            let mut quiet = Context::from_waker(Waker::noop());
            if let Poll::Ready(outcome) = answer.as_mut().poll(&mut quiet) {
                return Poll::Ready(outcome);
            }
            connection_done = Pin::new(&mut *connection)
                .poll_without_shutdown(cx)
                .is_ready();
            match answer.as_mut().poll(&mut quiet) {
                Poll::Ready(outcome) => Poll::Ready(outcome),
                // The connection has settled the exchange either way, so an
                // answer not ready now never will be.
                Poll::Pending if connection_done => {
                    Poll::Ready(Err(Unanswered::Failed(SendFailure::Transport(
                        "the connection closed before the answer was complete".into(),
                    ))))
                }
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        (outcome, connection_done)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http::Method;
    use tokio::{
        io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
        net::TcpListener,
        sync::mpsc,
    };

    use super::*;
    use crate::provider::transport::{CallKind, Payload, RetryPolicy};

    /// How the fake server treats a connection after its first answer.
    #[derive(Clone, Copy)]
    enum AfterAnswer {
        KeepOpen,
        /// Drops the socket without saying so in the answer.
        Drop,
        /// Says `Connection: close` in the answer, then drops the socket.
        AnnounceClose,
    }

    /// A bare HTTP/1.1 server: answers every request with `answer_body`,
    /// sends each request head it read, and counts connections.
    async fn server(
        after: AfterAnswer,
        answer_body: &'static str,
    ) -> (String, Arc<AtomicUsize>, mpsc::UnboundedReceiver<String>) {
        let (heads_tx, heads) = mpsc::unbounded_channel();
        let (address, accepted) =
            accept_counting(move |socket| answer(socket, after, answer_body, heads_tx.clone()))
                .await;
        (format!("http://{address}"), accepted, heads)
    }

    /// Accepts connections on a fresh local port, counting them, and serves
    /// each with `serve` in a task of its own.
    async fn accept_counting<F, Fut>(serve: F) -> (std::net::SocketAddr, Arc<AtomicUsize>)
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(socket));
            }
        });
        (address, accepted)
    }

    /// A client with the default settings, and a fresh `server`.
    async fn client_and_server(
        after: AfterAnswer,
        answer_body: &'static str,
    ) -> (
        DirectClient,
        String,
        Arc<AtomicUsize>,
        mpsc::UnboundedReceiver<String>,
    ) {
        let (base, accepted, heads) = server(after, answer_body).await;
        (
            client(&Timeouts::default(), 16).unwrap(),
            base,
            accepted,
            heads,
        )
    }

    async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
        mut socket: S,
        after: AfterAnswer,
        answer_body: &'static str,
        heads: mpsc::UnboundedSender<String>,
    ) {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = buffer.drain(..end + 4).collect();
                let _ = heads.send(String::from_utf8(head).unwrap());
                let close = match after {
                    AfterAnswer::AnnounceClose => "Connection: close\r\n",
                    _ => "",
                };
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{close}\r\n{answer_body}",
                    answer_body.len()
                );
                socket.write_all(answer.as_bytes()).await.unwrap();
                if !matches!(after, AfterAnswer::KeepOpen) {
                    return;
                }
            }
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            }
        }
    }

    /// A TLS server for `localhost` under a CA of its own; hands back that
    /// CA and the protocol each connection agreed on over ALPN.
    async fn tls_server() -> (
        String,
        rustls::RootCertStore,
        Arc<AtomicUsize>,
        mpsc::UnboundedReceiver<Option<Vec<u8>>>,
    ) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        )
        .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let (alpn_tx, alpn) = mpsc::unbounded_channel();
        let (address, accepted) = accept_counting(move |socket| {
            let acceptor = acceptor.clone();
            let alpn_tx = alpn_tx.clone();
            async move {
                // A client that refuses the certificate ends the handshake.
                let Ok(stream) = acceptor.accept(socket).await else {
                    return;
                };
                let _ = alpn_tx.send(stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec));
                let (heads, _) = mpsc::unbounded_channel();
                answer(stream, AfterAnswer::KeepOpen, "{}", heads).await;
            }
        })
        .await;
        let port = address.port();
        (format!("https://localhost:{port}"), roots, accepted, alpn)
    }

    fn get(base: &str, path: &str) -> Outbound {
        Outbound {
            operation: "test",
            method: Method::GET,
            url: format!("{base}{path}").parse().unwrap(),
            path_template: "/test",
            headers: http::HeaderMap::new(),
            body: Payload::Empty,
            timeout: Duration::from_secs(5),
            retry: RetryPolicy::Safe,
            kind: CallKind::Request,
        }
    }

    async fn call(client: &DirectClient, request: &Outbound, limit: usize) -> Bytes {
        let response = send(
            client,
            request,
            Bytes::new(),
            None,
            Duration::from_secs(5),
            limit,
        )
        .await
        .unwrap_or_else(|_| panic!("the call to {} failed", request.url));
        assert_eq!(response.status, http::StatusCode::OK);
        response.body
    }

    #[tokio::test]
    async fn sequential_calls_share_one_connection_in_origin_form() {
        let (client, base, accepted, mut heads) =
            client_and_server(AfterAnswer::KeepOpen, "{}").await;
        let host = base.trim_start_matches("http://").to_owned();
        for path in ["/v1/documents?page=2", "/v1/documents/abc"] {
            assert_eq!(call(&client, &get(&base, path), 1024).await, "{}");
            let head = heads.recv().await.unwrap();
            assert!(
                head.starts_with(&format!("GET {path} HTTP/1.1\r\n")),
                "{head}"
            );
            assert!(head.contains(&format!("host: {host}\r\n")), "{head}");
            assert!(
                head.contains(&format!("user-agent: {USER_AGENT}\r\n")),
                "{head}"
            );
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn idle_connections_are_kept_up_to_the_cap_and_reused() {
        async fn five_at_once(client: &DirectClient, request: &Outbound) {
            futures_util::future::join_all((0..5).map(|_| call(client, request, 1024))).await;
        }
        // Kept up to as many as were in flight: the next burst dials none.
        let (base, accepted, _heads) = server(AfterAnswer::KeepOpen, "ok").await;
        let request = get(&base, "/");
        let client = client(&Timeouts::default(), 5).unwrap();
        five_at_once(&client, &request).await;
        five_at_once(&client, &request).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 5);
        // Under the cap, the connections over it close and are dialled again.
        let (base, accepted, _heads) = server(AfterAnswer::KeepOpen, "ok").await;
        let request = get(&base, "/");
        let capped = super::client(&Timeouts::default(), 3).unwrap();
        five_at_once(&capped, &request).await;
        assert_eq!(capped.inner.idle.lock().unwrap().0[0].1.len(), 3);
        five_at_once(&capped, &request).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 7);
    }

    #[tokio::test]
    async fn a_connection_the_server_dropped_is_replaced() {
        let (client, base, accepted, _heads) = client_and_server(AfterAnswer::Drop, "ok").await;
        for _ in 0..3 {
            assert_eq!(call(&client, &get(&base, "/"), 1024).await, "ok");
            // Lets the close reach this side before the next checkout; if
            // it has not, the unsent request moves to a new connection.
            tokio::task::yield_now().await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_announced_close_keeps_the_connection_out_of_the_pool() {
        let (client, base, accepted, _heads) =
            client_and_server(AfterAnswer::AnnounceClose, "ok").await;
        for _ in 0..2 {
            assert_eq!(call(&client, &get(&base, "/"), 1024).await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        let idle = client.inner.idle.lock().unwrap();
        assert!(idle.0.iter().all(|(_, list)| list.is_empty()));
    }

    #[tokio::test]
    async fn a_large_answer_arriving_in_many_reads_is_read_whole() {
        // Larger than the socket buffers: the body comes in many pieces, each
        // handed over only when there is room for it.
        let body: &'static str = "0123456789abcdef".repeat(256 * 1024).leak();
        let (client, base, accepted, _heads) = client_and_server(AfterAnswer::KeepOpen, body).await;
        for _ in 0..2 {
            let read = call(&client, &get(&base, "/"), 8 << 20).await;
            assert_eq!(read.len(), body.len());
            assert!(read == body.as_bytes());
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_answer_over_the_limit_is_refused() {
        let (client, base, _accepted, _heads) =
            client_and_server(AfterAnswer::KeepOpen, "0123456789").await;
        let outcome = send(
            &client,
            &get(&base, "/"),
            Bytes::new(),
            None,
            Duration::from_secs(5),
            9,
        )
        .await;
        assert!(matches!(outcome, Err(SendFailure::BodyTooLarge)));
        assert_eq!(call(&client, &get(&base, "/"), 10).await, "0123456789");
    }

    #[tokio::test]
    async fn https_calls_offer_only_http1_and_share_one_connection() {
        let (base, roots, accepted, mut alpn) = tls_server().await;
        let client = client_trusting(&Timeouts::default(), roots, 16).unwrap();
        for path in ["/v1/a", "/v1/b"] {
            assert_eq!(call(&client, &get(&base, path), 1024).await, "{}");
        }
        assert_eq!(
            alpn.recv().await.unwrap().as_deref(),
            Some(&b"http/1.1"[..])
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_certificate_from_an_unknown_ca_is_refused_before_anything_is_sent() {
        let (base, _roots, _accepted, mut alpn) = tls_server().await;
        let client = client(&Timeouts::default(), 16).unwrap();
        let outcome = send(
            &client,
            &get(&base, "/"),
            Bytes::new(),
            None,
            Duration::from_secs(5),
            1024,
        )
        .await;
        assert!(matches!(outcome, Err(SendFailure::Connect(_))));
        assert!(alpn.try_recv().is_err(), "no handshake may complete");
    }
}
