//! Metrics on the admin port's `/metrics`, kept in a `prometheus-client`
//! registry: OpenMetrics (with trace-id exemplars on the latency
//! histograms) for scrapers that ask for it, the classic Prometheus text
//! format otherwise.

use std::{
    fmt::Write as _,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::telemetry::TraceId;
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _, text::encode},
    metrics::{
        counter::{ConstCounter, Counter},
        exemplar::HistogramWithExemplars,
        family::Family,
        gauge::{ConstGauge, Gauge},
    },
    registry::Registry,
};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Every state a breaker can be in, one series each (the OpenMetrics
/// state-set convention; the client library has no StateSet type, so the
/// family is typed as a gauge of 0s and one 1).
const BREAKER_STATES: [&str; 3] = ["closed", "half_open", "open"];

/// The content type of the OpenMetrics text format.
pub(crate) const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of the classic Prometheus text format.
pub(crate) const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How a provider call ended: its HTTP status, or the gateway's reason when
/// no answer came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CallStatus {
    Http(u16),
    Failed(&'static str),
}

impl CallStatus {
    fn label(self) -> &'static str {
        match self {
            CallStatus::Http(code) => interned(itoa::Buffer::new().format(code)),
            CallStatus::Failed(reason) => interned(&reason.to_ascii_lowercase()),
        }
    }
}

/// A label value kept for the life of the process, so a call builds its
/// label set without allocating. Only for values that are few: configured
/// account names, HTTP statuses and error reasons.
fn interned(value: &str) -> &'static str {
    // foldhash, not SipHash: two lookups per provider call, of values that
    // come from the configuration and the providers' status codes.
    static VALUES: OnceLock<std::sync::RwLock<foldhash::HashSet<&'static str>>> = OnceLock::new();
    let values = VALUES.get_or_init(Default::default);
    if let Some(&known) = values.read().unwrap_or_else(|e| e.into_inner()).get(value) {
        return known;
    }
    let mut values = values.write().unwrap_or_else(|e| e.into_inner());
    if let Some(&known) = values.get(value) {
        return known;
    }
    let kept: &'static str = Box::leak(value.to_owned().into_boxed_str());
    values.insert(kept);
    kept
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    method: &'static str,
    code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    method: &'static str,
    code: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShedLabels {
    component: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: &'static str,
    account: &'static str,
    operation: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    provider: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    provider_event: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BreakerLabels {
    provider: &'static str,
    account: String,
    state: &'static str,
}

/// The exemplar of a latency observation: the trace it belongs to.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TraceLabels {
    trace_id: String,
}

impl TraceLabels {
    fn of(trace_id: TraceId) -> TraceLabels {
        TraceLabels {
            trace_id: trace_id.to_string(),
        }
    }
}

type Latency = HistogramWithExemplars<TraceLabels>;

fn latency() -> Latency {
    HistogramWithExemplars::new(BUCKETS.into_iter())
}

/// The latency histogram and the request counter of one label set.
struct Series {
    latency: Latency,
    count: Counter,
}

impl Series {
    fn observe(&self, elapsed: Duration, exemplar: Option<TraceId>) {
        self.latency
            .observe(elapsed.as_secs_f64(), exemplar.map(TraceLabels::of), None);
        self.count.inc();
    }
}

/// The series already used, by a key of the caller's: one lookup per call
/// under foldhash, where each family's own lookup SipHashes every label
/// (and the provider labels first intern two of theirs), four times per
/// call in all. The handles share their values with the families' series,
/// so what is exported does not change.
struct SeriesCache<K>(std::sync::RwLock<foldhash::HashMap<K, Series>>);

impl<K> Default for SeriesCache<K> {
    fn default() -> Self {
        SeriesCache(std::sync::RwLock::default())
    }
}

