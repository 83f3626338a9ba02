//! Typed configuration: environment variables for each provider's default
//! account, an optional TOML or YAML file for named accounts and tuning.
//!
//! The loader takes the environment as a map so tests never touch the real
//! process environment. Every error names the variable (or file key) at fault.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;
use url::Url;

use crate::{domain::ProviderKind, secret::Secret};

pub const DEFAULT_ACCOUNT: &str = "default";
pub const DEFAULT_LISTEN_ADDR: &str = "0.0.0.0:50051";
pub const DEFAULT_METRICS_ADDR: &str = "0.0.0.0:9090";
pub const LEEGALITY_SANDBOX_URL: &str = "https://sandbox.leegality.com/api";
pub const SIGNNOW_EVAL_URL: &str = "https://api-eval.signnow.com";
pub const BYNN_URL: &str = "https://api.bynn.com/v1";

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
    /// Writes that upload a document (Leegality create).
    pub upload: Duration,
    /// OAuth token requests.
    pub token: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            read: Duration::from_secs(10),
            write: Duration::from_secs(30),
            upload: Duration::from_secs(60),
            token: Duration::from_secs(10),
        }
    }
}

/// Bynn throttles the gateway stays inside of (per account, per minute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BynnLimits {
    pub resends_per_minute: u32,
    pub requests_per_minute: u32,
}

