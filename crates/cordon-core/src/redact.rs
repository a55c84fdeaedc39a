//! Replacing secrets (provider keys, credentials passed into the sandbox, anything shaped
//! like a well-known token) before anything is stored, printed or sent on.
//!
//! A [`Redactor`] holds the secret values cordon knows in this process, and detectors for
//! common token formats ([`DETECTORS`]), and replaces each occurrence with `[redacted:
//! NAME]`, in plain text, in JSON (every string, at any depth) and, through
//! [`StreamRedactor`], in text that arrives in pieces, where a secret may be split across two
//! pieces. It counts what it replaced, by name, so the log can say that a redaction happened
//! without saying what.

use serde_json::Value;
use std::collections::BTreeMap;

/// What was replaced: how many occurrences, by the secret's or detector's name.
pub type Found = BTreeMap<String, u64>;

/// The built-in detectors: (id, name shown in the placeholder, pattern). Each is on unless
/// the configuration turns it off by id.
pub const DETECTORS: &[(&str, &str, &str)] = &[
    ("openai", "sk- API key", r"\bsk-[A-Za-z0-9_-]{20,}"),
    (
        "github",
        "GitHub token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
    ),
    ("aws", "AWS access key id", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("slack", "Slack token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    ("google", "Google API key", r"\bAIza[0-9A-Za-z_-]{35}"),
    ("stripe", "Stripe key", r"\b[rs]k_live_[0-9A-Za-z]{24,}"),
    (
        "jwt",
        "JSON web token",
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    ),
    (
        "private-key",
        "private key",
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----",
    ),
    (
        "bearer",
        "bearer token",
        r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{20,}=*",
    ),
];

/// How far back a stream holds text that could still become a token a detector finds.
const HOLD_TOKEN: usize = 512;
/// How much of an unfinished private-key block a stream holds before letting it through.
const HOLD_BLOCK: usize = 16 * 1024;

/// Secrets shorter than this are not redacted: replacing every `1` or `ok` in a run would
/// destroy it, and such values are not secrets.
pub const MIN_SECRET_LEN: usize = 4;

/// The secret values known to this process, each with a name for its placeholder.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// (name, placeholder, form to find), longest first so a secret inside another is
    /// handled.
    needles: Vec<(String, String, String)>,
    /// (name, placeholder, pattern): the detectors in use.
    patterns: Vec<(String, String, regex::Regex)>,
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
            if !self.needles.iter().any(|(_, _, f)| *f == form) {
                self.needles
                    .push((name.to_string(), placeholder.clone(), form));
            }
        }
        self.needles.sort_by_key(|n| std::cmp::Reverse(n.2.len()));
        true
    }

    /// Adds a detector: every match of `pattern` (a regular expression) is replaced with
    /// `[redacted: name]`.
    pub fn add_pattern(&mut self, name: &str, pattern: &str) -> Result<(), regex::Error> {
        let re = regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()?;
        self.patterns
            .push((name.to_string(), format!("[redacted: {name}]"), re));
        Ok(())
    }

    /// Adds the built-in [`DETECTORS`] but those whose id is in `except`.
    pub fn add_detectors(&mut self, except: &[String]) {
        for (id, name, pattern) in DETECTORS {
            if !except.iter().any(|e| e == id) {
                // The built-in patterns are tested to compile.
                let _ = self.add_pattern(name, pattern);
            }
        }
    }

    /// Whether no secret is known and no detector is on.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty() && self.patterns.is_empty()
    }

    /// `text` with every known secret, and every token a detector finds, replaced.
    pub fn redact(&self, text: &str) -> String {
        self.redact_counting(text, &mut Found::new())
    }

    /// [`Redactor::redact`], adding what it replaced to `found`.
    pub fn redact_counting(&self, text: &str, found: &mut Found) -> String {
        let mut out = text.to_string();
        for (name, placeholder, form) in &self.needles {
            let n = out.matches(form.as_str()).count() as u64;
            if n > 0 {
                out = out.replace(form.as_str(), placeholder);
                *found.entry(name.clone()).or_default() += n;
            }
        }
        for (name, placeholder, re) in &self.patterns {
            let n = re.find_iter(&out).count() as u64;
            if n > 0 {
                out = re
                    .replace_all(&out, regex::NoExpand(placeholder))
                    .into_owned();
                *found.entry(name.clone()).or_default() += n;
            }
        }
        out
    }

    /// Replaces secrets in every string of `value`, at any depth (object keys included);
    /// returns whether anything changed.
    pub fn redact_value(&self, value: &mut Value) -> bool {
        !self.redact_value_counting(value).is_empty()
    }

    /// [`Redactor::redact_value`], saying what it replaced.
    pub fn redact_value_counting(&self, value: &mut Value) -> Found {
        let mut found = Found::new();
        if !self.is_empty() {
            self.walk(value, &mut found);
        }
        found
    }

    fn walk(&self, value: &mut Value, found: &mut Found) {
        match value {
            Value::String(s) => {
                let r = self.redact_counting(s, found);
                *s = r;
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.walk(v, found)),
            Value::Object(map) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    let rk = self.redact_counting(&k, found);
                    if rk != k
                        && let Some(v) = map.remove(&k)
                    {
                        map.insert(rk, v);
                    }
                }
                map.values_mut().for_each(|v| self.walk(v, found));
            }
            _ => {}
        }
    }

    /// A redactor for text that arrives in pieces.
    pub fn stream(&self) -> StreamRedactor {
        StreamRedactor {
            redactor: self.clone(),
            held: String::new(),
        }
    }

    /// The longest suffix of `text` that could be the start of a secret: of a known value,
    /// or, with detectors on, of a token (the trailing run of token characters) or of a
    /// private-key block not yet ended.
    fn unfinished_suffix(&self, text: &str) -> usize {
        let mut longest = 0;
        if !self.patterns.is_empty() {
            let token = text
                .bytes()
                .rev()
                .take_while(|b| b.is_ascii_alphanumeric() || b"_-.~+/=".contains(b))
                .count();
            // A word before the token may be what makes it one (`Bearer TOKEN`).
            let before = text[..text.len() - token].trim_end();
            let word = before
                .bytes()
                .rev()
                .take_while(|b| b.is_ascii_alphabetic())
                .count();
            let held = if word > 0 && token > 0 {
                text.len() - (before.len() - word)
            } else {
                token
            };
            longest = held.min(HOLD_TOKEN);
            if let Some(at) = text.rfind("-----BEGIN")
                && !text[at..].contains("-----END")
                && text.len() - at <= HOLD_BLOCK
            {
                longest = longest.max(text.len() - at);
            }
            while !text.is_char_boundary(text.len() - longest) {
                longest -= 1;
            }
        }
        for (_, _, form) in &self.needles {
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
        // What could still become a secret stays held, as it came; the rest is redacted
        // and shown.
        let keep = self.redactor.unfinished_suffix(&self.held);
        let split = self.held.len() - keep;
        let shown = self.redactor.redact(&self.held[..split]);
        self.held = self.held[split..].to_string();
        shown
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
    fn detectors_find_common_tokens_and_count_them_by_name() {
        let mut r = Redactor::new();
        r.add_detectors(&[]);
        let github = format!("ghp_{}", "a1B2".repeat(9));
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        let text = format!(
            "key sk-proj-abcdefghijklmnopqrstuvwx and {github}, AKIAIOSFODNN7EXAMPLE,\n\
             Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345\n{jwt}\n\
             -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----\n\
             but not risk-assessment-template-version-two or sha 9f86d081884c7d659a2feaa0c55ad015"
        );
        let mut found = Found::new();
        let out = r.redact_counting(&text, &mut found);
        for leaked in [
            "sk-proj",
            "ghp_",
            "AKIA",
            "abcdefghijklmnop",
            "eyJ",
            "b3BlbnNzaC1rZXk",
        ] {
            assert!(!out.contains(leaked), "{leaked} in {out}");
        }
        assert!(
            out.contains("risk-assessment-template-version-two"),
            "{out}"
        );
        assert!(out.contains("9f86d081884c7d659a2feaa0c55ad015"), "{out}");
        assert_eq!(found.len(), 6, "{found:?}");
        assert_eq!(found["GitHub token"], 1);
        let mut off = Redactor::new();
        off.add_detectors(&["github".into()]);
        assert!(off.redact(&github).contains("ghp_"));
        assert!(off.add_pattern("x", "(").is_err());
    }

    #[test]
    fn a_token_split_across_pieces_is_still_found() {
        let mut r = Redactor::new();
        r.add_detectors(&[]);
        let mut s = r.stream();
        let mut shown = String::new();
        for piece in [
            "use sk-",
            "abcdefghij",
            "klmnopqrstu",
            "vwxyz now; Bear",
            "er abcdefghijklmnopqrstuvwxyz0123 ok",
        ] {
            shown.push_str(&s.push(piece));
        }
        shown.push_str(&s.finish());
        assert_eq!(
            shown,
            "use [redacted: sk- API key] now; [redacted: bearer token] ok"
        );
    }

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
