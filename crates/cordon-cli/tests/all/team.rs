//! Several agents in one run, through the real binary: a handoff chain with history
//! filters (resumed with the agent that was active), an agent used as a tool, and
//! sub-agents in sandboxes of their own, in parallel, killed and resumed as a tree.

use crate::common;
use serde_json::Value;

/// The messages of a Chat Completions request, as (role, text) pairs.
fn messages(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_string(),
                match &m["content"] {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                },
            )
        })
        .collect()
}

/// Runs `cordon run --agent FILE ARGS --model s:m TASK` in `h`, expecting `code`.
async fn run_agent(
    h: &std::path::Path,
    file: &str,
    args: &[&str],
    task: &str,
    code: i32,
) -> std::process::Output {
    let agent = h.join(file).display().to_string();
    let mut all = vec!["run", "--agent", &agent];
    all.extend_from_slice(args);
    all.extend(["--model", "s:m", task]);
    common::expect(h, &all, code).await
}

/// A run's events, as `cordon show RUN --json` prints them.
async fn events_of(h: &std::path::Path, run: &str) -> Vec<Value> {
    common::json_lines(&common::expect(h, &["show", run, "--json"], 0).await.stdout)
}

/// What the result of `call` told the model.
fn output_of(events: &[Value], call: &str) -> String {
    events
        .iter()
        .find(|e| e["kind"] == "tool_result" && e["payload"]["call_id"] == call)
        .unwrap_or_else(|| panic!("no result for {call}"))["payload"]["output"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The sub-agent run a call's result names: at its end once it answered, or where it says
/// why it did not.
fn child_in(output: &str) -> String {
    let after = match output.rsplit_once("(sub-agent run ") {
        Some((_, after)) => after,
        None => output.split_once("(run ").expect("a run is named").1,
    };
    after.split(')').next().unwrap().to_string()
}

/// The tool names a request offers.
fn tools(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|t| t["function"]["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_handoff_chain_filters_history_and_resumes_with_the_active_agent() {
    let (server, home) = common::scripted_home(
        r#"
[[turns]]
tool_calls = [{ call_id = "sum", name = "calculator", arguments = { expression = "40 + 2" } }]
[[turns]]
tool_calls = [{ call_id = "check", name = "calculator", arguments = { expression = "21 * 2" } }]
[[turns]]
text = "This is about an invoice."
tool_calls = [{ call_id = "h1", name = "transfer_to_billing", arguments = { reason = "invoice question" } }]
[[turns]]
tool_calls = [{ call_id = "h2", name = "transfer_to_refunds", arguments = { reason = "the customer wants 42 back" } }]
[[turns]]
text = '{"refund": 42}'
"#,
    )
    .await;
    let h = home.path();
    std::fs::write(
        h.join("triage.toml"),
        r#"name = "triage"
instructions = "You are triage. Route the customer."
tools = ["calculator"]

[approvals]
tools = ["transfer_to_refunds"]

[[handoffs]]
agent = "billing.toml"
description = "Invoices."
history = "last_turns"
turns = 1
"#,
    )
    .unwrap();
    std::fs::write(
        h.join("billing.toml"),
        r#"name = "billing"
instructions = "You are billing."

[[handoffs]]
agent = "refunds.toml"
description = "Refunds."
history = "none"

[[handoffs]]
agent = "triage.toml"
description = "Anything else."
"#,
    )
    .unwrap();
    std::fs::write(
        h.join("refunds.toml"),
        r#"name = "refunds"
instructions = "You are refunds."

[output]
schema = { type = "object", required = ["refund"], properties = { refund = { type = "number" } } }
"#,
    )
    .unwrap();
    // The handoff to refunds waits for a person (the entry agent's approvals hold for the
    // whole team): the run stops with billing active.
    run_agent(h, "triage.toml", &[], "I was billed twice", 5).await;
    common::expect(h, &["approve", "last"], 0).await;
    let out = common::expect(h, &["resume", "last"], 0).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"refund":42}"#
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 5, "no answer was asked for twice");
    let system = |i: usize| messages(&requests[i].body)[0].1.clone();
    assert!(system(0).starts_with("You are triage."));
    assert!(system(2).starts_with("You are triage."));
    assert!(system(3).starts_with("You are billing."));
    assert!(system(4).starts_with("You are refunds."));
    let requests = &requests[1..];
    assert_eq!(
        tools(&requests[0].body),
        ["calculator", "transfer_to_billing"]
    );
    assert_eq!(
        tools(&requests[2].body),
        ["transfer_to_refunds", "transfer_to_triage"]
    );
    assert!(tools(&requests[3].body).is_empty());
    // Billing sees the task, the last turn before the handoff and the handoff, not the sum
    // before them.
    let billing = messages(&requests[2].body);
    assert_eq!(billing[1], ("user".into(), "I was billed twice".into()));
    let seen = requests[2].body.to_string();
    assert!(!seen.contains("40 + 2"), "{seen}");
    assert!(seen.contains("21 * 2"), "{seen}");
    assert!(seen.contains("transfer_to_billing"));
    assert!(requests[1].body.to_string().contains("40 + 2"));
    // Refunds sees the task and who handed it over, and nothing else.
    let refunds = messages(&requests[3].body);
    assert_eq!(refunds.len(), 3, "{refunds:?}");
    assert_eq!(refunds[1], ("user".into(), "I was billed twice".into()));
    assert_eq!(
        refunds[2].1,
        "[cordon] The agent 'billing' handed this conversation to you, saying: the customer wants 42 back."
    );
    // The answer is typed by the receiving agent's schema.
    assert_eq!(
        requests[3].body["response_format"]["json_schema"]["schema"]["required"][0],
        "refund"
    );

    let events = events_of(h, "last").await;
    let handoffs: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "handed_off")
        .collect();
    assert_eq!(handoffs.len(), 2);
    assert_eq!(handoffs[0]["payload"]["from"], "triage");
    assert_eq!(handoffs[0]["payload"]["to"], "billing");
    assert_eq!(handoffs[0]["payload"]["history"], "last 1 turns");
    assert_eq!(handoffs[1]["payload"]["to"], "refunds");
    assert_eq!(handoffs[1]["payload"]["history"], "none");
    let started = &events[0]["payload"]["agent"];
    assert_eq!(started["members"].as_array().unwrap().len(), 2);
    let text =
        String::from_utf8_lossy(&common::expect(h, &["show", "last"], 0).await.stdout).to_string();
    assert!(text.contains("triage → billing"), "{text}");
    common::expect(h, &["verify", "last"], 0).await;
}

