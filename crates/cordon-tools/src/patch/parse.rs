//! Parsing the `*** Begin Patch` format.

/// One file operation of a patch.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Create a file with these lines.
    Add {
        /// Workspace-relative path.
        path: String,
        /// The new file's lines (without line endings).
        lines: Vec<String>,
    },
    /// Delete a file.
    Delete {
        /// Workspace-relative path.
        path: String,
    },
    /// Change a file, and maybe move it.
    Update {
        /// Workspace-relative path.
        path: String,
        /// Where to move it, if anywhere.
        move_to: Option<String>,
        /// The changes, in file order.
        hunks: Vec<Hunk>,
    },
}

/// One `@@` section of an update.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hunk {
    /// `@@ anchor` lines before it: each must be found, in order, before the hunk.
    pub anchors: Vec<String>,
    /// The lines the file has here (context and removed lines).
    pub old: Vec<String>,
    /// The lines it should have (context and added lines).
    pub new: Vec<String>,
    /// The hunk must end at the end of the file.
    pub at_eof: bool,
}

/// A patch that does not parse: what, and on which line of the patch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("patch line {line}: {message}")]
pub struct ParseError {
    /// 1-based line of the patch text.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

const BEGIN: &str = "*** Begin Patch";
const END: &str = "*** End Patch";
const ADD: &str = "*** Add File: ";
const DELETE: &str = "*** Delete File: ";
const UPDATE: &str = "*** Update File: ";
const MOVE: &str = "*** Move to: ";
const EOF_MARK: &str = "*** End of File";

/// A marker or header line, recognised with any white space around it (as Codex does).
#[derive(Debug, PartialEq)]
enum Marker<'a> {
    Begin,
    End,
    EndOfFile,
    Add(&'a str),
    Delete(&'a str),
    Update(&'a str),
    Move(&'a str),
}

fn marker(line: &str) -> Option<Marker<'_>> {
    let t = line.trim();
    match t {
        BEGIN => return Some(Marker::Begin),
        END => return Some(Marker::End),
        EOF_MARK => return Some(Marker::EndOfFile),
        _ => {}
    }
    let header = |prefix: &str| {
        t.strip_prefix(prefix.trim_end())
            .filter(|rest| rest.starts_with([' ', '\t']))
            .map(str::trim)
    };
    header(ADD)
        .map(Marker::Add)
        .or_else(|| header(DELETE).map(Marker::Delete))
        .or_else(|| header(UPDATE).map(Marker::Update))
        .or_else(|| header(MOVE).map(Marker::Move))
}

/// Parses patch text into its operations.
pub fn parse(text: &str) -> Result<Vec<Op>, ParseError> {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let err = |line: usize, message: String| ParseError {
        line: line + 1,
        message,
    };
    let first = lines
        .iter()
        .position(|l| !l.trim().is_empty())
        .ok_or_else(|| err(0, "the patch is empty".into()))?;
    if marker(lines[first]) != Some(Marker::Begin) {
        return Err(err(
            first,
            format!("expected '{BEGIN}', found '{}'", lines[first]),
        ));
    }
    let mut ops = Vec::new();
    let mut i = first + 1;
    loop {
        let Some(line) = lines.get(i) else {
            return Err(err(i, format!("the patch ends without '{END}'")));
        };
        match marker(line) {
            Some(Marker::End) => {
                // Nothing may follow: a file's line that reads as the end (a context line
                // ` *** End Patch`) would otherwise cut the patch short without a word.
                if let Some(extra) = lines[i + 1..].iter().position(|l| !l.trim().is_empty()) {
                    return Err(err(
                        i + 1 + extra,
                        format!(
                            "text after '{END}': a line of a file that reads '{END}' cannot be in a patch"
                        ),
                    ));
                }
                break;
            }
            Some(Marker::Add(path)) => {
                let mut body = Vec::new();
                i += 1;
                while let Some(l) = lines.get(i).filter(|l| marker(l).is_none()) {
                    let content = l.strip_prefix('+').ok_or_else(|| {
                        err(
                            i,
                            format!("a line of an added file must start with '+', found '{l}'"),
                        )
                    })?;
                    body.push(content.to_string());
                    i += 1;
                }
                ops.push(Op::Add {
                    path: path.to_string(),
                    lines: body,
                });
            }
            Some(Marker::Delete(path)) => {
                ops.push(Op::Delete {
                    path: path.to_string(),
                });
                i += 1;
            }
            Some(Marker::Update(path)) => {
                i += 1;
                let mut move_to = None;
                if let Some(Marker::Move(to)) = lines.get(i).and_then(|l| marker(l)) {
                    move_to = Some(to.to_string());
                    i += 1;
                }
                let (hunks, next) = parse_hunks(&lines, i)?;
                if hunks.is_empty() {
                    return Err(err(i, format!("'{UPDATE}{path}' has no changes")));
                }
                ops.push(Op::Update {
                    path: path.to_string(),
                    move_to,
                    hunks,
                });
                i = next;
            }
            None if line.trim().is_empty() => i += 1,
            _ => {
                return Err(err(
                    i,
                    format!("expected '{ADD}', '{DELETE}', '{UPDATE}' or '{END}', found '{line}'"),
                ));
            }
        }
    }
    if ops.is_empty() {
        return Err(err(first, "the patch has no file operations".into()));
    }
    Ok(ops)
}

/// Parses the hunks of one update, from line `i` up to the next `*** ` line.
fn parse_hunks(lines: &[&str], mut i: usize) -> Result<(Vec<Hunk>, usize), ParseError> {
    let mut hunks = Vec::new();
    let mut cur = Hunk::default();
    let mut has_lines = false;
    while let Some(line) = lines.get(i) {
        match marker(line) {
            Some(Marker::EndOfFile) => {
                cur.at_eof = true;
                i += 1;
                continue;
            }
            Some(_) => break,
            None => {}
        }
        if let Some(anchor) = line.strip_prefix("@@") {
            if has_lines {
                hunks.push(std::mem::take(&mut cur));
                has_lines = false;
            }
            let anchor = anchor.trim();
            if !anchor.is_empty() {
                cur.anchors.push(anchor.to_string());
            }
            i += 1;
            continue;
        }
        match line.chars().next() {
            Some(' ') | None => {
                let text = line.get(1..).unwrap_or("").to_string();
                cur.old.push(text.clone());
                cur.new.push(text);
            }
            Some('-') => cur.old.push(line[1..].to_string()),
            Some('+') => cur.new.push(line[1..].to_string()),
            Some(_) => {
                return Err(ParseError {
                    line: i + 1,
                    message: format!(
                        "a change line must start with ' ', '-' or '+', found '{line}'"
                    ),
                });
            }
        }
        has_lines = true;
        i += 1;
    }
    if has_lines {
        hunks.push(cur);
    }
    Ok((hunks, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_parses() {
        let ops = parse(
            "*** Begin Patch\n*** Add File: a.txt\n+one\n+two\n*** Delete File: b.txt\n*** Update File: c.py\n*** Move to: d.py\n@@ class A:\n@@     def f(self):\n-        return 1\n+        return 2\n*** End of File\n*** End Patch\n",
        )
        .unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!(
            ops[0],
            Op::Add {
                path: "a.txt".into(),
                lines: vec!["one".into(), "two".into()]
            }
        );
        match &ops[2] {
            Op::Update { move_to, hunks, .. } => {
                assert_eq!(move_to.as_deref(), Some("d.py"));
                assert_eq!(hunks[0].anchors, ["class A:", "def f(self):"]);
                assert!(hunks[0].at_eof);
                assert_eq!(hunks[0].old, ["        return 1"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn markers_may_have_white_space_around_them() {
        let ops = parse(
            "  *** Begin Patch\n\t*** Update File: a.txt \n-x\n+y\n  *** End of File\n *** Add File:  b.txt\n+b\n *** End Patch  \n",
        )
        .unwrap();
        assert_eq!(ops.len(), 2);
        match &ops[0] {
            Op::Update { path, hunks, .. } => {
                assert_eq!(path, "a.txt");
                assert!(hunks[0].at_eof);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            ops[1],
            Op::Add {
                path: "b.txt".into(),
                lines: vec!["b".into()]
            }
        );
    }

    #[test]
    fn nothing_may_follow_the_end() {
        // A context line that reads as the end would have cut the patch short.
        let e = parse("*** Begin Patch\n*** Update File: t.txt\n@@\n l1\n *** End Patch\n-l3\n+L3\n*** End Patch\n")
            .unwrap_err();
        assert_eq!(e.line, 6);
        assert!(parse("*** Begin Patch\n*** Add File: a\n+x\n*** End Patch\n\n  \n").is_ok());
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("*** Begin Patch\n*** Update File: x\n*oops\n*** End Patch").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(parse("hello").unwrap_err().message.contains("Begin Patch"));
        assert!(
            parse("*** Begin Patch\n*** Add File: x\n+a\n")
                .unwrap_err()
                .message
                .contains("End Patch")
        );
    }
}
