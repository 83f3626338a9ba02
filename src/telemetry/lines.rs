//! JSON log lines, encoded here rather than by `tracing-subscriber`'s JSON
//! formatter: that formatter re-parses and re-serializes a span's fields on
//! every `Span::record`, which cost more per call than the rest of the
//! logging together. Here a span's fields are encoded once when it opens and
//! appended to when recorded, and each line is built in a reused per-thread
//! buffer, then handed whole to the writer.
//!
//! The line shape is the one operators' queries already use:
//! `{"timestamp","level","fields":{"message",..},"target","span":{"name",..}}`.

use std::{cell::RefCell, fmt, io::Write as _};

use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
    span,
};
use tracing_subscriber::{Layer, fmt::MakeWriter, layer::Context, registry::LookupSpan};

/// Which spans a line carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SpanFields {
    /// None (audit lines say everything themselves).
    Omit,
    /// The innermost span, as `"span"`.
    Current,
    /// The innermost as `"span"` and the whole scope, root first, as
    /// `"spans"` (test logs, so the secret check sees every field).
    Scope,
}

/// A layer that writes one JSON line per event.
pub(crate) struct JsonLines<W> {
    writer: W,
    spans: SpanFields,
    /// Where audit lines go, without spans, when not to `writer`. One layer
    /// for both keeps the per-span bookkeeping of a second filtered layer
    /// off every span enter, exit and record.
    audit_writer: Option<W>,
    /// Whether spans get their W3C ids here (no exporter installed).
    w3c_ids: bool,
}

/// The target of audit events (`audit.rs`, the webhook intake).
pub(crate) const AUDIT_TARGET: &str = "audit";

impl<W> JsonLines<W> {
    pub(crate) fn new(writer: W, spans: SpanFields) -> Self {
        JsonLines {
            writer,
            spans,
            audit_writer: None,
            w3c_ids: false,
        }
    }

    /// Spans get their W3C ids (`ids::assign`) when they open: for when no
    /// exporter's layer keeps them. The layer's filter must then also let
    /// through the spans that need ids (see `telemetry::init`).
    pub(crate) fn with_w3c_ids(mut self) -> Self {
        self.w3c_ids = true;
        self
    }

    /// Audit events go to `audit_writer`, and carry no spans.
    pub(crate) fn with_audit_writer(mut self, audit_writer: W) -> Self {
        self.audit_writer = Some(audit_writer);
        self
    }
}

/// A span's fields as JSON object members, `"name":"rpc","provider":".."`,
/// always starting with the name so every later member begins with a comma.
struct EncodedSpan {
    members: String,
    /// Which of the span's fields have a value, by field index, so that
    /// recording a declared-empty field appends without searching.
    present: u64,
}

/// Lines longer than this give their buffer back after writing.
const KEPT_BUFFER_BYTES: usize = 16 * 1024;

thread_local! {
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(1024));
}

impl<S, W> Layer<S> for JsonLines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if self.spans == SpanFields::Omit && !self.w3c_ids {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if self.w3c_ids {
            super::ids::assign(&span, &mut extensions);
        }
        if self.spans == SpanFields::Omit || extensions.get_mut::<EncodedSpan>().is_some() {
            return;
        }
        let mut members = String::with_capacity(256);
        members.push_str("\"name\":");
        push_json_str(&mut members, attrs.metadata().name());
        let mut visitor = Members {
            out: &mut members,
            first: false,
            present: Some(0),
        };
        attrs.record(&mut visitor);
        let present = visitor.present.unwrap_or(u64::MAX);
        extensions.insert(EncodedSpan { members, present });
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(EncodedSpan { members, present }) = extensions.get_mut::<EncodedSpan>() {
            let mut visitor = Members {
                out: members,
                first: false,
                present: Some(*present),
            };
            values.record(&mut visitor);
            *present = visitor.present.unwrap_or(u64::MAX);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let (writer, spans) = match &self.audit_writer {
            Some(audit) if event.metadata().target() == AUDIT_TARGET => (audit, SpanFields::Omit),
            _ => (&self.writer, self.spans),
        };
        with_line_buffer(|line| {
            encode(event, &ctx, spans, line);
            let _ = writer
                .make_writer_for(event.metadata())
                .write_all(line.as_bytes());
        });
    }
}

