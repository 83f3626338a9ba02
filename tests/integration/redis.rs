//! Several replicas on real `redis-server` processes started here: budgets
//! shared by all replicas, an outage and a restart under load, TLS with a
//! test CA, a 3-node Redis Cluster, and a replica killed mid-call.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use chrono::Duration as ChronoDuration;
use esign_gateway::{ProviderKind, config::RedisConfig, pb};
use tonic::Code;

use crate::common;

const LEEGALITY: i32 = pb::Provider::Leegality as i32;
const BYNN: i32 = pb::Provider::Bynn as i32;

/// A throwaway `redis-server` on a loopback port, in its own directory.
pub(crate) struct RedisServer {
    child: Option<Child>,
    pub(crate) port: u16,
    dir: PathBuf,
    args: Vec<String>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    /// A plain server on a free port.
    pub(crate) async fn start() -> RedisServer {
        let port = free_port();
        RedisServer::start_with(port, vec!["--port".into(), port.to_string()]).await
    }

    async fn start_with(port: u16, args: Vec<String>) -> RedisServer {
        let dir = std::env::temp_dir().join(format!("esign-redis-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = RedisServer {
            child: None,
            port,
            dir,
            args,
        };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        #[allow(clippy::zombie_processes)] // killed and waited for in Drop
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test.sh installs it)");
        self.child = Some(child);
        let port = self.port;
        common::wait_until("redis-server to listen", || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same settings.
    async fn restart(&mut self) {
        self.spawn().await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn seed_bynn_sent(sim: &esign_gateway::simulator::Simulator, count: usize) -> Vec<String> {
    let now = sim.clock().now();
    (0..count)
        .map(|i| {
            sim.bynn().seed(
                &format!("signer{i}@example.com"),
                "sent",
                1,
                Some(now - ChronoDuration::minutes(10)),
                now - ChronoDuration::days(1),
            )
        })
        .collect()
}

fn bynn_resends(sim: &esign_gateway::simulator::Simulator) -> usize {
    sim.requests_for(ProviderKind::Bynn)
        .iter()
        .filter(|r| r.path.ends_with("/resend"))
        .count()
}

fn leegality_resend(uuid: &str, request_id: &str) -> pb::ResendInvitationRequest {
    pb::ResendInvitationRequest {
        provider: LEEGALITY,
        invitation_id: uuid.into(),
        request_id: request_id.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn two_replicas_share_the_bynn_resend_budget() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let a = common::start_with(|c| c.redis = Some(RedisConfig::single(url.clone()))).await;
    let (_b, b, _, _) =
        common::gateway_for(&a.sim, |c| c.redis = Some(RedisConfig::single(url.clone()))).await;
    let tokens = seed_bynn_sent(&a.sim, 40);

    // 40 resends at once, half through each replica.
    let calls = tokens.iter().enumerate().map(|(i, token)| {
        let mut client = if i % 2 == 0 {
            a.client.clone()
        } else {
            b.clone()
        };
        let request = pb::ResendInvitationRequest {
            provider: BYNN,
            invitation_id: token.clone(),
            ..Default::default()
        };
        async move { client.resend_invitation(request).await }
    });
    let results = futures_util::future::join_all(calls).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let sent = bynn_resends(&a.sim);
    assert!(
        sent <= 20,
        "{sent} resends reached Bynn; its budget is 20 a minute"
    );
    assert_eq!(ok, sent, "every resend that reached Bynn succeeded");
    for status in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(status.code(), Code::ResourceExhausted);
        let info = common::error_info(status);
        assert_eq!(info.reason, "RATE_LIMITED");
        assert_eq!(
            info.metadata["limiter"], "resends_per_minute",
            "the gateway's own"
        );
        assert!(common::retry_delay(status).is_some());
    }
    assert_eq!(ok + results.iter().filter(|r| r.is_err()).count(), 40);
}

#[tokio::test]
async fn calls_recover_within_seconds_of_a_redis_restart() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let mut gateway =
        common::start_with(|c| c.redis = Some(RedisConfig::single(url.clone()))).await;
    let owner = gateway.sim.config().credentials.signnow_username.clone();
    let document = gateway
        .sim
        .signnow()
        .seed_document(&owner, "Lease.pdf", &["Tenant"]);
    // Cancelling is repeatable, and each call with a request id needs Redis.
    let cancel = || pb::CancelInvitationsRequest {
        provider: pb::Provider::Signnow as i32,
        document_id: document.id.clone(),
        reason: "superseded".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    };
    for _ in 0..3 {
        gateway.client.cancel_invitations(cancel()).await.unwrap();
    }

    redis.kill();
    let status = gateway
        .client
        .cancel_invitations(cancel())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "STATE_STORE_UNAVAILABLE");
    assert_eq!(info.metadata["outcome"], "not_sent");

    redis.restart().await;
    let restarted = tokio::time::Instant::now();
    let mut client = gateway.client.clone();
    common::wait_until("calls to succeed again", || {
        let request = cancel();
        let mut client = client.clone();
        async move { client.cancel_invitations(request).await.is_ok() }
    })
    .await;
    assert!(
        restarted.elapsed() < Duration::from_secs(3),
        "recovered {:?} after the restart",
        restarted.elapsed()
    );
    for _ in 0..10 {
        client.cancel_invitations(cancel()).await.unwrap();
    }
}

/// A CA and a server certificate for 127.0.0.1, as PEM.
struct TestCa {
    ca_pem: String,
    server_pem: String,
    server_key: String,
}

fn test_ca(name: &str) -> TestCa {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let mut server_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    server_params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let server = server_params.signed_by(&server_key, &issuer).unwrap();
    TestCa {
        ca_pem: ca.pem(),
        server_pem: server.pem(),
        server_key: server_key.serialize_pem(),
    }
}

#[tokio::test]
async fn a_tls_only_redis_works_with_its_ca_and_refuses_another() {
    let ca = test_ca("redis test CA");
    let dir = std::env::temp_dir().join(format!("esign-redis-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    for (file, pem) in [
        ("ca.pem", &ca.ca_pem),
        ("server.pem", &ca.server_pem),
        ("server.key", &ca.server_key),
    ] {
        std::fs::write(dir.join(file), pem).unwrap();
    }
    let port = free_port();
    let path = |file: &str| dir.join(file).display().to_string();
    let _redis = RedisServer::start_with(
        port,
        vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            path("server.pem"),
            "--tls-key-file".into(),
            path("server.key"),
            "--tls-ca-cert-file".into(),
            path("ca.pem"),
            "--tls-auth-clients".into(),
            "no".into(),
        ],
    )
    .await;
    let tls = |ca_pem: &str| RedisConfig {
        url: Some(format!("rediss://127.0.0.1:{port}/0")),
        cluster_urls: Vec::new(),
        ca_pem: Some(ca_pem.as_bytes().to_vec()),
    };

    let mut gateway = common::start_with(|c| c.redis = Some(tls(&ca.ca_pem))).await;
    let uuid = common::seed_leegality_invitee(&gateway.sim);
    let id = uuid::Uuid::new_v4().to_string();
    let first = gateway
        .client
        .resend_invitation(leegality_resend(&uuid, &id))
        .await
        .unwrap();
    let again = gateway
        .client
        .resend_invitation(leegality_resend(&uuid, &id))
        .await
        .unwrap();
    assert_eq!(first.into_inner(), again.into_inner());
    assert_eq!(
        gateway.sim.requests_for(ProviderKind::Leegality).len(),
        1,
        "the repeat was answered from Redis over TLS"
    );

    let other = test_ca("someone else's CA");
    let (_server, mut client, _, _) =
        common::gateway_for(&gateway.sim, |c| c.redis = Some(tls(&other.ca_pem))).await;
    let status = client
        .resend_invitation(leegality_resend(&uuid, &uuid::Uuid::new_v4().to_string()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "STATE_STORE_UNAVAILABLE");
    assert!(
        info.metadata["cause"]
            .to_ascii_lowercase()
            .contains("certificate"),
        "the cause says why: {}",
        info.metadata["cause"]
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_redis_cluster_keeps_request_ids_across_replicas() {
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut nodes = Vec::new();
    for port in &ports {
        nodes.push(
            RedisServer::start_with(
                *port,
                vec![
                    "--port".into(),
                    port.to_string(),
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    format!("nodes-{port}.conf"),
                    // The bus port defaults to port + 10000, which is past
                    // 65535 for a third of the ephemeral range: pick one.
                    "--cluster-port".into(),
                    free_port().to_string(),
                ],
            )
            .await,
        );
    }
    let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addresses)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli runs");
    assert!(created.status.success(), "{created:?}");
    let cli = |args: &[&str]| {
        let output = Command::new("redis-cli")
            .args(["-p", &ports[0].to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    common::wait_until("the cluster to be ok", || {
        let ok = cli(&["cluster", "info"]).contains("cluster_state:ok");
        async move { ok }
    })
    .await;

    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect();
    let a = common::start_with(|c| c.redis = Some(RedisConfig::cluster(urls.clone()))).await;
    let (_b, mut b, _, _) = common::gateway_for(&a.sim, |c| {
        c.redis = Some(RedisConfig::cluster(urls.clone()))
    })
    .await;
    let mut slots = std::collections::HashSet::new();
    for _ in 0..8 {
        let uuid = common::seed_leegality_invitee(&a.sim);
        let id = uuid::Uuid::new_v4().to_string();
        slots.insert(cli(&["cluster", "keyslot", &format!("idem:{id}")]));
        let first = a
            .client
            .clone()
            .resend_invitation(leegality_resend(&uuid, &id))
            .await
            .unwrap();
        let again = b
            .resend_invitation(leegality_resend(&uuid, &id))
            .await
            .unwrap();
        assert_eq!(first.into_inner(), again.into_inner());
    }
    assert!(slots.len() > 1, "the ids landed on several slots");
    assert_eq!(
        a.sim.requests_for(ProviderKind::Leegality).len(),
        8,
        "each id reached Leegality once, whichever replica was asked"
    );
    drop(nodes);
}

/// A replica process killed while billed creates are in flight: once its
/// lease lapses, the same requests on another replica create nothing new.
#[tokio::test]
async fn a_replica_killed_mid_create_never_causes_a_second_create() {
    let redis = RedisServer::start().await;
    let sim = esign_gateway::simulator::Simulator::start_local()
        .await
        .unwrap();
    let credentials = sim.config().credentials.clone();
    let port = free_port();
    #[allow(clippy::zombie_processes)] // killed and waited for below
    let mut replica = Command::new(env!("CARGO_BIN_EXE_esign-gateway"))
        .arg("serve")
        .env_clear()
        .env("GATEWAY_LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("GATEWAY_METRICS_ADDR", "off")
        .env("GATEWAY_WEBHOOK_ADDR", "off")
        .env("GATEWAY_REDIS_URL", redis.url())
        .env("GATEWAY_CLAIM_LEASE_SECONDS", "1")
        .env("RUST_LOG", "warn")
        .env("BYNN_BASE_URL", sim.base_url(ProviderKind::Bynn))
        .env("BYNN_API_KEY", &credentials.bynn_api_key)
        .env("LEEGALITY_BASE_URL", sim.base_url(ProviderKind::Leegality))
        .env("LEEGALITY_AUTH_TOKEN", &credentials.leegality_auth_token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_until("the replica to listen", || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let replica_client = pb::invitation_service_client::InvitationServiceClient::new(channel);

    let bynn_send = pb::SendInvitationRequest {
        provider: BYNN,
        request_id: uuid::Uuid::new_v4().to_string(),
        reference: "order-8123".into(),
        signers: vec![pb::Signer {
            email: "customer@example.com".into(),
            ..Default::default()
        }],
        provider_options: Some(pb::send_invitation_request::ProviderOptions::Bynn(
            pb::BynnOptions {
                workflow_token: "wf_demo_onboarding".into(),
                channel: pb::BynnChannel::Email as i32,
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    let leegality_send = pb::SendInvitationRequest {
        provider: LEEGALITY,
        request_id: uuid::Uuid::new_v4().to_string(),
        reference: "IRN-KILLED-1".into(),
        signers: vec![pb::Signer {
            name: "Asha Rao".into(),
            email: "asha@example.com".into(),
            ..Default::default()
        }],
        provider_options: Some(pb::send_invitation_request::ProviderOptions::Leegality(
            pb::LeegalityOptions {
                profile_id: "wfDemo01".into(),
                file_name: "Lease.pdf".into(),
                file: b"%PDF-1.7\n%test\n".to_vec().into(),
            },
        )),
        ..Default::default()
    };

    // The provider takes its time answering; the replica dies meanwhile.
    sim.set_latency(Duration::from_secs(30));
    for request in [bynn_send.clone(), leegality_send.clone()] {
        let mut client = replica_client.clone();
        tokio::spawn(async move { client.send_invitation(request).await });
    }
    common::wait_until("both creates at the providers", || {
        let arrived = sim.requests().iter().filter(|r| r.method == "POST").count();
        async move { arrived == 2 }
    })
    .await;
    replica.kill().unwrap();
    replica.wait().unwrap();
    sim.set_latency(Duration::ZERO);

    let (_other, mut client, _, _) = common::gateway_for(&sim, |c| {
        c.redis = Some(RedisConfig::single(redis.url()));
        c.claim_lease = Duration::from_secs(1);
    })
    .await;
    // Retried as a client would while the dead replica's lease runs out.
    let retry = |request: pb::SendInvitationRequest| {
        let mut client = client.clone();
        async move {
            loop {
                match client.send_invitation(request.clone()).await {
                    Err(status) if common::error_info(&status).reason == "REQUEST_IN_PROGRESS" => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    other => return other,
                }
            }
        }
    };
    let reconciled = retry(bynn_send.clone()).await.unwrap().into_inner();
    let created: Vec<String> = sim.bynn().invitations.keys().cloned().collect();
    assert_eq!(created.len(), 1, "Bynn has exactly one invitation");
    assert_eq!(
        reconciled.invitations[0].id, created[0],
        "found by its reference"
    );
    assert_eq!(reconciled.provider_warnings[0].code, "gateway.reconciled");

    let status = retry(leegality_send.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unknown);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "REQUEST_OUTCOME_UNKNOWN");
    assert_eq!(info.metadata["outcome"], "unknown");
    assert_eq!(info.metadata["reference"], "IRN-KILLED-1");

    let creates = sim.requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(creates, 2, "no create was sent a second time");
    // The settled outcome is final for the id.
    let again = client.send_invitation(leegality_send).await.unwrap_err();
    assert_eq!(common::error_info(&again).reason, "REQUEST_OUTCOME_UNKNOWN");
}
