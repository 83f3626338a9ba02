//! The one HTTP layer every provider call goes through: pooled hyper
//! clients (directly for bodies in memory, through reqwest for multipart and
//! streams), per-operation timeouts capped by the caller's deadline, W3C trace
//! context propagation, bounded response bodies, retries only where the
//! operation is safe (`retry`), a circuit breaker per account (`breaker`),
//! and logs that never carry credentials.

mod breaker;
mod budget;
mod direct;
mod errors;
mod files;
mod payload;
mod retry;

use std::{sync::Arc, time::Duration};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use rand::Rng as _;
use tracing::{Instrument as _, field};
use url::Url;

pub(crate) use self::{
    breaker::BreakerState,
    budget::{Budgets, CallKind},
    errors::{common_status_error, unrecognized},
    files::{Answer, attachment_file_name, content_length, content_type, is_file},
    payload::{CaughtError, FileSlot, Payload},
    retry::RetryPolicy,
};
use self::{
    breaker::Breakers,
    errors::{SendFailure, failure_to_error},
    files::{StreamingResponse, Take, body_stream},
    retry::{Attempt, attempt_budget, next_delay},
};
use crate::{
    clock::Clock,
    config::{BreakerConfig, Timeouts},
    domain::ProviderKind,
    error::{GatewayError, MetaKey, Outcome, Reason, Result},
    provider::CallContext,
    telemetry,
};

/// A credential as a header value, built once per account (or token) and
/// marked sensitive so it never shows in debug output; `None` inside when
/// the configured value cannot be a header, reported on use.
#[derive(Clone)]
pub(crate) struct CredentialHeader(Option<HeaderValue>);

impl CredentialHeader {
    pub(crate) fn new(value: &str) -> CredentialHeader {
        CredentialHeader(HeaderValue::from_str(value).ok().map(|mut value| {
            value.set_sensitive(true);
            value
        }))
    }
}

impl std::fmt::Debug for CredentialHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialHeader([redacted])")
    }
}

/// One provider request, described by the adapter.
#[derive(Debug)]
pub(crate) struct Outbound {
    /// Stable operation name for spans and metrics, e.g. `resend`.
    pub operation: &'static str,
    pub method: Method,
    pub url: Url,
    /// The path with ids replaced by placeholders, safe to log.
    pub path_template: &'static str,
    pub headers: HeaderMap,
    pub body: Payload,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Which of the account's budgets the call counts against.
    pub kind: CallKind,
}

impl Outbound {
    pub(crate) fn new(
        operation: &'static str,
        method: Method,
        url: Url,
        path_template: &'static str,
    ) -> Self {
        Outbound {
            operation,
            method,
            url,
            path_template,
            headers: HeaderMap::new(),
            body: Payload::Empty,
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::OnlyBeforeSent,
            kind: CallKind::Request,
        }
    }

    /// Sets a credential header, marked sensitive so no debug output shows it.
    /// Adds a credential header built once by the adapter
    /// (see [`credential_value`]).
    pub(crate) fn credential(mut self, name: HeaderName, value: &CredentialHeader) -> Result<Self> {
        let value = value.0.clone().ok_or_else(|| {
            GatewayError::internal("a configured credential is not a valid header value")
        })?;
        self.headers.insert(name, value);
        Ok(self)
    }

    pub(crate) fn json_body(mut self, body: &impl serde::Serialize) -> Result<Self> {
        let bytes = serde_json::to_vec(body).map_err(|error| {
            GatewayError::internal("could not encode a provider request").with_source(error)
        })?;
        self.body = Payload::Bytes(Bytes::from(bytes));
        Ok(self.json_content())
    }

    /// A JSON body with a document in it as Base64 (see
    /// [`Payload::json_with_file`]).
    pub(crate) fn json_body_with_file(
        mut self,
        body: &impl serde::Serialize,
        slot: &FileSlot,
        file: Bytes,
    ) -> Result<Self> {
        self.body = Payload::json_with_file(body, slot, file)?;
        Ok(self.json_content())
    }

    /// A caller's upload, streamed through as a multipart file part.
    pub(crate) fn upload_body(mut self, payload: Payload) -> Self {
        self.body = payload;
        self
    }

