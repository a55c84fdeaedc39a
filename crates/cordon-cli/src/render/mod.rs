//! How events look to people: one place that turns the typed run log into lines, used by
//! the live view of `cordon run` and by `cordon show`, so both read the same.
//!
//! Rendering matches on [`cordon_core::EventPayload`] with no catch-all arm: a new event kind
//! or a renamed field fails to compile here instead of silently blanking a column.

pub mod call;
pub mod event;
pub mod style;

pub use style::Style;

/// How much of a long text to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Its first and last few lines, with a count of what was left out.
    Clip,
    /// All of it.
    Full,
}

/// Lines shown from the start and from the end of a clipped text.
const HEAD: usize = 3;
const TAIL: usize = 3;

/// `text`'s lines within `limit`: all of them, or the first and last few with a line that
/// says how many were left out and how to see them.
pub fn lines_within(text: &str, limit: Limit) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    if limit == Limit::Full || lines.len() <= HEAD + TAIL + 1 {
        return lines
            .iter()
            .map(|l| match limit {
                Limit::Full => safe(l),
                Limit::Clip => clip(l, 200),
            })
            .collect();
    }
    let mut out: Vec<String> = lines[..HEAD].iter().map(|l| clip(l, 200)).collect();
    out.push(format!("… {} more lines …", lines.len() - HEAD - TAIL));
    out.extend(lines[lines.len() - TAIL..].iter().map(|l| clip(l, 200)));
    out
}

/// The first line of `s`, at most `max` characters, marked `…` when anything was cut, and
/// safe to print (see [`safe`]).
pub fn clip(s: &str, max: usize) -> String {
    let first = s.lines().next().unwrap_or_default();
    let cut = first.chars().count() > max || s.lines().nth(1).is_some();
    let mut out = safe(&first.chars().take(max).collect::<String>());
    if cut {
        out.push('…');
    }
    out
}

/// The paths a snapshot left out, as views name them: the first by name, then how many more
/// of `count` there were.
pub fn left_out(named: &[String], count: u64) -> String {
    let names: Vec<String> = named.iter().map(|s| clip(s, 80)).collect();
    let more = count.saturating_sub(named.len() as u64);
    format!(
        "{}{}",
        clip(&names.join(", "), 200),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

/// The first line of `s` in at most `max` characters, keeping both ends and eliding the
/// middle: for names whose end says the most (`scripted:/tmp/…/agent.toml`,
/// `openai:gpt-5-mini-2026-…-preview`).
pub fn clip_middle(s: &str, max: usize) -> String {
    let first: Vec<char> = s.lines().next().unwrap_or_default().chars().collect();
    if first.len() <= max || max < 3 {
        return clip(s, max);
    }
    let head = (max - 1) / 2;
    let tail = max - 1 - head;
    let text: String = first[..head]
        .iter()
        .chain(['…'].iter())
        .chain(first[first.len() - tail..].iter())
        .collect();
    safe(&text)
}

/// `s` with every control character shown as an escape (`\e`, `\r`, `\u{9b}`), tabs as
/// spaces. What cordon prints comes from models, commands and stored rows: none of it may
/// move the cursor, rewrite a line or retitle the terminal, least of all in what a person
/// is asked to approve.
pub fn safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' => out.push_str("    "),
            '\x1b' => out.push_str("\\e"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// The first line of `s`, at most `max` characters, marked `…` only when that line was cut
/// (for summaries whose further lines are shown under them).
pub fn first_line(s: &str, max: usize) -> String {
    clip(s.lines().next().unwrap_or_default(), max)
}

/// `s` made [`safe`] line by line: its line breaks kept, nothing else obeyed.
pub fn safe_lines(s: &str) -> String {
    s.split('\n').map(safe).collect::<Vec<_>>().join("\n")
}

/// An event's typed payload with every string made [`safe`] to print (line breaks kept):
/// what the views render, so no field of any event kind can reach the terminal raw.
pub fn displayable(e: &cordon_core::Event) -> Result<cordon_core::EventPayload, serde_json::Error> {
    let mut payload = e.payload.clone();
    scrub(&mut payload);
    cordon_core::EventPayload::from_parts(&e.kind, &payload)
}

fn scrub(v: &mut serde_json::Value) {
    use serde_json::Value;
    let needs = |s: &str| s.chars().any(|c| c.is_control() && c != '\n');
    match v {
        Value::String(s) if needs(s) => *s = safe_lines(s),
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::Object(map) => {
            if map.keys().any(|k| needs(k)) {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(k, v)| (safe_lines(&k), v))
                    .collect();
            }
            map.values_mut().for_each(scrub);
        }
        _ => {}
    }
}

/// A JSON string's text (empty for other values).
pub fn text(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// `n` and a noun, in the singular for one: `1 turn`, `2 turns`.
pub fn plural(n: u64, singular: &str, plural: &str) -> String {
    if n == 1 {
        format!("1 {singular}")
    } else {
        format!("{n} {plural}")
    }
}

/// A number as people write it: `3`, not `3.0`; `0.25`, not `0.250000`.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_keep_both_ends() {
        let model = "scripted:/tmp/a-long-directory/inside/agent-script.toml";
        let shown = clip_middle(model, 24);
        assert_eq!(shown, "scripted:/t…-script.toml");
        assert_eq!(shown.chars().count(), 24);
        assert_eq!(clip_middle("openai:gpt-5", 24), "openai:gpt-5");
        assert_eq!(
            clip_middle("\x1bbcdefghij", 5),
            "\\eb…ij",
            "escaped after cutting"
        );
    }

    #[test]
    fn long_texts_keep_their_ends() {
        let text: String = (1..=20).map(|i| format!("{i}\n")).collect();
        assert_eq!(
            lines_within(&text, Limit::Clip),
            vec!["1", "2", "3", "… 14 more lines …", "18", "19", "20"]
        );
        assert_eq!(lines_within(&text, Limit::Full).len(), 20);
        assert_eq!(lines_within("a\nb", Limit::Clip), vec!["a", "b"]);
    }

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        let hostile = "rm -rf ~\r\x1b[2K$ ls\x07\u{9b}31m";
        for shown in [
            clip(hostile, 100),
            lines_within(hostile, Limit::Full).join(""),
            lines_within(hostile, Limit::Clip).join(""),
        ] {
            assert!(!shown.chars().any(char::is_control), "{shown:?}");
            assert!(shown.contains("rm -rf ~\\r\\e[2K$ ls"), "{shown:?}");
        }
    }

    #[test]
    fn every_string_of_an_event_is_made_safe() {
        let e = cordon_core::Event::from_parts(
            &cordon_core::RunId::from("r"),
            0,
            "t".into(),
            "tool_result".into(),
            serde_json::json!({
                "call_id": "c\x1b]0;title\x07", "tool": "exec_command",
                "output": "line 1\n\x1b[2Kline 2", "is_error": false, "duration_ms": 1
            }),
            "",
        );
        let text = format!("{:?}", displayable(&e).unwrap());
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text}");
        assert!(text.contains("line 1\\n\\\\e[2Kline 2"), "{text}");
    }

    #[test]
    fn numbers_drop_needless_decimals() {
        assert_eq!(number(2.0), "2");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(1.0 / 3.0), "0.3333");
    }
}