/// Runs `f` on this thread's line buffer, emptied.
fn with_line_buffer(f: impl FnOnce(&mut String)) {
    LINE.with(|cell| {
        // A value's Debug impl that itself logs finds the buffer busy.
        let mut spare = String::new();
        let mut borrowed = cell.try_borrow_mut();
        let line = match &mut borrowed {
            Ok(line) => {
                line.clear();
                &mut **line
            }
            Err(_) => &mut spare,
        };
        f(line);
        if line.capacity() > KEPT_BUFFER_BYTES {
            line.clear();
            line.shrink_to(1024);
        }
    });
}

/// Writes one INFO line for `target`, of the shape this layer gives an
/// event without spans, its fields added by `fields`, and hands it whole
/// to `sink`. For lines that need neither a span nor a filter (the audit
/// trail): tracing's dispatch, per-layer filtering and field visitors cost
/// more than encoding the line itself.
pub(crate) fn write_info_line(
    target: &str,
    message: &str,
    fields: impl FnOnce(&mut DirectFields<'_>),
    sink: &dyn Fn(&[u8]),
) {
    with_line_buffer(|line| {
        open_fields(line, tracing::Level::INFO);
        line.push_str("\"message\":");
        push_json_str(line, message);
        fields(&mut DirectFields(line));
        close_fields(line, target);
        line.push_str("}\n");
        sink(line.as_bytes());
    });
}

/// A line up to its fields: `{"timestamp":"..","level":"..","fields":{`.
fn open_fields(line: &mut String, level: tracing::Level) {
    line.push_str("{\"timestamp\":\"");
    push_timestamp(line);
    line.push_str("\",\"level\":\"");
    line.push_str(level.as_str());
    line.push_str("\",\"fields\":{");
}

/// The end of the fields and the target: `},"target":".."`.
fn close_fields(line: &mut String, target: &str) {
    line.push_str("},\"target\":");
    push_json_str(line, target);
}

/// The fields of a line built by [`write_info_line`].
pub(crate) struct DirectFields<'a>(&'a mut String);

impl DirectFields<'_> {
    /// Keys are the caller's identifiers, which need no escaping.
    fn key(&mut self, key: &str) {
        debug_assert_eq!(first_to_escape(key.as_bytes()), key.len());
        self.0.push_str(",\"");
        self.0.push_str(key);
        self.0.push_str("\":");
    }

    pub(crate) fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        push_json_str(self.0, value);
    }

    /// A string value written in pieces by `write`, escaped as it goes.
    pub(crate) fn written(&mut self, key: &str, write: impl FnOnce(&mut dyn fmt::Write)) {
        self.key(key);
        self.0.push('"');
        write(&mut Escaping(self.0));
        self.0.push('"');
    }
}

fn encode<S>(event: &Event<'_>, ctx: &Context<'_, S>, spans: SpanFields, line: &mut String)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let metadata = event.metadata();
    open_fields(line, *metadata.level());
    event.record(&mut Members {
        out: line,
        first: true,
        present: None,
    });
    close_fields(line, metadata.target());
    if spans != SpanFields::Omit
        && let Some(current) = ctx.event_span(event)
    {
        if let Some(span) = current.extensions().get::<EncodedSpan>() {
            line.push_str(",\"span\":{");
            line.push_str(&span.members);
            line.push('}');
        }
        if spans == SpanFields::Scope {
            line.push_str(",\"spans\":[");
            for (i, span) in current.scope().from_root().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                line.push('{');
                if let Some(span) = span.extensions().get::<EncodedSpan>() {
                    line.push_str(&span.members);
                }
                line.push('}');
            }
            line.push(']');
        }
    }
    line.push_str("}\n");
}