    fn json_content(mut self) -> Self {
        self.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self
    }

    pub(crate) fn form_body(mut self, pairs: &[(&str, &str)]) -> Self {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        self.body = Payload::Bytes(Bytes::from(encoded));
        self
    }

    pub(crate) fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub(crate) fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Marks a call that re-delivers a notification (resend budgets).
    pub(crate) fn resend(mut self) -> Self {
        self.kind = CallKind::Resend;
        self
    }
}

/// A provider's answer, body fully read (and bounded).
#[derive(Debug, Clone)]
pub(crate) struct ProviderResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// An earlier attempt of this call may have reached the provider, so a
    /// "not found" can mean that attempt already did the work.
    pub is_retry_after_possible_delivery: bool,
}

impl ProviderResponse {
    /// An answer made up by a test.
    #[cfg(test)]
    pub(crate) fn fake(status: u16, body: impl Into<Bytes>) -> ProviderResponse {
        ProviderResponse {
            status: StatusCode::from_u16(status).expect("valid status"),
            headers: HeaderMap::new(),
            body: body.into(),
            is_retry_after_possible_delivery: false,
        }
    }

    pub(crate) fn json<T: serde::de::DeserializeOwned>(
        &self,
    ) -> std::result::Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        retry_after(&self.headers)
    }
}

/// What both client front-ends say they are, and how they pool connections.
const USER_AGENT: &str = concat!("esign-gateway/", env!("CARGO_PKG_VERSION"));
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per host by the client for transfers (uploads,
/// downloads), which their own budget keeps few.
const TRANSFER_POOL_MAX_IDLE_PER_HOST: usize = 256;

/// The shared, pooled client; cheap to clone.
#[derive(Clone)]
pub(crate) struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    /// Calls with a body in memory whose answer is read whole.
    direct: direct::DirectClient,
    /// Multipart uploads, bodies streamed out and answers streamed back.
    client: reqwest::Client,
    max_body_bytes: usize,
    breakers: Breakers,
    budgets: Option<Budgets>,
}