#[tokio::test]
async fn a_team_with_a_bad_handoff_is_refused_before_the_run() {
    let (_server, home) = common::scripted_home("[[turns]]\ntext = \"x\"\n").await;
    let h = home.path();
    std::fs::write(
        h.join("a.toml"),
        "name = \"a\"\n[[handoffs]]\nagent = \"missing.toml\"\n",
    )
    .unwrap();
    std::fs::write(
        h.join("b.toml"),
        "name = \"b\"\n[[handoffs]]\nagent = \"c.toml\"\nhistory = \"last_turns\"\n",
    )
    .unwrap();
    std::fs::write(
        h.join("c.toml"),
        "name = \"c\"\n[budgets]\nmax_tool_calls = 3\n",
    )
    .unwrap();
    std::fs::write(
        h.join("d.toml"),
        "name = \"d\"\n[[handoffs]]\nagent = \"e.toml\"\n",
    )
    .unwrap();
    std::fs::write(h.join("e.toml"), "name = \"e\"\n").unwrap();
    let err = |file: &str| {
        let file = h.join(file).display().to_string();
        async move {
            let out = common::expect(h, &["run", "--agent", &file, "--model", "s:m", "x"], 2).await;
            String::from_utf8_lossy(&out.stderr).to_string()
        }
    };
    assert!(err("a.toml").await.contains("there is no file"));
    assert!(err("b.toml").await.contains("last_turns needs turns"));
    std::fs::write(
        h.join("b.toml"),
        "name = \"b\"\n[[handoffs]]\nagent = \"c.toml\"\n",
    )
    .unwrap();
    assert!(
        err("b.toml")
            .await
            .contains("an agent reached by a handoff cannot set [budgets]")
    );
    std::fs::write(h.join("e.toml"), "name = \"d\"\n").unwrap();
    assert!(err("d.toml").await.contains("named 'd' already"));
}

