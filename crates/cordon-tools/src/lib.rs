//! Model-facing tools for cordon.
//!
//! Every tool a run can be given is in a [`Registry`]: the built-ins
//! ([`Registry::builtin`]) and any a program adds beside them.
//!
//! A [`Tool`] has a [`ToolSpec`](cordon_core::ToolSpec) (what the model is told) and an
//! async `call` taking the model's exact input text. [`FunctionTool`] builds one from a
//! typed closure: the argument type's JSON schema comes from `schemars`, and arguments the
//! model gets wrong come back to it as a clear error instead of a crash.
//!
//! ```
//! use cordon_tools::{FunctionTool, ToolError};
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Greet {
//!     /// Who to greet.
//!     name: String,
//! }
//!
//! let tool = FunctionTool::new("greet", "Greets someone by name.", |a: Greet| async move {
//!     Ok::<_, ToolError>(format!("Hello, {}!", a.name))
//! });
//! # let _ = tool;
//! ```

pub mod builtin;
pub mod exec_report;
mod function;
pub mod image;
pub mod patch;
pub mod registry;
pub mod shell;
mod tool;
pub mod truncate;

pub use function::FunctionTool;
pub use registry::{Needs, Registration, Registry, RegistryError, ToolEnv};
pub use shell::ShellTools;
pub use tool::{
    Effects, RefreshFuture, Tool, ToolContext, ToolError, ToolFuture, ToolOutput, ToolSource,
};