impl Default for BynnLimits {
    fn default() -> Self {
        BynnLimits {
            resends_per_minute: 20,
            requests_per_minute: 30,
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
    fn parse(variable: &str, value: &str) -> Result<Self, ConfigError> {
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
    pub bynn_limits: BynnLimits,
    /// signNow: the id sent to the resend endpoint.
    pub signnow_resend_id: SignNowResendId,
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
    pub redis_url: Option<String>,
    pub otlp_endpoint: Option<String>,
    pub tls: Option<TlsConfig>,
    pub auth_tokens_file: Option<PathBuf>,
    /// Caller authentication, when a client CA or a callers file is set.
    pub auth: Option<std::sync::Arc<crate::auth::Authenticator>>,
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
    pub breaker: BreakerConfig,
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
            failures: 5,
            cooldown: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

// === config file ===

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    accounts: Vec<FileAccount>,
    #[serde(default)]
    timeouts: FileTimeouts,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTimeouts {
    connect_ms: Option<u64>,
    read_ms: Option<u64>,
    write_ms: Option<u64>,
    upload_ms: Option<u64>,
    token_ms: Option<u64>,
}

/// A secret in the file: inline, or the name of an environment variable.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FileSecret {
    Inline(String),
    FromEnv { env: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAccount {
    provider: String,
    name: String,
    base_url: Option<String>,
    auth_token: Option<FileSecret>,
    basic_token: Option<FileSecret>,
    username: Option<String>,
    password: Option<FileSecret>,
    access_token: Option<FileSecret>,
    api_key: Option<FileSecret>,
    sender_email: Option<String>,
    sign_url_host: Option<String>,
    resend_id: Option<String>,
    resends_per_minute: Option<u32>,
    requests_per_minute: Option<u32>,
}

/// Reads the environment (as a map) and the optional config file.
pub fn load(
    env: &HashMap<String, String>,
    config_path: Option<&Path>,
) -> Result<Config, ConfigError> {
    let get = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());

    let listen_addr = parse_addr(
        "GATEWAY_LISTEN_ADDR",
        get("GATEWAY_LISTEN_ADDR").unwrap_or(DEFAULT_LISTEN_ADDR),
    )?;
    let metrics_addr = match get("GATEWAY_METRICS_ADDR") {
        Some("off") | Some("none") => None,
        Some(value) => Some(parse_addr("GATEWAY_METRICS_ADDR", value)?),
        None => Some(parse_addr("GATEWAY_METRICS_ADDR", DEFAULT_METRICS_ADDR)?),
    };
    let drain_delay = parse_seconds("GATEWAY_DRAIN_SECONDS", get("GATEWAY_DRAIN_SECONDS"), 5)?;
    let shutdown_grace = parse_seconds(
        "GATEWAY_SHUTDOWN_GRACE_SECONDS",
        get("GATEWAY_SHUTDOWN_GRACE_SECONDS"),
        20,
    )?;

    let redis_url = match get("GATEWAY_REDIS_URL") {
        Some(value) => {
            let url = parse_url("GATEWAY_REDIS_URL", value)?;
            if url.scheme() != "redis" || url.host_str().is_none() {
                return Err(ConfigError::new(
                    "GATEWAY_REDIS_URL",
                    "must be a redis://[:password@]host[:port][/db] URL (rediss:// is not supported)",
                ));
            }
            Some(value.to_owned())
        }
        None => None,
    };
    let otlp_endpoint = match get("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Some(value) => {
            parse_url("OTEL_EXPORTER_OTLP_ENDPOINT", value)?;
            Some(value.to_owned())
        }
        None => None,
    };
    let tls = match (get("GATEWAY_TLS_CERT"), get("GATEWAY_TLS_KEY")) {
        (Some(cert), Some(key)) => Some(TlsConfig {
            cert: PathBuf::from(cert),
            key: PathBuf::from(key),
            client_ca: get("GATEWAY_TLS_CLIENT_CA").map(PathBuf::from),
        }),
        (Some(_), None) => {
            return Err(ConfigError::new(
                "GATEWAY_TLS_KEY",
                "is required when GATEWAY_TLS_CERT is set",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "GATEWAY_TLS_CERT",
                "is required when GATEWAY_TLS_KEY is set",
            ));
        }
        (None, None) => {
            if get("GATEWAY_TLS_CLIENT_CA").is_some() {
                return Err(ConfigError::new(
                    "GATEWAY_TLS_CLIENT_CA",
                    "needs GATEWAY_TLS_CERT and GATEWAY_TLS_KEY",
                ));
            }
            None
        }
    };
    let log_format = match get("GATEWAY_LOG_FORMAT").unwrap_or("json") {
        "json" => LogFormat::Json,
        "pretty" | "text" => LogFormat::Pretty,
        _ => {
            return Err(ConfigError::new(
                "GATEWAY_LOG_FORMAT",
                "must be json or pretty",
            ));
        }
    };

    let mut accounts = env_accounts(&get)?;

    let path = config_path
        .map(Path::to_path_buf)
        .or_else(|| get("GATEWAY_CONFIG").map(PathBuf::from));
    let mut timeouts = Timeouts::default();
    if let Some(path) = path {
        let file = read_file(&path)?;
        timeouts = file_timeouts(&file.timeouts, timeouts)?;
        for (index, account) in file.accounts.into_iter().enumerate() {
            let parsed = file_account(account, index, env)?;
            if accounts
                .iter()
                .any(|a: &AccountConfig| a.provider == parsed.provider && a.name == parsed.name)
            {
                return Err(ConfigError::new(
                    format!("accounts[{index}].name"),
                    format!(
                        "{} account {:?} is defined twice",
                        parsed.provider, parsed.name
                    ),
                ));
            }
            accounts.push(parsed);
        }
    }

    let auth = crate::auth::Authenticator::load(
        get("GATEWAY_AUTH_TOKENS_FILE").map(Path::new),
        tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
    )
    .map_err(|message| ConfigError::new("GATEWAY_AUTH_TOKENS_FILE", message))?;
    Ok(Config {
        listen_addr,
        metrics_addr,
        accounts,
        timeouts,
        drain_delay,
        shutdown_grace,
        redis_url,
        otlp_endpoint,
        tls,
        auth,
        protect_reflection: match get("GATEWAY_AUTH_REFLECTION").unwrap_or("open") {
            "open" => false,
            "authenticated" => true,
            _ => {
                return Err(ConfigError::new(
                    "GATEWAY_AUTH_REFLECTION",
                    "must be open or authenticated",
                ));
            }
        },
        auth_tokens_file: get("GATEWAY_AUTH_TOKENS_FILE").map(PathBuf::from),
        log_format,
        max_provider_body_bytes: 4 * 1024 * 1024,
        idempotency_ttl: parse_bounded(
            "GATEWAY_IDEMPOTENCY_TTL_SECONDS",
            get("GATEWAY_IDEMPOTENCY_TTL_SECONDS"),
            86_400,
            60..=7 * 86_400,
        )
        .map(Duration::from_secs)?,
        max_in_flight: parse_bounded(
            "GATEWAY_MAX_IN_FLIGHT",
            get("GATEWAY_MAX_IN_FLIGHT"),
            4096,
            1..=1_000_000,
        )? as usize,
        breaker: BreakerConfig {
            failures: parse_bounded(
                "GATEWAY_BREAKER_FAILURES",
                get("GATEWAY_BREAKER_FAILURES"),
                5,
                1..=1000,
            )? as u32,
            cooldown: parse_bounded(
                "GATEWAY_BREAKER_COOLDOWN_SECONDS",
                get("GATEWAY_BREAKER_COOLDOWN_SECONDS"),
                10,
                1..=3600,
            )
            .map(Duration::from_secs)?,
        },
    })
}

fn parse_bounded(
    variable: &str,
    value: Option<&str>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    value
        .parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            ConfigError::new(
                variable,
                format!(
                    "{value:?} is not a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        })
}

fn env_accounts<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Result<Vec<AccountConfig>, ConfigError> {
    let mut accounts = Vec::new();

    if let Some(token) = get("LEEGALITY_AUTH_TOKEN") {
        let base_url = parse_base_url(
            "LEEGALITY_BASE_URL",
            get("LEEGALITY_BASE_URL").unwrap_or(LEEGALITY_SANDBOX_URL),
        )?;
        accounts.push(AccountConfig {
            provider: ProviderKind::Leegality,
            name: DEFAULT_ACCOUNT.to_owned(),
            sign_url_host: base_url.host_str().map(str::to_owned),
            base_url,
            credentials: Credentials::Leegality {
                auth_token: Secret::new(token),
            },
            sender_email: None,
            bynn_limits: BynnLimits::default(),
            signnow_resend_id: SignNowResendId::default(),
        });
    } else if get("LEEGALITY_BASE_URL").is_some() {
        return Err(ConfigError::new(
            "LEEGALITY_AUTH_TOKEN",
            "is required when LEEGALITY_BASE_URL is set",
        ));
    }

    let signnow_credentials = match (
        get("SIGNNOW_ACCESS_TOKEN"),
        get("SIGNNOW_BASIC_TOKEN"),
        get("SIGNNOW_USERNAME"),
        get("SIGNNOW_PASSWORD"),
    ) {
        (Some(token), None, None, None) => Some(Credentials::SignNowAccessToken {
            access_token: Secret::new(token),
        }),
        (Some(_), _, _, _) => {
            return Err(ConfigError::new(
                "SIGNNOW_ACCESS_TOKEN",
                "set either SIGNNOW_ACCESS_TOKEN or the password grant variables, not both",
            ));
        }
        (None, None, None, None) => None,
        (None, basic, username, password) => {
            let missing = [
                ("SIGNNOW_BASIC_TOKEN", basic.is_none()),
                ("SIGNNOW_USERNAME", username.is_none()),
                ("SIGNNOW_PASSWORD", password.is_none()),
            ]
            .into_iter()
            .find(|(_, is_missing)| *is_missing);
            if let Some((variable, _)) = missing {
                return Err(ConfigError::new(
                    variable,
                    "is required for the signNow password grant",
                ));
            }
            Some(Credentials::SignNowPassword {
                basic_token: Secret::new(basic.unwrap_or_default()),
                username: username.unwrap_or_default().to_owned(),
                password: Secret::new(password.unwrap_or_default()),
            })
        }
    };
    if let Some(credentials) = signnow_credentials {
        let sender_email = get("SIGNNOW_SENDER_EMAIL").map(str::to_owned);
        if let Some(email) = &sender_email
            && !crate::validate::is_email(email)
        {
            return Err(ConfigError::new(
                "SIGNNOW_SENDER_EMAIL",
                "is not an email address",
            ));
        }
        accounts.push(AccountConfig {
            provider: ProviderKind::SignNow,
            name: DEFAULT_ACCOUNT.to_owned(),
            base_url: parse_base_url(
                "SIGNNOW_BASE_URL",
                get("SIGNNOW_BASE_URL").unwrap_or(SIGNNOW_EVAL_URL),
            )?,
            credentials,
            sender_email,
            sign_url_host: None,
            bynn_limits: BynnLimits::default(),
            signnow_resend_id: match get("SIGNNOW_RESEND_ID") {
                Some(value) => SignNowResendId::parse("SIGNNOW_RESEND_ID", value)?,
                None => SignNowResendId::default(),
            },
        });
    } else if get("SIGNNOW_BASE_URL").is_some() {
        return Err(ConfigError::new(
            "SIGNNOW_BASIC_TOKEN",
            "signNow credentials are required when SIGNNOW_BASE_URL is set",
        ));
    }

    if let Some(key) = get("BYNN_API_KEY") {
        let mut limits = BynnLimits::default();
        if let Some(value) = get("BYNN_RESENDS_PER_MINUTE") {
            limits.resends_per_minute = parse_positive("BYNN_RESENDS_PER_MINUTE", value)?;
        }
        if let Some(value) = get("BYNN_REQUESTS_PER_MINUTE") {
            limits.requests_per_minute = parse_positive("BYNN_REQUESTS_PER_MINUTE", value)?;
        }
        accounts.push(AccountConfig {
            provider: ProviderKind::Bynn,
            name: DEFAULT_ACCOUNT.to_owned(),
            base_url: parse_base_url("BYNN_BASE_URL", get("BYNN_BASE_URL").unwrap_or(BYNN_URL))?,
            credentials: Credentials::Bynn {
                api_key: Secret::new(key),
            },
            sender_email: None,
            sign_url_host: None,
            bynn_limits: limits,
            signnow_resend_id: SignNowResendId::default(),
        });
    } else if get("BYNN_BASE_URL").is_some() {
        return Err(ConfigError::new(
            "BYNN_API_KEY",
            "is required when BYNN_BASE_URL is set",
        ));
    }
    Ok(accounts)
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let variable = "GATEWAY_CONFIG";
    let text = std::fs::read_to_string(path).map_err(|error| {
        ConfigError::new(variable, format!("cannot read {}: {error}", path.display()))
    })?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    match extension {
        "toml" => toml::from_str(&text).map_err(|error| {
            ConfigError::new(variable, format!("{}: {}", path.display(), error.message()))
        }),
        "yaml" | "yml" => serde_yaml::from_str(&text)
            .map_err(|error| ConfigError::new(variable, format!("{}: {error}", path.display()))),
        _ => Err(ConfigError::new(
            variable,
            format!(
                "{}: the file name must end in .toml, .yaml or .yml",
                path.display()
            ),
        )),
    }
}

fn file_timeouts(file: &FileTimeouts, defaults: Timeouts) -> Result<Timeouts, ConfigError> {
    let pick =
        |key: &str, value: Option<u64>, default: Duration| -> Result<Duration, ConfigError> {
            match value {
                None => Ok(default),
                Some(0) => Err(ConfigError::new(
                    format!("timeouts.{key}"),
                    "must be greater than 0",
                )),
                Some(ms) if ms > 600_000 => Err(ConfigError::new(
                    format!("timeouts.{key}"),
                    "must be at most 600000",
                )),
                Some(ms) => Ok(Duration::from_millis(ms)),
            }
        };
    Ok(Timeouts {
        connect: pick("connect_ms", file.connect_ms, defaults.connect)?,
        read: pick("read_ms", file.read_ms, defaults.read)?,
        write: pick("write_ms", file.write_ms, defaults.write)?,
        upload: pick("upload_ms", file.upload_ms, defaults.upload)?,
        token: pick("token_ms", file.token_ms, defaults.token)?,
    })
}

fn file_account(
    account: FileAccount,
    index: usize,
    env: &HashMap<String, String>,
) -> Result<AccountConfig, ConfigError> {
    let key = |field: &str| format!("accounts[{index}].{field}");
    let provider = ProviderKind::parse(&account.provider)
        .ok_or_else(|| ConfigError::new(key("provider"), "must be leegality, signnow or bynn"))?;
    if account.name.is_empty()
        || !account
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ConfigError::new(
            key("name"),
            "must be non-empty letters, digits, '-' or '_'",
        ));
    }
    let secret = |field: &str, value: Option<FileSecret>| -> Result<Option<Secret>, ConfigError> {
        match value {
            None => Ok(None),
            Some(FileSecret::Inline(value)) if value.is_empty() => {
                Err(ConfigError::new(key(field), "is empty"))
            }
            Some(FileSecret::Inline(value)) => Ok(Some(Secret::new(value))),
            Some(FileSecret::FromEnv { env: name }) => {
                match env.get(&name).filter(|v| !v.is_empty()) {
                    Some(value) => Ok(Some(Secret::new(value.clone()))),
                    None => Err(ConfigError::new(
                        key(field),
                        format!("environment variable {name} is not set"),
                    )),
                }
            }
        }
    };
    let require = |field: &str, value: Option<Secret>| {
        value.ok_or_else(|| {
            ConfigError::new(key(field), format!("is required for a {provider} account"))
        })
    };
    let default_url = match provider {
        ProviderKind::Leegality => LEEGALITY_SANDBOX_URL,
        ProviderKind::SignNow => SIGNNOW_EVAL_URL,
        ProviderKind::Bynn => BYNN_URL,
    };
    let base_url = parse_base_url(
        &key("base_url"),
        account.base_url.as_deref().unwrap_or(default_url),
    )?;
    let credentials = match provider {
        ProviderKind::Leegality => Credentials::Leegality {
            auth_token: require("auth_token", secret("auth_token", account.auth_token)?)?,
        },
        ProviderKind::SignNow => match secret("access_token", account.access_token)? {
            Some(access_token) => Credentials::SignNowAccessToken { access_token },
            None => Credentials::SignNowPassword {
                basic_token: require("basic_token", secret("basic_token", account.basic_token)?)?,
                username: account.username.filter(|u| !u.is_empty()).ok_or_else(|| {
                    ConfigError::new(
                        key("username"),
                        "is required for the signNow password grant",
                    )
                })?,
                password: require("password", secret("password", account.password)?)?,
            },
        },
        ProviderKind::Bynn => Credentials::Bynn {
            api_key: require("api_key", secret("api_key", account.api_key)?)?,
        },
    };
    if let Some(email) = &account.sender_email
        && !crate::validate::is_email(email)
    {
        return Err(ConfigError::new(
            key("sender_email"),
            "is not an email address",
        ));
    }
    let signnow_resend_id = match (&account.resend_id, provider) {
        (None, _) => SignNowResendId::default(),
        (Some(value), ProviderKind::SignNow) => SignNowResendId::parse(&key("resend_id"), value)?,
        (Some(_), _) => {
            return Err(ConfigError::new(
                key("resend_id"),
                "applies to signNow accounts only",
            ));
        }
    };
    let mut bynn_limits = BynnLimits::default();
    if let Some(value) = account.resends_per_minute {
        if value == 0 {
            return Err(ConfigError::new(
                key("resends_per_minute"),
                "must be greater than 0",
            ));
        }
        bynn_limits.resends_per_minute = value;
    }
    if let Some(value) = account.requests_per_minute {
        if value == 0 {
            return Err(ConfigError::new(
                key("requests_per_minute"),
                "must be greater than 0",
            ));
        }
        bynn_limits.requests_per_minute = value;
    }
    Ok(AccountConfig {
        provider,
        name: account.name,
        sign_url_host: account.sign_url_host.or_else(|| {
            (provider == ProviderKind::Leegality)
                .then(|| base_url.host_str().unwrap_or_default().to_owned())
        }),
        base_url,
        credentials,
        sender_email: account.sender_email,
        bynn_limits,
        signnow_resend_id,
    })
}

fn parse_addr(variable: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError::new(
            variable,
            format!("{value:?} is not a socket address such as 0.0.0.0:50051"),
        )
    })
}

fn parse_url(variable: &str, value: &str) -> Result<Url, ConfigError> {
    Url::parse(value)
        .map_err(|error| ConfigError::new(variable, format!("{value:?} is not a URL: {error}")))
}

fn parse_base_url(variable: &str, value: &str) -> Result<Url, ConfigError> {
    let mut url = parse_url(variable, value)?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::new(
            variable,
            "must be an http(s) URL with a host",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            variable,
            "must not have a query or fragment",
        ));
    }
    // Paths are appended to the base, so normalise it to end without '/'.
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    Ok(url)
}

