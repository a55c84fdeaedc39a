//! The `cordon` command: run agents, list and inspect their runs, verify run logs.

mod cli;
mod commands;
mod display;
mod exit;
mod progress;
mod render;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Inside a sandbox, this binary is the supervisor. It must start before anything else
    // (no runtime, no threads): it confines itself first.
    if let Some(code) = cordon_sandbox::supervisor::main_if_asked() {
        return code;
    }
    quiet_on_broken_pipe();
    let cli = cli::Cli::parse().with_environment();
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

/// A reader of stdout that went away ends cordon quietly, as it ends other command-line
/// tools, instead of as a panic from `println!`.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload_as_str().unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(exit::BROKEN_PIPE.into());
        }
        default(info);
    }));
}

/// Logs go to stderr: warnings by default, more with `-v`, or as `RUST_LOG` says.
fn init_tracing(verbose: u8) {
    // rmcp's own lines repeat what MCP servers said (an echoed token among it); cordon
    // reports their failures itself, with the run's secrets replaced.
    let default = match verbose {
        0 => "warn,rmcp=off",
        1 => "info,rmcp=off",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .with_target(false)
        .init();
}
