//! Settings from environment variables: the gateway's own, and each
//! provider's default account.

use std::path::PathBuf;

use super::*;

/// The gateway's own settings from the environment; accounts and
/// timeouts are filled in by the caller.
pub(super) fn gateway<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<Config, ConfigError> {
    let listen_addr = parse_addr(
        "GATEWAY_LISTEN_ADDR",
        get("GATEWAY_LISTEN_ADDR").unwrap_or(defaults::LISTEN_ADDR),
    )?;
    let metrics_addr = match get("GATEWAY_METRICS_ADDR") {
        Some("off") | Some("none") => None,
        Some(value) => Some(parse_addr("GATEWAY_METRICS_ADDR", value)?),
        None => Some(parse_addr("GATEWAY_METRICS_ADDR", defaults::METRICS_ADDR)?),
    };
    let drain_delay = parse_seconds(
        "GATEWAY_DRAIN_SECONDS",
        get("GATEWAY_DRAIN_SECONDS"),
        defaults::DRAIN_SECONDS,
    )?;
    let shutdown_grace = parse_seconds(
        "GATEWAY_SHUTDOWN_GRACE_SECONDS",
        get("GATEWAY_SHUTDOWN_GRACE_SECONDS"),
        defaults::SHUTDOWN_GRACE_SECONDS,
    )?;

    let redis = redis(get)?;
    let webhook_addr = match get("GATEWAY_WEBHOOK_ADDR") {
        Some("off") | Some("none") => None,
        Some(value) => Some(parse_addr("GATEWAY_WEBHOOK_ADDR", value)?),
        None => Some(parse_addr("GATEWAY_WEBHOOK_ADDR", defaults::WEBHOOK_ADDR)?),
    };
    let event_retention = parse_bounded(
        "GATEWAY_EVENT_RETENTION_HOURS",
        get("GATEWAY_EVENT_RETENTION_HOURS"),
        defaults::EVENT_RETENTION_HOURS,
        1..=24 * 365,
    )
    .map(|hours| Duration::from_secs(hours * 3600))?;
    let event_retention_max = parse_bounded(
        "GATEWAY_EVENT_RETENTION_MAX",
        get("GATEWAY_EVENT_RETENTION_MAX"),
        defaults::EVENT_RETENTION_MAX,
        100..=100_000_000,
    )? as usize;
    let bynn_poll_interval = parse_bounded(
        "BYNN_POLL_SECONDS",
        get("BYNN_POLL_SECONDS"),
        defaults::BYNN_POLL_SECONDS,
        1..=3600,
    )
    .map(Duration::from_secs)?;
    let claim_lease = parse_bounded(
        "GATEWAY_CLAIM_LEASE_SECONDS",
        get("GATEWAY_CLAIM_LEASE_SECONDS"),
        defaults::CLAIM_LEASE_SECONDS,
        1..=3600,
    )
    .map(Duration::from_secs)?;
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

    Ok(Config {
        listen_addr,
        metrics_addr,
        accounts: Vec::new(),
        timeouts: Timeouts::default(),
        drain_delay,
        shutdown_grace,
        redis,
        claim_lease,
        webhook_addr,
        event_retention,
        event_retention_max,
        bynn_poll_interval,
        otlp_endpoint,
        tls,
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
        max_provider_body_bytes: defaults::MAX_PROVIDER_BODY_BYTES,
        idempotency_ttl: parse_bounded(
            "GATEWAY_IDEMPOTENCY_TTL_SECONDS",
            get("GATEWAY_IDEMPOTENCY_TTL_SECONDS"),
            defaults::IDEMPOTENCY_TTL_SECONDS,
            60..=7 * 86_400,
        )
        .map(Duration::from_secs)?,
        max_in_flight: parse_bounded(
            "GATEWAY_MAX_IN_FLIGHT",
            get("GATEWAY_MAX_IN_FLIGHT"),
            defaults::MAX_IN_FLIGHT,
            1..=1_000_000,
        )? as usize,
        max_inflight_bytes: parse_bounded(
            "GATEWAY_MAX_INFLIGHT_BYTES",
            get("GATEWAY_MAX_INFLIGHT_BYTES"),
            defaults::MAX_INFLIGHT_BYTES,
            crate::grpc::inflight::smallest_budget() as u64..=1 << 40,
        )? as usize,
        breaker: BreakerConfig {
            failures: parse_bounded(
                "GATEWAY_BREAKER_FAILURES",
                get("GATEWAY_BREAKER_FAILURES"),
                u64::from(defaults::BREAKER_FAILURES),
                1..=1000,
            )? as u32,
            cooldown: parse_bounded(
                "GATEWAY_BREAKER_COOLDOWN_SECONDS",
                get("GATEWAY_BREAKER_COOLDOWN_SECONDS"),
                defaults::BREAKER_COOLDOWN_SECONDS,
                1..=3600,
            )
            .map(Duration::from_secs)?,
        },
    })
}