fn parse_seconds(
    variable: &str,
    value: Option<&str>,
    default: u64,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(Duration::from_secs(default)),
        Some(value) => value
            .parse::<u64>()
            .ok()
            .filter(|seconds| *seconds <= 3600)
            .map(Duration::from_secs)
            .ok_or_else(|| {
                ConfigError::new(
                    variable,
                    format!("{value:?} is not a number of seconds (0 to 3600)"),
                )
            }),
    }
}

fn parse_positive(variable: &str, value: &str) -> Result<u32, ConfigError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ConfigError::new(variable, format!("{value:?} is not a positive integer")))
}

/// The accounts of one provider, keyed by name, for quick lookups in tests.
pub fn accounts_by_name(config: &Config, provider: ProviderKind) -> BTreeMap<&str, &AccountConfig> {
    config
        .accounts
        .iter()
        .filter(|a| a.provider == provider)
        .map(|a| (a.name.as_str(), a))
        .collect()
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    const VARIABLES: &[&str] = &[
        "GATEWAY_LISTEN_ADDR",
        "GATEWAY_METRICS_ADDR",
        "GATEWAY_DRAIN_SECONDS",
        "GATEWAY_SHUTDOWN_GRACE_SECONDS",
        "GATEWAY_REDIS_URL",
        "GATEWAY_LOG_FORMAT",
        "GATEWAY_MAX_IN_FLIGHT",
        "GATEWAY_IDEMPOTENCY_TTL_SECONDS",
        "GATEWAY_BREAKER_FAILURES",
        "GATEWAY_AUTH_REFLECTION",
        "LEEGALITY_BASE_URL",
        "LEEGALITY_AUTH_TOKEN",
        "SIGNNOW_BASE_URL",
        "SIGNNOW_USERNAME",
        "SIGNNOW_PASSWORD",
        "SIGNNOW_BASIC_TOKEN",
        "SIGNNOW_SENDER_EMAIL",
        "SIGNNOW_RESEND_ID",
        "BYNN_BASE_URL",
        "BYNN_API_KEY",
        "BYNN_RESENDS_PER_MINUTE",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ];

    proptest! {
        /// Any environment either loads or names the variable at fault.
        #[test]
        fn any_environment_loads_or_names_the_variable(
            values in prop::collection::vec((0..VARIABLES.len(), any::<String>()), 0..8),
        ) {
            let env: HashMap<String, String> = values
                .into_iter()
                .map(|(index, value)| (VARIABLES[index].to_owned(), value))
                .collect();
            if let Err(error) = load(&env, None) {
                prop_assert!(!error.variable.is_empty());
                prop_assert!(!error.message.is_empty());
            }
        }

        #[test]
        fn any_config_file_loads_or_is_refused(text in any::<String>()) {
            let path = std::env::temp_dir().join(format!("esign-prop-{}.toml", uuid::Uuid::new_v4()));
            std::fs::write(&path, &text).unwrap();
            let _ = load(&HashMap::new(), Some(&path));
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn empty_environment_gives_defaults_and_no_accounts() {
        let config = load(&env(&[]), None).unwrap();
        assert_eq!(config.listen_addr.to_string(), "0.0.0.0:50051");
        assert!(config.accounts.is_empty());
    }

    #[test]
    fn each_provider_is_enabled_by_its_credentials() {
        let config = load(
            &env(&[
                ("LEEGALITY_AUTH_TOKEN", "l-token"),
                ("SIGNNOW_ACCESS_TOKEN", "s-token"),
                ("BYNN_API_KEY", "private_sandbox_x"),
                ("BYNN_BASE_URL", "http://127.0.0.1:9/v1/"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(config.accounts.len(), 3);
        let bynn = &accounts_by_name(&config, ProviderKind::Bynn)["default"];
        assert_eq!(bynn.base_url.as_str(), "http://127.0.0.1:9/v1");
        let leegality = &accounts_by_name(&config, ProviderKind::Leegality)["default"];
        assert_eq!(
            leegality.sign_url_host.as_deref(),
            Some("sandbox.leegality.com")
        );
    }

    #[test]
    fn a_partial_signnow_password_grant_names_the_missing_variable() {
        let error = load(
            &env(&[("SIGNNOW_BASIC_TOKEN", "b"), ("SIGNNOW_USERNAME", "u")]),
            None,
        )
        .unwrap_err();
        assert_eq!(error.variable, "SIGNNOW_PASSWORD");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (variable, value) in [
            ("GATEWAY_LISTEN_ADDR", "not-an-address"),
            ("GATEWAY_DRAIN_SECONDS", "-3"),
            ("GATEWAY_REDIS_URL", "http://localhost"),
            ("GATEWAY_LOG_FORMAT", "xml"),
        ] {
            let error = load(&env(&[(variable, value)]), None).unwrap_err();
            assert_eq!(error.variable, variable, "{error}");
        }
        let error = load(
            &env(&[("BYNN_API_KEY", "k"), ("BYNN_BASE_URL", "ftp://x")]),
            None,
        )
        .unwrap_err();
        assert_eq!(error.variable, "BYNN_BASE_URL");
    }

    #[test]
    fn config_file_adds_named_accounts_with_secrets_from_env() {
        let dir = std::env::temp_dir().join(format!("esign-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("accounts.toml");
        std::fs::write(
            &path,
            r#"
[[accounts]]
provider = "bynn"
name = "tenant-a"
api_key = { env = "TENANT_A_KEY" }
resends_per_minute = 5

[timeouts]
read_ms = 2500
"#,
        )
        .unwrap();
        let config = load(&env(&[("TENANT_A_KEY", "private_a")]), Some(&path)).unwrap();
        let account = &accounts_by_name(&config, ProviderKind::Bynn)["tenant-a"];
        assert_eq!(account.bynn_limits.resends_per_minute, 5);
        assert_eq!(config.timeouts.read, Duration::from_millis(2500));

        let error = load(&env(&[]), Some(&path)).unwrap_err();
        assert_eq!(error.variable, "accounts[0].api_key");

        let yaml = dir.join("accounts.yaml");
        std::fs::write(&yaml, "accounts:\n  - provider: leegality\n    name: prod\n    auth_token: t\n    base_url: https://app1.leegality.com/api\n").unwrap();
        let config = load(&env(&[]), Some(&yaml)).unwrap();
        let account = &accounts_by_name(&config, ProviderKind::Leegality)["prod"];
        assert_eq!(account.sign_url_host.as_deref(), Some("app1.leegality.com"));
        std::fs::remove_dir_all(dir).ok();
    }
}
