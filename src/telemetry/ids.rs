//! W3C trace context when no trace exporter is configured. Spans still get
//! trace and span ids (for log and audit lines, metric exemplars, and the
//! `traceparent` sent on to providers), but nothing else of OpenTelemetry's
//! span bookkeeping is paid for: with no exporter it would be thrown away.

use std::sync::Arc;

use rand::Rng as _;
use tracing::Subscriber;
use tracing_subscriber::registry::{ExtensionsMut, LookupSpan, SpanRef};

/// A span's place in a W3C trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TraceIds {
    pub(crate) trace_id: u128,
    pub(crate) span_id: u64,
    /// `trace-flags`: the caller's, or 0 (not sampled) for a trace begun
    /// here, since nothing here records it.
    pub(crate) flags: u8,
    /// The caller's `tracestate`, carried on unchanged.
    pub(crate) state: Option<Arc<str>>,
}

impl TraceIds {
    /// `00-{trace id}-{span id}-{flags}`, written without formatting
    /// machinery (it is built for every provider call).
    pub(crate) fn traceparent(&self) -> http::HeaderValue {
        let mut text = *b"00-00000000000000000000000000000000-0000000000000000-00";
        write_hex(&mut text[3..35], self.trace_id);
        write_hex(&mut text[36..52], u128::from(self.span_id));
        write_hex(&mut text[53..55], u128::from(self.flags));
        http::HeaderValue::from_bytes(&text).expect("hex digits and dashes are a valid header")
    }
}

/// The low digits of `value` in lowercase hex, filling `out`.
pub(crate) fn write_hex(out: &mut [u8], value: u128) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in out.iter_mut().rev().enumerate() {
        *byte = HEX[((value >> (4 * i)) & 0xf) as usize];
    }
}

fn nonzero_random<T: Default + PartialEq>(mut draw: impl FnMut() -> T) -> T {
    loop {
        let id = draw();
        if id != T::default() {
            return id;
        }
    }
}

/// Gives a span just opened its ids: a child shares its parent's trace,
/// a root span begins a new one (until [`adopt`] names the caller's).
/// Called by the log layer (`JsonLines::with_w3c_ids`) rather than by a
/// layer of its own: a second filtered layer would look the span up again
/// on every enter, exit and record, for nothing.
pub(crate) fn assign<S>(span: &SpanRef<'_, S>, extensions: &mut ExtensionsMut<'_>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let mut rng = rand::rng();
    let span_id = nonzero_random(|| rng.random::<u64>());
    let inherited = span
        .parent()
        .and_then(|parent| parent.extensions().get::<TraceIds>().cloned());
    let ids = match inherited {
        Some(parent) => TraceIds { span_id, ..parent },
        None => TraceIds {
            trace_id: nonzero_random(|| rng.random::<u128>()),
            span_id,
            flags: 0,
            state: None,
        },
    };
    extensions.insert(ids);
}

/// Runs `f` on the ids of `span`, when spans are given ids here (no exporter).
fn with_ids<R>(span: &tracing::Span, f: impl FnOnce(&mut TraceIds) -> R) -> Option<R> {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let data = registry.span(id)?;
        let mut extensions = data.extensions_mut();
        extensions.get_mut::<TraceIds>().map(f)
    })
    .flatten()
}

/// The ids of `span`; `None` when an exporter's layer keeps them instead.
pub(crate) fn of(span: &tracing::Span) -> Option<TraceIds> {
    with_ids(span, |ids| ids.clone())
}

/// Makes `span` (a root span just opened) part of the caller's trace.
/// Returns false when an exporter's layer keeps the ids instead.
pub(crate) fn adopt(
    span: &tracing::Span,
    trace_id: u128,
    flags: u8,
    state: Option<Arc<str>>,
) -> bool {
    with_ids(span, |ids| {
        ids.trace_id = trace_id;
        ids.flags = flags;
        ids.state = state;
    })
    .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[test]
    fn children_share_the_adopted_trace_with_ids_of_their_own() {
        let subscriber = tracing_subscriber::registry().with(crate::telemetry::ids_only_layer());
        tracing::subscriber::with_default(subscriber, || {
            let root = tracing::info_span!("rpc");
            let before = of(&root).expect("ids");
            assert_eq!(before.flags, 0);
            assert!(adopt(&root, 7, 1, None));
            let child = root.in_scope(|| tracing::info_span!("provider_call"));
            let root_ids = of(&root).unwrap();
            let child_ids = of(&child).unwrap();
            assert_eq!(root_ids.span_id, before.span_id);
            assert_eq!(child_ids.trace_id, 7);
            assert_eq!(child_ids.flags, 1);
            assert_ne!(child_ids.span_id, root_ids.span_id);
            assert_eq!(
                child_ids.traceparent(),
                format!("00-{:032x}-{:016x}-01", 7, child_ids.span_id).as_str()
            );
            let all_digits = TraceIds {
                trace_id: 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
                span_id: 0x00f0_67aa_0ba9_02b7,
                flags: 1,
                state: None,
            };
            assert_eq!(
                all_digits.traceparent(),
                "00-0123456789abcdeffedcba9876543210-00f067aa0ba902b7-01"
            );
            let other = tracing::info_span!("rpc");
            assert_ne!(of(&other).unwrap().trace_id, 7, "a new root, a new trace");
        });
    }
}
