use std::process::ExitCode;

use chat::config::{Cli, Command};
use chat::startup::Application;
use chat::{openapi, shutdown, telemetry};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        return print_openapi();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.settings.runtime_threads())
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(serve(cli)),
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: Cli) -> ExitCode {
    telemetry::init(cli.settings.log_format);
    let app = match Application::build(cli.settings).await {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let stop = app.shutdown_token();
    tokio::spawn(async move {
        shutdown::signal().await;
        stop.cancel();
    });
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}

fn print_openapi() -> ExitCode {
    match openapi::render() {
        Ok(document) => {
            print!("{document}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("cannot render the OpenAPI document: {error}");
            ExitCode::FAILURE
        }
    }
}
