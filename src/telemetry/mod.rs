//! Logs and traces: `tracing` with JSON lines (`lines`) or pretty output
//! filtered by `RUST_LOG` and written in batches (`batch`); W3C ids for every
//! span (`ids`), or the OpenTelemetry layer and an OTLP exporter when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use http::HeaderMap;
use opentelemetry::{
    Context, global,
    trace::{TraceContextExt as _, TracerProvider as _},
};
use opentelemetry_http::HeaderInjector;
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{
    EnvFilter, Layer as _,
    filter::{FilterExt as _, Targets},
    layer::{Filter, SubscriberExt as _},
    util::SubscriberInitExt as _,
};

use crate::config::{Config, LogFormat};

mod batch;
mod ids;
mod lines;
pub(crate) use lines::{AUDIT_TARGET, DirectFields, write_info_line};
use lines::{JsonLines, SpanFields};

/// Takes whole lines.
pub(crate) type LineSink = dyn Fn(&[u8]) + Send + Sync;

/// Where the gateway's audit lines go without passing through tracing: set
/// for JSON lines without an exporter (an exporter wants each audit line as
/// an event of its rpc span, so then they stay tracing events).
static AUDIT_SINK: std::sync::OnceLock<Box<LineSink>> = std::sync::OnceLock::new();

/// The sink audit lines are written to directly, when one is set.
pub(crate) fn audit_sink() -> Option<&'static LineSink> {
    AUDIT_SINK.get().map(|sink| &**sink)
}

/// Log text waiting for a writer thread, per writer: far more than a burst
/// at full load produces between two batches.
const PENDING_BYTES: usize = 8 * 1024 * 1024;

/// Whether spans go to an OTLP exporter (set once, by [`init`]).
static EXPORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether spans are exported: spans that only an exporter would show can
/// be left out when not.
pub(crate) fn exporting() -> bool {
    EXPORTING.load(std::sync::atomic::Ordering::Relaxed)
}

/// Flushes pending spans and log lines when dropped at shutdown.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
    _writers: [batch::BatchGuard; 2],
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("trace exporter shutdown failed: {error}");
        }
    }
}

/// Installs the global subscriber. Call once, from `main`.
pub fn init(config: &Config) -> Result<TelemetryGuard, Box<dyn std::error::Error>> {
    global::set_text_map_propagator(TraceContextPropagator::new());

    // The tracer is only used with an exporter; without one, `ids` keeps the
    // spans' W3C ids instead.
    let mut builder = SdkTracerProvider::builder().with_resource(
        opentelemetry_sdk::Resource::builder()
            .with_service_name(env!("CARGO_PKG_NAME"))
            .with_attribute(opentelemetry::KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION"),
            ))
            .build(),
    );
    if let Some(endpoint) = &config.otlp_endpoint {
        use opentelemetry_otlp::WithExportConfig as _;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()?;
        builder = builder.with_batch_exporter(exporter);
        EXPORTING.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let provider = builder.build();
    let tracer = provider.tracer(env!("CARGO_PKG_NAME"));
    global::set_tracer_provider(provider.clone());

    // Lines are formatted on the request path but written in batches by
    // their own threads, so a slow stdout never stalls a call. Ordinary log
    // lines may be dropped when that thread falls behind (counted in
    // `esign_log_lines_dropped_total`); audit lines never are: their writer
    // makes callers wait instead (counted in `esign_audit_lines_delayed_total`).
    let (log_writer, log_guard) =
        batch::BatchWriter::spawn("log-writer", std::io::stdout(), PENDING_BYTES, true)?;
    let (audit_writer, audit_guard) =
        batch::BatchWriter::spawn("audit-writer", std::io::stdout(), PENDING_BYTES, false)?;
    crate::metrics::count_log_writer_lag(log_writer.fell_behind(), audit_writer.fell_behind());

    // RUST_LOG picks the log lines; audit lines are written whatever it says.
    let audit = audit_lines();
    let rust_log = std::env::var("RUST_LOG").ok();
    // RUST_LOG picks the log lines only: the gateway's spans reach the
    // tracer whatever the log level, so quieter logs never cost the traces
    // (or the traceparent sent on to providers). Without an exporter only
    // the W3C ids are kept: OpenTelemetry's span records would be dropped.
    let spans = Targets::new().with_target(env!("CARGO_CRATE_NAME"), tracing::Level::INFO);
    let exporting = config.otlp_endpoint.is_some();
    let direct_audit = (config.log_format == LogFormat::Json && !exporting).then(|| {
        let audit_writer = audit_writer.clone();
        Box::new(move |line: &[u8]| audit_writer.write_line(line)) as Box<LineSink>
    });
    let (output, ids_only) = match config.log_format {
        LogFormat::Json => (
            vec![json_lines(
                log_writer,
                audit_writer,
                rust_log.as_deref(),
                !exporting,
            )?],
            None,
        ),
        LogFormat::Pretty => (
            vec![
                tracing_subscriber::fmt::layer()
                    .compact()
                    .with_writer(log_writer)
                    .with_filter(log_filter(rust_log.as_deref())?)
                    .boxed(),
                tracing_subscriber::fmt::layer()
                    .compact()
                    .with_writer(audit_writer)
                    .with_filter(audit)
                    .boxed(),
            ],
            (!exporting).then(|| ids_only_layer().with_filter(spans.clone())),
        ),
    };
    let exported = exporting.then(|| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(spans)
    });
    tracing_subscriber::registry()
        .with(ids_only)
        .with(exported)
        .with(output)
        .try_init()?;
    // Only where this subscriber was installed: audit lines go where its
    // own go, not to a writer of a subscriber that never took effect.
    if let Some(sink) = direct_audit {
        let _ = AUDIT_SINK.set(sink);
    }
    Ok(TelemetryGuard {
        provider,
        _writers: [log_guard, audit_guard],
    })
}

