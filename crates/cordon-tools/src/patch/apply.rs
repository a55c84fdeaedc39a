//! Computing what a patch does, entirely in memory: nothing is written until every
//! operation has been checked and every new content computed.

use super::parse::{Hunk, Op};
use std::collections::BTreeMap;

/// A patch that does not apply: what did not match, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ApplyError(pub String);

/// The outcome of a patch: each file's new content (`None`: deleted), and a summary line per
/// operation (`A path`, `M path`, `D path`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Final content per path, in path order.
    pub files: BTreeMap<String, Option<String>>,
    /// What was done, in patch order.
    pub summary: Vec<String>,
}

/// Works out `ops` against the files `read` gives (`None`: no such file). The caller reads
/// them first (see `target`), so working out a patch never fails for a reason of its own.
pub fn plan(ops: &[Op], read: &dyn Fn(&str) -> Option<String>) -> Result<Plan, ApplyError> {
    let mut plan = Plan::default();
    let current = |plan: &Plan, path: &str| -> Result<Option<String>, ApplyError> {
        match plan.files.get(path) {
            Some(c) => Ok(c.clone()),
            None => Ok(read(path)),
        }
    };
    for op in ops {
        match op {
            Op::Add { path, lines } => {
                check_path(path)?;
                // Over an existing file, Add replaces it, as in Codex and the Agents SDK (the
                // old content is still in the last checkpoint).
                let mut text = lines.join("\n");
                text.push('\n');
                plan.files.insert(path.clone(), Some(text));
                plan.summary.push(format!("A {path}"));
            }
            Op::Delete { path } => {
                check_path(path)?;
                if current(&plan, path)?.is_none() {
                    return Err(ApplyError(format!("cannot delete '{path}': no such file")));
                }
                plan.files.insert(path.clone(), None);
                plan.summary.push(format!("D {path}"));
            }
            Op::Update {
                path,
                move_to,
                hunks,
            } => {
                check_path(path)?;
                let old = current(&plan, path)?
                    .ok_or_else(|| ApplyError(format!("cannot update '{path}': no such file")))?;
                let new = update(path, &old, hunks)?;
                match move_to {
                    Some(to) if to != path => {
                        // Onto an existing file, the move replaces it.
                        check_path(to)?;
                        plan.files.insert(path.clone(), None);
                        plan.files.insert(to.clone(), Some(new));
                        plan.summary.push(format!("M {to}"));
                    }
                    _ => {
                        plan.files.insert(path.clone(), Some(new));
                        plan.summary.push(format!("M {path}"));
                    }
                }
            }
        }
    }
    Ok(plan)
}

/// Paths are workspace-relative, without `..`.
fn check_path(path: &str) -> Result<(), ApplyError> {
    let p = std::path::Path::new(path);
    if path.is_empty()
        || p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        || path.contains('\0')
    {
        return Err(ApplyError(format!(
            "'{path}' is not a workspace-relative path (no leading '/', no '..')"
        )));
    }
    Ok(())
}

