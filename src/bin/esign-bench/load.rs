//! The load generator: calls from many tasks, latency percentiles.

use std::{
    collections::BTreeMap,
    future::Future,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;

/// How one call ended, as the load generator counts it.
pub(crate) enum Outcome {
    Ok,
    Failed {
        code: String,
        retry_after: Option<Duration>,
    },
}

#[derive(Debug, Serialize, Default, Clone)]
pub(crate) struct LoadReport {
    pub(crate) concurrency: usize,
    pub(crate) seconds: f64,
    pub(crate) calls: u64,
    pub(crate) ok: u64,
    pub(crate) rps: f64,
    pub(crate) ok_rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: f64,
    pub(crate) errors_by_code: BTreeMap<String, u64>,
    /// Latency of failed calls (e.g. shed ones).
    pub(crate) failed_p99_ms: f64,
    /// Failed calls that carried RetryInfo.
    pub(crate) failed_with_retry_info: u64,
}

/// Runs `call` from `concurrency` tasks for `duration`; `honor_retry` makes
/// a task wait out a failed call's RetryInfo, as a well-behaved client does.
pub(crate) async fn load<F, Fut>(
    concurrency: usize,
    duration: Duration,
    honor_retry: bool,
    call: F,
) -> LoadReport
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    load_staggered(concurrency, Duration::ZERO, duration, honor_retry, call).await
}

/// Like [`load`], but the tasks make their first calls spread evenly over
/// `stagger`, and only calls begun after it are measured, for `duration`.
///
/// A closed loop keeps its callers in the phase they started in: 2,000
/// callers begun in the same millisecond against a 250 ms provider stay a
/// wave of 2,000 calls every 250 ms, and the last of each wave waits for
/// all the others. Callers that have been running a while are spread out,
/// and that steady state is what this measures.
pub(crate) async fn load_staggered<F, Fut>(
    concurrency: usize,
    stagger: Duration,
    duration: Duration,
    honor_retry: bool,
    call: F,
) -> LoadReport
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    let call = Arc::new(call);
    let began = Instant::now();
    let started = began + stagger;
    let end = started + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|index| {
            let call = call.clone();
            let first_call = began + stagger.mul_f64(index as f64 / concurrency as f64);
            tokio::spawn(async move {
                let mut ok = Vec::with_capacity(4096);
                let mut failed = Vec::new();
                let mut codes: BTreeMap<String, u64> = BTreeMap::new();
                let mut with_retry = 0u64;
                tokio::time::sleep_until(first_call.into()).await;
                while Instant::now() < end {
                    let begun = Instant::now();
                    let outcome = call(index).await;
                    if begun < started {
                        continue;
                    }
                    let micros = begun.elapsed().as_micros() as u32;
                    match outcome {
                        Outcome::Ok => ok.push(micros),
                        Outcome::Failed { code, retry_after } => {
                            failed.push(micros);
                            *codes.entry(code).or_default() += 1;
                            if let Some(delay) = retry_after {
                                with_retry += 1;
                                if honor_retry {
                                    tokio::time::sleep(delay.min(end - Instant::now().min(end)))
                                        .await;
                                }
                            }
                        }
                    }
                }
                (ok, failed, codes, with_retry)
            })
        })
        .collect();
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    let mut with_retry = 0;
    for task in tasks {
        let (o, f, c, r) = task.await.expect("load task");
        ok.extend(o);
        failed.extend(f);
        for (code, count) in c {
            *codes.entry(code).or_default() += count;
        }
        with_retry += r;
    }
    let seconds = Instant::now()
        .saturating_duration_since(started)
        .as_secs_f64();
    let mut all: Vec<u32> = ok.iter().chain(failed.iter()).copied().collect();
    all.sort_unstable();
    failed.sort_unstable();
    let calls = all.len() as u64;
    LoadReport {
        concurrency,
        seconds,
        calls,
        ok: ok.len() as u64,
        rps: calls as f64 / seconds,
        ok_rps: ok.len() as f64 / seconds,
        p50_ms: percentile(&all, 0.50),
        p90_ms: percentile(&all, 0.90),
        p99_ms: percentile(&all, 0.99),
        p999_ms: percentile(&all, 0.999),
        errors_by_code: codes,
        failed_p99_ms: percentile(&failed, 0.99),
        failed_with_retry_info: with_retry,
    }
}

/// The `q` quantile of sorted microsecond samples, in milliseconds.
pub(crate) fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

pub(crate) fn outcome_of<T>(result: Result<T, tonic::Status>) -> Outcome {
    use tonic_types::StatusExt as _;
    match result {
        Ok(_) => Outcome::Ok,
        Err(status) => Outcome::Failed {
            code: format!("{:?}", status.code()),
            retry_after: status
                .get_details_retry_info()
                .and_then(|info| info.retry_delay),
        },
    }
}

/// One HTTP/2 connection to the server under test, as the load generator's
/// generated clients use it.
///
/// tonic's `Channel` routes every call through a buffer task (a queue and a
/// cross-task wake-up per call) and rebuilds it behind reconnect and
/// load-balancing layers. A real caller runs on another machine, but here
/// the load generator shares two cores with the server under test, so what
/// it spends is taken from the server. This sends straight on hyper's
/// HTTP/2 handle, as h2load does; B and N get the same caller.
#[derive(Clone)]
pub(crate) struct Connection {
    sender: hyper::client::conn::http2::SendRequest<tonic::body::Body>,
    authority: http::uri::Authority,
}

impl tower_service::Service<http::Request<tonic::body::Body>> for Connection {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.sender.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        // The generated client sends a path only; HTTP/2 wants the scheme
        // and authority too (`Channel` adds them the same way).
        let mut parts = std::mem::take(request.uri_mut()).into_parts();
        parts.scheme = Some(http::uri::Scheme::HTTP);
        parts.authority = Some(self.authority.clone());
        *request.uri_mut() = http::Uri::from_parts(parts).expect("uri from parts");
        Box::pin(self.sender.send_request(request))
    }
}

pub(crate) async fn open_connections(addr: SocketAddr, count: usize) -> Vec<Connection> {
    let authority: http::uri::Authority = addr.to_string().parse().expect("authority");
    let mut connections = Vec::with_capacity(count);
    for _ in 0..count {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (sender, connection) =
            hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("HTTP/2 handshake");
        tokio::spawn(connection);
        connections.push(Connection {
            sender,
            authority: authority.clone(),
        });
    }
    connections
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<u32> = (1..=1000).map(|n| n * 1000).collect();
        assert_eq!(percentile(&samples, 0.5), 500.0);
        assert_eq!(percentile(&samples, 0.99), 990.0);
        assert_eq!(percentile(&samples, 0.999), 999.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
