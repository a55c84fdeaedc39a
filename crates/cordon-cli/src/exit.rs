//! Exit codes, and how errors are shown.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (the run completed; the chain verified) |
//! | 1 | the run failed (provider error, stream cut short, store error) |
//! | 2 | bad input: command line, agent file, config, model name, missing API key, unknown run |
//! | 3 | the run stopped because a budget (`max_turns`) ran out |
//! | 4 | `cordon verify` found a broken hash chain |
//! | 5 | the run is waiting for a person to approve a tool call |
//! | 130 | Ctrl-C: the first paused the run after its current step (resumable); a second aborted |

use std::fmt;
use std::process::ExitCode;

/// The run failed.
pub const RUN_FAILED: u8 = 1;
/// The user gave something cordon cannot use.
pub const BAD_INPUT: u8 = 2;
/// A budget ran out.
pub const BUDGET_EXCEEDED: u8 = 3;
/// The run log was tampered with.
pub const TAMPERED: u8 = 4;
/// The run waits for an approval.
pub const AWAITING_APPROVAL: u8 = 5;
/// Ctrl-C: paused (first) or aborted (second).
pub const INTERRUPTED: u8 = 130;

/// An error with its exit code and a hint saying what to do.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    /// Bad input, with a hint.
    pub fn bad_input(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Failure {
            code: BAD_INPUT,
            message: message.into(),
            hint: Some(hint.into()),
        })
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Prints an error (and its hint) to stderr and returns its exit code.
pub fn report(e: &anyhow::Error) -> ExitCode {
    match e.downcast_ref::<Failure>() {
        Some(f) => {
            eprintln!("error: {}", f.message);
            if let Some(h) = &f.hint {
                eprintln!("  hint: {h}");
            }
            ExitCode::from(f.code)
        }
        None => {
            eprintln!("error: {e:#}");
            ExitCode::from(RUN_FAILED)
        }
    }
}
