//! Process entry: parse arguments, load config, pick a runtime, run.

use std::process::ExitCode;

use super::{Cli, Command, Parsed};
use crate::config::{Config, Overrides};
use crate::error::{Error, Result};

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io(format!("cannot start the async runtime: {e}")))
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; stop the daemon with SIGKILL");
            std::future::pending::<()>().await
        }
    }
}

fn serve(cli_config: Option<&std::path::Path>, overrides: &Overrides) -> Result<()> {
    let config = Config::load(cli_config, overrides)?;
    crate::telemetry::init(&config.log_level);
    let rt = runtime()?;
    actix_rt::System::with_tokio_rt(move || rt)
        .block_on(crate::daemon::run(config, shutdown_signal()))
}

fn dispatch(config_path: Option<&std::path::Path>, parsed: Parsed) -> Result<String> {
    let cli: Cli = match parsed {
        Parsed::Op { op, params, conn } => {
            return runtime()?.block_on(super::call::run(op, params, &conn, config_path))
        }
        Parsed::Other(cli) => cli,
    };
    match cli.command {
        Command::Init { path, engine } => super::init(&path, &engine),
        Command::Serve(args) => serve(config_path, &args.overrides()).map(|_| String::new()),
        Command::Mcp {
            data_dir,
            connect,
            http,
        } => {
            crate::telemetry::init("warn");
            if let Some(addr) = http {
                crate::mcp::check_http_addr(addr)?;
            }
            runtime()?.block_on(async move {
                let client = match connect {
                    Some(url) => {
                        crate::client::Client::connect(&crate::client::Target::Url(url)).await?
                    }
                    None => {
                        crate::mcp::ensure_daemon(
                            &data_dir,
                            config_path,
                            super::MCP_DAEMON_START_TIMEOUT,
                        )
                        .await?
                    }
                };
                match http {
                    Some(addr) => crate::mcp::serve_http(client, addr, shutdown_signal()).await,
                    None => crate::mcp::serve_stdio(client).await,
                }
            })?;
            Ok(String::new())
        }
        Command::Bench(args) => runtime()?.block_on(crate::bench::run(args)),
        other => runtime()?.block_on(super::run_other(other)),
    }
}

/// `main` of the binary.
pub fn main() -> ExitCode {
    let (config, parsed) = match super::parse_from(std::env::args_os()) {
        Ok(p) => p,
        Err(e) => e.exit(),
    };
    crate::tls::install_crypto_provider();
    match dispatch(config.as_deref(), parsed) {
        Ok(out) => {
            use std::io::Write as _;
            // A closed pipe (`… | head`) ends the output, not in a panic.
            if !out.is_empty() && writeln!(std::io::stdout(), "{out}").is_err() {
                return ExitCode::from(141);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.kind.exit_code())
        }
    }
}
