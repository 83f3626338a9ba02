//! The server as a whole: health, reflection, shutdown, configuration
//! errors, error details on the wire, ListProviders, trace propagation.

use crate::common;

use std::time::Duration;

use esign_gateway::{
    ERROR_DOMAIN, ProviderKind, config::DEFAULT_ACCOUNT, pb, server::SERVICE_NAME,
};
use tokio_stream::StreamExt as _;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

async fn health_status(channel: tonic::transport::Channel, service: &str) -> ServingStatus {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health check answers");
    ServingStatus::try_from(response.into_inner().status).expect("known status")
}

#[tokio::test]
async fn health_is_serving_then_not_serving_during_drain() {
    let gateway =
        common::start_with(|config| config.drain_delay = Duration::from_millis(800)).await;
    assert_eq!(
        health_status(gateway.channel.clone(), "").await,
        ServingStatus::Serving
    );
    assert_eq!(
        health_status(gateway.channel.clone(), SERVICE_NAME).await,
        ServingStatus::Serving
    );

    let channel = gateway.channel.clone();
    let mut client = gateway.client.clone();
    let server = {
        let mut g = gateway;
        g.server.take().unwrap()
    };
    let shutdown = tokio::spawn(server.shutdown());
    common::wait_until("NOT_SERVING", || {
        let channel = channel.clone();
        async move { health_status(channel, "").await == ServingStatus::NotServing }
    })
    .await;
    // During the drain delay the server still answers, but says NOT_SERVING.
    assert_eq!(
        health_status(channel.clone(), "").await,
        ServingStatus::NotServing
    );
    assert_eq!(
        health_status(channel.clone(), SERVICE_NAME).await,
        ServingStatus::NotServing
    );
    assert_eq!(
        health_status(channel.clone(), esign_gateway::server::LIVENESS_SERVICE).await,
        ServingStatus::Serving,
        "liveness holds while draining, so the pod is not restarted mid-drain"
    );
    let still_served = client.list_providers(pb::ListProvidersRequest {}).await;
    assert!(
        still_served.is_ok(),
        "calls are still served while draining"
    );
    let outcome = shutdown.await.unwrap();
    assert_eq!(outcome, esign_gateway::server::ShutdownOutcome::Drained);
}

#[tokio::test]
async fn in_flight_call_finishes_during_shutdown() {
    let gateway = common::start().await;
    gateway.sim.set_latency(Duration::from_millis(600));
    let token = {
        let now = gateway.sim.clock().now();
        gateway
            .sim
            .bynn()
            .seed("a@example.com", "delivered", 1, Some(now), now)
    };
    let mut client = gateway.client.clone();
    let call = tokio::spawn(async move {
        client
            .get_invitation(pb::GetInvitationRequest {
                provider: pb::Provider::Bynn as i32,
                account: String::new(),
                invitation_id: token,
            })
            .await
    });
    common::wait_until("the call to reach the simulator", || async {
        !gateway.sim.requests().is_empty()
    })
    .await;
    gateway.stop().await;
    let response = call.await.unwrap().expect("in-flight call completes");
    assert_eq!(
        response.into_inner().invitation.unwrap().provider_status,
        "delivered"
    );
}

