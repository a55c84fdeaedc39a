//! Keeping tool output to a size the model can take: head and tail kept, the middle cut and
//! marked, the original size reported.

/// Bytes per token, the usual rough measure.
const BYTES_PER_TOKEN: usize = 4;

/// The default cap on a tool's output, in tokens.
pub const DEFAULT_MAX_TOKENS: usize = 10_000;

/// Roughly how many tokens some text is.
pub fn approx_tokens(text: &str) -> usize {
    text.len().div_ceil(BYTES_PER_TOKEN)
}

/// `text` cut to about `max_tokens`: the first and last halves kept, with a marker saying how
/// much was left out between them.
pub fn truncate_middle(text: &str, max_tokens: usize) -> String {
    let budget = max_tokens.saturating_mul(BYTES_PER_TOKEN);
    if text.len() <= budget {
        return text.to_string();
    }
    let half = budget / 2;
    let mut head_end = half;
    while !text.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut tail_start = text.len() - half;
    while !text.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    let cut = approx_tokens(&text[head_end..tail_start]);
    format!(
        "{}\n…[{cut} tokens truncated]…\n{}",
        &text[..head_end],
        &text[tail_start..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_untouched_and_long_text_keeps_both_ends() {
        assert_eq!(truncate_middle("hello", 10), "hello");
        let long = format!("{}{}{}", "a".repeat(100), "é".repeat(500), "z".repeat(100));
        let cut = truncate_middle(&long, 20);
        assert!(cut.starts_with("aaaa") && cut.ends_with("zzzz"), "{cut}");
        assert!(cut.contains("tokens truncated"));
        assert!(cut.len() < 200);
    }
}
