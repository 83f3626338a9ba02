//! Open-loop load: calls start at a fixed arrival rate whatever happened to
//! earlier ones, and each latency is measured from the call's intended start
//! in an HDR histogram. A closed loop waits for answers before sending more,
//! so under overload it sends less and under-reports the tail (coordinated
//! omission); this does not.

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::load::Outcome;

#[derive(Debug, Serialize, Default, Clone)]
pub(crate) struct OpenLoopReport {
    pub(crate) target_rps: f64,
    pub(crate) achieved_ok_rps: f64,
    pub(crate) calls: u64,
    pub(crate) failed: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: f64,
    pub(crate) max_ms: f64,
}

/// Starts `call` at `rate` per second for `duration`, then waits (at most
/// 10 s) for the calls still running.
pub(crate) async fn open_loop<F, Fut>(rate: f64, duration: Duration, call: F) -> OpenLoopReport
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    // Microseconds, 1 us to 60 s, three significant digits.
    let histogram = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
    ));
    let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let started = Instant::now();
    let total = (rate * duration.as_secs_f64()) as usize;
    let mut running = Vec::with_capacity(total);
    let mut next = 0usize;
    while next < total {
        // The timer wakes about once a millisecond; every call whose turn
        // has come is started, and timed from its turn, not from now.
        let now = Instant::now();
        while next < total && started + interval * next as u32 <= now {
            let intended = started + interval * next as u32;
            let pending = call(next);
            let histogram = histogram.clone();
            let failed = failed.clone();
            running.push(tokio::spawn(async move {
                let outcome = pending.await;
                let micros = intended.elapsed().as_micros().max(1) as u64;
                histogram
                    .lock()
                    .expect("histogram")
                    .saturating_record(micros);
                if !matches!(outcome, Outcome::Ok) {
                    failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }));
            next += 1;
        }
        if next < total {
            tokio::time::sleep_until((started + interval * next as u32).into()).await;
        }
    }
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        futures_util::future::join_all(running),
    )
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let histogram = histogram.lock().expect("histogram");
    let failed = failed.load(std::sync::atomic::Ordering::Relaxed);
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    OpenLoopReport {
        target_rps: rate,
        achieved_ok_rps: (histogram.len().saturating_sub(failed)) as f64 / elapsed,
        calls: histogram.len(),
        failed,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        max_ms: histogram.max() as f64 / 1000.0,
    }
}

/// Raises the rate from `start` by a quarter each step while the gateway
/// keeps up (at least 95% of the target answered OK, p99 under 50 ms): the
/// last rate it kept up with is its peak. Returns every step.
pub(crate) async fn sweep<F, Fut>(start: f64, step: Duration, call: F) -> Vec<OpenLoopReport>
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let mut steps = Vec::new();
    let mut rate = start;
    loop {
        let report = open_loop(rate, step, call.clone()).await;
        let kept_up = report.achieved_ok_rps >= 0.95 * rate && report.p99_ms < 50.0;
        println!(
            "open loop {:>7.0}/s: {:>7.0} OK/s  p50 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  failed {}{}",
            rate,
            report.achieved_ok_rps,
            report.p50_ms,
            report.p99_ms,
            report.p999_ms,
            report.failed,
            if kept_up { "" } else { "  (past the peak)" }
        );
        steps.push(report);
        if !kept_up || steps.len() >= 12 {
            return steps;
        }
        rate *= 1.25;
    }
}