impl HttpClient {
    /// `max_in_flight` bounds the calls that can need a connection at once,
    /// so as many idle ones are kept per host: any fewer, and a busy
    /// gateway closes connections only to dial (and, for a real provider,
    /// handshake TLS) again moments later. The idle timeout trims them
    /// after a burst.
    pub(crate) fn new(
        timeouts: &Timeouts,
        max_body_bytes: usize,
        max_in_flight: usize,
    ) -> Result<HttpClient> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(TRANSFER_POOL_MAX_IDLE_PER_HOST)
            .tcp_nodelay(true)
            // Provider calls never follow redirects: a redirect could carry a
            // credential header to a host nobody configured.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .build()
            .map_err(|error| {
                GatewayError::internal("could not build the HTTP client").with_source(error)
            })?;
        Ok(HttpClient {
            inner: Arc::new(Inner {
                direct: direct::client(timeouts, max_in_flight)?,
                client,
                max_body_bytes,
                breakers: Breakers::new(BreakerConfig::default(), Clock::default()),
                budgets: None,
            }),
        })
    }

    /// The same client with these breaker settings and clock, and the
    /// accounts' budgets.
    pub(crate) fn with_breaker_and_budgets(
        self,
        config: BreakerConfig,
        clock: Clock,
        budgets: Budgets,
    ) -> HttpClient {
        let inner = Inner {
            direct: self.inner.direct.clone(),
            client: self.inner.client.clone(),
            max_body_bytes: self.inner.max_body_bytes,
            breakers: Breakers::new(config, clock),
            budgets: Some(budgets),
        };
        HttpClient {
            inner: Arc::new(inner),
        }
    }

    /// The account's circuit, for ListProviders.
    pub(crate) fn breaker_state(&self, provider: ProviderKind, account: &str) -> BreakerState {
        self.inner.breakers.state(provider, account)
    }

    /// Sends `request`, retrying only as its policy allows, and returns the
    /// provider's answer whatever its HTTP status. Transport failures and the
    /// caller's deadline become gateway errors here.
    pub(crate) async fn send(
        &self,
        ctx: &CallContext,
        provider: ProviderKind,
        account: &str,
        request: &Outbound,
    ) -> Result<ProviderResponse> {
        match self
            .exchange(ctx, provider, account, request, Take::Whole)
            .await?
        {
            Answer::Whole(response) => Ok(response),
            Answer::Streaming(_) => unreachable!("whole answers are never streamed"),
        }
    }

    /// Like [`Self::send`], but an answer for which `stream` says yes is
    /// handed back with its body unread, to be streamed to the caller.
    pub(crate) async fn open(
        &self,
        ctx: &CallContext,
        provider: ProviderKind,
        account: &str,
        request: &Outbound,
        stream: fn(StatusCode, &HeaderMap) -> bool,
    ) -> Result<Answer> {
        self.exchange(ctx, provider, account, request, Take::StreamWhen(stream))
            .await
    }

    async fn exchange(
        &self,
        ctx: &CallContext,
        provider: ProviderKind,
        account: &str,
        request: &Outbound,
        take: Take,
    ) -> Result<Answer> {
        let span = client_span(provider, account, request);
        // The call's own span is the parent when it is in a trace. Otherwise
        // (none opened, or one no layer gave ids) the rpc span is, whose
        // context the call's context already holds.
        let trace_headers = if span.is_disabled() {
            None
        } else {
            telemetry::TraceHeaders::of(&span)
        }
        .or_else(|| ctx.trace_headers.clone());
        let trace_headers = trace_headers.as_ref();
        let operation = request.operation;
        async {
            let started = tokio::time::Instant::now();
            if let Some(budgets) = &self.inner.budgets {
                budgets.take(provider, account, request.kind).await?;
            }
            if let Err(wait) = self.inner.breakers.admit(provider, account) {
                crate::metrics::global().provider_call(
                    provider.as_str(),
                    account,
                    operation,
                    crate::metrics::CallStatus::Failed("BREAKER_OPEN"),
                    started.elapsed(),
                    ctx.exemplar(),
                );
                return Err(GatewayError::new(
                    Reason::ProviderUnavailable,
                    "the provider has been failing; the gateway is giving it time to recover",
                )
                .with_provider(provider)
                .with_metadata(MetaKey::Breaker, BreakerState::Open.as_str())
                .with_outcome(Outcome::NotSent)
                .with_retry_after(wait));
            }
            let outcome = self
                .send_with_retries(ctx, provider, request, take, &span, trace_headers)
                .await;
            let status = match &outcome {
                Ok(answer) => crate::metrics::CallStatus::Http(answer.status().as_u16()),
                Err(error) => crate::metrics::CallStatus::Failed(error.reason().as_str()),
            };
            crate::metrics::global().provider_call(
                provider.as_str(),
                account,
                operation,
                status,
                started.elapsed(),
                ctx.exemplar(),
            );
            let failed = match &outcome {
                Ok(answer) => answer.status().is_server_error(),
                // A caller's short deadline says nothing about the provider.
                Err(error) => error.reason() == Reason::ProviderUnavailable,
            };
            self.inner.breakers.record(provider, account, failed);
            outcome
        }
        .instrument(span.clone())
        .await
    }

    async fn send_with_retries(
        &self,
        ctx: &CallContext,
        provider: ProviderKind,
        request: &Outbound,
        take: Take,
        span: &tracing::Span,
        trace_headers: Option<&telemetry::TraceHeaders>,
    ) -> Result<Answer> {
        let mut attempt = 0;
        let mut possibly_delivered = false;
        loop {
            attempt += 1;
            let Some(budget) = attempt_budget(request.timeout, ctx.remaining()) else {
                return Err(ctx.deadline_exceeded(attempt > 1));
            };
            let bounded_by_deadline = budget < request.timeout;
            span.record("retry.attempt", i64::from(attempt));
            let started = tokio::time::Instant::now();
            let mut outcome = self
                .send_once(provider, request, budget, take, trace_headers)
                .await;
            if let Ok(Answer::Whole(response)) = &mut outcome {
                response.is_retry_after_possible_delivery = possibly_delivered;
            }
            possibly_delivered |= !matches!(outcome, Err(SendFailure::Connect(_)));
            let elapsed_ms = started.elapsed().as_millis() as u64;

            let attempt_kind = match &outcome {
                Ok(answer) => {
                    // Signed: unsigned values reach OpenTelemetry as text.
                    span.record(
                        "http.response.status_code",
                        i64::from(answer.status().as_u16()),
                    );
                    tracing::debug!(
                        status = answer.status().as_u16(),
                        elapsed_ms,
                        "provider answered"
                    );
                    Attempt::Answered {
                        status: answer.status(),
                        retry_after: retry_after(answer.headers()),
                    }
                }
                Err(SendFailure::Connect(_)) => Attempt::ConnectFailed,
                Err(SendFailure::Transport(_)) => Attempt::Broken,
                Err(_) => Attempt::Final,
            };
            let jitter = rand::rng().random_range(0.0..=1.0);
            let repeatable = request.body.is_repeatable();
            if let Some(delay) = next_delay(
                request.retry,
                attempt,
                attempt_kind,
                ctx.remaining(),
                jitter,
            )
            .filter(|_| repeatable)
            {
                tracing::info!(
                    operation = request.operation,
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    "retrying provider call"
                );
                tokio::time::sleep(delay).await;
                continue;
            }

            return match outcome {
                Ok(answer) => Ok(answer),
                Err(failure) => Err(failure_to_error(
                    ctx,
                    provider,
                    failure,
                    bounded_by_deadline,
                    elapsed_ms,
                    self.inner.max_body_bytes,
                )),
            };
        }
    }

    async fn send_once(
        &self,
        provider: ProviderKind,
        request: &Outbound,
        budget: Duration,
        take: Take,
        trace_headers: Option<&telemetry::TraceHeaders>,
    ) -> std::result::Result<Answer, SendFailure> {
        if matches!(take, Take::Whole)
            && let Some(body) = request.body.in_memory()
        {
            let response = direct::send(
                &self.inner.direct,
                request,
                body,
                trace_headers,
                budget,
                self.inner.max_body_bytes,
            )
            .await?;
            return Ok(Answer::Whole(response));
        }
        // Boxed: reqwest's future is large, and the JSON calls above, the
        // hot path, should not carry (and copy) room for it.
        Box::pin(self.send_through_reqwest(provider, request, budget, take, trace_headers)).await
    }

    /// Multipart and streamed bodies, and answers that may be streamed.
    async fn send_through_reqwest(
        &self,
        provider: ProviderKind,
        request: &Outbound,
        budget: Duration,
        take: Take,
        trace_headers: Option<&telemetry::TraceHeaders>,
    ) -> std::result::Result<Answer, SendFailure> {
        let mut headers = request.headers.clone();
        if let Some(trace_headers) = trace_headers {
            trace_headers.insert_into(&mut headers);
        }
        let builder = self
            .inner
            .client
            .request(request.method.clone(), request.url.clone())
            .headers(headers)
            .timeout(budget);
        let Some(builder) = request.body.attach(builder) else {
            return Err(SendFailure::BodyGone);
        };
        let mut response = builder.send().await.map_err(SendFailure::from_reqwest)?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        if let Take::StreamWhen(stream) = take
            && stream(status, &headers)
        {
            return Ok(Answer::Streaming(StreamingResponse {
                status,
                headers,
                body: body_stream(provider, response),
            }));
        }
        if let Some(length) = response.content_length()
            && length as usize > self.inner.max_body_bytes
        {
            return Err(SendFailure::BodyTooLarge);
        }
        // Small answers arrive in one chunk, which is kept without a copy.
        let mut first: Option<Bytes> = None;
        let mut body = BytesMut::new();
        let mut length = 0;
        while let Some(chunk) = response.chunk().await.map_err(SendFailure::from_reqwest)? {
            length += chunk.len();
            if length > self.inner.max_body_bytes {
                return Err(SendFailure::BodyTooLarge);
            }
            match first.take() {
                None if body.is_empty() => first = Some(chunk),
                Some(earlier) => {
                    body.extend_from_slice(&earlier);
                    body.extend_from_slice(&chunk);
                }
                None => body.extend_from_slice(&chunk),
            }
        }
        let body = first.unwrap_or_else(|| body.freeze());
        Ok(Answer::Whole(ProviderResponse {
            status,
            headers,
            body,
            is_retry_after_possible_delivery: false,
        }))
    }
}

