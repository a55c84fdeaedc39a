//! Exit codes, and how errors are shown.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (the run completed; the chain verified) |
//! | 1 | the run failed (provider error, stream cut short, store error) |
//! | 2 | bad input: command line, agent file, config, model name, missing API key, unknown run |
//! | 3 | the run stopped because a budget (`max_turns`) ran out |
//! | 4 | `cordon verify` found a broken hash chain |
//! | 5 | the run is waiting for a person to approve a tool call (its own, or a sub-agent's) |
//! | 6 | a guardrail stopped the run (on its task or its final answer) |
//! | 125 | no sandbox could be started |
//! | 130 | Ctrl-C: the first paused the run after its current step (resumable); a second aborted |
//! | 141 | whoever read stdout went away (`cordon runs \| head -1`): cordon stops quietly |

use crate::render::safe_lines;
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
/// A guardrail stopped the run.
pub const GUARDRAIL: u8 = 6;
/// Ctrl-C: paused (first) or aborted (second).
pub const INTERRUPTED: u8 = 130;
/// No sandbox could be started (as `cordon sandbox exec` reports it, like `env`'s 125).
pub const SANDBOX_FAILED: u8 = 125;
/// Whoever read stdout went away: 128 + SIGPIPE, as a shell reports other tools that a
/// closed pipe ended.
pub const BROKEN_PIPE: u8 = 141;

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

/// A store error as a failure: damage and tampering exit 4, bad input 2, the rest 1.
pub fn store_failure(e: &cordon_store::StoreError) -> anyhow::Error {
    use cordon_store::StoreErrorKind;
    let code = match e.kind() {
        StoreErrorKind::BadInput => BAD_INPUT,
        StoreErrorKind::Damaged => TAMPERED,
        StoreErrorKind::Full | StoreErrorKind::Other => RUN_FAILED,
    };
    anyhow::Error::new(Failure {
        code,
        message: e.to_string(),
        hint: Some(e.hint_text()),
    })
}

/// Prints an error (and its hint) to stderr and returns its exit code.
pub fn report(e: &anyhow::Error) -> ExitCode {
    if let Some(f) = e.downcast_ref::<Failure>() {
        eprintln!("error: {}", safe_lines(&f.message));
        if let Some(h) = &f.hint {
            eprintln!("  hint: {}", safe_lines(h));
        }
        return ExitCode::from(f.code);
    }
    if let Some(s) = e.downcast_ref::<cordon_session::SessionError>() {
        return report_session(s);
    }
    let store = e.downcast_ref::<cordon_store::StoreError>().or_else(|| {
        match e.downcast_ref::<cordon_harness::RunError>() {
            Some(cordon_harness::RunError::Store(s)) => Some(s),
            _ => None,
        }
    });
    if let Some(s) = store {
        return report(&store_failure(s));
    }
    eprintln!("error: {}", safe_lines(&chain(e)));
    ExitCode::from(RUN_FAILED)
}

/// A session error, with the exit code its kind calls for (a store error's by the store's
/// kind).
fn report_session(s: &cordon_session::SessionError) -> ExitCode {
    use cordon_session::ErrorKind;
    if let Some(store) = s.store_error() {
        return report(&store_failure(store));
    }
    let code = match s.kind() {
        ErrorKind::BadInput => BAD_INPUT,
        ErrorKind::Damaged => TAMPERED,
        ErrorKind::SandboxUnavailable => SANDBOX_FAILED,
        ErrorKind::Failed => RUN_FAILED,
    };
    let mut message = s.message().to_string();
    let mut cause = std::error::Error::source(s);
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = c.source();
    }
    eprintln!("error: {}", safe_lines(&message));
    if let Some(h) = s.hint_text() {
        eprintln!("  hint: {}", safe_lines(h));
    }
    ExitCode::from(code)
}

/// An error and its causes on one line, each cause said once: errors that already quote
/// their cause in their own message are not followed by it again.
fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