#[tokio::test]
async fn an_agent_used_as_a_tool_works_in_the_parents_workspace_and_answers_typed() {
    let (server, home) = common::scripted_home(
        r#"
[[turns]]
tool_calls = [{ call_id = "ask", name = "counter", arguments = { task = "Count the files here." } }]
[[turns]]
text = "There are 2 files."

[[threads]]
when_body_contains = '"content":"Count the files here."'
[[threads.turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "echo counted > from-child.txt && ls | wc -l" } }]
[[threads.turns]]
text = '{"files": 2}'
"#,
    )
    .await;
    let h = home.path();
    std::fs::create_dir_all(h.join("ws")).unwrap();
    std::fs::write(h.join("ws/data.txt"), "data\n").unwrap();
    std::fs::write(
        h.join("lead.toml"),
        r#"name = "lead"
instructions = "You are the lead."

[[agent_tools]]
agent = "counter.toml"
description = "Counts files."
"#,
    )
    .unwrap();
    std::fs::write(
        h.join("counter.toml"),
        r#"name = "counter"
instructions = "You are the counter."
tools = ["exec_command"]

[output]
schema = { type = "object", required = ["files"], properties = { files = { type = "integer" } } }
"#,
    )
    .unwrap();
    let out = run_agent(h, "lead.toml", &["--workspace", "ws"], "How many files?", 0).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "There are 2 files."
    );
    // It worked in the parent's workspace.
    eprintln!(
        "{}",
        String::from_utf8_lossy(&common::expect(h, &["show", "last"], 0).await.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(h.join("ws/from-child.txt")).unwrap(),
        "counted\n"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    // The tool says what the agent answers with.
    let offered = requests[0].body["tools"][0]["function"].clone();
    assert_eq!(offered["name"], "counter");
    assert!(
        offered["description"]
            .as_str()
            .unwrap()
            .contains("\"files\"")
    );
    let events = events_of(h, "last").await;
    let output = output_of(&events, "ask");
    assert!(output.starts_with(r#"{"files":2}"#), "{output}");
    let child = child_in(&output);
    let child_events = events_of(h, &child).await;
    let spawned = child_events
        .iter()
        .find(|e| e["kind"] == "spawned_by")
        .unwrap();
    assert_eq!(spawned["payload"]["call_id"], "ask");
    assert_eq!(spawned["payload"]["workspace"], "shared");
    assert_eq!(spawned["payload"]["parent"], events[0]["run_id"]);
    assert!(
        child_events.iter().all(|e| e["kind"] != "checkpoint"),
        "the parent checkpoints its own workspace"
    );
    let root = events[0]["run_id"].as_str().unwrap();
    let shown =
        String::from_utf8_lossy(&common::expect(h, &["show", root], 0).await.stdout).to_string();
    assert!(
        shown.contains(&child),
        "the tree shows the sub-agent: {shown}"
    );
    common::expect(h, &["verify", "--all"], 0).await;
}

/// The script of a lead that sends three workers at once, each on a copy of its workspace,
/// then applies their patches.
const PARALLEL: &str = r#"
[[turns]]
tool_calls = [
  { call_id = "a", name = "worker", arguments = { task = "Part alpha" } },
  { call_id = "b", name = "worker", arguments = { task = "Part beta" } },
  { call_id = "c", name = "worker", arguments = { task = "Part gamma" } },
]
[[turns]]
tool_calls = [{ call_id = "merge", name = "apply_patch", input = "*** Begin Patch\n*** Add File: alpha.txt\n+alpha\n*** Add File: beta.txt\n+beta\n*** Add File: gamma.txt\n+gamma\n*** End Patch\n" }]
[[turns]]
text = "All three parts are merged."

[[threads]]
when_body_contains = '"content":"Part alpha"'
[[threads.turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "echo alpha > alpha.txt" } }]
[[threads.turns]]
text = "alpha done"

[[threads]]
when_body_contains = '"content":"Part beta"'
[[threads.turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "echo beta > beta.txt" } }]
[[threads.turns]]
text = "beta done"

[[threads]]
when_body_contains = '"content":"Part gamma"'
[[threads.turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "sleep 4 && echo gamma > gamma.txt" } }]
[[threads.turns]]
text = "gamma done"
"#;

/// A home with the lead, its worker and a workspace, for [`PARALLEL`].
async fn parallel_home() -> (cordon_testkit::ScriptedServer, tempfile::TempDir) {
    let (server, home) = common::scripted_home(PARALLEL).await;
    let h = home.path();
    std::fs::create_dir_all(h.join("ws")).unwrap();
    std::fs::write(h.join("ws/data.txt"), "shared data\n").unwrap();
    std::fs::write(
        h.join("lead.toml"),
        r#"name = "lead"
instructions = "You are the lead."
tools = ["apply_patch"]

[budgets]
max_tool_calls = 20

[[agent_tools]]
agent = "worker.toml"
description = "Does one part of the job."
workspace = "copy"
patch = true
"#,
    )
    .unwrap();
    std::fs::write(
        h.join("worker.toml"),
        "name = \"worker\"\ninstructions = \"You are a worker.\"\ntools = [\"exec_command\"]\n",
    )
    .unwrap();
    (server, home)
}

