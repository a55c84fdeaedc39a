//! The crash test: a scripted 30-step run (file edits with `apply_patch`, commands with
//! `exec_command`, a Python venv, in a real namespaces sandbox built from a manifest with a
//! root and an environment, over the streamed Responses API) is killed
//! with SIGKILL at many points: while a response streams, while a command runs, while a
//! checkpoint is written, and right after log appends. Each time `cordon resume` finishes it,
//! and then the workspace must equal an uninterrupted run's, no recorded model response may
//! have been requested again, and `cordon verify` must pass.
//!
//! The scripted server picks each turn from the conversation it is sent, as a deterministic
//! model would: a request sent again because cordon died before recording the answer gets
//! the same answer.

use crate::common;

use cordon_testkit::{Script, ScriptedServer};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

const STEPS: usize = 30;

/// The script: 30 tool steps, then a final answer. The response of step `slow` streams
/// slowly and the command of step `sleepy` sleeps a while, so that a kill can land inside
/// them; neither changes what the steps do to the workspace.
fn script(slow: Option<usize>, sleepy: Option<usize>) -> Script {
    let mut turns = Vec::new();
    for i in 0..STEPS {
        let call = match i % 6 {
            // The manifest's root and environment must hold after every resume; the first
            // step makes a real Python venv (absolute links included).
            0 => exec(&format!(
                "printf 'step {i} in %s with %s and %s\\n' \"$(pwd)\" \"$LIT\" \"${{TOK:+a token}}\" >> journal.txt && mkdir -p d{i} && seq 1 {} > d{i}/seq.txt{}",
                i * 50 + 1,
                if i == 0 {
                    " && python3 -m venv --without-pip venv"
                } else {
                    ""
                }
            )),
            1 => patch(&format!(
                "*** Begin Patch\n*** Add File: notes/n{i}.md\n+# note {i}\n+status: open\n*** End Patch\n"
            )),
            // Ten megabytes, so the checkpoint after it takes a while.
            2 => exec(&format!(
                "seq {i} 1500000 > numbers.txt && printf 'step {i}\\n' >> journal.txt"
            )),
            3 => exec(&format!(
                "{}printf 'step {i}\\n' >> journal.txt && ln -sf journal.txt link{i}",
                if sleepy == Some(i) {
                    "sleep 0.3 && "
                } else {
                    ""
                }
            )),
            4 => patch(&format!(
                "*** Begin Patch\n*** Update File: notes/n{}.md\n@@\n # note {}\n-status: open\n+status: closed at step {i}\n*** End Patch\n",
                i - 3,
                i - 3
            )),
            _ => exec(&format!(
                "chmod 750 d{} && cp journal.txt d{}/journal.copy && rm -f link{}",
                i - 5,
                i - 5,
                i.saturating_sub(8)
            )),
        };
        let mut turn = json!({ "tool_calls": [call] });
        if slow == Some(i) {
            turn["text"] = json!(format!(
                "Step {i}: working through the plan one careful piece at a time, as agreed, before the tool call."
            ));
            turn["chunk_delay_ms"] = json!(25);
        }
        turns.push(turn);
    }
    turns.push(json!({ "text": "All 30 steps are done." }));
    serde_json::from_value(json!({ "turn_from": "conversation", "turns": turns })).unwrap()
}

fn exec(cmd: &str) -> Value {
    json!({ "name": "exec_command", "arguments": { "cmd": cmd } })
}

fn patch(text: &str) -> Value {
    json!({ "name": "apply_patch", "input": text })
}

/// A private home configured for one scripted server.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new(server: &ScriptedServer) -> Home {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            format!(
                "[providers.s]\napi = \"responses\"\nbase_url = \"{}\"\nretry_initial_ms = 10\n",
                server.base_url()
            ),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("ws")).unwrap();
        std::fs::write(
            dir.path().join("manifest.toml"),
            "root = \"/project\"\n[entries.\"readme.txt\"]\ntype = \"file\"\ncontent = \"30 steps\\n\"\n[env]\nLIT = \"plain-value\"\nTOK = { from_host = \"CRASH_TOKEN\" }\n",
        )
        .unwrap();
        Home { dir }
    }

    fn cmd(&self) -> std::process::Command {
        let mut c = common::cordon_std(self.dir.path());
        c.env("CORDON_CONFIG", self.dir.path().join("config.toml"))
            .env("CRASH_TOKEN", "tok-crash-1234");
        c
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    async fn events(&self, run: &str) -> Vec<Value> {
        let mut c = self.cmd();
        c.args(["show", "--json", run]);
        let out = common::output(c).await;
        assert!(out.status.success());
        common::json_lines(&out.stdout)
    }
}

