//! cordon's runner: the agent loop.
//!
//! A [`Runner`] binds an [`Agent`] (instructions, model settings, tools) to a model client
//! and a run store. It calls the model, runs the tool calls it asks for (concurrently when
//! it asks for several), feeds the results back, and repeats until a final answer or
//! `max_turns`. Every step is appended to the run log first; the run's state is the fold of
//! those events, so what the log says is what happened.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use cordon_harness::{Agent, Runner};
//! use cordon_model::{Api, ModelClient, ProviderConfig, Secret};
//! use std::sync::Arc;
//!
//! let provider = ProviderConfig::new("openai", Api::Responses, "https://api.openai.com/v1",
//!     Some(Secret::new(std::env::var("OPENAI_API_KEY")?)));
//! let client = Arc::new(ModelClient::new(provider)?);
//! let store = cordon_store::Store::open(std::path::Path::new("runs.db")).await?;
//! let agent = Agent::new("helper", "openai:gpt-5-mini", "gpt-5-mini")
//!     .instructions("Answer briefly.")
//!     .tool(cordon_tools::builtin::calculator());
//! let outcome = Runner::new(client, store).run(&agent, "What is 17 * 23?").await?;
//! println!("{}", outcome.output.unwrap_or_default());
//! # Ok(()) }
//! ```

mod agent;
pub mod approval;
mod artifacts;
pub mod budget;
mod checkpoint;
pub mod compaction;
pub mod guardrail;
pub mod handoff;
mod network;
mod observer;
mod output;
mod runner;

pub use agent::{Agent, AgentError, DEFAULT_MAX_TURNS};
pub use approval::ApprovalRules;
pub use artifacts::{ArtifactCollector, Collected};
pub use budget::{Budgets, Ledger, Price, Spent};
pub use checkpoint::{CheckpointError, CheckpointInfo, Checkpointer};
pub use compaction::Compaction;
pub use cordon_tools::{Effects, FunctionTool, Tool, ToolContext, ToolError, ToolOutput};
pub use handoff::{Handoff, History};
pub use network::NetworkFeed;
pub use observer::RunObserver;
pub use runner::{Resumption, RunError, RunOutcome, Runner};
