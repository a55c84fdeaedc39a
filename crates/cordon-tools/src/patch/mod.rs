//! `apply_patch`: the `*** Begin Patch` / `*** End Patch` format, applied exactly and
//! atomically. Every operation is checked and every new content computed ([`plan`]) before
//! anything is written; on any error no file changes.

mod apply;
mod parse;
mod target;
mod tool;
mod write;

pub use apply::{ApplyError, Plan, plan};
pub use parse::{Hunk, Op, ParseError, parse};
pub use target::{PatchError, apply_in_sandbox, apply_to_dir, apply_to_dir_with};
pub use tool::{ApplyPatch, spec};
pub use write::between;
