//! What the examples share: a session over a scratch directory, with the local sandbox
//! provider (the example program is its own sandboxes' supervisor) and the scripted model
//! server standing in for a model API.
//!
//! Run one with `cargo run -p cordon-examples --example sandboxed_task`; `cargo test` runs
//! them all.

use cordon_sandbox::{LocalProvider, SupervisorCommand};
use cordon_session::{Config, Models, Session, SessionBuilder, Snapshots};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// What an example's steps return.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A session builder keeping the run store, snapshots and workspaces under `dir`, making
/// sandboxes with this program as their supervisor, and resolving `scripted:FILE` models.
pub async fn session_builder(dir: &Path) -> Result<SessionBuilder> {
    let store = cordon_store::Store::open(&dir.join("runs.db")).await?;
    let mut models = Models::new(Config::default());
    cordon_session::scripted::register(&mut models);
    let provider = LocalProvider::new(SupervisorCommand::this_program()?);
    let snapshots = dir.join("snapshots").display().to_string();
    Ok(Session::builder(store)
        .models(models)
        .sandboxes(Arc::new(provider))
        .snapshots(Snapshots::open(Some(&snapshots))?)
        .workspaces(dir.join("workspaces")))
}

/// [`session_builder`], built.
pub async fn session(dir: &Path) -> Result<Session> {
    Ok(session_builder(dir).await?.build()?)
}

/// An example's `main`: the supervisor when started as one, else `body` on a runtime,
/// reporting its error.
pub fn main<F: std::future::Future<Output = Result<()>>>(body: impl FnOnce() -> F) -> ExitCode {
    // A program that makes sandboxes is also their supervisor: this comes first.
    if let Some(code) = cordon_sandbox::supervisor::main_if_asked() {
        return code;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(body()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Fails with `message` unless `holds`.
pub fn check(holds: bool, message: impl Into<String>) -> Result<()> {
    if holds {
        Ok(())
    } else {
        Err(message.into().into())
    }
}

/// Writes a scripted model's turns to a file and names the model that plays them.
pub fn scripted_model(dir: &Path, turns: &str) -> std::io::Result<String> {
    let path = dir.join("model-script.toml");
    std::fs::write(&path, turns)?;
    Ok(format!("scripted:{}", path.display()))
}
