//! cordon's workspace manifest: what a run's workspace starts with.
//!
//! A manifest (TOML; JSON and YAML by extension) declares entries by workspace-relative
//! path (inline files, directories, host files and directories, git repositories, object
//! store prefixes), environment, grants and output directories. [`load`] checks all of it
//! and reports every problem with its file, line and column; nothing is materialized from a
//! manifest with a problem.

pub mod context;
pub mod materialize;
pub mod objects;
pub mod schema;
pub mod tree;
pub mod validate;

pub use context::workspace_context;
pub use materialize::{MaterializeError, Receipt, materialize};
pub use validate::{Entry, EntryKind, Manifest, ManifestError, Output, Problem, load, parse};
