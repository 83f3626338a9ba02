//! Every default of the configuration, in one place.

use std::time::Duration;

pub const DEFAULT_ACCOUNT: &str = "default";
pub(crate) const LISTEN_ADDR: &str = "0.0.0.0:50051";
/// Not 9090: that is Prometheus's own port, and a gateway beside a local
/// Prometheus (or a second gateway) must not clash with it. 9469 is taken
/// by no common service or exporter.
pub(crate) const METRICS_ADDR: &str = "0.0.0.0:9469";
pub(crate) const WEBHOOK_ADDR: &str = "0.0.0.0:8080";
pub(crate) const EVENT_RETENTION_HOURS: u64 = 168;
pub(crate) const EVENT_RETENTION_MAX: u64 = 1_000_000;
pub(crate) const BYNN_POLL_SECONDS: u64 = 60;
/// The share of Bynn's request budget the poller may use.
pub(crate) const BYNN_POLL_REQUESTS_PER_MINUTE: u32 = 10;
pub(crate) const LEEGALITY_SANDBOX_URL: &str = "https://sandbox.leegality.com/api";
pub(crate) const SIGNNOW_EVAL_URL: &str = "https://api-eval.signnow.com";
pub(crate) const BYNN_URL: &str = "https://api.bynn.com/v1";

pub(crate) const DRAIN_SECONDS: u64 = 5;
pub(crate) const SHUTDOWN_GRACE_SECONDS: u64 = 20;
pub(crate) const IDEMPOTENCY_TTL_SECONDS: u64 = 86_400;
/// A running request-id claim lives this long unless its replica renews it.
pub(crate) const CLAIM_LEASE_SECONDS: u64 = 30;
pub(crate) const MAX_IN_FLIGHT: u64 = 4096;
/// Payload bytes (weighted by what a call holds per inbound byte) that
/// calls in flight may hold together: one largest Leegality create and
/// room for small calls beside it, inside the chart's 256 MiB limit.
pub(crate) const MAX_INFLIGHT_BYTES: u64 = 160 * 1024 * 1024;
pub(crate) const BREAKER_FAILURES: u32 = 5;
pub(crate) const BREAKER_COOLDOWN_SECONDS: u64 = 10;
/// Largest provider response body read into memory.
pub(crate) const MAX_PROVIDER_BODY_BYTES: usize = 4 * 1024 * 1024;

pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
pub(crate) const UPLOAD_TIMEOUT: Duration = Duration::from_secs(60);
pub(crate) const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Bynn's documented throttles: 20 resends and 30 requests a minute.
pub(crate) const BYNN_RESENDS_PER_MINUTE: u32 = 20;
pub(crate) const BYNN_REQUESTS_PER_MINUTE: u32 = 30;
