//! Prometheus metrics, rendered as text on the admin port's `/metrics`.
//!
//! A handful of fixed series, kept in one process-wide registry; the lock is
//! held only to bump a counter or a bucket.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// How a provider call ended: its HTTP status, or the gateway's reason when
/// no answer came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CallStatus {
    Http(u16),
    Failed(&'static str),
}

impl CallStatus {
    fn label(self) -> String {
        match self {
            CallStatus::Http(code) => code.to_string(),
            CallStatus::Failed(reason) => reason.to_ascii_lowercase(),
        }
    }
}

#[derive(Default)]
struct Series {
    /// (method, code)
    rpc: BTreeMap<(&'static str, &'static str), Histogram>,
    /// (provider, operation, status) -> account -> latency; the account is
    /// looked up by `&str`, so a call allocates nothing once seen.
    provider: BTreeMap<(&'static str, &'static str, CallStatus), BTreeMap<String, Histogram>>,
    /// method
    replays: BTreeMap<&'static str, u64>,
    /// (provider, account) -> state
    breaker: BTreeMap<(&'static str, String), &'static str>,
}

#[derive(Default)]
pub struct Metrics {
    series: Mutex<Series>,
    in_flight: AtomicI64,
}

/// The process-wide registry.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}

/// Counts an RPC as in flight until dropped.
pub struct InFlight;

impl Drop for InFlight {
    fn drop(&mut self) {
        global().in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    fn series(&self) -> std::sync::MutexGuard<'_, Series> {
        self.series.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn in_flight(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight
    }

    pub fn rpc_finished(&self, method: &'static str, code: &'static str, elapsed: Duration) {
        self.series()
            .rpc
            .entry((method, code))
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    pub fn provider_call(
        &self,
        provider: &'static str,
        account: &str,
        operation: &'static str,
        status: CallStatus,
        elapsed: Duration,
    ) {
        let mut series = self.series();
        let accounts = series
            .provider
            .entry((provider, operation, status))
            .or_default();
        let histogram = match accounts.get_mut(account) {
            Some(histogram) => histogram,
            None => accounts.entry(account.to_owned()).or_default(),
        };
        histogram.observe(elapsed.as_secs_f64());
    }

    pub fn replayed(&self, method: &'static str) {
        *self.series().replays.entry(method).or_default() += 1;
    }

    pub fn breaker_state(&self, provider: &'static str, account: &str, state: &'static str) {
        self.series()
            .breaker
            .insert((provider, account.to_owned()), state);
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let series = self.series();
        let mut out = String::with_capacity(4096);
        histogram_family(
            &mut out,
            "esign_rpc_duration_seconds",
            "Time to answer a gRPC call, by method and gRPC code.",
            series
                .rpc
                .iter()
                .map(|((method, code), h)| (format!("method=\"{method}\",code=\"{code}\""), h)),
        );
        counter_family(
            &mut out,
            "esign_rpc_requests_total",
            "gRPC calls answered, by method and gRPC code.",
            series.rpc.iter().map(|((method, code), h)| {
                (format!("method=\"{method}\",code=\"{code}\""), h.count)
            }),
        );
        histogram_family(
            &mut out,
            "esign_provider_request_duration_seconds",
            "Provider HTTP calls (all attempts), by provider, account, operation and HTTP status.",
            series
                .provider
                .iter()
                .flat_map(|((provider, operation, status), accounts)| {
                    accounts.iter().map(move |(account, h)| {
                        (
                            provider_labels(provider, account, operation, &status.label()),
                            h,
                        )
                    })
                }),
        );
        counter_family(
            &mut out,
            "esign_provider_requests_total",
            "Provider HTTP calls, by provider, account, operation and HTTP status (or transport error).",
            series
                .provider
                .iter()
                .flat_map(|((provider, operation, status), accounts)| {
                    accounts.iter().map(move |(account, h)| {
                        (
                            provider_labels(provider, account, operation, &status.label()),
                            h.count,
                        )
                    })
                }),
        );
        let _ = writeln!(
            out,
            "# HELP esign_rpc_in_flight gRPC calls being served now.\n# TYPE esign_rpc_in_flight gauge\nesign_rpc_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP esign_breaker_open Circuit state per provider account: 0 closed, 1 half-open, 2 open.\n# TYPE esign_breaker_open gauge"
        );
        for ((provider, account), state) in &series.breaker {
            let value = match *state {
                "open" => 2,
                "half_open" => 1,
                _ => 0,
            };
            let _ = writeln!(
                out,
                "esign_breaker_open{{provider=\"{provider}\",account=\"{}\"}} {value}",
                escape(account)
            );
        }
        counter_family(
            &mut out,
            "esign_idempotency_replays_total",
            "Calls answered from a stored request_id outcome, by method.",
            series
                .replays
                .iter()
                .map(|(method, count)| (format!("method=\"{method}\""), *count)),
        );
        out
    }
}

fn provider_labels(provider: &str, account: &str, operation: &str, status: &str) -> String {
    format!(
        "provider=\"{provider}\",account=\"{}\",operation=\"{operation}\",status=\"{}\"",
        escape(account),
        escape(status)
    )
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn counter_family(
    out: &mut String,
    name: &str,
    help: &str,
    samples: impl Iterator<Item = (String, u64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

fn histogram_family<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    samples: impl Iterator<Item = (String, &'a Histogram)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (labels, histogram) in samples {
        for (bound, count) in BUCKETS.iter().zip(histogram.counts.iter()) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels},le=\"+Inf\"}} {}",
            histogram.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", histogram.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", histogram.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets_and_escapes_labels() {
        let metrics = Metrics::default();
        metrics.rpc_finished("ResendInvitation", "OK", Duration::from_millis(30));
        metrics.rpc_finished("ResendInvitation", "OK", Duration::from_millis(300));
        metrics.provider_call(
            "bynn",
            "tenant \"a\"",
            "resend",
            CallStatus::Http(200),
            Duration::from_millis(20),
        );
        let text = metrics.render();
        assert!(text.contains(
            "esign_rpc_duration_seconds_bucket{method=\"ResendInvitation\",code=\"OK\",le=\"0.05\"} 1"
        ));
        assert!(text.contains(
            "esign_rpc_duration_seconds_bucket{method=\"ResendInvitation\",code=\"OK\",le=\"0.5\"} 2"
        ));
        assert!(
            text.contains("esign_rpc_requests_total{method=\"ResendInvitation\",code=\"OK\"} 2")
        );
        assert!(text.contains("account=\"tenant \\\"a\\\"\""));
    }
}
