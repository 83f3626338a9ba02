//! The benchmark: one command measures, side by side on this machine,
//!
//! - A: a bare tonic unary server (gRPC health Check), the floor for any gRPC service;
//! - B: the gateway serving ResendInvitation against the simulator;
//! - C: the same Leegality request sent straight to the simulator with reqwest;
//! - N: the naive bridge (the `esign-naive-bridge` binary): ResendInvitation as one tonic handler
//!   and one reqwest call, nothing else, as a team would write instead;
//!
//! then a scale run (simulator answers after 250 ms, 2,000 calls in flight),
//! on the gateway and then on N, and an overload run (4x the saturating concurrency against an in-flight
//! limit). Servers under test run as child processes so their CPU time and
//! RSS can be read from /proc. Prints a table and writes JSON.
// A load generator measures real elapsed time; the project-wide rule that
// time is read through `Clock` is for the gateway, not for this tool.
#![allow(clippy::disallowed_methods)]
#![forbid(unsafe_code)]

// The load generator and the simulator share the machine with the server
// under test; at 2,000 calls in flight glibc's malloc alone took a quarter
// of their CPU (BENCHMARKS.md). Scenario N keeps the default allocator in
// its own binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod at_rate;
mod bigdocs;
mod events;
mod load;
mod open_loop;
mod process;

use std::{path::PathBuf, pin::Pin, sync::Arc, time::Duration};

use clap::Parser;
use esign_gateway::{
    pb::{self, invitation_service_client::InvitationServiceClient},
    simulator::{Simulator, SimulatorConfig},
};

use crate::{
    load::{LoadReport, Outcome, load, load_staggered, open_connections, outcome_of},
    process::{
        ProcessReport, Server, cpu_seconds_of, process_report, spawn_own_server,
        spawn_sibling_server, start_gateway, start_gateway_binary, start_simulator,
    },
};
use serde::Serialize;
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
    /// Alternating rounds of B and N (at 64 in flight, and in the open loop
    /// at half the peak); their medians are reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Skip the open-loop, scale and overload runs.
    #[arg(long)]
    quick: bool,
    /// Only the scale runs (B, then N).
    #[arg(long)]
    scale_only: bool,
    /// Only the open loop at this fixed rate (calls a second): B and N
    /// alternately, each on a fresh server warmed up, for `--rounds`
    /// rounds. For studying the tail at one rate without the sweep.
    #[arg(long)]
    open_loop_rate: Option<f64>,
    /// Runs this esign-gateway binary (another build) in N's place, so that
    /// two builds compare in alternating rounds of one run: B is this
    /// build, N the other.
    #[arg(long)]
    n_gateway: Option<PathBuf>,
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
    /// creates of one large PDF each, with the default payload budget, then
    /// for one signNow upload and one download.
    Bigdocs {
        /// Size of each PDF, MB (10^6 bytes).
        #[arg(long, default_value_t = 14)]
        mb: usize,
        /// Simulator answer delay, milliseconds (keeps the creates overlapping).
        #[arg(long, default_value_t = 500)]
        latency_ms: u64,
        /// Size of the uploaded and downloaded file, MB.
        #[arg(long, default_value_t = 50)]
        transfer_mb: usize,
    },
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
    n_naive_bridge: LoadReport,
    n_naive_bridge_process: ProcessReport,
    /// B's throughput over N's (medians of the rounds): at least 1.0 is the goal.
    b_over_n: f64,
    b_rounds_rps: Vec<f64>,
    n_rounds_rps: Vec<f64>,
    /// B's CPU per call over N's: at most 1.1 is the goal.
    b_cpu_over_n: f64,
    b_over_a: f64,
    b_over_c: f64,
    gateway_start_to_serving_ms: f64,
    gateway_idle_rss_mib: f64,
    scale: Option<LoadReport>,
    scale_process: Option<ProcessReport>,
    /// N in the same scale run: how much of the tail is this machine's.
    scale_naive: Option<LoadReport>,
    overload: Option<LoadReport>,
    overload_in_flight_limit: Option<usize>,
    overload_goodput_of_peak: Option<f64>,
    /// B under a fixed arrival rate, raised step by step to its peak.
    open_loop_sweep: Vec<open_loop::OpenLoopReport>,
    open_loop_peak_rps: Option<f64>,
    /// B at half its open-loop peak, the round of median p99: the latency a
    /// sized deployment sees.
    open_loop_half_peak: Option<open_loop::OpenLoopReport>,
    /// N at that same rate, on the same machine, the same way.
    open_loop_half_peak_naive: Option<open_loop::OpenLoopReport>,
    /// Every round's p99 at half the peak, in the order run.
    open_loop_half_peak_rounds_p99_ms: Vec<f64>,
    open_loop_half_peak_naive_rounds_p99_ms: Vec<f64>,
}

