//! Showing a run as it happens: text for people, JSON Lines for programs.
//!
//! What a script captures from stdout is exactly the final answer (or the final JSON object
//! for structured output). At a terminal the model's text streams to stdout as it comes.
//! Elsewhere stdout gets the final answer once the run completes, and what the model says on
//! the way (beside its tool calls) goes to stderr with the calls. Text from an attempt that
//! failed and was retried is marked on stderr.

use crate::render::event::entry;
use crate::render::{Limit, Style, clip};
use cordon_core::{Event, EventPayload};
use cordon_harness::RunObserver;
use cordon_model::StreamEvent;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

/// The live view for people: the answer as it streams, tool calls compactly on stderr.
/// (The runner replaces known secrets before anything reaches an observer.)
pub struct Human {
    /// Stream the model's text to stdout (a terminal: nothing there is captured).
    live_stdout: bool,
    err: Style,
    state: Mutex<Live>,
}

#[derive(Default)]
struct Live {
    /// Whether the last thing the stream wrote to stdout ended a line.
    out_mid_line: bool,
    /// Text streamed in the current attempt at the current turn.
    streamed: String,
}

impl Default for Human {
    fn default() -> Self {
        Human {
            live_stdout: std::io::stdout().is_terminal(),
            err: Style::stderr(),
            state: Mutex::default(),
        }
    }
}

impl Human {
    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends any line the stream left open, so that what follows starts on its own.
    fn end_lines(live: &mut Live) {
        if live.out_mid_line {
            println!();
            live.out_mid_line = false;
        }
    }

    fn stream(&self, live: &mut Live, t: &str) {
        live.streamed.push_str(t);
        if self.live_stdout {
            print!("{t}");
            let _ = std::io::stdout().flush();
            live.out_mid_line = !t.ends_with('\n');
        }
    }

    /// Prints a tool event compactly: a marked summary and the lines under it.
    fn tool_line(&self, mark: &str, p: &EventPayload) {
        let e = entry(p, self.err, Limit::Clip);
        eprintln!("  {mark} {}", e.summary);
        for line in e.details {
            eprintln!("      {line}");
        }
    }
}

impl RunObserver for Human {
    fn on_stream(&self, event: &StreamEvent) {
        let mut live = self.live();
        match event {
            StreamEvent::TextDelta(t) if !t.is_empty() => self.stream(&mut live, t),
            StreamEvent::Retrying {
                attempt,
                error,
                delay,
            } => {
                Self::end_lines(&mut live);
                let cut = if self.live_stdout && !live.streamed.is_empty() {
                    "the text above was cut off: "
                } else {
                    ""
                };
                eprintln!(
                    "  {} {cut}attempt {attempt} failed ({error}); retrying in {:.1}s",
                    self.err.yellow("↻"),
                    delay.as_secs_f64()
                );
                live.streamed.clear();
            }
            StreamEvent::TextDelta(_)
            | StreamEvent::ReasoningDelta(_)
            | StreamEvent::ToolCallStarted { .. } => {}
        }
    }