async fn reflection_v1_services(channel: tonic::transport::Channel) -> Vec<String> {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    match stream
        .next()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap()
    {
        MessageResponse::ListServicesResponse(list) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

async fn reflection_v1alpha_file_for(channel: tonic::transport::Channel, symbol: &str) -> usize {
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(symbol.into())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    match stream
        .next()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap()
    {
        MessageResponse::FileDescriptorResponse(files) => files.file_descriptor_proto.len(),
        other => panic!("{symbol}: unexpected reflection answer {other:?}"),
    }
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_describe_our_service_and_error_details() {
    let gateway = common::start().await;
    let services = reflection_v1_services(gateway.channel.clone()).await;
    for expected in [SERVICE_NAME, "grpc.health.v1.Health"] {
        assert!(
            services.iter().any(|s| s == expected),
            "{expected} in {services:?}"
        );
    }
    for symbol in [
        SERVICE_NAME,
        "esign.v1.Invitation",
        "google.rpc.ErrorInfo",
        "google.rpc.RetryInfo",
        "grpc.health.v1.Health",
    ] {
        assert!(
            reflection_v1alpha_file_for(gateway.channel.clone(), symbol).await >= 1,
            "{symbol}"
        );
    }
}

#[tokio::test]
async fn unspecified_provider_is_invalid_argument_with_field_violation() {
    let mut gateway = common::start().await;
    let status = gateway
        .client
        .resend_invitation(pb::ResendInvitationRequest {
            provider: pb::Provider::Unspecified as i32,
            invitation_id: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "INVALID_FIELD");
    assert_eq!(info.domain, ERROR_DOMAIN);
    assert_eq!(
        common::field_violations(&status),
        vec!["provider".to_owned()]
    );
    assert!(gateway.sim.requests().is_empty(), "no provider was called");
}

#[tokio::test]
async fn unsupported_rpc_is_unimplemented_with_error_info() {
    let mut gateway = common::start().await;
    let status = gateway
        .client
        .get_document(pb::GetDocumentRequest {
            provider: pb::Provider::Bynn as i32,
            account: String::new(),
            document_id: "doc".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "UNSUPPORTED_BY_PROVIDER");
    assert_eq!(info.metadata["provider"], "bynn");
    assert_eq!(info.metadata["rpc"], "GetDocument");
}

#[tokio::test]
async fn unconfigured_provider_and_unknown_account() {
    let mut gateway =
        common::start_with(|config| config.accounts.retain(|a| a.provider == ProviderKind::Bynn))
            .await;
    let status = gateway
        .client
        .resend_invitation(pb::ResendInvitationRequest {
            provider: pb::Provider::Leegality as i32,
            invitation_id: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        common::error_info(&status).reason,
        "PROVIDER_NOT_CONFIGURED"
    );

    let status = gateway
        .client
        .get_invitation(pb::GetInvitationRequest {
            provider: pb::Provider::Bynn as i32,
            account: "tenant-x".into(),
            invitation_id: "adi_1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "UNKNOWN_ACCOUNT");
    assert_eq!(info.metadata["account"], "tenant-x");
    assert_eq!(
        common::field_violations(&status),
        vec!["account".to_owned()]
    );
}

#[tokio::test]
async fn malformed_request_id_is_rejected_before_any_call() {
    let mut gateway = common::start().await;
    let status = gateway
        .client
        .resend_invitation(pb::ResendInvitationRequest {
            provider: pb::Provider::Bynn as i32,
            request_id: "not-a-uuid".into(),
            invitation_id: "adi_1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        common::field_violations(&status),
        vec!["request_id".to_owned()]
    );
    assert!(gateway.sim.requests().is_empty());
}

#[tokio::test]
async fn list_providers_reports_each_account() {
    let mut gateway = common::start().await;
    let accounts = gateway
        .client
        .list_providers(pb::ListProvidersRequest {})
        .await
        .unwrap()
        .into_inner()
        .accounts;
    assert_eq!(accounts.len(), 3);
    let bynn = accounts
        .iter()
        .find(|a| a.provider == pb::Provider::Bynn as i32)
        .unwrap();
    assert_eq!(bynn.account, DEFAULT_ACCOUNT);
    assert!(bynn.is_default);
    assert_eq!(bynn.environment_host, "127.0.0.1");
    assert!(bynn.supported_rpcs.contains(&"ResendInvitation".to_owned()));
    assert!(!bynn.supported_rpcs.contains(&"GetDocument".to_owned()));
}

#[tokio::test]
async fn inbound_traceparent_reaches_the_provider() {
    // Telemetry is global; install it once for this test binary.
    let config = common::base_config();
    let _guard = esign_gateway::telemetry::init(&config).ok();
    let mut gateway = common::start().await;
    let token = {
        let now = gateway.sim.clock().now();
        gateway
            .sim
            .bynn()
            .seed("a@example.com", "sent", 1, Some(now), now)
    };
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut request = tonic::Request::new(pb::GetInvitationRequest {
        provider: pb::Provider::Bynn as i32,
        account: String::new(),
        invitation_id: token,
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    gateway.client.get_invitation(request).await.unwrap();
    let sent = gateway.sim.requests_for(ProviderKind::Bynn);
    let traceparent = sent[0]
        .header("traceparent")
        .expect("traceparent forwarded");
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "{traceparent}"
    );
    assert!(
        !traceparent.contains("00f067aa0ba902b7"),
        "the provider call is a child span"
    );
}

#[tokio::test]
async fn deadline_runs_out_as_deadline_exceeded_not_cancelled() {
    let mut gateway = common::start().await;
    gateway.sim.set_latency(Duration::from_millis(1500));
    let token = {
        let now = gateway.sim.clock().now();
        gateway
            .sim
            .bynn()
            .seed("a@example.com", "sent", 1, Some(now), now)
    };
    let mut request = tonic::Request::new(pb::ResendInvitationRequest {
        provider: pb::Provider::Bynn as i32,
        invitation_id: token,
        ..Default::default()
    });
    request.set_timeout(Duration::from_millis(400));
    let status = gateway.client.resend_invitation(request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let info = common::error_info(&status);
    assert_eq!(info.reason, "DEADLINE_EXCEEDED");
    assert_eq!(info.metadata["outcome"], "unknown");
}

#[test]
fn bad_configuration_exits_64_naming_the_variable() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_esign-gateway"))
        .arg("serve")
        .env_clear()
        .env("BYNN_API_KEY", "private_x")
        .env("GATEWAY_LISTEN_ADDR", "not-an-address")
        .output()
        .expect("binary runs");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("GATEWAY_LISTEN_ADDR"), "{stderr}");

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_esign-gateway"))
        .arg("serve")
        .env_clear()
        .output()
        .expect("binary runs");
    assert_eq!(output.status.code(), Some(64), "no provider configured");

    // The callers file is read when the server starts; still exit 64.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_esign-gateway"))
        .arg("serve")
        .env_clear()
        .env("BYNN_API_KEY", "private_x")
        .env("GATEWAY_LISTEN_ADDR", "127.0.0.1:0")
        .env("GATEWAY_METRICS_ADDR", "off")
        .env("GATEWAY_WEBHOOK_ADDR", "off")
        .env("GATEWAY_AUTH_TOKENS_FILE", "/nonexistent/callers.toml")
        .output()
        .expect("binary runs");
    assert_eq!(output.status.code(), Some(64), "unreadable callers file");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("GATEWAY_AUTH_TOKENS_FILE"), "{stderr}");
}

#[tokio::test]
async fn the_demo_moves_a_taken_admin_port_and_says_where_it_went_while_serve_refuses_it() {
    use tokio::io::AsyncBufReadExt as _;

    // Someone (a local Prometheus, another demo) already has the port.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_addr = taken.local_addr().unwrap().to_string();
    let mut demo = tokio::process::Command::new(env!("CARGO_BIN_EXE_esign-gateway"))
        .arg("demo")
        .env_clear()
        .env("GATEWAY_LISTEN_ADDR", "127.0.0.1:0")
        .env("GATEWAY_WEBHOOK_ADDR", "127.0.0.1:0")
        .env("GATEWAY_METRICS_ADDR", &taken_addr)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("demo starts");
    let mut lines = tokio::io::BufReader::new(demo.stdout.take().unwrap()).lines();
    let mut moved_to = None;
    let mut metrics_line = None;
    while let Ok(Ok(Some(line))) =
        tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await
    {
        if line.contains("GATEWAY_METRICS_ADDR is taken") {
            moved_to = line
                .rsplit("listening on ")
                .next()
                .map(|rest| rest.trim_end_matches(" instead").to_owned());
        }
        if line.contains("metrics and health on") {
            metrics_line = Some(line);
            break;
        }
    }
    let moved_to = moved_to.expect("the demo says the port was taken");
    assert_ne!(moved_to, taken_addr);
    assert!(
        metrics_line
            .expect("the demo prints its metrics address")
            .contains(&moved_to)
    );
    let health = reqwest::get(format!("http://{moved_to}/healthz"))
        .await
        .expect("the moved admin listener answers");
    assert!(health.status().is_success());
    demo.kill().await.ok();

    // A server in production must not wander off its configured port.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_esign-gateway"))
        .arg("serve")
        .env_clear()
        .env("BYNN_API_KEY", "private_x")
        .env("GATEWAY_LISTEN_ADDR", "127.0.0.1:0")
        .env("GATEWAY_WEBHOOK_ADDR", "off")
        .env("GATEWAY_METRICS_ADDR", &taken_addr)
        .output()
        .expect("binary runs");
    assert_ne!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("GATEWAY_METRICS_ADDR"), "{stderr}");
    drop(taken);
}
