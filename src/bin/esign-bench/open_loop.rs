//! Open-loop load: calls start at a fixed arrival rate whatever happened to
//! earlier ones, and each latency is measured from the call's intended start
//! in an HDR histogram. A closed loop waits for answers before sending more,
//! so under overload it sends less and under-reports the tail (coordinated
//! omission); this does not.

use std::{
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed},
    },
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
    /// Calls stopped being started because too many were waiting (the
    /// sweep's steps past the peak only).
    pub(crate) cut_short: bool,
}

impl OpenLoopReport {
    /// Whether the server kept up with this rate: at least 95% of the target
    /// answered OK, p99 under 50 ms, and never cut short. The sweep's peak
    /// is the highest rate that did.
    pub(crate) fn kept_up(&self) -> bool {
        !self.cut_short && self.achieved_ok_rps >= 0.95 * self.target_rps && self.p99_ms < 50.0
    }
}

/// Starts `call` at `rate` per second for `duration`, then waits (at most
/// 10 s) for the calls still running. With `max_waiting`, it stops starting
/// calls once that many are unanswered.
pub(crate) async fn open_loop<F, Fut>(
    rate: f64,
    duration: Duration,
    max_waiting: Option<usize>,
    call: F,
) -> OpenLoopReport
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    // Microseconds, 1 us to 60 s, three significant digits.
    let histogram = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
    ));
    let failed = Arc::new(AtomicU64::new(0));
    let waiting = Arc::new(AtomicUsize::new(0));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let total = (rate * duration.as_secs_f64()) as usize;
    // Calls are started by a thread of their own that sleeps with the OS
    // timer (tens of microseconds late at most), not by a tokio timer (which
    // wakes once a millisecond and would start calls in bursts, late by up
    // to a millisecond that would count against the gateway).
    let runtime = tokio::runtime::Handle::current();
    let call = Arc::new(call);
    let (started, running, cut_short) = {
        let histogram = histogram.clone();
        let failed = failed.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut running = Vec::with_capacity(total);
            let mut cut_short = false;
            for next in 0..total {
                let intended = started + interval * next as u32;
                let now = Instant::now();
                if intended > now {
                    std::thread::sleep(intended - now);
                }
                if max_waiting.is_some_and(|max| waiting.load(Relaxed) >= max) {
                    cut_short = true;
                    break;
                }
                let call = call.clone();
                let histogram = histogram.clone();
                let failed = failed.clone();
                let waiting = waiting.clone();
                waiting.fetch_add(1, Relaxed);
                running.push(runtime.spawn(async move {
                    let outcome = call(next).await;
                    waiting.fetch_sub(1, Relaxed);
                    let micros = intended.elapsed().as_micros().max(1) as u64;
                    histogram
                        .lock()
                        .expect("histogram")
                        .saturating_record(micros);
                    if !matches!(outcome, Outcome::Ok) {
                        failed.fetch_add(1, Relaxed);
                    }
                }));
            }
            (started, running, cut_short)
        })
        .await
        .expect("pacer thread")
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        futures_util::future::join_all(running),
    )
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let histogram = histogram.lock().expect("histogram");
    let failed = failed.load(Relaxed);
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
        cut_short,
    }
}

/// Raises the rate from `start` by a quarter each step while the gateway
/// keeps up (at least 95% of the target answered OK, p99 under 50 ms): the
/// last rate it kept up with is its peak. When it cannot keep up with
/// `start` itself, the rate is lowered by a fifth each step until it can.
/// Returns every step.
///
/// A step stops starting calls once a quarter second's worth of them is
/// unanswered: it is past the peak by then (its p99 cannot stay under
/// 50 ms), and a backlog left to grow for the whole step (tens of thousands
/// of calls and hundreds of MiB in the load generator) was still being
/// cleared up while the next measurement ran.
pub(crate) async fn sweep<F, Fut>(start: f64, step: Duration, call: F) -> Vec<OpenLoopReport>
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let mut steps = Vec::new();
    let mut rate = start;
    let mut raising = None;
    loop {
        let max_waiting = ((rate / 4.0) as usize).max(256);
        let report = open_loop(rate, step, Some(max_waiting), call.clone()).await;
        let kept_up = report.kept_up();
        println!(
            "open loop {:>7.0}/s: {:>7.0} OK/s  p50 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  failed {}{}",
            rate,
            report.achieved_ok_rps,
            report.p50_ms,
            report.p99_ms,
            report.p999_ms,
            report.failed,
            match (kept_up, report.cut_short) {
                (true, _) => "",
                (false, false) => "  (past the peak)",
                (false, true) => "  (past the peak; cut short, a quarter second of calls waiting)",
            }
        );
        steps.push(report);
        // The first step decides the direction; the sweep ends where the
        // answer turns.
        let raising = *raising.get_or_insert(kept_up);
        if steps.len() >= 12 || kept_up != raising {
            return steps;
        }
        rate *= if raising { 1.25 } else { 0.8 };
    }
}