/// Starts the lead; kills it (SIGKILL) once `kill` says so. Returns the run's id.
async fn run_lead(
    h: &std::path::Path,
    kill: Option<&(dyn Fn() -> bool + Sync)>,
) -> (String, std::process::Output) {
    let mut c = common::as_tester(h);
    c.args(["run", "--json", "--agent"])
        .arg(h.join("lead.toml"))
        .args(["--workspace", "ws", "--model", "s:m", "Do the three parts."])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(kill) = kill {
        let began = std::time::Instant::now();
        while !kill() {
            assert!(began.elapsed().as_secs() < 60, "the kill point never came");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // The slow worker's command is running now.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        child.kill().unwrap();
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .expect("the run printed its start");
    (first["run_id"].as_str().unwrap().to_string(), out)
}

/// The files of a directory, path → content.
fn files(dir: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read_to_string(&p).unwrap_or_default(),
            )
        })
        .collect()
}

/// A run's final answer, as recorded.
async fn final_answer(h: &std::path::Path, root: String) -> Option<Value> {
    let events = events_of(h, &root).await;
    events
        .iter()
        .find(|e| e["kind"] == "run_completed")
        .map(|e| e["payload"]["output"].clone())
}

/// How many requests each worker's conversation made.
fn per_thread(server: &cordon_testkit::ScriptedServer) -> Vec<usize> {
    ["alpha", "beta", "gamma"]
        .iter()
        .map(|part| {
            let marker = format!("\"content\":\"Part {part}\"");
            server
                .requests()
                .iter()
                .filter(|r| r.body.to_string().contains(&marker))
                .count()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sub_agents_in_their_own_sandboxes_resume_as_a_tree_after_a_kill() {
    // Uninterrupted.
    let (server, home) = parallel_home().await;
    let h = home.path();
    let (root, out) = run_lead(h, None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let whole = files(&h.join("ws"));
    assert_eq!(whole["gamma.txt"], "gamma\n");
    assert_eq!(per_thread(&server), [2, 2, 2]);
    let expected = final_answer(h, root.clone()).await;
    assert_eq!(expected, Some(Value::from("All three parts are merged.")));
    // Each worker's answer carried its patch.
    let events = events_of(h, &root).await;
    let result = |id: &str| output_of(&events, id);
    assert!(
        result("a").contains("*** Add File: alpha.txt\n+alpha\n"),
        "{}",
        result("a")
    );
    assert!(
        !result("a").contains("beta.txt"),
        "each worker has its own copy"
    );
    // A finished worker's copy is removed (its checkpoints hold it).
    let child_events = events_of(h, &child_in(&result("a"))).await;
    let copy = child_events[0]["payload"]["sandbox"]["host_workspace"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(copy.contains("-worker-"), "{copy}");
    assert!(!std::path::Path::new(&copy).exists(), "{copy}");
    // The copies never touched the lead's workspace: only its patch did.
    assert!(result("merge").contains("alpha.txt"));

    // Killed while the slow worker runs, then resumed.
    let (server2, home2) = parallel_home().await;
    let h2 = home2.path();
    let ready = || {
        let counts = per_thread(&server2);
        counts[0] == 2 && counts[1] == 2 && counts[2] >= 1
    };
    let (root2, out) = run_lead(h2, Some(&ready)).await;
    assert!(!out.status.success());
    assert!(!h2.join("ws/gamma.txt").exists());
    let listed =
        String::from_utf8_lossy(&common::expect(h2, &["show", &root2], 0).await.stdout).to_string();
    assert!(listed.contains("worker"), "{listed}");
    let out = common::expect(h2, &["resume", &root2], 0).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "All three parts are merged."
    );
    assert_eq!(files(&h2.join("ws")), whole, "the same workspace");
    assert_eq!(final_answer(h2, root2.clone()).await, expected);
    // No recorded answer was asked for again: each worker's conversation made its two
    // requests, and the lead its three.
    assert_eq!(per_thread(&server2), [2, 2, 2]);
    let lead: Vec<String> = server2
        .requests()
        .iter()
        .filter(|r| r.served.starts_with("turn"))
        .map(|r| r.served.clone())
        .collect();
    assert_eq!(lead, ["turn 0", "turn 1", "turn 2"]);
    // The tree: the lead and its three workers, all completed.
    let shown =
        String::from_utf8_lossy(&common::expect(h2, &["show", &root2], 0).await.stdout).to_string();
    assert_eq!(shown.matches("worker · completed").count(), 3, "{shown}");
    // The finished workers were not run again; the killed one was resumed.
    let events = events_of(h2, &root2).await;
    let resumed = |call: &str| {
        let child = child_in(&output_of(&events, call));
        async move {
            let child_events = events_of(h2, &child).await;
            child_events
                .iter()
                .filter(|e| e["kind"] == "run_resumed")
                .count()
        }
    };
    assert_eq!(resumed("a").await, 0);
    assert_eq!(resumed("b").await, 0);
    assert_eq!(resumed("c").await, 1);
    common::expect(h2, &["verify", "--all"], 0).await;
}

#[tokio::test]
async fn a_sub_agent_waiting_for_a_person_makes_the_tree_wait_until_approved() {
    let (server, home) = common::scripted_home(
        r#"
[[turns]]
tool_calls = [{ call_id = "clean", name = "cleaner", arguments = { task = "Remove old.txt" } }]
[[turns]]
text = "Cleaned."

[[threads]]
when_body_contains = '"content":"Remove old.txt"'
[[threads.turns]]
tool_calls = [{ call_id = "log", name = "exec_command", arguments = { cmd = "echo looked >> log.txt" } }]
[[threads.turns]]
tool_calls = [{ call_id = "rm", name = "exec_command", arguments = { cmd = "rm -f old.txt" } }]
[[threads.turns]]
text = "removed"
"#,
    )
    .await;
    let h = home.path();
    std::fs::create_dir_all(h.join("ws")).unwrap();
    std::fs::write(h.join("ws/old.txt"), "old\n").unwrap();
    std::fs::write(
        h.join("lead.toml"),
        r#"name = "lead"
instructions = "You are the lead."

[approvals]
commands = ["rm *"]

[[agent_tools]]
agent = "cleaner.toml"
"#,
    )
    .unwrap();
    std::fs::write(
        h.join("cleaner.toml"),
        "name = \"cleaner\"\ninstructions = \"You clean.\"\ntools = [\"exec_command\"]\n",
    )
    .unwrap();
    // The entry agent's approvals hold for its sub-agents: the cleaner waits, and so does
    // the tree.
    let out = run_agent(h, "lead.toml", &["--workspace", "ws"], "Clean up.", 5).await;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(stderr.contains("waiting for approval:"), "{stderr}");
    assert!(stderr.contains("the sub-agent 'cleaner'"), "{stderr}");
    assert!(
        stderr.contains("waits for a person: `cordon approve "),
        "{stderr}"
    );
    assert!(h.join("ws/old.txt").exists());
    let child = stderr
        .split("`cordon approve ")
        .nth(1)
        .unwrap()
        .split('`')
        .next()
        .unwrap()
        .to_string();
    let events = events_of(h, "last").await;
    let suspended = events
        .iter()
        .find(|e| e["kind"] == "tool_suspended")
        .unwrap();
    assert_eq!(suspended["payload"]["call_id"], "clean");
    assert_eq!(events.last().unwrap()["kind"], "run_waiting");
    let listed = String::from_utf8_lossy(
        &common::expect(h, &["runs", "--status", "awaiting_approval"], 0)
            .await
            .stdout,
    )
    .to_string();
    assert_eq!(
        listed.lines().count(),
        3,
        "the lead and its cleaner: {listed}"
    );
    // Approving the tree's first run says which sub-agent to approve.
    let out = common::expect(h, &["approve", "last"], 2).await;
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(said.contains("waits for one of its sub-agents"), "{said}");
    assert!(said.contains(&format!("cordon approve {child}")), "{said}");
    // A sub-agent goes on with its tree, not on its own.
    let out = common::expect(h, &["resume", &child], 2).await;
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(said.contains("it goes on with its tree"), "{said}");
    // Approved in the sub-agent, resumed from the tree's first run.
    let out = common::expect(h, &["approve", &child], 0).await;
    let root = events[0]["run_id"].as_str().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("cordon resume {root}")),
        "the hint names the tree's first run"
    );
    let out = common::expect(h, &["resume", "last"], 0).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Cleaned.");
    assert!(!h.join("ws/old.txt").exists());
    // What the cleaner did before it waited was not done again.
    assert_eq!(
        std::fs::read_to_string(h.join("ws/log.txt")).unwrap(),
        "looked\n"
    );
    // Each answer was asked for once.
    assert_eq!(server.requests().len(), 5);
    let events = events_of(h, "last").await;
    assert!(output_of(&events, "clean").starts_with("removed"));
    common::expect(h, &["verify", "--all"], 0).await;
}

#[tokio::test]
async fn budgets_count_the_whole_tree() {
    let (_server, home) = common::scripted_home(
        r#"
[[turns]]
tool_calls = [{ call_id = "a", name = "worker", arguments = { task = "Part A" } }]
[[turns]]
tool_calls = [{ call_id = "b", name = "worker", arguments = { task = "Part B" } }]
[[turns]]
text = "Finished with what the budget allowed."

[[threads]]
when_body_contains = '"content":"Part A"'
[[threads.turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "echo a" } }]
[[threads.turns]]
text = "a done"

[[threads]]
when_body_contains = '"content":"Part B"'
[[threads.turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "echo b1" } }]
[[threads.turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "echo b2" } }]
[[threads.turns]]
text = "b done"
"#,
    )
    .await;
    let h = home.path();
    std::fs::create_dir_all(h.join("ws")).unwrap();
    std::fs::write(
        h.join("lead.toml"),
        "name = \"lead\"\n[budgets]\nmax_tool_calls = 3\n[[agent_tools]]\nagent = \"worker.toml\"\nworkspace = \"copy\"\n",
    )
    .unwrap();
    std::fs::write(
        h.join("worker.toml"),
        "name = \"worker\"\ntools = [\"exec_command\"]\n",
    )
    .unwrap();
    // The lead's two calls (the one to B still going) and A's command make three in the
    // tree: B's first command would make four (on its own B had room for both of its own).
    // B stops at the budget, and the tree with it.
    let out = run_agent(h, "lead.toml", &["--workspace", "ws"], "Go.", 3).await;
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(said.contains("--budget max_tool_calls="), "{said}");
    let events = events_of(h, "last").await;
    assert!(output_of(&events, "a").starts_with("a done"));
    let suspended = events
        .iter()
        .find(|e| e["kind"] == "tool_suspended")
        .unwrap();
    assert_eq!(suspended["payload"]["call_id"], "b");
    let reason = suspended["payload"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("ran out of the tree's max_tool_calls"),
        "{reason}"
    );
    let child = reason
        .split("(run ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let child_events = events_of(h, child).await;
    let exceeded = child_events
        .iter()
        .find(|e| e["kind"] == "budget_exceeded")
        .unwrap();
    assert_eq!(exceeded["payload"]["budget"], "max_tool_calls");
    assert_eq!(exceeded["payload"]["limit"], 3.0);
    assert_eq!(exceeded["payload"]["used"], 4.0);
    assert_eq!(exceeded["payload"]["asked"], 1);
    assert!(child_events.iter().all(|e| e["kind"] != "tool_result"));
    // Raising the tree's budget goes on with B where it stopped.
    let out = common::expect(h, &["resume", "last", "--budget", "max_tool_calls=10"], 0).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Finished with what the budget allowed."
    );
    let events = events_of(h, "last").await;
    assert!(output_of(&events, "b").starts_with("b done"));
    let child_events = events_of(h, child).await;
    assert_eq!(
        child_events
            .iter()
            .filter(|e| e["kind"] == "tool_result")
            .count(),
        2
    );
}

