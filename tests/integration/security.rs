//! Who may call and what is recorded: bearer tokens, TLS and mTLS, the audit
//! line, the metrics endpoint, and hostile ids that try to steer provider
//! calls elsewhere.

use crate::common;

use std::time::Duration;

use esign_gateway::{
    config::TlsConfig,
    pb::{self, invitation_service_client::InvitationServiceClient},
    simulator::Simulator,
};
use tonic::{
    Code, Request,
    transport::{Certificate, Channel, ClientTlsConfig, Identity},
};

const LEEGALITY: i32 = pb::Provider::Leegality as i32;
const BYNN: i32 = pb::Provider::Bynn as i32;

fn sha256_hex(token: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("esign-security-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn callers_file() -> std::path::PathBuf {
    let path = temp_dir().join("callers.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[callers]]
name = "billing"
token_sha256 = "{}"
rpcs = ["ResendInvitation", "ListProviders"]
accounts = ["leegality/*"]

[[callers]]
name = "ops"
token_sha256 = "{}"
rpcs = ["*"]
accounts = ["*"]
"#,
            sha256_hex("caller-token-billing"),
            sha256_hex("caller-token-ops"),
        ),
    )
    .unwrap();
    path
}

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test]
async fn bearer_tokens_allow_deny_and_refuse() {
    let file = callers_file();
    let mut gateway = common::start_with(|config| {
        config.auth_tokens_file = Some(file.clone());
    })
    .await;
    let uuid = common::seed_leegality_invitee(&gateway.sim);
    let resend = || pb::ResendInvitationRequest {
        provider: LEEGALITY,
        invitation_id: uuid.clone(),
        ..Default::default()
    };

    let status = gateway
        .client
        .resend_invitation(resend())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(common::error_info(&status).reason, "CALLER_UNAUTHENTICATED");
    let status = gateway
        .client
        .resend_invitation(with_token(resend(), "caller-token-wrong"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        gateway.sim.requests().is_empty(),
        "nothing reached a provider"
    );

    gateway
        .client
        .resend_invitation(with_token(resend(), "caller-token-billing"))
        .await
        .expect("billing may resend on Leegality");

    let status = gateway
        .client
        .get_document(with_token(
            pb::GetDocumentRequest {
                provider: LEEGALITY,
                account: String::new(),
                document_id: "DOC".into(),
            },
            "caller-token-billing",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "CALLER_NOT_ALLOWED");
    assert_eq!(info.metadata["caller"], "billing");

    let status = gateway
        .client
        .resend_invitation(with_token(
            pb::ResendInvitationRequest {
                provider: BYNN,
                invitation_id: "adi_0123456789abcdef".into(),
                ..Default::default()
            },
            "caller-token-billing",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(common::error_info(&status).reason, "CALLER_NOT_ALLOWED");

    // An existing account it may not use and an account that does not
    // exist answer alike: nothing is learnt about other accounts.
    let bynn_resend = |account: &str| {
        with_token(
            pb::ResendInvitationRequest {
                provider: BYNN,
                account: account.into(),
                invitation_id: "adi_0123456789abcdef".into(),
                ..Default::default()
            },
            "caller-token-billing",
        )
    };
    let forbidden = gateway
        .client
        .resend_invitation(bynn_resend("default"))
        .await
        .unwrap_err();
    let unknown = gateway
        .client
        .resend_invitation(bynn_resend("no-such-tenant"))
        .await
        .unwrap_err();
    assert_eq!(forbidden.code(), unknown.code());
    assert_eq!(forbidden.message(), unknown.message());
    assert_eq!(common::error_info(&unknown).reason, "CALLER_NOT_ALLOWED");
    // Only the names differ, and only as the caller gave them.
    assert_eq!(
        common::error_info(&unknown).metadata["deniedAccount"],
        "bynn/no-such-tenant"
    );

    let listed = gateway
        .client
        .list_providers(with_token(
            pb::ListProvidersRequest {},
            "caller-token-billing",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.accounts.iter().all(|a| a.provider == LEEGALITY));
    assert_eq!(
        listed.accounts.len(),
        1,
        "only the accounts billing may use"
    );
    let all = gateway
        .client
        .list_providers(with_token(pb::ListProvidersRequest {}, "caller-token-ops"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.accounts.len(), 3);

    // Health and reflection stay open for probes and grpcurl.
    let mut health = tonic_health::pb::health_client::HealthClient::new(gateway.channel.clone());
    health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health needs no token");

    let audit = common::logged_lines("audit");
    let line = audit
        .iter()
        .rev()
        .find(|l| l["fields"]["caller"] == "billing" && l["fields"]["code"] == "OK")
        .expect("an audit line for billing's resend");
    assert_eq!(line["fields"]["rpc"], "ResendInvitation");
    assert_eq!(line["fields"]["provider"], "leegality");
    assert_eq!(
        line["fields"]["invitation_ids"],
        format!("{}…", &uuid[..8]),
        "the sign URL UUID is cut short"
    );
    let refused = audit
        .iter()
        .find(|l| l["fields"]["caller"] == "unauthenticated")
        .expect("refused calls are audited too");
    assert_eq!(refused["fields"]["reason"], "CALLER_UNAUTHENTICATED");
}

#[tokio::test]
async fn the_audit_line_names_everything_and_masks_contacts() {
    let mut gateway = common::start().await;
    let request_id = uuid::Uuid::new_v4().to_string();
    gateway
        .client
        .send_invitation(pb::SendInvitationRequest {
            provider: BYNN,
            request_id: request_id.clone(),
            signers: vec![pb::Signer {
                email: "lena.visser@example.com".into(),
                ..Default::default()
            }],
            provider_options: Some(pb::send_invitation_request::ProviderOptions::Bynn(
                pb::BynnOptions {
                    workflow_token: "wf_demo_onboarding".into(),
                    channel: pb::BynnChannel::Email as i32,
                    locale: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .unwrap();
    let line = common::logged_lines("audit")
        .into_iter()
        .find(|l| l["fields"]["request_id"] == request_id.as_str())
        .expect("audit line for the send");
    let fields = &line["fields"];
    assert_eq!(fields["caller"], "anonymous");
    assert_eq!(fields["rpc"], "SendInvitation");
    assert_eq!(fields["provider"], "bynn");
    assert_eq!(fields["account"], "default");
    assert_eq!(fields["recipients"], "l***@example.com");
    assert_eq!(fields["code"], "OK");
    assert_eq!(fields["trace_id"].as_str().unwrap().len(), 32);
    assert!(line["timestamp"].is_string());
    assert!(!line.to_string().contains("lena.visser"));
}

#[tokio::test]
async fn metrics_show_calls_providers_and_replays() {
    let sim = Simulator::start_local().await.unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let (server, _) = common::serve(&sim, |_| {}, Some(admin)).await;
    let channel = Channel::from_shared(format!("http://{}", server.local_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = InvitationServiceClient::new(channel);
    let uuid = common::seed_leegality_invitee(&sim);
    let request_id = uuid::Uuid::new_v4().to_string();
    for _ in 0..2 {
        client
            .resend_invitation(pb::ResendInvitationRequest {
                provider: LEEGALITY,
                invitation_id: uuid.clone(),
                request_id: request_id.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    // A call in a sampled trace: only such calls carry an exemplar.
    let sampled_trace = "0af7651916cd43dd8448eb211c80319c";
    let mut sampled = Request::new(pb::GetDocumentRequest {
        provider: LEEGALITY,
        account: String::new(),
        document_id: "NOSUCHDOC".into(),
    });
    sampled.metadata_mut().insert(
        "traceparent",
        format!("00-{sampled_trace}-b7ad6b7169203331-01")
            .parse()
            .unwrap(),
    );
    let _ = client.get_document(sampled).await;

    let http = reqwest::Client::new();
    let response = http
        .get(format!("http://{admin_addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no series {prefix} in\n{text}"))
    };
    assert!(value("esign_rpc_requests_total{method=\"ResendInvitation\",code=\"OK\"}") >= 2.0);
    assert!(value("esign_rpc_requests_total{method=\"GetDocument\",code=\"NOT_FOUND\"}") >= 1.0);
    assert!(
        value("esign_rpc_duration_seconds_count{method=\"ResendInvitation\",code=\"OK\"}") >= 2.0
    );
    assert!(
        value(
            "esign_provider_requests_total{provider=\"leegality\",account=\"default\",operation=\"resend\",status=\"200\"}"
        ) >= 1.0
    );
    assert!(value("esign_idempotency_replays_total{method=\"ResendInvitation\"}") >= 1.0);
    assert!(text.contains("# TYPE esign_rpc_in_flight gauge"));
    assert!(text.contains("# TYPE esign_breaker_state gauge"));
    assert!(text.contains(
        "esign_breaker_state{provider=\"leegality\",account=\"default\",state=\"closed\"} 1"
    ));
    assert!(text.contains(
        "esign_breaker_state{provider=\"leegality\",account=\"default\",state=\"open\"} 0"
    ));
    assert!(!text.contains("# EOF"), "classic format has no EOF marker");
    assert!(value("process_resident_memory_bytes") > 0.0);

    // OpenMetrics on request, with the calls' trace ids as exemplars.
    let response = http
        .get(format!("http://{admin_addr}/metrics"))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let open = response.text().await.unwrap();
    assert!(open.ends_with("# EOF\n"));
    assert!(open.contains("# TYPE esign_rpc_requests counter"));
    assert!(
        open.lines()
            .any(|l| l.starts_with("esign_rpc_duration_seconds_bucket{")
                && l.contains("method=\"GetDocument\"")
                && l.contains(&format!(" # {{trace_id=\"{sampled_trace}\"}}"))),
        "the sampled call's trace id is its exemplar:\n{open}"
    );
    assert!(
        !open
            .lines()
            .any(|l| l.contains("method=\"ResendInvitation\"") && l.contains(" # {trace_id=")),
        "calls outside a sampled trace carry no exemplar:\n{open}"
    );
    for path in ["healthz", "readyz"] {
        let response = http
            .get(format!("http://{admin_addr}/{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    server.shutdown().await;
}

struct Pki {
    dir: std::path::PathBuf,
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

/// A CA, a server certificate for localhost and a client certificate with
/// a SPIFFE id, written where the gateway's config can point.
fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let dir = temp_dir();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "esign test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let server_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let server = server_params.signed_by(&server_key, &issuer).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params.subject_alt_names = vec![SanType::URI(
        "spiffe://corp.example/ns/billing/sa/api"
            .try_into()
            .unwrap(),
    )];
    client_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "billing-api");
    let client = client_params.signed_by(&client_key, &issuer).unwrap();

    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    Pki {
        dir,
        ca_pem: ca.pem(),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

async fn tls_channel(
    addr: std::net::SocketAddr,
    pki: &Pki,
    with_client_cert: bool,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    if with_client_cert {
        tls = tls.identity(Identity::from_pem(
            &pki.client_cert_pem,
            &pki.client_key_pem,
        ));
    }
    Channel::from_shared(format!("https://localhost:{}", addr.port()))
        .unwrap()
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

#[tokio::test]
async fn mutual_tls_names_the_caller_by_its_spiffe_id() {
    let pki = pki();
    let sim = Simulator::start_local().await.unwrap();
    let tls = TlsConfig {
        cert: pki.dir.join("server.pem"),
        key: pki.dir.join("server.key"),
        client_ca: Some(pki.dir.join("ca.pem")),
    };
    let (server, _) = common::serve(
        &sim,
        |config| {
            // The client CA alone turns caller authentication on.
            config.tls = Some(tls.clone());
        },
        None,
    )
    .await;
    let uuid = common::seed_leegality_invitee(&sim);

    let channel = tls_channel(server.local_addr(), &pki, true).await.unwrap();
    let mut client = InvitationServiceClient::new(channel);
    client
        .resend_invitation(pb::ResendInvitationRequest {
            provider: LEEGALITY,
            invitation_id: uuid.clone(),
            ..Default::default()
        })
        .await
        .expect("a client certificate from the CA is enough");
    let line = common::logged_lines("audit")
        .into_iter()
        .rev()
        .find(|l| l["fields"]["caller"] == "spiffe://corp.example/ns/billing/sa/api")
        .expect("the audit line names the SPIFFE id");
    assert_eq!(line["fields"]["rpc"], "ResendInvitation");

    // Without a client certificate the handshake is refused.
    let refused = match tls_channel(server.local_addr(), &pki, false).await {
        Err(_) => true,
        Ok(channel) => InvitationServiceClient::new(channel)
            .list_providers(pb::ListProvidersRequest {})
            .await
            .is_err(),
    };
    assert!(refused, "no client certificate, no call");

    // Plaintext is not served on a TLS port.
    let plain = Channel::from_shared(format!("http://{}", server.local_addr()))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await;
    let plain_refused = match plain {
        Err(_) => true,
        Ok(channel) => InvitationServiceClient::new(channel)
            .list_providers(pb::ListProvidersRequest {})
            .await
            .is_err(),
    };
    assert!(plain_refused);
    server.shutdown().await;
}

#[tokio::test]
async fn tls_with_tokens_authenticates_by_token() {
    let pki = pki();
    let file = callers_file();
    let sim = Simulator::start_local().await.unwrap();
    let tls = TlsConfig {
        cert: pki.dir.join("server.pem"),
        key: pki.dir.join("server.key"),
        client_ca: None,
    };
    let (server, _) = common::serve(
        &sim,
        |config| {
            config.tls = Some(tls.clone());
            config.auth_tokens_file = Some(file.clone());
        },
        None,
    )
    .await;
    let channel = tls_channel(server.local_addr(), &pki, false).await.unwrap();
    let mut client = InvitationServiceClient::new(channel);
    let status = client
        .list_providers(pb::ListProvidersRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    client
        .list_providers(with_token(pb::ListProvidersRequest {}, "caller-token-ops"))
        .await
        .expect("token over TLS");
    server.shutdown().await;
}

/// Ids that try to change the host, scheme or path of a provider call are
/// refused before any call; nothing reaches a provider.
#[tokio::test]
async fn hostile_ids_never_steer_a_provider_call() {
    let mut gateway = common::start().await;
    let hostile = [
        "../../admin",
        "..%2F..%2Fadmin",
        "adi_x/../../v2/users",
        "https://evil.example.com/sign/2bdcc3ef-661f-440c-b059-82c0ff6ce4d8",
        "//evil.example.com/x",
        "x?token=1",
        "x#frag",
        "x\r\nHost: evil.example.com",
        "%00",
        "",
        " ",
        &"z".repeat(500),
    ];
    for provider in [LEEGALITY, BYNN, pb::Provider::Signnow as i32] {
        for id in hostile {
            let resend = gateway
                .client
                .resend_invitation(pb::ResendInvitationRequest {
                    provider,
                    invitation_id: id.to_owned(),
                    ..Default::default()
                })
                .await;
            let status = resend.expect_err(id);
            assert_eq!(status.code(), Code::InvalidArgument, "{provider} {id:?}");
            let get = gateway
                .client
                .get_document(pb::GetDocumentRequest {
                    provider,
                    account: String::new(),
                    document_id: id.to_owned(),
                })
                .await;
            let status = get.expect_err(id);
            assert!(
                matches!(status.code(), Code::InvalidArgument | Code::Unimplemented),
                "{provider} {id:?}: {status:?}"
            );
        }
    }
    let reached: Vec<_> = gateway
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path != "/oauth2/token")
        .collect();
    assert!(reached.is_empty(), "{reached:?}");
}

#[tokio::test]
async fn an_oversized_message_is_refused_before_any_provider_call() {
    let mut gateway = common::start().await;
    let mut file = b"%PDF-1.7\n".to_vec();
    file.resize(18 * 1024 * 1024, b' ');
    let status = gateway
        .client
        .send_invitation(pb::SendInvitationRequest {
            provider: LEEGALITY,
            signers: vec![pb::Signer {
                name: "A".into(),
                email: "a@example.com".into(),
                ..Default::default()
            }],
            provider_options: Some(pb::send_invitation_request::ProviderOptions::Leegality(
                pb::LeegalityOptions {
                    profile_id: "wfDemo01".into(),
                    file_name: "big.pdf".into(),
                    file: file.into(),
                },
            )),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(gateway.sim.requests().is_empty());
}
