//! Calls whose body is already in memory (JSON, forms, none) and whose
//! answer is read whole: sent on hyper-util's pooled client directly, the
//! same hyper, rustls and connection pool reqwest is built on, without
//! reqwest's per-request URL re-parse and its redirect and retry layers
//! (the gateway never follows redirects and retries by its own policy).
//! Measured in BENCHMARKS.md.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderValue, header};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};

use super::{
    Outbound, POOL_IDLE_TIMEOUT, POOL_MAX_IDLE_PER_HOST, ProviderResponse, USER_AGENT,
    errors::SendFailure, files::content_length,
};
use crate::{
    config::Timeouts,
    error::{GatewayError, Result},
    telemetry,
};

pub(super) type DirectClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The pooled client: HTTPS with the Mozilla roots (as reqwest's are) or
/// plain HTTP, HTTP/2 when the provider offers it over ALPN, pooled as the
/// reqwest client is.
pub(super) fn client(timeouts: &Timeouts) -> Result<DirectClient> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(timeouts.connect));
    http.set_nodelay(true);
    http.enforce_http(false);
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| GatewayError::internal("could not set up TLS").with_source(error))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(https))
}

/// One attempt: the request sent and the whole answer read within `budget`,
/// the answer bounded to `max_body_bytes`.
pub(super) async fn send(
    client: &DirectClient,
    request: &Outbound,
    body: Bytes,
    budget: Duration,
    max_body_bytes: usize,
) -> std::result::Result<ProviderResponse, SendFailure> {
    let uri = http::Uri::try_from(request.url.as_str())
        .map_err(|error| SendFailure::Transport(Box::new(error)))?;
    let mut outbound = http::Request::new(Full::new(body));
    *outbound.method_mut() = request.method.clone();
    *outbound.uri_mut() = uri;
    let headers = outbound.headers_mut();
    headers.clone_from(&request.headers);
    headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    headers
        .entry(header::ACCEPT)
        .or_insert(HeaderValue::from_static("*/*"));
    telemetry::inject_trace_context(headers);
    let exchange = async {
        let response = client.request(outbound).await.map_err(|error| {
            if error.is_connect() {
                SendFailure::Connect(Box::new(error))
            } else {
                SendFailure::Transport(Box::new(error))
            }
        })?;
        let (parts, body) = response.into_parts();
        if content_length(&parts.headers).is_some_and(|length| length > max_body_bytes as u64) {
            return Err(SendFailure::BodyTooLarge);
        }
        let body = Limited::new(body, max_body_bytes)
            .collect()
            .await
            .map_err(|error| {
                if error.is::<LengthLimitError>() {
                    SendFailure::BodyTooLarge
                } else {
                    SendFailure::Transport(error)
                }
            })?
            // One chunk (the usual small answer) is kept without a copy.
            .to_bytes();
        Ok(ProviderResponse {
            status: parts.status,
            headers: parts.headers,
            body,
            is_retry_after_possible_delivery: false,
        })
    };
    tokio::time::timeout(budget, exchange)
        .await
        .map_err(|elapsed| SendFailure::Timeout(Box::new(elapsed)))?
}