impl<K: std::hash::Hash + Eq> SeriesCache<K> {
    fn observe<Q>(
        &self,
        key: &Q,
        owned: impl FnOnce() -> K,
        create: impl FnOnce() -> Series,
        elapsed: Duration,
        exemplar: Option<TraceId>,
    ) where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        if let Some(series) = self.0.read().unwrap_or_else(|e| e.into_inner()).get(key) {
            series.observe(elapsed, exemplar);
            return;
        }
        let series = create();
        series.observe(elapsed, exemplar);
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(owned(), series);
    }
}

/// Provider, operation and how the call ended.
type ProviderKey = (&'static str, &'static str, CallStatus);

/// Log lines the log writer dropped because it fell behind.
static DROPPED_LOG_LINES: OnceLock<Arc<AtomicU64>> = OnceLock::new();
/// Audit lines whose caller waited for the audit writer to catch up.
static DELAYED_AUDIT_LINES: OnceLock<Arc<AtomicU64>> = OnceLock::new();

/// Exports the log writers' counts as `esign_log_lines_dropped_total` and
/// `esign_audit_lines_delayed_total` (set once, at start).
pub(crate) fn count_log_writer_lag(dropped: Arc<AtomicU64>, delayed_audit: Arc<AtomicU64>) {
    let _ = DROPPED_LOG_LINES.set(dropped);
    let _ = DELAYED_AUDIT_LINES.set(delayed_audit);
}

pub(crate) struct Metrics {
    registry: Registry,
    rpc_duration: Family<RpcLabels, Latency, fn() -> Latency>,
    rpc_requests: Family<RpcLabels, Counter>,
    rpc_errors: Family<ErrorLabels, Counter>,
    shed: Family<ShedLabels, Counter>,
    provider_duration: Family<ProviderLabels, Latency, fn() -> Latency>,
    provider_requests: Family<ProviderLabels, Counter>,
    rpc_series: SeriesCache<RpcLabels>,
    /// By provider, operation and status, then by account (looked up by
    /// `&str`). A series created twice by racing calls is the same series:
    /// both handles come from the families.
    provider_series: std::sync::RwLock<foldhash::HashMap<ProviderKey, SeriesCache<String>>>,
    replays: Family<MethodLabels, Counter>,
    breaker: Family<BreakerLabels, Gauge>,
    in_flight: Gauge,
    in_flight_count: AtomicI64,
    webhooks: Family<WebhookLabels, Counter>,
    events: Family<EventLabels, Counter>,
    watchers: Gauge,
    poller_calls: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let rpc_duration = Family::new_with_constructor(latency as fn() -> Latency);
        let rpc_requests = Family::default();
        let rpc_errors = Family::default();
        let shed: Family<ShedLabels, Counter> = Family::default();
        // Both series exist from the start, so alerts and dashboards see 0
        // rather than no data.
        for component in ["in-flight", "payload-budget"] {
            drop(shed.get_or_create(&ShedLabels { component }));
        }
        let provider_duration = Family::new_with_constructor(latency as fn() -> Latency);
        let provider_requests = Family::default();
        let replays = Family::default();
        let breaker = Family::default();
        let in_flight = Gauge::default();
        registry.register(
            "esign_rpc_duration_seconds",
            "Time to answer a gRPC call, by method and gRPC code",
            rpc_duration.clone(),
        );
        registry.register(
            "esign_rpc_requests",
            "gRPC calls answered, by method and gRPC code",
            rpc_requests.clone(),
        );
        registry.register(
            "esign_rpc_errors",
            "gRPC calls answered with an error, by method, gRPC code and ErrorInfo reason",
            rpc_errors.clone(),
        );
        registry.register(
            "esign_shed",
            "Calls refused before their handler ran or a provider was asked, by what shed them (in-flight, payload-budget)",
            shed.clone(),
        );
        registry.register(
            "esign_provider_request_duration_seconds",
            "Provider HTTP calls (all attempts), by provider, account, operation and HTTP status",
            provider_duration.clone(),
        );
        registry.register(
            "esign_provider_requests",
            "Provider HTTP calls, by provider, account, operation and HTTP status",
            provider_requests.clone(),
        );
        registry.register(
            "esign_idempotency_replays",
            "Calls answered from a stored request-id outcome, by method",
            replays.clone(),
        );
        registry.register(
            "esign_breaker_state",
            "Circuit state per provider account: 1 for the current state, 0 for the others",
            breaker.clone(),
        );
        registry.register(
            "esign_rpc_in_flight",
            "gRPC calls being served now",
            in_flight.clone(),
        );
        let webhooks = Family::default();
        let events = Family::default();
        let watchers = Gauge::default();
        let poller_calls = Counter::default();
        registry.register(
            "esign_webhooks",
            "Provider webhooks received, by provider and outcome (accepted, duplicate, or the refusal)",
            webhooks.clone(),
        );
        registry.register(
            "esign_events",
            "Events recorded, by the provider's name for what happened",
            events.clone(),
        );
        registry.register(
            "esign_event_watchers",
            "WatchEvents streams open now",
            watchers.clone(),
        );
        registry.register(
            "esign_poller_calls",
            "Bynn invitation reads made by the poller",
            poller_calls.clone(),
        );
        registry.register_collector(Box::new(ProcessCollector));
        Metrics {
            registry,
            rpc_duration,
            rpc_requests,
            rpc_errors,
            shed,
            provider_duration,
            provider_requests,
            rpc_series: SeriesCache::default(),
            provider_series: std::sync::RwLock::default(),
            replays,
            breaker,
            in_flight,
            in_flight_count: AtomicI64::new(0),
            webhooks,
            events,
            watchers,
            poller_calls,
        }
    }
}

