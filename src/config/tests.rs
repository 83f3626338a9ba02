//! Unit and property tests of the loader.

mod properties {
    use proptest::prelude::*;

    use super::super::*;

    const VARIABLES: &[&str] = &[
        "GATEWAY_LISTEN_ADDR",
        "GATEWAY_METRICS_ADDR",
        "GATEWAY_DRAIN_SECONDS",
        "GATEWAY_SHUTDOWN_GRACE_SECONDS",
        "GATEWAY_REDIS_URL",
        "GATEWAY_LOG_FORMAT",
        "GATEWAY_MAX_IN_FLIGHT",
        "GATEWAY_MAX_INFLIGHT_BYTES",
        "GATEWAY_IDEMPOTENCY_TTL_SECONDS",
        "GATEWAY_BREAKER_FAILURES",
        "GATEWAY_AUTH_REFLECTION",
        "GATEWAY_REDIS_URL",
        "GATEWAY_REDIS_CLUSTER_URLS",
        "GATEWAY_CLAIM_LEASE_SECONDS",
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

mod unit {
    use std::collections::BTreeMap;

    use super::super::*;

    /// The accounts of one provider, keyed by name, for quick lookups in tests.
    fn accounts_by_name(config: &Config, provider: ProviderKind) -> BTreeMap<&str, &AccountConfig> {
        config
            .accounts
            .iter()
            .filter(|a| a.provider == provider)
            .map(|a| (a.name.as_str(), a))
            .collect()
    }

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
        assert_eq!(config.max_inflight_bytes, 160 * 1024 * 1024);
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
            // Too small to let the largest message through.
            ("GATEWAY_MAX_INFLIGHT_BYTES", "1048576"),
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
        assert_eq!(account.budgets.resends_per_minute, Some(5));
        assert_eq!(config.timeouts.read, Duration::from_millis(2500));

        let error = load(&env(&[]), Some(&path)).unwrap_err();
        assert_eq!(error.variable, "accounts[0].api_key");

        let toml = dir.join("accounts.toml");
        std::fs::write(&toml, "[[accounts]]\nprovider = \"leegality\"\nname = \"prod\"\nauth_token = \"t\"\nbase_url = \"https://app1.leegality.com/api\"\n").unwrap();
        let config = load(&env(&[]), Some(&toml)).unwrap();
        let account = &accounts_by_name(&config, ProviderKind::Leegality)["prod"];
        assert_eq!(account.sign_url_host.as_deref(), Some("app1.leegality.com"));

        // YAML is refused with a line that says what to do.
        let yaml = dir.join("accounts.yaml");
        std::fs::write(&yaml, "accounts: []\n").unwrap();
        let error = load(&env(&[]), Some(&yaml)).unwrap_err();
        assert!(error.message.contains("TOML"), "{error}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn redis_settings_are_checked_once_at_start() {
        let config = load(
            &env(&[("GATEWAY_REDIS_URL", "rediss://cache.internal:6380/2")]),
            None,
        )
        .unwrap();
        let redis = config.redis.unwrap();
        assert_eq!(redis.url.as_deref(), Some("rediss://cache.internal:6380/2"));
        assert_eq!(config.claim_lease, Duration::from_secs(30));

        let config = load(
            &env(&[(
                "GATEWAY_REDIS_CLUSTER_URLS",
                "redis://a:7000, redis://b:7001,redis://c:7002",
            )]),
            None,
        )
        .unwrap();
        assert_eq!(config.redis.unwrap().cluster_urls.len(), 3);

        for (pairs, variable) in [
            (
                vec![("GATEWAY_REDIS_URL", "http://cache:6379")],
                "GATEWAY_REDIS_URL",
            ),
            (
                vec![
                    ("GATEWAY_REDIS_URL", "redis://a"),
                    ("GATEWAY_REDIS_CLUSTER_URLS", "redis://b"),
                ],
                "GATEWAY_REDIS_CLUSTER_URLS",
            ),
            (
                vec![
                    ("GATEWAY_REDIS_URL", "rediss://a"),
                    ("GATEWAY_REDIS_CA_FILE", "/nonexistent/ca.pem"),
                ],
                "GATEWAY_REDIS_CA_FILE",
            ),
            (
                vec![("GATEWAY_REDIS_CA_FILE", "/tmp/ca.pem")],
                "GATEWAY_REDIS_CA_FILE",
            ),
            (
                vec![("GATEWAY_CLAIM_LEASE_SECONDS", "0")],
                "GATEWAY_CLAIM_LEASE_SECONDS",
            ),
        ] {
            let error = load(&env(&pairs), None).unwrap_err();
            assert_eq!(error.variable, variable, "{error}");
        }
    }
}