#[tokio::test]
async fn sub_agents_working_at_once_share_the_tree_budget() {
    let mut script = String::from(
        "[[turns]]\ntool_calls = [\n  { call_id = \"a\", name = \"worker\", arguments = { task = \"Part A\" } },\n  { call_id = \"b\", name = \"worker\", arguments = { task = \"Part B\" } },\n]\n[[turns]]\ntext = \"Done.\"\n",
    );
    for part in ["A", "B"] {
        script.push_str(&format!(
            "[[threads]]\nwhen_body_contains = '\"content\":\"Part {part}\"'\n[[threads.turns]]\ntool_calls = [{{ name = \"exec_command\", arguments = {{ cmd = \"echo {part}1\" }} }}]\n[[threads.turns]]\ntool_calls = [{{ name = \"exec_command\", arguments = {{ cmd = \"echo {part}2\" }} }}]\n[[threads.turns]]\ntext = \"{part} done\"\n"
        ));
    }
    let (_server, home) = common::scripted_home(&script).await;
    let h = home.path();
    std::fs::create_dir_all(h.join("ws")).unwrap();
    std::fs::write(
        h.join("lead.toml"),
        "name = \"lead\"\n[budgets]\nmax_tool_calls = 3\n[[agent_tools]]\nagent = \"worker.toml\"\nworkspace = \"copy\"\n",
    )
    .unwrap();
    std::fs::write(
        h.join("worker.toml"),
        "name = \"worker\"\ntools = [\"exec_command\"]\n",
    )
    .unwrap();
    run_agent(h, "lead.toml", &["--workspace", "ws"], "Go.", 3).await;
    // The lead's two calls take two of the three: of the four commands the workers ask
    // for, at once, one runs.
    let events = events_of(h, "last").await;
    let mut ran = 0;
    let stopped: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "tool_suspended")
        .collect();
    assert_eq!(
        stopped.len(),
        2,
        "both workers stopped at the budget, and the lead with them"
    );
    for e in stopped {
        let child = child_in(e["payload"]["reason"].as_str().unwrap());
        let child_events = events_of(h, &child).await;
        ran += child_events
            .iter()
            .filter(|e| e["kind"] == "tool_result")
            .count();
        assert!(child_events.iter().any(|e| e["kind"] == "budget_exceeded"));
    }
    assert_eq!(ran, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_the_first_run_pauses_the_whole_tree() {
    let (server, home) = parallel_home().await;
    let h = home.path().to_path_buf();
    let mut c = common::as_tester(&h);
    c.args(["run", "--agent"]).arg(h.join("lead.toml")).args([
        "--workspace",
        "ws",
        "--model",
        "s:m",
        "Do the three parts.",
    ]);
    let running = tokio::spawn(common::output(c));
    let began = std::time::Instant::now();
    while per_thread(&server)[2] == 0 {
        assert!(
            began.elapsed().as_secs() < 60,
            "the slow worker never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // `last` names the tree's first run, not a sub-agent.
    common::expect(&h, &["pause", "last"], 0).await;
    let out = running.await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(stderr.contains("paused; `cordon resume "), "{stderr}");
    let shown =
        String::from_utf8_lossy(&common::expect(&h, &["show", "last"], 0).await.stdout).to_string();
    assert!(shown.contains("worker · paused"), "{shown}");
    let out = common::expect(&h, &["resume", "last"], 0).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "All three parts are merged."
    );
    assert_eq!(files(&h.join("ws"))["gamma.txt"], "gamma\n");
    assert_eq!(per_thread(&server), [2, 2, 2]);
}

#[tokio::test]
async fn the_readme_team_example_works() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    std::fs::write(h.join("none.toml"), "").unwrap();
    let mut c = common::cordon_std(h);
    c.current_dir(&root)
        .env("CORDON_CONFIG", h.join("none.toml"))
        .args([
            "run",
            "--agent",
            "examples/team/lead.toml",
            "--manifest",
            "examples/team/manifest.toml",
            "--model",
            "scripted:examples/team/script.toml",
            "Make the greeting polite, note why, and have it reviewed.",
        ]);
    let out = common::output(c).await;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    let verdict: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["approved"], true);
    assert!(stderr.contains("handoff lead → reviewer"), "{stderr}");
    assert!(stderr.contains("Welcome, world."), "{stderr}");
    let workspace = stderr
        .lines()
        .find_map(|l| l.strip_prefix("workspace: "))
        .unwrap()
        .trim()
        .to_string();
    let ws = std::path::Path::new(&workspace);
    assert_eq!(
        std::fs::read_to_string(ws.join("greeting.txt")).unwrap(),
        "Welcome, world.\n"
    );
    assert!(
        std::fs::read_to_string(ws.join("NOTES.md"))
            .unwrap()
            .contains("rude")
    );
    let mut c = common::cordon_std(h);
    c.current_dir(&root)
        .env("CORDON_CONFIG", h.join("none.toml"))
        .args(["show", "last"]);
    let shown = String::from_utf8_lossy(&common::output(c).await.stdout).to_string();
    assert_eq!(shown.matches("↳ editor · completed").count(), 2, "{shown}");
}

