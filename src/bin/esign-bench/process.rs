//! Servers under test as child processes, read through /proc.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use esign_gateway::{
    ProviderKind,
    simulator::{Simulator, SimulatorConfig},
};
use serde::Serialize;
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[derive(Debug, Serialize, Default, Clone)]
pub(crate) struct ProcessReport {
    pub(crate) cpu_seconds: f64,
    pub(crate) cpu_us_per_rpc: f64,
    /// The part spent in the kernel (sockets, mostly).
    pub(crate) system_us_per_rpc: f64,
    pub(crate) peak_rss_mib: f64,
    /// CPU per call of this process (load generator and simulator) over the
    /// same time: what the server's calls cost on the other side of the
    /// socket, on the same two cores.
    pub(crate) bench_side_us_per_rpc: f64,
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A server under test, killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// (user + system, system) CPU seconds so far.
    pub(crate) fn cpu_seconds(&self) -> (f64, f64) {
        cpu_seconds_of(self.child.id())
    }

    pub(crate) fn status_mib(&self, key: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

pub(crate) fn process_report(server: &Server, before: (f64, f64), calls: u64) -> ProcessReport {
    let (total, system) = server.cpu_seconds();
    let calls = calls.max(1) as f64;
    ProcessReport {
        cpu_seconds: total - before.0,
        cpu_us_per_rpc: (total - before.0) * 1e6 / calls,
        system_us_per_rpc: (system - before.1) * 1e6 / calls,
        peak_rss_mib: server.status_mib("VmHWM:"),
        bench_side_us_per_rpc: 0.0,
    }
}

/// (user + system, system) CPU seconds so far of process `pid`.
pub(crate) fn cpu_seconds_of(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line.
    let hz = clock_ticks();
    ((ticks(11) + ticks(12)) / hz, ticks(12) / hz)
}

/// Clock ticks a second, asked of `getconf` once (not before every CPU
/// reading, some of which start a measured window).
pub(crate) fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

pub(crate) async fn wait_serving(addr: SocketAddr, service: &str) -> Duration {
    let started = Instant::now();
    loop {
        if let Ok(channel) = Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
        {
            let answer = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: service.to_owned(),
                })
                .await;
            if answer.is_ok_and(|a| a.into_inner().status == 1) {
                return started.elapsed();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "server at {addr} never became SERVING"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub(crate) fn sibling_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.with_file_name(name)
}

/// Runs this binary's `subcommand` (scenario A's server) on a free port,
/// its other `args` after `--port`, and waits until it serves.
pub(crate) async fn spawn_own_server(subcommand: &str, args: &[&str]) -> Server {
    let mut command = Command::new(std::env::current_exe().expect("own path"));
    command.arg(subcommand);
    spawn_server(command, args).await
}

/// Runs the sibling binary `name` (scenario N's server) on a free port, its
/// other `args` after `--port`, and waits until it serves.
pub(crate) async fn spawn_sibling_server(name: &str, args: &[&str]) -> Server {
    spawn_server(Command::new(sibling_binary(name)), args).await
}

async fn spawn_server(mut command: Command, args: &[&str]) -> Server {
    let port = free_port();
    let child = command
        .args(["--port", &port.to_string()])
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("start {:?}: {error}", command.get_program()));
    let server = Server {
        child,
        addr: format!("127.0.0.1:{port}").parse().expect("addr"),
    };
    wait_serving(server.addr, "").await;
    server
}

/// Starts target/release/esign-gateway with `env` over the benchmark's
/// settings (metrics and webhook intake off, no drain) and waits until it
/// serves.
pub(crate) async fn spawn_gateway(env: &[(&str, String)]) -> (Server, Duration) {
    spawn_gateway_binary(&sibling_binary("esign-gateway"), env).await
}

async fn spawn_gateway_binary(binary: &Path, env: &[(&str, String)]) -> (Server, Duration) {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .env_clear()
        .env("GATEWAY_LISTEN_ADDR", addr.to_string())
        // The defaults operators run with: logs at info (audit on) and the
        // metrics listener up; only its port is free rather than fixed.
        .env("GATEWAY_METRICS_ADDR", "127.0.0.1:0")
        .env("GATEWAY_WEBHOOK_ADDR", "off")
        .env("GATEWAY_DRAIN_SECONDS", "0")
        .env(
            "RUST_LOG",
            // To compare log levels on one build: ESIGN_BENCH_RUST_LOG=warn.
            std::env::var("ESIGN_BENCH_RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
        // As the image runs it (Dockerfile): mimalloc commits arena memory
        // as it is used, not a whole arena up front.
        .env("MIMALLOC_ARENA_EAGER_COMMIT", "0")
        // Allocator and tracing settings pass through, to compare them on
        // one build.
        .envs(
            std::env::vars()
                .filter(|(name, _)| name.starts_with("MIMALLOC_") || name.starts_with("OTEL_")),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let spawned = Instant::now();
    let child = command.spawn().unwrap_or_else(|error| {
        panic!(
            "start {} (build with cargo build --release --bins): {error}",
            binary.display()
        )
    });
    let server = Server { child, addr };
    wait_serving(addr, "esign.v1.InvitationService").await;
    (server, spawned.elapsed())
}

/// The gateway with the simulator's Leegality account.
pub(crate) async fn start_gateway(
    sim: &Simulator,
    max_in_flight: Option<usize>,
) -> (Server, Duration) {
    start_gateway_binary(sim, max_in_flight, &sibling_binary("esign-gateway")).await
}

/// As `start_gateway`, from the given build of the gateway.
pub(crate) async fn start_gateway_binary(
    sim: &Simulator,
    max_in_flight: Option<usize>,
    binary: &Path,
) -> (Server, Duration) {
    let mut env = vec![
        ("LEEGALITY_BASE_URL", sim.base_url(ProviderKind::Leegality)),
        (
            "LEEGALITY_AUTH_TOKEN",
            sim.config().credentials.leegality_auth_token.clone(),
        ),
    ];
    if let Some(limit) = max_in_flight {
        env.push(("GATEWAY_MAX_IN_FLIGHT", limit.to_string()));
    }
    spawn_gateway_binary(binary, &env).await
}

/// The provider simulator, on an ephemeral port in this process.
pub(crate) async fn start_simulator(config: SimulatorConfig) -> Simulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    Simulator::start(config, listener).await.expect("simulator")
}