    fn on_event(&self, event: &Event) {
        let Ok(p) = crate::render::displayable(event) else {
            return;
        };
        let mut live = self.live();
        match &p {
            EventPayload::ModelRequest { .. } => live.streamed.clear(),
            EventPayload::ModelResponse { response, .. } => {
                let thought = response.reasoning_text();
                if let Some(first) = thought.lines().find(|l| !l.trim().is_empty()) {
                    // What the model thought, in brief: `cordon show` has all of it.
                    Self::end_lines(&mut live);
                    eprintln!(
                        "  {}",
                        self.err.dim(&format!("∴ {}", clip(first.trim(), 120)))
                    );
                }
                let said = response.text();
                if self.live_stdout {
                    // A provider that does not stream (or a stream that sent the text only in
                    // its final object) still shows what the model said.
                    if live.streamed.trim().is_empty() && !said.trim().is_empty() {
                        self.stream(&mut live, &said);
                    }
                } else if !response.tool_calls().is_empty() && !said.trim().is_empty() {
                    // Not the final answer (stdout gets that): what the model says beside its
                    // calls belongs with them.
                    for line in said.trim().lines() {
                        eprintln!("  {}", self.err.dim(&format!("“ {line}")));
                    }
                }
                Self::end_lines(&mut live);
            }
            EventPayload::ToolCallIntent { .. } => {
                Self::end_lines(&mut live);
                self.tool_line("→", &p);
            }
            EventPayload::ToolResult { is_error, .. } => {
                let mark = if *is_error { "✗" } else { "←" };
                self.tool_line(mark, &p);
            }
            EventPayload::ToolReplayed { .. } => self.tool_line("↻", &p),
            EventPayload::OutputInvalid { error } => {
                Self::end_lines(&mut live);
                let shown = if self.live_stdout {
                    "the answer above was not accepted: "
                } else {
                    ""
                };
                eprintln!(
                    "  {} {shown}it does not match the output schema ({}); the model is asked again",
                    self.err.red("✗"),
                    crate::render::clip(error, 200)
                );
            }
            EventPayload::RunCompleted { .. } => {
                Self::end_lines(&mut live);
                // The answer exactly as recorded, not the copy made safe for a terminal: it
                // is what a script captures.
                if !self.live_stdout
                    && let Ok(EventPayload::RunCompleted { output, structured }) = event.typed()
                {
                    let answer = match structured {
                        Some(v) => serde_json::to_string(&v).unwrap_or_else(|_| output.clone()),
                        None => output.clone(),
                    };
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(answer.as_bytes());
                    if !answer.ends_with('\n') {
                        let _ = out.write_all(b"\n");
                    }
                    let _ = out.flush();
                }
            }
            EventPayload::RunStarted {
                policy: Some(policy),
                ..
            } => {
                Self::end_lines(&mut live);
                let files: Vec<&str> = policy.files.iter().map(|f| f.origin.as_str()).collect();
                eprintln!(
                    "  {}",
                    self.err.dim(&format!(
                        "under policy {} ({})",
                        clip(&policy.name, 64),
                        clip(&files.join(" < "), 200)
                    ))
                );
            }
            EventPayload::NetworkRequest { .. } => {
                Self::end_lines(&mut live);
                self.tool_line("⇄", &p);
            }
            EventPayload::McpServerStarted { .. }
            | EventPayload::ToolsChanged { .. }
            | EventPayload::GuardrailTripped { .. }
            | EventPayload::HandedOff { .. }
            | EventPayload::SpawnedBy { .. }
            | EventPayload::ToolSuspended { .. }
            | EventPayload::RunWaiting { .. }
            | EventPayload::ContextCompacted { .. } => {
                Self::end_lines(&mut live);
                let entry = crate::render::event::entry(
                    &p,
                    crate::render::Style::PLAIN,
                    crate::render::Limit::Clip,
                );
                eprintln!(
                    "  {}",
                    self.err.dim(&format!("{} {}", entry.label, entry.summary))
                );
            }
            EventPayload::RunStarted { .. }
            | EventPayload::HostGranted { .. }
            | EventPayload::HostRequested { .. }
            | EventPayload::WorkspaceMaterialized { .. }
            | EventPayload::ArtifactsCollected { .. }
            | EventPayload::SecretsRedacted { .. }
            | EventPayload::ConversationContinued { .. }
            | EventPayload::ContinuedBy { .. }
            | EventPayload::UserInput { .. }
            | EventPayload::ModelRetry { .. }
            | EventPayload::Checkpoint { .. }
            | EventPayload::ApprovalRequested { .. }
            | EventPayload::PolicyDecision { .. }
            | EventPayload::ApprovalGranted { .. }
            | EventPayload::ApprovalRejected { .. }
            | EventPayload::BudgetExceeded { .. }
            | EventPayload::RunResumed { .. }
            | EventPayload::RunPaused { .. }
            | EventPayload::RunFailed { .. } => Self::end_lines(&mut live),
        }
    }
}

/// Prints every event as one JSON line, as stored.
pub struct JsonLines;

impl RunObserver for JsonLines {
    fn on_event(&self, event: &Event) {
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer(&mut out, event);
        let _ = writeln!(out);
    }
}
