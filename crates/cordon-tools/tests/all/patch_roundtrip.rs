//! A patch made by diffing two random files applies to the first and gives the second.

use cordon_tools::patch;
use proptest::prelude::*;
use similar::{ChangeTag, TextDiff};

/// An apply_patch Update of `path` turning `a` into `b`, from a line diff with 3 lines of context.
fn make_patch(path: &str, a: &str, b: &str) -> String {
    let diff = TextDiff::from_lines(a, b);
    let mut out = format!("*** Begin Patch\n*** Update File: {path}\n");
    for group in diff.grouped_ops(3) {
        out.push_str("@@\n");
        for op in group {
            for change in diff.iter_changes(&op) {
                let sign = match change.tag() {
                    ChangeTag::Equal => ' ',
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                };
                let line = change.value().trim_end_matches('\n').trim_end_matches('\r');
                out.push(sign);
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.push_str("*** End Patch\n");
    out
}

fn file(lines: Vec<String>, crlf: bool, final_newline: bool) -> String {
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut s = lines.join(eol);
    if final_newline && !lines.is_empty() {
        s.push_str(eol);
    }
    s
}

fn lines() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-z][a-z ]{0,10}[a-z]", 1..40)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn diffs_apply_back_exactly(a in lines(), edits in prop::collection::vec((0usize..40, prop::option::of("[a-z][a-z ]{0,10}[a-z]"), any::<bool>()), 1..8), crlf in any::<bool>(), final_newline in any::<bool>()) {
        // b is a with some lines replaced, removed or inserted.
        let mut b = a.clone();
        for (at, text, insert) in edits {
            let at = at % (b.len() + 1);
            match (text, insert) {
                (Some(t), true) => b.insert(at, t),
                (Some(t), false) if at < b.len() => b[at] = t,
                (None, _) if at < b.len() && b.len() > 1 => { b.remove(at); }
                _ => {}
            }
        }
        let (fa, fb) = (file(a, crlf, final_newline), file(b, crlf, final_newline));
        prop_assume!(fa != fb);
        // A file shows its line ending only if it has one: a single line without a final
        // newline reads as LF.
        prop_assume!(!crlf || fa.contains("\r\n"));
        let text = make_patch("f.txt", &fa, &fb);
        let ops = patch::parse(&text).unwrap();
        let plan = patch::plan(&ops, &|_| Some(fa.clone())).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(plan.files["f.txt"].as_deref(), Some(fb.as_str()), "patch:\n{}", text);
    }
}
