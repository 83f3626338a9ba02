//! B and N at one open-loop rate, in alternating rounds on fresh servers.
//!
//! The tail at a moderate rate on two shared cores swings from run to run
//! (BENCHMARKS.md), and what ran just before leaves traces in the machine:
//! a half-peak run right after the sweep's overloaded last step read a p99
//! several times that of the same build a minute later. So each figure is
//! the median of rounds, and the order alternates: odd rounds start with
//! N, even rounds with B, and neither always runs first.

use std::time::Duration;

use esign_gateway::simulator::Simulator;

use crate::{
    Args, open_loop, open_loop::OpenLoopReport, process::start_gateway, start_scenario_n,
    warmed_caller,
};

/// Each side's rounds, in the order they ran.
pub(crate) struct Rounds {
    pub(crate) b: Vec<OpenLoopReport>,
    pub(crate) n: Vec<OpenLoopReport>,
}

impl Rounds {
    /// The round with the median p99, of B or of N: a round that ran, so
    /// its p50, p99.9 and max belong together.
    pub(crate) fn median_by_p99(rounds: &[OpenLoopReport]) -> OpenLoopReport {
        let mut sorted: Vec<&OpenLoopReport> = rounds.iter().collect();
        sorted.sort_by(|x, y| x.p99_ms.total_cmp(&y.p99_ms));
        sorted[sorted.len() / 2].clone()
    }
}

/// `args.rounds` rounds of B and N at `rate`, each on a fresh server
/// warmed up with the closed-loop load; every round is printed.
pub(crate) async fn alternating(
    sim: &Simulator,
    args: &Args,
    invitation: &str,
    rate: f64,
    warmup: Duration,
    duration: Duration,
) -> Rounds {
    let n_name = if args.n_gateway.is_some() {
        "N (other build)"
    } else {
        "N"
    };
    let mut rounds = Rounds {
        b: Vec::new(),
        n: Vec::new(),
    };
    for round in 1..=args.rounds.max(1) {
        let order = if round % 2 == 1 {
            [false, true]
        } else {
            [true, false]
        };
        for is_b in order {
            let server = if is_b {
                start_gateway(sim, None).await.0
            } else {
                start_scenario_n(sim, args).await
            };
            let call = warmed_caller(&server, args, invitation, warmup).await;
            let report = open_loop::open_loop(rate, duration, None, call).await;
            drop(server);
            println!(
                "open loop {rate:.0}/s, {} (round {round}): p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms  failed {}",
                if is_b { "B" } else { n_name },
                report.p50_ms,
                report.p99_ms,
                report.p999_ms,
                report.max_ms,
                report.failed
            );
            if is_b {
                rounds.b.push(report);
            } else {
                rounds.n.push(report);
            }
        }
    }
    rounds
}
