//! Approvals across processes: pause, approve (bound to exact arguments), reject, resume.

use crate::common;

use cordon_testkit::ScriptedServer;
use serde_json::Value;

use common::as_tester as cordon;
use common::expect;

async fn run(mut c: std::process::Command, args: &[&str]) -> std::process::Output {
    c.args(args);
    common::output(c).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_pause_the_run_and_bind_to_the_exact_call() {
    let (server, home) = common::scripted_home(
        r#"
            [[turns]]
            tool_calls = [{ name = "exec_command", arguments = { cmd = "echo pushed > pushed.txt" } }]
            [[turns]]
            tool_calls = [{ name = "exec_command", arguments = { cmd = "rm -rf important" } }]
            [[turns]]
            text = "Understood, not deleting."
            "#,
    )
    .await;
    let h = home.path();
    std::fs::write(
        h.join("agent.toml"),
        "name = \"careful\"\ntools = [\"exec_command\"]\n[approvals]\ncommands = [\"echo pushed*\", \"rm -rf *\"]\n",
    )
    .unwrap();
    let ws = h.join("ws");
    std::fs::create_dir(&ws).unwrap();

    let out = run(
        cordon(h),
        &[
            "run",
            "--agent",
            "agent.toml",
            "--model",
            "s:m",
            "--workspace",
            ws.to_str().unwrap(),
            "push",
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("waiting for approval") && stderr.contains("exec_command"),
        "{stderr}"
    );
    assert!(
        !ws.join("pushed.txt").exists(),
        "nothing ran before the approval"
    );
    let listed = run(
        cordon(h),
        &["runs", "--status", "awaiting_approval", "--json"],
    )
    .await;
    let run_id = serde_json::from_str::<Value>(
        String::from_utf8_lossy(&listed.stdout)
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Every waiting call, across runs, with what it would do and the rule that asked.
    let pending = expect(h, &["approvals"], 0).await;
    let listed = String::from_utf8_lossy(&pending.stdout);
    assert!(
        listed.contains(&format!("run {run_id}"))
            && listed.contains("$ echo pushed > pushed.txt")
            && listed.contains("commands matching 'echo pushed*'"),
        "{listed}"
    );
    let pending = expect(h, &["approvals", "--json"], 0).await;
    let calls = common::json_lines(&pending.stdout);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["run_id"], run_id.as_str());
    assert_eq!(calls[0]["tool"], "exec_command");
    assert_eq!(calls[0]["rules"][0], "command:echo pushed*");

    let approved = expect(h, &["approve", "last", "--as", "alice", "--json"], 0).await;
    let decided = common::json_lines(&approved.stdout);
    assert_eq!(decided[0]["decision"], "approved");
    assert_eq!(decided[0]["by"], "alice");
    assert_eq!(decided[0]["call_id"], calls[0]["call_id"]);
    let none = expect(h, &["approvals", "--json"], 0).await;
    assert!(none.stdout.is_empty(), "approved calls no longer wait");
    let out = run(cordon(h), &["resume", &run_id]).await;
    assert_eq!(
        out.status.code(),
        Some(5),
        "paused again on the rm: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(ws.join("pushed.txt").exists(), "the approved call ran");

    // An approval for other arguments does not apply.
    let store = cordon_store::Store::open(&h.join("runs.db")).await.unwrap();
    let rid = cordon_core::RunId::from(run_id.as_str());
    let state = cordon_core::RunState::fold(&store.events(&rid).await.unwrap()).unwrap();
    let (rm_call, _) = state.awaiting.iter().next().unwrap();
    let mut log = store.open_run(&rid).await.unwrap();
    log.append(&cordon_core::EventPayload::ApprovalGranted {
        call_id: rm_call.clone(),
        arguments_hash: cordon_core::event::arguments_hash(r#"{"cmd":"rm -rf nothing-much"}"#),
        by: "mallory".into(),
        always: false,
        always_rules: Vec::new(),
    })
    .await
    .unwrap();
    let out = run(cordon(h), &["resume", &run_id]).await;
    assert_eq!(
        out.status.code(),
        Some(5),
        "still waiting: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let rejected = run(
        cordon(h),
        &[
            "reject",
            &run_id,
            rm_call,
            "--message",
            "never delete that",
            "--as",
            "bob",
        ],
    )
    .await;
    assert!(
        rejected.status.success(),
        "{}",
        String::from_utf8_lossy(&rejected.stderr)
    );
    expect(h, &["resume", &run_id], 0).await;

    let reqs = server.requests();
    assert_eq!(reqs.len(), 3, "each model turn once, across five processes");
    assert!(
        reqs[2]
            .body
            .to_string()
            .contains("a person (bob) rejected this call: never delete that")
    );
    let events: Vec<Value> = store
        .events(&rid)
        .await
        .unwrap()
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    let granted: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "approval_granted")
        .collect();
    assert_eq!(granted[0]["payload"]["by"], "alice");
    assert!(cordon_core::verify_chain(&store.events(&rid).await.unwrap()).is_ok());
}

/// A home with a scripted server behind provider `s`, an agent whose `[approvals]` are
/// `rules`, and an empty workspace.
async fn approval_home(
    script: &str,
    rules: &str,
) -> (ScriptedServer, tempfile::TempDir, std::path::PathBuf) {
    let (server, home) = common::scripted_home(script).await;
    let h = home.path();
    std::fs::write(
        h.join("agent.toml"),
        format!("name = \"careful\"\ntools = [\"exec_command\"]\n[approvals]\n{rules}\n"),
    )
    .unwrap();
    let ws = h.join("ws");
    std::fs::create_dir(&ws).unwrap();
    (server, home, ws)
}

/// The run's calls waiting for approval: (call id, arguments).
async fn awaiting(h: &std::path::Path, run_id: &str) -> Vec<(String, String)> {
    let store = cordon_store::Store::open_read_only(&h.join("runs.db"))
        .await
        .unwrap();
    let events = store
        .events(&cordon_core::RunId::from(run_id))
        .await
        .unwrap();
    let state = cordon_core::RunState::fold(&events).unwrap();
    state
        .awaiting
        .keys()
        .map(|id| {
            let args = events
                .iter()
                .rev()
                .find(|e| e.kind == "approval_requested" && e.payload["call_id"] == id.as_str())
                .map(|e| e.payload["arguments"].as_str().unwrap().to_string())
                .unwrap();
            (id.clone(), args)
        })
        .collect()
}

fn run_id_of(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    text.split_whitespace()
        .skip_while(|w| *w != "run")
        .nth(1)
        .unwrap_or_else(|| panic!("no run id in: {text}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_wins_over_an_always_approval_in_the_same_batch() {
    let (_server, home, ws) = approval_home(
        r#"
        [[turns]]
        tool_calls = [
            { name = "exec_command", arguments = { cmd = "touch first.txt" } },
            { name = "exec_command", arguments = { cmd = "touch second.txt" } },
        ]
        [[turns]]
        text = "done"
        "#,
        "commands = [\"touch *\"]",
    )
    .await;
    let h = home.path();
    let ws_arg = ws.to_str().unwrap();
    let out = run(
        cordon(h),
        &[
            "run",
            "--agent",
            "agent.toml",
            "--model",
            "s:m",
            "--workspace",
            ws_arg,
            "go",
        ],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_id = run_id_of(&out.stderr);
    let calls = awaiting(h, &run_id).await;
    assert_eq!(calls.len(), 2, "{calls:?}");
    let first = &calls.iter().find(|(_, a)| a.contains("first")).unwrap().0;
    let second = &calls.iter().find(|(_, a)| a.contains("second")).unwrap().0;
    let rejected = expect(h, &["reject", &run_id, first, "--message", "no"], 0).await;
    assert!(
        String::from_utf8_lossy(&rejected.stdout).contains(&format!(
            "rejected {first} (exec_command): $ touch first.txt"
        )),
        "the rejection says what was rejected: {}",
        String::from_utf8_lossy(&rejected.stdout)
    );
    let approved = expect(h, &["approve", &run_id, second, "--always"], 0).await;
    assert!(
        String::from_utf8_lossy(&approved.stdout).contains("commands matching 'touch *'"),
        "the confirmation names the rule: {}",
        String::from_utf8_lossy(&approved.stdout)
    );
    expect(h, &["resume", &run_id], 0).await;
    assert!(ws.join("second.txt").exists(), "the approved call ran");
    assert!(
        !ws.join("first.txt").exists(),
        "the rejected call must never run, whatever else was approved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_covers_the_rule_that_asked_and_nothing_wider() {
    let (server, home, ws) = approval_home(
        r#"
        [[turns]]
        tool_calls = [{ name = "exec_command", arguments = { cmd = "rm -rf a" } }]
        [[turns]]
        tool_calls = [{ name = "exec_command", arguments = { cmd = "rm -rf b" } }]
        [[turns]]
        tool_calls = [{ name = "exec_command", arguments = { cmd = "git push --force || touch pushed.txt" } }]
        [[turns]]
        text = "done"
        "#,
        "commands = [\"rm -rf *\", \"git push*\"]",
    )
    .await;
    let h = home.path();
    for d in ["a", "b"] {
        std::fs::create_dir(ws.join(d)).unwrap();
    }
    let ws_arg = ws.to_str().unwrap();
    let out = run(
        cordon(h),
        &[
            "run",
            "--agent",
            "agent.toml",
            "--model",
            "s:m",
            "--workspace",
            ws_arg,
            "go",
        ],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_id = run_id_of(&out.stderr);
    expect(h, &["approve", &run_id, "--always"], 0).await;
    let out = run(cordon(h), &["resume", &run_id]).await;
    assert_eq!(
        out.status.code(),
        Some(5),
        "the push matches another rule, so it waits: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !ws.join("a").exists() && !ws.join("b").exists(),
        "both rm calls ran"
    );
    assert!(!ws.join("pushed.txt").exists(), "the push did not run");
    let calls = awaiting(h, &run_id).await;
    assert_eq!(calls.len(), 1);
    assert!(calls[0].1.contains("git push"), "{calls:?}");
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn an_empty_run_id_matches_nothing() {
    let (_server, home, ws) = approval_home(
        r#"
        [[turns]]
        tool_calls = [{ name = "exec_command", arguments = { cmd = "touch x" } }]
        "#,
        "commands = [\"touch *\"]",
    )
    .await;
    let h = home.path();
    let ws_arg = ws.to_str().unwrap();
    let out = run(
        cordon(h),
        &[
            "run",
            "--agent",
            "agent.toml",
            "--model",
            "s:m",
            "--workspace",
            ws_arg,
            "go",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(5));
    let run_id = run_id_of(&out.stderr);
    for args in [
        vec!["approve", ""],
        vec!["approve", " "],
        vec!["show", ""],
        vec!["resume", ""],
    ] {
        let out = run(cordon(h), &args).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(awaiting(h, &run_id).await.len(), 1, "nothing was approved");
}

/// A server that numbers calls per turn sends the same call id again later. Each call is its
/// own: the approval a person gave one never lets another through, the approved call runs
/// with its own arguments, and the run ends having run every call once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_covers_one_call_even_when_the_server_reuses_its_id() {
    let (_server, home, ws) = approval_home(
        r#"
        [[turns]]
        tool_calls = [{ name = "exec_command", call_id = "d", arguments = { cmd = "echo a >> log.txt" } }]
        [[turns]]
        tool_calls = [{ name = "exec_command", call_id = "d", arguments = { cmd = "rm -rf j; echo b >> log.txt" } }]
        [[turns]]
        tool_calls = [{ name = "exec_command", call_id = "d", arguments = { cmd = "rm -rf j; echo b >> log.txt" } }]
        [[turns]]
        text = "done"
        "#,
        "commands = [\"rm -rf *\"]",
    )
    .await;
    let h = home.path();
    let ws_arg = ws.to_str().unwrap();
    let args = [
        "run",
        "--agent",
        "agent.toml",
        "--model",
        "s:m",
        "--workspace",
        ws_arg,
        "go",
    ];
    let log = || std::fs::read_to_string(ws.join("log.txt")).unwrap_or_default();
    let out = expect(h, &args, 5).await;
    let run_id = run_id_of(&out.stderr);
    assert_eq!(log(), "a\n", "the first call ran; the second waits");
    let waiting = awaiting(h, &run_id).await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0].0, "d.2", "the reused id was made unique");
    expect(h, &["approve", &run_id, "d.2"], 0).await;
    // The third call, same id and arguments, must ask again.
    expect(h, &["resume", &run_id], 5).await;
    assert_eq!(
        log(),
        "a\nb\n",
        "the approved call ran, with its own arguments"
    );
    let waiting = awaiting(h, &run_id).await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    expect(h, &["approve", &run_id, &waiting[0].0], 0).await;
    expect(h, &["resume", &run_id], 0).await;
    assert_eq!(log(), "a\nb\nb\n", "every call ran once");
}
