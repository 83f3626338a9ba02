//! The benchmark: one command measures, side by side on this machine,
//!
//! - A: a bare tonic unary server (gRPC health Check), the floor for any gRPC service;
//! - B: the gateway serving ResendInvitation against the simulator;
//! - C: the same Leegality request sent straight to the simulator with reqwest;
//!
//! then a scale run (simulator answers after 250 ms, 2,000 calls in flight)
//! and an overload run (4x the saturating concurrency against an in-flight
//! limit). Servers under test run as child processes so their CPU time and
//! RSS can be read from /proc. Prints a table and writes JSON.
// A load generator measures real elapsed time; the project-wide rule that
// time is read through `Clock` is for the gateway, not for this tool.
#![allow(clippy::disallowed_methods)]
#![forbid(unsafe_code)]

use std::{
    collections::BTreeMap,
    future::Future,
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Parser;
use esign_gateway::{
    pb::{self, invitation_service_client::InvitationServiceClient},
    simulator::{Simulator, SimulatorConfig},
};
use serde::Serialize;
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[derive(Parser, Debug)]
#[command(about = "esign-gateway benchmark")]
struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
    /// Seconds measured per scenario.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of warm-up before each measurement.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Calls in flight for A, B and C.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// HTTP/2 connections the load generator spreads calls over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Calls in flight in the scale run.
    #[arg(long, default_value_t = 2000)]
    scale_concurrency: usize,
    /// Simulator latency in the scale run, milliseconds.
    #[arg(long, default_value_t = 250)]
    scale_latency_ms: u64,
    /// Skip the scale and overload runs.
    #[arg(long)]
    quick: bool,
    /// Where to write the JSON report.
    #[arg(long, default_value = "target/bench/report.json")]
    json: PathBuf,
}

#[derive(clap::Subcommand, Debug)]
enum Sub {
    /// Scenario A's server: tonic with the health service only.
    EchoServer {
        #[arg(long)]
        port: u16,
    },
    /// Events: signed signNow webhooks into the intake, out to many
    /// WatchEvents streams; webhook-to-watcher latency and events a second.
    Events {
        #[arg(long, default_value_t = 100)]
        watchers: usize,
        #[arg(long, default_value_t = 2000)]
        events: usize,
        /// Webhooks posted at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// Large documents: peak RSS of the gateway for concurrent Leegality
    /// creates of one large PDF each, with the default payload budget.
    Bigdocs {
        /// Size of each PDF, MB (10^6 bytes).
        #[arg(long, default_value_t = 14)]
        mb: usize,
        /// Simulator answer delay, milliseconds (keeps the creates overlapping).
        #[arg(long, default_value_t = 500)]
        latency_ms: u64,
    },
}

/// How one call ended, as the load generator counts it.
enum Outcome {
    Ok,
    Failed {
        code: String,
        retry_after: Option<Duration>,
    },
}

#[derive(Debug, Serialize, Default, Clone)]
struct LoadReport {
    concurrency: usize,
    seconds: f64,
    calls: u64,
    ok: u64,
    rps: f64,
    ok_rps: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    errors_by_code: BTreeMap<String, u64>,
    /// Latency of failed calls (e.g. shed ones).
    failed_p99_ms: f64,
    /// Failed calls that carried RetryInfo.
    failed_with_retry_info: u64,
}

#[derive(Debug, Serialize, Default)]
struct ProcessReport {
    cpu_seconds: f64,
    cpu_us_per_rpc: f64,
    /// The part spent in the kernel (sockets, mostly).
    system_us_per_rpc: f64,
    peak_rss_mib: f64,
}

#[derive(Debug, Serialize, Default)]
struct Report {
    machine: String,
    a_bare_tonic: LoadReport,
    /// CPU of the bare tonic server: the floor the gateway is compared to.
    a_bare_tonic_process: ProcessReport,
    b_gateway: LoadReport,
    b_gateway_process: ProcessReport,
    c_direct_http: LoadReport,
    b_over_a: f64,
    b_over_c: f64,
    gateway_start_to_serving_ms: f64,
    gateway_idle_rss_mib: f64,
    scale: Option<LoadReport>,
    scale_process: Option<ProcessReport>,
    overload: Option<LoadReport>,
    overload_in_flight_limit: Option<usize>,
    overload_goodput_of_peak: Option<f64>,
}

/// Runs `call` from `concurrency` tasks for `duration`; `honor_retry` makes
/// a task wait out a failed call's RetryInfo, as a well-behaved client does.
async fn load<F, Fut>(
    concurrency: usize,
    duration: Duration,
    honor_retry: bool,
    call: F,
) -> LoadReport
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let end = started + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|index| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut ok = Vec::with_capacity(4096);
                let mut failed = Vec::new();
                let mut codes: BTreeMap<String, u64> = BTreeMap::new();
                let mut with_retry = 0u64;
                while Instant::now() < end {
                    let begun = Instant::now();
                    let outcome = call(index).await;
                    let micros = begun.elapsed().as_micros() as u32;
                    match outcome {
                        Outcome::Ok => ok.push(micros),
                        Outcome::Failed { code, retry_after } => {
                            failed.push(micros);
                            *codes.entry(code).or_default() += 1;
                            if let Some(delay) = retry_after {
                                with_retry += 1;
                                if honor_retry {
                                    tokio::time::sleep(delay.min(end - Instant::now().min(end)))
                                        .await;
                                }
                            }
                        }
                    }
                }
                (ok, failed, codes, with_retry)
            })
        })
        .collect();
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    let mut with_retry = 0;
    for task in tasks {
        let (o, f, c, r) = task.await.expect("load task");
        ok.extend(o);
        failed.extend(f);
        for (code, count) in c {
            *codes.entry(code).or_default() += count;
        }
        with_retry += r;
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut all: Vec<u32> = ok.iter().chain(failed.iter()).copied().collect();
    all.sort_unstable();
    failed.sort_unstable();
    let calls = all.len() as u64;
    LoadReport {
        concurrency,
        seconds,
        calls,
        ok: ok.len() as u64,
        rps: calls as f64 / seconds,
        ok_rps: ok.len() as f64 / seconds,
        p50_ms: percentile(&all, 0.50),
        p90_ms: percentile(&all, 0.90),
        p99_ms: percentile(&all, 0.99),
        p999_ms: percentile(&all, 0.999),
        errors_by_code: codes,
        failed_p99_ms: percentile(&failed, 0.99),
        failed_with_retry_info: with_retry,
    }
}

