//! When a provider call is sent again: a pure decision from the call's
//! policy, what happened to the attempt and the time the caller has left.
//!
//! Written here rather than taken from a retry crate because the rule ties
//! three things no such crate models together: whether the request may
//! already have reached the provider (billed calls are never repeated after
//! that), the provider's `Retry-After`, and the caller's `grpc-timeout`.

use std::time::Duration;

use http::StatusCode;

/// Kept back from the caller's deadline so our answer still reaches them.
pub(crate) const DEADLINE_MARGIN: Duration = Duration::from_millis(20);
/// Below this much time a provider call is not worth starting.
pub(crate) const MIN_USEFUL_BUDGET: Duration = Duration::from_millis(50);
/// Attempts of one call, the first included.
pub(crate) const MAX_ATTEMPTS: u32 = 3;
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(2);
/// A provider's `Retry-After` longer than this is handed to the caller
/// instead of waited out.
const LONGEST_WAIT: Duration = Duration::from_secs(5);

/// Whether a call may be sent again after it may have reached the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryPolicy {
    /// Billable or non-idempotent: only a failed connect is retried.
    OnlyBeforeSent,
    /// Reads and idempotent writes: also 429, 502, 503, 504 and resets.
    Safe,
}

/// What one attempt came to, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The provider answered with this status.
    Answered {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    /// The connection was never made: nothing reached the provider.
    ConnectFailed,
    /// The connection broke after the request may have been sent.
    Broken,
    /// Anything else (a timeout, an oversized body): not retried.
    Final,
}

/// The delay before the next attempt, or `None` to stop with this one.
/// `jitter` in `[0, 1]` picks the point in the backoff window.
pub(crate) fn next_delay(
    policy: RetryPolicy,
    attempt_number: u32,
    attempt: Attempt,
    remaining: Option<Duration>,
    jitter: f64,
) -> Option<Duration> {
    if attempt_number >= MAX_ATTEMPTS {
        return None;
    }
    let delay = match (attempt, policy) {
        (Attempt::ConnectFailed, _) => backoff(attempt_number, jitter),
        (Attempt::Broken, RetryPolicy::Safe) => backoff(attempt_number, jitter),
        (
            Attempt::Answered {
                status,
                retry_after,
            },
            RetryPolicy::Safe,
        ) if is_retryable_status(status) => {
            retry_after.unwrap_or_else(|| backoff(attempt_number, jitter))
        }
        _ => return None,
    };
    if delay > LONGEST_WAIT {
        return None;
    }
    let fits = remaining.is_none_or(|left| left > delay + MIN_USEFUL_BUDGET + DEADLINE_MARGIN);
    fits.then_some(delay)
}

fn is_retryable_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    )
}

/// Full-jitter exponential backoff: a point in `[0, min(cap, base * 2^n)]`.
fn backoff(attempt_number: u32, jitter: f64) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1 << attempt_number.min(10))
        .min(BACKOFF_CAP);
    ceiling.mul_f64(jitter.clamp(0.0, 1.0))
}

/// The time one attempt may take: the operation's own timeout, cut to what
/// the caller has left minus the margin; `None` when too little is left.
pub(crate) fn attempt_budget(timeout: Duration, remaining: Option<Duration>) -> Option<Duration> {
    match remaining {
        None => Some(timeout),
        Some(left) if left < MIN_USEFUL_BUDGET + DEADLINE_MARGIN => None,
        Some(left) => Some(timeout.min(left - DEADLINE_MARGIN)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAFE: RetryPolicy = RetryPolicy::Safe;
    const BILLED: RetryPolicy = RetryPolicy::OnlyBeforeSent;

    fn answered(status: u16, retry_after: Option<u64>) -> Attempt {
        Attempt::Answered {
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn billed_calls_retry_only_a_failed_connect() {
        assert!(next_delay(BILLED, 1, Attempt::ConnectFailed, None, 0.5).is_some());
        assert_eq!(next_delay(BILLED, 1, Attempt::Broken, None, 0.5), None);
        assert_eq!(next_delay(BILLED, 1, answered(503, None), None, 0.5), None);
        assert_eq!(
            next_delay(BILLED, 1, answered(429, Some(1)), None, 0.5),
            None
        );
    }

    #[test]
    fn safe_calls_retry_throttles_gateway_errors_and_resets() {
        for status in [429, 502, 503, 504] {
            assert!(
                next_delay(SAFE, 1, answered(status, None), None, 0.5).is_some(),
                "{status}"
            );
        }
        for status in [200, 400, 404, 500] {
            assert_eq!(
                next_delay(SAFE, 1, answered(status, None), None, 0.5),
                None,
                "{status}"
            );
        }
        assert!(next_delay(SAFE, 1, Attempt::Broken, None, 0.5).is_some());
        assert_eq!(next_delay(SAFE, 1, Attempt::Final, None, 0.5), None);
    }

    #[test]
    fn retry_after_is_honoured_unless_it_is_too_long_or_past_the_deadline() {
        assert_eq!(
            next_delay(SAFE, 1, answered(429, Some(2)), None, 0.5),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            next_delay(SAFE, 1, answered(429, Some(30)), None, 0.5),
            None
        );
        assert_eq!(
            next_delay(
                SAFE,
                1,
                answered(503, Some(2)),
                Some(Duration::from_secs(2)),
                0.5
            ),
            None,
            "the wait would use up the caller's deadline"
        );
    }

    #[test]
    fn attempts_are_bounded() {
        assert!(next_delay(SAFE, 2, Attempt::Broken, None, 0.5).is_some());
        assert_eq!(
            next_delay(SAFE, MAX_ATTEMPTS, Attempt::Broken, None, 0.5),
            None
        );
    }

    #[test]
    fn backoff_stays_under_the_cap() {
        for attempt in 1..20 {
            assert!(backoff(attempt, 1.0) <= BACKOFF_CAP);
            assert_eq!(backoff(attempt, 0.0), Duration::ZERO);
        }
    }

    #[test]
    fn budgets_leave_the_margin_and_refuse_too_little() {
        let timeout = Duration::from_secs(10);
        assert_eq!(attempt_budget(timeout, None), Some(timeout));
        assert_eq!(
            attempt_budget(timeout, Some(Duration::from_secs(1))),
            Some(Duration::from_secs(1) - DEADLINE_MARGIN)
        );
        assert_eq!(
            attempt_budget(timeout, Some(Duration::from_millis(60))),
            None
        );
    }
}