/// The filter `RUST_LOG` (`rust_log`) gives log lines (`info` when unset or empty),
/// audit lines left out (they have their own).
///
/// Plain `target=level` directives are read as [`Targets`], which decides
/// per callsite and keeps no per-span state; [`EnvFilter`] takes a lock on
/// every span enter, exit and record to support span and field directives
/// (`[span{field=value}]`), so it is used only when `RUST_LOG` has one.
fn log_filter<S>(
    rust_log: Option<&str>,
) -> Result<Box<dyn Filter<S> + Send + Sync>, Box<dyn std::error::Error>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let directives: String = rust_log
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let directives = if directives.is_empty() {
        "info".to_owned()
    } else {
        directives
    };
    if !directives.contains(['[', '{'])
        && let Ok(targets) = directives.parse::<Targets>()
    {
        return Ok(Box::new(targets.with_target(
            AUDIT_TARGET,
            tracing::level_filters::LevelFilter::OFF,
        )));
    }
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    Ok(Box::new(filter.add_directive("audit=off".parse()?)))
}

/// The one layer of JSON lines: log lines as RUST_LOG says, audit lines
/// whatever it says (to their own writer), and, with `w3c_ids` (no
/// exporter), the ids of the gateway's spans whatever it says. One filtered
/// layer rather than one per job: each filtered layer looks a span up again
/// on every enter, exit and record.
pub(crate) fn json_lines<S, W>(
    log_writer: W,
    audit_writer: W,
    rust_log: Option<&str>,
    w3c_ids: bool,
) -> Result<Box<dyn tracing_subscriber::Layer<S> + Send + Sync>, Box<dyn std::error::Error>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let audit = audit_lines();
    let lines = JsonLines::new(log_writer, SpanFields::Current).with_audit_writer(audit_writer);
    let filter = log_filter(rust_log)?.or(audit);
    Ok(if w3c_ids {
        lines
            .with_w3c_ids()
            .with_filter(filter.or(gateway_spans()))
            .boxed()
    } else {
        lines.with_filter(filter).boxed()
    })
}

/// Audit lines, which are written whatever RUST_LOG says.
fn audit_lines() -> Targets {
    Targets::new().with_target(AUDIT_TARGET, tracing::Level::INFO)
}

/// The gateway's own spans, which need W3C ids whatever RUST_LOG says.
/// Spans only: the crate's events stay with RUST_LOG.
fn gateway_spans<S>() -> impl Filter<S> {
    tracing_subscriber::filter::filter_fn(|metadata| {
        let target = metadata.target();
        metadata.is_span()
            && *metadata.level() <= tracing::Level::INFO
            && (target == env!("CARGO_CRATE_NAME")
                || target
                    .strip_prefix(env!("CARGO_CRATE_NAME"))
                    .is_some_and(|rest| rest.starts_with("::")))
    })
    .with_max_level_hint(tracing::level_filters::LevelFilter::INFO)
}

