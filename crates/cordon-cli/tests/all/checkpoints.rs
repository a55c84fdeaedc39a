//! Checkpoints during a run: after tool calls that may change the workspace, and restorable.

use crate::common;

use assert_cmd::Command;
use serde_json::Value;

#[test]
fn a_run_checkpoints_after_workspace_changes_and_each_restores() {
    let home = tempfile::tempdir().unwrap();
    let ws = home.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    let script = home.path().join("s.toml");
    std::fs::write(
        &script,
        r#"
[[turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "printf 'a\n' > f.txt" } }]
[[turns]]
tool_calls = [{ name = "calculator", arguments = { expression = "1+1" } }]
[[turns]]
tool_calls = [{ name = "apply_patch", input = "*** Begin Patch\n*** Update File: f.txt\n-a\n+b\n*** End Patch\n" }]
[[turns]]
text = "done"
"#,
    )
    .unwrap();
    let snapshots = home.path().join("snaps");
    let out = common::cordon(home.path())
        .env("CORDON_SNAPSHOTS", &snapshots)
        .args(["run", "--json", "--workspace"])
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
    let events: Vec<Value> = common::json_lines(&out.stdout);
    let all: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "checkpoint")
        .collect();
    assert_eq!(
        all.len(),
        3,
        "the workspace as it started, then after exec_command and apply_patch, not after calculator"
    );
    assert_eq!(
        events[all[0]["seq"].as_u64().unwrap() as usize + 1]["kind"],
        "user_input",
        "the first checkpoint comes before the task"
    );
    let checkpoints = &all[1..];
    assert_eq!(checkpoints[1]["payload"]["files_read"], 1, "incremental");
    let after_tool = |i: usize| {
        events[events.iter().position(|e| e == checkpoints[i]).unwrap() - 1]["kind"].clone()
    };
    assert_eq!(
        after_tool(0),
        "tool_result",
        "a checkpoint follows its batch's results"
    );

    for (cp, expected) in checkpoints.iter().zip(["a\n", "b\n"]) {
        let id = cp["payload"]["snapshot_id"].as_str().unwrap();
        let to = home.path().join(format!("restored-{expected}").trim());
        let r = Command::cargo_bin("cordon")
            .unwrap()
            .env("CORDON_SNAPSHOTS", &snapshots)
            .args(["snapshot", "restore", id, "--to"])
            .arg(&to)
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        assert_eq!(std::fs::read_to_string(to.join("f.txt")).unwrap(), expected);
    }
}
