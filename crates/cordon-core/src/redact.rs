//! Replacing known secret values (provider keys, credentials passed into the sandbox) before
//! anything is stored, printed or sent on.
//!
//! A [`Redactor`] holds the secret values cordon knows in this process and replaces each
//! occurrence with `[redacted: NAME]`, in plain text, in JSON (every string, at any depth)
//! and, through [`StreamRedactor`], in text that arrives in pieces, where a secret may be
//! split across two pieces.

use serde_json::Value;

/// Secrets shorter than this are not redacted: replacing every `1` or `ok` in a run would
/// destroy it, and such values are not secrets.
pub const MIN_SECRET_LEN: usize = 4;

/// The secret values known to this process, each with a name for its placeholder.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// (placeholder, form to find), longest first so a secret inside another is handled.
    needles: Vec<(String, String)>,
}

impl Redactor {
    /// A redactor that knows nothing yet.
    pub fn new() -> Self {
        Redactor::default()
    }

    /// Adds a secret `value`, shown as `[redacted: name]`. Values shorter than
    /// [`MIN_SECRET_LEN`] are ignored (and `false` returned).
    pub fn add(&mut self, name: &str, value: &str) -> bool {
        if value.len() < MIN_SECRET_LEN {
            return false;
        }
        let placeholder = format!("[redacted: {name}]");
        // The value as it appears inside JSON text held in a string (tool arguments).
        let escaped = serde_json::to_string(value).unwrap_or_default();
        let escaped = escaped[1..escaped.len().saturating_sub(1)].to_string();
        for form in [value.to_string(), escaped] {
            if !self.needles.iter().any(|(_, f)| *f == form) {
                self.needles.push((placeholder.clone(), form));
            }
        }
        self.needles.sort_by_key(|n| std::cmp::Reverse(n.1.len()));
        true
    }

    /// Whether no secret is known.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every known secret replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (placeholder, form) in &self.needles {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), placeholder);
            }
        }
        out
    }

    /// Replaces secrets in every string of `value`, at any depth (object keys included);
    /// returns whether anything changed.
    pub fn redact_value(&self, value: &mut Value) -> bool {
        if self.needles.is_empty() {
            return false;
        }
        match value {
            Value::String(s) => {
                let r = self.redact(s);
                let changed = r != *s;
                *s = r;
                changed
            }
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |c, v| self.redact_value(v) | c),
            Value::Object(map) => {
                let mut changed = false;
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    let rk = self.redact(&k);
                    if rk != k {
                        if let Some(v) = map.remove(&k) {
                            map.insert(rk, v);
                        }
                        changed = true;
                    }
                }
                for v in map.values_mut() {
                    changed |= self.redact_value(v);
                }
                changed
            }
            _ => false,
        }
    }

    /// A redactor for text that arrives in pieces.
    pub fn stream(&self) -> StreamRedactor {
        StreamRedactor {
            redactor: self.clone(),
            held: String::new(),
        }
    }

    /// The longest suffix of `text` that could be the start of a secret.
    fn unfinished_suffix(&self, text: &str) -> usize {
        let mut longest = 0;
        for (_, form) in &self.needles {
            let max = form.len().saturating_sub(1).min(text.len());
            for n in (longest + 1..=max).rev() {
                if text.is_char_boundary(text.len() - n)
                    && form.is_char_boundary(n)
                    && form.starts_with(&text[text.len() - n..])
                {
                    longest = n;
                    break;
                }
            }
        }
        longest
    }
}

/// Redacts text that arrives in pieces: holds back the end of what it has seen while that
/// end could be the start of a secret.
#[derive(Debug, Clone, Default)]
pub struct StreamRedactor {
    redactor: Redactor,
    held: String,
}

impl StreamRedactor {
    /// Takes the next piece; returns what can be shown now.
    pub fn push(&mut self, piece: &str) -> String {
        self.held.push_str(piece);
        let text = self.redactor.redact(&self.held);
        let keep = self.redactor.unfinished_suffix(&text);
        let split = text.len() - keep;
        self.held = text[split..].to_string();
        text[..split].to_string()
    }

    /// The rest, at the end of the stream.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.held);
        self.redactor.redact(&rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_everywhere_and_short_values_are_not_secrets() {
        let mut r = Redactor::new();
        assert!(r.add("openai key", "sk-test-abc\"123"));
        assert!(!r.add("tiny", "ab"));
        let mut v = serde_json::json!({
            "text": "the key is sk-test-abc\"123!",
            "arguments": serde_json::json!({"cmd": "echo sk-test-abc\"123"}).to_string(),
            "nested": [{"sk-test-abc\"123": 1}],
        });
        assert!(r.redact_value(&mut v));
        let s = v.to_string();
        assert!(!s.contains("sk-test-abc"), "{s}");
        assert!(s.contains("[redacted: openai key]"));
        assert!(!r.redact_value(&mut v), "nothing left to replace");
    }

    #[test]
    fn a_secret_split_across_pieces_is_still_replaced() {
        let mut r = Redactor::new();
        r.add("token", "SECRET-VALUE");
        let mut s = r.stream();
        let mut shown = String::new();
        for piece in ["the value: SEC", "RET-VA", "LUE and SE", "nd more"] {
            shown.push_str(&s.push(piece));
        }
        shown.push_str(&s.finish());
        assert_eq!(shown, "the value: [redacted: token] and SEnd more");
    }
}
