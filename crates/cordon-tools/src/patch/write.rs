//! Writing patches: the changes between two trees of files, in the format `apply_patch`
//! reads, so that an agent can apply what another one changed.

use std::collections::BTreeMap;

/// A patch that turns the files `before` into `after` (workspace-relative path → content),
/// with three lines of context around each change; and what it leaves out, each as `path
/// (why)`: contents that are not text (not UTF-8, or with NUL bytes), and new files the
/// format cannot write (empty, without a final newline, or with carriage returns), names
/// with line breaks, and any change the patch, applied to `before`, would not reproduce
/// exactly (a final newline gained, line endings changed, lines that read as the format's
/// markers). `None` when nothing changed.
pub fn between(
    before: &BTreeMap<String, Vec<u8>>,
    after: &BTreeMap<String, Vec<u8>>,
) -> (Option<String>, Vec<String>) {
    let mut out = String::new();
    let mut left_out = Vec::new();
    let paths: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for path in paths {
        let (old, new) = (before.get(path), after.get(path));
        if old == new {
            continue;
        }
        if path.contains(['\n', '\r']) {
            left_out.push(format!(
                "{} (a name with a line break)",
                path.escape_debug()
            ));
            continue;
        }
        let start = out.len();
        match (text(old), text(new)) {
            (Some(None), _) | (_, Some(None)) => left_out.push(format!("{path} (not text)")),
            (None, Some(Some(new))) if !new.ends_with('\n') || new.contains('\r') => {
                let why = if new.is_empty() {
                    "a new empty file"
                } else if new.contains('\r') {
                    "a new file with carriage returns"
                } else {
                    "a new file without a final newline"
                };
                left_out.push(format!("{path} ({why})"));
            }
            (None, Some(Some(new))) => {
                out.push_str(&format!("*** Add File: {path}\n"));
                for line in new.lines() {
                    out.push_str(&format!("+{line}\n"));
                }
            }
            (Some(Some(_)), None) => out.push_str(&format!("*** Delete File: {path}\n")),
            (Some(Some(old)), Some(Some(new))) => {
                out.push_str(&format!("*** Update File: {path}\n"));
                update(&mut out, old, new);
            }
            (None, None) => {}
        }
        // Each file's part is checked: applied to the file as it was, it must give the file
        // as it is now.
        let section = &out[start..];
        if !section.is_empty() && !reproduces(section, path, old, new) {
            out.truncate(start);
            left_out.push(format!("{path} (a change the patch format cannot carry)"));
        }
    }
    let patch = (!out.is_empty()).then(|| format!("*** Begin Patch\n{out}*** End Patch\n"));
    (patch, left_out)
}

/// Whether `section` (one file's part of a patch), applied to `old`, gives exactly `new`.
fn reproduces(section: &str, path: &str, old: Option<&Vec<u8>>, new: Option<&Vec<u8>>) -> bool {
    let Ok(ops) = crate::patch::parse(&format!("*** Begin Patch\n{section}*** End Patch\n")) else {
        return false;
    };
    let old = old.and_then(|b| String::from_utf8(b.clone()).ok());
    let read = |p: &str| (p == path).then(|| old.clone()).flatten();
    let Ok(plan) = crate::patch::plan(&ops, &read) else {
        return false;
    };
    let made = plan.files.get(path).cloned().flatten();
    made.as_deref().map(str::as_bytes) == new.map(Vec::as_slice)
}

/// A file's content as text: `None` for no file, `Some(None)` for one that is not text
/// (not UTF-8, or holding a NUL byte).
fn text(bytes: Option<&Vec<u8>>) -> Option<Option<&str>> {
    bytes.map(|b| std::str::from_utf8(b).ok().filter(|t| !t.contains('\0')))
}

/// The hunks of one file's update.
fn update(out: &mut String, old: &str, new: &str) {
    let diff = similar::TextDiff::from_lines(old, new);
    for group in diff.grouped_ops(3) {
        out.push_str("@@\n");
        for op in group {
            for change in diff.iter_changes(&op) {
                let sign = match change.tag() {
                    similar::ChangeTag::Equal => ' ',
                    similar::ChangeTag::Delete => '-',
                    similar::ChangeTag::Insert => '+',
                };
                let line = change.value();
                out.push(sign);
                out.push_str(line.strip_suffix('\n').unwrap_or(line));
                out.push('\n');
            }
        }
    }
    if !new.ends_with('\n') && !new.is_empty() {
        out.push_str("*** End of File\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_patch_applies_back() {
        let dir = tempfile::tempdir().unwrap();
        let old_main: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let new_main = old_main.replace("line 10\n", "line ten\n");
        std::fs::write(dir.path().join("main.txt"), &old_main).unwrap();
        std::fs::write(dir.path().join("gone.txt"), "bye\n").unwrap();
        let before = BTreeMap::from([
            ("main.txt".to_string(), old_main.into_bytes()),
            ("gone.txt".to_string(), b"bye\n".to_vec()),
            ("blob.bin".to_string(), vec![0xff, 0xfe]),
        ]);
        let after = BTreeMap::from([
            ("main.txt".to_string(), new_main.clone().into_bytes()),
            ("new/added.txt".to_string(), b"hello\nworld\n".to_vec()),
            ("dos.txt".to_string(), b"one\r\ntwo\r\n".to_vec()),
            ("blob.bin".to_string(), vec![0xff, 0x00]),
            ("nul.txt".to_string(), b"a\0b\n".to_vec()),
            ("empty".to_string(), Vec::new()),
            ("open-ended.txt".to_string(), b"no newline".to_vec()),
        ]);
        let (patch, left_out) = between(&before, &after);
        let patch = patch.unwrap();
        assert_eq!(
            left_out,
            [
                "blob.bin (not text)",
                "dos.txt (a new file with carriage returns)",
                "empty (a new empty file)",
                "nul.txt (not text)",
                "open-ended.txt (a new file without a final newline)"
            ]
        );
        assert!(patch.contains("-line 10\n+line ten\n"), "{patch}");
        crate::patch::apply_to_dir(dir.path(), &patch).unwrap();
        let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).unwrap();
        assert_eq!(read("main.txt"), new_main);
        assert_eq!(read("new/added.txt"), "hello\nworld\n");
        assert!(!dir.path().join("gone.txt").exists());
        assert_eq!(between(&before, &before), (None, Vec::new()));
        // What the format cannot say is left out, not written wrong.
        let before = BTreeMap::from([
            ("eol.txt".to_string(), b"q".to_vec()),
            ("dos.txt".to_string(), b"a\nb\n".to_vec()),
            ("marks.txt".to_string(), b"l1\n*** End Patch\nl3\n".to_vec()),
        ]);
        let after = BTreeMap::from([
            ("eol.txt".to_string(), b"q\n".to_vec()),
            ("dos.txt".to_string(), b"a\r\nb\r\n".to_vec()),
            ("marks.txt".to_string(), b"l1\n*** End Patch\nL3\n".to_vec()),
            ("a\nb".to_string(), b"x\n".to_vec()),
        ]);
        let (patch, left_out) = between(&before, &after);
        assert_eq!(patch, None, "{left_out:?}");
        assert_eq!(left_out.len(), 4, "{left_out:?}");
    }
}
