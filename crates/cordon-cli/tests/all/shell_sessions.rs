//! The shell tools' session rules: the hard timeout, and at most 64 live sessions.

use cordon_harness::{Tool, ToolContext};
use cordon_sandbox::{LocalSandbox, SandboxConfig, SupervisorCommand};
use cordon_tools::ShellTools;
use std::sync::Arc;
use std::time::Duration;

async fn tools(hard_timeout: Duration) -> (Arc<ShellTools>, Vec<Arc<dyn Tool>>, tempfile::TempDir) {
    let ws = tempfile::tempdir().unwrap();
    let supervisor = SupervisorCommand {
        program: env!("CARGO_BIN_EXE_cordon").into(),
        args: vec!["__supervisor".into()],
        fallback: None,
    };
    let sandbox = LocalSandbox::create(SandboxConfig::new(ws.path(), supervisor))
        .await
        .unwrap();
    let shell = ShellTools::new(Arc::new(sandbox), hard_timeout);
    let tools = shell.tools();
    (shell, tools, ws)
}

fn ctx() -> ToolContext {
    ToolContext {
        run_id: "r".into(),
        call_id: "c".into(),
        idempotency_key: "r/c".into(),
    }
}

#[tokio::test]
async fn the_hard_timeout_kills_a_session() {
    let (_shell, tools, _ws) = tools(Duration::from_secs(1)).await;
    let out = tools[0]
        .call(&ctx(), r#"{"cmd": "sleep 30", "yield_time_ms": 100}"#)
        .await
        .unwrap()
        .text;
    assert!(out.contains("session ID 1"), "{out}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let out = tools[1]
        .call(&ctx(), r#"{"session_id": 1, "yield_time_ms": 2000}"#)
        .await
        .unwrap()
        .text;
    assert!(
        out.contains("hard timeout") && out.contains("killed by signal 9"),
        "{out}"
    );
}

#[tokio::test]
async fn at_most_64_sessions_live_and_the_oldest_goes_first() {
    let (shell, tools, _ws) = tools(Duration::from_secs(120)).await;
    // One that exits: pruned before any running one.
    tools[0]
        .call(&ctx(), r#"{"cmd": "true", "yield_time_ms": 2000}"#)
        .await
        .unwrap();
    for _ in 0..70 {
        let out = tools[0]
            .call(
                &ctx(),
                r#"{"cmd": "sleep 60", "yield_time_ms": 10, "login": false}"#,
            )
            .await
            .unwrap()
            .text;
        assert!(out.contains("Process running with session ID"), "{out}");
    }
    assert_eq!(shell.live_sessions(), 64);
    let oldest = tools[1]
        .call(&ctx(), r#"{"session_id": 2}"#)
        .await
        .unwrap_err()
        .to_string();
    assert!(oldest.contains("no session 2"), "{oldest}");
    let newest = tools[1]
        .call(&ctx(), r#"{"session_id": 71, "yield_time_ms": 10}"#)
        .await
        .unwrap()
        .text;
    assert!(newest.contains("session ID 71"), "{newest}");
}