thread_local! {
    /// The second last written by this thread and its text up to the dot,
    /// `2026-12-02T14:39:06`: under load most lines share it with the
    /// line before.
    static SECOND: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
}

/// `2026-12-02T14:39:06.123456Z`: wall-clock time, which log lines must
/// carry even while tests move the gateway's own clock.
fn push_timestamp(out: &mut String) {
    #[allow(clippy::disallowed_methods)]
    push_timestamp_of(out, chrono::Utc::now());
}

fn push_timestamp_of(out: &mut String, now: chrono::DateTime<chrono::Utc>) {
    use chrono::{Datelike as _, Timelike as _};
    use std::fmt::Write as _;
    SECOND.with(|second| {
        let mut second = second.borrow_mut();
        let (at, text) = &mut *second;
        if *at != now.timestamp() {
            *at = now.timestamp();
            text.clear();
            let _ = write!(
                text,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                now.year(),
                now.month(),
                now.day(),
                now.hour(),
                now.minute(),
                now.second(),
            );
        }
        out.push_str(text);
    });
    // A leap second's extra nanoseconds are folded back into the second.
    let micros = now.nanosecond() % 1_000_000_000 / 1_000;
    let mut digits = *b".000000Z";
    for (i, digit) in digits[1..7].iter_mut().rev().enumerate() {
        *digit = b'0' + (micros / 10_u32.pow(i as u32) % 10) as u8;
    }
    out.push_str(std::str::from_utf8(&digits).expect("ASCII digits"));
}

/// Writes fields as JSON object members.
struct Members<'a> {
    out: &'a mut String,
    first: bool,
    /// For span fields: which already have a value (all bits set once a
    /// field index is past 63), so a field set again replaces its value.
    present: Option<u64>,
}

impl Members<'_> {
    /// Writes the member's key; false for fields that only name the
    /// OpenTelemetry span (`otel.name`, `otel.kind`), which a log line
    /// does not need.
    fn key(&mut self, field: &Field) -> bool {
        if field.name().starts_with("otel.") {
            return false;
        }
        if let Some(present) = &mut self.present {
            let bit = 1_u64.checked_shl(field.index() as u32).unwrap_or(0);
            if bit == 0 || *present & bit != 0 {
                remove_member(self.out, field.name());
            }
            *present |= if bit == 0 { u64::MAX } else { bit };
        }
        if !std::mem::take(&mut self.first) {
            self.out.push(',');
        }
        push_json_str(self.out, field.name());
        self.out.push(':');
        true
    }
}