/// Scenario N's server, as a child process like A's: the naive bridge, or
/// the gateway build given with `--n-gateway`.
async fn start_scenario_n(sim: &Simulator, args: &Args) -> Server {
    if let Some(binary) = &args.n_gateway {
        return start_gateway_binary(sim, None, binary).await.0;
    }
    spawn_sibling_server(
        "esign-naive-bridge",
        &[
            "--leegality-base-url",
            &sim.base_url(esign_gateway::ProviderKind::Leegality),
            "--token",
            &sim.config().credentials.leegality_auth_token,
        ],
    )
    .await
}

async fn run_gateway_load(
    server: &Server,
    invitation: &str,
    concurrency: usize,
    connections: usize,
    duration: Duration,
    honor_retry: bool,
) -> LoadReport {
    run_gateway_load_staggered(
        server,
        invitation,
        concurrency,
        connections,
        Duration::ZERO,
        duration,
        honor_retry,
    )
    .await
}

async fn run_gateway_load_staggered(
    server: &Server,
    invitation: &str,
    concurrency: usize,
    connections: usize,
    stagger: Duration,
    duration: Duration,
    honor_retry: bool,
) -> LoadReport {
    let call = resend_caller(server.addr, connections, invitation).await;
    load_staggered(concurrency, stagger, duration, honor_retry, call).await
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
        Some(Sub::Bigdocs {
            mb,
            latency_ms,
            transfer_mb,
        }) => {
            bigdocs::bigdocs_scenario(mb, Duration::from_millis(latency_ms)).await;
            bigdocs::transfer_scenario(transfer_mb).await;
            return;
        }
        Some(Sub::Events {
            watchers,
            events,
            concurrency,
        }) => {
            events::events_scenario(watchers, events, concurrency).await;
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
    let sim = start_simulator(config).await;
    let invitation = {
        let now = sim.clock().now();
        sim.leegality()
            .seed_document(None, &[("Bench", "bench@example.com")], now)
            .invitees[0]
            .uuid
            .clone()
    };

    if let Some(rate) = args.open_loop_rate {
        at_rate::alternating(&sim, &args, &invitation, rate, warmup, duration).await;
        return;
    }
    if args.scale_only {
        scale_runs(&sim, &args, &invitation, warmup, duration, &mut report).await;
        write_report(&args.json, &report);
        return;
    }

    // A: bare tonic.
    {
        let server = spawn_own_server("echo-server", &[]).await;
        let clients: Vec<_> = open_connections(server.addr, args.connections)
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

    // B and N in alternating rounds, each figure the median of the rounds,
    // so that drift on this shared machine hits both alike.
    {
        let n_name = match &args.n_gateway {
            Some(_) => "N other gateway build",
            None => "N naive bridge",
        };
        let (gateway, started) = start_gateway(&sim, None).await;
        report.gateway_start_to_serving_ms = started.as_secs_f64() * 1000.0;
        tokio::time::sleep(Duration::from_millis(500)).await;
        report.gateway_idle_rss_mib = gateway.status_mib("VmRSS:");
        let bridge = start_scenario_n(&sim, &args).await;
        for server in [&gateway, &bridge] {
            run_gateway_load(
                server,
                &invitation,
                args.concurrency,
                args.connections,
                warmup,
                false,
            )
            .await;
        }
        let mut rounds: Vec<[(LoadReport, ProcessReport); 2]> = Vec::new();
        for round in 1..=args.rounds.max(1) {
            let mut measured = Vec::with_capacity(2);
            for server in [&gateway, &bridge] {
                let cpu_before = server.cpu_seconds();
                let own_before = cpu_seconds_of(std::process::id());
                let load = run_gateway_load(
                    server,
                    &invitation,
                    args.concurrency,
                    args.connections,
                    duration,
                    false,
                )
                .await;
                let mut process = process_report(server, cpu_before, load.calls);
                process.bench_side_us_per_rpc =
                    (cpu_seconds_of(std::process::id()).0 - own_before.0) * 1e6
                        / load.calls.max(1) as f64;
                measured.push((load, process));
            }
            let [b, n]: [(LoadReport, ProcessReport); 2] =
                measured.try_into().expect("two scenarios");
            print_row(&format!("B gateway (round {round})"), &b.0);
            print_row(&format!("{n_name} (round {round})"), &n.0);
            rounds.push([b, n]);
        }
        let median_round = |which: usize| {
            let mut by_rps: Vec<&(LoadReport, ProcessReport)> =
                rounds.iter().map(|r| &r[which]).collect();
            by_rps.sort_by(|x, y| x.0.rps.total_cmp(&y.0.rps));
            by_rps[by_rps.len() / 2].clone()
        };
        // CPU figures are the medians of their own, across rounds.
        let median_of = |which: usize, figure: fn(&ProcessReport) -> f64| {
            let mut values: Vec<f64> = rounds.iter().map(|r| figure(&r[which].1)).collect();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        (report.b_gateway, report.b_gateway_process) = median_round(0);
        (report.n_naive_bridge, report.n_naive_bridge_process) = median_round(1);
        for (which, process) in [
            (0, &mut report.b_gateway_process),
            (1, &mut report.n_naive_bridge_process),
        ] {
            process.cpu_us_per_rpc = median_of(which, |p| p.cpu_us_per_rpc);
            process.bench_side_us_per_rpc = median_of(which, |p| p.bench_side_us_per_rpc);
        }
        report.b_rounds_rps = rounds.iter().map(|r| r[0].0.rps).collect();
        report.n_rounds_rps = rounds.iter().map(|r| r[1].0.rps).collect();
        print_row("B gateway (median)", &report.b_gateway);
        print_row(&format!("{n_name} (median)"), &report.n_naive_bridge);
        report.b_over_n = report.b_gateway.rps / report.n_naive_bridge.rps.max(1.0);
        report.b_cpu_over_n = report.b_gateway_process.cpu_us_per_rpc
            / report.n_naive_bridge_process.cpu_us_per_rpc.max(0.001);
        println!(
            "B/N {:.2} in throughput; CPU per call B {:.1} us, N {:.1} us (B/N {:.2}); medians of {} alternating rounds",
            report.b_over_n,
            report.b_gateway_process.cpu_us_per_rpc,
            report.n_naive_bridge_process.cpu_us_per_rpc,
            report.b_cpu_over_n,
            rounds.len()
        );
        println!(
            "load generator and simulator CPU per call: with B {:.1} us, with N {:.1} us",
            report.b_gateway_process.bench_side_us_per_rpc,
            report.n_naive_bridge_process.bench_side_us_per_rpc,
        );
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
        // Open loop: B's peak found by a rate sweep, then its latency at
        // half that rate, timed from each call's intended start.
        let (server, call) = warmed_gateway(&sim, &args, &invitation, warmup).await;
        let steps = open_loop::sweep(
            (report.b_gateway.rps * 0.5).max(100.0),
            Duration::from_secs(5),
            call.clone(),
        )
        .await;
        let peak = steps
            .iter()
            .filter(|s| s.kept_up())
            .map(|s| s.target_rps)
            .fold(0.0, f64::max);
        report.open_loop_sweep = steps;
        drop(server);
        if peak > 0.0 {
            // Fresh servers, warmed up: the sweep's last step overloads the
            // gateway it ran on, and this measures steady state, not
            // recovery. N at the same rate says how much of the tail is this
            // machine's (two cores shared by three processes).
            let rounds =
                at_rate::alternating(&sim, &args, &invitation, peak / 2.0, warmup, duration).await;
            let (half, naive) = (
                at_rate::Rounds::median_by_p99(&rounds.b),
                at_rate::Rounds::median_by_p99(&rounds.n),
            );
            let p99s = |reports: &[open_loop::OpenLoopReport]| -> Vec<f64> {
                reports.iter().map(|r| r.p99_ms).collect()
            };
            println!(
                "open loop at half of B's peak ({:.0}/s of {:.0}/s), the round of median p99 of {}: p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
                peak / 2.0,
                peak,
                rounds.b.len(),
                half.p50_ms,
                half.p99_ms,
                half.p999_ms,
                half.max_ms
            );
            println!(
                "open loop, N at the same rate, the same way: p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
                naive.p50_ms, naive.p99_ms, naive.p999_ms, naive.max_ms
            );
            report.open_loop_peak_rps = Some(peak);
            report.open_loop_half_peak_rounds_p99_ms = p99s(&rounds.b);
            report.open_loop_half_peak_naive_rounds_p99_ms = p99s(&rounds.n);
            report.open_loop_half_peak = Some(half);
            report.open_loop_half_peak_naive = Some(naive);
        }

        // Scale: slow provider, many calls in flight; N the same way.
        scale_runs(&sim, &args, &invitation, warmup, duration, &mut report).await;

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

    write_report(&args.json, &report);
}

fn write_report(path: &std::path::Path, report: &Report) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(path, serde_json::to_string_pretty(report).expect("json"))
        .expect("write report");
    println!("report: {}", path.display());
}

/// The scale run on a fresh gateway, then on scenario N's server.
async fn scale_runs(
    sim: &Simulator,
    args: &Args,
    invitation: &str,
    warmup: Duration,
    duration: Duration,
    report: &mut Report,
) {
    let (scale, process) = scale_run(sim, args, invitation, Scenario::B, warmup, duration).await;
    report.scale_process = Some(process);
    report.scale = Some(scale);
    let (scale, _) = scale_run(sim, args, invitation, Scenario::N, warmup, duration).await;
    report.scale_naive = Some(scale);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    B,
    N,
}

/// The scale run: the simulator answers after `--scale-latency-ms`, and
/// `--scale-concurrency` callers keep one call each in flight, their first
/// calls spread over one latency, on a fresh server of `scenario`.
async fn scale_run(
    sim: &Simulator,
    args: &Args,
    invitation: &str,
    scenario: Scenario,
    warmup: Duration,
    duration: Duration,
) -> (LoadReport, ProcessReport) {
    sim.set_latency(Duration::from_millis(args.scale_latency_ms));
    let server = match scenario {
        Scenario::B => start_gateway(sim, None).await.0,
        Scenario::N => start_scenario_n(sim, args).await,
    };
    let connections = args.connections.max(args.scale_concurrency / 250);
    // Callers begin spread over one provider latency (see
    // `load_staggered`), as long-running callers are.
    let stagger = Duration::from_millis(args.scale_latency_ms);
    run_gateway_load_staggered(
        &server,
        invitation,
        args.scale_concurrency,
        connections,
        stagger,
        warmup,
        false,
    )
    .await;
    let cpu_before = server.cpu_seconds();
    let scale = run_gateway_load_staggered(
        &server,
        invitation,
        args.scale_concurrency,
        connections,
        stagger,
        duration,
        false,
    )
    .await;
    let process = process_report(&server, cpu_before, scale.calls);
    let name = match scenario {
        Scenario::B => "scale (250 ms provider)",
        Scenario::N if args.n_gateway.is_some() => "scale, other gateway build",
        Scenario::N => "scale, N naive bridge",
    };
    print_row(name, &scale);
    println!(
        "{name}: peak RSS {:.1} MiB, CPU {:.1} us/RPC",
        process.peak_rss_mib, process.cpu_us_per_rpc
    );
    drop(server);
    sim.set_latency(Duration::ZERO);
    (scale, process)
}

/// A fresh gateway warmed up with B's closed-loop load, and a caller of
/// resends for the open loop.
async fn warmed_gateway(
    sim: &Simulator,
    args: &Args,
    invitation: &str,
    warmup: Duration,
) -> (
    Server,
    impl Fn(usize) -> Pin<Box<dyn Future<Output = Outcome> + Send>> + Clone + Send + Sync + 'static,
) {
    let (server, _) = start_gateway(sim, None).await;
    let call = warmed_caller(&server, args, invitation, warmup).await;
    (server, call)
}

/// `server` (the gateway or the naive bridge) warmed up with the
/// closed-loop load, and a caller of resends for the open loop.
async fn warmed_caller(
    server: &Server,
    args: &Args,
    invitation: &str,
    warmup: Duration,
) -> impl Fn(usize) -> Pin<Box<dyn Future<Output = Outcome> + Send>>
+ Clone
+ Send
+ Sync
+ 'static
+ use<> {
    let call = resend_caller(server.addr, args.connections, invitation).await;
    run_gateway_load(
        server,
        invitation,
        args.concurrency,
        args.connections,
        warmup,
        false,
    )
    .await;
    call
}

/// One Leegality resend per call of the returned closure, spread over
/// `connections` HTTP/2 connections to the server at `addr` (the gateway or
/// the naive bridge), for the closed and the open loop alike.
async fn resend_caller(
    addr: std::net::SocketAddr,
    connections: usize,
    invitation: &str,
) -> impl Fn(usize) -> Pin<Box<dyn Future<Output = Outcome> + Send>>
+ Clone
+ Send
+ Sync
+ 'static
+ use<> {
    let clients: Arc<Vec<_>> = Arc::new(
        open_connections(addr, connections)
            .await
            .into_iter()
            .map(InvitationServiceClient::new)
            .collect(),
    );
    let invitation = invitation.to_owned();
    move |index: usize| {
        let mut client = clients[index % clients.len()].clone();
        let request = pb::ResendInvitationRequest {
            provider: pb::Provider::Leegality as i32,
            invitation_id: invitation.clone(),
            ..Default::default()
        };
        Box::pin(async move { outcome_of(client.resend_invitation(request).await) })
            as Pin<Box<dyn Future<Output = Outcome> + Send>>
    }
}