#[tokio::test]
async fn sub_agents_with_their_own_manifest_take_turns_under_the_limit() {
    let mut script = String::from(
        "[[turns]]\ntool_calls = [\n  { call_id = \"a\", name = \"builder\", arguments = { task = \"Job one\" } },\n  { call_id = \"b\", name = \"builder\", arguments = { task = \"Job two\" } },\n  { call_id = \"c\", name = \"builder\", arguments = { task = \"Job three\" } },\n]\n[[turns]]\ntext = \"built\"\n",
    );
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // Each builder also tries to read the lead's workspace by its host path.
    let theirs = h.join("ws/parent-only.txt").display().to_string();
    for job in ["one", "two", "three"] {
        script.push_str(&format!(
            "[[threads]]\nwhen_body_contains = '\"content\":\"Job {job}\"'\n[[threads.turns]]\ntool_calls = [{{ name = \"exec_command\", arguments = {{ cmd = \"ls && echo {job} > out.txt; cat {theirs}\" }} }}]\n[[threads.turns]]\ntext = \"{job} built\"\n"
        ));
    }
    let server =
        cordon_testkit::ScriptedServer::start(cordon_testkit::Script::from_toml(&script).unwrap())
            .await
            .unwrap();
    std::fs::write(
        h.join("config.toml"),
        format!(
            "[providers.s]\napi = \"chat\"\nbase_url = \"{}\"\n",
            server.base_url()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(h.join("ws")).unwrap();
    std::fs::write(h.join("ws/parent-only.txt"), "the lead's\n").unwrap();
    std::fs::write(
        h.join("builder.manifest.toml"),
        "[entries.\"base.txt\"]\ntype = \"file\"\ncontent = \"from the builder's manifest\\n\"\n",
    )
    .unwrap();
    std::fs::write(
        h.join("lead.toml"),
        "name = \"lead\"\nmax_parallel_agents = 1\n[[agent_tools]]\nagent = \"builder.toml\"\nmanifest = \"builder.manifest.toml\"\n",
    )
    .unwrap();
    std::fs::write(
        h.join("builder.toml"),
        "name = \"builder\"\ntools = [\"exec_command\"]\n",
    )
    .unwrap();
    let out = run_agent(h, "lead.toml", &["--workspace", "ws"], "Build.", 0).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "built");
    assert!(
        !h.join("ws/out.txt").exists(),
        "builders work in workspaces of their own"
    );
    let events = events_of(h, "last").await;
    let mut spans = Vec::new();
    for call in ["a", "b", "c"] {
        let child = child_in(&output_of(&events, call));
        let child_events = events_of(h, &child).await;
        let spawned = child_events
            .iter()
            .find(|e| e["kind"] == "spawned_by")
            .unwrap();
        assert_eq!(spawned["payload"]["workspace"], "manifest");
        assert!(
            child_events
                .iter()
                .any(|e| e["kind"] == "workspace_materialized")
        );
        let listed = child_events
            .iter()
            .find(|e| e["kind"] == "tool_result")
            .unwrap()["payload"]["output"]
            .to_string();
        // `ls` lists the manifest's file alone; the lead's file is not there by its host path.
        assert!(listed.contains("Output:\\nbase.txt\\ncat:"), "{listed}");
        assert!(listed.contains("No such file"), "{listed}");
        assert!(!listed.contains("the lead's"), "{listed}");
        spans.push((
            child_events.first().unwrap()["ts"]
                .as_str()
                .unwrap()
                .to_string(),
            child_events.last().unwrap()["ts"]
                .as_str()
                .unwrap()
                .to_string(),
        ));
    }
    // One at a time: each began after the one before it ended.
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "{spans:?}");
    }
}

