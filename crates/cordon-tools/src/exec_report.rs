//! The text `exec_command` and `write_stdin` answer the model with (the reference SDK's
//! layout), written and read back in one place, so that what people are shown of a command
//! (`cordon show`, the live view) cannot drift from what the model was told.
//!
//! ```
//! use cordon_tools::exec_report::{ExecReport, ExecStatus};
//!
//! let report = ExecReport {
//!     chunk_id: "a1b2c3".into(),
//!     wall_secs: 0.25,
//!     status: ExecStatus::Exited(0),
//!     original_tokens: 3,
//!     dropped_bytes: 0,
//!     output: "hello\n".into(),
//! };
//! let text = report.to_string();
//! assert!(text.contains("Process exited with code 0"));
//! assert_eq!(ExecReport::parse(&text), Some(report));
//! ```

use std::fmt;

/// How a command stood when its answer was written.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecStatus {
    /// It exited with this code.
    Exited(i32),
    /// A signal ended it.
    Signaled(i32),
    /// It is still running, as this session.
    Running(u64),
    /// It ended some other way (it could not start, the sandbox stopped); the text says how.
    Ended(String),
}

/// One answer of `exec_command` or `write_stdin`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecReport {
    /// A short random id of this chunk of output.
    pub chunk_id: String,
    /// Seconds from the call to the answer.
    pub wall_secs: f64,
    /// How the command stood.
    pub status: ExecStatus,
    /// About how many tokens the whole output was, before any was cut.
    pub original_tokens: usize,
    /// Bytes of output cordon did not keep (it keeps the start and the end).
    pub dropped_bytes: u64,
    /// The output as the model got it.
    pub output: String,
}

/// Marks the output of a command killed by cordon's hard timeout.
pub const TIMEOUT_MARK: &str = "[cordon: killed after the ";

impl ExecReport {
    /// Reads an answer back; `None` when `text` is not one (an error message, say).
    pub fn parse(text: &str) -> Option<ExecReport> {
        // The head never holds this line, so its first occurrence ends the head.
        let (head, output) = text.split_once("\nOutput:\n")?;
        let mut lines = head.lines();
        let chunk_id = lines.next()?.strip_prefix("Chunk ID: ")?.to_string();
        let wall_secs = lines
            .next()?
            .strip_prefix("Wall time: ")?
            .strip_suffix(" seconds")?
            .parse()
            .ok()?;
        let status = ExecStatus::parse(lines.next()?)?;
        let original_tokens = lines
            .next()?
            .strip_prefix("Original token count: ")?
            .parse()
            .ok()?;
        let dropped_bytes = match lines.next() {
            Some(l) => l
                .strip_prefix("Output bytes dropped: ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?,
            None => 0,
        };
        if lines.next().is_some() {
            return None;
        }
        Some(ExecReport {
            chunk_id,
            wall_secs,
            status,
            original_tokens,
            dropped_bytes,
            output: output.to_string(),
        })
    }

    /// The hard timeout, in seconds, when cordon's hard timeout killed the command.
    pub fn timed_out_after(&self) -> Option<u64> {
        let at = self.output.rfind(TIMEOUT_MARK)?;
        self.output[at + TIMEOUT_MARK.len()..]
            .split('s')
            .next()?
            .parse()
            .ok()
    }
}

impl ExecStatus {
    fn parse(line: &str) -> Option<ExecStatus> {
        if let Some(code) = line.strip_prefix("Process exited with code ") {
            return code.parse().ok().map(ExecStatus::Exited);
        }
        if let Some(signal) = line.strip_prefix("Process was killed by signal ") {
            return signal.parse().ok().map(ExecStatus::Signaled);
        }
        if let Some(id) = line.strip_prefix("Process running with session ID ") {
            return id.parse().ok().map(ExecStatus::Running);
        }
        line.starts_with("Process ")
            .then(|| ExecStatus::Ended(line.to_string()))
    }
}

impl fmt::Display for ExecStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecStatus::Exited(c) => write!(f, "Process exited with code {c}"),
            ExecStatus::Signaled(s) => write!(f, "Process was killed by signal {s}"),
            ExecStatus::Running(id) => write!(f, "Process running with session ID {id}"),
            ExecStatus::Ended(how) => f.write_str(how),
        }
    }
}

impl fmt::Display for ExecReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Chunk ID: {}\nWall time: {:.4} seconds\n{}\nOriginal token count: {}\n",
            self.chunk_id, self.wall_secs, self.status, self.original_tokens
        )?;
        if self.dropped_bytes > 0 {
            writeln!(
                f,
                "Output bytes dropped: {} (cordon keeps the start and the end of a long output)",
                self.dropped_bytes
            )?;
        }
        write!(f, "Output:\n{}", self.output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(status: ExecStatus, dropped: u64, output: &str) -> ExecReport {
        ExecReport {
            chunk_id: "00ff12".into(),
            wall_secs: 1.5,
            status,
            original_tokens: 7,
            dropped_bytes: dropped,
            output: output.into(),
        }
    }

    #[test]
    fn every_status_reads_back_as_written() {
        for r in [
            report(ExecStatus::Exited(0), 0, "ok\n"),
            report(ExecStatus::Exited(-1), 0, ""),
            report(ExecStatus::Signaled(9), 10, "a\nOutput:\nb"),
            report(ExecStatus::Running(3), 0, "partial"),
            report(ExecStatus::Ended("Process failed: no shell".into()), 0, ""),
        ] {
            assert_eq!(ExecReport::parse(&r.to_string()), Some(r.clone()), "{r}");
        }
    }

    #[test]
    fn a_timeout_is_read_from_its_mark() {
        let r = report(
            ExecStatus::Signaled(9),
            0,
            "x\n[cordon: killed after the 30s hard timeout, with everything it started]\n",
        );
        assert_eq!(r.timed_out_after(), Some(30));
        assert_eq!(report(ExecStatus::Exited(0), 0, "").timed_out_after(), None);
    }

    #[test]
    fn other_text_is_not_a_report() {
        for text in [
            "",
            "error: no such session",
            "Chunk ID: x\nOutput:\n",
            "Chunk ID: x\nWall time: fast\nProcess exited with code 0\nOriginal token count: 1\nOutput:\n",
        ] {
            assert_eq!(ExecReport::parse(text), None, "{text:?}");
        }
    }
}
