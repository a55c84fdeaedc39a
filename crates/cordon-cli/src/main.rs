//! The `cordon` command: run agents, list and inspect their runs, verify run logs.

mod cli;
mod commands;
mod display;
mod exit;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Inside a sandbox, this binary is the supervisor. It must start before anything else
    // (no runtime, no threads): it confines itself first.
    if let Some(code) = cordon_sandbox::supervisor::main_if_asked() {
        return code;
    }
    let cli = cli::Cli::parse();
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return exit::report(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(e) => exit::report(&e),
    }
}

/// Logs go to stderr: warnings by default, more with `-v`, or as `RUST_LOG` says.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