#[tokio::test]
async fn a_sub_agent_in_the_parents_workspace_has_the_parents_sandbox() {
    let (_server, home) = common::scripted_home(
        r#"
[[turns]]
tool_calls = [{ call_id = "try", name = "helper", arguments = { task = "Try the locked file." } }]
[[turns]]
text = "tried"

[[threads]]
when_body_contains = '"content":"Try the locked file."'
[[threads.turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "echo LEVEL=$LEVEL; echo changed >> locked.txt; cat locked.txt" } }]
[[threads.turns]]
text = "done trying"
"#,
    )
    .await;
    let h = home.path();
    std::fs::write(
        h.join("manifest.toml"),
        "[entries.\"locked.txt\"]\ntype = \"file\"\ncontent = \"fixed\\n\"\nread_only = true\n\n[env]\nLEVEL = \"parent's\"\n",
    )
    .unwrap();
    std::fs::write(
        h.join("lead.toml"),
        "name = \"lead\"\n[[agent_tools]]\nagent = \"helper.toml\"\n",
    )
    .unwrap();
    std::fs::write(
        h.join("helper.toml"),
        "name = \"helper\"\ntools = [\"exec_command\"]\n",
    )
    .unwrap();
    let manifest = h.join("manifest.toml").display().to_string();
    run_agent(h, "lead.toml", &["--manifest", &manifest], "Go.", 0).await;
    let events = events_of(h, "last").await;
    let child = child_in(&output_of(&events, "try"));
    let child_events = events_of(h, &child).await;
    let ran = child_events
        .iter()
        .find(|e| e["kind"] == "tool_result")
        .unwrap()["payload"]["output"]
        .as_str()
        .unwrap()
        .to_string();
    // The parent's environment, and its read-only entry stays read-only.
    assert!(ran.contains("LEVEL=parent's"), "{ran}");
    assert!(ran.contains("Read-only file system"), "{ran}");
    // (the command's error and its output come in either order)
    assert!(ran.contains("fixed\n") && !ran.contains("changed"), "{ran}");
}