/// The `q` quantile of sorted microsecond samples, in milliseconds.
fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

fn outcome_of<T>(result: Result<T, tonic::Status>) -> Outcome {
    use tonic_types::StatusExt as _;
    match result {
        Ok(_) => Outcome::Ok,
        Err(status) => Outcome::Failed {
            code: format!("{:?}", status.code()),
            retry_after: status
                .get_details_retry_info()
                .and_then(|info| info.retry_delay),
        },
    }
}

async fn channels(addr: SocketAddr, count: usize) -> Vec<Channel> {
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count {
        channels.push(
            Channel::from_shared(format!("http://{addr}"))
                .expect("uri")
                .tcp_nodelay(true)
                .connect()
                .await
                .expect("connect"),
        );
    }
    channels
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A server under test, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// (user + system, system) CPU seconds so far.
    fn cpu_seconds(&self) -> (f64, f64) {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
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

    fn status_mib(&self, key: &str) -> f64 {
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

fn process_report(server: &Server, before: (f64, f64), calls: u64) -> ProcessReport {
    let (total, system) = server.cpu_seconds();
    let calls = calls.max(1) as f64;
    ProcessReport {
        cpu_seconds: total - before.0,
        cpu_us_per_rpc: (total - before.0) * 1e6 / calls,
        system_us_per_rpc: (system - before.1) * 1e6 / calls,
        peak_rss_mib: server.status_mib("VmHWM:"),
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

async fn wait_serving(addr: SocketAddr, service: &str) -> Duration {
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

fn sibling_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.with_file_name(name)
}

async fn start_gateway(sim: &Simulator, max_in_flight: Option<usize>) -> (Server, Duration) {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut command = Command::new(sibling_binary("esign-gateway"));
    command
        .arg("serve")
        .env_clear()
        .env("GATEWAY_LISTEN_ADDR", addr.to_string())
        .env("GATEWAY_METRICS_ADDR", "off")
        .env("GATEWAY_DRAIN_SECONDS", "0")
        .env("RUST_LOG", "warn")
        .env(
            "LEEGALITY_BASE_URL",
            sim.base_url(esign_gateway::ProviderKind::Leegality),
        )
        .env(
            "LEEGALITY_AUTH_TOKEN",
            &sim.config().credentials.leegality_auth_token,
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(limit) = max_in_flight {
        command.env("GATEWAY_MAX_IN_FLIGHT", limit.to_string());
    }
    let spawned = Instant::now();
    let child = command
        .spawn()
        .expect("start target/release/esign-gateway (build with cargo build --release --bins)");
    let server = Server { child, addr };
    wait_serving(addr, "esign.v1.InvitationService").await;
    (server, spawned.elapsed())
}

async fn run_gateway_load(
    server: &Server,
    invitation: &str,
    concurrency: usize,
    connections: usize,
    duration: Duration,
    honor_retry: bool,
) -> LoadReport {
    let clients: Vec<_> = channels(server.addr, connections)
        .await
        .into_iter()
        .map(InvitationServiceClient::new)
        .collect();
    let invitation = invitation.to_owned();
    load(concurrency, duration, honor_retry, move |index| {
        let mut client = clients[index % clients.len()].clone();
        let request = pb::ResendInvitationRequest {
            provider: pb::Provider::Leegality as i32,
            invitation_id: invitation.clone(),
            ..Default::default()
        };
        async move { outcome_of(client.resend_invitation(request).await) }
    })
    .await
}

fn print_row(name: &str, report: &LoadReport) {
    println!(
        "{name:<28} {:>9.0} rps  p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  errors {:?}",
        report.rps,
        report.p50_ms,
        report.p90_ms,
        report.p99_ms,
        report.p999_ms,
        report.errors_by_code
    );
}

async fn echo_server(port: u16) {
    let (_reporter, health) = tonic_health::server::health_reporter();
    tonic::transport::Server::builder()
        .add_service(health)
        .serve(format!("127.0.0.1:{port}").parse().expect("addr"))
        .await
        .expect("echo server");
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match args.command {
        Some(Sub::EchoServer { port }) => {
            echo_server(port).await;
            return;
        }
        Some(Sub::Bigdocs { mb, latency_ms }) => {
            bigdocs_scenario(mb, Duration::from_millis(latency_ms)).await;
            return;
        }
        Some(Sub::Events {
            watchers,
            events,
            concurrency,
        }) => {
            events_scenario(watchers, events, concurrency).await;
            return;
        }
        None => {}
    }
    let duration = Duration::from_secs(args.duration);
    let warmup = Duration::from_secs(args.warmup);
    let mut report = Report {
        machine: format!(
            "{} cores; load generator, simulator and servers share them",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
        ..Report::default()
    };

    let config = SimulatorConfig {
        unlimited_resends: true,
        record_requests: false,
        ..SimulatorConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let sim = Simulator::start(config, listener).await.expect("simulator");
    let invitation = {
        let now = sim.clock().now();
        sim.leegality()
            .seed_document(None, &[("Bench", "bench@example.com")], now)
            .invitees[0]
            .uuid
            .clone()
    };

    // A: bare tonic.
    {
        let port = free_port();
        let child = Command::new(std::env::current_exe().expect("own path"))
            .args(["echo-server", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .expect("echo server");
        let server = Server {
            child,
            addr: format!("127.0.0.1:{port}").parse().expect("addr"),
        };
        wait_serving(server.addr, "").await;
        let clients: Vec<_> = channels(server.addr, args.connections)
            .await
            .into_iter()
            .map(HealthClient::new)
            .collect();
        let clients = Arc::new(clients);
        let call = {
            let clients = clients.clone();
            move |index: usize| {
                let mut client = clients[index % clients.len()].clone();
                async move {
                    outcome_of(
                        client
                            .check(HealthCheckRequest {
                                service: String::new(),
                            })
                            .await,
                    )
                }
            }
        };
        load(args.concurrency, warmup, false, call.clone()).await;
        let cpu_before = server.cpu_seconds();
        report.a_bare_tonic = load(args.concurrency, duration, false, call).await;
        report.a_bare_tonic_process =
            process_report(&server, cpu_before, report.a_bare_tonic.calls);
        print_row("A bare tonic", &report.a_bare_tonic);
        println!(
            "A: server CPU {:.1} us/RPC ({:.1} in the kernel)",
            report.a_bare_tonic_process.cpu_us_per_rpc,
            report.a_bare_tonic_process.system_us_per_rpc
        );
    }

    // B: the gateway.
    {
        let (server, started) = start_gateway(&sim, None).await;
        report.gateway_start_to_serving_ms = started.as_secs_f64() * 1000.0;
        tokio::time::sleep(Duration::from_millis(500)).await;
        report.gateway_idle_rss_mib = server.status_mib("VmRSS:");
        run_gateway_load(
            &server,
            &invitation,
            args.concurrency,
            args.connections,
            warmup,
            false,
        )
        .await;
        let cpu_before = server.cpu_seconds();
        report.b_gateway = run_gateway_load(
            &server,
            &invitation,
            args.concurrency,
            args.connections,
            duration,
            false,
        )
        .await;
        report.b_gateway_process = process_report(&server, cpu_before, report.b_gateway.calls);
        print_row("B gateway", &report.b_gateway);
    }

    // C: the same request straight to the simulator.
    {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .tcp_nodelay(true)
            .build()
            .expect("client");
        let url = format!(
            "{}/v3.0/sign/request/resend",
            sim.base_url(esign_gateway::ProviderKind::Leegality)
        );
        let token = sim.config().credentials.leegality_auth_token.clone();
        let body =
            serde_json::to_vec(&serde_json::json!({"signUrls": [invitation]})).expect("body");
        let call = move |_: usize| {
            let request = http
                .post(&url)
                .header("x-auth-token", &token)
                .header("content-type", "application/json")
                .body(body.clone());
            async move {
                match request.send().await {
                    Ok(response) if response.status().is_success() => {
                        match response
                            .bytes()
                            .await
                            .map(|b| serde_json::from_slice::<serde_json::Value>(&b).is_ok())
                        {
                            Ok(true) => Outcome::Ok,
                            _ => Outcome::Failed {
                                code: "body".into(),
                                retry_after: None,
                            },
                        }
                    }
                    Ok(response) => Outcome::Failed {
                        code: response.status().to_string(),
                        retry_after: None,
                    },
                    Err(_) => Outcome::Failed {
                        code: "transport".into(),
                        retry_after: None,
                    },
                }
            }
        };
        let call = Arc::new(call);
        let warm = call.clone();
        load(args.concurrency, warmup, false, move |i| warm(i)).await;
        let measured = call.clone();
        report.c_direct_http = load(args.concurrency, duration, false, move |i| measured(i)).await;
        print_row("C direct HTTP", &report.c_direct_http);
    }
    report.b_over_a = report.b_gateway.rps / report.a_bare_tonic.rps.max(1.0);
    report.b_over_c = report.b_gateway.rps / report.c_direct_http.rps.max(1.0);
    println!(
        "B/A {:.2}  B/C {:.2}  gateway CPU {:.1} us/RPC ({:.1} in the kernel)  peak RSS {:.1} MiB  idle RSS {:.1} MiB  start to SERVING {:.0} ms",
        report.b_over_a,
        report.b_over_c,
        report.b_gateway_process.cpu_us_per_rpc,
        report.b_gateway_process.system_us_per_rpc,
        report.b_gateway_process.peak_rss_mib,
        report.gateway_idle_rss_mib,
        report.gateway_start_to_serving_ms
    );

    if !args.quick {
        // Scale: slow provider, many calls in flight.
        sim.set_latency(Duration::from_millis(args.scale_latency_ms));
        let (server, _) = start_gateway(&sim, None).await;
        let connections = args.connections.max(args.scale_concurrency / 250);
        run_gateway_load(
            &server,
            &invitation,
            args.scale_concurrency,
            connections,
            warmup,
            false,
        )
        .await;
        let cpu_before = server.cpu_seconds();
        let scale = run_gateway_load(
            &server,
            &invitation,
            args.scale_concurrency,
            connections,
            duration,
            false,
        )
        .await;
        report.scale_process = Some(process_report(&server, cpu_before, scale.calls));
        print_row("scale (250 ms provider)", &scale);
        println!(
            "scale: gateway peak RSS {:.1} MiB",
            report
                .scale_process
                .as_ref()
                .map_or(0.0, |p| p.peak_rss_mib)
        );
        report.scale = Some(scale);
        drop(server);
        sim.set_latency(Duration::ZERO);

        // Overload: 4x the concurrency that saturates B, against a limit of
        // that concurrency; shed callers wait out RetryInfo.
        let limit = args.concurrency;
        let (server, _) = start_gateway(&sim, Some(limit)).await;
        run_gateway_load(
            &server,
            &invitation,
            limit * 4,
            args.connections,
            warmup,
            true,
        )
        .await;
        let overload = run_gateway_load(
            &server,
            &invitation,
            limit * 4,
            args.connections,
            duration,
            true,
        )
        .await;
        print_row("overload (4x, limit)", &overload);
        report.overload_goodput_of_peak = Some(overload.ok_rps / report.b_gateway.rps.max(1.0));
        println!(
            "overload: goodput {:.0}% of B's peak; {} failed calls, {} with RetryInfo, failed p99 {:.2} ms",
            overload.ok_rps / report.b_gateway.rps.max(1.0) * 100.0,
            overload.calls - overload.ok,
            overload.failed_with_retry_info,
            overload.failed_p99_ms
        );
        report.overload_in_flight_limit = Some(limit);
        report.overload = Some(overload);
    }

    if let Some(dir) = args.json.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(
        &args.json,
        serde_json::to_string_pretty(&report).expect("json"),
    )
    .expect("write report");
    println!("report: {}", args.json.display());
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<u32> = (1..=1000).map(|n| n * 1000).collect();
        assert_eq!(percentile(&samples, 0.5), 500.0);
        assert_eq!(percentile(&samples, 0.99), 990.0);
        assert_eq!(percentile(&samples, 0.999), 999.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}

/// Webhook to watcher: the gateway (a child process, in-process log) with
/// `watchers` WatchEvents streams open; `events` signed signNow webhooks are
/// posted, `concurrency` at a time. Each event's latency runs from just
/// before its webhook is posted to its arrival at a watcher (every watcher
/// counts); the rate is events recorded per second until the last watcher
/// has the last one.
async fn events_scenario(watchers: usize, events: usize, concurrency: usize) {
    use futures_util::StreamExt as _;
    use pb::event_service_client::EventServiceClient;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let sim = Simulator::start(SimulatorConfig::default(), listener)
        .await
        .expect("simulator");
    let port = free_port();
    let webhook_port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let secret = sim.config().credentials.signnow_webhook_secret.clone();
    let child = Command::new(sibling_binary("esign-gateway"))
        .arg("serve")
        .env_clear()
        .env("GATEWAY_LISTEN_ADDR", addr.to_string())
        .env("GATEWAY_METRICS_ADDR", "off")
        .env("GATEWAY_WEBHOOK_ADDR", format!("127.0.0.1:{webhook_port}"))
        .env("GATEWAY_DRAIN_SECONDS", "0")
        .env("RUST_LOG", "warn")
        .env(
            "SIGNNOW_BASE_URL",
            sim.base_url(esign_gateway::ProviderKind::SignNow),
        )
        .env("SIGNNOW_ACCESS_TOKEN", "unused-by-this-scenario")
        .env("SIGNNOW_WEBHOOK_SECRET", &secret)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start target/release/esign-gateway");
    let server = Server { child, addr };
    wait_serving(addr, "esign.v1.InvitationService").await;

    let sent_at: Arc<std::sync::Mutex<Vec<Option<Instant>>>> =
        Arc::new(std::sync::Mutex::new(vec![None; events]));
    let channels = channels(addr, 4).await;
    let mut readers = Vec::new();
    for index in 0..watchers {
        let mut stream = EventServiceClient::new(channels[index % channels.len()].clone())
            .watch_events(pb::WatchEventsRequest::default())
            .await
            .expect("watch")
            .into_inner();
        let sent_at = sent_at.clone();
        readers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(events);
            while latencies.len() < events {
                let Some(Ok(event)) = stream.next().await else {
                    break;
                };
                let number: usize = event
                    .document_id
                    .trim_start_matches("bench-")
                    .parse()
                    .unwrap_or(0);
                if let Some(Some(at)) = sent_at.lock().unwrap().get(number).copied() {
                    latencies.push(at.elapsed());
                }
            }
            (latencies, Instant::now())
        }));
    }
    let url = format!("http://127.0.0.1:{webhook_port}/webhooks/signnow/default");
    let http = reqwest::Client::new();
    let started = Instant::now();
    futures_util::stream::iter(0..events)
        .for_each_concurrent(concurrency, |number| {
            let http = http.clone();
            let url = url.clone();
            let secret = secret.clone();
            let sent_at = sent_at.clone();
            async move {
                let outgoing = esign_gateway::simulator::webhooks::signnow(
                    &secret,
                    "document.fieldinvite.signed",
                    serde_json::json!({"document_id": format!("bench-{number}"), "invite_id": format!("fi-{number}"), "status": "fulfilled"}),
                    chrono::DateTime::from_timestamp(1_700_000_000 + number as i64, 0).unwrap_or_default(),
                );
                sent_at.lock().unwrap()[number] = Some(Instant::now());
                let mut request = http.post(&url).body(outgoing.body);
                for (name, value) in outgoing.headers {
                    request = request.header(name, value);
                }
                let _ = request.send().await;
            }
        })
        .await;
    let mut all = Vec::new();
    let mut last = started;
    for reader in readers {
        let (latencies, done) = reader.await.expect("reader");
        last = last.max(done);
        all.extend(latencies);
    }
    all.sort();
    let pick = |q: f64| {
        all.get(((all.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    println!(
        "events: {watchers} watchers, {events} webhooks ({concurrency} at once): {} deliveries, \
         webhook-to-watcher p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {:.0} events/s recorded and fanned out",
        all.len(),
        pick(0.5).as_secs_f64() * 1000.0,
        pick(0.99).as_secs_f64() * 1000.0,
        pick(1.0).as_secs_f64() * 1000.0,
        events as f64 / (last - started).as_secs_f64(),
    );
    drop(server);
}

/// For 1, 4 and 8 concurrent creates (a fresh gateway each, so VmHWM is the
/// peak of that run): peak RSS over idle, OK and shed counts, and how many
/// creates reached the simulator.
async fn bigdocs_scenario(mb: usize, latency: Duration) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let sim = Simulator::start(SimulatorConfig::default(), listener)
        .await
        .expect("simulator");
    sim.set_latency(latency);
    let mut file = b"%PDF-1.7\n".to_vec();
    file.resize(mb * 1_000_000, b' ');
    let file = bytes::Bytes::from(file);
    println!("bigdocs: {mb} MB PDF per Leegality create, simulator answers after {latency:?}");
    for concurrency in [1usize, 4, 8] {
        let (server, _) = start_gateway(&sim, None).await;
        let idle = server.status_mib("VmRSS:");
        let creates_before = leegality_creates(&sim);
        let channel = channels(server.addr, 1).await.remove(0);
        let calls = (0..concurrency).map(|_| {
            let mut client = InvitationServiceClient::new(channel.clone())
                .max_encoding_message_size(32 * 1024 * 1024);
            let request = pb::SendInvitationRequest {
                provider: pb::Provider::Leegality as i32,
                request_id: uuid::Uuid::new_v4().to_string(),
                signers: vec![pb::Signer {
                    name: "Asha Rao".into(),
                    email: "asha@example.com".into(),
                    ..Default::default()
                }],
                provider_options: Some(pb::send_invitation_request::ProviderOptions::Leegality(
                    pb::LeegalityOptions {
                        profile_id: "wfDemo01".into(),
                        file_name: "large.pdf".into(),
                        file: file.clone(),
                    },
                )),
                ..Default::default()
            };
            async move { client.send_invitation(request).await }
        });
        let results = futures_util::future::join_all(calls).await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let shed_with_retry = results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .filter(|s| {
                s.code() == tonic::Code::ResourceExhausted
                    && tonic_types::StatusExt::get_details_retry_info(*s).is_some()
            })
            .count();
        let other: Vec<_> = results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .filter(|s| s.code() != tonic::Code::ResourceExhausted)
            .map(|s| format!("{:?}", s.code()))
            .collect();
        let peak = server.status_mib("VmHWM:");
        let reached = leegality_creates(&sim) - creates_before;
        println!(
            "bigdocs: {concurrency} at once: idle RSS {idle:.1} MiB, peak RSS {peak:.1} MiB (+{:.1}), OK {ok}, shed with RetryInfo {shed_with_retry}, other {other:?}, creates at the simulator {reached}",
            peak - idle
        );
    }
}

fn leegality_creates(sim: &Simulator) -> usize {
    sim.requests_for(esign_gateway::ProviderKind::Leegality)
        .iter()
        .filter(|r| r.method == http::Method::POST && r.path == "/v3.0/sign/request")
        .count()
}
