//! `cordon resume`: after a budget, and after the process is killed mid-command. The
//! scripted server lives in this test, so its request count spans the cordon processes: no
//! recorded model response may be requested twice.

use crate::common;

use assert_cmd::Command;
use cordon_testkit::{Script, ScriptedServer};
use serde_json::Value;
use std::time::Duration;

struct Env {
    home: tempfile::TempDir,
}

impl Env {
    fn new(server: &ScriptedServer) -> Env {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(
            home.path().join("config.toml"),
            format!(
                "[providers.s]\napi = \"chat\"\nbase_url = \"{}\"\nretry_initial_ms = 10\n",
                server.base_url()
            ),
        )
        .unwrap();
        Env { home }
    }

    fn cmd(&self) -> std::process::Command {
        let mut c = common::cordon_std(self.home.path());
        c.env("CORDON_CONFIG", self.home.path().join("config.toml"));
        c
    }

    fn events(&self, run: &str) -> Vec<Value> {
        let out = Command::from_std(self.cmd())
            .args(["show", "--json", run])
            .output()
            .unwrap();
        common::json_lines(&out.stdout)
    }

    fn only_run(&self) -> String {
        let out = Command::from_std(self.cmd())
            .args(["runs", "--json"])
            .output()
            .unwrap();
        let first: Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap())
                .unwrap();
        first["run_id"].as_str().unwrap().to_string()
    }
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_by_a_budget_resumes_where_it_was() {
    let server = ScriptedServer::start(
        Script::from_toml(
            r#"
            [[turns]]
            tool_calls = [{ name = "exec_command", arguments = { cmd = "echo first > a.txt" } }]
            [[turns]]
            tool_calls = [{ name = "exec_command", arguments = { cmd = "cat a.txt; echo second > b.txt" } }]
            [[turns]]
            text = "Both written."
            "#,
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let env = Env::new(&server);
    let ws = env.home.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    let mut c = env.cmd();
    c.args(["run", "--max-turns", "1", "--model", "s:m", "--workspace"])
        .arg(&ws)
        .arg("write");
    let out = common::output(c).await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cordon resume"),
        "the hint says how to continue"
    );
    let run = env.only_run();

    let resumed_ws = env.home.path().join("resumed");
    let mut c = env.cmd();
    c.args([
        "resume",
        &run,
        "--max-turns",
        "5",
        "--budget",
        "max_tool_calls=10",
        "--input",
        "Also mind b.txt.",
        "--workspace",
    ])
    .arg(&resumed_ws);
    let out = common::output(c).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("workspace restored from checkpoint"),
        "{stderr}"
    );
    assert_eq!(server.requests().len(), 3, "each model turn requested once");
    assert!(
        server.requests()[1]
            .body
            .to_string()
            .contains("Also mind b.txt."),
        "the new input reached the model"
    );
    assert_eq!(
        std::fs::read_to_string(resumed_ws.join("b.txt")).unwrap(),
        "second\n"
    );
    let events = env.events(&run);
    let k = kinds(&events);
    assert!(
        k.contains(&"run_resumed".to_string()) && k.last().unwrap() == "run_completed",
        "{k:?}"
    );
    let resumed = events.iter().find(|e| e["kind"] == "run_resumed").unwrap();
    assert_eq!(
        resumed["payload"]["raised"],
        serde_json::json!({ "max_turns": 5, "max_tool_calls": 10 })
    );
    let second_result = events
        .iter()
        .filter(|e| e["kind"] == "tool_result")
        .nth(1)
        .unwrap();
    assert!(
        second_result["payload"]["output"]
            .as_str()
            .unwrap()
            .contains("first"),
        "the checkpoint brought a.txt back"
    );
    let verify = common::output({
        let mut c = env.cmd();
        c.args(["verify", &run]);
        c
    })
    .await;
    assert!(verify.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_killed_midway_runs_again_when_it_is_confined_to_the_workspace() {
    let (events, server, log) = kill_mid_command("namespaces").await;
    assert_eq!(
        log.as_deref(),
        Some("ran\n"),
        "the workspace went back to the checkpoint, then the command ran once more"
    );
    let second = events
        .iter()
        .filter(|e| e["kind"] == "tool_result")
        .nth(1)
        .unwrap();
    assert_eq!(second["payload"]["is_error"], false, "{second}");
    let third = server.requests()[2].body.to_string();
    assert!(!third.contains("interrupted"), "{third}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_may_reach_outside_is_not_run_twice_and_the_model_is_told() {
    // The landlock tier has no network namespace (UDP gets out), so its commands may act
    // outside the workspace.
    let (events, server, log) = kill_mid_command("landlock").await;
    assert!(
        log.is_none(),
        "the interrupted command's effect was rolled back and it did not run again"
    );
    let interrupted = events
        .iter()
        .filter(|e| e["kind"] == "tool_result")
        .nth(1)
        .unwrap();
    assert!(
        interrupted["payload"]["output"]
            .as_str()
            .unwrap()
            .contains("interrupted"),
        "{interrupted}"
    );
    assert_eq!(interrupted["payload"]["not_run"], true, "{interrupted}");
    let third = server.requests()[2].body.to_string();
    assert!(third.contains("interrupted"), "the model is told");
}

/// Runs a two-command script in a sandbox of `tier`, kills cordon while the second command
/// runs, resumes, and checks what holds either way: the run completes, no model response is
/// requested again, the first command's checkpoint came back, and the log verifies. Gives
/// the events, the server, and the second command's file in the resumed workspace.
async fn kill_mid_command(tier: &str) -> (Vec<Value>, ScriptedServer, Option<String>) {
    let server = ScriptedServer::start(
        Script::from_toml(
            r#"
            [[turns]]
            tool_calls = [{ name = "exec_command", arguments = { cmd = "echo kept > kept.txt" } }]
            [[turns]]
            tool_calls = [{ name = "exec_command", arguments = { cmd = "echo ran >> log.txt; sleep 3", yield_time_ms = 120000 } }]
            [[turns]]
            text = "Recovered."
            "#,
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let env = Env::new(&server);
    let ws = env.home.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    let mut c = env.cmd();
    c.args(["run", "--model", "s:m", "--sandbox", tier, "--workspace"])
        .arg(&ws)
        .arg("work")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    // Wait until the second command is running, then kill cordon outright.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !ws.join("log.txt").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the second command never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    nix_kill(child.id());
    let _ = child.wait();
    let run = env.only_run();
    let before = kinds(&env.events(&run));
    assert_eq!(
        before.last().unwrap(),
        "tool_call_intent",
        "killed mid-call: {before:?}"
    );

    let resumed_ws = env.home.path().join("resumed");
    let mut c = env.cmd();
    c.args(["resume", &run, "--sandbox", tier, "--workspace"])
        .arg(&resumed_ws);
    let out = common::output(c).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        server.requests().len(),
        3,
        "turns 1 and 2 were not requested again"
    );
    assert!(
        resumed_ws.join("kept.txt").exists(),
        "the checkpoint after turn 1 came back"
    );
    let events = env.events(&run);
    assert_eq!(kinds(&events).last().unwrap(), "run_completed");
    let mut c = env.cmd();
    c.args(["verify", &run]);
    assert!(common::output(c).await.status.success());
    let log = std::fs::read_to_string(resumed_ws.join("log.txt")).ok();
    (events, server, log)
}

fn nix_kill(pid: u32) {
    let ok = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn sigint(pid: u32) {
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_ctrl_c_pauses_after_the_step_and_the_second_aborts() {
    let server = ScriptedServer::start(
        Script::from_toml(
            r#"
            [[turns]]
            tool_calls = [{ name = "exec_command", arguments = { cmd = "touch started; sleep 1; echo done > a.txt", yield_time_ms = 5000 } }]
            [[turns]]
            tool_calls = [{ name = "exec_command", arguments = { cmd = "echo two > b.txt" } }]
            [[turns]]
            text = "finished"
            "#,
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let env = Env::new(&server);
    let ws = env.home.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    let mut c = env.cmd();
    c.args(["run", "--model", "s:m", "--workspace"])
        .arg(&ws)
        .arg("go")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = c.spawn().unwrap();
    while !ws.join("started").exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sigint(child.id());
    let status = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        status.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("a.txt")).unwrap(),
        "done\n",
        "the step in progress finished"
    );
    let run = env.only_run();
    let k = kinds(&env.events(&run));
    assert_eq!(
        &k[k.len() - 3..],
        ["tool_result", "checkpoint", "run_paused"],
        "{k:?}"
    );
    assert_eq!(server.requests().len(), 1, "no model call after the pause");

    let resumed_ws = env.home.path().join("resumed");
    let mut c = env.cmd();
    c.args(["resume", &run, "--workspace"]).arg(&resumed_ws);
    let out = common::output(c).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.requests().len(), 3);
    assert!(resumed_ws.join("a.txt").exists() && resumed_ws.join("b.txt").exists());

    // Twice: out at once, mid-step, and still resumable.
    let server = ScriptedServer::start(
        Script::from_toml("[[turns]]\ntool_calls = [{ name = \"exec_command\", arguments = { cmd = \"touch started; sleep 30\", yield_time_ms = 60000 } }]\n[[turns]]\ntext = \"ok\"\n").unwrap(),
    )
    .await
    .unwrap();
    let env = Env::new(&server);
    let ws = env.home.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    let mut c = env.cmd();
    c.args(["run", "--model", "s:m", "--workspace"])
        .arg(&ws)
        .arg("go")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    while !ws.join("started").exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = std::time::Instant::now();
    sigint(child.id());
    tokio::time::sleep(Duration::from_millis(200)).await;
    sigint(child.id());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "aborted without waiting for the command"
    );
    let run = env.only_run();
    assert_eq!(
        kinds(&env.events(&run)).last().unwrap(),
        "tool_call_intent",
        "recorded up to the abort"
    );
}

/// `cordon pause` during a model call takes effect before the tools that answer asks for:
/// a step is a model call, or a batch of tool calls, never both. The resume runs them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_during_a_model_call_stops_before_its_tools() {
    let server = ScriptedServer::start(
        Script::from_toml(
            r#"
            [[turns]]
            delay_ms = 1500
            tool_calls = [{ name = "exec_command", arguments = { cmd = "echo ran > tool.txt" } }]
            [[turns]]
            text = "finished"
            "#,
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let env = Env::new(&server);
    let ws = env.home.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    let mut c = env.cmd();
    c.args(["run", "--model", "s:m", "--workspace"])
        .arg(&ws)
        .arg("go")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = c.spawn().unwrap();
    while server.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let run = env.only_run();
    let mut c = env.cmd();
    c.args(["pause", &run]);
    let asked = common::output(c).await;
    assert!(
        asked.status.success(),
        "{}",
        String::from_utf8_lossy(&asked.stderr)
    );
    let status = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        status.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(!ws.join("tool.txt").exists(), "no tool ran after the pause");
    let k = kinds(&env.events(&run));
    assert_eq!(&k[k.len() - 2..], ["model_response", "run_paused"], "{k:?}");

    let mut c = env.cmd();
    c.args(["resume", &run]);
    let out = common::output(c).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("tool.txt")).unwrap(),
        "ran\n"
    );
    assert_eq!(
        server.requests().len(),
        2,
        "the recorded answer was not asked for again"
    );
}
