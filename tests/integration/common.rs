//! Starts the real gateway in-process on an ephemeral port, wired to a fresh
//! provider simulator, and connects the generated client to it.
#![allow(dead_code)]

use std::{collections::HashMap, time::Duration};

use esign_gateway::{
    config::{self, Config},
    pb::invitation_service_client::InvitationServiceClient,
    server::{Listeners, RunningServer},
    simulator::Simulator,
};
use tokio::net::TcpListener;
use tonic::transport::Channel;

pub(crate) struct TestGateway {
    pub sim: Simulator,
    pub server: Option<RunningServer>,
    pub client: InvitationServiceClient<Channel>,
    pub channel: Channel,
    pub config: Config,
}

impl TestGateway {
    pub(crate) fn addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().expect("running").local_addr()
    }

    pub(crate) async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

/// A config with no accounts, no admin listener and no drain delay.
pub(crate) fn base_config() -> Config {
    let mut config = config::load(&HashMap::new(), None).expect("default config");
    config.metrics_addr = None;
    config.drain_delay = Duration::ZERO;
    config.shutdown_grace = Duration::from_secs(5);
    config
}

pub(crate) async fn start() -> TestGateway {
    start_with(|_| {}).await
}

/// Starts a simulator and a gateway whose accounts point at it; `tweak`
/// may change the config (accounts included) before the server starts.
pub(crate) async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestGateway {
    let sim = Simulator::start_local().await.expect("simulator");
    let (server, client, channel, config) = gateway_for(&sim, tweak).await;
    TestGateway {
        sim,
        server: Some(server),
        client,
        channel,
        config,
    }
}

/// Another gateway on the same simulator (e.g. a second replica).
pub(crate) async fn gateway_for(
    sim: &Simulator,
    tweak: impl FnOnce(&mut Config),
) -> (
    RunningServer,
    InvitationServiceClient<Channel>,
    Channel,
    Config,
) {
    let (server, config) = serve(sim, tweak, None).await;
    let channel = Channel::from_shared(format!("http://{}", server.local_addr()))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    (
        server,
        InvitationServiceClient::new(channel.clone()),
        channel,
        config,
    )
}

/// A gateway on `sim` without a client (for TLS tests), with an admin
/// listener when one is given.
pub(crate) async fn serve(
    sim: &Simulator,
    tweak: impl FnOnce(&mut Config),
    admin: Option<TcpListener>,
) -> (RunningServer, Config) {
    capture_logs();
    let mut config = base_config();
    config.accounts = sim.gateway_accounts();
    tweak(&mut config);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    // The gateway shares the simulator's clock, so moving it expires tokens
    // and cools down circuit breakers.
    let webhooks = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let listeners = Listeners {
        grpc: listener,
        admin,
        webhooks: Some(webhooks),
    };
    let server = RunningServer::launch(&config, sim.clock().clone(), listeners)
        .await
        .expect("server starts");
    (server, config)
}

/// The lines this test binary logged so far with the given target.
pub(crate) fn logged_lines(target: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(log_path()).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["target"] == target)
        .collect()
}

/// This test binary's log file.
pub(crate) fn log_file() -> std::path::PathBuf {
    log_path()
}

fn log_path() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let name = exe
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("test")
        .to_owned();
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-logs")
        .join(format!("{name}-{}.log", std::process::id()))
}

/// Every test binary logs everything into `target/test-logs/`, where
/// `scripts/check_logs.py` looks for secrets after the suite.
pub(crate) fn capture_logs() {
    esign_gateway::telemetry::init_for_tests(&log_path());
}

/// Decoded ErrorInfo of a failed call.
pub(crate) fn error_info(status: &tonic::Status) -> tonic_types::ErrorInfo {
    use tonic_types::StatusExt as _;
    status
        .check_error_details()
        .expect("error details decode")
        .error_info()
        .cloned()
        .expect("every error carries ErrorInfo")
}

pub(crate) fn retry_delay(status: &tonic::Status) -> Option<Duration> {
    use tonic_types::StatusExt as _;
    status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
}

pub(crate) fn field_violations(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt as _;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// Polls `condition` every few milliseconds until it holds; panics with
/// `what` after five seconds. Tests wait for what they need (a request in
/// the simulator's log, a health state) instead of sleeping a fixed time.
pub(crate) async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A SENT Leegality document on the simulator: its id and its invitees'
/// UUIDs, in signing order.
pub(crate) fn seed_leegality(
    sim: &Simulator,
    irn: Option<&str>,
    invitees: &[(&str, &str)],
) -> (String, Vec<String>) {
    let now = sim.clock().now();
    let document = sim.leegality().seed_document(irn, invitees, now);
    (
        document.id,
        document.invitees.iter().map(|i| i.uuid.clone()).collect(),
    )
}

/// One Leegality invitee whose invitation can be resent.
pub(crate) fn seed_leegality_invitee(sim: &Simulator) -> String {
    seed_leegality(sim, Some("IRN-1"), &[("Asha", "asha.rao@example.com")])
        .1
        .remove(0)
}