pub(super) fn parse_bounded(
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

pub(super) fn accounts<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Result<Vec<AccountConfig>, ConfigError> {
    let mut accounts = Vec::new();

    if let Some(token) = get("LEEGALITY_AUTH_TOKEN") {
        let base_url = parse_base_url(
            "LEEGALITY_BASE_URL",
            get("LEEGALITY_BASE_URL").unwrap_or(defaults::LEEGALITY_SANDBOX_URL),
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
            budgets: AccountBudgets::default(),
            signnow_resend_id: SignNowResendId::default(),
            webhook_secret: get("LEEGALITY_WEBHOOK_SALT").map(Secret::new),
            webhook_callback_url: None,
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
                get("SIGNNOW_BASE_URL").unwrap_or(defaults::SIGNNOW_EVAL_URL),
            )?,
            credentials,
            sender_email,
            sign_url_host: None,
            budgets: AccountBudgets::default(),
            signnow_resend_id: match get("SIGNNOW_RESEND_ID") {
                Some(value) => SignNowResendId::parse("SIGNNOW_RESEND_ID", value)?,
                None => SignNowResendId::default(),
            },
            webhook_secret: get("SIGNNOW_WEBHOOK_SECRET").map(Secret::new),
            webhook_callback_url: match get("SIGNNOW_WEBHOOK_CALLBACK_URL") {
                Some(url) => Some(parse_url("SIGNNOW_WEBHOOK_CALLBACK_URL", url)?.to_string()),
                None => None,
            },
        });
    } else if get("SIGNNOW_BASE_URL").is_some() {
        return Err(ConfigError::new(
            "SIGNNOW_BASIC_TOKEN",
            "signNow credentials are required when SIGNNOW_BASE_URL is set",
        ));
    }

    if let Some(key) = get("BYNN_API_KEY") {
        let mut limits = AccountBudgets::for_provider(ProviderKind::Bynn);
        if let Some(value) = get("BYNN_RESENDS_PER_MINUTE") {
            limits.resends_per_minute = Some(parse_positive("BYNN_RESENDS_PER_MINUTE", value)?);
        }
        if let Some(value) = get("BYNN_REQUESTS_PER_MINUTE") {
            limits.requests_per_minute = Some(parse_positive("BYNN_REQUESTS_PER_MINUTE", value)?);
        }
        accounts.push(AccountConfig {
            provider: ProviderKind::Bynn,
            name: DEFAULT_ACCOUNT.to_owned(),
            base_url: parse_base_url(
                "BYNN_BASE_URL",
                get("BYNN_BASE_URL").unwrap_or(defaults::BYNN_URL),
            )?,
            credentials: Credentials::Bynn {
                api_key: Secret::new(key),
            },
            sender_email: None,
            sign_url_host: None,
            budgets: limits,
            signnow_resend_id: SignNowResendId::default(),
            webhook_secret: get("BYNN_WEBHOOK_PUBLIC_KEY").map(Secret::new),
            webhook_callback_url: None,
        });
    } else if get("BYNN_BASE_URL").is_some() {
        return Err(ConfigError::new(
            "BYNN_API_KEY",
            "is required when BYNN_BASE_URL is set",
        ));
    }
    Ok(accounts)
}

