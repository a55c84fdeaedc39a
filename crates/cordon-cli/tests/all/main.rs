//! cordon-cli's integration tests (the real `cordon` binary, end to end), in one test binary: one link, one process to start, shared helpers.

mod apply_patch;
mod approvals;
mod checkpoints;
#[allow(dead_code)] // each module uses part of it
mod common;
mod compaction;
mod compat;
mod compatibility;
mod conversations;
mod crash;
mod e2e;
mod evidence;
mod guardrails;
mod manifest;
mod mcp;
mod object_store;
mod policy;
mod resume;
mod sandbox_cli;
mod shell_sessions;
mod shell_tools;
mod skills;
mod snapshot_cli;
mod team;
mod trust;
mod view_image;
mod views;
