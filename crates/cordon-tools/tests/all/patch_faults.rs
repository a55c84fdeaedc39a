//! apply_patch is all or nothing even when the file system fails: a failure injected at
//! every step of every patch leaves the tree exactly as it was.

use cordon_sandbox::files::Step;
use cordon_tools::patch::apply_to_dir_with;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Every path under `root` with its kind, mode and content.
fn tree(root: &Path) -> BTreeMap<String, (String, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let mode = m.permissions().mode() & 0o7777;
            if m.is_dir() {
                out.insert(rel, ("dir".into(), mode, Vec::new()));
                stack.push(p);
            } else {
                out.insert(rel, ("file".into(), mode, std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn setup(root: &Path) {
    std::fs::write(root.join("a.txt"), "a\n").unwrap();
    std::fs::write(root.join("b.txt"), "b\n").unwrap();
    std::fs::write(root.join("c.txt"), "c\n").unwrap();
    std::fs::write(root.join("run.sh"), "echo 1\n").unwrap();
    std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::fs::write(root.join("plain.txt"), "plain\n").unwrap();
}

const PATCH: &str = "*** Begin Patch
*** Update File: a.txt
-a
+A
*** Add File: new/deeper/n.txt
+new
*** Delete File: b.txt
*** Update File: c.txt
*** Move to: moved/c.txt
-c
+C
*** Update File: run.sh
-echo 1
+echo 2
*** Add File: plain.txt
+replaced
*** End Patch
";

#[test]
fn a_failure_at_any_step_leaves_the_tree_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    setup(root);
    let before = tree(root);
    let mut steps_seen = Vec::new();
    let mut k = 0;
    loop {
        let mut n = 0;
        let mut step_at_k = None;
        let result = apply_to_dir_with(root, PATCH, &mut |step: Step| {
            n += 1;
            if n == k + 1 {
                step_at_k = Some(step);
                return Err(std::io::Error::other(format!("injected at step {k}")));
            }
            Ok(())
        });
        match result {
            Err(e) => {
                assert!(e.to_string().contains("injected"), "{e}");
                assert_eq!(
                    tree(root),
                    before,
                    "failing at step {k} ({step_at_k:?}) changed the tree"
                );
                steps_seen.push(step_at_k.unwrap());
                k += 1;
            }
            Ok(summary) => {
                assert_eq!(
                    summary,
                    [
                        "M a.txt",
                        "A new/deeper/n.txt",
                        "D b.txt",
                        "M moved/c.txt",
                        "M run.sh",
                        "A plain.txt"
                    ]
                );
                break;
            }
        }
    }
    // Every kind of step was tried: directories, staging, moving aside, installing.
    for kind in ["MakeDir", "Stage", "Backup", "Install"] {
        assert!(
            steps_seen
                .iter()
                .any(|s| format!("{s:?}").starts_with(kind)),
            "no {kind} step among {steps_seen:?}"
        );
    }
    assert!(k >= 15, "{k} steps");
    let after = tree(root);
    assert_eq!(after["a.txt"].2, b"A\n");
    assert_eq!(after["moved/c.txt"].2, b"C\n");
    assert_eq!(after["plain.txt"].2, b"replaced\n");
    assert_eq!(after["run.sh"].1, 0o750, "an updated file keeps its mode");
    assert!(!after.contains_key("b.txt") && !after.contains_key("c.txt"));
    assert!(
        after.keys().all(|k| !k.contains(".cordon-")),
        "no temporary file is left: {after:?}"
    );
}

#[test]
fn a_write_that_cannot_happen_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("a.txt"), "a\n").unwrap();
    std::fs::write(root.join("plain.txt"), "plain\n").unwrap();
    let before = tree(root);
    let patch = "*** Begin Patch\n*** Update File: a.txt\n-a\n+A\n*** Add File: new.txt\n+n\n*** Add File: plain.txt/child.txt\n+x\n*** End Patch\n";
    let err = apply_to_dir_with(root, patch, &mut |_| Ok(())).unwrap_err();
    assert!(err.to_string().contains("plain.txt"), "{err}");
    assert_eq!(tree(root), before);
}