/// The client span of one provider call, named "{method} {url.template}"
/// as the HTTP client conventions ask, when something will see it: an
/// exporter, or debug logs. Otherwise none: without an exporter a span only
/// gives log lines their context, and the call's own lines (retries) carry
/// the operation themselves, with the rpc span's provider and account
/// around them. The traceparent sent on then names the rpc span as parent.
/// A span costs a few microseconds to open, record, enter on every poll and
/// close, a measurable share of a call at full load (BENCHMARKS.md).
fn client_span(provider: ProviderKind, account: &str, request: &Outbound) -> tracing::Span {
    if !telemetry::exporting() && !tracing::enabled!(tracing::Level::DEBUG) {
        return tracing::Span::none();
    }
    tracing::info_span!(
        "provider_call",
        otel.name = %format_args!("{} {}", request.method, request.path_template),
        otel.kind = "client",
        provider = provider.as_str(),
        account = account,
        operation = request.operation,
        http.request.method = %request.method,
        url.template = request.path_template,
        server.address = request.url.host_str().unwrap_or_default(),
        server.port = i64::from(request.url.port_or_known_default().unwrap_or_default()),
        http.response.status_code = field::Empty,
        retry.attempt = field::Empty,
    )
}

/// `Retry-After` in seconds (the HTTP-date form is not used by these
/// providers and is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|seconds| Duration::from_secs(seconds.min(3600)))
}

