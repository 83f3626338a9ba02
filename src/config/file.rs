//! The optional config file (TOML): named accounts and timeouts.

use serde::Deserialize;

use super::{env::parse_base_url, *};

/// Adds the file's accounts and timeouts to `config`.
pub(super) fn merge(
    path: &Path,
    env: &HashMap<String, String>,
    config: &mut Config,
) -> Result<(), ConfigError> {
    let file = read_file(path)?;
    config.timeouts = file_timeouts(&file.timeouts, config.timeouts)?;
    for (index, account) in file.accounts.into_iter().enumerate() {
        let parsed = file_account(account, index, env)?;
        if config
            .accounts
            .iter()
            .any(|a| a.provider == parsed.provider && a.name == parsed.name)
        {
            return Err(ConfigError::new(
                format!("accounts[{index}].name"),
                format!(
                    "{} account {:?} is defined twice",
                    parsed.provider, parsed.name
                ),
            ));
        }
        config.accounts.push(parsed);
    }
    Ok(())
}

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
    webhook_secret: Option<FileSecret>,
    webhook_callback_url: Option<String>,
    resends_per_minute: Option<u32>,
    requests_per_minute: Option<u32>,
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
        // YAML is no longer read: its serde crate is unmaintained upstream.
        "yaml" | "yml" => Err(ConfigError::new(
            variable,
            format!(
                "{}: YAML config files are no longer read; write the same keys as TOML",
                path.display()
            ),
        )),
        _ => Err(ConfigError::new(
            variable,
            format!("{}: the file name must end in .toml", path.display()),
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
        ProviderKind::Leegality => defaults::LEEGALITY_SANDBOX_URL,
        ProviderKind::SignNow => defaults::SIGNNOW_EVAL_URL,
        ProviderKind::Bynn => defaults::BYNN_URL,
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
    let mut budgets = AccountBudgets::for_provider(provider);
    if let Some(value) = account.resends_per_minute {
        if value == 0 {
            return Err(ConfigError::new(
                key("resends_per_minute"),
                "must be greater than 0",
            ));
        }
        budgets.resends_per_minute = Some(value);
    }
    if let Some(value) = account.requests_per_minute {
        if value == 0 {
            return Err(ConfigError::new(
                key("requests_per_minute"),
                "must be greater than 0",
            ));
        }
        budgets.requests_per_minute = Some(value);
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
        budgets,
        signnow_resend_id,
        webhook_secret: secret("webhook_secret", account.webhook_secret)?,
        webhook_callback_url: account.webhook_callback_url,
    })
}