/// Where to kill: once the `nth` event of `kind` has been printed, after `delay_ms`.
#[derive(Debug, Clone, Copy)]
struct KillPoint {
    kind: &'static str,
    nth: usize,
    delay_ms: u64,
    /// What the kill is meant to interrupt.
    aim: Aim,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Aim {
    Streaming,
    ToolExecution,
    SnapshotWriting,
    LogAppends,
}

/// Starts `cordon run --json`; kills it at `kill` if given. Returns the run id.
async fn run(home: &Home, kill: Option<KillPoint>) -> String {
    let mut c = home.cmd();
    c.args([
        "run",
        "--json",
        "--max-turns",
        "40",
        "--model",
        "s:m",
        "--manifest",
        "manifest.toml",
        "--workspace",
    ])
    .arg(home.path("ws"))
    .arg("Do the 30 steps.")
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    tokio::task::spawn_blocking(move || {
        let mut child = c.spawn().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut run_id = None;
        let mut seen = 0;
        for line in stdout.lines() {
            let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
            run_id.get_or_insert_with(|| event["run_id"].as_str().unwrap().to_string());
            if let Some(k) = kill
                && event["kind"] == k.kind
            {
                seen += 1;
                if seen == k.nth {
                    std::thread::sleep(Duration::from_millis(k.delay_ms));
                    child.kill().unwrap(); // SIGKILL
                    break;
                }
            }
        }
        let status = child.wait().unwrap();
        if kill.is_none() {
            assert!(status.success(), "the uninterrupted run failed: {status}");
        }
        run_id.expect("the run printed its events")
    })
    .await
    .unwrap()
}

/// A directory's contents: path → what it is (file bytes, link target, or dir) and its mode.
fn tree(root: &Path) -> BTreeMap<String, (String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            let what = if meta.file_type().is_symlink() {
                format!("link → {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_string()
            } else {
                let bytes = std::fs::read(&path).unwrap();
                format!("file {}", hex_digest(&bytes))
            };
            out.insert(rel, (what, mode));
        }
    }
    out
}

/// Checks the server's request log against the run's: each turn's recorded response is the
/// last request for that turn, so no recorded response was requested again.
fn no_recorded_response_requested_again(server: &ScriptedServer, events: &[Value]) {
    let requests = server.requests();
    let mut turns_recorded = Vec::new();
    for e in events.iter().filter(|e| e["kind"] == "model_response") {
        let id = e["payload"]["response"]["id"].as_str().unwrap();
        let index: usize = id.rsplit('_').next().unwrap().parse().unwrap();
        let served = &requests[index].served;
        let later: Vec<usize> = requests
            .iter()
            .filter(|r| &r.served == served && r.index > index)
            .map(|r| r.index)
            .collect();
        assert!(
            later.is_empty(),
            "{served} was recorded from request {index} and requested again as {later:?}"
        );
        turns_recorded.push(served.clone());
    }
    let expected: Vec<String> = (0..=STEPS).map(|t| format!("turn {t}")).collect();
    assert_eq!(
        turns_recorded, expected,
        "each turn recorded once, in order"
    );
}

