//! Compaction through the real binary against the scripted server: a 400-turn run with
//! large tool outputs stays within the context window, the summary requests are the ones
//! expected and every request keeps each call with its result; a run killed after a
//! compaction resumes with the same history, without asking for the summary again.

use crate::common;
use serde_json::Value;
use std::path::Path;

/// The window the agents here declare, in tokens.
const WINDOW: u64 = 20_000;

/// How scripts recognise a summary request (the first words of cordon's instructions).
const SUMMARY_MARK: &str = "You are compacting a conversation";

/// A script of `turns` turns, each running a command that prints about `bytes` bytes,
/// then a final answer; summaries are answered out of turn.
fn script(turns: usize, bytes: usize, slow_turn: Option<usize>) -> String {
    let mut s = format!(
        "[[replies]]\nwhen_body_contains = \"{SUMMARY_MARK}\"\ntext = \"Summary {{n}}: the agent printed blocks of x; it goes on printing them.\"\n\n"
    );
    for t in 0..turns {
        let delay = if slow_turn == Some(t) {
            "delay_ms = 60000\n"
        } else {
            ""
        };
        s.push_str(&format!(
            "[[turns]]\n{delay}tool_calls = [{{ call_id = \"c{t}\", name = \"exec_command\", arguments = {{ cmd = \"head -c {bytes} /dev/zero | tr '\\\\0' x; echo ' block {t}'\" }} }}]\n\n"
        ));
    }
    s.push_str("[[turns]]\ntext = \"done\"\n");
    s
}

fn agent(h: &Path, max_turns: usize) -> String {
    std::fs::create_dir_all(h.join("ws")).unwrap();
    std::fs::write(
        h.join("agent.toml"),
        format!(
            "name = \"long\"\ninstructions = \"Print blocks.\"\ntools = [\"exec_command\"]\nmax_turns = {max_turns}\n\n[compaction]\ncontext_window = {WINDOW}\n"
        ),
    )
    .unwrap();
    h.join("agent.toml").display().to_string()
}

/// Every tool result in a Chat Completions request answers a call made earlier in it.
fn pairs_intact_chat(body: &Value) -> bool {
    let mut called = std::collections::HashSet::new();
    for m in body["messages"].as_array().unwrap() {
        for c in m["tool_calls"].as_array().into_iter().flatten() {
            called.insert(c["id"].as_str().unwrap().to_string());
        }
        if m["role"] == "tool" && !called.contains(m["tool_call_id"].as_str().unwrap()) {
            return false;
        }
    }
    true
}

#[tokio::test]
async fn a_400_turn_run_stays_within_the_window() {
    let (server, home) = common::scripted_home(&script(400, 6_000, None)).await;
    let h = home.path();
    let agent = agent(h, 450);
    let out = common::expect(
        h,
        &[
            "run",
            "--agent",
            &agent,
            "--workspace",
            "ws",
            "--model",
            "s:m",
            "go",
        ],
        0,
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "done");
    let requests = server.requests();
    let turns: Vec<_> = requests
        .iter()
        .filter(|r| r.served.starts_with("turn"))
        .collect();
    let summaries: Vec<_> = requests.iter().filter(|r| r.served == "reply").collect();
    assert_eq!(turns.len(), 401);
    assert!(summaries.len() >= 20, "{} summaries", summaries.len());
    let mut sizes = Vec::new();
    for r in &turns {
        let bytes = serde_json::to_vec(&r.body).unwrap().len() as u64;
        sizes.push(bytes);
        // By the rough measure of 4 bytes a token, the whole body fits the window.
        assert!(bytes / 4 <= WINDOW, "request {} is {bytes} bytes", r.index);
        assert!(pairs_intact_chat(&r.body), "request {}", r.index);
        // The task is always the first thing the model reads after the instructions.
        assert_eq!(
            r.body["messages"][1]["content"], "go",
            "request {}",
            r.index
        );
    }
    eprintln!(
        "request bytes with compaction: max {}, mean {}, last {}",
        sizes.iter().max().unwrap(),
        sizes.iter().sum::<u64>() / sizes.len() as u64,
        sizes.last().unwrap()
    );
    // The summary request: cordon's instructions, the transcript as one message, no tools.
    let first = &summaries[0].body;
    assert!(
        first["messages"][0]["content"]
            .as_str()
            .unwrap()
            .starts_with(SUMMARY_MARK)
    );
    let transcript = first["messages"][1]["content"].as_str().unwrap();
    assert!(
        transcript.starts_with(
            "Summarise this conversation so far:\n\n[the task]\ngo\n\n[tool call exec_command (c0)]"
        ),
        "{}",
        &transcript[..200]
    );
    assert!(transcript.contains("[tool result (c0)]\n") && transcript.contains("block 0"));
    assert!(first.get("tools").is_none(), "{first}");
    assert_eq!(first["messages"].as_array().unwrap().len(), 2);
    // A later summary covers the one before it.
    assert!(
        summaries[1].body["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("Summary 0:")
    );
    // The request after the first compaction carries the summary right after the task.
    let after = turns.iter().find(|r| r.index > summaries[0].index).unwrap();
    let carried = after.body["messages"][2]["content"].as_str().unwrap();
    assert!(
        carried.contains("was compacted") && carried.contains("Summary 0: the agent printed"),
        "{carried}"
    );

    let events = common::json_lines(
        &common::expect(h, &["show", "last", "--json"], 0)
            .await
            .stdout,
    );
    let compacted: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "context_compacted")
        .collect();
    assert_eq!(compacted.len(), summaries.len());
    let p = &compacted[0]["payload"];
    assert!(p["tokens_before"].as_u64().unwrap() > p["tokens_after"].as_u64().unwrap());
    assert_eq!(p["kept_head"], 1);
    let shown =
        String::from_utf8_lossy(&common::expect(h, &["show", "last"], 0).await.stdout).to_string();
    assert!(shown.contains("compacted"), "{shown}");
    // Each summary call is a span of the run's trace.
    let trace = common::expect(h, &["trace", "last", "--json"], 0).await;
    let trace = String::from_utf8_lossy(&trace.stdout);
    assert_eq!(
        trace.matches("\"cordon.compaction\":\"summary\"").count(),
        summaries.len()
    );
}