/// Joins `segments` onto `base`, each as exactly one percent-encoded path
/// segment ('/' included), so no caller value can change the host, scheme
/// or path prefix.
pub(crate) fn url_with_segments(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    {
        let mut path = url
            .path_segments_mut()
            .expect("base URLs are validated as http(s)");
        path.pop_if_empty();
        for segment in segments {
            // "." and ".." would be resolved away; send them encoded.
            match *segment {
                "." => path.push("%2E"),
                ".." => path.push("%2E%2E"),
                other => path.push(other),
            };
        }
    }
    url
}

/// `base` plus a fixed path of the gateway's own, like `/v3.0/sign/request`.
pub(crate) fn url_with_path(base: &Url, path: &'static str) -> Url {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    url_with_segments(base, &parts)
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// No id can change the scheme, host, port or path prefix of a
        /// provider call: each id is exactly one path segment.
        #[test]
        fn ids_stay_one_segment_below_the_base(
            id in prop_oneof![any::<String>(), Just("..".to_owned()), Just(".".to_owned()), Just("a/../../b".to_owned())],
            other in "[a-z0-9_]{1,10}",
        ) {
            let base = Url::parse("https://api.bynn.com/v1").unwrap();
            let url = url_with_segments(&base, &["autodoc", "invitations", &id, &other]);
            prop_assert_eq!(url.scheme(), "https");
            prop_assert_eq!(url.host_str(), Some("api.bynn.com"));
            prop_assert_eq!(url.port(), None);
            prop_assert!(url.query().is_none());
            prop_assert!(url.fragment().is_none());
            let segments: Vec<&str> = url.path_segments().unwrap().collect();
            prop_assert_eq!(segments.len(), 5);
            prop_assert_eq!(&segments[..3], &["v1", "autodoc", "invitations"][..]);
            prop_assert_eq!(segments[4], other.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_segments_are_encoded_and_keep_the_prefix() {
        let base = Url::parse("https://api.bynn.com/v1").unwrap();
        let url = url_with_segments(&base, &["autodoc", "invitations", "adi_x?y=1", "resend"]);
        assert_eq!(
            url.as_str(),
            "https://api.bynn.com/v1/autodoc/invitations/adi_x%3Fy=1/resend"
        );
        let url = url_with_segments(&base, &["autodoc", "..", "a/b"]);
        assert_eq!(
            url.as_str(),
            "https://api.bynn.com/v1/autodoc/%252E%252E/a%2Fb"
        );
        let url = url_with_path(&base, "/autodoc/invitations");
        assert_eq!(url.as_str(), "https://api.bynn.com/v1/autodoc/invitations");
    }
}
