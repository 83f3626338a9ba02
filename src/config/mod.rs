//! Typed configuration: environment variables for each provider's default
//! account (`env`), an optional TOML file for named accounts and tuning
//! (`file`), every default in one place (`defaults`).
//!
//! The loader takes the environment as a map so tests never touch the real
//! process environment. Every error names the variable (or file key) at fault.

pub(crate) mod defaults;
mod env;
mod file;
#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use url::Url;

pub use self::defaults::DEFAULT_ACCOUNT;
use crate::{domain::ProviderKind, secret::Secret};

/// A configuration value that stops start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The environment variable or config-file key at fault.
    pub variable: String,
    pub message: String,
}

impl ConfigError {
    fn new(variable: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            variable: variable.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid configuration: {}: {}",
            self.variable, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone)]
pub enum Credentials {
    Leegality {
        auth_token: Secret,
    },
    SignNowPassword {
        basic_token: Secret,
        username: String,
        password: Secret,
    },
    SignNowAccessToken {
        access_token: Secret,
    },
    Bynn {
        api_key: Secret,
    },
}

impl Credentials {
    /// Every secret value, so tests and log scrubbing can look for them.
    pub fn secrets(&self) -> Vec<&Secret> {
        match self {
            Credentials::Leegality { auth_token } => vec![auth_token],
            Credentials::SignNowPassword {
                basic_token,
                password,
                ..
            } => vec![basic_token, password],
            Credentials::SignNowAccessToken { access_token } => vec![access_token],
            Credentials::Bynn { api_key } => vec![api_key],
        }
    }
}

/// Per-operation timeouts for provider calls; the caller's deadline caps each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// Reads (GET).
    pub read: Duration,
    /// Writes that carry small bodies (resend, delete, cancel, invite).
    pub write: Duration,
    /// Calls that move a document: Leegality create, uploads, downloads.
    pub upload: Duration,
    /// OAuth token requests.
    pub token: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: defaults::CONNECT_TIMEOUT,
            read: defaults::READ_TIMEOUT,
            write: defaults::WRITE_TIMEOUT,
            upload: defaults::UPLOAD_TIMEOUT,
            token: defaults::TOKEN_TIMEOUT,
        }
    }
}

/// Calls per minute the gateway allows itself towards one provider
/// account, shared by every replica when Redis is configured. `None` is no
/// budget. Bynn's documented throttles (20 resends and 30 requests a minute
/// per organisation) are its defaults; other providers have none unless set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountBudgets {
    pub requests_per_minute: Option<u32>,
    pub resends_per_minute: Option<u32>,
}

impl AccountBudgets {
    pub fn for_provider(provider: ProviderKind) -> AccountBudgets {
        match provider {
            ProviderKind::Bynn => AccountBudgets {
                requests_per_minute: Some(defaults::BYNN_REQUESTS_PER_MINUTE),
                resends_per_minute: Some(defaults::BYNN_RESENDS_PER_MINUTE),
            },
            ProviderKind::Leegality | ProviderKind::SignNow => AccountBudgets::default(),
        }
    }
}

/// Which id the gateway sends to signNow's `PUT /fieldinvite/{id}/resend`.
///
/// signNow's own material conflicts (evidence.md N-3): its newest official
/// client (the MCP server) sends `field_invites[].id`, while its Postman
/// collection and a live .NET example send `fields[].field_request_id`.
/// The default follows the newest client; an operator switches it per
/// account (`SIGNNOW_RESEND_ID` or `resend_id` in the config file) without
/// a release once a sandbox shows the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignNowResendId {
    #[default]
    FieldInviteId,
    FieldRequestId,
}

