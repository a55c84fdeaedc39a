//! cordon's policy gateway: the rules a platform team writes, and the decisions they make
//! on every tool call, shell command, workspace path and network request.
//!
//! A policy is one or more TOML files (a file may `extends` a pack built into cordon or
//! another file). Rules name tools, commands (program and argument prefixes, matched on
//! each simple command a real bash parser finds in the command line), paths (globs, read
//! and write) and network destinations (hosts, ports, methods). Every call also falls in a
//! risk class, and the policy gives each class a default. When several rules apply, the
//! strictest wins: deny, then ask, then allow.
//!
//! ```
//! use cordon_policy::{Policy, RiskClass, Verdict};
//!
//! let policy = Policy::builtin("stage").unwrap().unwrap();
//! let call = r#"{"cmd": "cargo test && git push origin main"}"#;
//! let decision = policy.decide_call("exec_command", call, RiskClass::WorkspaceWrite);
//! assert_eq!(decision.verdict, Verdict::Ask);
//! assert_eq!(decision.deciding_keys(), ["git-push"]);
//! ```

mod classify;
pub mod command;
mod decision;
mod file;
mod policy;
pub mod rules;

pub use classify::{classify, runs_other_code};
pub use decision::{Decision, Reason, RiskClass, Verdict};
pub use file::{MAX_POLICY_BYTES, PACKS, PolicyError, Source, is_path};
pub use policy::{Policy, Request, canonical_host, is_private_address, normalize_host};
