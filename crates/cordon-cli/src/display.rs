//! Showing a run as it happens: text for people, JSON Lines for programs.

use cordon_core::Event;
use cordon_harness::RunObserver;
use cordon_model::StreamEvent;
use std::io::Write;
use std::sync::Mutex;

/// Streams the answer to stdout and shows tool calls compactly on stderr, so
/// `cordon run ... > answer.txt` keeps just the answer. (The runner replaces known secrets
/// before anything reaches an observer.)
#[derive(Default)]
pub struct Human {
    /// Whether the last thing written to stdout ended a line.
    mid_line: Mutex<bool>,
}

impl Human {
    fn print(&self, t: &str) {
        if t.is_empty() {
            return;
        }
        print!("{t}");
        let _ = std::io::stdout().flush();
        *self.mid_line.lock().expect("display lock") = !t.ends_with('\n');
    }

    fn end_line(&self) {
        let mut mid = self.mid_line.lock().expect("display lock");
        if *mid {
            println!();
            *mid = false;
        }
    }
}

impl RunObserver for Human {
    fn on_stream(&self, event: &StreamEvent) {
        match event {
            StreamEvent::TextDelta(t) => self.print(t),
            StreamEvent::Retrying {
                attempt,
                error,
                delay,
            } => {
                self.end_line();
                eprintln!(
                    "  ↻ attempt {attempt} failed ({error}); retrying in {:.1}s",
                    delay.as_secs_f64()
                );
            }
            StreamEvent::ReasoningDelta(_) | StreamEvent::ToolCallStarted { .. } => {}
        }
    }

    fn on_event(&self, event: &Event) {
        let p = &event.payload;
        match event.kind.as_str() {
            "model_response" => self.end_line(),
            "tool_call_intent" => eprintln!(
                "  → {} {}",
                clip(&text(&p["tool"]), 64),
                clip(&text(&p["arguments"]), 120)
            ),
            "tool_result" => {
                let mark = if p["is_error"] == true { '✗' } else { '←' };
                eprintln!("  {mark} {}", clip(&text(&p["output"]), 120));
            }
            "tool_replayed" => eprintln!(
                "  ↻ replayed {} {} into the restored workspace{}",
                clip(&text(&p["tool"]), 64),
                clip(&text(&p["call_id"]), 64),
                if p["same_output"] == true {
                    ""
                } else {
                    " (its output differed this time)"
                }
            ),
            "output_invalid" => eprintln!(
                "  ✗ the answer does not match the output schema: {}",
                clip(&text(&p["error"]), 200)
            ),
            _ => {}
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

/// A JSON string's text (empty for other values).
pub fn text(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// The first line of `s`, at most `max` characters, marked when cut.
pub fn clip(s: &str, max: usize) -> String {
    let first = s.lines().next().unwrap_or_default();
    let cut = first.chars().count() > max || s.lines().nth(1).is_some();
    let mut out: String = first.chars().take(max).collect();
    if cut {
        out.push('…');
    }
    out
}

/// `n` and a noun, in the singular for one: `1 turn`, `2 turns`.
pub fn count(n: u64, singular: &str, plural: &str) -> String {
    if n == 1 {
        format!("1 {singular}")
    } else {
        format!("{n} {plural}")
    }
}