impl SignNowResendId {
    pub(crate) fn parse(variable: &str, value: &str) -> Result<Self, ConfigError> {
        match value {
            "field_invite_id" => Ok(SignNowResendId::FieldInviteId),
            "field_request_id" => Ok(SignNowResendId::FieldRequestId),
            _ => Err(ConfigError::new(
                variable,
                format!("{value:?} is not field_invite_id or field_request_id"),
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AccountConfig {
    pub provider: ProviderKind,
    pub name: String,
    pub base_url: Url,
    pub credentials: Credentials,
    /// signNow: the default `from` of invites.
    pub sender_email: Option<String>,
    /// Leegality: the host of the sign URLs callers may pass.
    pub sign_url_host: Option<String>,
    pub budgets: AccountBudgets,
    /// signNow: the id sent to the resend endpoint.
    pub signnow_resend_id: SignNowResendId,
    /// Verifies this account's webhooks: Leegality's private salt,
    /// signNow's subscription `secret_key`, or Bynn's public key (PEM).
    /// Without it the account's webhook path answers 404.
    pub webhook_secret: Option<Secret>,
    /// signNow: where the gateway keeps this account's event subscriptions
    /// pointed (its public webhook URL); unset leaves subscriptions alone.
    pub webhook_callback_url: Option<String>,
}

impl AccountConfig {
    pub fn host(&self) -> &str {
        self.base_url.host_str().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen_addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub accounts: Vec<AccountConfig>,
    pub timeouts: Timeouts,
    pub drain_delay: Duration,
    pub shutdown_grace: Duration,
    /// The shared state store; `None` keeps state in process.
    pub redis: Option<RedisConfig>,
    /// How long a running request-id claim lives without renewal.
    pub claim_lease: Duration,
    /// The webhook intake listener; `None` turns it off.
    pub webhook_addr: Option<SocketAddr>,
    /// How long and how many events are kept.
    pub event_retention: Duration,
    pub event_retention_max: usize,
    /// How often the Bynn poller goes over the invitations it watches.
    pub bynn_poll_interval: Duration,
    pub otlp_endpoint: Option<String>,
    pub tls: Option<TlsConfig>,
    /// The callers file; the server builds its authenticator from it.
    pub auth_tokens_file: Option<PathBuf>,
    /// Whether server reflection also requires an authenticated caller
    /// (health always stays open for probes).
    pub protect_reflection: bool,
    pub log_format: LogFormat,
    /// Largest provider response body read into memory.
    pub max_provider_body_bytes: usize,
    /// How long a request_id's outcome is kept and replayed.
    pub idempotency_ttl: Duration,
    /// Provider RPCs in flight at once; more are shed with RESOURCE_EXHAUSTED.
    pub max_in_flight: usize,
    /// Weighted payload bytes calls in flight may hold together; a call
    /// that would pass it is shed while its message arrives.
    pub max_inflight_bytes: usize,
    pub breaker: BreakerConfig,
}

/// Where the shared state lives when several replicas act as one.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// One server: `redis://` or `rediss://` (TLS).
    pub url: Option<String>,
    /// Redis Cluster seed nodes; when set, `url` is not used.
    pub cluster_urls: Vec<String>,
    /// An extra CA (PEM) trusted for `rediss://`.
    pub ca_pem: Option<Vec<u8>>,
}

impl RedisConfig {
    /// One server at `url`.
    pub fn single(url: impl Into<String>) -> RedisConfig {
        RedisConfig {
            url: Some(url.into()),
            cluster_urls: Vec::new(),
            ca_pem: None,
        }
    }

    /// A Redis Cluster reached through `nodes`.
    pub fn cluster(nodes: Vec<String>) -> RedisConfig {
        RedisConfig {
            url: None,
            cluster_urls: nodes,
            ca_pem: None,
        }
    }
}

/// When a provider account's circuit opens, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failed calls (5xx, timeouts, resets) that open it.
    pub failures: u32,
    /// How long it stays open before one probe call may try again.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: defaults::BREAKER_FAILURES,
            cooldown: Duration::from_secs(defaults::BREAKER_COOLDOWN_SECONDS),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// Reads the environment (as a map) and the optional config file: the
/// gateway's own settings, then the accounts from the environment, then
/// the file's accounts and timeouts on top.
pub fn load(
    env: &HashMap<String, String>,
    config_path: Option<&Path>,
) -> Result<Config, ConfigError> {
    let get = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut config = env::gateway(&get)?;
    config.accounts = env::accounts(&get)?;
    let path = config_path
        .map(Path::to_path_buf)
        .or_else(|| get("GATEWAY_CONFIG").map(PathBuf::from));
    if let Some(path) = path {
        file::merge(&path, env, &mut config)?;
    }
    Ok(config)
}