/// The process-wide registry.
pub(crate) fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}

/// Counts an RPC as in flight until dropped.
pub(crate) struct InFlight;

impl Drop for InFlight {
    fn drop(&mut self) {
        let metrics = global();
        let now = metrics.in_flight_count.fetch_sub(1, Ordering::Relaxed) - 1;
        metrics.in_flight.set(now);
    }
}

/// An open WatchEvents stream, counted until dropped.
pub(crate) struct Watcher;

impl Drop for Watcher {
    fn drop(&mut self) {
        global().watchers.dec();
    }
}

impl Metrics {
    pub(crate) fn in_flight(&self) -> InFlight {
        let now = self.in_flight_count.fetch_add(1, Ordering::Relaxed) + 1;
        self.in_flight.set(now);
        InFlight
    }

    /// Records an answered RPC; `trace_id` becomes the latency exemplar.
    pub(crate) fn rpc_finished(
        &self,
        method: &'static str,
        code: &'static str,
        reason: Option<&'static str>,
        elapsed: Duration,
        exemplar: Option<TraceId>,
    ) {
        let labels = RpcLabels { method, code };
        self.rpc_series.observe(
            &labels,
            || labels.clone(),
            || Series {
                latency: self.rpc_duration.get_or_create(&labels).clone(),
                count: self.rpc_requests.get_or_create(&labels).clone(),
            },
            elapsed,
            exemplar,
        );
        if let Some(reason) = reason {
            self.rpc_errors
                .get_or_create(&ErrorLabels {
                    method,
                    code,
                    reason,
                })
                .inc();
        }
    }

    /// A call shed before any work: `component` is what refused it.
    pub(crate) fn shed(&self, component: &'static str) {
        self.shed.get_or_create(&ShedLabels { component }).inc();
    }