impl Visit for Members<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.key(field) {
            return;
        }
        push_json_str(self.out, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if !self.key(field) {
            return;
        }
        self.out.push_str(itoa::Buffer::new().format(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if !self.key(field) {
            return;
        }
        self.out.push_str(itoa::Buffer::new().format(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if !self.key(field) {
            return;
        }
        self.out.push_str(if value { "true" } else { "false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if !self.key(field) {
            return;
        }
        if value.is_finite() {
            self.out.push_str(ryu::Buffer::new().format_finite(value));
        } else {
            self.out.push_str("null");
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if !self.key(field) {
            return;
        }
        push_json_display(self.out, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.key(field) {
            return;
        }
        self.out.push('"');
        let _ = fmt::write(&mut Escaping(self.out), format_args!("{value:?}"));
        self.out.push('"');
    }
}

/// Removes `,"name":value` from encoded members. Values are scalars, and
/// inside a JSON string a quote is always escaped, so `,"` only ever starts
/// a member.
fn remove_member(out: &mut String, name: &str) {
    let mut from = 0;
    while let Some(at) = out[from..].find(",\"").map(|i| i + from) {
        let key_start = at + 2;
        let rest = &out[key_start..];
        if rest.starts_with(name) && rest[name.len()..].starts_with("\":") {
            let value_start = key_start + name.len() + 2;
            let end = out[value_start..]
                .find(",\"")
                .map_or(out.len(), |i| i + value_start);
            out.replace_range(at..end, "");
            return;
        }
        from = key_start;
    }
}

fn push_json_display(out: &mut String, value: &dyn fmt::Display) {
    out.push('"');
    let _ = fmt::write(&mut Escaping(out), format_args!("{value}"));
    out.push('"');
}

/// Appends `value` as a JSON string.
pub(crate) fn push_json_str(out: &mut String, value: &str) {
    out.push('"');
    escape_into(out, value);
    out.push('"');
}

/// Escapes quotes, backslashes and control characters; everything else is
/// copied in runs. Most values need no escaping, so the first byte that does
/// is looked for eight bytes at a time before going byte by byte.
fn escape_into(out: &mut String, value: &str) {
    let bytes = value.as_bytes();
    let clean = first_to_escape(bytes);
    if clean == bytes.len() {
        // The usual case: one copy.
        out.push_str(value);
        return;
    }
    out.push_str(&value[..clean]);
    let mut start = clean;
    for (i, &byte) in bytes.iter().enumerate().skip(clean) {
        let escaped = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&value[start..i]);
        if escaped.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0xf)] as char);
        } else {
            out.push_str(escaped);
        }
        start = i + 1;
    }
    out.push_str(&value[start..]);
}

/// The index of the first byte of `bytes` that JSON needs escaped (a
/// quote, a backslash or a control character), or its length. Whole words
/// are tested at once: `(x - n) & !x & 0x80..` has a high bit set in some
/// byte exactly when some byte of `x` is below `n` (for `n` up to 0x80), and
/// a byte equal to `c` is a zero byte of `x ^ c`.
fn first_to_escape(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    let mut words = bytes.chunks_exact(8);
    let mut offset = 0;
    for word in &mut words {
        let x = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let flagged = below(x, 0x20)
            | below(x ^ (ONES * u64::from(b'"')), 1)
            | below(x ^ (ONES * u64::from(b'\\')), 1);
        if flagged != 0 {
            break;
        }
        offset += 8;
    }
    offset
        + bytes[offset..]
            .iter()
            .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
            .unwrap_or(bytes.len() - offset)
}

/// Formats straight into the line, escaped, with no intermediate string.
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt as _;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn lines(captured: &Captured) -> Vec<serde_json::Value> {
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str(line).expect("each line is JSON"))
            .collect()
    }

    #[test]
    fn lines_carry_fields_and_span_with_recorded_values_replaced() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry()
            .with(JsonLines::new(captured.clone(), SpanFields::Scope));
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!("rpc", provider = tracing::field::Empty);
            let inner = outer.in_scope(|| {
                tracing::info_span!("provider_call", attempt = 1_i64, url = "a\"b\\c\n")
            });
            outer.record("provider", "leegality");
            inner.record("attempt", 2_i64);
            inner.in_scope(|| {
                tracing::warn!(status = 503_u64, ok = false, ratio = 0.5, why = ?"x\u{1}y", "retrying \"now\"")
            });
        });
        let lines = lines(&captured);
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["fields"]["message"], "retrying \"now\"");
        assert_eq!(line["fields"]["status"], 503);
        assert_eq!(line["fields"]["ok"], false);
        assert_eq!(line["fields"]["ratio"], 0.5);
        assert_eq!(line["fields"]["why"], "\"x\\u{1}y\"");
        assert_eq!(line["span"]["name"], "provider_call");
        assert_eq!(line["span"]["attempt"], 2, "the recorded value replaces");
        assert_eq!(line["span"]["url"], "a\"b\\c\n");
        assert_eq!(line["spans"][0]["name"], "rpc");
        assert_eq!(line["spans"][0]["provider"], "leegality");
        assert_eq!(line["spans"][1]["name"], "provider_call");
        let timestamp = line["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
            "{timestamp}"
        );
    }

    #[test]
    fn an_audit_line_written_directly_is_the_line_its_tracing_event_gives() {
        let subjects = crate::audit::Subjects {
            document_id: "doc \"1\"".into(),
            invitation_ids: vec![
                "https://sandbox.leegality.com/sign/2bdcc3ef-661f-440c-b059-82c0ff6ce4d8".into(),
                "x".into(),
            ],
            recipients: vec!["a\"b@example.com".into(), "+919876543210".into()],
        };
        let line = crate::audit::AuditLine {
            caller: "billing",
            rpc: "ResendInvitation",
            provider: Some(crate::domain::ProviderKind::Leegality),
            account: "",
            request_id: "r-1",
            subjects: &subjects,
            code: "FAILED_PRECONDITION",
            reason: "RESEND_LIMIT_REACHED",
            trace_id: Some(crate::telemetry::TraceId::from_u128(7)),
        };
        let direct = Captured::default();
        let into = direct.clone();
        let sink = move |bytes: &[u8]| into.0.lock().unwrap().extend_from_slice(bytes);
        crate::audit::record_to(&line, Some(&sink));
        let (log, audit) = (Captured::default(), Captured::default());
        let layer = crate::telemetry::json_lines(log.clone(), audit.clone(), None, true).unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || crate::audit::record_to(&line, None));

        let (direct, traced) = (lines(&direct), lines(&audit));
        assert_eq!((direct.len(), traced.len()), (1, 1));
        assert_eq!(direct[0]["fields"], traced[0]["fields"]);
        for key in ["level", "target"] {
            assert_eq!(direct[0][key], traced[0][key]);
        }
        assert_eq!(direct[0]["fields"]["document_id"], "doc \"1\"");
        assert_eq!(direct[0]["fields"]["account"], "default");
        assert_eq!(direct[0]["fields"]["invitation_ids"], "2bdcc3ef…,x…");
        assert_eq!(
            direct[0]["fields"]["recipients"],
            "a***@example.com,+91********10"
        );
        assert_eq!(
            direct[0]["fields"]["trace_id"],
            format!("{:032x}", 7).as_str()
        );
        let timestamp = direct[0]["timestamp"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(timestamp).is_ok());
        assert!(lines(&log).is_empty());
    }

    /// The log and audit lines the production layer writes (`telemetry::json_lines`,
    /// without an exporter) for one rpc span and its events.
    fn log_and_audit(rust_log: Option<&str>) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
        let (log, audit) = (Captured::default(), Captured::default());
        let layer =
            crate::telemetry::json_lines(log.clone(), audit.clone(), rust_log, true).unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let rpc = tracing::info_span!("rpc", provider = "leegality");
            // The gateway's spans get their ids whatever RUST_LOG says.
            assert!(
                crate::telemetry::trace_of(&rpc).is_some(),
                "{rust_log:?}: the rpc span has its W3C ids"
            );
            rpc.in_scope(|| {
                tracing::info!(target: AUDIT_TARGET, rpc = "ResendInvitation", "audit");
                tracing::debug!("debug in rpc");
                tracing::info!("info in rpc");
                tracing::warn!("warn in rpc");
            });
            tracing::debug!("debug outside");
        });
        (lines(&log), lines(&audit))
    }

    fn messages(lines: &[serde_json::Value]) -> Vec<&str> {
        lines
            .iter()
            .map(|line| line["fields"]["message"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn one_layer_writes_log_lines_as_rust_log_says_and_audit_lines_whatever_it_says() {
        // Plain directives (read by `Targets`).
        let (log, audit) = log_and_audit(Some("warn"));
        assert_eq!(messages(&log), ["warn in rpc"]);
        // The span is on for its ids, so a warning inside says where it was.
        assert_eq!(log[0]["span"]["provider"], "leegality");
        assert_eq!(messages(&audit), ["audit"]);
        assert_eq!(audit[0]["fields"]["rpc"], "ResendInvitation");
        assert!(audit[0].get("span").is_none(), "audit lines carry no span");

        // Unset or empty: info. An audit directive does not move audit
        // lines into the log.
        for rust_log in [None, Some(""), Some("info,audit=info")] {
            let (log, audit) = log_and_audit(rust_log);
            assert_eq!(
                messages(&log),
                ["info in rpc", "warn in rpc"],
                "{rust_log:?}"
            );
            assert_eq!(messages(&audit), ["audit"], "{rust_log:?}");
        }

        // Off: still the audit line.
        let (log, audit) = log_and_audit(Some("off"));
        assert!(log.is_empty());
        assert_eq!(messages(&audit), ["audit"]);

        // A span directive (read by `EnvFilter`): debug inside `rpc` only.
        let (log, audit) = log_and_audit(Some("warn,[rpc]=debug"));
        assert_eq!(
            messages(&log),
            ["debug in rpc", "info in rpc", "warn in rpc"]
        );
        assert_eq!(messages(&audit), ["audit"]);
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut out = String::new();
        push_json_str(&mut out, "a\u{1}\u{1f}\t\"é");
        assert_eq!(out, "\"a\\u0001\\u001f\\t\\\"é\"");
        assert_eq!(
            serde_json::from_str::<String>(&out).unwrap(),
            "a\u{1}\u{1f}\t\"é"
        );
    }

    proptest::proptest! {
        /// The word-at-a-time scan finds the same first byte as a plain one,
        /// wherever in a word it sits and whatever surrounds it (bytes at
        /// and above 0x80 included), and every line reads back as the input.
        #[test]
        fn escaping_round_trips(value in "[ -~\\u{0}-\\u{1f}é€\\u{7f}\\u{80}-\\u{ff}]{0,40}") {
            let plain = value
                .bytes()
                .position(|b| b < 0x20 || b == b'"' || b == b'\\')
                .unwrap_or(value.len());
            proptest::prop_assert_eq!(first_to_escape(value.as_bytes()), plain);
            let mut out = String::new();
            push_json_str(&mut out, &value);
            proptest::prop_assert_eq!(serde_json::from_str::<String>(&out).unwrap(), value);
        }
    }

    #[test]
    fn timestamps_are_utc_to_the_microsecond_whether_or_not_the_second_is_new() {
        use chrono::TimeZone as _;
        let second = chrono::Utc
            .with_ymd_and_hms(2026, 12, 2, 14, 39, 6)
            .unwrap();
        let at = |micros: i64| second + chrono::Duration::microseconds(micros);
        let cases = [
            (at(123_456), "2026-12-02T14:39:06.123456Z"),
            // Same second: the kept text, new digits.
            (at(7), "2026-12-02T14:39:06.000007Z"),
            // The next second, then the next day and year.
            (at(1_000_000), "2026-12-02T14:39:07.000000Z"),
            (
                chrono::Utc
                    .with_ymd_and_hms(2026, 12, 31, 23, 59, 59)
                    .unwrap()
                    + chrono::Duration::microseconds(999_999),
                "2026-12-31T23:59:59.999999Z",
            ),
            (
                chrono::Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap(),
                "2027-01-01T00:00:00.000000Z",
            ),
            // Back to an earlier second (another thread's clock read).
            (at(500_000), "2026-12-02T14:39:06.500000Z"),
        ];
        for (now, expected) in cases {
            let mut out = String::from("x");
            push_timestamp_of(&mut out, now);
            assert_eq!(out, format!("x{expected}"));
        }
    }

    #[test]
    fn removing_a_member_keeps_the_others() {
        let mut out = String::from("\"name\":\"s\",\"a\":1,\"ab\":\",\\\"a\\\":\",\"b\":true");
        remove_member(&mut out, "a");
        assert_eq!(out, "\"name\":\"s\",\"ab\":\",\\\"a\\\":\",\"b\":true");
        remove_member(&mut out, "b");
        assert_eq!(out, "\"name\":\"s\",\"ab\":\",\\\"a\\\":\"");
    }
}
