//! Approvals across processes: pause, approve (bound to exact arguments), reject, resume.

mod common;

use cordon_testkit::{Script, ScriptedServer};
use serde_json::Value;

fn cordon(home: &std::path::Path) -> std::process::Command {
    let mut c = common::cordon_std(home);
    c.env("USER", "tester")
        .env("CORDON_CONFIG", home.join("config.toml"));
    c
}

async fn run(mut c: std::process::Command, args: &[&str]) -> std::process::Output {
    c.args(args);
    common::output(c).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_pause_the_run_and_bind_to_the_exact_call() {
    let server = ScriptedServer::start(
        Script::from_toml(
            r#"
            [[turns]]
            tool_calls = [{ name = "exec_command", arguments = { cmd = "echo pushed > pushed.txt" } }]
            [[turns]]
            tool_calls = [{ name = "exec_command", arguments = { cmd = "rm -rf important" } }]
            [[turns]]
            text = "Understood, not deleting."
            "#,
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(
        h.join("config.toml"),
        format!(
            "[providers.s]\napi = \"chat\"\nbase_url = \"{}\"\n",
            server.base_url()
        ),
    )
    .unwrap();
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

    let ok = run(cordon(h), &["approve", &run_id, "--as", "alice"]).await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
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
    let out = run(cordon(h), &["resume", &run_id]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

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
