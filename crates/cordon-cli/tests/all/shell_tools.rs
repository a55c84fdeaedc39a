//! `cordon run` with the shell tools: a scripted model drives exec_command and write_stdin
//! in a real sandbox, through the real binary.

use crate::common;

use serde_json::Value;

const SCRIPT: &str = r#"
[[turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "echo hello > made.txt; cat made.txt; pwd; id -u" } }]
[[turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "read line; echo got:$line; sleep 0.2; echo bye", yield_time_ms = 300 } }]
[[turns]]
tool_calls = [{ name = "write_stdin", arguments = { session_id = 2, chars = "ping\n", yield_time_ms = 3000 } }]
[[turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "seq 1 100000", max_output_tokens = 100 } }]
[[turns]]
tool_calls = [
  { name = "exec_command", arguments = { cmd = "pwd", workdir = "../.." } },
  { name = "write_stdin", arguments = { session_id = 2 } },
]
[[turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "tty; read -r x; echo typed:$x", tty = true, yield_time_ms = 500 } }]
[[turns]]
tool_calls = [{ name = "write_stdin", arguments = { session_id = 5, chars = "abc\n", yield_time_ms = 3000 } }]
[[turns]]
text = "All done."
"#;

#[test]
fn a_model_works_in_the_sandbox_through_the_shell_tools() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    let script = dir.path().join("script.toml");
    std::fs::write(&script, SCRIPT).unwrap();
    let out = common::cordon(dir.path())
        .args(["run", "--json", "--workspace"])
        .arg(&ws)
        .arg("--model")
        .arg(format!("scripted:{}", script.display()))
        .arg("make a file")
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let events: Vec<Value> = common::json_lines(&out.stdout);
    let sandbox = &events[0]["payload"]["sandbox"];
    assert_eq!(
        sandbox["tier"], "namespaces",
        "the tier is recorded: {}",
        events[0]
    );
    assert_eq!(sandbox["confinement"]["seccomp"], true);
    let results: Vec<String> = events
        .iter()
        .filter(|e| e["kind"] == "tool_result")
        .map(|e| e["payload"]["output"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(results.len(), 8, "{results:#?}");

    assert!(
        results[0].contains("Process exited with code 0"),
        "{}",
        results[0]
    );
    assert!(
        results[0].contains("hello\n/workspace\n1000"),
        "{}",
        results[0]
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("made.txt")).unwrap(),
        "hello\n",
        "the file is in the workspace"
    );

    assert!(
        results[1].contains("Process running with session ID 2"),
        "{}",
        results[1]
    );
    assert!(
        results[2].contains("got:ping")
            && results[2].contains("bye")
            && results[2].contains("exited with code 0"),
        "{}",
        results[2]
    );

    assert!(
        results[3].contains("tokens truncated")
            && results[3].contains("\n1\n2\n")
            && results[3].contains("100000"),
        "head and tail kept"
    );
    assert!(
        results[3].contains("Original token count: 147"),
        "the original size is reported: {}",
        &results[3][..200]
    );

    assert!(
        results[4].contains("outside the workspace"),
        "{}",
        results[4]
    );
    assert!(
        results[5].contains("no session 2"),
        "an exited session is gone: {}",
        results[5]
    );
}

#[test]
fn an_unconfined_run_warns_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.toml");
    std::fs::write(&script, "[[turns]]\ntext = \"nothing to do\"\n").unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    let out = common::cordon(dir.path())
        .current_dir(&ws)
        .args(["run", "--json", "--sandbox", "unconfined", "--model"])
        .arg(format!("scripted:{}", script.display()))
        .arg("hi")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warning: --sandbox unconfined"), "{stderr}");
    let first: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["payload"]["sandbox"]["tier"], "unconfined", "{first}");
    assert_eq!(first["payload"]["sandbox"]["confinement"]["seccomp"], false);
}