/// The kill points, at least 20, aimed at each part of a step.
fn kill_points() -> Vec<KillPoint> {
    let mut points = Vec::new();
    let point = |kind, nth, delay_ms, aim| KillPoint {
        kind,
        nth,
        delay_ms,
        aim,
    };
    // Mid-stream: a slow response takes about 0.4 s; kill 120 ms into one.
    for i in (0..STEPS).filter(|i| i % 5 == 0) {
        points.push(point("model_request", i + 1, 120, Aim::Streaming));
    }
    // Mid-command: a sleeping command takes 0.3 s; kill 100 ms in.
    for i in (0..STEPS).filter(|i| i % 6 == 3) {
        points.push(point("tool_call_intent", i + 1, 100, Aim::ToolExecution));
    }
    // Mid-checkpoint: the result of a ten-megabyte write is recorded, its snapshot starts.
    for i in (0..STEPS).filter(|i| i % 6 == 2) {
        points.push(point("tool_result", i + 1, 0, Aim::SnapshotWriting));
    }
    // Right after an append: the next append or the work between them.
    for (kind, nth) in [
        ("model_response", 2),
        ("model_response", 13),
        ("model_response", 25),
        ("tool_call_intent", 8),
        ("tool_result", 11),
        ("tool_result", 30),
        // The first is the workspace as it started.
        ("checkpoint", 1),
        ("checkpoint", 17),
        ("user_input", 1),
    ] {
        points.push(point(kind, nth, 0, Aim::LogAppends));
    }
    points
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_crash_resumes_to_the_same_workspace_without_asking_the_model_twice() {
    // The uninterrupted run, to compare with.
    let server = ScriptedServer::start(script(None, None)).await.unwrap();
    let home = Home::new(&server);
    let reference_run = run(&home, None).await;
    let expected = tree(&home.path("ws"));
    let reference_events = home.events(&reference_run).await;
    no_recorded_response_requested_again(&server, &reference_events);
    for e in &reference_events {
        assert_ne!(e["payload"]["is_error"], true, "every step works: {e}");
    }
    assert!(
        expected.len() > 20,
        "the steps built a workspace: {expected:?}"
    );
    let journal = std::fs::read_to_string(home.path("ws/journal.txt")).unwrap();
    assert!(
        journal.starts_with("step 0 in /project with plain-value and a token\n"),
        "the manifest's root and environment: {journal}"
    );
    assert_eq!(
        expected["venv/bin/python3"].0, "link → /usr/bin/python3",
        "a real venv, with its absolute link"
    );

    let points = kill_points();
    assert!(points.len() >= 20);
    let mut landed: BTreeMap<Aim, usize> = BTreeMap::new();
    for point in points {
        let step = point.nth - 1;
        let slow = (point.aim == Aim::Streaming).then_some(step);
        let sleepy = (point.aim == Aim::ToolExecution).then_some(step);
        let server = ScriptedServer::start(script(slow, sleepy)).await.unwrap();
        let home = Home::new(&server);
        let run_id = run(&home, Some(point)).await;
        let before = home.events(&run_id).await;
        let last = before.last().unwrap()["kind"].as_str().unwrap().to_string();
        assert_ne!(
            last, "run_completed",
            "{point:?} came too late to kill anything"
        );
        // Where the kill actually landed, from the log's last event.
        let hit = matches!(
            (point.aim, last.as_str()),
            (Aim::Streaming, "model_request")
                | (Aim::ToolExecution, "tool_call_intent")
                | (Aim::SnapshotWriting, "tool_result")
                | (Aim::LogAppends, _)
        );
        if hit {
            *landed.entry(point.aim).or_default() += 1;
        }

        let mut c = home.cmd();
        c.args(["resume", "--json", &run_id, "--workspace"])
            .arg(home.path("resumed"));
        let out = common::output(c).await;
        assert!(
            out.status.success(),
            "{point:?}: resume failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let events = home.events(&run_id).await;
        assert_eq!(events.last().unwrap()["kind"], "run_completed", "{point:?}");
        if last == "tool_result" {
            // Killed after a result, before its checkpoint: the restore undid the call, so
            // resume must have replayed it.
            assert!(
                events.iter().any(|e| e["kind"] == "tool_replayed"),
                "{point:?}: nothing was replayed"
            );
        }
        let got = tree(&home.path("resumed"));
        if got != expected {
            let differ: Vec<_> = expected
                .keys()
                .chain(got.keys())
                .filter(|k| expected.get(*k) != got.get(*k))
                .collect();
            panic!("{point:?} (killed after {last}): the workspace differs at {differ:?}");
        }
        no_recorded_response_requested_again(&server, &events);
        let mut c = home.cmd();
        c.args(["verify", &run_id]);
        let verify = common::output(c).await;
        assert!(verify.status.success(), "{point:?}: verify failed");
    }
    eprintln!("kills that landed where aimed: {landed:?}");
    // The timed kills landed where they were aimed, most of the time.
    for aim in [Aim::Streaming, Aim::ToolExecution, Aim::SnapshotWriting] {
        assert!(
            landed.get(&aim).copied().unwrap_or(0) >= 3,
            "too few kills landed in {aim:?}: {landed:?}"
        );
    }
}

/// SHA-256 of `bytes`, in hex.
fn hex_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A run whose process is killed reads as `interrupted`, with the way on; while its process
/// lives, it reads as `running` and nobody else may drive it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_reads_as_interrupted_and_a_live_one_cannot_be_driven_twice() {
    let long = json!({ "name": "exec_command", "arguments": { "cmd": "sleep 6; echo slept >> journal.txt", "yield_time_ms": 30000 } });
    let script: Script = serde_json::from_value(json!({
        "turn_from": "conversation",
        "turns": [{ "tool_calls": [long] }, { "text": "Slept." }]
    }))
    .unwrap();
    let server = ScriptedServer::start(script).await.unwrap();
    let home = Home::new(&server);
    let mut c = home.cmd();
    c.args(["run", "--json", "--model", "s:m", "--workspace"])
        .arg(home.path("ws"))
        .arg("Sleep.")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let pid = child.id();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let run_id = tokio::task::spawn_blocking(move || {
        let mut run_id = None;
        for line in stdout.lines() {
            let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
            run_id.get_or_insert_with(|| event["run_id"].as_str().unwrap().to_string());
            if event["kind"] == "tool_call_intent" {
                break;
            }
        }
        run_id.expect("the run printed its events")
    })
    .await
    .unwrap();
    let cordon = |args: &[&str]| {
        let mut c = home.cmd();
        c.args(args);
        common::output(c)
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    // Alive: running, and a second driver is refused without touching the log.
    let listed = cordon(&["runs", "--json"]).await;
    let runs = common::json_lines(&listed.stdout);
    assert_eq!(runs[0]["status"], "running", "{runs:?}");
    let before = home.events(&run_id).await.len();
    let resume = cordon(&["resume", &run_id]).await;
    assert_eq!(resume.status.code(), Some(2), "{}", text(&resume.stderr));
    assert!(
        text(&resume.stderr).contains(&format!("is running in another process (pid {pid})"))
            && text(&resume.stderr).contains(&format!("`cordon pause {run_id}`")),
        "{}",
        text(&resume.stderr)
    );
    let approve = cordon(&["approve", &run_id]).await;
    assert_eq!(approve.status.code(), Some(2), "{}", text(&approve.stderr));
    assert!(text(&approve.stderr).contains("running in another process"));
    let show = cordon(&["show", &run_id]).await;
    assert!(
        text(&show.stdout).contains(&format!(
            "running: still driven by another process (pid {pid})"
        )),
        "{}",
        text(&show.stdout)
    );
    assert_eq!(
        home.events(&run_id).await.len(),
        before,
        "nothing was written"
    );

    // Killed: interrupted, findable, with the way on; pausing it is refused with that way.
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let runs = common::json_lines(&cordon(&["runs", "--json"]).await.stdout);
    assert_eq!(runs[0]["status"], "interrupted", "{runs:?}");
    let listed = cordon(&["runs", "--status", "interrupted"]).await;
    let table = text(&listed.stdout);
    assert!(
        table.contains(&run_id) && table.contains("interrupted"),
        "{table}"
    );
    assert!(
        text(&listed.stderr).contains(&format!("`cordon resume {run_id}` continues one")),
        "runs names the way on too: {}",
        text(&listed.stderr)
    );
    let none = cordon(&["runs", "--status", "running"]).await;
    assert!(!text(&none.stdout).contains(&run_id));
    let show = text(&cordon(&["show", &run_id]).await.stdout);
    assert!(
        show.contains("interrupted")
            && show.contains(&format!("`cordon resume {run_id}` continues it")),
        "{show}"
    );
    let pause = cordon(&["pause", &run_id]).await;
    assert_eq!(pause.status.code(), Some(2));
    assert!(
        text(&pause.stderr).contains("interrupted"),
        "{}",
        text(&pause.stderr)
    );

    // And it goes on.
    let resume = cordon(&["resume", "--json", &run_id]).await;
    assert!(resume.status.success(), "{}", text(&resume.stderr));
    let runs = common::json_lines(&cordon(&["runs", "--json"]).await.stdout);
    assert_eq!(runs[0]["status"], "completed");
}