/// A layer that only gives spans their W3C ids and writes nothing: for
/// where no JSON line layer does it (pretty logs, tests).
pub(crate) fn ids_only_layer() -> JsonLines<fn() -> std::io::Sink> {
    JsonLines::new(std::io::sink as fn() -> std::io::Sink, SpanFields::Omit).with_w3c_ids()
}

/// For test binaries: everything at debug (the gateway at trace) as JSON
/// lines into `path`, so a check over the whole suite's logs can look for
/// secrets. Installs once; later calls do nothing.
pub fn init_for_tests(path: &std::path::Path) {
    static INSTALLED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(|| {
        global::set_text_map_propagator(TraceContextPropagator::new());
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let Ok(file) = std::fs::File::create(path) else {
            return;
        };
        // Audit lines are written straight to the file, as production
        // writes them straight to stdout (writes of one handle's clone share
        // its offset, so lines do not overwrite each other).
        let audit_file = file.try_clone().ok();
        // As in production without an exporter: W3C ids, no span records.
        let installed = tracing_subscriber::registry()
            .with(EnvFilter::new("debug,esign_gateway=trace"))
            .with(JsonLines::new(std::sync::Mutex::new(file), SpanFields::Scope).with_w3c_ids())
            .try_init();
        if let (Ok(()), Some(audit_file)) = (installed, audit_file) {
            let audit_file = std::sync::Mutex::new(audit_file);
            let _ = AUDIT_SINK.set(Box::new(move |line| {
                use std::io::Write as _;
                let mut file = audit_file.lock().unwrap_or_else(|e| e.into_inner());
                let _ = file.write_all(line);
            }));
        }
    });
}

/// Makes an inbound `traceparent` (with its `tracestate`) the parent of
/// `span`, a root span just opened. The headers are read by OpenTelemetry's
/// W3C propagator whichever layer keeps the span's ids.
pub(crate) fn set_parent(
    span: &tracing::Span,
    traceparent: Option<&str>,
    tracestate: Option<&str>,
) {
    let Some(traceparent) = traceparent else {
        return;
    };
    let inbound = InboundContext {
        traceparent,
        tracestate,
    };
    let parent = global::get_text_map_propagator(|propagator| propagator.extract(&inbound));
    let remote = parent.span().span_context().clone();
    if !remote.is_valid() {
        return;
    }
    let state = remote.trace_state().header();
    let adopted = ids::adopt(
        span,
        u128::from_be_bytes(remote.trace_id().to_bytes()),
        remote.trace_flags().to_u8(),
        (!state.is_empty()).then(|| state.into()),
    );
    if !adopted {
        let _ = span.set_parent(parent);
    }
}

/// The two W3C headers as OpenTelemetry's propagator reads them.
struct InboundContext<'a> {
    traceparent: &'a str,
    tracestate: Option<&'a str>,
}

impl opentelemetry::propagation::Extractor for InboundContext<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => Some(self.traceparent),
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        let mut keys = vec!["traceparent"];
        if self.tracestate.is_some() {
            keys.push("tracestate");
        }
        keys
    }
}

/// The W3C trace context a provider call sends on: `traceparent`, and the
/// caller's `tracestate` when it sent one.
#[derive(Clone, Debug)]
pub(crate) struct TraceHeaders {
    traceparent: http::HeaderValue,
    tracestate: Option<http::HeaderValue>,
}

impl TraceHeaders {
    fn from_ids(ids: &ids::TraceIds) -> TraceHeaders {
        TraceHeaders {
            traceparent: ids.traceparent(),
            tracestate: ids
                .state
                .as_deref()
                .and_then(|state| http::HeaderValue::from_str(state).ok()),
        }
    }

    /// The headers naming `span` as the parent, when it is in a trace.
    pub(crate) fn of(span: &tracing::Span) -> Option<TraceHeaders> {
        trace_and_headers_of(span).1
    }

    /// From an exporter's context of a span, when it is valid.
    fn from_context(context: &Context) -> Option<TraceHeaders> {
        let mut headers = HeaderMap::new();
        global::get_text_map_propagator(|propagator| {
            propagator.inject_context(context, &mut HeaderInjector(&mut headers))
        });
        Some(TraceHeaders {
            traceparent: headers.remove(TRACEPARENT)?,
            tracestate: headers.remove(TRACESTATE),
        })
    }