    pub(crate) fn provider_call(
        &self,
        provider: &'static str,
        account: &str,
        operation: &'static str,
        status: CallStatus,
        elapsed: Duration,
        exemplar: Option<TraceId>,
    ) {
        let key = (provider, operation, status);
        let create = || {
            let labels = ProviderLabels {
                provider,
                account: interned(account),
                operation,
                status: status.label(),
            };
            Series {
                latency: self.provider_duration.get_or_create(&labels).clone(),
                count: self.provider_requests.get_or_create(&labels).clone(),
            }
        };
        let accounts = self
            .provider_series
            .read()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(by_account) = accounts.get(&key) {
            by_account.observe(account, || account.to_owned(), create, elapsed, exemplar);
            return;
        }
        drop(accounts);
        let by_account = SeriesCache::default();
        by_account.observe(account, || account.to_owned(), create, elapsed, exemplar);
        self.provider_series
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert(by_account);
    }

    pub(crate) fn replayed(&self, method: &'static str) {
        self.replays.get_or_create(&MethodLabels { method }).inc();
    }

    /// Sets the account's circuit to `state` (one of "closed", "half_open",
    /// "open"), all other states to 0.
    pub(crate) fn breaker_state(&self, provider: &'static str, account: &str, state: &'static str) {
        for each in BREAKER_STATES {
            let labels = BreakerLabels {
                provider,
                account: account.to_owned(),
                state: each,
            };
            self.breaker
                .get_or_create(&labels)
                .set(i64::from(each == state));
        }
    }

    pub(crate) fn webhook(&self, provider: &'static str, outcome: &'static str) {
        self.webhooks
            .get_or_create(&WebhookLabels { provider, outcome })
            .inc();
    }

    pub(crate) fn event_emitted(&self, provider_event: &str) {
        self.events
            .get_or_create(&EventLabels {
                provider_event: provider_event.to_owned(),
            })
            .inc();
    }

    /// Counts an open WatchEvents stream until dropped.
    pub(crate) fn watcher(&self) -> Watcher {
        self.watchers.inc();
        Watcher
    }

    pub(crate) fn poller_call(&self) {
        self.poller_calls.inc();
    }

