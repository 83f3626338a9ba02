//! One circuit breaker per provider account, as a pure state machine over
//! the times it is given. After `failures` failed calls in a row (5xx,
//! timeouts, resets, refused connections) it opens: calls fail at once with
//! the time left. After the cool-down one probe goes through; its success
//! closes the circuit, its failure opens it again.

use std::{sync::Mutex, time::Duration};

use chrono::{DateTime, Utc};

use crate::{clock::Clock, config::BreakerConfig, domain::ProviderKind};

/// What `ListProviders` and the metrics show for an account's circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Circuit {
    Closed {
        failures: u32,
    },
    Open {
        until: DateTime<Utc>,
    },
    /// A probe is out since `since`; others wait until it reports or until
    /// a cool-down has passed (a dropped probe must not wedge it).
    HalfOpen {
        since: DateTime<Utc>,
    },
}

impl Circuit {
    fn state(self) -> BreakerState {
        match self {
            Circuit::Closed { .. } => BreakerState::Closed,
            Circuit::Open { .. } => BreakerState::Open,
            Circuit::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

/// One account's breaker: pure, every decision from the `now` it is given.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Breaker {
    circuit: Circuit,
    failures_to_open: u32,
    cooldown: chrono::Duration,
}

impl Breaker {
    pub(crate) fn new(config: &BreakerConfig) -> Breaker {
        Breaker {
            circuit: Circuit::Closed { failures: 0 },
            failures_to_open: config.failures.max(1),
            cooldown: chrono::Duration::from_std(config.cooldown)
                .unwrap_or(chrono::Duration::seconds(10)),
        }
    }

    /// `Ok` when a call may go out now (maybe as the probe), else how long
    /// to wait.
    pub(crate) fn admit(&mut self, now: DateTime<Utc>) -> Result<(), Duration> {
        let wait = match self.circuit {
            Circuit::Closed { .. } => return Ok(()),
            Circuit::Open { until } if now >= until => {
                self.circuit = Circuit::HalfOpen { since: now };
                return Ok(());
            }
            Circuit::HalfOpen { since } if now >= since + self.cooldown => {
                self.circuit = Circuit::HalfOpen { since: now };
                return Ok(());
            }
            Circuit::Open { until } => until - now,
            Circuit::HalfOpen { since } => since + self.cooldown - now,
        };
        Err(wait
            .to_std()
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_secs(1)))
    }

    /// Records a call's result; returns the new state when it changed.
    pub(crate) fn record(&mut self, now: DateTime<Utc>, failed: bool) -> Option<BreakerState> {
        let before = self.circuit.state();
        self.circuit = match (self.circuit, failed) {
            (_, false) => Circuit::Closed { failures: 0 },
            (Circuit::Closed { failures }, true) if failures + 1 < self.failures_to_open => {
                Circuit::Closed {
                    failures: failures + 1,
                }
            }
            (_, true) => Circuit::Open {
                until: now + self.cooldown,
            },
        };
        let after = self.circuit.state();
        (before != after).then_some(after)
    }

    pub(crate) fn state(&self, now: DateTime<Utc>) -> BreakerState {
        match self.circuit {
            Circuit::Open { until } if now >= until => BreakerState::HalfOpen,
            circuit => circuit.state(),
        }
    }
}

/// The breakers of every account, read through the shared clock.
pub(crate) struct Breakers {
    config: BreakerConfig,
    clock: Clock,
    /// Per provider, per account name (looked up without allocating).
    /// foldhash, not SipHash: looked up twice per provider call, and its
    /// keys are configured names, not a caller's to choose.
    states: Mutex<foldhash::HashMap<ProviderKind, foldhash::HashMap<String, Breaker>>>,
}

impl Breakers {
    pub(crate) fn new(config: BreakerConfig, clock: Clock) -> Breakers {
        Breakers {
            config,
            clock,
            states: Mutex::default(),
        }
    }