    pub(crate) fn insert_into(&self, headers: &mut HeaderMap) {
        headers.insert(TRACEPARENT, self.traceparent.clone());
        if let Some(state) = &self.tracestate {
            headers.insert(TRACESTATE, state.clone());
        }
    }
}

// Constants: a header name given as `&str` is parsed on every insert.
const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");
const TRACESTATE: http::HeaderName = http::HeaderName::from_static("tracestate");

/// A trace id, written as W3C spells it (32 lowercase hex digits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TraceId(u128);

impl TraceId {
    #[cfg(test)]
    pub(crate) fn from_u128(id: u128) -> TraceId {
        TraceId(id)
    }

    /// The 32 hex digits, written without formatting machinery (the audit
    /// line carries one per call).
    pub(crate) fn hex(self) -> TraceIdHex {
        let mut digits = [b'0'; 32];
        ids::write_hex(&mut digits, self.0);
        TraceIdHex(digits)
    }
}

/// A trace id's hex digits.
pub(crate) struct TraceIdHex([u8; 32]);

impl TraceIdHex {
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }
}

impl std::fmt::Display for TraceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.hex().as_str())
    }
}

/// The trace a span belongs to, and whether the caller (or this gateway's
/// sampler) records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Trace {
    pub(crate) id: TraceId,
    pub(crate) sampled: bool,
}

impl Trace {
    /// The trace id a latency sample may point at: only a sampled trace's,
    /// since a tracing backend shows no other.
    pub(crate) fn exemplar(self) -> Option<TraceId> {
        self.sampled.then_some(self.id)
    }
}

/// The trace `span` belongs to.
#[cfg(test)]
pub(crate) fn trace_of(span: &tracing::Span) -> Option<Trace> {
    trace_and_headers_of(span).0
}

/// The trace `span` belongs to, and the trace headers naming it as the
/// parent, from one lookup of the span: its W3C ids when they are kept here
/// (no exporter), else the exporter's context.
pub(crate) fn trace_and_headers_of(span: &tracing::Span) -> (Option<Trace>, Option<TraceHeaders>) {
    if let Some(ids) = ids::of(span) {
        let trace = Trace {
            id: TraceId(ids.trace_id),
            sampled: ids.flags & 1 == 1,
        };
        return (Some(trace), Some(TraceHeaders::from_ids(&ids)));
    }
    let context: Context = span.context();
    let span_ref = context.span();
    let span_context = span_ref.span_context();
    if !span_context.is_valid() {
        return (None, None);
    }
    let trace = Trace {
        id: TraceId(u128::from_be_bytes(span_context.trace_id().to_bytes())),
        sampled: span_context.is_sampled(),
    };
    (Some(trace), TraceHeaders::from_context(&context))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_trace_flags_and_state_reach_the_provider_call() {
        global::set_text_map_propagator(TraceContextPropagator::new());
        let subscriber = tracing_subscriber::registry().with(ids_only_layer());
        tracing::subscriber::with_default(subscriber, || {
            let rpc = tracing::info_span!("rpc");
            set_parent(
                &rpc,
                Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
                Some("vendor=x"),
            );
            let call = rpc.in_scope(|| tracing::info_span!("provider_call"));
            let mut headers = HeaderMap::new();
            TraceHeaders::of(&call)
                .expect("in a trace")
                .insert_into(&mut headers);
            let traceparent = headers["traceparent"].to_str().unwrap();
            assert!(
                traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
                    && traceparent.ends_with("-01"),
                "{traceparent}"
            );
            assert!(
                !traceparent.contains("00f067aa0ba902b7"),
                "a span of our own"
            );
            assert_eq!(headers["tracestate"], "vendor=x");
            assert_eq!(
                trace_of(&call),
                Some(Trace {
                    id: TraceId(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
                    sampled: true,
                })
            );

            // A malformed parent is ignored: a new trace, not sampled.
            let other = tracing::info_span!("rpc");
            set_parent(&other, Some("00-zz-00f067aa0ba902b7-01"), None);
            let trace = trace_of(&other).unwrap();
            assert_ne!(trace.id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
            assert!(!trace.sampled);
        });
    }
}