#[tokio::test]
async fn a_run_killed_after_a_compaction_resumes_with_the_same_history() {
    // Twelve turns of ~6 KB outputs pass the threshold once; the turn after that is slow.
    let (server, home) = common::scripted_home(&script(16, 6_000, Some(13))).await;
    let h = home.path();
    // The Responses API this time.
    let config = std::fs::read_to_string(h.join("config.toml")).unwrap();
    std::fs::write(
        h.join("config.toml"),
        config.replace("api = \"chat\"", "api = \"responses\""),
    )
    .unwrap();
    let agent = agent(h, 40);
    let mut c = common::as_tester(h);
    c.args([
        "run",
        "--agent",
        &agent,
        "--workspace",
        "ws",
        "--model",
        "s:m",
        "go",
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let slow = loop {
        if let Some(r) = server
            .requests()
            .into_iter()
            .find(|r| r.served == "turn 13")
        {
            break r;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its slow turn"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let summaries_before = server
        .requests()
        .iter()
        .filter(|r| r.served == "reply")
        .count();
    assert!(
        summaries_before >= 1,
        "a compaction came before the slow turn"
    );
    // What was asked is on disk (the compaction with it) while the model answers.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let out = common::expect(h, &["resume", "last"], 0).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "done");
    let requests = server.requests();
    let resumed = requests.iter().find(|r| r.index > slow.index).unwrap();
    assert_eq!(
        resumed.served, "turn 14",
        "the resumed run asks the model next, not for a summary"
    );
    assert_eq!(
        resumed.body["input"], slow.body["input"],
        "the resumed run sends the history the killed one sent"
    );
    assert_eq!(
        requests.iter().filter(|r| r.served == "reply").count(),
        summaries_before,
        "the summary is not asked for again"
    );
    let carried = slow.body["input"].to_string();
    assert!(
        carried.contains("Summary 0: the agent printed"),
        "{carried}"
    );
}

/// Opt-in server-side compaction: the Responses API's `responses/compact` replaces the
/// conversation, and later requests pass its compaction item back verbatim. A Chat
/// Completions provider is refused before the run.
#[tokio::test]
async fn server_side_compaction_passes_the_providers_item_back() {
    let (server, home) = common::scripted_home(&script(14, 6_000, None)).await;
    let h = home.path();
    std::fs::create_dir_all(h.join("ws")).unwrap();
    let agent_text = format!(
        "name = \"long\"\ntools = [\"exec_command\"]\nmax_turns = 40\n\n[compaction]\ncontext_window = {WINDOW}\nmode = \"server\"\n"
    );
    std::fs::write(h.join("agent.toml"), &agent_text).unwrap();
    let agent = h.join("agent.toml").display().to_string();
    let args = [
        "run",
        "--agent",
        &agent,
        "--workspace",
        "ws",
        "--model",
        "s:m",
        "go",
    ];
    let out = common::expect(h, &args, 2).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mode = \"server\" needs a Responses API provider"),
        "{err}"
    );

    let config = std::fs::read_to_string(h.join("config.toml")).unwrap();
    std::fs::write(
        h.join("config.toml"),
        config.replace("api = \"chat\"", "api = \"responses\""),
    )
    .unwrap();
    let out = common::expect(h, &args, 0).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "done");
    let requests = server.requests();
    let compact = requests
        .iter()
        .find(|r| r.served == "compact")
        .expect("a compaction");
    assert_eq!(compact.path, "/v1/responses/compact");
    assert_eq!(compact.body["model"], "m");
    assert!(compact.body["input"].as_array().unwrap().len() > 10);
    assert!(
        requests.iter().all(|r| r.served != "reply"),
        "no summary was asked for"
    );
    let after = requests
        .iter()
        .find(|r| r.index > compact.index && r.served.starts_with("turn"))
        .unwrap();
    let input = after.body["input"].as_array().unwrap();
    assert_eq!(input[0]["role"], "user");
    assert_eq!(input[0]["content"][0]["text"], "go");
    assert_eq!(input[1]["type"], "compaction");
    assert!(
        input[1]["encrypted_content"]
            .as_str()
            .unwrap()
            .starts_with("compacted-0:")
    );
    for r in requests.iter().filter(|r| r.served.starts_with("turn")) {
        let bytes = serde_json::to_vec(&r.body).unwrap().len() as u64;
        assert!(bytes / 4 <= WINDOW, "request {} is {bytes} bytes", r.index);
    }
    let events = common::json_lines(
        &common::expect(h, &["show", "last", "--json"], 0)
            .await
            .stdout,
    );
    let compacted = events
        .iter()
        .find(|e| e["kind"] == "context_compacted")
        .unwrap();
    assert_eq!(compacted["payload"]["items"][1]["type"], "compaction");
    let shown =
        String::from_utf8_lossy(&common::expect(h, &["show", "last"], 0).await.stdout).to_string();
    assert!(shown.contains("compacted by the provider"), "{shown}");
}
