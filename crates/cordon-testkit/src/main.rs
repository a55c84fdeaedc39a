//! `cordon-testkit serve`: the scripted model server as a program, so anyone can point cordon,
//! or another harness, at it.

use anyhow::Context;
use clap::{Parser, Subcommand};
use cordon_testkit::{Script, ScriptedServer};
use std::path::PathBuf;

/// Test support for cordon.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a script over the OpenAI Responses and Chat Completions protocols.
    ///
    /// Prints the base URL (`http://HOST:PORT/v1`) on its first line, then serves until
    /// interrupted. Each request takes the next turn of the script.
    Serve {
        /// The script (TOML, or JSON by extension).
        #[arg(long)]
        script: PathBuf,
        /// Port to listen on (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Append each request received as a JSON line to this file.
        #[arg(long)]
        requests_log: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve {
            script,
            port,
            host,
            requests_log,
        } => {
            let script = Script::load(&script)?;
            let addr = format!("{host}:{port}")
                .parse()
                .with_context(|| format!("'{host}:{port}' is not an address to listen on"))?;
            let server = ScriptedServer::bind(script, addr, requests_log).await?;
            println!("{}", server.base_url());
            tokio::signal::ctrl_c().await?;
            Ok(())
        }
    }
}
