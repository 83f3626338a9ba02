//! Traces end to end with a real OTLP/gRPC receiver: the gateway runs as its
//! own process exporting to a trace collector this test serves, and one
//! trace spans the caller, the gateway and the provider.

use std::{
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
};

use esign_gateway::{ProviderKind, pb, simulator::Simulator};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, KeyValue, any_value},
    trace::v1::{Span, span::SpanKind},
};
use tonic::transport::Channel;

use crate::common;

/// Every span the gateway exported, with its resource's service name.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .as_ref()
                .and_then(|r| text(&r.attributes, "service.name"))
                .unwrap_or_default();
            for scope in resource.scope_spans {
                spans.extend(scope.spans.into_iter().map(|span| (service.clone(), span)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|value: &AnyValue| value.value.as_ref())
}

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attribute(attributes, key)? {
        any_value::Value::StringValue(value) => Some(value.clone()),
        _ => None,
    }
}

fn number(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match attribute(attributes, key)? {
        any_value::Value::IntValue(value) => Some(*value),
        _ => None,
    }
}

type Client = pb::invitation_service_client::InvitationServiceClient<Channel>;

/// The gateway binary as its own process, serving the simulator's Bynn
/// account with `env` added, stdout piped; and a client once it serves.
async fn bynn_gateway(sim: &Simulator, env: &[(&str, String)]) -> (Child, Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    #[allow(clippy::zombie_processes)] // the caller stops it and waits for it
    let gateway = Command::new(env!("CARGO_BIN_EXE_esign-gateway"))
        .arg("serve")
        .env_clear()
        .env("GATEWAY_LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("GATEWAY_METRICS_ADDR", "off")
        .env("GATEWAY_WEBHOOK_ADDR", "off")
        .env("GATEWAY_DRAIN_SECONDS", "0")
        .env("GATEWAY_SHUTDOWN_GRACE_SECONDS", "1")
        .env("BYNN_BASE_URL", sim.base_url(ProviderKind::Bynn))
        .env("BYNN_API_KEY", &sim.config().credentials.bynn_api_key)
        .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let endpoint = Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap();
    common::wait_until("the gateway to serve", || {
        let endpoint = endpoint.clone();
        async move { endpoint.connect().await.is_ok() }
    })
    .await;
    let client = Client::new(endpoint.connect().await.unwrap());
    (gateway, client)
}

/// SIGTERM: the gateway drains, flushes its spans and log lines, and exits.
fn terminate(gateway: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &gateway.id().to_string()])
        .status();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn one_trace_spans_caller_gateway_and_provider_with_the_otel_conventions() {
    // The collector, on a port of its own.
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let sim = Simulator::start_local().await.unwrap();
    let now = sim.clock().now();
    let token = sim
        .bynn()
        .seed("lena.jansen@example.com", "sent", 1, Some(now), now);
    let (mut gateway, mut client) = bynn_gateway(
        &sim,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}")),
            // Export within 100 ms instead of the batch processor's 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
            ("RUST_LOG", "warn".into()),
        ],
    )
    .await;

    // The caller's own trace: its span is the parent of the gateway's.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let mut request = tonic::Request::new(pb::GetInvitationRequest {
        provider: pb::Provider::Bynn as i32,
        invitation_id: token.clone(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{caller_trace}-{caller_span}-01")
            .parse()
            .unwrap(),
    );
    client.get_invitation(request).await.expect("GetInvitation");

    let spans = || collector.spans.lock().unwrap().clone();
    common::wait_until("the gateway's spans to reach the collector", || {
        let found = spans()
            .iter()
            .any(|(_, span)| span.kind == SpanKind::Client as i32)
            && spans()
                .iter()
                .any(|(_, span)| span.kind == SpanKind::Server as i32);
        async move { found }
    })
    .await;
    drop(client);
    terminate(&gateway);
    let _ = gateway.wait();

    let spans = spans();
    let (service, server) = spans
        .iter()
        .find(|(_, span)| span.kind == SpanKind::Server as i32)
        .cloned()
        .unwrap();
    assert_eq!(service, "esign-gateway");
    assert_eq!(server.name, "esign.v1.InvitationService/GetInvitation");
    assert_eq!(
        hex(&server.trace_id),
        caller_trace,
        "under the caller's trace"
    );
    assert_eq!(
        hex(&server.parent_span_id),
        caller_span,
        "a child of the caller's span"
    );
    assert_eq!(
        text(&server.attributes, "rpc.system").as_deref(),
        Some("grpc")
    );
    assert_eq!(
        text(&server.attributes, "rpc.service").as_deref(),
        Some("esign.v1.InvitationService")
    );
    assert_eq!(
        text(&server.attributes, "rpc.method").as_deref(),
        Some("GetInvitation")
    );
    assert_eq!(number(&server.attributes, "rpc.grpc.status_code"), Some(0));

    let (_, client_span) = spans
        .iter()
        .find(|(_, span)| span.kind == SpanKind::Client as i32)
        .cloned()
        .unwrap();
    assert_eq!(client_span.name, "GET /autodoc/invitations/{token}");
    assert_eq!(hex(&client_span.trace_id), caller_trace);
    assert_eq!(
        client_span.parent_span_id, server.span_id,
        "the provider call is a child of the RPC"
    );
    assert_eq!(
        text(&client_span.attributes, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        number(&client_span.attributes, "http.response.status_code"),
        Some(200),
        "{:?}",
        client_span.attributes
    );
    assert_eq!(
        text(&client_span.attributes, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert!(number(&client_span.attributes, "server.port").is_some_and(|p| p > 0));

    // What the provider received names the gateway's client span as parent.
    let sent = sim.requests_for(ProviderKind::Bynn);
    let traceparent = sent
        .iter()
        .find(|r| r.path.ends_with(&token))
        .and_then(|r| r.header("traceparent"))
        .expect("the provider call carries traceparent")
        .to_owned();
    assert_eq!(
        traceparent,
        format!("00-{caller_trace}-{}-01", hex(&client_span.span_id))
    );
}

/// Runs `calls` against a gateway process with `rust_log`, stops it, and
/// returns every line it wrote to stdout.
async fn gateway_lines(rust_log: &str, calls: usize) -> Vec<serde_json::Value> {
    let sim = Simulator::start_local().await.unwrap();
    let now = sim.clock().now();
    // Sent ten minutes ago: past Bynn's resend cooldown.
    let sent = now - chrono::Duration::minutes(10);
    let tokens: Vec<String> = (0..calls)
        .map(|_| {
            sim.bynn()
                .seed("lena.jansen@example.com", "sent", 1, Some(sent), sent)
        })
        .collect();
    let (gateway, mut client) = bynn_gateway(
        &sim,
        &[
            ("GATEWAY_LOG_FORMAT", "json".into()),
            ("RUST_LOG", rust_log.into()),
        ],
    )
    .await;
    for token in &tokens {
        client
            .resend_invitation(pb::ResendInvitationRequest {
                provider: pb::Provider::Bynn as i32,
                invitation_id: token.clone(),
                ..Default::default()
            })
            .await
            .expect("resend");
    }
    drop(client);
    terminate(&gateway);
    let output = gateway.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

#[tokio::test]
async fn each_call_writes_one_audit_line_whatever_rust_log_says_and_no_second_line() {
    let quiet = gateway_lines("warn", 3).await;
    let audit: Vec<_> = quiet.iter().filter(|l| l["target"] == "audit").collect();
    assert_eq!(audit.len(), 3, "every mutating call is audited at warn too");
    assert!(
        audit
            .iter()
            .all(|l| l["fields"]["rpc"] == "ResendInvitation")
    );
    assert!(
        quiet
            .iter()
            .all(|l| l["level"] != "INFO" || l["target"] == "audit"),
        "warn keeps other info lines out"
    );

    let info = gateway_lines("info", 3).await;
    let per_call: Vec<_> = info
        .iter()
        .filter(|l| {
            l["target"] == "audit"
                || l["fields"]["message"] == "rpc finished"
                || l["fields"]["message"] == "rpc failed"
        })
        .collect();
    assert_eq!(per_call.len(), 3, "one line per call at info: {per_call:?}");
}