pub(super) fn parse_addr(variable: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError::new(
            variable,
            format!("{value:?} is not a socket address such as 0.0.0.0:50051"),
        )
    })
}

pub(super) fn parse_url(variable: &str, value: &str) -> Result<Url, ConfigError> {
    Url::parse(value)
        .map_err(|error| ConfigError::new(variable, format!("{value:?} is not a URL: {error}")))
}

pub(super) fn parse_base_url(variable: &str, value: &str) -> Result<Url, ConfigError> {
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

pub(super) fn parse_seconds(
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

pub(super) fn parse_positive(variable: &str, value: &str) -> Result<u32, ConfigError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ConfigError::new(variable, format!("{value:?} is not a positive integer")))
}

/// The shared state store: one server (`GATEWAY_REDIS_URL`, `redis://` or
/// `rediss://`) or a cluster (`GATEWAY_REDIS_CLUSTER_URLS`), with an extra
/// CA for TLS (`GATEWAY_REDIS_CA_FILE`). Parsed here once; anything unusable
/// stops the start (exit 64), never a quiet fall-back to memory.
fn redis<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<Option<RedisConfig>, ConfigError> {
    let url = get("GATEWAY_REDIS_URL");
    let cluster = get("GATEWAY_REDIS_CLUSTER_URLS");
    let ca_file = get("GATEWAY_REDIS_CA_FILE");
    let (url, cluster_urls) = match (url, cluster) {
        (None, None) => {
            if ca_file.is_some() {
                return Err(ConfigError::new(
                    "GATEWAY_REDIS_CA_FILE",
                    "needs GATEWAY_REDIS_URL or GATEWAY_REDIS_CLUSTER_URLS",
                ));
            }
            return Ok(None);
        }
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                "GATEWAY_REDIS_CLUSTER_URLS",
                "set either GATEWAY_REDIS_URL (one server) or GATEWAY_REDIS_CLUSTER_URLS, not both",
            ));
        }
        (Some(url), None) => (Some(redis_url("GATEWAY_REDIS_URL", url)?), Vec::new()),
        (None, Some(list)) => {
            let urls = list
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(|u| redis_url("GATEWAY_REDIS_CLUSTER_URLS", u))
                .collect::<Result<Vec<_>, _>>()?;
            if urls.is_empty() {
                return Err(ConfigError::new(
                    "GATEWAY_REDIS_CLUSTER_URLS",
                    "lists no node",
                ));
            }
            (None, urls)
        }
    };
    let ca_pem = match ca_file {
        None => None,
        Some(path) => {
            let pem = std::fs::read(path).map_err(|error| {
                ConfigError::new(
                    "GATEWAY_REDIS_CA_FILE",
                    format!("cannot read {path}: {error}"),
                )
            })?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(ConfigError::new(
                    "GATEWAY_REDIS_CA_FILE",
                    format!("{path} holds no PEM certificate"),
                ));
            }
            Some(pem)
        }
    };
    Ok(Some(RedisConfig {
        url,
        cluster_urls,
        ca_pem,
    }))
}

fn redis_url(variable: &str, value: &str) -> Result<String, ConfigError> {
    use redis::IntoConnectionInfo as _;
    let url = parse_url(variable, value)?;
    if !matches!(url.scheme(), "redis" | "rediss") || url.host_str().is_none() {
        return Err(ConfigError::new(
            variable,
            "must be a redis:// or rediss:// URL: redis[s]://[[user]:password@]host[:port][/db]",
        ));
    }
    value.into_connection_info().map_err(|error| {
        ConfigError::new(variable, format!("is not a usable Redis URL: {error}"))
    })?;
    Ok(value.to_owned())
}
