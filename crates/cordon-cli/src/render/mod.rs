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
                Limit::Full => l.to_string(),
                Limit::Clip => clip(l, 200),
            })
            .collect();
    }
    let mut out: Vec<String> = lines[..HEAD].iter().map(|l| clip(l, 200)).collect();
    out.push(format!("… {} more lines …", lines.len() - HEAD - TAIL));
    out.extend(lines[lines.len() - TAIL..].iter().map(|l| clip(l, 200)));
    out
}

/// The first line of `s`, at most `max` characters, marked `…` when anything was cut.
pub fn clip(s: &str, max: usize) -> String {
    let first = s.lines().next().unwrap_or_default();
    let cut = first.chars().count() > max || s.lines().nth(1).is_some();
    let mut out: String = first.chars().take(max).collect();
    if cut {
        out.push('…');
    }
    out
}

/// The first line of `s`, at most `max` characters, marked `…` only when that line was cut
/// (for summaries whose further lines are shown under them).
pub fn first_line(s: &str, max: usize) -> String {
    clip(s.lines().next().unwrap_or_default(), max)
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
    fn numbers_drop_needless_decimals() {
        assert_eq!(number(2.0), "2");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(1.0 / 3.0), "0.3333");
    }
}