    pub(crate) fn admit(&self, provider: ProviderKind, account: &str) -> Result<(), Duration> {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let Some(breaker) = states
            .get_mut(&provider)
            .and_then(|accounts| accounts.get_mut(account))
        else {
            return Ok(());
        };
        // The usual case, decided without reading the clock.
        if matches!(breaker.circuit, Circuit::Closed { .. }) {
            return Ok(());
        }
        let now = self.clock.now();
        let before = breaker.state(now);
        let admitted = breaker.admit(now);
        if admitted.is_ok() && before == BreakerState::HalfOpen {
            tracing::info!(
                provider = provider.as_str(),
                account,
                "circuit half-open: probing"
            );
            crate::metrics::global().breaker_state(
                provider.as_str(),
                account,
                BreakerState::HalfOpen.as_str(),
            );
        }
        admitted
    }

    pub(crate) fn record(&self, provider: ProviderKind, account: &str, failed: bool) {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let accounts = states.entry(provider).or_default();
        let breaker = match accounts.get_mut(account) {
            Some(breaker) => breaker,
            None => {
                // First call of this account: its circuit shows as closed.
                crate::metrics::global().breaker_state(
                    provider.as_str(),
                    account,
                    BreakerState::Closed.as_str(),
                );
                accounts
                    .entry(account.to_owned())
                    .or_insert(Breaker::new(&self.config))
            }
        };
        // A success on a closed circuit with no failures changes nothing.
        if !failed && matches!(breaker.circuit, Circuit::Closed { failures: 0 }) {
            return;
        }
        let Some(state) = breaker.record(self.clock.now(), failed) else {
            return;
        };
        crate::metrics::global().breaker_state(provider.as_str(), account, state.as_str());
        match state {
            BreakerState::Open => tracing::warn!(
                provider = provider.as_str(),
                account,
                cooldown_secs = self.config.cooldown.as_secs(),
                "circuit opened"
            ),
            BreakerState::Closed => {
                tracing::info!(provider = provider.as_str(), account, "circuit closed")
            }
            BreakerState::HalfOpen => {}
        }
    }

    pub(crate) fn state(&self, provider: ProviderKind, account: &str) -> BreakerState {
        let states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        states
            .get(&provider)
            .and_then(|accounts| accounts.get(account))
            .map_or(BreakerState::Closed, |b| b.state(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> (Breaker, DateTime<Utc>) {
        let config = BreakerConfig {
            failures: 3,
            cooldown: Duration::from_secs(10),
        };
        (
            Breaker::new(&config),
            DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        )
    }

    #[test]
    fn opens_after_the_failures_in_a_row_and_a_success_resets_the_count() {
        let (mut b, now) = breaker();
        assert_eq!(b.record(now, true), None);
        assert_eq!(b.record(now, false), None);
        assert_eq!(b.record(now, true), None);
        assert_eq!(b.record(now, true), None);
        assert_eq!(b.record(now, true), Some(BreakerState::Open));
        assert_eq!(
            b.admit(now + chrono::Duration::seconds(4)),
            Err(Duration::from_secs(6))
        );
    }

    #[test]
    fn one_probe_after_the_cooldown_decides() {
        let (mut b, now) = breaker();
        for _ in 0..3 {
            b.record(now, true);
        }
        let later = now + chrono::Duration::seconds(10);
        assert_eq!(b.state(later), BreakerState::HalfOpen);
        assert_eq!(b.admit(later), Ok(()), "the probe");
        assert!(b.admit(later).is_err(), "others wait for the probe");
        assert_eq!(b.record(later, true), Some(BreakerState::Open));
        let much_later = later + chrono::Duration::seconds(10);
        assert_eq!(b.admit(much_later), Ok(()));
        assert_eq!(b.record(much_later, false), Some(BreakerState::Closed));
        assert_eq!(b.admit(much_later), Ok(()));
    }

    #[test]
    fn a_probe_that_never_reports_does_not_wedge_the_circuit() {
        let (mut b, now) = breaker();
        for _ in 0..3 {
            b.record(now, true);
        }
        let probe = now + chrono::Duration::seconds(10);
        assert_eq!(b.admit(probe), Ok(()));
        assert!(b.admit(probe + chrono::Duration::seconds(9)).is_err());
        assert_eq!(b.admit(probe + chrono::Duration::seconds(10)), Ok(()));
    }

    #[test]
    fn waits_are_at_least_a_second() {
        let (mut b, now) = breaker();
        for _ in 0..3 {
            b.record(now, true);
        }
        let almost = now + chrono::Duration::milliseconds(9_900);
        assert_eq!(b.admit(almost), Err(Duration::from_secs(1)));
    }
}
