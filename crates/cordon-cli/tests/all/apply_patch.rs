//! `cordon apply-patch`, and the `apply_patch` tool in a run, through the real binary.

use crate::common;

use serde_json::Value;

use common::cordon;

#[test]
fn apply_patch_changes_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("a.txt"), "one\r\ntwo\r\n").unwrap();
    std::fs::write(root.join("b.txt"), "keep\n").unwrap();
    let good = "*** Begin Patch\n*** Update File: a.txt\n-two\n+2\n*** Add File: d/n.txt\n+new\n*** Delete File: b.txt\n*** End Patch\n";
    let out = cordon(dir.path())
        .arg("apply-patch")
        .arg("--root")
        .arg(&root)
        .write_stdin(good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "M a.txt\nA d/n.txt\nD b.txt\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("a.txt")).unwrap(),
        "one\r\n2\r\n",
        "CRLF kept"
    );
    assert!(!root.join("b.txt").exists());

    // The second operation does not fit: the first must not happen either.
    let bad = "*** Begin Patch\n*** Add File: x.txt\n+x\n*** Update File: a.txt\n-three\n+3\n*** End Patch\n";
    let patch_file = dir.path().join("bad.patch");
    std::fs::write(&patch_file, bad).unwrap();
    let out = cordon(dir.path())
        .arg("apply-patch")
        .arg("--root")
        .arg(&root)
        .arg(&patch_file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("these lines were not found")
            && stderr.contains("three")
            && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    assert!(!root.join("x.txt").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("a.txt")).unwrap(),
        "one\r\n2\r\n"
    );

    // A link leading out is refused, and a malformed patch is bad input.
    std::os::unix::fs::symlink(dir.path(), root.join("out")).unwrap();
    let escape = "*** Begin Patch\n*** Add File: out/escaped.txt\n+x\n*** End Patch\n";
    let out = cordon(dir.path())
        .arg("apply-patch")
        .arg("--root")
        .arg(&root)
        .write_stdin(escape)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(!dir.path().join("escaped.txt").exists());
    let out = cordon(dir.path())
        .arg("apply-patch")
        .arg("--root")
        .arg(&root)
        .write_stdin("not a patch")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

const SCRIPT: &str = r#"
[[turns]]
tool_calls = [{ name = "apply_patch", input = "*** Begin Patch\n*** Update File: main.py\n@@ def greet():\n-    print('hi')\n+    print('hello')\n*** Add File: notes.md\n+# Notes\n*** End Patch\n" }]
[[turns]]
tool_calls = [{ name = "apply_patch", input = "*** Begin Patch\n*** Update File: main.py\n-nothing like this\n+x\n*** End Patch\n" }]
[[turns]]
text = "Edited."
"#;

#[test]
fn the_model_edits_files_with_apply_patch_on_both_protocols() {
    for prefix in ["scripted", "scripted-chat"] {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        std::fs::write(ws.join("main.py"), "def greet():\n    print('hi')\n").unwrap();
        let script = dir.path().join("script.toml");
        std::fs::write(&script, SCRIPT).unwrap();
        let out = cordon(dir.path())
            .args(["run", "--json", "--workspace"])
            .arg(&ws)
            .arg("--model")
            .arg(format!("{prefix}:{}", script.display()))
            .arg("say hello")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{prefix}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::read_to_string(ws.join("main.py")).unwrap(),
            "def greet():\n    print('hello')\n",
            "{prefix}"
        );
        assert_eq!(
            std::fs::read_to_string(ws.join("notes.md")).unwrap(),
            "# Notes\n"
        );
        let events: Vec<Value> = common::json_lines(&out.stdout);
        let results: Vec<&Value> = events
            .iter()
            .filter(|e| e["kind"] == "tool_result")
            .collect();
        assert_eq!(
            results[0]["payload"]["output"], "Done. M main.py, A notes.md",
            "{prefix}"
        );
        assert_eq!(results[1]["payload"]["is_error"], true);
        assert!(
            results[1]["payload"]["output"]
                .as_str()
                .unwrap()
                .contains("No file was changed")
        );
    }
}

#[test]
fn a_write_that_fails_midway_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("a.txt"), "a\n").unwrap();
    std::fs::write(root.join("plain.txt"), "plain\n").unwrap();
    let patch = "*** Begin Patch\n*** Update File: a.txt\n-a\n+A\n*** Add File: new.txt\n+n\n*** Add File: plain.txt/child.txt\n+x\n*** End Patch\n";
    let out = cordon(dir.path())
        .arg("apply-patch")
        .arg("--root")
        .arg(&root)
        .write_stdin(patch)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(std::fs::read_to_string(root.join("a.txt")).unwrap(), "a\n");
    assert!(!root.join("new.txt").exists());
}

#[test]
fn a_patch_touching_a_read_only_entry_changes_nothing_in_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::write(
        dir.path().join("manifest.toml"),
        "[entries.\"locked.txt\"]\ntype = \"file\"\ncontent = \"locked\\n\"\nread_only = true\n[entries.\"open.txt\"]\ntype = \"file\"\ncontent = \"open\\n\"\n",
    )
    .unwrap();
    let script = dir.path().join("script.toml");
    std::fs::write(
        &script,
        r#"
[[turns]]
tool_calls = [{ name = "apply_patch", input = "*** Begin Patch\n*** Update File: open.txt\n-open\n+OPEN\n*** Add File: new.txt\n+n\n*** Update File: locked.txt\n-locked\n+unlocked\n*** End Patch\n" }]
[[turns]]
text = "Tried."
"#,
    )
    .unwrap();
    let out = cordon(dir.path())
        .args(["run", "--json", "--sandbox", "namespaces", "--manifest"])
        .arg(dir.path().join("manifest.toml"))
        .arg("--workspace")
        .arg(&ws)
        .arg("--model")
        .arg(format!("scripted:{}", script.display()))
        .arg("edit")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = common::json_lines(&out.stdout);
    let result = events.iter().find(|e| e["kind"] == "tool_result").unwrap();
    assert_eq!(result["payload"]["is_error"], true, "{result}");
    assert_eq!(
        std::fs::read_to_string(ws.join("locked.txt")).unwrap(),
        "locked\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("open.txt")).unwrap(),
        "open\n"
    );
    assert!(!ws.join("new.txt").exists(), "the add was undone too");
    let names: Vec<String> = std::fs::read_dir(&ws)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".cordon-")), "{names:?}");
}