/// One file's new content: each hunk found (after its anchors) and replaced, the file's line
/// ending (LF or CRLF) and final newline kept.
fn update(path: &str, content: &str, hunks: &[Hunk]) -> Result<String, ApplyError> {
    let eol = if content.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let final_newline = content.ends_with('\n');
    let mut lines: Vec<String> = content
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .collect();
    let mut replacements: Vec<(usize, usize, Vec<String>)> = Vec::new();
    let mut pos = 0;
    for (n, hunk) in hunks.iter().enumerate() {
        for anchor in &hunk.anchors {
            let at = find(&lines, std::slice::from_ref(anchor), pos, false).ok_or_else(|| {
                ApplyError(format!(
                    "in '{path}', hunk {}: the anchor '@@ {anchor}' was not found after line {pos}",
                    n + 1
                ))
            })?;
            pos = at + 1;
        }
        let start = if hunk.old.is_empty() {
            if hunk.at_eof || hunk.anchors.is_empty() {
                lines.len()
            } else {
                pos
            }
        } else {
            find(&lines, &hunk.old, pos, hunk.at_eof).ok_or_else(|| {
                ApplyError(format!(
                    "in '{path}', hunk {}: these lines were not found{} after line {pos}:\n{}",
                    n + 1,
                    if hunk.at_eof {
                        " at the end of the file"
                    } else {
                        ""
                    },
                    hunk.old
                        .iter()
                        .map(|l| format!("  {l}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                ))
            })?
        };
        replacements.push((start, hunk.old.len(), hunk.new.clone()));
        pos = start + hunk.old.len();
    }
    for (start, len, new) in replacements.into_iter().rev() {
        lines.splice(start..start + len, new);
    }
    let mut out = lines.join(eol);
    if final_newline && !lines.is_empty() {
        out.push_str(eol);
    }
    Ok(out)
}

/// Where `needle` occurs in `lines` at or after `from` (only at the very end with `at_eof`),
/// trying ever looser comparisons: exact, then ignoring trailing white space, then ignoring
/// surrounding white space, then with Unicode dashes, quotes and spaces made plain.
fn find(lines: &[String], needle: &[String], from: usize, at_eof: bool) -> Option<usize> {
    if needle.len() > lines.len() {
        return None;
    }
    let last = lines.len() - needle.len();
    let starts: Vec<usize> = if at_eof {
        vec![last]
    } else {
        (from.min(last + 1)..=last).collect()
    };
    let passes: [fn(&str) -> String; 4] = [
        |s| s.to_string(),
        |s| s.trim_end().to_string(),
        |s| s.trim().to_string(),
        |s| plain_punctuation(s.trim()),
    ];
    for pass in passes {
        let wanted: Vec<String> = needle.iter().map(|l| pass(l)).collect();
        for &start in &starts {
            if start < from && !at_eof {
                continue;
            }
            if lines[start..start + needle.len()]
                .iter()
                .zip(&wanted)
                .all(|(l, w)| pass(l) == *w)
            {
                return Some(start);
            }
        }
    }
    None
}

/// Unicode dashes, quotes and spaces replaced by their ASCII look-alikes.
fn plain_punctuation(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' => '\'',
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' => '"',
            '\u{00A0}' | '\u{2002}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => ' ',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    fn run(patch: &str, files: &[(&str, &str)]) -> Result<Plan, ApplyError> {
        let files: BTreeMap<String, String> = files
            .iter()
            .map(|(p, c)| (p.to_string(), c.to_string()))
            .collect();
        plan(&parse(patch).unwrap(), &|p| files.get(p).cloned())
    }

    fn content(plan: &Plan, path: &str) -> String {
        plan.files[path].clone().unwrap()
    }

    #[test]
    fn an_update_replaces_the_lines_and_keeps_the_rest() {
        let p = run(
            "*** Begin Patch\n*** Update File: a.py\n@@ def g():\n-    return 1\n+    return 2\n*** End Patch",
            &[("a.py", "def f():\n    return 1\n\ndef g():\n    return 1\n")],
        )
        .unwrap();
        assert_eq!(
            content(&p, "a.py"),
            "def f():\n    return 1\n\ndef g():\n    return 2\n",
            "the anchor picks the second"
        );
        assert_eq!(p.summary, ["M a.py"]);
    }

    #[test]
    fn stacked_anchors_must_all_match() {
        let file = "class A:\n  def f(self):\n    x = 1\nclass B:\n  def f(self):\n    x = 1\n";
        let p = run(
            "*** Begin Patch\n*** Update File: m.py\n@@ class B:\n@@   def f(self):\n-    x = 1\n+    x = 2\n*** End Patch",
            &[("m.py", file)],
        )
        .unwrap();
        assert!(content(&p, "m.py").ends_with("class B:\n  def f(self):\n    x = 2\n"));
        let e = run(
            "*** Begin Patch\n*** Update File: m.py\n@@ class C:\n@@   def f(self):\n-    x = 1\n+    x = 2\n*** End Patch",
            &[("m.py", file)],
        )
        .unwrap_err();
        assert!(e.0.contains("'@@ class C:' was not found"), "{e}");
    }

    #[test]
    fn matching_loosens_in_passes() {
        let patch =
            "*** Begin Patch\n*** Update File: t.txt\n-say \"hi\" - now\n+say hello\n*** End Patch";
        for file in [
            "say \"hi\" - now   \n",
            "   say \"hi\" - now\n",
            "say \u{201C}hi\u{201D} \u{2014} now\n",
            "say\u{00A0}\"hi\" - now\n",
        ] {
            let p = run(patch, &[("t.txt", file)]).unwrap_or_else(|e| panic!("{file:?}: {e}"));
            assert_eq!(content(&p, "t.txt"), "say hello\n");
        }
    }

    #[test]
    fn crlf_and_a_missing_final_newline_are_kept() {
        let patch = "*** Begin Patch\n*** Update File: w.txt\n-b\n+B\n*** End Patch";
        let p = run(patch, &[("w.txt", "a\r\nb\r\nc\r\n")]).unwrap();
        assert_eq!(content(&p, "w.txt"), "a\r\nB\r\nc\r\n");
        let p = run(patch, &[("w.txt", "a\nb")]).unwrap();
        assert_eq!(content(&p, "w.txt"), "a\nB");
    }

    #[test]
    fn end_of_file_hunks_match_only_at_the_end() {
        let patch =
            "*** Begin Patch\n*** Update File: e.txt\n x\n+tail\n*** End of File\n*** End Patch";
        let p = run(patch, &[("e.txt", "x\ny\nx\n")]).unwrap();
        assert_eq!(content(&p, "e.txt"), "x\ny\nx\ntail\n");
        assert!(run(patch, &[("e.txt", "x\ny\n")]).is_err());
    }

    #[test]
    fn add_and_move_replace_an_existing_file() {
        let p = run(
            "*** Begin Patch\n*** Add File: a.txt\n+new\n*** Update File: b.txt\n*** Move to: c.txt\n-b\n+B\n*** End Patch",
            &[("a.txt", "old\n"), ("b.txt", "b\n"), ("c.txt", "was here\n")],
        )
        .unwrap();
        assert_eq!(content(&p, "a.txt"), "new\n");
        assert_eq!(content(&p, "c.txt"), "B\n");
        assert_eq!(p.files["b.txt"], None);
    }

    #[test]
    fn add_delete_and_move() {
        let p = run(
            "*** Begin Patch\n*** Add File: new/n.txt\n+hello\n*** Delete File: old.txt\n*** Update File: a.txt\n*** Move to: b.txt\n-1\n+2\n*** End Patch",
            &[("old.txt", "x\n"), ("a.txt", "1\n")],
        )
        .unwrap();
        assert_eq!(p.summary, ["A new/n.txt", "D old.txt", "M b.txt"]);
        assert_eq!(p.files["old.txt"], None);
        assert_eq!(p.files["a.txt"], None);
        assert_eq!(content(&p, "b.txt"), "2\n");
        assert_eq!(content(&p, "new/n.txt"), "hello\n");
    }

    #[test]
    fn bad_operations_fail_before_anything_is_decided() {
        let cases = [
            (
                "*** Begin Patch\n*** Delete File: nope\n*** End Patch",
                "no such file",
            ),
            (
                "*** Begin Patch\n*** Update File: nope\n-x\n+y\n*** End Patch",
                "no such file",
            ),
            (
                "*** Begin Patch\n*** Add File: ../x\n+x\n*** End Patch",
                "workspace-relative",
            ),
            (
                "*** Begin Patch\n*** Add File: /etc/x\n+x\n*** End Patch",
                "workspace-relative",
            ),
            (
                "*** Begin Patch\n*** Update File: a.txt\n-missing\n+y\n*** End Patch",
                "were not found",
            ),
        ];
        for (patch, msg) in cases {
            let e = run(patch, &[("a.txt", "present\n")]).unwrap_err();
            assert!(e.0.contains(msg), "{patch}: {e}");
        }
    }
}