    /// OpenMetrics text, exemplars included, ending in `# EOF`.
    pub(crate) fn render_openmetrics(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// The classic Prometheus text format (0.0.4): the same series, without
    /// exemplars, units or `# EOF`, and with counters under their `_total`
    /// names as that format expects.
    pub(crate) fn render(&self) -> String {
        let open = self.render_openmetrics();
        let counters: std::collections::HashSet<&str> = open
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
            .collect();
        let mut out = String::with_capacity(open.len());
        for line in open.lines() {
            if line == "# EOF" || line.starts_with("# UNIT ") {
                continue;
            }
            let meta = line
                .strip_prefix("# HELP ")
                .map(|rest| ("HELP", rest))
                .or_else(|| line.strip_prefix("# TYPE ").map(|rest| ("TYPE", rest)));
            if let Some((kind, rest)) = meta {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let suffix = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                let _ = writeln!(out, "# {kind} {name}{suffix} {tail}");
                continue;
            }
            // An exemplar follows ` # ` after the sample's value.
            let sample = line.split_once(" # ").map_or(line, |(sample, _)| sample);
            out.push_str(sample);
            out.push('\n');
        }
        out
    }
}

/// CPU, memory, threads and file descriptors of this process, read from
/// `/proc` at each scrape; on other systems it adds nothing.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        // Always present (0 without the writers), so an alert can rely on them.
        let lag = [
            (
                &DROPPED_LOG_LINES,
                "esign_log_lines_dropped",
                "Log lines dropped because the log writer fell behind (audit lines are never dropped)",
            ),
            (
                &DELAYED_AUDIT_LINES,
                "esign_audit_lines_delayed",
                "Audit lines whose call waited because the audit writer fell behind",
            ),
        ];
        for (count, name, help) in lag {
            let counter = ConstCounter::new(count.get().map_or(0, |c| c.load(Ordering::Relaxed)));
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let Ok(process) = procfs::process::Process::myself() else {
            return Ok(());
        };
        let Ok(stat) = process.stat() else {
            return Ok(());
        };
        let ticks = procfs::ticks_per_second() as f64;
        let page = procfs::page_size();
        let cpu = ConstCounter::new((stat.utime + stat.stime) as f64 / ticks);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges: [(&str, &str, i64); 3] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                (stat.rss * page) as i64,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                stat.vsize as i64,
            ),
            (
                "process_threads",
                "Number of OS threads in the process",
                stat.num_threads,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        if let Ok(open_fds) = process.fd_count() {
            let gauge = ConstGauge::new(open_fds as i64);
            gauge.encode(encoder.encode_descriptor(
                "process_open_fds",
                "Number of open file descriptors",
                None,
                gauge.metric_type(),
            )?)?;
        }
        if let Ok(boot) = procfs::boot_time_secs() {
            let gauge = ConstGauge::new(boot as f64 + stat.starttime as f64 / ticks);
            gauge.encode(encoder.encode_descriptor(
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                None,
                gauge.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_carry_the_same_series() {
        let metrics = Metrics::default();
        metrics.rpc_finished(
            "ResendInvitation",
            "OK",
            None,
            Duration::from_millis(40),
            None,
        );
        metrics.rpc_finished(
            "ResendInvitation",
            "OK",
            None,
            Duration::from_millis(400),
            Some(TraceId::from_u128(
                0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
            )),
        );
        metrics.rpc_finished(
            "ResendInvitation",
            "RESOURCE_EXHAUSTED",
            Some("RESEND_COOLDOWN"),
            Duration::from_millis(2),
            None,
        );
        metrics.shed("payload-budget");
        metrics.provider_call(
            "bynn",
            "tenant-a",
            "resend",
            CallStatus::Http(200),
            Duration::from_millis(30),
            None,
        );
        // Once more through the cached series, and once for another account
        // of the same provider, operation and status.
        for account in ["tenant-a", "tenant-b"] {
            metrics.provider_call(
                "bynn",
                account,
                "resend",
                CallStatus::Http(200),
                Duration::from_millis(30),
                None,
            );
        }
        metrics.breaker_state("bynn", "default", "open");

        let text = metrics.render();
        assert!(text.contains(
            "esign_provider_requests_total{provider=\"bynn\",account=\"tenant-a\",operation=\"resend\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "esign_provider_requests_total{provider=\"bynn\",account=\"tenant-b\",operation=\"resend\",status=\"200\"} 1"
        ));
        assert!(text.contains(
            "esign_rpc_duration_seconds_bucket{le=\"0.05\",method=\"ResendInvitation\",code=\"OK\"} 1"
        ));
        assert!(text.contains(
            "esign_rpc_duration_seconds_bucket{le=\"0.5\",method=\"ResendInvitation\",code=\"OK\"} 2"
        ));
        assert!(text.contains("# TYPE esign_rpc_requests_total counter"));
        assert!(
            text.contains("esign_rpc_requests_total{method=\"ResendInvitation\",code=\"OK\"} 2")
        );
        assert!(text.contains(
            "esign_rpc_errors_total{method=\"ResendInvitation\",code=\"RESOURCE_EXHAUSTED\",reason=\"RESEND_COOLDOWN\"} 1"
        ));
        assert!(text.contains("esign_shed_total{component=\"payload-budget\"} 1"));
        // Account names are letters, digits, '-' and '_' (checked at
        // start), so label values need no escaping.
        assert!(text.contains("account=\"tenant-a\""));
        assert!(text.contains(
            "esign_breaker_state{provider=\"bynn\",account=\"default\",state=\"open\"} 1"
        ));
        assert!(text.contains(
            "esign_breaker_state{provider=\"bynn\",account=\"default\",state=\"closed\"} 0"
        ));
        assert!(!text.contains("# EOF"));

        let open = metrics.render_openmetrics();
        assert!(open.ends_with("# EOF\n"));
        assert!(open.contains("# TYPE esign_rpc_requests counter"));
        assert!(open.contains("process_cpu_seconds_total"));
        assert!(open.contains("# {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"} 0.4"));
    }
}
