//! The command line: `serve` (the default) and `demo`.

use std::{collections::HashMap, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::{
    clock::Clock,
    config::{self, Config, ConfigError},
    server::RunningServer,
    telemetry,
};

/// Exit code for bad configuration (BSD EX_USAGE).
pub(crate) const EXIT_CONFIG: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "esign-gateway",
    version,
    about = "gRPC gateway for Leegality, signNow and Bynn e-signatures"
)]
struct Cli {
    /// Config file (TOML or YAML) with named accounts; same as GATEWAY_CONFIG.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway against the configured providers (the default).
    Serve,
    /// Run the gateway against the built-in provider simulator, no credentials needed.
    Demo,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let demo = matches!(cli.command, Some(Command::Demo));
    let mut config = match config::load(&env, cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => return config_failure(&error),
    };
    if demo && !env.contains_key("GATEWAY_DRAIN_SECONDS") {
        // Nothing routes to a demo through a load balancer: stop at once.
        config.drain_delay = std::time::Duration::ZERO;
    }
    if !demo && config.accounts.is_empty() {
        return config_failure(&ConfigError {
            variable: "LEEGALITY_AUTH_TOKEN".into(),
            message: "no provider is configured: set the credentials of at least one provider \
                      (LEEGALITY_AUTH_TOKEN, SIGNNOW_* or BYNN_API_KEY) or run `esign-gateway demo`"
                .into(),
        });
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("esign-gateway: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let _telemetry =
            telemetry::init(&config).map_err(|error| format!("cannot start telemetry: {error}"))?;
        if demo {
            crate::demo::run(config).await
        } else {
            serve(config).await
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(crate::server::RunError::Config(message)) => {
            eprintln!("esign-gateway: {message}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(crate::server::RunError::Runtime(message)) => {
            eprintln!("esign-gateway: {message}");
            ExitCode::FAILURE
        }
    }
}

fn config_failure(error: &ConfigError) -> ExitCode {
    eprintln!("esign-gateway: {error}");
    ExitCode::from(EXIT_CONFIG)
}

async fn serve(config: Config) -> Result<(), crate::server::RunError> {
    let listeners = crate::server::bind(&config).await?;
    let server = RunningServer::launch(&config, Clock::default(), listeners).await?;
    crate::server::shutdown_signal().await;
    server.shutdown().await;
    Ok(())
}
