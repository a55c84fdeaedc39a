//! cordon's MCP client.
//!
//! An agent declares MCP servers by name (`[mcp_servers.NAME]` in its agent file, see
//! [`ServerSpec`]); each is started when a run starts and stopped when it ends:
//!
//! - a **stdio** server runs inside the run's sandbox by default, so its file access and
//!   network are the sandbox's;
//! - one declared `trusted = true` runs on the host, with only the environment it is given;
//! - a **streamable HTTP** server is reached by the harness, with credentials read from the
//!   host's environment (never recorded).
//!
//! Each server's tools are offered under a namespaced name (`server__tool`, see
//! [`names::namespaced`]) as ordinary [`cordon_tools::Tool`]s: approvals, budgets, the
//! policy and the run log treat them like any other tool. A server is a
//! [`cordon_tools::ToolSource`]: when it says its tool list changed, the runner lists it
//! again before the next model call.

mod http;
pub mod names;
pub mod result;
mod server;
pub mod spec;
mod transport;

pub use server::{McpServer, Place, ServerInfo};
pub use spec::{Resolved, Runs, ServerSpec, SpecError};
